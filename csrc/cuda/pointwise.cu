// ReLU (7.3), leaky ReLU (Section 8), the activations of hdl/activations.hpp and inverted dropout on the
// GPU, one thread per element.
// Dropout draws u_i from the same counter-based hash of (seed, i) as the CPU kernel, so the two
// give the same mask bit for bit.
#include "exec.cuh"
#include "hdl/activations.hpp"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

// A uniform [0, 1) value from (seed, i): splitmix64's finaliser on a Weyl sequence (pointwise.cpp).
HDL_HD inline double hash_uniform(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

struct ReluForward {  // y = x for x > 0, slope x otherwise
  float* y;
  const float* x;
  float slope;
  HDL_HD void operator()(std::int64_t i) const { y[i] = x[i] * (x[i] > 0.0f ? 1.0f : slope); }
};

struct ReluBackward {  // dx = dy where x > 0, slope dy otherwise (dx may be dy)
  float* dx;
  const float *dy, *x;
  float slope;
  HDL_HD void operator()(std::int64_t i) const { dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : slope); }
};

struct DropoutForward {  // mask = 1/(1 - rate) where u_i >= rate, else 0;  y = x mask
  float *y, *mask;
  const float* x;
  double rate;
  float keep;
  std::uint64_t seed;
  HDL_HD void operator()(std::int64_t i) const {
    const float m = hash_uniform(seed, std::uint64_t(i)) >= rate ? keep : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
};

struct CudaMath {
  static HDL_HD float exp(float x) { return expf(x); }
};

template <class S>
struct ActivationForward {  // y = sigma(x)
  float* y;
  const float* x;
  HDL_HD void operator()(std::int64_t i) const { y[i] = S::template forward<CudaMath>(x[i]); }
};

template <class S>
struct ActivationBackward {  // dx = dy sigma'(x), from y = sigma(x) (dx may be dy)
  float* dx;
  const float *dy, *y;
  HDL_HD void operator()(std::int64_t i) const { dx[i] = S::backward(dy[i], y[i]); }
};

struct Multiply {  // out = a o b
  float* out;
  const float *a, *b;
  HDL_HD void operator()(std::int64_t i) const { out[i] = a[i] * b[i]; }
};

}  // namespace

template <class Exec>
void relu_forward_on(const Exec& exec, float* y, const float* x, int64 n, float slope) {
  exec.each(n, ReluForward{y, x, slope});
}
template <class Exec>
void relu_backward_on(const Exec& exec, float* dx, const float* dy, const float* x, int64 n, float slope) {
  exec.each(n, ReluBackward{dx, dy, x, slope});
}
template <class Exec>
void dropout_forward_on(const Exec& exec, float* y, float* mask, const float* x, int64 n, double rate,
                        std::uint64_t seed) {
  exec.each(n, DropoutForward{y, mask, x, rate, float(1.0 / (1.0 - rate)), seed});
}
template <class Exec>
void dropout_backward_on(const Exec& exec, float* dx, const float* dy, const float* mask, int64 n) {
  exec.each(n, Multiply{dx, dy, mask});
}

template <class S, class Exec>
void activation_forward_on(const Exec& exec, float* y, const float* x, int64 n) {
  exec.each(n, ActivationForward<S>{y, x});
}
template <class S, class Exec>
void activation_backward_on(const Exec& exec, float* dx, const float* dy, const float* y, int64 n) {
  exec.each(n, ActivationBackward<S>{dx, dy, y});
}

#define HDL_CUDA_DEFINE_ACTIVATION(K, name, Struct)                                                   \
  void name##_forward(float* y, const float* x, int64 n, cudaStream_t stream) {                       \
    activation_forward_on<activations::Struct>(Device{stream}, y, x, n);                              \
  }                                                                                                   \
  void name##_backward(float* dx, const float* dy, const float* y, int64 n, cudaStream_t stream) {    \
    activation_backward_on<activations::Struct>(Device{stream}, dx, dy, y, n);                        \
  }
HDL_ACTIVATIONS(HDL_CUDA_DEFINE_ACTIVATION, _)
#undef HDL_CUDA_DEFINE_ACTIVATION

void relu_forward(float* y, const float* x, int64 n, float slope, cudaStream_t stream) {
  relu_forward_on(Device{stream}, y, x, n, slope);
}
void relu_backward(float* dx, const float* dy, const float* x, int64 n, float slope, cudaStream_t stream) {
  relu_backward_on(Device{stream}, dx, dy, x, n, slope);
}
void dropout_forward(float* y, float* mask, const float* x, int64 n, double rate, std::uint64_t seed,
                     cudaStream_t stream) {
  dropout_forward_on(Device{stream}, y, mask, x, n, rate, seed);
}
void dropout_backward(float* dx, const float* dy, const float* mask, int64 n, cudaStream_t stream) {
  dropout_backward_on(Device{stream}, dx, dy, mask, n);
}

}  // namespace hdl::cuda
