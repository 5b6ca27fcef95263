// libFuzzer target: the trace reader must turn any byte string into records
// or a named error, never a crash, hang or unbounded allocation. Each input
// is written to a memfd and opened by path like a real file; every record
// read is also rendered through RecordToJson (the export path).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/trace_file.h"
#include "common/trace_records.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
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
    return 0;
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
  return 0;
}
