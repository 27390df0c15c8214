// The CUDA kernels' bodies run on the CPU (tests only): every csrc/cuda/*.cu in one translation
// unit, its ops instantiated with the Host executor (csrc/cuda/host_exec.cuh), exported with C
// names for ctypes (tests/cuda_emu/emu.py). Nothing here touches a GPU: the CUDA runtime calls of
// runtime.cu and memory.cu (the allocator, the streams, the error reports) go to host stand-ins.
// Every emu_ function returns 0, or 1 (2 for std::invalid_argument) with the exception's message in
// emu_last_error().
#include "../../csrc/cuda/runtime.cu"
#include "../../csrc/cuda/memory.cu"
#include "../../csrc/cuda/host_exec.cuh"
#include "../../csrc/cuda/conv.cu"
#include "../../csrc/cuda/dense.cu"
#include "../../csrc/cuda/loss.cu"
#include "../../csrc/cuda/pointwise.cu"
#include "../../csrc/cuda/pool.cu"
#include "../../csrc/cuda/sgd.cu"
#include "hdl/cuda/dlpack_release.hpp"

using namespace hdl;
using hdl::cuda::Host;
using I = std::int64_t;

namespace {
ConvShape conv_shape(const I* v) { return ConvShape::from_fields(v); }
PoolShape pool_shape(const I* v) { return PoolShape::from_fields(v); }

std::string g_error;        // the last emu_ call's exception
std::string g_log;          // what the stand-ins did, in order: "sync ", "device_sync ", "deleted "
int g_devices = 1;          // GPUs the stand-in runtime reports
int g_current_device = -1;  // its current device

// The host stand-ins of the CUDA runtime: memory is malloc's, a stream is a name, and a kernel's
// injected fault (host_exec.cuh) is the context's sticky error.
const bool g_host_runtime = [] {
  auto& r = cuda::detail::runtime();
  r.malloc = [](void** p, std::size_t n) {
    *p = std::malloc(n);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
  };
  r.free = [](void* p) {
    std::free(p);
    return cudaSuccess;
  };
  r.stream_create = [](cudaStream_t* s) {
    static int streams = 0;
    *s = reinterpret_cast<cudaStream_t>(std::uintptr_t(++streams));
    return cudaSuccess;
  };
  r.stream_sync = [](cudaStream_t) {
    g_log += "sync ";
    return cuda::sticky_error();
  };
  r.device_sync = [] {
    g_log += "device_sync ";
    return cuda::sticky_error();
  };
  r.set_device = [](int d) {
    if (d >= g_devices) return cudaErrorInvalidDevice;
    g_current_device = d;
    return cudaSuccess;
  };
  r.device_count = [](int* n) {
    *n = g_devices;
    return cudaSuccess;
  };
  r.last_error = [] { return cudaSuccess; };  // launches never fail; faults come later
  r.peek_error = [] { return cuda::sticky_error(); };
  return true;
}();
}  // namespace

#define HDL_EMU(...)                         \
  try {                                      \
    __VA_ARGS__;                             \
    return 0;                                \
  } catch (const std::invalid_argument& e) { \
    g_error = e.what();                      \
    return 2;                                \
  } catch (const std::exception& e) {        \
    g_error = e.what();                      \
    return 1;                                \
  }

extern "C" {

const char* emu_last_error() { return g_error.c_str(); }
const char* emu_log() { return g_log.c_str(); }
void emu_clear_log() { g_log.clear(); }

// -- the runtime: faults, launch checks, devices --------------------------------------------------
void emu_inject_fault(const char* kernel) { cuda::injected_fault() = kernel ? kernel : ""; }
void emu_clear_fault() {
  cuda::injected_fault().clear();
  cuda::sticky_error() = cudaSuccess;
}
int emu_set_sync_launches(int on) { HDL_EMU(cuda::set_sync_launches(on != 0)); }
int emu_synchronize() { HDL_EMU(cuda::synchronize()); }
int emu_enter() { HDL_EMU(cuda::enter()); }
void emu_set_device_count(int n) { g_devices = n; }
int emu_set_device(int d) { HDL_EMU(cuda::set_device(d)); }
int emu_device(int* d) { HDL_EMU(*d = cuda::device()); }
int emu_current_device() { return g_current_device; }

// -- the caching allocator ---------------------------------------------------------------------------
int emu_device_alloc(std::size_t bytes, void** p) { HDL_EMU(*p = cuda::device_alloc(bytes)); }
void emu_device_free(void* p) { cuda::device_free(p); }  // noexcept: errors wait for the next call
int emu_mark_exported(void* p) { HDL_EMU(cuda::mark_exported(p)); }
int emu_empty_cache() { HDL_EMU(cuda::empty_cache()); }
void emu_allocator_stats(std::size_t* out) {
  const auto s = cuda::allocator_stats();
  const std::size_t v[] = {s.in_use_bytes, s.cached_bytes, s.cuda_mallocs, s.exported_pending_bytes, s.device_syncs};
  std::memcpy(out, v, sizeof v);
}
void emu_scratch(std::size_t bytes) { cuda::Scratch s(bytes); }  // made and given back

// -- DLPack: an imported tensor of device_type goes back to its producer (the log says when) -----------
void emu_release_imported(int device_type) {
  auto* m = new dlpack::DLManagedTensorVersioned{};
  m->dl_tensor.device = {dlpack::DeviceType(device_type), 0};
  m->deleter = [](dlpack::DLManagedTensorVersioned* self) {
    g_log += "deleted ";
    delete self;
  };
  dlpack::release_imported(m);
}

// -- the GEMM's launch geometry: grid (x, y, z) of an M x N x K product ---------------------------------
int emu_gemm_grid(int M, int N, int K, unsigned* grid) {
  HDL_EMU(cuda::gemm::with_tile(M, N, [&](auto tile) {
    const auto g = cuda::gemm::grid_for<decltype(tile)>(M, N, cuda::gemm::Split{K, 1});
    grid[0] = g.x, grid[1] = g.y, grid[2] = g.z;
  }));
}

// -- the GEMM itself, through the dense layers' loaders: A (M x K) read as stored (Plain, rows lda apart)
// or as the transpose of a K x M matrix (Transposed, its rows lda apart), B likewise; the products of
// the slices of K into part[slice, M, N]. The pointers may be misaligned views.
int emu_gemm(int M, int N, int K, const float* A, int lda, int a_t, const float* B, int ldb, int b_t, float* part,
             int k_per_split, int slices) {
  const cuda::gemm::Split split{k_per_split, slices};
  const cuda::SlicePartial store{part, M, N};
  auto with_b = [&](const auto& a) {
    if (b_t) Host{}.gemm(M, N, K, a, cuda::Transposed{B, ldb}, store, split);
    else Host{}.gemm(M, N, K, a, cuda::Plain{B, ldb}, store, split);
  };
  HDL_EMU(a_t ? with_b(cuda::Transposed{A, lda}) : with_b(cuda::Plain{A, lda}));
}
void emu_split_k(int K, int parts, int* out) {
  const auto s = cuda::gemm::split_k(K, parts);
  out[0] = s.k_per_split, out[1] = s.count;
}
// float4 loads since the last call, and those from misaligned addresses (a fault on the GPU)
void emu_vec4_count(long long* out) {
  auto& c = cuda::gemm::vec4_count();
  out[0] = c.loads, out[1] = c.misaligned;
  c = {};
}

// -- the kernels ---------------------------------------------------------------------------------------------

int emu_set_tf32(int on) {
  HDL_EMU(cuda::set_tf32(on != 0));
}

int emu_set_gemm_tiles(int square) {
  HDL_EMU(cuda::set_gemm_tiles(square ? cuda::GemmTiles::square : cuda::GemmTiles::automatic));
}

int emu_conv2d_forward(float* y, const float* x, const float* w, const float* b, const I* shape, int relu) {
  HDL_EMU(cuda::conv2d_forward_on(Host{}, y, x, w, b, conv_shape(shape), relu != 0));
}
int emu_conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                         const I* shape) {
  HDL_EMU(cuda::conv2d_backward_on(Host{}, dx, dw, db, dy, x, w, conv_shape(shape)));
}
int emu_max_pool2d_forward(float* y, std::int32_t* argmax, const float* x, const I* shape, int relu) {
  HDL_EMU(cuda::max_pool2d_forward_on(Host{}, y, argmax, x, pool_shape(shape), relu != 0));
}
int emu_max_pool2d_backward_argmax(float* dx, const float* dy, const std::int32_t* argmax, const I* shape) {
  HDL_EMU(cuda::max_pool2d_backward_argmax_on(Host{}, dx, dy, argmax, pool_shape(shape)));
}
int emu_max_pool2d_backward(float* dx, const float* dy, const float* x, const I* shape) {
  HDL_EMU(cuda::max_pool2d_backward_on(Host{}, dx, dy, x, pool_shape(shape)));
}
int emu_avg_pool2d_forward(float* y, const float* x, const I* shape) {
  HDL_EMU(cuda::avg_pool2d_forward_on(Host{}, y, x, pool_shape(shape)));
}
#define HDL_EMU_ACTIVATION(K, name, Struct)                                                   \
  int emu_##name##_forward(float* y, const float* x, I n) {                                   \
    HDL_EMU(cuda::activation_forward_on<activations::Struct>(Host{}, y, x, n));               \
  }                                                                                           \
  int emu_##name##_backward(float* dx, const float* dy, const float* y, I n) {                \
    HDL_EMU(cuda::activation_backward_on<activations::Struct>(Host{}, dx, dy, y, n));         \
  }
HDL_ACTIVATIONS(HDL_EMU_ACTIVATION, _)
#undef HDL_EMU_ACTIVATION

int emu_avg_pool2d_backward(float* dx, const float* dy, const I* shape) {
  HDL_EMU(cuda::avg_pool2d_backward_on(Host{}, dx, dy, pool_shape(shape)));
}
int emu_relu_forward(float* y, const float* x, I n, float slope) {
  HDL_EMU(cuda::relu_forward_on(Host{}, y, x, n, slope));
}
int emu_relu_backward(float* dx, const float* dy, const float* x, I n, float slope) {
  HDL_EMU(cuda::relu_backward_on(Host{}, dx, dy, x, n, slope));
}
int emu_dropout_forward(float* y, float* mask, const float* x, I n, double rate, std::uint64_t seed) {
  HDL_EMU(cuda::dropout_forward_on(Host{}, y, mask, x, n, rate, seed));
}
int emu_dropout_backward(float* dx, const float* dy, const float* mask, I n) {
  HDL_EMU(cuda::dropout_backward_on(Host{}, dx, dy, mask, n));
}
int emu_softmax_log_loss(float* dv, double* loss, const float* v, const I* labels, I N, I K) {
  HDL_EMU(cuda::softmax_log_loss_on(Host{}, dv, loss, v, labels, N, K));
}
int emu_top_k(I* idx, const float* v, I N, I K, I k) {
  HDL_EMU(cuda::top_k_on(Host{}, idx, v, N, K, k));
}
int emu_dense_forward(float* a_out, const float* W, const float* b, const float* a_in, I n_out, I n_in, I m, int act,
                       float slope) {
  HDL_EMU(cuda::dense_forward_on(Host{}, a_out, W, b, a_in, n_out, n_in, m, Activation(act), slope));
}
int emu_dense_backward(float* delta, float* dW, float* db, float* g_in, const float* g, const float* a_out,
                        const float* W, const float* a_in, I n_out, I n_in, I m, int act, float slope, float scale) {
  HDL_EMU(cuda::dense_backward_on(Host{}, delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, Activation(act), slope,
                            scale));
}
int emu_sgd_momentum(int count, float** w, float** g, float** v, const I* n, const double* lr_mults,
                      const double* decay_mults, double eta, double mu, double lambda, int form) {
  HDL_EMU(std::vector<ParamSlot<float>> slots;
    for (int i = 0; i < count; ++i) slots.push_back({w[i], g[i], v[i], n[i], lr_mults[i], decay_mults[i]});
    cuda::sgd_momentum_on(Host{}, slots, eta, mu, lambda, MomentumForm(form)));
}

}  // extern "C"
