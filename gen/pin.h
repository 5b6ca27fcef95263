// Unmovable kernel memory, made for real and held until released: pipe
// buffers (pipes filled and never read), page tables (sparse touches, one per
// 2 MiB or per 1 GiB of address space), socket buffers (loopback TCP with
// unread data) and long-term pins (io_uring fixed buffers, FOLL_LONGTERM).
// Each pin measures how many kernel pages it actually took.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gen/context.h"

namespace fraglab::gen {

enum class PinKind { kPipe, kPageTable2M, kPageTable1G, kSocket, kLongterm };

const char* PinKindName(PinKind kind);

struct PinResult {
  PinKind kind = PinKind::kPipe;
  uint64_t requested = 0;      // bytes (pipe, socket, longterm) or touches (page tables)
  uint64_t objects = 0;        // pipes, socket pairs, touches, registered buffers
  uint64_t pages_measured = 0; // kernel pages taken, as measured
  std::string measured_by;     // where pages_measured comes from
  uint64_t memfree_drop = 0;   // MemFree before - after (bytes; noisy cross-check)
  uint64_t duration_ns = 0;
  std::vector<std::string> notes;
};

// Holds what a pin op created; the destructor gives it all back (closes fds,
// unmaps, unregisters) and returns the reservation to the ledger.
class Pin {
 public:
  virtual ~Pin() = default;
  const PinResult& result() const { return result_; }

 protected:
  PinResult result_;
};

// Pipes filled with `bytes` in total (whole pages), never read. Each pipe is
// grown to fs.pipe-max-size first. Measured by FIONREAD over the pipes.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Pin>> PinPipes(uint64_t bytes, OpContext& ctx);

// `touches` read faults, one per 2 MiB (kPageTable2M: one PTE page each) or
// per 1 GiB (kPageTable1G: one PMD and one PTE page each) of a sparse
// reserved mapping. Read faults map the shared zero page, so only page
// tables are allocated. Measured by the VmPTE delta in /proc/self/status.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Pin>> PinPageTables(PinKind kind, uint64_t touches,
                                                                 OpContext& ctx);

// Loopback TCP connections whose receivers never read, filled until the
// kernel holds `bytes` of socket buffers in total. Measured by the TCP "mem"
// (pages) delta in /proc/net/sockstat.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Pin>> PinSockets(uint64_t bytes, OpContext& ctx);

// `bytes` of anonymous base pages registered as io_uring fixed buffers
// (pinned with FOLL_LONGTERM). Measured by the VmPin delta of this process.
// FailedPrecondition when io_uring is disabled (kernel.io_uring_disabled).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Pin>> PinLongterm(uint64_t bytes, OpContext& ctx);

// Dispatches on kind; `amount` is bytes, or touches for page tables.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Pin>> MakePin(PinKind kind, uint64_t amount,
                                                           OpContext& ctx);

}  // namespace fraglab::gen
