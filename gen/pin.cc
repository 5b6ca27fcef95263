#include "gen/pin.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "gen/anon.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t MemFree() {
  auto kv = ReadKeyValueFile("/proc/meminfo");
  return kv.ok() ? ValueOr0(*kv, "MemFree") : 0;
}

// MemFree that went away since it was `free0` (0 when it grew).
uint64_t MemFreeDropSince(uint64_t free0) {
  const uint64_t free1 = MemFree();
  return free0 > free1 ? free0 - free1 : 0;
}

// Pages by which the /proc/self/status field `key` (VmPTE, VmPin) grew since
// `before` was read; 0 when it shrank or either read failed.
uint64_t StatusGrowthPages(const absl::StatusOr<std::map<std::string, uint64_t>>& before, const char* key) {
  auto now = ReadKeyValueFile("/proc/self/status");
  if (!before.ok() || !now.ok()) return 0;
  const uint64_t a = ValueOr0(*before, key), b = ValueOr0(*now, key);
  return b > a ? (b - a) / kPageBytes : 0;
}

// Raises the soft fd limit to the hard one: pins can need thousands of fds.
void RaiseFdLimit() {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Base for every pin: returns the ledger reservation when destroyed.
class ReservedPin : public Pin {
 public:
  ReservedPin(MemoryLedger* ledger, uint64_t reserved) : ledger_(ledger), reserved_(reserved) {}
  ~ReservedPin() override { ledger_->Release(reserved_); }
  PinResult& mutable_result() { return result_; }

 private:
  MemoryLedger* ledger_;
  uint64_t reserved_;
};

class FdPin final : public ReservedPin {
 public:
  using ReservedPin::ReservedPin;
  ~FdPin() override {
    for (int fd : fds_) ::close(fd);
  }
  void Add(int fd) { fds_.push_back(fd); }

 private:
  std::vector<int> fds_;
};

class MappingPin final : public ReservedPin {
 public:
  MappingPin(MemoryLedger* ledger, uint64_t reserved, void* addr, size_t len)
      : ReservedPin(ledger, reserved), addr_(addr), len_(len) {}
  ~MappingPin() override {
    if (ring_ok_) {
      io_uring_unregister_buffers(&ring_);
      io_uring_queue_exit(&ring_);
    }
    ::munmap(addr_, len_);
  }
  struct io_uring* ring() { return &ring_; }
  void set_ring_ok() { ring_ok_ = true; }

 private:
  void* addr_;
  size_t len_;
  struct io_uring ring_ = {};
  bool ring_ok_ = false;
};

uint64_t SockstatTcpMemPages() {
  auto text = ReadSetting("/proc/net/sockstat");
  if (!text.ok()) return 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    if (!absl::StartsWith(line, "TCP:")) continue;
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      uint64_t v = 0;
      if (parts[i] == "mem" && absl::SimpleAtoi(parts[i + 1], &v)) return v;
    }
  }
  return 0;
}

}  // namespace

const char* PinKindName(PinKind kind) {
  switch (kind) {
    case PinKind::kPipe: return "pipe";
    case PinKind::kPageTable2M: return "pagetable_2m";
    case PinKind::kPageTable1G: return "pagetable_1g";
    case PinKind::kSocket: return "socket";
    case PinKind::kLongterm: return "longterm";
  }
  return "?";
}

absl::StatusOr<std::unique_ptr<Pin>> PinPipes(uint64_t bytes, OpContext& ctx) {
  if (bytes == 0) return absl::InvalidArgumentError("pin pipe: size is 0");
  bytes = (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
  RETURN_IF_ERROR(ctx.ledger->Reserve(bytes, "pin pipe"));
  auto pin = std::make_unique<FdPin>(ctx.ledger, bytes);
  PinResult& r = pin->mutable_result();
  r.kind = PinKind::kPipe;
  r.requested = bytes;
  r.measured_by = "FIONREAD over the pipes (bytes buffered / 4 KiB, one page per 4 KiB write)";
  RaiseFdLimit();
  auto max_size = ReadUint("/proc/sys/fs/pipe-max-size");
  const int pipe_size = static_cast<int>(max_size.ok() ? *max_size : 1 << 20);
  const uint64_t free0 = MemFree();
  const uint64_t t0 = NowNs();
  static char page[kPageBytes] = {1};
  uint64_t written = 0;
  std::vector<int> read_ends;
  while (written < bytes) {
    if (ctx.stop->requested()) return ctx.stop->StoppedStatus("pin pipe");
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
      return ErrnoStatus(errno, absl::StrCat("pin pipe: pipe2 (after ", r.objects, " pipes)"));
    }
    pin->Add(fds[0]);
    pin->Add(fds[1]);
    read_ends.push_back(fds[0]);
    ++r.objects;
    if (::fcntl(fds[1], F_SETPIPE_SZ, pipe_size) < 0 && r.notes.empty()) {
      r.notes.push_back(absl::StrCat("F_SETPIPE_SZ ", pipe_size, " refused (errno ", errno,
                                     "): pipes keep their default 16 pages"));
    }
    for (;;) {
      if (written >= bytes) break;
      ssize_t n = ::write(fds[1], page, kPageBytes);
      if (n < 0) {
        if (errno == EAGAIN) break;  // this pipe is full
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "pin pipe: write");
      }
      written += static_cast<uint64_t>(n);
    }
  }
  for (int fd : read_ends) {
    int q = 0;
    if (::ioctl(fd, FIONREAD, &q) == 0) r.pages_measured += (static_cast<uint64_t>(q) + kPageBytes - 1) / kPageBytes;
  }
  r.duration_ns = NowNs() - t0;
  r.memfree_drop = MemFreeDropSince(free0);
  return std::unique_ptr<Pin>(std::move(pin));
}

absl::StatusOr<std::unique_ptr<Pin>> PinPageTables(PinKind kind, uint64_t touches,
                                                   OpContext& ctx) {
  if (touches == 0) return absl::InvalidArgumentError("pin page tables: 0 touches");
  const uint64_t span = kind == PinKind::kPageTable1G ? (1ULL << 30) : kPmdBytes;
  const uint64_t tables_per_touch = kind == PinKind::kPageTable1G ? 2 : 1;
  const uint64_t reserve = touches * tables_per_touch * kPageBytes;
  if (touches > (1ULL << 47) / span / 2) {
    return absl::InvalidArgumentError(absl::StrCat("pin page tables: ", touches, " touches of ",
                                                   HumanBytes(span), " exceed the address space"));
  }
  RETURN_IF_ERROR(ctx.ledger->Reserve(reserve, "pin page tables"));
  const size_t len = touches * span + span;
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ctx.ledger->Release(reserve);
    return ErrnoStatus(err, absl::StrCat("pin page tables: reserve ", HumanBytes(len),
                                         " of address space"));
  }
  auto pin = std::make_unique<MappingPin>(ctx.ledger, reserve, p, len);
  PinResult& r = pin->mutable_result();
  r.kind = kind;
  r.requested = touches;
  // VmPTE counts this process's page tables at every level (PTE, PMD, PUD), so
  // other processes starting or exiting cannot disturb it the way they disturb
  // the machine-wide PageTables line of /proc/meminfo.
  r.measured_by = "VmPTE delta in /proc/self/status";
  // A huge zero page would map at PMD level without any PTE page.
  ::madvise(p, len, MADV_NOHUGEPAGE);
  auto aligned = reinterpret_cast<volatile char*>(
      (reinterpret_cast<uintptr_t>(p) + span - 1) & ~(span - 1));
  auto st0 = ReadKeyValueFile("/proc/self/status");
  const uint64_t free0 = MemFree();
  const uint64_t t0 = NowNs();
  uint64_t sink = 0;
  for (uint64_t i = 0; i < touches; ++i) {
    if (i % 4096 == 0 && ctx.stop->requested()) return ctx.stop->StoppedStatus("pin page tables");
    sink += static_cast<uint64_t>(aligned[i * span]);
    ++r.objects;
  }
  (void)sink;
  r.duration_ns = NowNs() - t0;
  r.pages_measured = StatusGrowthPages(st0, "VmPTE");
  r.memfree_drop = MemFreeDropSince(free0);
  return std::unique_ptr<Pin>(std::move(pin));
}

absl::StatusOr<std::unique_ptr<Pin>> PinSockets(uint64_t bytes, OpContext& ctx) {
  if (bytes == 0) return absl::InvalidArgumentError("pin socket: size is 0");
  RETURN_IF_ERROR(ctx.ledger->Reserve(bytes, "pin socket"));
  auto pin = std::make_unique<FdPin>(ctx.ledger, bytes);
  PinResult& r = pin->mutable_result();
  r.kind = PinKind::kSocket;
  r.requested = bytes;
  r.measured_by = "TCP mem (pages) delta in /proc/net/sockstat";
  RaiseFdLimit();

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return ErrnoStatus(errno, "pin socket: socket");
  pin->Add(lfd);
  // Buffers per side; set before listen/connect so the window scale fits.
  const int kBuf = 4 << 20;
  auto set_bufs = [&](int fd) {
    // SO_*BUFFORCE (root) lifts the net.core.*mem_max caps; fall back quietly.
    if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kBuf, sizeof(kBuf)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kBuf, sizeof(kBuf));
    }
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kBuf, sizeof(kBuf)) != 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kBuf, sizeof(kBuf));
    }
  };
  set_bufs(lfd);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t alen = sizeof(addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(lfd, 128) != 0 ||
      ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) {
    return ErrnoStatus(errno, "pin socket: listen on 127.0.0.1");
  }
  const uint64_t mem0 = SockstatTcpMemPages();
  const uint64_t free0 = MemFree();
  const uint64_t t0 = NowNs();
  static char chunk[64 << 10];
  const uint64_t target_pages = bytes / kPageBytes;
  const uint64_t max_conns = bytes / (64 << 10) + 16;  // a bound if the kernel caps buffers low
  uint64_t sent = 0;
  while (r.objects < max_conns) {
    uint64_t now_pages = SockstatTcpMemPages();
    if (now_pages >= mem0 + target_pages || sent >= bytes) break;
    if (ctx.stop->requested()) return ctx.stop->StoppedStatus("pin socket");
    int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) return ErrnoStatus(errno, "pin socket: socket");
    pin->Add(c);
    set_bufs(c);
    if (::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return ErrnoStatus(errno, "pin socket: connect to loopback listener");
    }
    int a = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (a < 0) return ErrnoStatus(errno, "pin socket: accept");
    pin->Add(a);  // accepted and never read
    ::fcntl(c, F_SETFL, ::fcntl(c, F_GETFL) | O_NONBLOCK);
    ++r.objects;
    for (;;) {
      const uint64_t left = bytes - sent;
      if (left == 0) break;
      ssize_t n = ::send(c, chunk, std::min<uint64_t>(sizeof(chunk), left), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) break;
        return ErrnoStatus(errno, "pin socket: send");
      }
      sent += static_cast<uint64_t>(n);
    }
  }
  r.duration_ns = NowNs() - t0;
  const uint64_t mem1 = SockstatTcpMemPages();
  r.pages_measured = mem1 > mem0 ? mem1 - mem0 : 0;
  r.memfree_drop = MemFreeDropSince(free0);
  r.notes.push_back(absl::StrCat(HumanBytes(sent), " sent unread over ", r.objects,
                                 " loopback connections"));
  return std::unique_ptr<Pin>(std::move(pin));
}

absl::StatusOr<std::unique_ptr<Pin>> PinLongterm(uint64_t bytes, OpContext& ctx) {
  if (bytes == 0) return absl::InvalidArgumentError("pin longterm: size is 0");
  bytes = (bytes + kPageBytes - 1) / kPageBytes * kPageBytes;
  auto disabled = ReadUint("/proc/sys/kernel/io_uring_disabled");
  if (disabled.ok() && *disabled == 2) {
    return absl::FailedPreconditionError(
        "pin longterm: io_uring is disabled (kernel.io_uring_disabled=2)");
  }
  RETURN_IF_ERROR(ctx.ledger->Reserve(bytes, "pin longterm"));
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    ctx.ledger->Release(bytes);
    return ErrnoStatus(err, absl::StrCat("pin longterm: mmap ", HumanBytes(bytes)));
  }
  auto pin = std::make_unique<MappingPin>(ctx.ledger, bytes, p, bytes);
  PinResult& r = pin->mutable_result();
  r.kind = PinKind::kLongterm;
  r.requested = bytes;
  r.measured_by = "VmPin delta in /proc/self/status (io_uring accounts pinned pages there)";
  // Base pages: pins then hold 4 KiB pages scattered over movable blocks.
  ::madvise(p, bytes, MADV_NOHUGEPAGE);
  auto st0 = ReadKeyValueFile("/proc/self/status");
  const uint64_t free0 = MemFree();
  const uint64_t t0 = NowNs();
  for (uint64_t off = 0; off < bytes; off += kPageBytes) static_cast<char*>(p)[off] = 1;
  int rc = io_uring_queue_init(4, pin->ring(), 0);
  if (rc < 0) {
    return ErrnoStatus(-rc, "pin longterm: io_uring_queue_init (io_uring unavailable?)");
  }
  pin->set_ring_ok();
  // At most 16384 buffers of at most 1 GiB each (the kernel's limits).
  uint64_t chunk = std::max<uint64_t>(1 << 20, (bytes + 16383) / 16384);
  chunk = std::min<uint64_t>((chunk + kPageBytes - 1) / kPageBytes * kPageBytes, 1ULL << 30);
  std::vector<struct iovec> iov;
  for (uint64_t off = 0; off < bytes; off += chunk) {
    iov.push_back({static_cast<char*>(p) + off, static_cast<size_t>(std::min(chunk, bytes - off))});
  }
  rc = io_uring_register_buffers(pin->ring(), iov.data(), static_cast<unsigned>(iov.size()));
  if (rc < 0) {
    return ErrnoStatus(-rc, absl::StrCat("pin longterm: io_uring_register_buffers of ", iov.size(),
                                         " buffers, ", HumanBytes(bytes),
                                         " (RLIMIT_MEMLOCK when not root)"));
  }
  r.objects = iov.size();
  r.duration_ns = NowNs() - t0;
  r.pages_measured = StatusGrowthPages(st0, "VmPin");
  r.memfree_drop = MemFreeDropSince(free0);
  return std::unique_ptr<Pin>(std::move(pin));
}

absl::StatusOr<std::unique_ptr<Pin>> MakePin(PinKind kind, uint64_t amount, OpContext& ctx) {
  switch (kind) {
    case PinKind::kPipe: return PinPipes(amount, ctx);
    case PinKind::kPageTable2M:
    case PinKind::kPageTable1G: return PinPageTables(kind, amount, ctx);
    case PinKind::kSocket: return PinSockets(amount, ctx);
    case PinKind::kLongterm: return PinLongterm(amount, ctx);
  }
  return absl::InternalError("unknown pin kind");
}

}  // namespace fraglab::gen
