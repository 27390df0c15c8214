// Max and average pooling in NHWC for one instruction set; forward and backward
// side by side. The innermost loops run along the channels, which are contiguous.
// Images are shared among the threads (windows overlap within an image).
#include <algorithm>
#include <vector>

#include "dense_impl.hpp"
#include "hdl/pool.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

// The window of output (i, j) clipped to the image: rows [r0, r1), columns [c0, c1).
struct Window {
  int64 r0, r1, c0, c1;
  int64 cells() const { return (r1 - r0) * (c1 - c0); }
};

inline Window window(const PoolShape& s, int64 i, int64 j) {
  const int64 r = i * s.sh - s.pad_top, c = j * s.sw - s.pad_left;
  return {std::max<int64>(r, 0), std::min(r + s.kh, s.H), std::max<int64>(c, 0), std::min(c + s.kw, s.W)};
}

// body(image x, image y, i, j, window) for every output pixel, images across the threads.
template <class T, class F>
void for_each_output(const PoolShape& s, F&& body) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  parallel_for(s.N, s.N > 1 && s.N * s.H * s.W * s.C > kParallelWork, [&](int64 n) {
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) body(n, i, j, window(s, i, j), (n * Ho + i) * Wo + j);
  });
}

// Loops over the channels of one cell, as functions of restrict pointers so that they vectorise.
template <class T>
inline void max_into(T* HDL_RESTRICT best, const T* HDL_RESTRICT cell, int64 C) {
  for (int64 c = 0; c < C; ++c) best[c] = cell[c] > best[c] ? cell[c] : best[c];
}

template <class T>
inline void add_into(T* HDL_RESTRICT sum, const T* HDL_RESTRICT cell, T scale, int64 C) {
  for (int64 c = 0; c < C; ++c) sum[c] += scale * cell[c];
}

// out += the part of rest whose channel holds its maximum here; rest keeps what is left.
template <class T>
inline void route(T* HDL_RESTRICT out, T* HDL_RESTRICT rest, const T* HDL_RESTRICT cell, const T* HDL_RESTRICT best,
                  int64 C) {
  for (int64 c = 0; c < C; ++c) {
    const T take = cell[c] == best[c] ? rest[c] : T(0);
    out[c] += take;
    rest[c] -= take;
  }
}

// best[c] = the maximum over window w of channel c of the image (cells C apart, rows W cells apart).
template <class T>
inline void window_max(T* best, const T* image, const Window& w, const PoolShape& s) {
  const int64 C = s.C;
  std::copy(image + (w.r0 * s.W + w.c0) * C, image + (w.r0 * s.W + w.c0 + 1) * C, best);
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) max_into(best, image + (r * s.W + q) * C, C);
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const int64 C = s.C;
  for_each_output<T>(s, [&](int64 n, int64, int64, const Window& w, int64 out) {
    window_max(y + out * C, x + n * s.H * s.W * C, w, s);
  });
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s) {
  const int64 C = s.C, Ho = s.out_h(), Wo = s.out_w();
  std::fill(dx, dx + s.N * s.H * s.W * C, T(0));
  parallel_for(s.N, s.N > 1 && s.N * s.H * s.W * C > kParallelWork, [&](int64 n) {
    std::vector<T> best_(C), rest_(C);
    T* HDL_RESTRICT best = best_.data();
    T* HDL_RESTRICT rest = rest_.data();
    const T* image = x + n * s.H * s.W * C;
    T* d = dx + n * s.H * s.W * C;
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) {
        const Window w = window(s, i, j);
        window_max(best, image, w, s);  // as in the forward pass
        // dy goes to the first cell (row-major) that holds it: `rest` is what is still to give
        std::copy(dy + ((n * Ho + i) * Wo + j) * C, dy + ((n * Ho + i) * Wo + j + 1) * C, rest);
        for (int64 r = w.r0; r < w.r1; ++r)
          for (int64 q = w.c0; q < w.c1; ++q) route(d + (r * s.W + q) * C, rest, image + (r * s.W + q) * C, best, C);
      }
  });
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const int64 C = s.C;
  for_each_output<T>(s, [&](int64 n, int64, int64, const Window& w, int64 out) {
    T* HDL_RESTRICT sum = y + out * C;
    const T* image = x + n * s.H * s.W * C;
    std::fill(sum, sum + C, T(0));
    for (int64 r = w.r0; r < w.r1; ++r)
      for (int64 q = w.c0; q < w.c1; ++q) add_into(sum, image + (r * s.W + q) * C, T(1), C);
    const T scale = T(1) / T(w.cells());
    for (int64 c = 0; c < C; ++c) sum[c] *= scale;
  });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  const int64 C = s.C;
  std::fill(dx, dx + s.N * s.H * s.W * C, T(0));
  for_each_output<T>(s, [&](int64 n, int64, int64, const Window& w, int64 out) {
    const T* HDL_RESTRICT g = dy + out * C;
    T* d = dx + n * s.H * s.W * C;
    const T scale = T(1) / T(w.cells());
    for (int64 r = w.r0; r < w.r1; ++r)
      for (int64 q = w.c0; q < w.c1; ++q) add_into(d + (r * s.W + q) * C, g, scale, C);
  });
}

#define HDL_INSTANTIATE(T)                                                        \
  template void max_pool2d_forward<T>(T*, const T*, const PoolShape&);            \
  template void max_pool2d_backward<T>(T*, const T*, const T*, const PoolShape&); \
  template void avg_pool2d_forward<T>(T*, const T*, const PoolShape&);            \
  template void avg_pool2d_backward<T>(T*, const T*, const PoolShape&);
HDL_INSTANTIATE(float)
HDL_INSTANTIATE(double)
#undef HDL_INSTANTIATE

}  // namespace HDL_ISA
}  // namespace hdl
