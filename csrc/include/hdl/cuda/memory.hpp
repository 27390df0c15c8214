// Device memory, the streams, error reporting and pinned host buffers of the CUDA backend: plain
// C++17 over the CUDA runtime, no Python. Every hdl kernel runs on one stream per process
// (hdl::cuda::stream()), so a block returned to the cache can be handed out again at
// once: later work on the same stream is ordered after the work that used it.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <stdexcept>
#include <string>

namespace hdl::cuda {

// Throws std::runtime_error naming the call, the file and line, and CUDA's message; a fault of a
// kernel (illegal address, ...) also names the kernels launched since the last synchronisation.
void check(cudaError_t status, const char* what, const char* file, int line);
#define HDL_CUDA_CHECK(call) ::hdl::cuda::check((call), #call, __FILE__, __LINE__)

// Number of usable GPUs, 0 (never an exception) where there is no driver or device;
// `why` receives CUDA's reason in that case.
int device_count(std::string* why = nullptr);

// The GPU hdl uses: HDL_DEVICE (default 0), or set_device(i) before hdl holds device memory.
// Every call below makes it the calling thread's current device.
int device();
void set_device(int i);

// The stream every hdl kernel runs on (created non-blocking on first use), and the stream of
// uploads (copy_stream), ordered against it by events.
cudaStream_t stream();
cudaStream_t copy_stream();
void synchronize();

// Called at the start of every hdl call that touches the GPU: raises the error a destructor or an
// earlier asynchronous fault left behind, and makes hdl's GPU the current device.
void enter();
// Errors where no exception may escape (destructors): logged to stderr, raised by the next enter().
void record_error(const std::string& what) noexcept;
// Waits for hdl's stream without throwing (errors are recorded).
void wait_for_stream_noexcept() noexcept;

// After each kernel launch: cudaGetLastError, and with HDL_CUDA_SYNC=1 (or set_sync_launches(true))
// a synchronisation, so that a fault names its kernel. Keeps the names for later messages.
void launched(const char* kernel, cudaStream_t s);
void set_sync_launches(bool on);
bool sync_launches();

// A caching allocator over cudaMalloc (never managed memory). Sizes are rounded up to
// 512 bytes (2 MiB above 1 MiB); freed blocks are kept and reused for requests they fit
// within a quarter of their size. A block marked exported (lent through DLPack or
// __cuda_array_interface__, so other streams may still read it) is kept apart when freed and
// reused only after a device-wide synchronisation. empty_cache() gives the unused blocks back.
// device_free never throws (an unknown pointer is recorded, see enter()).
void* device_alloc(std::size_t bytes);
void device_free(void* p) noexcept;
void mark_exported(void* p);
void empty_cache();
struct AllocatorStats {
  std::size_t in_use_bytes, cached_bytes, cuda_mallocs, exported_pending_bytes, device_syncs;
};
AllocatorStats allocator_stats();

// A scratch buffer from the caching allocator, given back when it goes out of scope.
class Scratch {
 public:
  explicit Scratch(std::size_t bytes) : p_(bytes ? device_alloc(bytes) : nullptr) {}
  ~Scratch() { device_free(p_); }
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
void pinned_free(void* p) noexcept;

// TensorFloat-32 in the GEMM-shaped kernels (dense and convolution): off by default.
void set_tf32(bool on);
bool tf32();

// Tile shapes of those kernels: automatic (narrow tiles for narrow outputs) or square 64x64 only,
// kept as a switch so that a benchmark can time both in one run.
enum class GemmTiles : int { automatic = 0, square = 1 };
void set_gemm_tiles(GemmTiles tiles);
GemmTiles gemm_tiles();

}  // namespace hdl::cuda

namespace hdl::cuda::detail {
// The CUDA runtime calls memory.cu makes, in one table, so that the test emulation
// (tests/cuda_emu/emulate.cu) runs the allocator and the error reporting on host stand-ins.
struct Runtime {
  cudaError_t (*malloc)(void**, std::size_t);
  cudaError_t (*free)(void*);
  cudaError_t (*stream_create)(cudaStream_t*);
  cudaError_t (*stream_sync)(cudaStream_t);
  cudaError_t (*device_sync)();
  cudaError_t (*set_device)(int);
  cudaError_t (*device_count)(int*);
  cudaError_t (*last_error)();  // cudaGetLastError
  cudaError_t (*peek_error)();  // cudaPeekAtLastError
};
Runtime& runtime();
}  // namespace hdl::cuda::detail
