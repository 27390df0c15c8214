// ReLU, leaky ReLU, the activations of hdl/activations.hpp and inverted dropout for one instruction set.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "dense_impl.hpp"
#include "hdl/activations.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

// A uniform [0, 1) value from (seed, i): splitmix64's finaliser on a Weyl sequence.
inline double hash_uniform(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

}  // namespace

// The loops are plain functions of restrict pointers and values: inside a lambda,
// a captured variable could alias the output for all the compiler knows, and the
// loop would stay scalar and branchy.
template <class T>
inline void relu_span(T* HDL_RESTRICT y, const T* HDL_RESTRICT x, int64 n, T slope) {
  for (int64 i = 0; i < n; ++i) y[i] = x[i] * (x[i] > T(0) ? T(1) : slope);
}

template <class T>
inline void relu_backward_span(T* dx, const T* dy, const T* HDL_RESTRICT x, int64 n, T slope) {
  for (int64 i = 0; i < n; ++i) dx[i] = dy[i] * (x[i] > T(0) ? T(1) : slope);
}

// The activations of hdl/activations.hpp, with this instruction set's exp.
struct CpuMath {
  template <class T>
  static T exp(T x) { return exp_(x); }
};

template <class S, class T>
inline void activation_span(T* HDL_RESTRICT y, const T* HDL_RESTRICT x, int64 n) {
  for (int64 i = 0; i < n; ++i) y[i] = S::template forward<CpuMath>(x[i]);
}

template <class S, class T>
inline void activation_backward_span(T* dx, const T* dy, const T* HDL_RESTRICT y, int64 n) {
  for (int64 i = 0; i < n; ++i) dx[i] = S::backward(dy[i], y[i]);
}

template <class T>
inline void dropout_span(T* HDL_RESTRICT y, T* HDL_RESTRICT mask, const T* HDL_RESTRICT x, int64 first, int64 n,
                         double rate, T keep, std::uint64_t seed) {
  for (int64 i = 0; i < n; ++i) {
    mask[i] = hash_uniform(seed, std::uint64_t(first + i)) >= rate ? keep : T(0);
    y[i] = x[i] * mask[i];
  }
}

// Whether no element is NaN or infinite: none has every exponent bit set. Integer compares and an OR,
// which the compiler vectorises (a floating-point sum would stay in order, scalar).
template <class T>
inline bool finite_span(const T* HDL_RESTRICT x, int64 n) {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr U E = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U bad = 0;
  for (int64 i = 0; i < n; ++i) {
    U u;
    std::memcpy(&u, x + i, sizeof u);
    bad |= U((u & E) == E);
  }
  return bad == 0;
}

template <class T>
bool all_finite(const T* x, int64 n) {
  const int64 chunks = (n + kChunk - 1) / kChunk;
  std::vector<unsigned char> ok(std::max<int64>(chunks, 1), 1);
  for_chunks(n, [&](int64 b, int64 e) { ok[b / kChunk] = finite_span(x + b, e - b); });
  return std::all_of(ok.begin(), ok.end(), [](unsigned char c) { return c != 0; });
}

template <class T>
void relu_forward(T* y, const T* x, int64 n, T slope) {
  for_chunks(n, [=](int64 b, int64 e) { relu_span(y + b, x + b, e - b, slope); });
}

// dx may be dy itself (in place).
template <class T>
void relu_backward(T* dx, const T* dy, const T* x, int64 n, T slope) {
  for_chunks(n, [=](int64 b, int64 e) { relu_backward_span(dx + b, dy + b, x + b, e - b, slope); });
}

// <name>_forward and <name>_backward (dx may be dy) for every line of HDL_ACTIVATIONS.
#define HDL_DEFINE_ACTIVATION(K, name, Struct)                                                                   \
  template <class T>                                                                                           \
  void name##_forward(T* y, const T* x, int64 n) {                                                             \
    for_chunks(n, [=](int64 b, int64 e) { activation_span<activations::Struct>(y + b, x + b, e - b); });        \
  }                                                                                                            \
  template <class T>                                                                                           \
  void name##_backward(T* dx, const T* dy, const T* y, int64 n) {                                              \
    for_chunks(n, [=](int64 b, int64 e) {                                                                      \
      activation_backward_span<activations::Struct>(dx + b, dy + b, y + b, e - b);                              \
    });                                                                                                        \
  }
HDL_ACTIVATIONS(HDL_DEFINE_ACTIVATION, _)
#undef HDL_DEFINE_ACTIVATION

template <class T>
void dropout_forward(T* y, T* mask, const T* x, int64 n, double rate, std::uint64_t seed) {
  const T keep = T(1.0 / (1.0 - rate));
  for_chunks(n, [=](int64 b, int64 e) { dropout_span(y + b, mask + b, x + b, b, e - b, rate, keep, seed); });
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(pointwise)
