// Human and machine renderings of a MachineSnapshot (common/snapshot_machine.h).
#pragma once

#include <string>

#include "common/snapshot_machine.h"

namespace fraglab::snapshot {

// JSON document (one object; keys documented in docs/snapshot.md). Indices
// appear both as thousandths (exact kernel integers) and as the kernel's text.
// `indent` < 0 gives one line (for appending to JSONL streams).
std::string SnapshotJson(const MachineSnapshot& s, int indent = 2);

// Text report, at most 100 columns: per node/zone a table of orders (free
// blocks, free MiB, free blocks per migratetype, unusable and fragmentation
// index), then pageblocks per type, watermarks, boost and sizes.
std::string SnapshotText(const MachineSnapshot& s);

// Short column label of a migratetype name for narrow tables ("Unmovable" ->
// "Unmov", "HighAtomic" -> "HiAtom").
std::string ShortTypeName(const std::string& name);

}  // namespace fraglab::snapshot
