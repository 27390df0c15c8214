// Device memory, the stream and pinned host buffers of the CUDA backend: plain C++17
// over the CUDA runtime, no Python. Every hdl kernel runs on one stream per process
// (hdl::cuda::stream()), so a block returned to the cache can be handed out again at
// once: later work on the same stream is ordered after the work that used it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace hdl::cuda {

// Throws std::runtime_error naming the call, the file and line, and CUDA's message.
void check(cudaError_t status, const char* what, const char* file, int line);
#define HDL_CUDA_CHECK(call) ::hdl::cuda::check((call), #call, __FILE__, __LINE__)

// Number of usable GPUs, 0 (never an exception) where there is no driver or device;
// `why` receives CUDA's reason in that case.
int device_count(std::string* why = nullptr);

// The stream every hdl kernel runs on (created non-blocking on first use).
cudaStream_t stream();
void synchronize();

// A caching allocator over cudaMalloc (never managed memory). Sizes are rounded up to
// 512 bytes (2 MiB above 1 MiB); freed blocks are kept and reused for requests they fit
// within a quarter of their size. empty_cache() gives the unused blocks back to CUDA.
void* device_alloc(std::size_t bytes);
void device_free(void* p);
void empty_cache();
struct AllocatorStats {
  std::size_t in_use_bytes, cached_bytes, cuda_mallocs;
};
AllocatorStats allocator_stats();

// A scratch buffer from the caching allocator, given back when it goes out of scope.
class Scratch {
 public:
  explicit Scratch(std::size_t bytes) : p_(bytes ? device_alloc(bytes) : nullptr) {}
  ~Scratch() {
    if (p_) device_free(p_);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

// Page-locked host memory (cudaHostAlloc), so that cudaMemcpyAsync copies overlap the kernels.
void* pinned_alloc(std::size_t bytes);
void pinned_free(void* p);

// TensorFloat-32 in the GEMM-shaped kernels (dense and convolution): off by default.
void set_tf32(bool on);
bool tf32();

// Tile shapes of those kernels: automatic (narrow tiles for narrow outputs) or square 64x64 only,
// kept as a switch so that a benchmark can time both in one run.
enum class GemmTiles : int { automatic = 0, square = 1 };
void set_gemm_tiles(GemmTiles tiles);
GemmTiles gemm_tiles();

}  // namespace hdl::cuda
