// Convolution in NHWC for one instruction set: a direct ("implicit GEMM") kernel
// whose register tile is kTileRows output pixels x 2 vectors of output channels,
// the reduction running over the filter taps and the input channels. The three
// passes are one kernel:
//   forward        y  = conv(x_padded, w)
//   backward data  dx = conv(dy spread out and padded, w flipped and transposed)
//   backward filter dw[tap] = sum over pixels of x(tap-shifted) (x) dy, same tile shape.
// Stride-1 5x5 filters take Winograd's F(4x4, 5x5) instead (winograd.hpp), for all three passes;
// a filter that covers its whole input, and a 1x1 filter with stride 1, is one GEMM (conv_gemm.hpp).
#include <algorithm>
#include <cstring>
#include <vector>

#include <omp.h>

#include "dense_impl.hpp"
#include "hdl/conv.hpp"
#include "kernels.inc"
#include "conv_gemm.hpp"
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

// A stride-(sh, sw), unpadded convolution of xp (N, Hp, Wp, C) with packed filters into y (N, Ho, Wo, O).
// Taps that read only rows or columns outside `rows`/`cols` (padding, known zero) are skipped, as a
// direct convolution that sees the border should: border pixels get tiles of their own for that.
template <class T>
void conv_core(T* y, const T* xp, int64 N, int64 Hp, int64 Wp, int64 C, int64 Ho, int64 Wo, int64 O, int64 kh,
               int64 kw, int64 sh, int64 sw, const std::vector<T>& wp, const std::vector<T>& bias, bool relu,
               Inside rows, Inside cols) {
  constexpr int64 B = kBlockO<T>;
  const int64 taps = kh * kw, blocks = (O + B - 1) / B;
  // Output columns [0, jl) and [jr, Wo) see the column padding. Giving them tiles of their own skips
  // their padding taps, worth it when the columns between still make whole tiles (else: one run).
  int64 jl = std::min(Wo, first_inside(cols.lo, sw));
  int64 jr = std::max(jl, cols.hi - kw < 0 ? jl : std::min(Wo, (cols.hi - kw) / sw + 1));
  if ((jr - jl) % kTileRows != 0) jl = jr = 0;
  parallel_for(N * Ho, N * Ho * Wo * O * C * taps > kParallelWork, [&](int64 row) {
    const int64 n = row / Ho, i = row % Ho;
    const int64 u0 = std::clamp<int64>(rows.lo - i * sh, 0, kh), u1 = std::clamp<int64>(rows.hi - i * sh, u0, kh);
    auto run = [&](int64 begin, int64 end) {
      for (int64 j = begin; j < end; j += kTileRows) {
        const int64 r = std::min<int64>(kTileRows, end - j);
        const int64 v0 = std::clamp<int64>(cols.lo - (j + r - 1) * sw, 0, kw);
        const Taps k{u0, u1, v0, std::clamp<int64>(cols.hi - j * sw, v0, kw), kw, Wp * C};
        for (int64 ob = 0; ob < blocks; ++ob)
          tile_rows<T>(int(r), y + ((n * Ho + i) * Wo + j) * O + ob * B, O, std::min(B, O - ob * B),
                       xp + ((n * Hp + i * sh) * Wp + j * sw) * C, sw * C, k, wp.data() + ob * taps * C * B, C,
                       bias.data() + ob * B, relu);
      }
    };
    run(0, jl);
    run(jl, jr);
    run(jr, Wo);
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

}  // namespace

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, bool relu) {
  if (conv_is_gemm(s)) return conv_gemm_forward(y, x, w, b, s, relu);
  if (winograd_fits(s)) {
    winograd_forward(y, Padded<T>{x, s.H, s.W, s.C, s.pad_top, s.pad_left}, s.N, s.out_h(), s.out_w(), s.O,
                     [&](int64 o, int64 c, int64 u, int64 v) { return w[((o * s.C + c) * 5 + u) * 5 + v]; }, b, relu);
    return;
  }
  const int64 taps = s.kh * s.kw;
  const auto wp = pack<T>(s.O, s.C, taps, [&](int64 o, int64 c, int64 t) { return w[(o * s.C + c) * taps + t]; });
  const T* xp = pad_input<0>(x, s.N, s.H, s.W, s.C, s.pad_top, s.pad_bottom, s.pad_left, s.pad_right);
  conv_core(y, xp, s.N, s.H + s.pad_top + s.pad_bottom, s.W + s.pad_left + s.pad_right, s.C,
            s.out_h(), s.out_w(), s.O, s.kh, s.kw, s.sh, s.sw, wp, padded_bias(b, s.O), relu,
            {s.pad_top, s.pad_top + s.H}, {s.pad_left, s.pad_left + s.W});
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  if (conv_is_gemm(s)) return conv_gemm_backward(dx, dw, db, dy, x, w, s);
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
    if (s.sh == 1 && s.sw == 1 && winograd_fits(t)) {
      const std::vector<T> zero(s.C, T(0));
      winograd_forward(dx, Padded<T>{dy, Ho, Wo, s.O, s.kh - 1 - s.pad_top, s.kw - 1 - s.pad_left}, s.N, s.H, s.W,
                       s.C, flipped, zero.data(), false);
    } else {
      // dy at (i*sh + kh-1-pt, j*sw + kw-1-pl) of an (H+kh-1, W+kw-1) grid (entries that fall outside
      // belong to windows wholly in the padding)
      const int64 Hd = s.H + s.kh - 1, Wd = s.W + s.kw - 1;
      T* dyd = scratch<T, 1>(s.N * Hd * Wd * s.O);
      parallel_for(s.N * Hd, s.N * Hd * Wd * s.O > kParallelWork, [&](int64 row) {
        const int64 n = row / Hd, r = row % Hd - (s.kh - 1 - s.pad_top);  // r = i * sh for output row i
        T* out = dyd + row * Wd * s.O;
        std::fill(out, out + Wd * s.O, T(0));
        if (r < 0 || r % s.sh != 0 || r / s.sh >= Ho) return;
        const int64 i = r / s.sh;
        for (int64 j = 0; j < Wo; ++j) {
          const int64 q = j * s.sw + s.kw - 1 - s.pad_left;
          if (q >= 0 && q < Wd) std::memcpy(out + q * s.O, dy + ((n * Ho + i) * Wo + j) * s.O, s.O * sizeof(T));
        }
      });
      const auto wt = pack<T>(s.C, s.O, taps, [&](int64 c, int64 o, int64 tap) {
        return flipped(c, o, tap / s.kw, tap % s.kw);
      });
      conv_core(dx, dyd, s.N, Hd, Wd, s.O, s.H, s.W, s.C, s.kh, s.kw, 1, 1, wt, padded_bias<T>(nullptr, s.C),
                false, {s.kh - 1 - s.pad_top, (Ho - 1) * s.sh + s.kh - s.pad_top},
                {s.kw - 1 - s.pad_left, (Wo - 1) * s.sw + s.kw - s.pad_left});
    }
  }

  // Narrow inputs (the RGB image) measured faster through the direct filter gradient below (conv1 of
  // the CIFAR net: 2.6 against 2.9 ms); their forward pass keeps Winograd.
  if (winograd_fits(s) && s.C >= Simd<T>::lanes) {
    winograd_filter_gradient(dw, db, dy, Padded<T>{x, s.H, s.W, s.C, s.pad_top, s.pad_left}, s.N, Ho, Wo, s.O);
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
