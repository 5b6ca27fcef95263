// The fraglab trace file: a self-describing header followed by chunks of
// records of the shared schema (bpf/fraglab_events.h). Streamed in both
// directions: memory use does not grow with trace length. The byte layout is
// documented in docs/trace-format.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/event_sink.h"

namespace fraglab {

// One zone of the source machine (real or simulated).
struct ZoneLayout {
  int nid = 0;
  int zone_idx = 0;          // DMA=0 DMA32=1 Normal=2 Movable=3 Device=4
  std::string name;          // "DMA", "DMA32", "Normal", "Movable", "Device"
  uint64_t start_pfn = 0;
  uint64_t spanned = 0;      // pfns [start_pfn, start_pfn + spanned)
  uint64_t present = 0;
  uint64_t managed = 0;
};

// Everything a reader needs to interpret the records without the source
// machine. Deterministic sources (the simulator) leave `created_unix_s` 0 so
// their output is byte-identical across runs.
struct TraceHeader {
  uint32_t schema_major = 0;            // FL_SCHEMA_VERSION_MAJOR of the writer
  uint32_t schema_minor = 0;
  std::string tool_version;             // fraglab version string
  bool simulated = false;               // true: simulator, false: real kernel
  std::string kernel_release;           // uname -r, or the modelled release
  std::string kernel_era;               // "LEGACY", "HYGIENE", "CLAIM" (sim) or derived
  std::string machine;                  // hostname/arch summary, or "simulated"
  uint32_t nr_cpus = 0;
  uint32_t page_size = 4096;
  uint32_t pageblock_order = 9;
  uint32_t max_order = 10;              // highest buddy order (inclusive)
  std::vector<ZoneLayout> zones;
  std::vector<std::string> migratetype_names;  // index = source kernel's number
  std::string scenario_name;
  std::string scenario_text;            // the scenario file as run (may be empty)
  uint64_t seed = 0;
  uint64_t created_unix_s = 0;          // 0 for deterministic outputs
  std::map<std::string, std::string> extra;  // free-form key/value (sorted)
};

// Version of the container format (file header and chunk layout), distinct
// from the record schema version (FL_SCHEMA_VERSION_*). A reader refuses a
// file whose major differs from its own; a newer minor is read (it may only
// add things an older reader can skip). See docs/trace-format.md.
inline constexpr uint16_t kTraceFormatMajor = 1;
inline constexpr uint16_t kTraceFormatMinor = 0;
// Largest chunk payload (stored or uncompressed) a reader accepts and a
// writer may be configured for; bounds what a corrupt length can make us allocate.
inline constexpr size_t kTraceMaxChunkBytes = size_t{64} << 20;

struct TraceWriterOptions {
  bool compress = true;          // zstd per chunk
  int zstd_level = 3;
  size_t chunk_bytes = 1 << 20;  // uncompressed payload per chunk before it is sealed
                                 // (4 KiB .. kTraceMaxChunkBytes - 64 KiB)
};

// Writes a trace. Records are buffered into a chunk; a chunk is sealed (and
// written with its checksum) when full, on Flush(), and on Close(). A writer
// killed at any moment leaves a file readable up to its last sealed chunk.
// Close() also writes an end marker, so readers can tell a finished trace from
// one whose writer died. The header's schema_major/minor are set to this
// build's schema and an empty tool_version to this build's version; nothing
// else is filled in, so the same header and records give the same bytes.
// Not thread-safe: one writer per file, used from one thread at a time.
class TraceWriter final : public EventSink {
 public:
  static absl::StatusOr<std::unique_ptr<TraceWriter>> Open(
      const std::string& path, const TraceHeader& header,
      const TraceWriterOptions& options = {});
  // Opens `path` for appending records: if it does not exist (or is an empty
  // file) it is created with `header_if_new`; if it exists it must be a valid trace (its own
  // header is kept, a torn tail after the last complete chunk is cut off and
  // reported in `*note` when non-null) and new chunks follow the last one.
  static absl::StatusOr<std::unique_ptr<TraceWriter>> OpenAppend(
      const std::string& path, const TraceHeader& header_if_new,
      const TraceWriterOptions& options = {}, std::string* note = nullptr);
  ~TraceWriter() override;  // Closes if still open (errors are lost: call Close()).

  // Appends one record (copied). InvalidArgument for a malformed record.
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override;
  // Seals the current chunk and fsyncs nothing (write(2) only): survives the
  // process being killed, not the machine crashing.
  [[nodiscard]] absl::Status Flush();
  [[nodiscard]] absl::Status Close();

  uint64_t records_written() const;  // by this writer (not counting appended-to records)
  const std::string& path() const;
  const TraceHeader& header() const;  // as stored in the file (for OpenAppend: the file's)

 private:
  TraceWriter() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a trace record by record.
class TraceReader {
 public:
  static absl::StatusOr<std::unique_ptr<TraceReader>> Open(const std::string& path);
  ~TraceReader();

  const TraceHeader& header() const;

  // Next record, or nullptr at the end of the readable data. The pointer is
  // 8-byte aligned and valid until the next call. A corrupt chunk or a bad
  // record is an error naming the file and byte offset. A file that simply
  // ends early (writer killed) is not an error: Next() returns nullptr and
  // truncated() tells so.
  absl::StatusOr<const fl_record_header*> Next();

  bool truncated() const;              // data after the last complete chunk
  std::string truncation_note() const; // "file ends inside chunk at offset N (M bytes lost)"
  uint64_t offset() const;             // file offset of the current chunk

  // True once the end marker written by TraceWriter::Close() was read. At the
  // end of the data, false means the writer did not finish (killed, crashed,
  // or still writing), even when no torn chunk is left (truncated() false).
  bool closed() const;
  // Offset just past the last complete data chunk read so far (the file
  // header's end before any): where an appender continues.
  uint64_t data_end_offset() const;
  uint64_t file_size() const;           // size when opened
  uint64_t chunks_read() const;         // data chunks (not the end marker)
  uint64_t records_read() const;
  uint64_t stored_payload_bytes() const;  // chunk payload bytes as stored (compressed)
  uint64_t raw_payload_bytes() const;     // the same, uncompressed
  uint16_t format_minor() const;          // container format minor of the file

 private:
  TraceReader() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fraglab
