#include "sim/pageblock_map.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"

namespace fraglab::sim {

std::vector<ZonePageblocks> BuildPageblockMap(const PageAllocator& allocator) {
  std::vector<ZonePageblocks> out;
  const MigratetypeNumbering& num = allocator.numbering();
  for (int zi = 0; zi < allocator.num_zones(); ++zi) {
    const ZoneStats st = allocator.zone_stats(zi);
    if (st.present == 0) continue;
    ZonePageblocks z;
    z.nid = st.node;
    z.zone_idx = static_cast<int>(st.type);
    const uint64_t end = st.start_pfn + st.spanned;
    z.first_pfn = st.start_pfn & ~(kPageblockPages - 1);
    const uint64_t nblocks = (end - z.first_pfn + kPageblockPages - 1) / kPageblockPages;
    z.blocks.assign(nblocks, fl_pageblock_entry{});
    std::vector<uint32_t> present(nblocks, 0);
    std::vector<uint32_t> free_pages(nblocks, 0);
    std::vector<uint8_t> mixed(nblocks, 0);
    std::vector<uint8_t> type(nblocks, 0);
    for (uint64_t b = 0; b < nblocks; ++b) {
      type[b] = static_cast<uint8_t>(allocator.PageblockType(z.first_pfn + b * kPageblockPages));
    }
    // One walk over the zone, jumping over whole buddy / pcp / allocated
    // blocks: only block heads and absent pages are visited one by one.
    uint64_t pfn = st.start_pfn;
    while (pfn < end) {
      const PageInfo info = allocator.Page(pfn);
      if (info.kind == PageInfo::Kind::kNone) {  // absent page (hole) or outside the model
        ++pfn;
        continue;
      }
      const uint64_t n = uint64_t{1} << info.order;
      const uint64_t stop = std::min(pfn + n, end);
      // A block of order 10 covers two pageblocks: account each part to its own.
      for (uint64_t p = pfn; p < stop;) {
        const uint64_t bb = (p - z.first_pfn) / kPageblockPages;
        const uint64_t block_end = z.first_pfn + (bb + 1) * kPageblockPages;
        const uint64_t part = std::min(block_end, stop) - p;
        present[bb] += static_cast<uint32_t>(part);
        if (info.kind == PageInfo::Kind::kFree) free_pages[bb] += static_cast<uint32_t>(part);
        if (info.kind == PageInfo::Kind::kAllocated && info.owner != OwnerKind::kReserved &&
            info.alloc_type != static_cast<MigrateType>(type[bb])) {
          mixed[bb] = 1;
        }
        p += part;
      }
      pfn += n;
    }
    for (uint64_t b = 0; b < nblocks; ++b) {
      fl_pageblock_entry& e = z.blocks[b];
      const uint64_t bstart = z.first_pfn + b * kPageblockPages;
      e.migratetype = present[b] == 0 ? 0xff
                                      : static_cast<uint8_t>(num.Number(static_cast<MigrateType>(type[b])));
      e.free_pages = static_cast<uint16_t>(free_pages[b]);
      e.flags = 0;
      if (bstart < st.start_pfn || bstart + kPageblockPages > end) e.flags |= FL_PB_PARTIAL;
      if (mixed[b]) e.flags |= FL_PB_MIXED;
    }
    out.push_back(std::move(z));
  }
  return out;
}

absl::Status EmitPageblockMap(const std::vector<ZonePageblocks>& map, uint64_t ts, EventSink& sink) {
  // Records are built in a u64 buffer so the header stays 8-byte aligned.
  std::vector<uint64_t> buf;
  for (const ZonePageblocks& z : map) {
    for (size_t first = 0; first < z.blocks.size(); first += FL_PB_MAP_MAX_ENTRIES) {
      const size_t count = std::min<size_t>(FL_PB_MAP_MAX_ENTRIES, z.blocks.size() - first);
      const size_t bytes = (sizeof(fl_pageblock_map) + count * sizeof(fl_pageblock_entry) + 7) / 8 * 8;
      buf.assign(bytes / 8, 0);
      fl_pageblock_map rec;
      InitRecord(rec, FL_EV_PAGEBLOCK_MAP, ts, 0);
      rec.hdr.size = static_cast<uint32_t>(bytes);
      rec.nid = z.nid;
      rec.zone_idx = z.zone_idx;
      rec.first_pfn = z.first_pfn + first * kPageblockPages;
      rec.count = static_cast<uint32_t>(count);
      std::memcpy(buf.data(), &rec, sizeof(rec));
      std::memcpy(reinterpret_cast<uint8_t*>(buf.data()) + sizeof(rec), z.blocks.data() + first,
                  count * sizeof(fl_pageblock_entry));
      absl::Status st = sink.Emit(*reinterpret_cast<const fl_record_header*>(buf.data()));
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

absl::Status EmitAllocatorPageblockMap(const PageAllocator& allocator, EventSink& sink) {
  return EmitPageblockMap(BuildPageblockMap(allocator), allocator.time(), sink);
}

}  // namespace fraglab::sim
