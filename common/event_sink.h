// EventSink: where producers (simulator, tracker, generator) put records of
// the shared schema (bpf/fraglab_events.h). The trace writer is one sink;
// tests use VectorSink; TeeSink hands every record to several sinks.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "bpf/fraglab_events.h"
#include "common/check.h"

namespace fraglab {

class EventSink {
 public:
  virtual ~EventSink() = default;
  // Appends one record; `rec.size` bytes starting at &rec are copied before
  // returning. Records must have a valid kind and a size that is a multiple
  // of 8 and at least sizeof(fl_record_header).
  [[nodiscard]] virtual absl::Status Emit(const fl_record_header& rec) = 0;
};

// Keeps every record in memory, in order (for tests and small runs).
class VectorSink final : public EventSink {
 public:
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    const auto* p = reinterpret_cast<const uint8_t*>(&rec);
    offsets_.push_back(bytes_.size());
    bytes_.insert(bytes_.end(), p, p + rec.size);
    return absl::OkStatus();
  }
  size_t size() const { return offsets_.size(); }
  const fl_record_header& at(size_t i) const {
    return *reinterpret_cast<const fl_record_header*>(bytes_.data() + offsets_[i]);
  }
  // Typed view of record i; the caller checks at(i).kind first.
  template <typename T>
  T as(size_t i) const {
    T out;
    std::memcpy(&out, bytes_.data() + offsets_[i], sizeof(T));
    return out;
  }
  void clear() {
    bytes_.clear();
    offsets_.clear();
  }

 private:
  // 8-byte alignment of records is kept because every size is a multiple of 8
  // and vector<uint64_t>-backed storage would be needed for strict alignment;
  // readers use as<T>() (memcpy) rather than the reference where it matters.
  std::vector<uint8_t> bytes_;
  std::vector<size_t> offsets_;
};

// Hands every record to each of its sinks in the order they were given (e.g.
// a metrics builder, then the trace writer). Error rule: the first sink that
// fails ends the record there; later sinks do not see that record and the
// error is returned. So a summary placed after the trace writer counts only
// records the writer accepted. Sinks are not owned and must outlive the tee;
// none may be null.
class TeeSink final : public EventSink {
 public:
  TeeSink() = default;
  explicit TeeSink(std::vector<EventSink*> sinks) : sinks_(std::move(sinks)) {
    for (const EventSink* s : sinks_) FRAGLAB_CHECK(s != nullptr);
  }
  // Appends `sink` after the ones already there.
  void Add(EventSink* sink) {
    FRAGLAB_CHECK(sink != nullptr);
    sinks_.push_back(sink);
  }
  [[nodiscard]] absl::Status Emit(const fl_record_header& rec) override {
    for (EventSink* s : sinks_) {
      absl::Status st = s->Emit(rec);
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<EventSink*> sinks_;
};

// Fills a record header for a fixed-size payload struct.
template <typename T>
inline void InitRecord(T& rec, uint16_t kind, uint64_t ts_ns, uint16_t cpu) {
  std::memset(&rec, 0, sizeof(T));
  rec.hdr.kind = kind;
  rec.hdr.cpu = cpu;
  rec.hdr.size = static_cast<uint32_t>(sizeof(T));
  rec.hdr.ts_ns = ts_ns;
}

}  // namespace fraglab
