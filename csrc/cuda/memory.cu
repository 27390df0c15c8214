// The caching allocator and pinned buffers (csrc/include/hdl/cuda/memory.hpp); the device, the
// streams and the errors are in runtime.cu.
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "hdl/cuda/memory.hpp"

namespace hdl::cuda {

namespace {

using detail::runtime;

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free;      // size -> block, ready for hdl's stream
  std::vector<std::pair<std::size_t, void*>> lent;  // freed exported blocks: other streams may still read them
  std::unordered_map<void*, std::pair<std::size_t, bool>> used;  // block -> size, exported
  std::size_t in_use = 0, cached = 0, lent_bytes = 0, mallocs = 0, device_syncs = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: blocks may be freed during interpreter shutdown
  return *c;
}

std::size_t rounded(std::size_t bytes) {
  const std::size_t unit = bytes > (std::size_t(1) << 20) ? (std::size_t(2) << 20) : 512;
  return (bytes + unit - 1) / unit * unit;
}

void release_free_blocks(Cache& c) {
  for (auto& [size, p] : c.free) {
    runtime().free(p);
    c.cached -= size;
  }
  c.free.clear();
}

// Once the whole device is idle, no consumer's stream reads the lent blocks: they join the cache.
cudaError_t reclaim_lent(Cache& c) {
  if (c.lent.empty()) return cudaSuccess;
  const cudaError_t status = runtime().device_sync();
  ++c.device_syncs;
  if (status != cudaSuccess) return status;
  for (auto& [size, p] : c.lent) {
    c.free.emplace(size, p);
    c.cached += size;
  }
  c.lent_bytes = 0;
  c.lent.clear();
  return cudaSuccess;
}

void* take_free(Cache& c, std::size_t size) {  // a cached block within a quarter of size, or null
  auto it = c.free.lower_bound(size);
  if (it == c.free.end() || it->first > size + size / 4) return nullptr;
  void* p = it->second;
  c.used[p] = {it->first, false};
  c.in_use += it->first;
  c.cached -= it->first;
  c.free.erase(it);
  return p;
}

}  // namespace

void* device_alloc(std::size_t bytes) {
  enter();
  Cache& c = cache();
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(c.mutex);
  if (void* p = take_free(c, size)) return p;
  bool lent_fits = false;
  for (auto& [s, p] : c.lent) lent_fits = lent_fits || (s >= size && s <= size + size / 4);
  if (lent_fits) {  // one device-wide wait frees every lent block, cheaper than a cudaMalloc
    HDL_CUDA_CHECK(reclaim_lent(c));
    if (void* p = take_free(c, size)) return p;
  }
  void* p = nullptr;
  cudaError_t status = runtime().malloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {  // give the cache back and try once more
    runtime().last_error();
    HDL_CUDA_CHECK(reclaim_lent(c));
    release_free_blocks(c);
    status = runtime().malloc(&p, size);
  }
  if (status != cudaSuccess)
    check(status, ("cudaMalloc of " + std::to_string(size) + " bytes").c_str(), __FILE__, __LINE__);
  c.used[p] = {size, false};
  c.in_use += size;
  ++c.mallocs;
  return p;
}

void device_free(void* p) noexcept {
  if (!p) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.used.find(p);
  if (it == c.used.end()) {
    record_error("freeing a pointer the allocator does not own (" + std::to_string(reinterpret_cast<std::uintptr_t>(p)) + ")");
    return;
  }
  const auto [size, exported] = it->second;
  c.in_use -= size;
  c.used.erase(it);
  try {
    if (exported) {
      c.lent.emplace_back(size, p);
      c.lent_bytes += size;
    } else {
      c.free.emplace(size, p);
      c.cached += size;
    }
  } catch (...) {  // no memory for the bookkeeping: give the block back to CUDA
    runtime().free(p);
  }
}

void mark_exported(void* p) {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.used.find(p);
  if (it == c.used.end()) throw std::invalid_argument("hdl.cuda: marking a pointer the allocator does not own");
  it->second.second = true;
}

void empty_cache() {
  enter();
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  HDL_CUDA_CHECK(reclaim_lent(c));
  release_free_blocks(c);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.in_use, c.cached, c.mallocs, c.lent_bytes, c.device_syncs};
}

void* pinned_alloc(std::size_t bytes) {
  void* p = nullptr;
  HDL_CUDA_CHECK(cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocDefault));
  return p;
}

void pinned_free(void* p) noexcept {
  if (!p) return;
  const cudaError_t status = cudaFreeHost(p);
  if (status != cudaSuccess) record_error(std::string("cudaFreeHost: ") + cudaGetErrorString(status));
}

namespace {
bool g_tf32 = false;
GemmTiles g_tiles = GemmTiles::automatic;
}  // namespace
void set_tf32(bool on) { g_tf32 = on; }
bool tf32() { return g_tf32; }
void set_gemm_tiles(GemmTiles tiles) { g_tiles = tiles; }
GemmTiles gemm_tiles() { return g_tiles; }

}  // namespace hdl::cuda
