// Run-time choice of instruction set: the kernels of csrc/cpu/kernels/ are
// compiled once per set (CMakeLists.txt) and each public function here calls
// the copy for the best set this processor supports.
#include <cstdlib>
#include <cstring>

#include "hdl/conv.hpp"
#include "hdl/dense.hpp"
#include "hdl/dispatch.hpp"
#include "hdl/loss.hpp"
#include "hdl/pointwise.hpp"
#include "hdl/pool.hpp"
#include "hdl/sgd.hpp"
#include "hdl/stochastic_gradient.hpp"

#ifdef HDL_HAVE_NATIVE
#define HDL_ISA native
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_AVX512
#define HDL_ISA avx512
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_AVX2
#define HDL_ISA avx2
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_GENERIC
#define HDL_ISA generic
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif

namespace hdl {
namespace {

enum class Isa { native, avx512, avx2, generic };

// HDL_ISA=avx2 or generic in the environment caps the choice (for tests and benchmarks).
Isa detect() {
#ifdef HDL_HAVE_NATIVE
  return Isa::native;
#else
  const char* cap = std::getenv("HDL_ISA");
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return Isa::avx2;
  return Isa::generic;
#endif
}

Isa isa() {
  static const Isa chosen = detect();
  return chosen;
}

}  // namespace

#ifdef HDL_HAVE_NATIVE
#define HDL_DISPATCH(call) return native::call
#else
#define HDL_DISPATCH(call)                  \
  switch (isa()) {                          \
    case Isa::avx512: return avx512::call;  \
    case Isa::avx2: return avx2::call;      \
    default: return generic::call;          \
  }
#endif

const char* isa_name() {
  switch (isa()) {
    case Isa::native: return "native";
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

template <class T>
void dense_forward(T* a_out, const T* W, const T* b, const T* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, T slope) {
  HDL_DISPATCH(dense_forward(a_out, W, b, a_in, n_out, n_in, m, act, slope));
}

template <class T>
void dense_backward(T* delta, T* dW, T* db, T* g_in, const T* g, const T* a_out, const T* W, const T* a_in,
                    int64 n_out, int64 n_in, int64 m, Activation act, T slope, T scale) {
  HDL_DISPATCH(dense_backward(delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale));
}

template <class T>
void gemm(bool trans_a, bool trans_b, int64 M, int64 N, int64 K, T alpha, const T* A, int64 lda, const T* B,
          int64 ldb, T beta, T* C, int64 ldc) {
  HDL_DISPATCH(gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc));
}

template <class T>
double quadratic_cost(T* g, const T* a, const T* y, int64 n, int64 m, double scale) {
  HDL_DISPATCH(quadratic_cost(g, a, y, n, m, scale));
}

template <class T>
double sgd_train(const std::vector<DenseLayerRef<T>>& layers, const T* X, const T* Y, int64 N,
                 const SGDConfig& config, double* cost_history) {
  HDL_DISPATCH(sgd_train(layers, X, Y, N, config, cost_history));
}

template <class T>
double network_cost(const std::vector<DenseLayerRef<T>>& layers, const T* X, const T* Y, int64 N, double lambda) {
  HDL_DISPATCH(network_cost(layers, X, Y, N, lambda));
}

template <class T>
void max_pool2d_forward(T* y, std::int32_t* argmax, const T* x, const PoolShape& s, bool relu) {
  HDL_DISPATCH(max_pool2d_forward(y, argmax, x, s, relu));
}
template <class T>
void max_pool2d_backward_argmax(T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s) {
  HDL_DISPATCH(max_pool2d_backward_argmax(dx, dy, argmax, s));
}
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s) {
  HDL_DISPATCH(max_pool2d_backward(dx, dy, x, s));
}
template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  HDL_DISPATCH(avg_pool2d_forward(y, x, s));
}
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  HDL_DISPATCH(avg_pool2d_backward(dx, dy, s));
}
template <class T>
void relu_forward(T* y, const T* x, int64 n, T slope) {
  HDL_DISPATCH(relu_forward(y, x, n, slope));
}
template <class T>
void relu_backward(T* dx, const T* dy, const T* x, int64 n, T slope) {
  HDL_DISPATCH(relu_backward(dx, dy, x, n, slope));
}
template <class T>
void dropout_forward(T* y, T* mask, const T* x, int64 n, double rate, std::uint64_t seed) {
  HDL_DISPATCH(dropout_forward(y, mask, x, n, rate, seed));
}
template <class T>
double softmax_log_loss(T* dv, const T* v, const std::int64_t* labels, int64 N, int64 K) {
  HDL_DISPATCH(softmax_log_loss(dv, v, labels, N, K));
}
template <class T>
void top_k(std::int64_t* idx, const T* v, int64 N, int64 K, int64 k) {
  HDL_DISPATCH(top_k(idx, v, N, K, k));
}
template <class T>
void sgd_momentum(const std::vector<ParamSlot<T>>& slots, double eta, double mu, double lambda, MomentumForm form) {
  HDL_DISPATCH(sgd_momentum(slots, eta, mu, lambda, form));
}

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, bool relu) {
  HDL_DISPATCH(conv2d_forward(y, x, w, b, s, relu));
}
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  HDL_DISPATCH(conv2d_backward(dx, dw, db, dy, x, w, s));
}

double fma_peak_gflops(double seconds) { HDL_DISPATCH(fma_peak_gflops(seconds)); }

#define HDL_INSTANTIATE(T)                                                                                    \
  template void dense_forward<T>(T*, const T*, const T*, const T*, int64, int64, int64, Activation, T);       \
  template void dense_backward<T>(T*, T*, T*, T*, const T*, const T*, const T*, const T*, int64, int64, int64, \
                                  Activation, T, T);                                                          \
  template double quadratic_cost<T>(T*, const T*, const T*, int64, int64, double);                            \
  template void gemm<T>(bool, bool, int64, int64, int64, T, const T*, int64, const T*, int64, T, T*, int64);   \
  template double sgd_train<T>(const std::vector<DenseLayerRef<T>>&, const T*, const T*, int64,               \
                               const SGDConfig&, double*);                                                    \
  template double network_cost<T>(const std::vector<DenseLayerRef<T>>&, const T*, const T*, int64, double);        \
  template void max_pool2d_forward<T>(T*, std::int32_t*, const T*, const PoolShape&, bool);                   \
  template void max_pool2d_backward_argmax<T>(T*, const T*, const std::int32_t*, const PoolShape&);           \
  template void max_pool2d_backward<T>(T*, const T*, const T*, const PoolShape&);                              \
  template void avg_pool2d_forward<T>(T*, const T*, const PoolShape&);                                         \
  template void avg_pool2d_backward<T>(T*, const T*, const PoolShape&);                                        \
  template void relu_forward<T>(T*, const T*, int64, T);                                                       \
  template void relu_backward<T>(T*, const T*, const T*, int64, T);                                            \
  template void dropout_forward<T>(T*, T*, const T*, int64, double, std::uint64_t);                            \
  template double softmax_log_loss<T>(T*, const T*, const std::int64_t*, int64, int64);                        \
  template void top_k<T>(std::int64_t*, const T*, int64, int64, int64);                                        \
  template void sgd_momentum<T>(const std::vector<ParamSlot<T>>&, double, double, double, MomentumForm);       \
  template void conv2d_forward<T>(T*, const T*, const T*, const T*, const ConvShape&, bool);                        \
  template void conv2d_backward<T>(T*, T*, T*, const T*, const T*, const T*, const ConvShape&);
HDL_INSTANTIATE(float)
HDL_INSTANTIATE(double)
#undef HDL_INSTANTIATE

}  // namespace hdl
