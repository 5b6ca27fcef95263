#include "common/snapshot_map.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/proc_file.h"
#include "common/status.h"

namespace fraglab::snapshot {

namespace {

constexpr bool Bit(uint64_t flags, int bit) { return (flags >> bit) & 1; }

uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Reads `count` u64 words at word index `index` of a /proc array file.
absl::Status ReadWords(int fd, const std::string& path, uint64_t index, uint64_t* out, size_t count) {
  size_t done = 0;
  while (done < count) {
    ssize_t n = ::pread(fd, reinterpret_cast<char*>(out + done), (count - done) * 8, (index + done) * 8);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      return ErrnoStatus(err, absl::StrCat("read ", path, " at pfn ", index + done));
    }
    if (n == 0) {
      // Past the end (pfns above max_pfn): treat as no page.
      std::fill(out + done, out + count, uint64_t{1} << kKpfNoPage);
      return absl::OkStatus();
    }
    done += static_cast<size_t>(n) / 8;
  }
  return absl::OkStatus();
}

}  // namespace

const char* PageClassName(PageClass c) {
  switch (c) {
    case PageClass::kFree: return "free";
    case PageClass::kAnon: return "anon";
    case PageClass::kFile: return "file";
    case PageClass::kSlab: return "slab";
    case PageClass::kPageTable: return "pagetable";
    case PageClass::kThp: return "thp";
    case PageClass::kHugetlb: return "hugetlb";
    case PageClass::kUnevictable: return "unevictable";
    case PageClass::kReserved: return "reserved";
    case PageClass::kOffline: return "offline";
    case PageClass::kKernelOther: return "kernel-other";
    case PageClass::kUnflagged: return "unflagged";
    case PageClass::kAbsent: return "absent";
    case PageClass::kCount: break;
  }
  return "?";
}

PageClass ClassifyPage(uint64_t flags, uint64_t mapcount) {
  if (Bit(flags, kKpfNoPage)) return PageClass::kAbsent;
  if (Bit(flags, kKpfBuddy)) return PageClass::kFree;
  if (Bit(flags, kKpfOffline)) return PageClass::kOffline;
  if (Bit(flags, kKpfHuge)) return PageClass::kHugetlb;
  if (Bit(flags, kKpfPgtable)) return PageClass::kPageTable;
  if (Bit(flags, kKpfSlab)) return PageClass::kSlab;
  if (Bit(flags, kKpfReserved)) return PageClass::kReserved;
  if (Bit(flags, kKpfThp)) return PageClass::kThp;
  if (Bit(flags, kKpfUnevictable)) return PageClass::kUnevictable;
  if (Bit(flags, kKpfAnon)) return PageClass::kAnon;
  if (Bit(flags, kKpfLru) || Bit(flags, kKpfMmap) || Bit(flags, kKpfSwapcache)) return PageClass::kFile;
  if (flags == 0 && mapcount == 0) return PageClass::kUnflagged;
  return PageClass::kKernelOther;
}

Mobility MobilityOf(PageClass c) {
  switch (c) {
    case PageClass::kAnon:
    case PageClass::kFile:
    case PageClass::kThp:
    case PageClass::kHugetlb:      // movable hugetlb pools are the default on x86-64
    case PageClass::kUnevictable:  // LRU pages, allocated movable
      return Mobility::kMovable;
    case PageClass::kSlab:
      return Mobility::kSlab;
    case PageClass::kPageTable:
    case PageClass::kKernelOther:
    case PageClass::kUnflagged:
      return Mobility::kUnmovable;
    default:
      // Free, absent, offline, and reserved pages: reserved memory was never
      // handed out by the buddy allocator, its block keeps the boot type.
      return Mobility::kNone;
  }
}

TypeNumbers TypeNumbersFor(const std::vector<std::string>& names) {
  TypeNumbers t;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == "Unmovable") t.unmovable = static_cast<int>(i);
    if (names[i] == "Movable") t.movable = static_cast<int>(i);
    if (names[i] == "Reclaimable") t.reclaimable = static_cast<int>(i);
  }
  return t;
}

BlockEstimate EstimateBlockType(const BlockVote& v, const TypeNumbers& numbers) {
  BlockEstimate e;
  if (v.in_zone == 0 || v.absent == v.in_zone) return e;  // nothing online: unknown
  const uint32_t allocated = v.movable + v.unmovable + v.slab;
  if (allocated == 0) {
    e.migratetype = static_cast<uint8_t>(numbers.movable);
    return e;
  }
  if (v.movable >= v.unmovable && v.movable >= v.slab) {
    e.migratetype = static_cast<uint8_t>(numbers.movable);
    e.mixed = v.unmovable + v.slab > 0;
  } else if (v.slab > v.unmovable) {
    e.migratetype = static_cast<uint8_t>(numbers.reclaimable);
    e.mixed = v.movable + v.unmovable > 0;
  } else {
    e.migratetype = static_cast<uint8_t>(numbers.unmovable);
    e.mixed = v.movable + v.slab > 0;
  }
  return e;
}

ZoneMap BuildZoneMap(const ZoneSnapshot& zone, const MachineSnapshot& s, uint64_t first_pfn,
                     absl::Span<const PageClass> classes, absl::Span<const uint64_t> mapcounts) {
  const uint64_t block_pages = uint64_t{1} << s.pageblock_order;
  ZoneMap m;
  m.nid = zone.nid;
  m.zone_idx = zone.zone_idx;
  m.name = zone.name;
  m.start_pfn = zone.start_pfn;
  m.end_pfn = zone.start_pfn + zone.spanned;
  m.first_block_pfn = zone.start_pfn & ~(block_pages - 1);
  m.buddyinfo = zone.nr_free;
  m.free_blocks.assign(std::max<size_t>(zone.nr_free.size(), 1), 0);
  m.estimated_blocks.assign(std::max<size_t>(s.migratetype_names.size(), 3), 0);
  m.reported_blocks = zone.pageblocks;
  const TypeNumbers numbers = TypeNumbersFor(s.migratetype_names);
  const int max_order = static_cast<int>(m.free_blocks.size()) - 1;
  auto class_at = [&](uint64_t pfn) { return classes[pfn - first_pfn]; };

  // Free runs -> largest aligned blocks, the way the buddy allocator merges.
  uint64_t reconstructed_pages = 0;
  for (uint64_t pfn = m.start_pfn; pfn < m.end_pfn;) {
    if (class_at(pfn) != PageClass::kFree) {
      ++pfn;
      continue;
    }
    uint64_t run_end = pfn;
    while (run_end < m.end_pfn && class_at(run_end) == PageClass::kFree) ++run_end;
    while (pfn < run_end) {
      int k = 0;
      while (k < max_order && (pfn & ((uint64_t{2} << k) - 1)) == 0 && pfn + (uint64_t{2} << k) <= run_end) ++k;
      ++m.free_blocks[k];
      reconstructed_pages += uint64_t{1} << k;
      pfn += uint64_t{1} << k;
    }
  }
  m.free_residual_pages = static_cast<int64_t>(zone.BuddyFreePages()) - static_cast<int64_t>(reconstructed_pages);

  // Per pageblock: votes, estimate, free pages.
  const uint64_t last = (m.end_pfn + block_pages - 1) & ~(block_pages - 1);
  for (uint64_t b = m.first_block_pfn; b < last; b += block_pages) {
    BlockVote v;
    uint64_t zero_in_block = 0;
    for (uint64_t pfn = b; pfn < b + block_pages; ++pfn) {
      if (pfn < m.start_pfn || pfn >= m.end_pfn) continue;
      ++v.in_zone;
      const PageClass c = class_at(pfn);
      if (c == PageClass::kUnflagged) ++zero_in_block;
      if (c == PageClass::kFree) ++v.free;
      if (c == PageClass::kAbsent || c == PageClass::kOffline) ++v.absent;
      if (!mapcounts.empty()) {
        const uint64_t mc = mapcounts[pfn - first_pfn];
        m.mapped_pages += mc > 0;
        m.shared_pages += mc > 1;
      }
    }
    // A block whose pages all read 0 is not online memory (hole, unplugged
    // virtio-mem range), not a block full of unflagged kernel pages.
    const bool all_zero = zero_in_block + v.absent == v.in_zone && zero_in_block > 0 && v.free == 0;
    for (uint64_t pfn = b; pfn < b + block_pages; ++pfn) {
      if (pfn < m.start_pfn || pfn >= m.end_pfn) continue;
      PageClass c = class_at(pfn);
      if (all_zero && c == PageClass::kUnflagged) c = PageClass::kAbsent;
      ++m.pages_by_class[static_cast<size_t>(c)];
      switch (MobilityOf(c)) {
        case Mobility::kMovable: ++v.movable; break;
        case Mobility::kUnmovable: ++v.unmovable; break;
        case Mobility::kSlab: ++v.slab; break;
        case Mobility::kNone: break;
      }
    }
    if (all_zero) v.absent = v.in_zone;
    const BlockEstimate e = EstimateBlockType(v, numbers);
    fl_pageblock_entry entry{};
    entry.migratetype = e.migratetype;
    entry.flags = FL_PB_ESTIMATED | (e.mixed ? FL_PB_MIXED : 0) |
                  (b < m.start_pfn || b + block_pages > m.end_pfn ? FL_PB_PARTIAL : 0);
    entry.free_pages = static_cast<uint16_t>(v.free);
    m.blocks.push_back(entry);
    if (e.migratetype == 0xff) {
      ++m.unknown_blocks;
    } else if (e.migratetype < m.estimated_blocks.size()) {
      ++m.estimated_blocks[e.migratetype];
    }
  }
  if (!m.reported_blocks.empty()) {
    uint64_t agree = 0, total = 0;
    for (size_t t = 0; t < m.reported_blocks.size(); ++t) {
      total += m.reported_blocks[t];
      if (t < m.estimated_blocks.size()) agree += std::min(m.reported_blocks[t], m.estimated_blocks[t]);
    }
    m.type_agreement = total == 0 ? 1.0 : static_cast<double>(agree) / static_cast<double>(total);
  }
  return m;
}

absl::StatusOr<MachineMap> ReadMachineMap(const MachineSnapshot& s, const std::string& root) {
  const std::string flags_path = procfs::PathUnderRoot(root, "/proc/kpageflags");
  const std::string count_path = procfs::PathUnderRoot(root, "/proc/kpagecount");
  Fd flags_fd(::open(flags_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (flags_fd.get() < 0) {
    int err = errno;
    absl::Status st = ErrnoStatus(err, absl::StrCat("open ", flags_path));
    if (err == EACCES || err == EPERM) {
      return absl::PermissionDeniedError(absl::StrCat(st.message(), ": the page map needs root"));
    }
    return st;
  }
  Fd count_fd(::open(count_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (count_fd.get() < 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrCat("open ", count_path));
  }
  MachineMap out;
  out.monotonic_ns = MonotonicNs();
  out.pageblock_order = s.pageblock_order;
  out.migratetype_names = s.migratetype_names;
  const uint64_t block_pages = uint64_t{1} << s.pageblock_order;
  constexpr size_t kChunk = 1 << 16;  // pfns per read: 512 KiB of flags
  constexpr size_t kCountRun = 4096;  // granularity of kpagecount reads
  std::vector<uint64_t> flags(kChunk), counts(kChunk);
  std::vector<PageClass> classes;
  for (const ZoneSnapshot& z : s.zones) {
    const uint64_t first = z.start_pfn & ~(block_pages - 1);
    const uint64_t last = (z.start_pfn + z.spanned + block_pages - 1) & ~(block_pages - 1);
    classes.assign(last - first, PageClass::kAbsent);
    // Mapcounts are summarised while reading instead of kept per pfn (8 bytes
    // per page would be 48 MiB for 24 GiB).
    uint64_t mapped = 0, shared = 0;
    for (uint64_t pfn = first; pfn < last; pfn += kChunk) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, last - pfn));
      RETURN_IF_ERROR(ReadWords(flags_fd.get(), flags_path, pfn, flags.data(), n));
      out.pfns_read += n;
      for (size_t run = 0; run < n; run += kCountRun) {
        const size_t rn = std::min(kCountRun, n - run);
        bool has_mapped = false;
        for (size_t i = run; i < run + rn && !has_mapped; ++i) has_mapped = Bit(flags[i], kKpfMmap);
        if (has_mapped) {
          RETURN_IF_ERROR(ReadWords(count_fd.get(), count_path, pfn + run, counts.data() + run, rn));
          out.kpagecount_pfns_read += rn;
        } else {
          std::fill(counts.begin() + static_cast<long>(run), counts.begin() + static_cast<long>(run + rn), 0);
        }
      }
      for (size_t i = 0; i < n; ++i) {
        classes[pfn - first + i] = ClassifyPage(flags[i], counts[i]);
        const uint64_t p = pfn + i;
        if (p >= z.start_pfn && p < z.start_pfn + z.spanned) {
          mapped += counts[i] > 0;
          shared += counts[i] > 1;
        }
      }
    }
    ZoneMap zm = BuildZoneMap(z, s, first, classes);
    zm.mapped_pages = mapped;
    zm.shared_pages = shared;
    out.zones.push_back(std::move(zm));
  }
  return out;
}

absl::Status EmitPageblockMapRecords(const MachineMap& m, EventSink& sink) {
  const uint64_t block_pages = uint64_t{1} << m.pageblock_order;
  std::vector<uint64_t> buf;
  for (const ZoneMap& z : m.zones) {
    for (size_t i = 0; i < z.blocks.size(); i += FL_PB_MAP_MAX_ENTRIES) {
      const size_t count = std::min<size_t>(FL_PB_MAP_MAX_ENTRIES, z.blocks.size() - i);
      const size_t bytes = (sizeof(fl_pageblock_map) + count * sizeof(fl_pageblock_entry) + 7) & ~size_t{7};
      buf.assign(bytes / 8, 0);
      fl_pageblock_map rec;
      InitRecord(rec, FL_EV_PAGEBLOCK_MAP, m.monotonic_ns, 0);
      rec.hdr.size = static_cast<uint32_t>(bytes);
      rec.nid = z.nid;
      rec.zone_idx = z.zone_idx;
      rec.first_pfn = z.first_block_pfn + i * block_pages;
      rec.count = static_cast<uint32_t>(count);
      std::memcpy(buf.data(), &rec, sizeof rec);
      std::memcpy(reinterpret_cast<char*>(buf.data()) + sizeof rec, z.blocks.data() + i,
                  count * sizeof(fl_pageblock_entry));
      RETURN_IF_ERROR(sink.Emit(*reinterpret_cast<const fl_record_header*>(buf.data())));
    }
  }
  return absl::OkStatus();
}

namespace {

char BlockChar(const fl_pageblock_entry& e, const TypeNumbers& t, uint64_t block_pages) {
  if (e.migratetype == 0xff) return ' ';
  if (e.free_pages >= block_pages) return '.';
  char c = '?';
  if (e.migratetype == t.movable) c = 'M';
  else if (e.migratetype == t.unmovable) c = 'U';
  else if (e.migratetype == t.reclaimable) c = 'R';
  if (e.flags & FL_PB_MIXED) c = static_cast<char>(c - 'A' + 'a');
  return c;
}

const char* ColorOf(char c) {
  switch (c) {
    case 'M': case 'm': return "\x1b[32m";
    case 'U': case 'u': return "\x1b[31m";
    case 'R': case 'r': return "\x1b[33m";
    case '.': return "\x1b[2m";
    default: return "";
  }
}

// Appends `head` and the items separated by two spaces, starting a new line
// (indented like the first item) before an item that would pass 98 columns.
void AppendWrapped(std::string* out, const std::string& head, const std::vector<std::string>& items) {
  std::string line = head;
  const std::string indent(head.size(), ' ');
  bool first = true;
  for (const std::string& item : items) {
    if (!first && line.size() + 2 + item.size() > 98) {
      absl::StrAppend(out, line, "\n");
      line = indent;
      first = true;
    }
    absl::StrAppend(&line, first ? "" : "  ", item);
    first = false;
  }
  absl::StrAppend(out, line, "\n");
}

std::vector<std::string> TypeCounts(const std::vector<uint64_t>& v, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (size_t t = 0; t < v.size() && t < names.size(); ++t) {
    out.push_back(absl::StrCat(names[t].substr(0, 5), " ", v[t]));
  }
  return out;
}

}  // namespace

std::string MapText(const MachineMap& m, bool color, int columns) {
  const TypeNumbers t = TypeNumbersFor(m.migratetype_names);
  const uint64_t block_pages = uint64_t{1} << m.pageblock_order;
  std::string out;
  absl::StrAppendFormat(&out,
                        "pageblock map, one character per %u KiB pageblock: M movable, U unmovable,\n"
                        "R reclaimable (estimated from the pages; lower case: also holds pages of another\n"
                        "mobility), . free, blank: no online memory\n",
                        block_pages * 4);
  for (const ZoneMap& z : m.zones) {
    absl::StrAppendFormat(&out, "\nNode %d, zone %s  pfns [0x%x, 0x%x)\n", z.nid, z.name, z.start_pfn, z.end_pfn);
    std::vector<std::string> items;
    for (size_t c = 0; c < kNumPageClasses; ++c) {
      if (z.pages_by_class[c] == 0) continue;
      items.push_back(absl::StrCat(PageClassName(static_cast<PageClass>(c)), " ", z.pages_by_class[c]));
    }
    AppendWrapped(&out, "  pages: ", items);
    absl::StrAppendFormat(&out, "  mapped %u (shared %u)\n", z.mapped_pages, z.shared_pages);
    items.clear();
    for (size_t k = 0; k < z.free_blocks.size(); ++k) {
      items.push_back(absl::StrCat(k, ":", z.free_blocks[k], "/", k < z.buddyinfo.size() ? z.buddyinfo[k] : 0));
    }
    AppendWrapped(&out, "  free blocks per order, ours/buddyinfo: ", items);
    absl::StrAppendFormat(&out, "  residual %d pages (buddyinfo minus reconstructed)\n", z.free_residual_pages);
    items = TypeCounts(z.estimated_blocks, m.migratetype_names);
    items.push_back(absl::StrCat("unknown ", z.unknown_blocks));
    AppendWrapped(&out, "  pageblocks estimated: ", items);
    if (!z.reported_blocks.empty()) {
      items = TypeCounts(z.reported_blocks, m.migratetype_names);
      items.push_back(absl::StrFormat("agreement %.1f%%", 100.0 * z.type_agreement));
      AppendWrapped(&out, "  pagetypeinfo:         ", items);
    }
    const size_t cols = static_cast<size_t>(std::max(columns, 8));
    size_t absent_rows = 0;
    uint64_t absent_from = 0;
    for (size_t i = 0; i < z.blocks.size(); i += cols) {
      std::string row;
      bool any = false;
      char prev = 0;
      for (size_t j = i; j < std::min(z.blocks.size(), i + cols); ++j) {
        const char c = BlockChar(z.blocks[j], t, block_pages);
        any |= c != ' ';
        if (color && c != prev) {
          absl::StrAppend(&row, "\x1b[0m", ColorOf(c));
          prev = c;
        }
        row.push_back(c);
      }
      if (color) absl::StrAppend(&row, "\x1b[0m");
      const uint64_t row_pfn = z.first_block_pfn + i * block_pages;
      if (!any) {
        if (absent_rows++ == 0) absent_from = row_pfn;
        continue;
      }
      if (absent_rows > 0) {
        absl::StrAppendFormat(&out, "  0x%08x  (%u MiB without online memory)\n", absent_from,
                              absent_rows * cols * block_pages * 4 / 1024);
        absent_rows = 0;
      }
      absl::StrAppendFormat(&out, "  0x%08x  %s\n", row_pfn, row);
    }
    if (absent_rows > 0) {
      absl::StrAppendFormat(&out, "  0x%08x  (%u MiB without online memory)\n", absent_from,
                            absent_rows * cols * block_pages * 4 / 1024);
    }
  }
  return out;
}

std::string MapJson(const MachineMap& m, int indent) {
  using json = nlohmann::ordered_json;
  const TypeNumbers t = TypeNumbersFor(m.migratetype_names);
  const uint64_t block_pages = uint64_t{1} << m.pageblock_order;
  json j;
  j["monotonic_ns"] = m.monotonic_ns;
  j["pageblock_order"] = m.pageblock_order;
  j["migratetypes"] = m.migratetype_names;
  j["pfns_read"] = m.pfns_read;
  json zones = json::array();
  for (const ZoneMap& z : m.zones) {
    json jz;
    jz["nid"] = z.nid;
    jz["zone"] = z.name;
    jz["zone_idx"] = z.zone_idx;
    jz["start_pfn"] = z.start_pfn;
    jz["end_pfn"] = z.end_pfn;
    jz["first_block_pfn"] = z.first_block_pfn;
    json classes = json::object();
    for (size_t c = 0; c < kNumPageClasses; ++c) classes[PageClassName(static_cast<PageClass>(c))] = z.pages_by_class[c];
    jz["pages"] = classes;
    jz["mapped_pages"] = z.mapped_pages;
    jz["shared_pages"] = z.shared_pages;
    jz["free_blocks_reconstructed"] = z.free_blocks;
    jz["free_blocks_buddyinfo"] = z.buddyinfo;
    jz["free_residual_pages"] = z.free_residual_pages;
    jz["pageblocks_estimated"] = z.estimated_blocks;
    jz["pageblocks_unknown"] = z.unknown_blocks;
    jz["pageblocks_pagetypeinfo"] = z.reported_blocks;
    jz["type_agreement"] = z.type_agreement < 0 ? json(nullptr) : json(z.type_agreement);
    std::string blocks;
    for (const fl_pageblock_entry& e : z.blocks) blocks.push_back(BlockChar(e, t, block_pages));
    jz["blocks"] = blocks;
    zones.push_back(std::move(jz));
  }
  j["zones"] = std::move(zones);
  return j.dump(indent < 0 ? -1 : indent);
}

}  // namespace fraglab::snapshot
