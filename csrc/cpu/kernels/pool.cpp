// Max and average pooling for one instruction set; forward and backward side by side.
// Planes (n, c) are independent and shared among the threads.
#include <algorithm>

#include "dense_impl.hpp"
#include "hdl/pool.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

// The window of output (i, j) clipped to the image: rows [r0, r1), columns [c0, c1).
struct Window {
  int64 r0, r1, c0, c1;
};

inline Window window(const PoolShape& s, int64 i, int64 j) {
  const int64 r = i * s.sh - s.pad_top, c = j * s.sw - s.pad_left;
  return {std::max<int64>(r, 0), std::min(r + s.kh, s.H), std::max<int64>(c, 0), std::min(c + s.kw, s.W)};
}

// Offset within the plane of the first maximal cell of window w (padding never wins).
template <class T>
inline int64 argmax(const T* plane, const PoolShape& s, const Window& w) {
  int64 best = w.r0 * s.W + w.c0;
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 c = w.c0; c < w.c1; ++c)
      if (plane[r * s.W + c] > plane[best]) best = r * s.W + c;
  return best;
}

template <class F>
void for_each_plane(const PoolShape& s, F&& body) {
  parallel_for(s.N * s.C, s.N * s.C * s.H * s.W > kParallelWork, body);
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  for_each_plane(s, [&](int64 p) {
    const T* plane = x + p * s.H * s.W;
    T* out = y + p * Ho * Wo;
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) out[i * Wo + j] = plane[argmax(plane, s, window(s, i, j))];
  });
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  for_each_plane(s, [&](int64 p) {
    const T* plane = x + p * s.H * s.W;
    const T* g = dy + p * Ho * Wo;
    T* d = dx + p * s.H * s.W;
    std::fill(d, d + s.H * s.W, T(0));
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) d[argmax(plane, s, window(s, i, j))] += g[i * Wo + j];
  });
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  for_each_plane(s, [&](int64 p) {
    const T* plane = x + p * s.H * s.W;
    T* out = y + p * Ho * Wo;
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) {
        const Window w = window(s, i, j);
        T sum = T(0);
        for (int64 r = w.r0; r < w.r1; ++r)
          for (int64 c = w.c0; c < w.c1; ++c) sum += plane[r * s.W + c];
        out[i * Wo + j] = sum / T((w.r1 - w.r0) * (w.c1 - w.c0));
      }
  });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  for_each_plane(s, [&](int64 p) {
    const T* g = dy + p * Ho * Wo;
    T* d = dx + p * s.H * s.W;
    std::fill(d, d + s.H * s.W, T(0));
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) {
        const Window w = window(s, i, j);
        const T share = g[i * Wo + j] / T((w.r1 - w.r0) * (w.c1 - w.c0));
        for (int64 r = w.r0; r < w.r1; ++r)
          for (int64 c = w.c0; c < w.c1; ++c) d[r * s.W + c] += share;
      }
  });
}

#define HDL_INSTANTIATE(T)                                                      \
  template void max_pool2d_forward<T>(T*, const T*, const PoolShape&);          \
  template void max_pool2d_backward<T>(T*, const T*, const T*, const PoolShape&); \
  template void avg_pool2d_forward<T>(T*, const T*, const PoolShape&);          \
  template void avg_pool2d_backward<T>(T*, const T*, const PoolShape&);
HDL_INSTANTIATE(float)
HDL_INSTANTIATE(double)
#undef HDL_INSTANTIATE

}  // namespace HDL_ISA
}  // namespace hdl
