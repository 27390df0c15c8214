// The stream, the caching allocator and pinned buffers (csrc/include/hdl/cuda/memory.hpp).
#include <cuda_runtime.h>

#include <map>
#include <mutex>
#include <unordered_map>

#include "hdl/cuda/memory.hpp"

namespace hdl::cuda {

void check(cudaError_t status, const char* what, const char* file, int line) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so later calls can proceed
  throw std::runtime_error(std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                           "): " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t status = cudaGetDeviceCount(&n);
  if (status != cudaSuccess) {
    if (why) *why = std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
    cudaGetLastError();
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

cudaStream_t stream() {
  static cudaStream_t s = [] {
    cudaStream_t created;
    HDL_CUDA_CHECK(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking));
    return created;
  }();
  return s;
}

void synchronize() { HDL_CUDA_CHECK(cudaStreamSynchronize(stream())); }

namespace {

struct Cache {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free;      // size -> block
  std::unordered_map<void*, std::size_t> used;  // block -> size
  std::size_t in_use = 0, cached = 0, mallocs = 0;
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
    cudaFree(p);
    c.cached -= size;
  }
  c.free.clear();
}

}  // namespace

void* device_alloc(std::size_t bytes) {
  Cache& c = cache();
  const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.free.lower_bound(size);
  if (it != c.free.end() && it->first <= size + size / 4) {
    void* p = it->second;
    c.used[p] = it->first;
    c.in_use += it->first;
    c.cached -= it->first;
    c.free.erase(it);
    return p;
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, size);
  if (status == cudaErrorMemoryAllocation) {  // give the cache back and try once more
    cudaGetLastError();
    release_free_blocks(c);
    status = cudaMalloc(&p, size);
  }
  if (status != cudaSuccess)
    check(status, ("cudaMalloc of " + std::to_string(size) + " bytes").c_str(), __FILE__, __LINE__);
  c.used[p] = size;
  c.in_use += size;
  ++c.mallocs;
  return p;
}

void device_free(void* p) {
  if (!p) return;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  auto it = c.used.find(p);
  if (it == c.used.end()) throw std::runtime_error("hdl.cuda: freeing a pointer the allocator does not own");
  c.free.emplace(it->second, p);
  c.in_use -= it->second;
  c.cached += it->second;
  c.used.erase(it);
}

void empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  release_free_blocks(c);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return {c.in_use, c.cached, c.mallocs};
}

void* pinned_alloc(std::size_t bytes) {
  void* p = nullptr;
  HDL_CUDA_CHECK(cudaHostAlloc(&p, bytes == 0 ? 1 : bytes, cudaHostAllocDefault));
  return p;
}

void pinned_free(void* p) {
  if (p) cudaFreeHost(p);
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
