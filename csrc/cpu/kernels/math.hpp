// exp and the activation functions, branch-free so that loops over a batch
// vectorise. exp: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, a Taylor
// polynomial for e^r (truncation error below 2e-16 in double, 6e-9 in float), scaled by 2^n
// built in the exponent bits. Arguments are clamped to keep 2^n normal.
#pragma once
#include <cstdint>
#include <cstring>

#include "hdl/common.hpp"

namespace hdl {
namespace HDL_ISA {

template <class To, class From>
inline To bits_as(From x) {
  static_assert(sizeof(To) == sizeof(From), "bit cast of unequal sizes");
  To y;
  std::memcpy(&y, &x, sizeof(To));
  return y;
}

HDL_ALWAYS_INLINE double exp_(double x) {  // always: in a large file GCC leaves a call, and the loop scalar
  x = x < -708.0 ? -708.0 : (x > 708.0 ? 708.0 : x);
  const double shift = 0x1.8p52;  // adding it rounds to an integer held in the low bits
  const double kd = x * 1.4426950408889634 + shift;
  const double n = kd - shift;
  const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;  // ln2 = hi + lo (fdlibm)
  // e^r = sum_{i<=13} r^i / i!, evaluated by Estrin's scheme (4 dependent steps, not 13).
  const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
  const double p01 = 1.0 + r, p23 = 0.5 + r * (1.0 / 6), p45 = 1.0 / 24 + r * (1.0 / 120),
               p67 = 1.0 / 720 + r * (1.0 / 5040), p89 = 1.0 / 40320 + r * (1.0 / 362880),
               pab = 1.0 / 3628800 + r * (1.0 / 39916800), pcd = 1.0 / 479001600 + r * (1.0 / 6227020800);
  const double q0 = p01 + r2 * p23, q1 = p45 + r2 * p67, q2 = p89 + r2 * pab;
  const double p = (q0 + r4 * q1) + r8 * (q2 + r4 * pcd);
  const std::uint64_t scale = (bits_as<std::uint64_t>(kd) + 1023) << 52;  // 2^n
  return p * bits_as<double>(scale);
}

HDL_ALWAYS_INLINE float exp_(float x) {
  x = x < -87.0f ? -87.0f : (x > 87.0f ? 87.0f : x);
  const float shift = 0x1.8p23f;
  const float kd = x * 1.44269504f + shift;
  const float n = kd - shift;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 = hi - lo (Cephes)
  // e^r = sum_{i<=7} r^i / i! by Estrin's scheme.
  const float r2 = r * r, r4 = r2 * r2;
  const float p01 = 1.0f + r, p23 = 0.5f + r * (1.0f / 6), p45 = 1.0f / 24 + r * (1.0f / 120),
              p67 = 1.0f / 720 + r * (1.0f / 5040);
  const float p = (p01 + r2 * p23) + r4 * (p45 + r2 * p67);
  const std::uint32_t scale = (bits_as<std::uint32_t>(kd) + 127u) << 23;
  return p * bits_as<float>(scale);
}

// sigma(z) for each activation, applied in place to x[0..n-1].
template <class T>
inline void activate(T* HDL_RESTRICT x, int64 n, Activation act, T slope) {
  switch (act) {
    case Activation::linear:
      break;
    case Activation::sigmoid:  // (2.1)
      for (int64 i = 0; i < n; ++i) x[i] = T(1) / (T(1) + exp_(-x[i]));
      break;
    case Activation::relu:  // (7.3)
      for (int64 i = 0; i < n; ++i) x[i] = x[i] < T(0) ? T(0) : x[i];  // NaN stays NaN
      break;
    case Activation::leaky_relu:
      for (int64 i = 0; i < n; ++i) x[i] = x[i] > T(0) ? x[i] : slope * x[i];
      break;
    case Activation::step:
      for (int64 i = 0; i < n; ++i) x[i] = x[i] > T(0) ? T(1) : T(0);
      break;
    case Activation::tanh:  // the formula of hdl/activations.hpp's Tanh, so that a fused tanh equals the layer's
      for (int64 i = 0; i < n; ++i) x[i] = T(2) / (T(1) + exp_(T(-2) * x[i])) - T(1);
      break;
  }
}

// out = sigma'(z) o g, with sigma'(z) written in terms of a = sigma(z).
template <class T>
inline void activate_backward(T* HDL_RESTRICT out, const T* HDL_RESTRICT g, const T* HDL_RESTRICT a, int64 n,
                              Activation act, T slope) {
  switch (act) {
    case Activation::linear:
      for (int64 i = 0; i < n; ++i) out[i] = g[i];
      break;
    case Activation::sigmoid:  // (2.2)
      for (int64 i = 0; i < n; ++i) out[i] = g[i] * a[i] * (T(1) - a[i]);
      break;
    case Activation::relu:
      for (int64 i = 0; i < n; ++i) out[i] = a[i] > T(0) ? g[i] : T(0);
      break;
    case Activation::leaky_relu:  // a > 0 exactly when z > 0, for slope > 0
      for (int64 i = 0; i < n; ++i) out[i] = a[i] > T(0) ? g[i] : slope * g[i];
      break;
    case Activation::step:
      for (int64 i = 0; i < n; ++i) out[i] = T(0);
      break;
    case Activation::tanh:
      for (int64 i = 0; i < n; ++i) out[i] = g[i] * (T(1) - a[i] * a[i]);
      break;
  }
}

// The ReLU (7.3) or leaky ReLU (Section 8) that a kernel applies to its results in registers as it stores them
// (act linear: none; the other activations of common.hpp are applied after, over the stored values). NaN stays
// NaN (v < 0 is false for it), as in the stand-alone ReLU.
template <class T>
struct Rectify {
  Activation act = Activation::linear;  // linear, relu or leaky_relu
  T slope = T(0);                       // the leaky ReLU's
  static bool covers(Activation a) {
    return a == Activation::linear || a == Activation::relu || a == Activation::leaky_relu;
  }
  template <class V>
  HDL_ALWAYS_INLINE V operator()(V v, V zero) const {
    if (act == Activation::relu) return v < zero ? zero : v;
    if (act == Activation::leaky_relu) return v < zero ? v * slope : v;
    return v;
  }
};

}  // namespace HDL_ISA
}  // namespace hdl
