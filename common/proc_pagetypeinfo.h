// /proc/pagetypeinfo (root only): pageblock size, free blocks per zone x
// migratetype x order, and pageblocks per zone x migratetype ("Number of
// blocks type"); "Number of mixed blocks" when the kernel has page_owner on.
// Migratetype numbers are the column order of the tables, which the kernel
// prints in its enum order (reference section 1): with CONFIG_CMA the
// columns are Unmovable Movable Reclaimable HighAtomic CMA Isolate, without
// it Isolate is number 4. Old kernels ordered them differently; we never
// assume names, we read them. With several nodes the kernel prints the
// whole file (headers and three tables) once per node with memory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fraglab::procfs {

// The kernel stops counting a free list at this length and prints ">100000".
inline constexpr uint64_t kPagetypeCountCap = 100000;

struct PagetypeZone {
  int nid = 0;
  std::string zone;
  std::vector<std::vector<uint64_t>> free;       // [type][order] free blocks on that list
  std::vector<std::vector<uint8_t>> saturated;   // [type][order] 1: printed ">100000" (lower bound)
  std::vector<uint64_t> blocks;                  // [type] pageblocks; empty if the table lacks the zone
  std::vector<uint64_t> mixed_blocks;            // [type]; empty when the kernel prints no mixed table
  bool AnySaturated() const;
};

struct PagetypeInfo {
  int pageblock_order = 0;                 // "Page block order: 9"
  uint64_t pages_per_block = 0;            // "Pages per block:  512"
  std::vector<std::string> migratetypes;   // index = the kernel's migratetype number
  size_t num_orders = 0;                   // columns of the free table
  bool has_mixed_blocks = false;
  std::vector<PagetypeZone> zones;         // file order

  // Kernel number of the migratetype called `name` (e.g. "Isolate"), or -1.
  int TypeNumber(absl::string_view name) const;
  const PagetypeZone* Find(int nid, absl::string_view zone) const;
};

// Parses the text of /proc/pagetypeinfo. Requires the two header lines and
// the free table; the blocks table gives the migratetype numbering and must
// list the same types in the same order as the free table (a mismatch is an
// error naming the line). Errors are InvalidArgument "<source>:<line>: ...".
[[nodiscard]] absl::StatusOr<PagetypeInfo> ParsePagetypeInfo(
    absl::string_view text, absl::string_view source = "/proc/pagetypeinfo");

// Reads and parses <root>/proc/pagetypeinfo. PermissionDenied when not root
// (the file is mode 0400).
[[nodiscard]] absl::StatusOr<PagetypeInfo> ReadPagetypeInfo(const std::string& root = "/");

}  // namespace fraglab::procfs
