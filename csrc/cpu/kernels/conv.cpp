// Convolution in NHWC for one instruction set: a direct ("implicit GEMM") kernel
// whose register tile is kTileRows output pixels x 2 vectors of output channels,
// the reduction running over the filter taps and the input channels. The three
// passes are one kernel:
//   forward        y  = conv(x_padded, w)
//   backward data  dx = conv(dy spread out and padded, w flipped and transposed)
//   backward filter dw[tap] = sum over pixels of x(tap-shifted) (x) dy, same tile shape.
// Stride-1 5x5 filters take Winograd's F(4x4, 5x5) instead (winograd.hpp), for all three passes;
// a filter that covers its whole input runs as a dense layer.
#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "dense_impl.hpp"
#include "hdl/conv.hpp"
#include "kernels.inc"
#include "conv_tile.hpp"
#include "scratch.hpp"
#include "simd.hpp"
#include "winograd.hpp"

namespace hdl {
namespace HDL_ISA {
namespace {

// The part [lo, hi) of the padded input that is not known to be zero, on one axis.
struct Inside {
  int64 lo, hi;
};

// Where output pixel (n, i, j) lives: y + n*image + i*row + j*pixel (its channels contiguous).
struct Grid {
  int64 image, row, pixel;
};

// A stride-(sh, sw), unpadded convolution of xp (N, Hp, Wp, C) with packed filters into y (N, Ho, Wo, O)
// laid out as `out` says. Taps that read only rows or columns outside `rows`/`cols` (padding, known
// zero) are skipped, as a direct convolution that sees the border should: border pixels get tiles of
// their own for that.
template <class T>
void conv_core(T* y, Grid out, const T* xp, int64 N, int64 Hp, int64 Wp, int64 C, int64 Ho, int64 Wo, int64 O, int64 kh,
               int64 kw, int64 sh, int64 sw, const std::vector<T>& wp, const std::vector<T>& bias, bool relu,
               Inside rows, Inside cols) {
  constexpr int64 B = kBlockO<T>;
  const int64 taps = kh * kw, blocks = (O + B - 1) / B;
  // Tiles of kTileRows consecutive pixels of an image in row-major order, a tile running on into the
  // next row: only an image's last tile is short. A tile reads the union of its pixels' taps that
  // see the image (the others read the zero padding or are skipped).
  const int64 pixels = Ho * Wo, per_image = (pixels + kTileRows - 1) / kTileRows;
  parallel_for(N * per_image, N * pixels * O * C * taps > kParallelWork, [&](int64 job) {
    const int64 n = job / per_image, p0 = job % per_image * kTileRows;
    const int rows_ = int(std::min<int64>(kTileRows, pixels - p0));
    int64 xoff[kTileRows], yoff[kTileRows];
    int64 u0 = kh, u1 = 0, v0 = kw, v1 = 0;
    for (int r = 0; r < kTileRows; ++r) {
      const int64 p = p0 + std::min(r, rows_ - 1), i = p / Wo, j = p % Wo;
      xoff[r] = (i * sh * Wp + j * sw) * C;
      yoff[r] = i * out.row + j * out.pixel;
      u0 = std::min(u0, std::clamp<int64>(rows.lo - i * sh, 0, kh));
      u1 = std::max(u1, std::clamp<int64>(rows.hi - i * sh, 0, kh));
      v0 = std::min(v0, std::clamp<int64>(cols.lo - j * sw, 0, kw));
      v1 = std::max(v1, std::clamp<int64>(cols.hi - j * sw, 0, kw));
    }
    const Taps k{u0, std::max(u0, u1), v0, std::max(v0, v1), kw, Wp * C};
    for (int64 ob = 0; ob < blocks; ++ob)
      tile_pixels<T>(rows_, y + n * out.image + ob * B, yoff, std::min(B, O - ob * B), xp + n * Hp * Wp * C, xoff,
                     k, wp.data() + ob * taps * C * B, C, bias.data() + ob * B, relu);
  });
}

// x (N, H, W, C) inside a zero border: (N, H + top + bottom, W + left + right, C), in scratch `Use`.
template <int Use, class T>
const T* pad_input(const T* x, int64 N, int64 H, int64 W, int64 C, int64 top, int64 bottom, int64 left,
                   int64 right) {
  if (!(top || bottom || left || right)) return x;
  const int64 Hp = H + top + bottom, Wp = W + left + right;
  T* xp = scratch<T, Use>(N * Hp * Wp * C);
  parallel_for(N * Hp, N * Hp * Wp * C > kParallelWork, [&](int64 row) {
    const int64 n = row / Hp, r = row % Hp - top;
    T* out = xp + row * Wp * C;
    if (r < 0 || r >= H) {
      std::fill(out, out + Wp * C, T(0));
      return;
    }
    std::fill(out, out + left * C, T(0));
    std::memcpy(out + left * C, x + (n * H + r) * W * C, W * C * sizeof(T));
    std::fill(out + (left + W) * C, out + Wp * C, T(0));
  });
  return xp;
}

template <class T>
std::vector<T> padded_bias(const T* b, int64 O) {
  constexpr int64 B = kBlockO<T>;
  std::vector<T> out(((O + B - 1) / B) * B, T(0));
  if (b) std::copy(b, b + O, out.begin());
  return out;
}

// A filter that covers the whole unpadded input (one output pixel, as the CIFAR net's conv 4x4 on
// 4x4) is a fully connected layer: each image's (H, W, C) block is one patch. It runs as a 1x1
// convolution over a column of N "pixels" with K = H*W*C channels, so tiles span images.
inline bool covers_input(const ConvShape& s) {
  return s.kh == s.H && s.kw == s.W && !(s.pad_top || s.pad_bottom || s.pad_left || s.pad_right);
}

inline ConvShape as_dense(const ConvShape& s) {
  return {1, s.N, 1, s.H * s.W * s.C, s.O, 1, 1, 1, 1, 0, 0, 0, 0};
}

// w (O, C, kh, kw) <-> (O, kh*kw*C, 1, 1) in NHWC patch order (u, v, c).
template <class T>
std::vector<T> to_patch_order(const T* w, const ConvShape& s) {
  std::vector<T> out(s.O * s.kh * s.kw * s.C);
  for (int64 o = 0; o < s.O; ++o)
    for (int64 c = 0; c < s.C; ++c)
      for (int64 t = 0; t < s.kh * s.kw; ++t) out[(o * s.kh * s.kw + t) * s.C + c] = w[(o * s.C + c) * s.kh * s.kw + t];
  return out;
}

// dx of a stride-(sh, sw) convolution as sh*sw stride-1 convolutions of dy ("sub-pixel"), one per phase
// (a, b) of the output: the rows h with (h + pt) % sh == a receive only the filter rows u = a + sh*k,
//   dx[h0 + sh*m] = sum_k dy[m + e - k] w[a + sh*k],   h0 = (a - pt) mod sh,  e = (h0 + pt - a) / sh,
// a correlation of dy (padded by Ka-1-e, possibly negative: a crop) with those rows flipped; likewise
// columns. Each phase writes its pixels of dx in place; a phase without taps (a filter narrower than
// the stride) is zero.
template <class T>
void data_gradient_subpixel(T* dx, const T* dy, const T* w, const ConvShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  struct Phase {
    int64 first, count, taps, e;  // h0, outputs in the phase, filter rows, e
  };
  auto phases = [](int64 stride, int64 pad, int64 k, int64 size) {
    std::vector<Phase> out;
    for (int64 a = 0; a < stride; ++a) {
      const int64 h0 = ((a - pad) % stride + stride) % stride;
      out.push_back({h0, h0 < size ? (size - h0 + stride - 1) / stride : 0, (k - a + stride - 1) / stride,
                     (h0 + pad - a) / stride});
    }
    return out;
  };
  const auto ph = phases(s.sh, s.pad_top, s.kh, s.H), pw = phases(s.sw, s.pad_left, s.kw, s.W);
  // dy inside a zero border wide enough for every phase: Pt rows above, rows to Hd below
  int64 Pt = 0, Pl = 0, Hd = Ho, Wd = Wo;
  for (const auto& p : ph) Pt = std::max(Pt, p.taps - 1 - p.e);
  for (const auto& p : pw) Pl = std::max(Pl, p.taps - 1 - p.e);
  for (const auto& p : ph) Hd = std::max(Hd, p.e + p.count);
  for (const auto& p : pw) Wd = std::max(Wd, p.e + p.count);
  const T* dyp = pad_input<1>(dy, s.N, Ho, Wo, s.O, Pt, Hd - Ho, Pl, Wd - Wo);
  const int64 Hp = Pt + Hd, Wp = Pl + Wd;
  const auto zero = padded_bias<T>(nullptr, s.C);
  const Grid grid{s.H * s.W * s.C, s.sh * s.W * s.C, s.sw * s.C};
  for (int64 a = 0; a < s.sh; ++a)
    for (int64 b = 0; b < s.sw; ++b) {
      const Phase r = ph[a], c = pw[b];
      if (!r.count || !c.count) continue;
      T* out = dx + (r.first * s.W + c.first) * s.C;
      if (!r.taps || !c.taps) {
        for (int64 row = 0; row < s.N * r.count; ++row)
          for (int64 q = 0; q < c.count; ++q)
            std::fill_n(out + row / r.count * grid.image + row % r.count * grid.row + q * grid.pixel, s.C, T(0));
        continue;
      }
      const int64 top = Pt - (r.taps - 1 - r.e), left = Pl - (c.taps - 1 - c.e);  // where this phase's reads start
      const auto wt = pack<T>(s.C, s.O, r.taps * c.taps, [&](int64 ch, int64 o, int64 tap) {
        const int64 u = a + s.sh * (r.taps - 1 - tap / c.taps), v = b + s.sw * (c.taps - 1 - tap % c.taps);
        return w[((o * s.C + ch) * s.kh + u) * s.kw + v];
      });
      conv_core(out, grid, dyp + (top * Wp + left) * s.O, s.N, Hp, Wp, s.O, r.count, c.count, s.C, r.taps, c.taps,
                1, 1, wt, zero, false, {Pt - top, Pt - top + Ho}, {Pl - left, Pl - left + Wo});
    }
}

}  // namespace

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, bool relu) {
  if (covers_input(s) && s.kh * s.kw > 1) {
    HDL_ISA::conv2d_forward<T>(y, x, to_patch_order(w, s).data(), b, as_dense(s), relu);
    return;
  }
  if (const int r = winograd_filter(s)) {
    const auto filter = [&](int64 o, int64 c, int64 u, int64 v) { return w[((o * s.C + c) * r + u) * r + v]; };
    const Padded<T> xp{x, s.H, s.W, s.C, s.pad_top, s.pad_left};
    if (r == 5) winograd_forward<5>(y, xp, s.N, s.out_h(), s.out_w(), s.O, filter, b, relu);
    else winograd_forward<3>(y, xp, s.N, s.out_h(), s.out_w(), s.O, filter, b, relu);
    return;
  }
  const int64 taps = s.kh * s.kw;
  const auto wp = pack<T>(s.O, s.C, taps, [&](int64 o, int64 c, int64 t) { return w[(o * s.C + c) * taps + t]; });
  const T* xp = pad_input<0>(x, s.N, s.H, s.W, s.C, s.pad_top, s.pad_bottom, s.pad_left, s.pad_right);
  conv_core(y, Grid{s.out_h() * s.out_w() * s.O, s.out_w() * s.O, s.O}, xp, s.N, s.H + s.pad_top + s.pad_bottom, s.W + s.pad_left + s.pad_right, s.C,
            s.out_h(), s.out_w(), s.O, s.kh, s.kw, s.sh, s.sw, wp, padded_bias(b, s.O), relu,
            {s.pad_top, s.pad_top + s.H}, {s.pad_left, s.pad_left + s.W});
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  if (covers_input(s) && s.kh * s.kw > 1) {
    std::vector<T> dw_patch(s.O * s.kh * s.kw * s.C);
    HDL_ISA::conv2d_backward<T>(dx, dw_patch.data(), db, dy, x, to_patch_order(w, s).data(), as_dense(s));
    for (int64 o = 0; o < s.O; ++o)
      for (int64 c = 0; c < s.C; ++c)
        for (int64 t = 0; t < s.kh * s.kw; ++t)
          dw[(o * s.C + c) * s.kh * s.kw + t] = dw_patch[(o * s.kh * s.kw + t) * s.C + c];
    return;
  }
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int64 B = kBlockO<T>;
  constexpr int L = S::lanes;
  const int64 Ho = s.out_h(), Wo = s.out_w(), taps = s.kh * s.kw;

  if (dx) {
    // the filters flipped in space and transposed in channels: w'(c, o, u, v) = w(o, c, kh-1-u, kw-1-v)
    auto flipped = [&](int64 c, int64 o, int64 u, int64 v) {
      return w[((o * s.C + c) * s.kh + s.kh - 1 - u) * s.kw + s.kw - 1 - v];
    };
    // dx = a stride-1 convolution of dy, spread out by the stride and padded by kernel-1-pad, with those filters
    const ConvShape t{s.N, Ho, Wo, s.O, s.C, s.kh, s.kw, 1, 1, s.kh - 1 - s.pad_top, s.H + s.pad_top - Ho,
                      s.kw - 1 - s.pad_left, s.W + s.pad_left - Wo};  // its output is (H, W)
    const int r = s.sh == 1 && s.sw == 1 ? winograd_filter(t) : 0;
    if (r) {
      const std::vector<T> zero(s.C, T(0));
      const Padded<T> dyp{dy, Ho, Wo, s.O, s.kh - 1 - s.pad_top, s.kw - 1 - s.pad_left};
      if (r == 5) winograd_forward<5>(dx, dyp, s.N, s.H, s.W, s.C, flipped, zero.data(), false);
      else winograd_forward<3>(dx, dyp, s.N, s.H, s.W, s.C, flipped, zero.data(), false);
    } else {
      data_gradient_subpixel(dx, dy, w, s);
    }
  }

  // Narrow inputs (the RGB image) measured faster through the direct filter gradient below (conv1 of
  // the CIFAR net: 2.6 against 2.9 ms); their forward pass keeps Winograd.
  if (const int r = winograd_filter(s); r && s.C >= Simd<T>::lanes) {
    const Padded<T> xp{x, s.H, s.W, s.C, s.pad_top, s.pad_left};
    if (r == 5) winograd_filter_gradient<5>(dw, db, dy, xp, s.N, Ho, Wo, s.O);
    else winograd_filter_gradient<3>(dw, db, dy, xp, s.N, Ho, Wo, s.O);
    return;
  }
  // dw[tap][c][o] = sum over (n, i, j) of x_padded[n, i*sh + u, j*sw + v, c] dy[n, i, j, o]  (cf. (5.8))
  const T* xs = pad_input<0>(x, s.N, s.H, s.W, s.C, s.pad_top, s.pad_bottom, s.pad_left, s.pad_right);
  const int64 Hp = s.H + s.pad_top + s.pad_bottom, Wp = s.W + s.pad_left + s.pad_right;
  const int64 blocks = (s.O + B - 1) / B, Op = blocks * B;
  const T* g = dy;  // dy with its channels padded to whole blocks, when they are not
  if (Op != s.O) {
    T* dyp = scratch<T, 2>(s.N * Ho * Wo * Op);
    for (int64 p = 0; p < s.N * Ho * Wo; ++p) {
      std::copy(dy + p * s.O, dy + (p + 1) * s.O, dyp + p * Op);
      std::fill(dyp + p * Op + s.O, dyp + (p + 1) * Op, T(0));
    }
    g = dyp;
  }
  const bool parallel = s.N > 1 && s.N * Ho * Wo * s.O * s.C * taps > kParallelWork;
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<T> part(threads * taps * s.C * Op, T(0)), bpart(threads * Op, T(0));
#pragma omp parallel num_threads(threads) if (parallel)
  {
    T* mine = &part[omp_get_thread_num() * taps * s.C * Op];
    T* bmine = &bpart[omp_get_thread_num() * Op];
#pragma omp for schedule(static)
    for (int64 n = 0; n < s.N; ++n) {
      const T* gn = g + n * Ho * Wo * Op;
      for (int64 p = 0; p < Ho * Wo; ++p)  // db: sum over pixels  (cf. (5.7))
        for (int64 o = 0; o < Op; ++o) bmine[o] += gn[p * Op + o];
      for (int64 t = 0; t < taps; ++t) {
        const int64 u = t / s.kw, v = t % s.kw;
        const T* xt = xs + ((n * Hp + u) * Wp + v) * s.C;
        // outputs whose tap (u, v) reads the image rather than the padding
        const int64 i0 = first_inside(s.pad_top - u, s.sh), i1 = std::min(Ho, first_inside(s.pad_top + s.H - u, s.sh));
        const int64 j0 = first_inside(s.pad_left - v, s.sw), j1 = std::min(Wo, first_inside(s.pad_left + s.W - v, s.sw));
        for (int64 ob = 0; ob < blocks; ++ob)
          for (int64 c0 = 0; c0 < s.C; c0 += kTileRows) {
            const int rows = int(std::min<int64>(kTileRows, s.C - c0));
            V acc[kTileRows][2];
            for (int r = 0; r < kTileRows; ++r) acc[r][0] = acc[r][1] = S::zero();
            for (int64 i = i0; i < i1; ++i) {
              const T* xrow = xt + (i * s.sh * Wp) * s.C + c0;
              const T* grow = gn + i * Wo * Op + ob * B;
              for (int64 j = j0; j < j1; ++j) {
                const V g0 = S::load(grow + j * Op), g1 = S::load(grow + j * Op + L);
                const T* a = xrow + j * s.sw * s.C;
                if (rows == kTileRows) {
                  for (int r = 0; r < kTileRows; ++r) {
                    acc[r][0] += a[r] * g0;
                    acc[r][1] += a[r] * g1;
                  }
                } else {
                  for (int r = 0; r < rows; ++r) {
                    acc[r][0] += a[r] * g0;
                    acc[r][1] += a[r] * g1;
                  }
                }
              }
            }
            for (int r = 0; r < rows; ++r) {
              T* d = mine + (t * s.C + c0 + r) * Op + ob * B;
              S::store(d, S::load(d) + acc[r][0]);
              S::store(d + L, S::load(d + L) + acc[r][1]);
            }
          }
      }
    }
  }
  for (int64 o = 0; o < s.O; ++o) {
    T sum = T(0);
    for (int th = 0; th < threads; ++th) sum += bpart[th * Op + o];
    db[o] = sum;
    for (int64 c = 0; c < s.C; ++c)
      for (int64 t = 0; t < taps; ++t) {
        T acc = T(0);
        for (int th = 0; th < threads; ++th) acc += part[((th * taps + t) * s.C + c) * Op + o];
        dw[(o * s.C + c) * taps + t] = acc;
      }
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*, const ConvShape&, bool);
template void conv2d_forward<double>(double*, const double*, const double*, const double*, const ConvShape&, bool);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                     const ConvShape&);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      const ConvShape&);

}  // namespace HDL_ISA
}  // namespace hdl
