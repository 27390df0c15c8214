// Max and average pooling in NHWC for one instruction set; forward and backward
// side by side. The innermost loops run along the channels, which are contiguous.
// Images are shared among the threads (windows overlap within an image).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "dense_impl.hpp"
#include "gemm_blocked.hpp"  // Buffer: a std::vector instantiated apart per instruction set
#include "kernels.inc"
#include "simd.hpp"

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

// Max pooling runs over the channels one vector (X = Simd<T>::vec) at a time, with the window's running
// maximum held in a register. A row of C channels that is not a whole number of vectors ends with a vector
// that overlaps the one before (C >= lanes: the shared channels are computed twice, to the same values),
// and a pixel of fewer channels than lanes takes one vector that runs into the next pixel (its extra lanes
// are overwritten when that pixel is computed, in order) or, where nothing follows it in the same thread
// or the array ends, one channel (X = T) at a time (simd.hpp's load_as, store_as).

// Indices carried as T (exact below 2^24), stored as int32.
template <class T, class X>
inline X load_index(const std::int32_t* p) {
  if constexpr (std::is_same_v<X, T>) return T(*p);
  else return __builtin_convertvector(*reinterpret_cast<const typename Simd<T>::ivec*>(p), X);
}
template <class T, class X>
inline void store_index(std::int32_t* p, const X& x) {
  if constexpr (std::is_same_v<X, T>) *p = std::int32_t(x);
  else *reinterpret_cast<typename Simd<T>::ivec*>(p) = __builtin_convertvector(x, typename Simd<T>::ivec);
}

// Exact blocks only (a scalar tail): for loops that accumulate, where a block computed twice would count twice.
template <class T, class F>
inline void over_channels(int64 C, F&& body) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  int64 c = 0;
  for (; c + L <= C; c += L) body(c, V{});
  for (; c < C; ++c) body(c, T{});
}

// The maximum over window w of channels [c, c + lanes) of an image (cells C apart, rows W cells apart),
// and where (r*W + q) it first occurs.
template <class T, class X>
inline X window_max(const T* image, const Window& w, const PoolShape& s, int64 c, X* where = nullptr) {
  X best = load_as<T, X>(image + (w.r0 * s.W + w.c0) * s.C + c), at = X{} + T(w.r0 * s.W + w.c0);
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const X cell = load_as<T, X>(image + (r * s.W + q) * s.C + c);
      if (where) at = cell > best ? X{} + T(r * s.W + q) : at;
      best = cell > best ? cell : best;
    }
  if (where) *where = at;
  return best;
}

// d += dy routed to the first cell (row-major) of window w that holds the maximum, channels [c, c + lanes).
template <class T, class X>
inline void route(T* d, const T* g, const T* image, const Window& w, const PoolShape& s, int64 c) {
  const X best = window_max<T, X>(image, w, s, c), zero{};
  X rest = load_as<T, X>(g + c);  // what is still to give
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const int64 at = (r * s.W + q) * s.C + c;
      const X take = load_as<T, X>(image + at) == best ? rest : zero;
      store_as<T, X>(d + at, load_as<T, X>(d + at) + take);
      rest -= take;
    }
}

template <class T>
inline void add_into(T* HDL_RESTRICT sum, const T* HDL_RESTRICT cell, T scale, int64 C) {
  for (int64 c = 0; c < C; ++c) sum[c] += scale * cell[c];
}

// For each output column j, its window's in-image columns [c0, c1); for each input column q, the output
// columns [j0, j1] whose windows hold it (j0 > j1: none). Computed once per call, not per cell.
struct Columns {
  Buffer<int64> c0, c1, j0, j1;
  explicit Columns(const PoolShape& s) : c0(s.out_w()), c1(s.out_w()), j0(s.W), j1(s.W) {
    const int64 Wo = s.out_w();
    for (int64 j = 0; j < Wo; ++j) {
      const Window w = window(s, 0, j);
      c0[j] = w.c0, c1[j] = w.c1;
    }
    for (int64 q = 0; q < s.W; ++q) {
      j0[q] = first_inside(q + s.pad_left - s.kw + 1, s.sw);
      j1[q] = std::min(Wo - 1, (q + s.pad_left) / s.sw);
    }
  }
};

// Windows that do not overlap (stride >= window): output row (n, i) owns the input rows from its window's
// first to the next window's; each window loads its argmax and dy once and writes its cells,
// dx[r, q] = argmax == r*W + q ? dy : 0, then the cells up to the next window and the rows below it are zeros.
template <class T>
void backward_disjoint(T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s, const Columns& cols) {
  using V = typename Simd<T>::vec;
  constexpr int64 L = Simd<T>::lanes;
  const int64 C = s.C, H = s.H, W = s.W, Ho = s.out_h(), Wo = s.out_w(), WC = W * C, y_end = s.N * Ho * Wo * C;
  const int64 *c0s = cols.c0.data(), *c1s = cols.c1.data();
  parallel_for(s.N * Ho, s.N * H * WC > kParallelWork, [&](int64 row) {
    const int64 n = row / Ho, i = row % Ho, top = i * s.sh - s.pad_top;
    const int64 w0 = std::max<int64>(top, 0), w1 = std::min(top + s.kh, H);
    const int64 rb = i == Ho - 1 ? H : std::min(top + s.sh, H);
    T* img = dx + n * H * WC;
    std::fill(img + w1 * WC, img + rb * WC, T(0));  // rows between this window and the next
    const T* g = dy + row * Wo * C;
    const std::int32_t* a = argmax + row * Wo * C;
    for (int64 j = 0; j < Wo; ++j) {
      const int64 c0 = c0s[j], c1 = c1s[j], next = j + 1 < Wo ? c0s[j + 1] : W;
      // the window's cells, one block of channels [c, c + L) at a time
      auto cells = [&](int64 c, const V& at, const V& dyv, bool narrow) {
        for (int64 r = w0; r < w1; ++r)
          for (int64 q = c0; q < c1; ++q) {
            const V v = at == V{} + T(r * W + q) ? dyv : V{};
            T* d = img + (r * W + q) * C + c;
            if (!narrow || q * C + L <= WC) {
              Simd<T>::store(d, v);
            } else {  // the row's last cells: only the C channels
              T t[L];
              Simd<T>::store(t, v);
              std::copy(t, t + C, d);
            }
          }
      };
      if (C >= L) {
        for (int64 c = 0; c < C; c += L) {
          const int64 b = std::min(c, C - L);  // the last block overlaps the one before
          cells(b, load_index<T, V>(a + j * C + b), Simd<T>::load(g + j * C + b), false);
        }
      } else if ((row * Wo + j) * C + L <= y_end) {
        cells(0, load_index<T, V>(a + j * C), Simd<T>::load(g + j * C), true);
      } else {  // the array's last pixels: load the C channels alone
        T gt[L] = {};
        std::int32_t at[L];
        std::fill(at, at + L, -1);
        std::copy(g + j * C, g + j * C + C, gt);
        std::copy(a + j * C, a + j * C + C, at);
        cells(0, load_index<T, V>(at), Simd<T>::load(gt), true);
      }
      for (int64 r = w0; r < w1; ++r) std::fill(img + (r * W + c1) * C, img + (r * W + next) * C, T(0));
    }
  });
}


// The maximum of NB vectors of channels (offsets off[0..NB)) over window w, and where (r*W + q) it first
// occurs: the cells outside, the vectors inside, so that each cell's index is broadcast once and the
// running maxima stay in registers.
template <class T, int NB>
inline void window_max_group(T* y, std::int32_t* argmax, const T* image, const Window& w, int64 W, int64 C,
                             const int64* off, bool relu) {
  using V = typename Simd<T>::vec;
  V best[NB], at[NB];
  const T* first = image + (w.r0 * W + w.c0) * C;
  for (int b = 0; b < NB; ++b) best[b] = Simd<T>::load(first + off[b]), at[b] = V{} + T(w.r0 * W + w.c0);
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const T* p = image + (r * W + q) * C;
      const V here = V{} + T(r * W + q);
      for (int b = 0; b < NB; ++b) {
        const V cell = Simd<T>::load(p + off[b]);
        if (argmax) at[b] = cell > best[b] ? here : at[b];
        best[b] = cell > best[b] ? cell : best[b];
      }
    }
  for (int b = 0; b < NB; ++b) {
    if (relu) {
      at[b] = best[b] > V{} ? at[b] : V{} - T(1);
      best[b] = best[b] < V{} ? V{} : best[b];  // NaN stays NaN
    }
    Simd<T>::store(y + off[b], best[b]);
    if (argmax) store_index<T, V>(argmax + off[b], at[b]);
  }
}

// The output windows (n, i, j), i in [i0, i1], j in [j0, j1], that hold one input cell (row n*Ho + i of y).
struct Windows {
  int64 i0, i1, j0, j1, base, Wo, C;
  int64 at(int64 i, int64 j) const { return ((base + i) * Wo + j) * C; }
};

// dx at one cell, NB vectors of channels (offsets off[0..NB)): the sum of dy over the windows whose argmax
// is the cell (here = r*W + q), the sums in registers.
template <class T, int NB>
inline void gather_group(T* d, const T* dy, const std::int32_t* argmax, const Windows& w, const int64* off, T here) {
  using V = typename Simd<T>::vec;
  V sum[NB];
  for (int b = 0; b < NB; ++b) sum[b] = V{};
  const V h = V{} + here;
  for (int64 i = w.i0; i <= w.i1; ++i)
    for (int64 j = w.j0; j <= w.j1; ++j) {
      const int64 at = w.at(i, j);
      for (int b = 0; b < NB; ++b)
        sum[b] += load_index<T, V>(argmax + at + off[b]) == h ? Simd<T>::load(dy + at + off[b]) : V{};
    }
  for (int b = 0; b < NB; ++b) Simd<T>::store(d + off[b], sum[b]);
}

template <class T>
inline void gather_scalar(T* d, const T* dy, const std::int32_t* argmax, const Windows& w, int64 c, T here) {
  T sum = 0;
  for (int64 i = w.i0; i <= w.i1; ++i)
    for (int64 j = w.j0; j <= w.j1; ++j) sum += T(argmax[w.at(i, j) + c]) == here ? dy[w.at(i, j) + c] : T(0);
  d[c] = sum;
}

// The vectors of a pixel's channels: offsets 0, L, 2L, ..., the last overlapping the one before.
template <class T>
Buffer<int64> channel_vectors(int64 C) {
  constexpr int64 L = Simd<T>::lanes;
  Buffer<int64> off;
  for (int64 c = 0; c < C; c += L) off.push_back(std::max<int64>(0, std::min(c, C - L)));
  return off;
}

// group(NB, y + out, argmax + out, image, w, off) for each output pixel and group of NB <= 4 vectors of its
// channels (offsets off[0..NB)). A pixel of fewer channels than lanes that ends its row goes through a
// buffer (its vector would run into another thread's row), and one at the end of x (whose vector loads
// would pass x's end) goes scalar(out, image, w, c), one channel at a time. Output rows (n, i) across the
// threads (batch 1 too). argmax may be null.
template <class T, class G, class S>
void for_each_window(T* y, std::int32_t* argmax, const PoolShape& s, G&& group, S&& scalar) {
  const int64 C = s.C, W = s.W, Ho = s.out_h(), Wo = s.out_w();
  const int64 x_end = s.N * s.H * s.W * C;
  constexpr int64 L = Simd<T>::lanes;
  const Columns cols(s);
  const Buffer<int64> offs = channel_vectors<T>(C);
  const int64 nv = int64(offs.size());
  const int64* off = offs.data();
  parallel_for(s.N * Ho, s.N * s.H * s.W * C > kParallelWork, [&](int64 row) {
    const int64 n = row / Ho, i = row % Ho;
    const int64 image = n * s.H * W * C;
    const Window rows = window(s, i, 0);
    // the last cell a window of this row reads, plus a vector, must lie inside x
    const bool in_x = (n * s.H + rows.r1 - 1) * W * C + W * C + L <= x_end;
    for (int64 j = 0; j < Wo; ++j) {
      const Window w{rows.r0, rows.r1, cols.c0[j], cols.c1[j]};
      const int64 out = (row * Wo + j) * C;
      if (C < L) {
        // a window whose vector loads would pass x's end goes scalar, wherever its output lies
        if (!(in_x || (n * s.H + w.r1 - 1) * W * C + w.c1 * C + L <= x_end)) {
          for (int64 c = 0; c < C; ++c) scalar(out, image, w, c);
          continue;
        }
        if (!(j * C + L <= Wo * C)) {
          T yb[L];
          std::int32_t ab[L];
          group(std::integral_constant<int, 1>{}, yb, argmax ? ab : nullptr, image, w, off);
          std::copy(yb, yb + C, y + out);
          if (argmax) std::copy(ab, ab + C, argmax + out);
          continue;
        }
      }
      T* yo = y + out;
      std::int32_t* ao = argmax ? argmax + out : nullptr;
      int64 v = 0;
      for (; v + 4 <= nv; v += 4) group(std::integral_constant<int, 4>{}, yo, ao, image, w, off + v);
      switch (nv - v) {
        case 3: group(std::integral_constant<int, 3>{}, yo, ao, image, w, off + v); break;
        case 2: group(std::integral_constant<int, 2>{}, yo, ao, image, w, off + v); break;
        case 1: group(std::integral_constant<int, 1>{}, yo, ao, image, w, off + v); break;
      }
    }
  });
}

// The mean over the in-image cells of window w of NB vectors of channels, the sums in registers.
template <class T, int NB>
inline void window_mean_group(T* y, const T* image, const Window& w, int64 W, int64 C, const int64* off) {
  using V = typename Simd<T>::vec;
  V sum[NB];
  for (int b = 0; b < NB; ++b) sum[b] = V{};
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const T* p = image + (r * W + q) * C;
      for (int b = 0; b < NB; ++b) sum[b] += Simd<T>::load(p + off[b]);
    }
  const T scale = T(1) / T(w.cells());
  for (int b = 0; b < NB; ++b) Simd<T>::store(y + off[b], sum[b] * scale);
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, std::int32_t* argmax, const T* x, const PoolShape& s, bool relu) {
  for_each_window<T>(
      y, argmax, s,
      [&](auto nb, T* yo, std::int32_t* ao, int64 image, const Window& w, const int64* off) {
        window_max_group<T, decltype(nb)::value>(yo, ao, x + image, w, s.W, s.C, off, relu);
      },
      [&](int64 out, int64 image, const Window& w, int64 c) {
        T at, best = window_max<T, T>(x + image, w, s, c, argmax ? &at : nullptr);
        if (relu) at = best > T(0) ? at : T(-1), best = best < T(0) ? T(0) : best;
        y[out + c] = best;
        if (argmax) argmax[out + c] = std::int32_t(at);
      });
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s) {
  const int64 C = s.C, Ho = s.out_h(), Wo = s.out_w();
  parallel_for(s.N, s.N > 1 && s.N * s.H * s.W * C > kParallelWork, [&](int64 n) {
    const T* image = x + n * s.H * s.W * C;
    T* d = dx + n * s.H * s.W * C;
    std::fill(d, d + s.H * s.W * C, T(0));  // each thread its images, while they are in its cache
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) {
        const Window w = window(s, i, j);
        const T* g = dy + ((n * Ho + i) * Wo + j) * C;
        over_channels<T>(C, [&](int64 c, auto lanes) { route<T, decltype(lanes)>(d, g, image, w, s, c); });
      }
  });
}

// dx[cell] = sum of dy over the windows whose argmax is the cell: the windows (i, j) that hold cell
// (r, q) are those with i*sh - pt <= r < i*sh - pt + kh (and likewise for j). Each cell is written
// once, in order (no zero fill, no accumulation in memory); rows (n, r) across the threads.
template <class T>
void max_pool2d_backward_argmax(T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s) {
  const int64 C = s.C, Ho = s.out_h(), Wo = s.out_w();
  const int64 y_end = s.N * Ho * Wo * C;
  constexpr int64 L = Simd<T>::lanes;
  const Columns cols(s);
  if (s.sh >= s.kh && s.sw >= s.kw) return backward_disjoint(dx, dy, argmax, s, cols);
  const Buffer<int64> off = channel_vectors<T>(C);
  const int64 nv = int64(off.size());
  parallel_for(s.N * s.H, s.N * s.H * s.W * C > kParallelWork, [&](int64 row) {
    const int64 n = row / s.H, r = row % s.H;
    const int64 i0 = first_inside(r + s.pad_top - s.kh + 1, s.sh), i1 = std::min(Ho - 1, (r + s.pad_top) / s.sh);
    const bool in_y = ((n * Ho + i1 + 1) * Wo) * C + L <= y_end;  // every window of this row, plus a vector
    for (int64 q = 0; q < s.W; ++q) {
      const int64 j0 = cols.j0[q], j1 = cols.j1[q];
      T* d = dx + (row * s.W + q) * C;
      const Windows win{i0, i1, j0, j1, n * Ho, Wo, C};
      if (C < L && q * C + L > s.W * C) {  // the row's last cells: through a buffer, or at the end of y scalar
        if (in_y || ((n * Ho + i1) * Wo + j1) * C + C + L <= y_end) {
          T b[L];
          gather_group<T, 1>(b, dy, argmax, win, off.data(), T(r * s.W + q));
          std::copy(b, b + C, d);
        } else {
          for (int64 c = 0; c < C; ++c) gather_scalar(d, dy, argmax, win, c, T(r * s.W + q));
        }
        continue;
      }
      if (C < L && !(in_y || ((n * Ho + i1) * Wo + j1) * C + C + L <= y_end)) {
        for (int64 c = 0; c < C; ++c) gather_scalar(d, dy, argmax, win, c, T(r * s.W + q));
        continue;
      }
      int64 v = 0;
      for (; v + 4 <= nv; v += 4) gather_group<T, 4>(d, dy, argmax, win, off.data() + v, T(r * s.W + q));
      switch (nv - v) {
        case 3: gather_group<T, 3>(d, dy, argmax, win, off.data() + v, T(r * s.W + q)); break;
        case 2: gather_group<T, 2>(d, dy, argmax, win, off.data() + v, T(r * s.W + q)); break;
        case 1: gather_group<T, 1>(d, dy, argmax, win, off.data() + v, T(r * s.W + q)); break;
      }
    }
  });
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  for_each_window<T>(
      y, nullptr, s,
      [&](auto nb, T* yo, std::int32_t*, int64 image, const Window& w, const int64* off) {
        window_mean_group<T, decltype(nb)::value>(yo, x + image, w, s.W, s.C, off);
      },
      [&](int64 out, int64 image, const Window& w, int64 c) {
        T sum = 0;
        for (int64 r = w.r0; r < w.r1; ++r)
          for (int64 q = w.c0; q < w.c1; ++q) sum += x[image + (r * s.W + q) * s.C + c];
        y[out + c] = sum * (T(1) / T(w.cells()));
      });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  const int64 C = s.C;
  for_each_output<T>(s, [&](int64 n, int64 i, int64 j, const Window& w, int64 out) {
    if (i == 0 && j == 0) std::fill(dx + n * s.H * s.W * C, dx + (n + 1) * s.H * s.W * C, T(0));  // image n starts
    const T* HDL_RESTRICT g = dy + out * C;
    T* d = dx + n * s.H * s.W * C;
    const T scale = T(1) / T(w.cells());
    for (int64 r = w.r0; r < w.r1; ++r)
      for (int64 q = w.c0; q < w.c1; ++q) add_into(d + (r * s.W + q) * C, g, scale, C);
  });
}


}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(pool)
