// Trace file writer and reader. Layout (docs/trace-format.md):
//   file header: magic "FLTRACE\0", u16 format_major, u16 format_minor,
//                u32 json_len, u32 json_crc, u32 fixed_crc   (24 bytes)
//                then json_len bytes of header JSON
//   chunks:      48-byte chunk header, then stored_len payload bytes
//   end marker:  a chunk header with kChunkEnd and no payload (Close()).
// Everything little endian; checksums are CRC-32C (common/trace_crc32c.h).
#include "common/trace_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/trace_crc32c.h"
#include "common/trace_records.h"
#include "common/version.h"

namespace fraglab {
namespace {

constexpr char kFileMagic[8] = {'F', 'L', 'T', 'R', 'A', 'C', 'E', '\0'};
constexpr size_t kFileFixedBytes = 24;
constexpr uint32_t kMaxHeaderJsonBytes = 16u << 20;  // scenario text included
constexpr uint32_t kChunkMagic = 0x4b434c46;        // "FLCK" little endian
constexpr uint32_t kChunkZstd = 0x1;
constexpr uint32_t kChunkEnd = 0x2;
constexpr uint32_t kChunkKnownFlags = kChunkZstd | kChunkEnd;
constexpr size_t kMinChunkBytes = 4096;

struct ChunkHeader {
  uint32_t magic;
  uint32_t flags;
  uint32_t stored_len;    // payload bytes that follow this header
  uint32_t raw_len;       // payload bytes after decompression
  uint32_t record_count;
  uint32_t reserved;      // 0; ignored by readers
  uint64_t first_ts;      // ts_ns of the chunk's first record
  uint64_t last_ts;       // ts_ns of the chunk's last record
  uint32_t payload_crc;   // CRC-32C of the stored payload
  uint32_t header_crc;    // CRC-32C of the 44 bytes before this field
};
static_assert(sizeof(ChunkHeader) == 48, "chunk header layout is part of the format");
constexpr size_t kChunkHeaderBytes = sizeof(ChunkHeader);
constexpr size_t kChunkHeaderCrcBytes = offsetof(ChunkHeader, header_crc);

struct FileFixedHeader {
  char magic[8];
  uint16_t format_major;
  uint16_t format_minor;
  uint32_t json_len;
  uint32_t json_crc;
  uint32_t fixed_crc;  // CRC-32C of the 20 bytes before this field
};
static_assert(sizeof(FileFixedHeader) == kFileFixedBytes, "file header layout");

// Writes all of [data, data+len) at the file position, retrying short
// writes and EINTR.
absl::Status WriteAll(int fd, const void* data, size_t len, const std::string& path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      return ErrnoStatus(err, absl::StrCat("trace ", path, ": write"));
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Reads exactly `len` bytes at `offset` (the caller has checked they exist).
absl::Status PreadAll(int fd, void* data, size_t len, uint64_t offset, const std::string& path) {
  auto* p = static_cast<uint8_t*>(data);
  while (len > 0) {
    const ssize_t n = ::pread(fd, p, len, static_cast<off_t>(offset));
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      return ErrnoStatus(err, absl::StrCat("trace ", path, ": read at offset ", offset));
    }
    if (n == 0) {
      return absl::DataLossError(
          absl::StrCat("trace ", path, ": file shrank while reading (offset ", offset, ")"));
    }
    p += n;
    len -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

std::string EncodeHeaderJson(const TraceHeader& header) {
  return JsonDump(TraceHeaderToJson(header));
}

// Field readers for the header JSON: absent keys keep the default (forward
// and backward compatible), present keys must have the right type.
class HeaderParser {
 public:
  HeaderParser(const std::string& path, uint64_t offset) : path_(path), offset_(offset) {}

  absl::Status Error(const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("trace ", path_, ": header at offset ", offset_, ": ", what));
  }

  template <typename T>
  absl::Status Unsigned(const nlohmann::json& obj, const char* key, T* out,
                        const std::string& where = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) return absl::OkStatus();
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->template get<int64_t>() >= 0)) {
      return Error(absl::StrCat("field '", where, key, "' is not an unsigned integer"));
    }
    const uint64_t v = it->template get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
      return Error(absl::StrCat("field '", where, key, "' value ", v, " out of range"));
    }
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }

  absl::Status Signed(const nlohmann::json& obj, const char* key, int* out,
                      const std::string& where = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) return absl::OkStatus();
    if (!it->is_number_integer()) {
      return Error(absl::StrCat("field '", where, key, "' is not an integer"));
    }
    const int64_t v = it->is_number_unsigned()
                          ? static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX))
                          : it->get<int64_t>();
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      return Error(absl::StrCat("field '", where, key, "' value ", v, " out of range"));
    }
    *out = static_cast<int>(v);
    return absl::OkStatus();
  }

  absl::Status String(const nlohmann::json& obj, const char* key, std::string* out,
                      const std::string& where = "") const {
    auto it = obj.find(key);
    if (it == obj.end()) return absl::OkStatus();
    if (!it->is_string()) return Error(absl::StrCat("field '", where, key, "' is not a string"));
    *out = it->get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Bool(const nlohmann::json& obj, const char* key, bool* out) const {
    auto it = obj.find(key);
    if (it == obj.end()) return absl::OkStatus();
    if (!it->is_boolean()) return Error(absl::StrCat("field '", key, "' is not a boolean"));
    *out = it->get<bool>();
    return absl::OkStatus();
  }

 private:
  const std::string& path_;
  uint64_t offset_;
};

absl::StatusOr<TraceHeader> DecodeHeaderJson(const std::string& text, const std::string& path,
                                             uint64_t offset) {
  HeaderParser p(path, offset);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return p.Error("header JSON does not parse");
  if (!j.is_object()) return p.Error("header JSON is not an object");
  if (!j.contains("schema_major")) return p.Error("header has no 'schema_major'");
  TraceHeader h;
  RETURN_IF_ERROR(p.Unsigned(j, "schema_major", &h.schema_major));
  RETURN_IF_ERROR(p.Unsigned(j, "schema_minor", &h.schema_minor));
  RETURN_IF_ERROR(p.String(j, "tool_version", &h.tool_version));
  RETURN_IF_ERROR(p.Bool(j, "simulated", &h.simulated));
  RETURN_IF_ERROR(p.String(j, "kernel_release", &h.kernel_release));
  RETURN_IF_ERROR(p.String(j, "kernel_era", &h.kernel_era));
  RETURN_IF_ERROR(p.String(j, "machine", &h.machine));
  RETURN_IF_ERROR(p.Unsigned(j, "nr_cpus", &h.nr_cpus));
  RETURN_IF_ERROR(p.Unsigned(j, "page_size", &h.page_size));
  RETURN_IF_ERROR(p.Unsigned(j, "pageblock_order", &h.pageblock_order));
  RETURN_IF_ERROR(p.Unsigned(j, "max_order", &h.max_order));
  if (h.pageblock_order > 63) return p.Error("pageblock_order is larger than 63");
  if (auto it = j.find("zones"); it != j.end()) {
    if (!it->is_array()) return p.Error("field 'zones' is not an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const nlohmann::json& z = (*it)[i];
      const std::string where = absl::StrCat("zones[", i, "].");
      if (!z.is_object()) return p.Error(absl::StrCat("zones[", i, "] is not an object"));
      ZoneLayout zl;
      RETURN_IF_ERROR(p.Signed(z, "nid", &zl.nid, where));
      RETURN_IF_ERROR(p.Signed(z, "zone_idx", &zl.zone_idx, where));
      RETURN_IF_ERROR(p.String(z, "name", &zl.name, where));
      RETURN_IF_ERROR(p.Unsigned(z, "start_pfn", &zl.start_pfn, where));
      RETURN_IF_ERROR(p.Unsigned(z, "spanned", &zl.spanned, where));
      RETURN_IF_ERROR(p.Unsigned(z, "present", &zl.present, where));
      RETURN_IF_ERROR(p.Unsigned(z, "managed", &zl.managed, where));
      h.zones.push_back(std::move(zl));
    }
  }
  if (auto it = j.find("migratetype_names"); it != j.end()) {
    if (!it->is_array()) return p.Error("field 'migratetype_names' is not an array");
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return p.Error(absl::StrCat("migratetype_names[", i, "] is not a string"));
      }
      h.migratetype_names.push_back((*it)[i].get<std::string>());
    }
  }
  RETURN_IF_ERROR(p.String(j, "scenario_name", &h.scenario_name));
  RETURN_IF_ERROR(p.String(j, "scenario_text", &h.scenario_text));
  RETURN_IF_ERROR(p.Unsigned(j, "seed", &h.seed));
  RETURN_IF_ERROR(p.Unsigned(j, "created_unix_s", &h.created_unix_s));
  if (auto it = j.find("extra"); it != j.end()) {
    if (!it->is_object()) return p.Error("field 'extra' is not an object");
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (!e.value().is_string()) {
        return p.Error(absl::StrCat("extra['", e.key(), "'] is not a string"));
      }
      h.extra[e.key()] = e.value().get<std::string>();
    }
  }
  return h;
}

ChunkHeader MakeChunkHeader(uint32_t flags, uint32_t stored_len, uint32_t raw_len,
                            uint32_t record_count, uint64_t first_ts, uint64_t last_ts,
                            uint32_t payload_crc) {
  ChunkHeader c;
  std::memset(&c, 0, sizeof(c));
  c.magic = kChunkMagic;
  c.flags = flags;
  c.stored_len = stored_len;
  c.raw_len = raw_len;
  c.record_count = record_count;
  c.first_ts = first_ts;
  c.last_ts = last_ts;
  c.payload_crc = payload_crc;
  c.header_crc = Crc32c(&c, kChunkHeaderCrcBytes);
  return c;
}

}  // namespace

// ---------------------------------------------------------------- writer

struct TraceWriter::Impl {
  std::string path;
  int fd = -1;
  TraceHeader header;
  TraceWriterOptions options;
  std::vector<uint8_t> chunk;  // records of the open chunk
  uint32_t chunk_records = 0;
  uint64_t first_ts = 0;
  uint64_t last_ts = 0;
  std::vector<uint8_t> out;  // chunk header + stored payload, written at once
  ZSTD_CCtx* cctx = nullptr;
  uint64_t records_written = 0;
  absl::Status failed;  // sticky: after a write error nothing more is written
  bool closed = false;

  ~Impl() {
    if (cctx != nullptr) ZSTD_freeCCtx(cctx);
    if (fd >= 0) ::close(fd);
  }

  absl::Status Init() {
    if (options.chunk_bytes < kMinChunkBytes ||
        options.chunk_bytes > kTraceMaxChunkBytes - (64u << 10)) {
      return absl::InvalidArgumentError(
          absl::StrCat("trace ", path, ": chunk_bytes ", options.chunk_bytes, " outside [",
                       kMinChunkBytes, ", ", kTraceMaxChunkBytes - (64u << 10), "]"));
    }
    if (options.compress) {
      if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
        return absl::InvalidArgumentError(absl::StrCat("trace ", path, ": zstd level ",
                                                       options.zstd_level, " outside [",
                                                       ZSTD_minCLevel(), ", ",
                                                       ZSTD_maxCLevel(), "]"));
      }
      cctx = ZSTD_createCCtx();
      if (cctx == nullptr) return absl::ResourceExhaustedError("ZSTD_createCCtx failed");
    }
    chunk.reserve(options.chunk_bytes + kMaxRecordBytes);
    return absl::OkStatus();
  }

  absl::Status WriteChunk(uint32_t flags, const uint8_t* payload, size_t raw_len) {
    const uint8_t* stored = payload;
    size_t stored_len = raw_len;
    out.resize(kChunkHeaderBytes);
    if (cctx != nullptr && raw_len > 0) {
      const size_t bound = ZSTD_compressBound(raw_len);
      out.resize(kChunkHeaderBytes + bound);
      const size_t n = ZSTD_compressCCtx(cctx, out.data() + kChunkHeaderBytes, bound, payload,
                                         raw_len, options.zstd_level);
      if (ZSTD_isError(n)) {
        return absl::InternalError(absl::StrCat("trace ", path, ": zstd compression failed: ",
                                                ZSTD_getErrorName(n)));
      }
      // Incompressible payloads are stored raw: never larger than the input.
      if (n < raw_len) {
        flags |= kChunkZstd;
        stored = out.data() + kChunkHeaderBytes;
        stored_len = n;
      }
    }
    if ((flags & kChunkZstd) == 0) {
      out.resize(kChunkHeaderBytes + raw_len);
      if (raw_len > 0) std::memcpy(out.data() + kChunkHeaderBytes, payload, raw_len);
    } else {
      out.resize(kChunkHeaderBytes + stored_len);
    }
    const ChunkHeader c = MakeChunkHeader(
        flags, static_cast<uint32_t>(stored_len), static_cast<uint32_t>(raw_len), chunk_records,
        first_ts, last_ts, Crc32c(stored == payload ? payload : out.data() + kChunkHeaderBytes,
                                  stored_len));
    std::memcpy(out.data(), &c, sizeof(c));
    return WriteAll(fd, out.data(), out.size(), path);
  }

  absl::Status Seal() {
    if (chunk.empty()) return absl::OkStatus();
    absl::Status s = WriteChunk(0, chunk.data(), chunk.size());
    chunk.clear();
    chunk_records = 0;
    return s;
  }
};

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::Open(const std::string& path,
                                                               const TraceHeader& header,
                                                               const TraceWriterOptions& options) {
  std::unique_ptr<TraceWriter> w(new TraceWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  im.path = path;
  im.options = options;
  im.header = header;
  im.header.schema_major = FL_SCHEMA_VERSION_MAJOR;
  im.header.schema_minor = FL_SCHEMA_VERSION_MINOR;
  if (im.header.tool_version.empty()) im.header.tool_version = FRAGLAB_VERSION;
  RETURN_IF_ERROR(im.Init());

  const std::string json = EncodeHeaderJson(im.header);
  if (json.size() > kMaxHeaderJsonBytes) {
    return absl::InvalidArgumentError(absl::StrCat("trace ", path, ": header JSON is ",
                                                   json.size(), " bytes, more than ",
                                                   kMaxHeaderJsonBytes));
  }
  im.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (im.fd < 0) return ErrnoStatus(errno, absl::StrCat("trace ", path, ": open for writing"));
  FileFixedHeader fh;
  std::memset(&fh, 0, sizeof(fh));
  std::memcpy(fh.magic, kFileMagic, sizeof(kFileMagic));
  fh.format_major = kTraceFormatMajor;
  fh.format_minor = kTraceFormatMinor;
  fh.json_len = static_cast<uint32_t>(json.size());
  fh.json_crc = Crc32c(json.data(), json.size());
  fh.fixed_crc = Crc32c(&fh, offsetof(FileFixedHeader, fixed_crc));
  // One write: a writer killed here leaves either nothing usable or the
  // whole header, never a header that parses but lies.
  std::string bytes(reinterpret_cast<const char*>(&fh), sizeof(fh));
  bytes += json;
  RETURN_IF_ERROR(WriteAll(im.fd, bytes.data(), bytes.size(), path));
  return w;
}

absl::StatusOr<std::unique_ptr<TraceWriter>> TraceWriter::OpenAppend(
    const std::string& path, const TraceHeader& header_if_new, const TraceWriterOptions& options,
    std::string* note) {
  if (note != nullptr) note->clear();
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) return Open(path, header_if_new, options);
    return ErrnoStatus(err, absl::StrCat("trace ", path, ": stat"));
  }
  // An empty regular file (e.g. made by mktemp for us) holds no trace yet.
  if (S_ISREG(st.st_mode) && st.st_size == 0) return Open(path, header_if_new, options);
  // Validate the whole existing file (checksums included): appending to a
  // corrupt trace would bury the damage in the middle of a longer file.
  ASSIGN_OR_RETURN(std::unique_ptr<TraceReader> reader, TraceReader::Open(path));
  while (true) {
    absl::StatusOr<const fl_record_header*> rec = reader->Next();
    if (!rec.ok()) {
      return absl::Status(rec.status().code(),
                          absl::StrCat("cannot append: ", rec.status().message()));
    }
    if (*rec == nullptr) break;
  }
  const uint64_t cut = reader->data_end_offset();
  if (reader->truncated() && note != nullptr) {
    *note = absl::StrCat(reader->truncation_note(), "; cut off before appending");
  }

  std::unique_ptr<TraceWriter> w(new TraceWriter());
  w->impl_ = std::make_unique<Impl>();
  Impl& im = *w->impl_;
  im.path = path;
  im.options = options;
  im.header = reader->header();
  RETURN_IF_ERROR(im.Init());
  im.fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (im.fd < 0) return ErrnoStatus(errno, absl::StrCat("trace ", path, ": open for appending"));
  // Drops a torn tail and the end marker of a finished trace: the new
  // chunks follow the last complete data chunk and Close() writes a new marker.
  if (::ftruncate(im.fd, static_cast<off_t>(cut)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("trace ", path, ": truncate to ", cut));
  }
  if (::lseek(im.fd, static_cast<off_t>(cut), SEEK_SET) < 0) {
    return ErrnoStatus(errno, absl::StrCat("trace ", path, ": seek to ", cut));
  }
  return w;
}

TraceWriter::~TraceWriter() {
  if (impl_ != nullptr && !impl_->closed) (void)Close();
}

absl::Status TraceWriter::Emit(const fl_record_header& rec) {
  Impl& im = *impl_;
  if (im.closed) return absl::FailedPreconditionError(absl::StrCat("trace ", im.path, ": closed"));
  RETURN_IF_ERROR(im.failed);
  if (absl::Status s = ValidateRecord(rec, rec.size); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("trace ", im.path, ": record ",
                                                   im.records_written, ": ", s.message()));
  }
  if (!im.chunk.empty() && im.chunk.size() + rec.size > im.options.chunk_bytes) {
    im.failed = im.Seal();
    RETURN_IF_ERROR(im.failed);
  }
  if (im.chunk_records == 0) im.first_ts = rec.ts_ns;
  im.last_ts = rec.ts_ns;
  const auto* p = reinterpret_cast<const uint8_t*>(&rec);
  im.chunk.insert(im.chunk.end(), p, p + rec.size);
  ++im.chunk_records;
  ++im.records_written;
  return absl::OkStatus();
}

absl::Status TraceWriter::Flush() {
  Impl& im = *impl_;
  if (im.closed) return absl::FailedPreconditionError(absl::StrCat("trace ", im.path, ": closed"));
  RETURN_IF_ERROR(im.failed);
  im.failed = im.Seal();
  return im.failed;
}

absl::Status TraceWriter::Close() {
  Impl& im = *impl_;
  if (im.closed) return absl::OkStatus();
  im.closed = true;
  absl::Status s = im.failed;
  if (s.ok()) s = im.Seal();
  if (s.ok()) {
    im.chunk_records = 0;
    im.first_ts = im.last_ts = 0;
    s = im.WriteChunk(kChunkEnd, nullptr, 0);
  }
  if (::close(im.fd) != 0 && s.ok()) {
    s = ErrnoStatus(errno, absl::StrCat("trace ", im.path, ": close"));
  }
  im.fd = -1;
  return s;
}

uint64_t TraceWriter::records_written() const { return impl_->records_written; }
const std::string& TraceWriter::path() const { return impl_->path; }
const TraceHeader& TraceWriter::header() const { return impl_->header; }

// ---------------------------------------------------------------- reader

struct TraceReader::Impl {
  std::string path;
  int fd = -1;
  uint64_t file_size = 0;
  TraceHeader header;
  uint16_t format_minor = 0;
  bool allow_unknown_kinds = false;  // file of a newer schema minor
  ZSTD_DCtx* dctx = nullptr;

  uint64_t next_chunk = 0;     // offset of the next chunk header
  uint64_t chunk_offset = 0;   // offset of the chunk being handed out
  uint64_t data_end = 0;
  std::vector<uint64_t> stored;  // uint64_t storage keeps records 8-byte aligned
  std::vector<uint64_t> raw;
  const uint8_t* data = nullptr;
  size_t data_len = 0;
  size_t cursor = 0;

  bool done = false;
  bool truncated = false;
  bool closed = false;
  std::string note;
  absl::Status failed;
  uint64_t chunks = 0, records = 0, stored_bytes = 0, raw_bytes = 0;

  ~Impl() {
    if (dctx != nullptr) ZSTD_freeDCtx(dctx);
    if (fd >= 0) ::close(fd);
  }

  absl::Status Corrupt(uint64_t offset, const std::string& what) const {
    return absl::DataLossError(
        absl::StrCat("trace ", path, ": corrupt at offset ", offset, ": ", what));
  }

  absl::Status ReadFileHeader() {
    FileFixedHeader fh;
    const size_t have = static_cast<size_t>(std::min<uint64_t>(file_size, sizeof(fh)));
    std::memset(&fh, 0, sizeof(fh));
    RETURN_IF_ERROR(PreadAll(fd, &fh, have, 0, path));
    const size_t magic_have = std::min(have, sizeof(kFileMagic));
    if (have == 0 || std::memcmp(fh.magic, kFileMagic, magic_have) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trace ", path, ": not a fraglab trace (bad magic at offset 0)"));
    }
    if (have < sizeof(fh)) {
      return absl::DataLossError(absl::StrCat("trace ", path, ": file ends at offset ", have,
                                              " inside the ", sizeof(fh),
                                              "-byte file header"));
    }
    // The version fields sit right after the magic in every format version,
    // so they are checked before anything whose layout could have changed.
    if (fh.format_major != kTraceFormatMajor) {
      return absl::FailedPreconditionError(absl::StrCat(
          "trace ", path, ": format version ", fh.format_major,
          fh.format_major > kTraceFormatMajor ? " is newer than this fraglab (" :
                                                 " is older than this fraglab reads (",
          kTraceFormatMajor, ")",
          fh.format_major > kTraceFormatMajor ? "; upgrade fraglab" : ""));
    }
    format_minor = fh.format_minor;
    if (Crc32c(&fh, offsetof(FileFixedHeader, fixed_crc)) != fh.fixed_crc) {
      return Corrupt(8, "file header checksum mismatch");
    }
    if (fh.json_len > kMaxHeaderJsonBytes) {
      return Corrupt(12, absl::StrCat("header length ", fh.json_len, " exceeds ",
                                      kMaxHeaderJsonBytes));
    }
    if (file_size < sizeof(fh) + fh.json_len) {
      return absl::DataLossError(absl::StrCat("trace ", path, ": file ends at offset ",
                                              file_size, " inside the header JSON (",
                                              sizeof(fh) + fh.json_len, " bytes expected)"));
    }
    std::string json(fh.json_len, '\0');
    RETURN_IF_ERROR(PreadAll(fd, json.data(), json.size(), sizeof(fh), path));
    if (Crc32c(json.data(), json.size()) != fh.json_crc) {
      return Corrupt(sizeof(fh), "header JSON checksum mismatch");
    }
    ASSIGN_OR_RETURN(header, DecodeHeaderJson(json, path, sizeof(fh)));
    if (header.schema_major != FL_SCHEMA_VERSION_MAJOR) {
      return absl::FailedPreconditionError(absl::StrCat(
          "trace ", path, ": event schema version ", header.schema_major,
          header.schema_major > FL_SCHEMA_VERSION_MAJOR ? " is newer than this fraglab ("
                                                        : " is older than this fraglab reads (",
          FL_SCHEMA_VERSION_MAJOR, ")",
          header.schema_major > FL_SCHEMA_VERSION_MAJOR ? "; upgrade fraglab" : ""));
    }
    allow_unknown_kinds = header.schema_minor > FL_SCHEMA_VERSION_MINOR;
    next_chunk = data_end = sizeof(fh) + fh.json_len;
    return absl::OkStatus();
  }

  void MarkTruncated(uint64_t offset) {
    truncated = true;
    done = true;
    note = absl::StrCat("file ends inside chunk at offset ", offset, " (", file_size - offset,
                        " bytes lost)");
  }

  // Loads the chunk at next_chunk, verifying its header, checksum, size and
  // every record in it before any record is handed out.
  absl::Status LoadChunk() {
    const uint64_t off = next_chunk;
    const uint64_t remaining = file_size - off;
    if (remaining == 0) {
      done = true;
      return absl::OkStatus();
    }
    if (closed) return Corrupt(off, "data after the end marker");
    ChunkHeader c;
    std::memset(&c, 0, sizeof(c));
    const size_t have = static_cast<size_t>(std::min<uint64_t>(remaining, sizeof(c)));
    RETURN_IF_ERROR(PreadAll(fd, &c, have, off, path));
    // A killed writer leaves a prefix of a valid chunk, so even a partial
    // header must start with the right magic bytes.
    if (std::memcmp(&c.magic, &kChunkMagic, std::min<size_t>(have, sizeof(c.magic))) != 0) {
      return Corrupt(off, "bad chunk magic");
    }
    if (have < sizeof(c)) {
      MarkTruncated(off);
      return absl::OkStatus();
    }
    if (Crc32c(&c, kChunkHeaderCrcBytes) != c.header_crc) {
      return Corrupt(off, "chunk header checksum mismatch");
    }
    if ((c.flags & ~kChunkKnownFlags) != 0) {
      return Corrupt(off, absl::StrCat("unknown chunk flags 0x", absl::Hex(c.flags),
                                       " (written by a newer fraglab?)"));
    }
    if (c.flags & kChunkEnd) {
      if (c.stored_len != 0 || c.raw_len != 0 || c.record_count != 0) {
        return Corrupt(off, "end marker with a payload");
      }
      closed = true;
      next_chunk = off + sizeof(c);
      // Anything after the marker is reported on the next call.
      return absl::OkStatus();
    }
    if (c.stored_len > kTraceMaxChunkBytes || c.raw_len > kTraceMaxChunkBytes) {
      return Corrupt(off, absl::StrCat("chunk length ", std::max(c.stored_len, c.raw_len),
                                       " exceeds the maximum ", kTraceMaxChunkBytes));
    }
    const bool zstd = (c.flags & kChunkZstd) != 0;
    if (!zstd && c.stored_len != c.raw_len) {
      return Corrupt(off, "uncompressed chunk with different stored and raw lengths");
    }
    if (c.raw_len % 8 != 0 || c.record_count == 0 ||
        c.record_count > c.raw_len / sizeof(fl_record_header)) {
      return Corrupt(off, absl::StrCat("chunk of ", c.raw_len, " bytes cannot hold ",
                                       c.record_count, " records"));
    }
    if (c.stored_len > remaining - sizeof(c)) {
      MarkTruncated(off);
      return absl::OkStatus();
    }
    stored.resize((c.stored_len + 7) / 8);
    auto* stored_bytes_ptr = reinterpret_cast<uint8_t*>(stored.data());
    RETURN_IF_ERROR(PreadAll(fd, stored_bytes_ptr, c.stored_len, off + sizeof(c), path));
    if (Crc32c(stored_bytes_ptr, c.stored_len) != c.payload_crc) {
      return Corrupt(off, "chunk payload checksum mismatch");
    }
    const uint8_t* payload = stored_bytes_ptr;
    if (zstd) {
      if (dctx == nullptr) {
        dctx = ZSTD_createDCtx();
        if (dctx == nullptr) return absl::ResourceExhaustedError("ZSTD_createDCtx failed");
      }
      raw.resize(c.raw_len / 8);
      const size_t n =
          ZSTD_decompressDCtx(dctx, raw.data(), c.raw_len, stored_bytes_ptr, c.stored_len);
      if (ZSTD_isError(n)) {
        return Corrupt(off, absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
      }
      if (n != c.raw_len) {
        return Corrupt(off, absl::StrCat("decompressed to ", n, " bytes, header says ",
                                         c.raw_len));
      }
      payload = reinterpret_cast<const uint8_t*>(raw.data());
    }
    // Validate every record now so a bad chunk yields no records at all.
    size_t pos = 0;
    uint32_t count = 0;
    uint64_t first_ts = 0, last_ts = 0;
    while (pos < c.raw_len) {
      const size_t avail = c.raw_len - pos;
      if (avail < sizeof(fl_record_header)) {
        return Corrupt(off, absl::StrCat("record ", count, " at payload byte ", pos,
                                         ": only ", avail, " bytes left for its header"));
      }
      const auto* rec = reinterpret_cast<const fl_record_header*>(payload + pos);
      if (absl::Status s = ValidateRecord(*rec, avail, allow_unknown_kinds); !s.ok()) {
        return Corrupt(off, absl::StrCat("record ", count, " at payload byte ", pos, ": ",
                                         s.message()));
      }
      if (count == 0) first_ts = rec->ts_ns;
      last_ts = rec->ts_ns;
      pos += rec->size;
      ++count;
    }
    if (count != c.record_count) {
      return Corrupt(off, absl::StrCat("chunk holds ", count, " records, header says ",
                                       c.record_count));
    }
    if (first_ts != c.first_ts || last_ts != c.last_ts) {
      return Corrupt(off, "chunk header timestamps do not match its records");
    }
    chunk_offset = off;
    next_chunk = data_end = off + sizeof(c) + c.stored_len;
    data = payload;
    data_len = c.raw_len;
    cursor = 0;
    ++chunks;
    stored_bytes += c.stored_len;
    raw_bytes += c.raw_len;
    return absl::OkStatus();
  }
};

absl::StatusOr<std::unique_ptr<TraceReader>> TraceReader::Open(const std::string& path) {
  std::unique_ptr<TraceReader> r(new TraceReader());
  r->impl_ = std::make_unique<Impl>();
  Impl& im = *r->impl_;
  im.path = path;
  im.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (im.fd < 0) return ErrnoStatus(errno, absl::StrCat("trace ", path, ": open"));
  struct stat st;
  if (::fstat(im.fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("trace ", path, ": fstat"));
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("trace ", path, ": not a regular file"));
  }
  im.file_size = static_cast<uint64_t>(st.st_size);
  RETURN_IF_ERROR(im.ReadFileHeader());
  return r;
}

TraceReader::~TraceReader() = default;

const TraceHeader& TraceReader::header() const { return impl_->header; }

absl::StatusOr<const fl_record_header*> TraceReader::Next() {
  Impl& im = *impl_;
  RETURN_IF_ERROR(im.failed);
  while (im.cursor >= im.data_len) {
    if (im.done) return nullptr;
    im.data_len = im.cursor = 0;
    if (absl::Status s = im.LoadChunk(); !s.ok()) {
      im.failed = s;
      return s;
    }
  }
  const auto* rec = reinterpret_cast<const fl_record_header*>(im.data + im.cursor);
  im.cursor += rec->size;  // validated in LoadChunk
  ++im.records;
  return rec;
}

bool TraceReader::truncated() const { return impl_->truncated; }
std::string TraceReader::truncation_note() const { return impl_->note; }
uint64_t TraceReader::offset() const { return impl_->chunk_offset; }
bool TraceReader::closed() const { return impl_->closed; }
uint64_t TraceReader::data_end_offset() const { return impl_->data_end; }
uint64_t TraceReader::file_size() const { return impl_->file_size; }
uint64_t TraceReader::chunks_read() const { return impl_->chunks; }
uint64_t TraceReader::records_read() const { return impl_->records; }
uint64_t TraceReader::stored_payload_bytes() const { return impl_->stored_bytes; }
uint64_t TraceReader::raw_payload_bytes() const { return impl_->raw_bytes; }
uint16_t TraceReader::format_minor() const { return impl_->format_minor; }

}  // namespace fraglab
