// /proc/buddyinfo and /proc/pagetypeinfo text for a simulated machine,
// formatted exactly as mm/vmstat.c prints them (field widths included), so
// the same parsers read kernel and simulator output.
#pragma once

#include <string>

#include "sim/page_allocator.h"

namespace fraglab::sim {

// One line per populated zone, nodes in order: "Node N, zone %8s " then
// eleven "%6lu " counts (free blocks per order, all lists, pcp excluded).
std::string RenderBuddyinfo(const PageAllocator& a);

// The pagetypeinfo of every node with memory: header, free list lengths per
// zone x type x order (">100000" once a list reaches 100000, as the kernel
// stops counting there), and the pageblock counts per type. The "mixed
// blocks" table is absent, as on kernels without page_owner enabled.
std::string RenderPagetypeinfo(const PageAllocator& a);

}  // namespace fraglab::sim
