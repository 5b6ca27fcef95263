// ComputeTraceMetrics lives apart from metrics.cc so that code using only the
// in-memory builder does not pull in the trace reader.
#include "analysis/metrics.h"
#include "common/status.h"

namespace fraglab::analysis {

absl::StatusOr<TraceMetrics> ComputeTraceMetrics(const std::string& path) {
  ASSIGN_OR_RETURN(auto reader, TraceReader::Open(path));
  MetricsBuilder builder(reader->header());
  for (;;) {
    ASSIGN_OR_RETURN(const fl_record_header* rec, reader->Next());
    if (rec == nullptr) break;
    RETURN_IF_ERROR(builder.Emit(*rec));
  }
  return builder.Finish();
}

}  // namespace fraglab::analysis
