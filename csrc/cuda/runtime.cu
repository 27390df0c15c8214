// The GPU hdl uses, its streams, and error reporting (csrc/include/hdl/cuda/memory.hpp): errors
// that may not throw where they happen (destructors) or that CUDA reports late (a kernel's fault)
// are kept and raised, with the kernels' names, by the next hdl call.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <vector>

#include "hdl/cuda/memory.hpp"

namespace hdl::cuda {

namespace detail {
Runtime& runtime() {
  static Runtime r{[](void** p, std::size_t n) { return cudaMalloc(p, n); },
                   cudaFree,
                   [](cudaStream_t* s) { return cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); },
                   cudaStreamSynchronize,
                   cudaDeviceSynchronize,
                   cudaSetDevice,
                   cudaGetDeviceCount,
                   cudaGetLastError,
                   cudaPeekAtLastError};
  return r;
}
}  // namespace detail

namespace {

using detail::runtime;

struct State {
  std::mutex mutex;
  std::string pending;          // the first error recorded where it could not be thrown
  std::deque<std::string> recent;  // kernels launched since the last synchronisation (the latest 16)
  int device = -1;              // chosen on first use
  int sync_launches = -1;       // HDL_CUDA_SYNC, read on first use
  std::vector<cudaStream_t> streams, copy_streams;  // per device, created on first use
};

State& state() {
  static State* s = new State;  // never destroyed: used during interpreter shutdown
  return *s;
}

// Errors a kernel leaves on the context (sticky): CUDA reports them at some later call.
bool kernel_fault(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress: case cudaErrorLaunchFailure: case cudaErrorAssert:
    case cudaErrorMisalignedAddress: case cudaErrorIllegalInstruction: case cudaErrorInvalidPc:
    case cudaErrorHardwareStackError: case cudaErrorLaunchTimeout: case cudaErrorInvalidAddressSpace:
      return true;
    default:
      return false;
  }
}

std::string recent_kernels(State& s) {
  std::string names;
  for (const auto& k : s.recent) names += (names.empty() ? "" : ", ") + k;
  return names.empty() ? "none recorded" : names;
}

std::string describe(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

}  // namespace

void check(cudaError_t status, const char* what, const char* file, int line) {
  if (status == cudaSuccess) return;
  runtime().last_error();  // clear a non-sticky error so later calls can proceed
  std::string msg = std::string("CUDA error in ") + what + " (" + file + ":" + std::to_string(line) +
                    "): " + describe(status);
  if (kernel_fault(status)) {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    msg += "; raised by a kernel launched since the last synchronisation (" + recent_kernels(s) +
           "); HDL_CUDA_SYNC=1 checks every launch and names the one";
  }
  throw std::runtime_error(msg);
}

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t status = runtime().device_count(&n);
  if (status != cudaSuccess) {
    if (why) *why = describe(status);
    runtime().last_error();
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device";
  return n;
}

namespace {
int chosen_device(State& s) {  // under s.mutex
  if (s.device < 0) {
    const char* env = std::getenv("HDL_DEVICE");
    int d = 0;
    if (env && *env) {
      char* end = nullptr;
      const long v = std::strtol(env, &end, 10);
      if (*end || v < 0 || v > 1023)
        throw std::invalid_argument(std::string("HDL_DEVICE must be a GPU number (0, 1, ...), got '") + env + "'");
      d = int(v);
    }
    s.device = d;
  }
  return s.device;
}
thread_local int t_device = -1;  // the device this thread last made current
}  // namespace

int device() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return chosen_device(s);
}

void set_device(int i) {
  const int n = device_count();
  if (i < 0 || i >= n)
    throw std::invalid_argument("hdl.cuda.set_device(" + std::to_string(i) + "): this machine has " +
                                std::to_string(n) + " GPU" + (n == 1 ? "" : "s"));
  const AllocatorStats a = allocator_stats();
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (i == chosen_device(s)) return;
  if (a.in_use_bytes || a.cached_bytes || a.exported_pending_bytes)
    throw std::runtime_error("hdl.cuda.set_device(" + std::to_string(i) + "): hdl holds memory on GPU " +
                             std::to_string(s.device) + "; choose the GPU before the first device array "
                             "(or free them all and call hdl.cuda.empty_cache())");
  s.device = i;
}

void record_error(const std::string& what) noexcept {
  try {
    std::fprintf(stderr, "hdl.cuda: %s\n", what.c_str());
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.pending.empty()) s.pending = what;
  } catch (...) {
  }
}

void enter() {
  State& s = state();
  int d;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.pending.empty()) {
      std::string e;
      e.swap(s.pending);
      throw std::runtime_error("hdl.cuda: an earlier error: " + e);
    }
    d = chosen_device(s);
  }
  if (t_device != d) {
    HDL_CUDA_CHECK(runtime().set_device(d));
    t_device = d;
  }
  const cudaError_t earlier = runtime().peek_error();  // a fault of an earlier kernel, now known
  if (kernel_fault(earlier)) {
    std::lock_guard<std::mutex> lock(s.mutex);
    throw std::runtime_error("hdl.cuda: a kernel failed: " + describe(earlier) +
                             "; kernels launched since the last synchronisation: " + recent_kernels(s) +
                             " (HDL_CUDA_SYNC=1 checks every launch and names the one)");
  }
  HDL_CUDA_CHECK(earlier);
}

namespace {
cudaStream_t stream_of(std::vector<cudaStream_t> State::*which) {
  enter();
  State& s = state();
  cudaError_t status = cudaSuccess;
  cudaStream_t made = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto& streams = s.*which;
    if (int(streams.size()) <= s.device) streams.resize(s.device + 1, nullptr);
    if (!streams[s.device]) status = runtime().stream_create(&streams[s.device]);
    made = streams[s.device];
  }
  HDL_CUDA_CHECK(status);  // outside the lock: check() may take it
  return made;
}
}  // namespace

cudaStream_t stream() { return stream_of(&State::streams); }
cudaStream_t copy_stream() { return stream_of(&State::copy_streams); }

void synchronize() {
  HDL_CUDA_CHECK(runtime().stream_sync(stream()));
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.recent.clear();
}

void wait_for_stream_noexcept() noexcept {
  try {
    synchronize();
  } catch (const std::exception& e) {
    record_error(e.what());
  }
}

void set_sync_launches(bool on) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.sync_launches = on;
}

bool sync_launches() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.sync_launches < 0) {
    const char* env = std::getenv("HDL_CUDA_SYNC");
    s.sync_launches = env && *env && std::string(env) != "0";
  }
  return s.sync_launches != 0;
}

void launched(const char* kernel, cudaStream_t st) {
  {
    State& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.recent.emplace_back(kernel);
    if (s.recent.size() > 16) s.recent.pop_front();
  }
  const cudaError_t launch = runtime().last_error();
  if (kernel_fault(launch)) check(launch, kernel, __FILE__, __LINE__);  // an earlier kernel's fault
  if (launch != cudaSuccess)
    throw std::runtime_error(std::string("hdl.cuda: launching kernel ") + kernel + " failed: " + describe(launch));
  if (!sync_launches()) return;
  const cudaError_t run = runtime().stream_sync(st);
  if (run != cudaSuccess)
    throw std::runtime_error(std::string("hdl.cuda: kernel ") + kernel + " failed: " + describe(run) +
                             " (found by HDL_CUDA_SYNC)");
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.recent.clear();
}

}  // namespace hdl::cuda
