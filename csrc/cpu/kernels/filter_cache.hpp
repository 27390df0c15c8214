// Transformed filters kept between inference passes. A forward pass first rearranges its filters: the
// direct kernel packs them into blocks of output channels (conv_tile.hpp's pack), Winograd transforms
// them into A x A points (winograd.hpp's filter_transform). At small batches that is much of the pass
// (a 64 -> 128 5x5 stride-2 layer at batch 16 packs 0.8 MB of filters, Winograd's transform of a
// 4x4 stride-2 layer through space to depth writes 4.7 MB). An inference pass (hdl::keep_filters, which
// Model.forward sets) over filters that hold the values the previous inference pass saw at their address
// (filters_hold: a sample of 256 of them) keeps what it makes, with a copy of the filters it came from, and
// a later pass over the same filters (the same address and the same values: compared in full, so that a
// weight changed in place is never missed) reads it instead of making it again. Training passes keep
// nothing (their weights change every step), and nor does an inference after each training step: its
// filters never hold, so that it costs the sample and runs training's algorithms. A pass over held filters
// chooses its algorithms apart from training's, timed reading them kept (hdl/autotune.hpp's kept passes):
// with the transform paid once, Winograd serves a batch of one 8x8 map. At most kFilterCacheBytes are
// kept, the least recently used given up first.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "buffer.hpp"
#include "hdl/autotune.hpp"
#include "hdl/common.hpp"

namespace hdl {
namespace HDL_ISA {

constexpr std::size_t kFilterCacheBytes = std::size_t(64) << 20;

// What a kept transform is: its kind and parameters (the caller's eight), the filters' address and count.
using FilterKey = std::array<int64, 10>;

template <class T>
class FilterCache {
 public:
  struct Entry {
    Buffer<T> w, out;  // the filters, and what was made from them
    std::uint64_t used = 0;
  };

  static FilterCache& instance() {
    static FilterCache cache;
    return cache;
  }

  // The entry for key made from exactly w[0 .. count), or none.
  std::shared_ptr<const Entry> find(const FilterKey& key, const T* w, int64 count) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end() ||
        std::memcmp(it->second->w.data(), w, std::size_t(count) * sizeof(T)) != 0)
      return {};
    it->second->used = ++clock_;
    return it->second;
  }

  // The entry under key, taken out of the cache to be made again in its own memory (fresh pages for a large
  // transform cost more page faults than the transform: 0.4 ms for 512 KB), or none when absent or in use.
  std::shared_ptr<Entry> take(const FilterKey& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = entries_.find(key);
    if (it == entries_.end() || it->second.use_count() > 1) return {};
    std::shared_ptr<Entry> e = std::move(it->second);
    bytes_ -= size_of(*e);
    entries_.erase(it);
    return e;
  }

  // Keeps e under key (replacing what was there), then gives up the least recently used entries past the budget.
  void keep(const FilterKey& key, std::shared_ptr<Entry> e) {
    std::lock_guard<std::mutex> lock(mutex_);
    e->used = ++clock_;
    auto& slot = entries_[key];
    if (slot) bytes_ -= size_of(*slot);
    bytes_ += size_of(*e);
    slot = std::move(e);
    while (bytes_ > kFilterCacheBytes && entries_.size() > 1) {
      auto oldest = entries_.begin();
      for (auto it = entries_.begin(); it != entries_.end(); ++it)
        if (it->second->used < oldest->second->used) oldest = it;
      bytes_ -= size_of(*oldest->second);
      entries_.erase(oldest);
    }
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_.clear();
    bytes_ = 0;
  }

  static std::size_t size_of(const Entry& e) { return (e.w.size() + e.out.size()) * sizeof(T); }

 private:
  std::mutex mutex_;
  std::map<FilterKey, std::shared_ptr<Entry>> entries_;
  std::size_t bytes_ = 0;
  std::uint64_t clock_ = 0;
};

// A hash of 256 of w's values, spread over it: tells filters that a training step changed (every weight with
// a gradient or a decay moves) from the same ones passed again, at the cost of 256 loads, not a pass over w.
template <class T>
std::uint64_t sample_of(const T* w, int64 count) {
  std::uint64_t h = 1469598103934665603ull;
  const int64 step = std::max<int64>(1, count / 256);
  for (int64 i = 0; i < count; i += step) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, w + i, sizeof(T));
    h = (h ^ bits) * 1099511628211ull;
  }
  return h;
}

// Whether the filters w[0 .. count) hold the sample that the last inference pass over them saw at their
// address (none seen: no), remembering this pass's. At most kSampledFilters addresses are remembered.
constexpr std::size_t kSampledFilters = 4096;

template <class T>
bool filters_hold(const T* w, int64 count) {
  static std::mutex mutex;
  static std::map<std::pair<std::uintptr_t, int64>, std::uint64_t> seen;
  const std::uint64_t sample = sample_of(w, count);
  std::lock_guard<std::mutex> lock(mutex);
  if (seen.size() >= kSampledFilters) seen.clear();
  const auto [it, first] = seen.try_emplace({reinterpret_cast<std::uintptr_t>(w), count}, sample);
  const bool same = !first && it->second == sample;
  it->second = sample;
  return same;
}

// The transform of the filters w[0 .. count) that make(out) writes into `size` values: kept from an earlier
// inference pass over the same values, or made now (and kept, where the filters hold: filters_held; else into
// fallback(), a scratch buffer, as training passes do). The result stays valid until this thread's next call.
template <class T, class Fallback, class Make>
const T* kept_filters(FilterKey key, const T* w, int64 count, int64 size, Fallback&& fallback, Make&& make) {
  thread_local std::shared_ptr<const typename FilterCache<T>::Entry> held;  // the entry this thread is reading
  held.reset();
  const std::size_t bytes = std::size_t(count + size) * sizeof(T);
  if (!filters_held() || !w || 2 * bytes > kFilterCacheBytes) {
    T* out = fallback();
    make(out);
    return out;
  }
  key[8] = int64(reinterpret_cast<std::uintptr_t>(w));
  key[9] = count;
  auto& cache = FilterCache<T>::instance();
  if ((held = cache.find(key, w, count))) return held->out.data();
  auto e = cache.take(key);  // its memory, reused
  if (!e) e = std::make_shared<typename FilterCache<T>::Entry>();
  e->w.assign(w, w + count);
  e->out.resize(std::size_t(size));
  make(e->out.data());
  held = e;
  cache.keep(key, std::move(e));
  return held->out.data();
}

}  // namespace HDL_ISA
}  // namespace hdl
