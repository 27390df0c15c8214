// ReLU, leaky ReLU and inverted dropout for one instruction set.
#include "dense_impl.hpp"
#include "hdl/pointwise.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

constexpr int64 kChunk = 1 << 14;

// body(begin, end) over [0, n) in chunks, across threads when n is large.
template <class F>
void for_chunks(int64 n, F&& body) {
  const int64 chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, chunks > 1, [&](int64 c) { body(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

// A uniform [0, 1) value from (seed, i): splitmix64's finaliser on a Weyl sequence.
inline double hash_uniform(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

}  // namespace

template <class T>
void relu_forward(T* HDL_RESTRICT y, const T* HDL_RESTRICT x, int64 n, T slope) {
  for_chunks(n, [&](int64 b, int64 e) {
    for (int64 i = b; i < e; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
  });
}

template <class T>
void relu_backward(T* HDL_RESTRICT dx, const T* HDL_RESTRICT dy, const T* HDL_RESTRICT x, int64 n, T slope) {
  for_chunks(n, [&](int64 b, int64 e) {
    for (int64 i = b; i < e; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
  });
}

template <class T>
void dropout_forward(T* HDL_RESTRICT y, T* HDL_RESTRICT mask, const T* HDL_RESTRICT x, int64 n, double rate,
                     std::uint64_t seed) {
  const T keep = T(1.0 / (1.0 - rate));
  for_chunks(n, [&](int64 b, int64 e) {
    for (int64 i = b; i < e; ++i) {
      mask[i] = hash_uniform(seed, std::uint64_t(i)) >= rate ? keep : T(0);
      y[i] = x[i] * mask[i];
    }
  });
}

#define HDL_INSTANTIATE(T)                                                  \
  template void relu_forward<T>(T*, const T*, int64, T);                    \
  template void relu_backward<T>(T*, const T*, const T*, int64, T);         \
  template void dropout_forward<T>(T*, T*, const T*, int64, double, std::uint64_t);
HDL_INSTANTIATE(float)
HDL_INSTANTIATE(double)
#undef HDL_INSTANTIATE

}  // namespace HDL_ISA
}  // namespace hdl
