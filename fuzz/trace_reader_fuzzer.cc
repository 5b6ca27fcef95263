// libFuzzer target: the trace reader must turn any byte string into records
// or a named error, never a crash, hang or unbounded allocation. Each input
// is written to a memfd and opened by path like a real file; every record
// read is also rendered through RecordToJson (the export path).
//
// Every input is read twice: as is (checks the checksum and framing paths),
// and with its CRCs recomputed where the layout allows, so mutations reach
// the header JSON parser, the chunk consistency checks, zstd decoding and
// record validation, which random bytes almost never reach past a CRC.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <cstring>
#include <vector>

#include "common/trace_crc32c.h"
#include "common/trace_file.h"
#include "common/trace_records.h"

namespace {

uint32_t Load32(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

void Store32(std::vector<uint8_t>& b, size_t off, uint32_t v) { std::memcpy(b.data() + off, &v, 4); }

// Recomputes the file header and chunk checksums (docs/trace-format.md)
// wherever the bytes needed are present.
void FixChecksums(std::vector<uint8_t>& b) {
  if (b.size() < 24) return;
  const uint32_t json_len = Load32(b, 12);
  if (json_len <= b.size() - 24) Store32(b, 16, fraglab::Crc32c(b.data() + 24, json_len));
  Store32(b, 20, fraglab::Crc32c(b.data(), 20));
  if (json_len > b.size() - 24) return;
  size_t off = 24 + size_t{json_len};
  while (off + 48 <= b.size()) {
    const uint32_t stored = Load32(b, off + 8);
    const bool whole = stored <= b.size() - off - 48;
    if (whole) Store32(b, off + 40, fraglab::Crc32c(b.data() + off + 48, stored));
    Store32(b, off + 44, fraglab::Crc32c(b.data() + off, 44));
    if (!whole) return;
    off += 48 + size_t{stored};
  }
}

void ReadOnce(const uint8_t* data, size_t size) {
  static const int fd = memfd_create("fraglab_trace_fuzz", MFD_CLOEXEC);
  if (fd < 0) std::abort();
  if (ftruncate(fd, 0) != 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto reader = fraglab::TraceReader::Open(path);
  if (!reader.ok()) {
    // Every error must name the file.
    if (std::string(reader.status().message()).find(path) == std::string::npos) std::abort();
    return;
  }
  size_t rendered = 0;
  while (true) {
    auto rec = (*reader)->Next();
    if (!rec.ok()) {
      if (std::string(rec.status().message()).find(path) == std::string::npos) std::abort();
      break;
    }
    if (*rec == nullptr) break;
    if (reinterpret_cast<uintptr_t>(*rec) % 8 != 0) std::abort();
    // Rendering is the slow part: bound it so large inputs do not time out.
    if (rendered++ < 256) {
      (void)fraglab::JsonDump(fraglab::RecordToJson(**rec, (*reader)->header()));
    }
  }
  (void)(*reader)->truncation_note();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ReadOnce(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  FixChecksums(fixed);
  ReadOnce(fixed.data(), fixed.size());
  return 0;
}
