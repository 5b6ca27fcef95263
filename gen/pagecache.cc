#include "gen/pagecache.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "gen/sysfs.h"

namespace fraglab::gen {
namespace {

std::atomic<int> g_fs_seq{0};
std::atomic<int> g_pc_seq{0};

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Runs argv[0] (searched in PATH and /sbin dirs) and waits; its output goes
// to a pipe returned in the error message when it fails.
absl::Status RunTool(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe for mkfs output");
  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::setenv("PATH", "/usr/sbin:/sbin:/usr/bin:/bin", 0);
    std::string path = std::string(::getenv("PATH")) + ":/usr/sbin:/sbin";
    ::setenv("PATH", path.c_str(), 1);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) output.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return absl::FailedPreconditionError(absl::StrCat(argv[0], " not found (install e2fsprogs/xfsprogs)"));
  }
  return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " failed (status ", status,
                                          "): ", output));
}

absl::Status AttachLoop(const std::string& image, const std::string& want_device,
                        std::string* device, OpContext& ctx) {
  int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return ErrnoStatus(errno, "open /dev/loop-control");
  int nr = ::ioctl(ctl, LOOP_CTL_GET_FREE);
  int err = errno;
  ::close(ctl);
  if (nr < 0) return ErrnoStatus(err, "LOOP_CTL_GET_FREE");
  *device = absl::StrCat("/dev/loop", nr);
  (void)want_device;
  RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kLoop, *device, ""}));
  int dev = ::open(device->c_str(), O_RDWR | O_CLOEXEC);
  if (dev < 0) return ErrnoStatus(errno, absl::StrCat("open ", *device));
  int file = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
  if (file < 0) {
    err = errno;
    ::close(dev);
    return ErrnoStatus(err, absl::StrCat("open image ", image));
  }
  struct loop_config cfg = {};
  cfg.fd = static_cast<uint32_t>(file);
  // Direct I/O: the image's own page cache would double every cached page.
  cfg.info.lo_flags = LO_FLAGS_DIRECT_IO;
  int rc = ::ioctl(dev, LOOP_CONFIGURE, &cfg);
  err = errno;
  if (rc != 0 && err == EINVAL) {
    cfg.info.lo_flags = 0;  // backing filesystem without O_DIRECT
    rc = ::ioctl(dev, LOOP_CONFIGURE, &cfg);
    err = errno;
  }
  ::close(file);
  ::close(dev);
  if (rc != 0) return ErrnoStatus(err, absl::StrCat("LOOP_CONFIGURE ", *device, " on ", image));
  return absl::OkStatus();
}

}  // namespace

bool KernelSupportsLargeBlocks(std::string* why) {
  struct utsname u;
  ::uname(&u);
  int major = 0, minor = 0;
  std::vector<absl::string_view> parts = absl::StrSplit(u.release, absl::ByAnyChar(".-"));
  if (parts.size() >= 2 && absl::SimpleAtoi(parts[0], &major) && absl::SimpleAtoi(parts[1], &minor)) {
    if (major > 6 || (major == 6 && minor >= 12)) return true;
  }
  if (why != nullptr) {
    *why = absl::StrCat("kernel ", u.release,
                        " predates large block size support (6.12): blocks larger than 4 KiB "
                        "cannot be mounted");
  }
  return false;
}

absl::StatusOr<std::unique_ptr<Filesystem>> Filesystem::Create(const FsParams& params,
                                                               OpContext& ctx) {
  RETURN_IF_ERROR(RequireJournal(ctx, absl::StrCat("a ", params.type, " filesystem")));
  if (!IsRoot()) {
    return absl::FailedPreconditionError(
        absl::StrCat("creating a ", params.type, " filesystem needs root (loop device, mount)"));
  }
  const bool tmpfs = params.type == "tmpfs";
  if (!tmpfs && params.type != "ext4" && params.type != "xfs" && params.type != "btrfs") {
    return absl::InvalidArgumentError(absl::StrCat("unknown filesystem type '", params.type, "'"));
  }
  if (params.block_size > 4096 && !tmpfs) {
    std::string why;
    if (!KernelSupportsLargeBlocks(&why)) return absl::FailedPreconditionError(why);
  }
  std::unique_ptr<Filesystem> fs(new Filesystem());
  fs->params_ = params;
  const int seq = g_fs_seq++;
  fs->mount_point_ = absl::StrCat(ctx.work_dir, "/fs-", seq);
  uint64_t size = std::max<uint64_t>(params.size_bytes, 64ULL << 20);
  if (params.type == "xfs") size = std::max<uint64_t>(size, 320ULL << 20);  // xfs minimum
  if (params.type == "btrfs") size = std::max<uint64_t>(size, 128ULL << 20);
  if (!tmpfs) {
    fs->image_ = absl::StrCat(ctx.work_dir, "/fs-", seq, ".img");
    RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kFile, fs->image_, ""}));
    int fd = ::open(fs->image_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create image ", fs->image_));
    int rc = ::ftruncate(fd, static_cast<off_t>(size));
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus(err, absl::StrCat("size image ", fs->image_));
    RETURN_IF_ERROR(AttachLoop(fs->image_, "", &fs->device_, ctx));
    std::vector<std::string> mkfs;
    if (params.type == "ext4") {
      mkfs = {"mkfs.ext4", "-q", "-F"};
      if (params.block_size != 0) {
        mkfs.push_back("-b");
        mkfs.push_back(std::to_string(params.block_size));
      }
    } else if (params.type == "xfs") {
      mkfs = {"mkfs.xfs", "-q", "-f"};
      if (params.block_size != 0) {
        mkfs.push_back("-b");
        mkfs.push_back(absl::StrCat("size=", params.block_size));
      }
    } else {
      mkfs = {"mkfs.btrfs", "-q", "-f"};
      if (params.block_size != 0) {
        mkfs.push_back("-s");
        mkfs.push_back(std::to_string(params.block_size));
      }
    }
    mkfs.push_back(fs->device_);
    RETURN_IF_ERROR(RunTool(mkfs));
  }
  RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kDir, fs->mount_point_, ""}));
  if (::mkdir(fs->mount_point_.c_str(), 0700) != 0) {
    return ErrnoStatus(errno, absl::StrCat("mkdir ", fs->mount_point_));
  }
  RETURN_IF_ERROR(ctx.journal->Record({JournalEntryKind::kMount, fs->mount_point_, ""}));
  const std::string source = tmpfs ? "fraglab-pagecache" : fs->device_;
  const std::string opts = tmpfs ? absl::StrCat("size=", size) : "";
  if (::mount(source.c_str(), fs->mount_point_.c_str(), params.type.c_str(), MS_NOSUID | MS_NODEV,
              opts.empty() ? nullptr : opts.c_str()) != 0) {
    const int err = errno;
    if (err == EINVAL && params.block_size > 4096) {
      return absl::FailedPreconditionError(
          absl::StrCat("the kernel refused to mount ", params.type, " with ", params.block_size,
                       "-byte blocks (EINVAL): no large block size support for it"));
    }
    return ErrnoStatus(err, absl::StrCat("mount ", params.type, " ", source, " at ", fs->mount_point_));
  }
  fs->mounted_ = true;
  return fs;
}

Filesystem::~Filesystem() {
  if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0) {
    ::umount2(mount_point_.c_str(), MNT_DETACH);
  }
  if (!mount_point_.empty()) ::rmdir(mount_point_.c_str());
  if (!device_.empty()) {
    int fd = ::open(device_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      ::ioctl(fd, LOOP_CLR_FD, 0);
      ::close(fd);
    }
  }
  if (!image_.empty()) ::unlink(image_.c_str());
}

std::string Filesystem::Describe() const {
  return absl::StrCat(params_.type, params_.block_size ? absl::StrCat(" (", params_.block_size, "-byte blocks)") : "",
                      device_.empty() ? "" : absl::StrCat(" on ", device_), " at ", mount_point_);
}

void PagecacheSet::DropReservation() {
  ledger_->Release(reserved_);
  reserved_ = 0;
}

PagecacheSet::~PagecacheSet() {
  for (const std::string& f : files) ::unlink(f.c_str());
  fs.reset();
  ledger_->Release(reserved_);
}

absl::StatusOr<std::unique_ptr<PagecacheSet>> FillPagecache(const std::string& dir,
                                                            const PagecacheParams& p,
                                                            OpContext& ctx) {
  if (p.bytes == 0 || p.files == 0 || p.cycles == 0) {
    return absl::InvalidArgumentError("pagecache: size, files and cycles must be >= 1");
  }
  RETURN_IF_ERROR(ctx.ledger->Reserve(p.bytes, "pagecache"));
  auto set = std::make_unique<PagecacheSet>(ctx.ledger, p.bytes);
  PagecacheResult& r = set->result;
  const int seq = g_pc_seq++;
  const uint64_t per_file = (p.bytes / p.files + 4095) / 4096 * 4096;
  for (uint64_t i = 0; i < p.files; ++i) set->files.push_back(absl::StrCat(dir, "/fraglab-pc-", seq, "-", i));
  auto vm0 = ReadKeyValueFile("/proc/vmstat");
  const uint64_t t0 = NowNs();
  static char buf[1 << 16];
  for (size_t k = 0; k < sizeof(buf); ++k) buf[k] = static_cast<char>(k * 31 + 7);

  auto write_all = [&](const std::string& f) -> absl::Status {
    int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("pagecache: create ", f));
    if (p.fadvise >= 0) ::posix_fadvise(fd, 0, 0, p.fadvise);
    for (uint64_t off = 0; off < per_file;) {
      if (ctx.stop->requested()) {
        ::close(fd);
        return ctx.stop->StoppedStatus("pagecache");
      }
      ssize_t n = ::write(fd, buf, std::min<uint64_t>(sizeof(buf), per_file - off));
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, absl::StrCat("pagecache: write ", f, " at ", off));
      }
      off += static_cast<uint64_t>(n);
      r.bytes_written += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return absl::OkStatus();
  };
  auto read_all = [&](const std::string& f) -> absl::Status {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("pagecache: open ", f));
    if (p.fadvise >= 0 && p.fadvise != POSIX_FADV_DONTNEED) ::posix_fadvise(fd, 0, 0, p.fadvise);
    for (;;) {
      if (ctx.stop->requested()) {
        ::close(fd);
        return ctx.stop->StoppedStatus("pagecache");
      }
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        int err = errno;
        ::close(fd);
        return ErrnoStatus(err, absl::StrCat("pagecache: read ", f));
      }
      if (n == 0) break;
      r.bytes_read += static_cast<uint64_t>(n);
    }
    ::close(fd);
    return absl::OkStatus();
  };
  auto drop = [&](const std::string& f) {
    int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ::fdatasync(fd);  // dirty pages are not dropped by DONTNEED
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  };

  if (!p.write) {
    // Make the files, then start each read cycle from an empty cache.
    for (const auto& f : set->files) {
      RETURN_IF_ERROR(write_all(f));
      drop(f);
    }
  }
  for (uint64_t c = 0; c < p.cycles; ++c) {
    for (const auto& f : set->files) RETURN_IF_ERROR(p.write ? write_all(f) : read_all(f));
    ++r.cycles;
    if (p.fadvise == POSIX_FADV_DONTNEED && c + 1 < p.cycles) {
      for (const auto& f : set->files) drop(f);
    }
  }
  r.duration_ns = NowNs() - t0;
  auto vm1 = ReadKeyValueFile("/proc/vmstat");
  if (vm0.ok() && vm1.ok()) {
    r.file_pages_delta = static_cast<int64_t>(ValueOr0(*vm1, "nr_file_pages")) -
                         static_cast<int64_t>(ValueOr0(*vm0, "nr_file_pages"));
  }
  return set;
}

}  // namespace fraglab::gen
