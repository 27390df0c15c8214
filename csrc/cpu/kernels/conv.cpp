// Convolution in NHWC for one instruction set: a direct ("implicit GEMM") kernel
// whose register tile is 6 output pixels x 2 vectors of output channels (12 x 1 when
// the output channels fit a vector), the reduction running over the filter taps and
// the input channels:
//   forward        y  = conv(x_padded, w)
//   backward data  dx = stride x stride stride-1 convolutions of dy with the phases of w
//                  flipped and transposed ("sub-pixel", data_gradient_subpixel), or for strided
//                  filters on small maps one GEMM and a gather (col2im, conv_col2im.hpp)
//   backward filter dw[tap][c] = sum over pixels of x(tap-shifted) (x) dy (conv_filter_gradient.hpp).
// Stride-1 2x2 to 5x5 filters take Winograd's F(m x m, r x r) instead (winograd.hpp, which says when),
// for all three passes, and so do large strided ones (an 11x11 stride-4 stem) through space to depth
// (conv_space_to_depth.hpp); a filter that covers its whole input is one GEMM
// (conv_gemm.hpp, gemm_serves below). These rules are defaults: the first call of a shape measures
// Winograd against the others and the direct kernel against the implicit GEMM (tuned, hdl/autotune.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <omp.h>

#include "dense_impl.hpp"
#include "hdl/autotune.hpp"
#include "kernels.inc"
#include "conv_col2im.hpp"
#include "conv_filter_gradient.hpp"
#include "conv_gemm.hpp"
#include "conv_implicit.hpp"
#include "conv_one_channel.hpp"
#include "conv_space_to_depth.hpp"
#include "conv_tile.hpp"
#include "scratch.hpp"
#include "simd.hpp"
#include "winograd.hpp"

namespace hdl {
namespace HDL_ISA {
namespace {

// f(nv, bytes) with the register tile for O output channels as integral constants: one vector of the
// narrowest width that holds them (NV = 1), or two full vectors (NV = 2).
template <class T, class F>
void with_channel_vector(int64 O, F&& f) {
  using std::integral_constant;
  constexpr int full = kVectorBytes;
  if (O > Simd<T>::lanes) return f(integral_constant<int, 2>(), integral_constant<int, full>());
  switch (narrowest_bytes<T>(O)) {
    case 16: if constexpr (full > 16) return f(integral_constant<int, 1>(), integral_constant<int, 16>()); [[fallthrough]];
    case 32: if constexpr (full > 32) return f(integral_constant<int, 1>(), integral_constant<int, 32>()); [[fallthrough]];
    default: return f(integral_constant<int, 1>(), integral_constant<int, full>());
  }
}

// The part [lo, hi) of the padded input that is not known to be zero, on one axis.
struct Inside {
  int64 lo, hi;
};

// A stride-(sh, sw), unpadded convolution of xp (N, Hp, Wp, C) with filters get(o, c, u, v) and bias b
// (or none) into y (N, Ho, Wo, O) laid out as `out` says. Taps that read only rows or columns outside
// `rows`/`cols` (padding, known zero) are skipped.
struct Conv {
  int64 N, Hp, Wp, C, Ho, Wo, O, kh, kw, sh, sw;
  Inside rows, cols;
};

// Output rows (or columns) [first, first + count) whose filter taps [t0, t1) see the image: runs of
// equal tap ranges, the border's few and the interior's one.
struct TapSpan {
  int64 first, count, t0, t1;
};
inline std::vector<TapSpan> tap_spans(int64 outputs, int64 stride, Inside in, int64 k) {
  std::vector<TapSpan> spans;
  for (int64 i = 0; i < outputs; ++i) {
    const int64 t0 = std::clamp<int64>(in.lo - i * stride, 0, k);
    const int64 t1 = std::max(t0, std::clamp<int64>(in.hi - i * stride, 0, k));
    if (!spans.empty() && spans.back().t0 == t0 && spans.back().t1 == t1)
      ++spans.back().count;
    else
      spans.push_back({i, 1, t0, t1});
  }
  return spans;
}

// The pixels of the batch as the tiles take them: one block of pixels per pair of a row span and a column
// span (all of whose pixels read the same taps), or one block of all of them in row-major order, tiles
// then running on into the next row and image and reading the union of their pixels' taps. Small maps
// with padding take the spans: 8x8x256 -> 512 4x4 stride 2 pad 1 reads 9 to 16 of its 16 taps a pixel,
// 23% fewer multiply-adds than the union (every tile of 6 pixels on a 4x4 map spans a border). They are
// taken where they cost less than kSpanGain of the union's multiply-adds (a block's short last tile counted
// whole, the union's tiles as all taps): where the border is a small part of the map they save little,
// and their tiles' pixels lie farther apart. Forward, spans against the union in one process, float32,
// batch 16 / 64: that 4x4 stride 2 1.19x / 1.26x, on 16x16x128 -> 256 (8x8 outputs, 12% fewer) 1.10x / 1.08x;
// 4x4x128 -> 128 3x3 pad 1 1.32x (batch 64); 7x7x256 -> 256 5x5 pad 2 1.23x (batch 16); 14x14x32 -> 64 5x5
// pad 2 1.10x (batch 64); backward 1.0-1.12x; 32x32 and 28x28 maps (4-6% fewer) level either way.
constexpr double kSpanGain = 0.95;

struct PixelBlock {
  TapSpan rows, cols;
  int64 first_tile, first_cost;  // the tiles before this block, and their taps plus one each (the stores)
  int64 tile_cost() const { return (rows.t1 - rows.t0) * (cols.t1 - cols.t0) + 1; }
};

template <int R>
std::vector<PixelBlock> pixel_blocks(const Conv& s) {
  if (s.rows.lo <= 0 && s.rows.hi >= s.Hp && s.cols.lo <= 0 && s.cols.hi >= s.Wp) return {};  // no padding
  const auto rows = tap_spans(s.Ho, s.sh, s.rows, s.kh), cols = tap_spans(s.Wo, s.sw, s.cols, s.kw);
  std::vector<PixelBlock> blocks;
  int64 tiles = 0, cost = 0;
  for (const auto& r : rows)
    for (const auto& c : cols) {
      blocks.push_back({r, c, tiles, cost});
      const int64 n = (s.N * r.count * c.count + R - 1) / R;
      tiles += n;
      cost += n * blocks.back().tile_cost();
    }
  const int64 whole = (s.N * s.Ho * s.Wo + R - 1) / R;
  if (blocks.size() == 1 || cost - tiles >= kSpanGain * double(whole * s.kh * s.kw)) return {};
  blocks.push_back({{}, {}, tiles, cost});  // the end
  return blocks;
}

// body(tile) for every tile of the blocks, on all threads (when parallel): each thread a run of tiles of
// an equal share of their cost (a static split by count would give one thread the border's cheap tiles
// and another the interior's).
template <class F>
void for_tiles_balanced(const std::vector<PixelBlock>& blocks, bool parallel, F&& body) {
  const int64 total = blocks.back().first_cost;
  const auto tile_at = [&](int64 cost) {  // the first tile that starts at or past cost
    const auto b = std::upper_bound(blocks.begin(), blocks.end() - 1, cost,
                                    [](int64 c, const PixelBlock& p) { return c < p.first_cost; }) - 1;
    return std::min(b->first_tile + (cost - b->first_cost + b->tile_cost() - 1) / b->tile_cost(), (b + 1)->first_tile);
  };
  const auto run = [&](int t, int nt) {
    for (int64 job = tile_at(total * t / nt), end = tile_at(total * (t + 1) / nt); job < end; ++job) body(job);
  };
  if (!parallel) return run(0, 1);
#pragma omp parallel
  {
    const FloatModeGuard float_mode;
    run(omp_get_thread_num(), omp_get_num_threads());
  }
}

template <class T, int NV, int Bytes>
void conv_tiles(T* y, Grid out, const T* xp, const Conv& s, const T* wp, const Buffer<T>& bias,
                Rectify<T> rectify) {
  constexpr int64 B = kBlockO<T, NV, Bytes>;
  constexpr int R = kRowsFor<NV>;
  const int64 taps = s.kh * s.kw, blocks = (s.O + B - 1) / B;
  const auto run = [&](int count, const int64* xoff, const int64* yoff, const Taps& k) {
    for (int64 ob = 0; ob < blocks; ++ob)
      tile_pixels<T, NV, Bytes>(count, y + ob * B, yoff, std::min(B, s.O - ob * B), xp, xoff, k,
                                wp + ob * taps * s.C * B, s.C, bias.data() + ob * B, rectify);
  };
  const int64 pixels = s.Ho * s.Wo, count_all = s.N * pixels, work = count_all * s.O * s.C * taps;
  const std::vector<PixelBlock> spans = pixel_blocks<R>(s);
  if (!spans.empty()) {
    for_tiles_balanced(spans, work > kParallelWork, [&](int64 job) {
      const auto& b = *(std::upper_bound(spans.begin(), spans.end(), job,
                                         [](int64 j, const PixelBlock& p) { return j < p.first_tile; }) - 1);
      const int64 per_image = b.rows.count * b.cols.count, q0 = (job - b.first_tile) * R;
      const int count = int(std::min<int64>(R, s.N * per_image - q0));
      int64 xoff[R], yoff[R];
      // pixel (n, i, j) of the block, (i, j) counted from its first row and column; the last repeated
      for (int64 r = 0, n = q0 / per_image, i = q0 % per_image / b.cols.count, j = q0 % b.cols.count; r < R; ++r) {
        if (r > 0 && r < count && ++j == b.cols.count && (j = 0, ++i) == b.rows.count) i = 0, ++n;
        xoff[r] = ((n * s.Hp + (b.rows.first + i) * s.sh) * s.Wp + (b.cols.first + j) * s.sw) * s.C;
        yoff[r] = n * out.image + (b.rows.first + i) * out.row + (b.cols.first + j) * out.pixel;
      }
      run(count, xoff, yoff, Taps{b.rows.t0, b.rows.t1, b.cols.t0, b.cols.t1, s.kw, s.Wp * s.C});
    });
    return;
  }
  // Tiles of R consecutive pixels of the batch in row-major order, a tile running on into the next row
  // and the next image: only the batch's last tile is short. A tile reads the union of its pixels'
  // taps that see the image (the others read the zero padding).
  const int64 jobs = (count_all + R - 1) / R;
  parallel_for(jobs, work > kParallelWork, [&](int64 job) {
    const int64 p0 = job * R;
    const int count = int(std::min<int64>(R, count_all - p0));
    int64 xoff[R], yoff[R];
    int64 u0 = s.kh, u1 = 0, v0 = s.kw, v1 = 0;
    for (int64 r = 0, n = p0 / pixels, i = p0 % pixels / s.Wo, j = p0 % s.Wo; r < R; ++r) {  // the last repeated
      if (r > 0 && r < count && ++j == s.Wo && (j = 0, ++i) == s.Ho) i = 0, ++n;
      xoff[r] = ((n * s.Hp + i * s.sh) * s.Wp + j * s.sw) * s.C;
      yoff[r] = n * out.image + i * out.row + j * out.pixel;
      u0 = std::min(u0, std::clamp<int64>(s.rows.lo - i * s.sh, 0, s.kh));
      u1 = std::max(u1, std::clamp<int64>(s.rows.hi - i * s.sh, 0, s.kh));
      v0 = std::min(v0, std::clamp<int64>(s.cols.lo - j * s.sw, 0, s.kw));
      v1 = std::max(v1, std::clamp<int64>(s.cols.hi - j * s.sw, 0, s.kw));
    }
    run(count, xoff, yoff, Taps{u0, std::max(u0, u1), v0, std::max(v0, v1), s.kw, s.Wp * s.C});
  });
}

// The implicit GEMM (conv_implicit.hpp) or the direct kernel, for a convolution of C into O channels
// (forward, and the data gradient's convolutions of O into C) and its filter gradient. The direct kernel
// reads all of a block of filters (kh*kw*C x 2 vectors) for each tile of 6 pixels, from L2 once they
// outgrow L1, where the GEMM's packed blocks keep their reuse; the GEMM's tile is 2 vectors of output
// channels wide, and it pays for packing the patches, which the direct kernel reads in place. So the GEMM
// takes many channels in and out: at least 48 (in float64 too, where 32 -> 32 3x3 ran 0.91 as fast as
// direct). The filter gradient packs each pixel's patch to use it against the O channels: it takes the
// GEMM only for 128 of them and patches of 384 values (or a wide 1x1). Measured with bench/implicit_rule.py
// (direct / implicit, batch 16 and 64, float32, AVX-512, 2 threads): forward 8x8x256 -> 256 3x3 1.52-1.56, 3x3x128 -> 192 3x3
// 1.15-1.39, 8x8x64 -> 128 4x4 s2 1.11-1.14, 64 -> 64 0.97-1.01, 32x32x32 -> 32 3x3 0.79-0.80, 8 -> 64
// 0.89-0.91; data gradient 8x8x256 -> 256 1.61-1.68, 64 -> 128 4x4 s2 1.15-1.56, 14x14x32 -> 64 5x5
// (into 32 channels) 0.82-0.85; filter gradient 8x8x256 -> 256 1.10-1.33, 3x3x128 -> 192 1.60-2.10,
// 64 -> 128 4x4 s2 1.31-1.52, 16x16x64 -> 64 3x3 0.81, 16x16x64 -> 128 1x1 0.70-0.76.
inline bool implicit_rule(int64 C, int64 O, int64 kh, int64 kw, bool filter_gradient = false) {
  if (!filter_gradient) return C >= 48 && O >= 48;
  return O >= 128 && (kh * kw * C >= 384 || (kh * kw == 1 && C >= 128));
}

// Convolutions below this many multiply-adds (about 10 us on 2 cores) keep the rules: too short to time
// reliably, and too short for a wrong choice to cost much.
constexpr int64 kAutotuneWork = int64(1) << 20;
constexpr double kAutotuneTie = 0.03;

// An environment switch's setting: 0 or 1, or -1 when unset.
inline int switch_setting(const char* name) {
  const char* env = std::getenv(name);
  return env && (env[0] == '0' || env[0] == '1') ? env[0] - '0' : -1;
}

// Runs f0() or f1(), algorithms a0 and a1, for the shape `key` (hdl/autotune.hpp): `forced` where a switch
// says (>= 0); else the measured choice; else the rule's (false: f0). The first call of a shape times both
// three times on its own data (each writes all of its output from inputs it leaves alone) and keeps the
// faster (the rule's within 3%), which writes that call's output last: results depend on the recorded
// choice, not on whether a call measured. (Two threads measuring one shape at once each keep their own
// winner for that call; the later record stands for every call after.) An inference pass over filters that
// held still (filters_held) is timed as it will run, reading them kept (after an untimed call of each, which
// keeps what it makes of them), and records under its own pass; the others make their filters every call,
// as training does.
template <class T, class F0, class F1>
void tuned(autotune::Key key, int64 work, int forced, bool rule, autotune::Algorithm a0, autotune::Algorithm a1,
           F0&& f0, F1&& f1) {
  if (forced >= 0) return forced ? f1() : f0();
  if (!autotune::enabled() || work < kAutotuneWork || omp_in_parallel()) return rule ? f1() : f0();
  const bool kept = filters_held();
  if (kept) key[0] = int(autotune::kept(autotune::Pass(key[0])));
  key[1] = sizeof(T);
  key[2] = omp_get_max_threads();
  autotune::Algorithm choice;
  if (autotune::lookup(key, choice)) return choice == a1 ? f1() : f0();
  using clock = std::chrono::steady_clock;
  double best[2] = {1e300, 1e300};
  for (int rep = kept ? -1 : 0; rep < 3; ++rep)
    for (int a = 0; a < 2; ++a) {
      const auto t0 = clock::now();
      a ? f1() : f0();
      if (rep >= 0) best[a] = std::min(best[a], std::chrono::duration<double>(clock::now() - t0).count());
    }
  // within kAutotuneTie of each other the rule's choice stands: closer than the timing's noise, a choice would
  // change from run to run and with it the rounding of the results
  const bool second = std::abs(best[1] - best[0]) < kAutotuneTie * std::min(best[0], best[1]) ? rule : best[1] < best[0];
  autotune::record(key, second ? a1 : a0);
  if (!second) f0();  // this call's output, too, from the choice every later call makes
}

// The direct kernel or the implicit GEMM: HDL_CONV_IMPLICIT=1 (=0) in the environment takes the implicit
// GEMM (the direct kernel) for every convolution that is not Winograd's or one GEMM, so that the tests run
// both on every shape; else the measured choice, else implicit_rule.
template <class T, class Direct, class Implicit>
void direct_or_implicit(const autotune::Key& key, int64 work, bool rule, Direct&& direct, Implicit&& implicit) {
  tuned<T>(key, work, switch_setting("HDL_CONV_IMPLICIT"), rule, autotune::Algorithm::direct,
           autotune::Algorithm::implicit_gemm, direct, implicit);
}

// The autotune's key for a pass of the convolution s (the padded input's extent, the part not padding) and
// its multiply-adds.
inline autotune::Key shape_key(autotune::Pass pass, const ConvShape& s) {
  return {int(pass), 0, 0, s.N, s.H + s.pad_top + s.pad_bottom, s.W + s.pad_left + s.pad_right, s.C, s.out_h(),
          s.out_w(), s.O, s.kh, s.kw, s.sh, s.sw, s.pad_top, s.pad_top + s.H, s.pad_left, s.pad_left + s.W};
}
inline int64 conv_work(const ConvShape& s) { return s.N * s.out_h() * s.out_w() * s.O * s.C * s.kh * s.kw; }

// Winograd (where winograd_filter offers it) or whatever serves the shape otherwise: its tile count and
// its filters' transform make it slower than the others on a few tiles (16x16x128 -> 128 3x3 at batch 1:
// forward 0.59 against 0.44 ms, backward 1.50 against 0.89 ms on the AMD EPYC), which the rule, counting
// multiplications, does not see. HDL_CONV_WINOGRAD=1 takes Winograd wherever it is offered.
template <class T, class Other, class Winograd>
void winograd_or_other(autotune::Pass pass, const ConvShape& s, Other&& other, Winograd&& winograd) {
  tuned<T>(shape_key(pass, s), conv_work(s), switch_setting("HDL_CONV_WINOGRAD") == 1 ? 1 : -1, true,
           autotune::Algorithm::not_winograd, autotune::Algorithm::winograd, other, winograd);
}

// The implicit GEMM where the measured choice or implicit_rule says, with `plain` filters (a forward pass) or those of w flipped
// (`flipped_of`, a stride-1 data gradient) transposed in blocks, else gathered through get. Otherwise the
// direct kernel: output channels that fit one vector take tiles of 1 vector x 12 pixels, the narrowest vector that holds
// them (conv1 of LeNet, 6 channels on 8 lanes, not 16, under AVX-512); the others 2 vectors x 6.
template <class T, class Get>
void conv_core(T* y, Grid out, const T* xp, const Conv& s, Get get, const T* b, Rectify<T> rectify, const T* plain = nullptr,
               const T* flipped_of = nullptr) {
  const auto implicit = [&] {
    const ConvShape filters{1, s.kh, s.kw, s.C, s.O, s.kh, s.kw, 1, 1, 0, 0, 0, 0};
    const T* wk = plain        ? conv_patch_filters(plain, filters)
                  : flipped_of ? flipped_patch_filters(flipped_of, s.C, s.O, s.kh * s.kw)
                               : patch_filters_of<T>(s.O, s.C, s.kh, s.kw, get);
    const Patches<T> x{xp, s.N, s.Hp, s.Wp, s.C, s.Ho, s.Wo, s.kh, s.kw, s.sh, s.sw};
    conv_implicit_forward(y, out.image, out.row, out.pixel, x, s.O, wk, b, rectify);
  };
  const auto direct = [&] {
    with_channel_vector<T>(s.O, [&](auto nv, auto bytes) {
      constexpr int NV = decltype(nv)::value, Bytes = decltype(bytes)::value;
      constexpr int64 B = kBlockO<T, NV, Bytes>;
      Buffer<T> bias((s.O + B - 1) / B * B, T(0));
      if (b) std::copy(b, b + s.O, bias.begin());
      conv_tiles<T, NV, Bytes>(y, out, xp, s, pack<T, NV, Bytes>(s.O, s.C, s.kh, s.kw, get, plain), bias, rectify);
    });
  };
  const autotune::Key key{int(autotune::Pass::conv), 0, 0, s.N, s.Hp, s.Wp, s.C, s.Ho, s.Wo, s.O, s.kh, s.kw,
                          s.sh, s.sw, s.rows.lo, s.rows.hi, s.cols.lo, s.cols.hi};
  direct_or_implicit<T>(key, s.N * s.Ho * s.Wo * s.O * s.C * s.kh * s.kw, implicit_rule(s.C, s.O, s.kh, s.kw), direct,
                        implicit);
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

// dx of a stride-(sh, sw) convolution as sh*sw stride-1 convolutions of dy ("sub-pixel"), one per phase
// (a, b) of the output: the rows h with (h + pt) % sh == a receive only the filter rows u = a + sh*k,
//   dx[h0 + sh*m] = sum_k dy[m + e - k] w[a + sh*k],   h0 = (a - pt) mod sh,  e = (h0 + pt - a) / sh,
// a correlation of dy (padded by Ka-1-e, possibly negative: a crop) with those rows flipped; likewise
// columns. Each phase writes its pixels of dx in place; a phase without taps (a filter narrower than
// the stride) is zero.
struct Phase {
  int64 first, count, taps, e;  // h0, outputs in the phase, filter rows, e
};
inline std::vector<Phase> phases(int64 stride, int64 pad, int64 k, int64 size) {
  std::vector<Phase> out;
  for (int64 a = 0; a < stride; ++a) {
    const int64 h0 = ((a - pad) % stride + stride) % stride;
    out.push_back({h0, h0 < size ? (size - h0 + stride - 1) / stride : 0, (k - a + stride - 1) / stride,
                   (h0 + pad - a) / stride});
  }
  return out;
}

template <class T>
void data_gradient_subpixel(T* dx, const T* dy, const T* w, const ConvShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  const auto ph = phases(s.sh, s.pad_top, s.kh, s.H), pw = phases(s.sw, s.pad_left, s.kw, s.W);
  // dy inside a zero border wide enough for every phase: Pt rows above, rows to Hd below
  int64 Pt = 0, Pl = 0, Hd = Ho, Wd = Wo;
  for (const auto& p : ph) Pt = std::max(Pt, p.taps - 1 - p.e);
  for (const auto& p : pw) Pl = std::max(Pl, p.taps - 1 - p.e);
  for (const auto& p : ph) Hd = std::max(Hd, p.e + p.count);
  for (const auto& p : pw) Wd = std::max(Wd, p.e + p.count);
  const T* dyp = pad_input<1>(dy, s.N, Ho, Wo, s.O, Pt, Hd - Ho, Pl, Wd - Wo);
  const int64 Hp = Pt + Hd, Wp = Pl + Wd;
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
      const auto sub = [&](int64 ch, int64 o, int64 i, int64 j) {  // w's rows and columns flipped, channels transposed
        return w[((o * s.C + ch) * s.kh + a + s.sh * (r.taps - 1 - i)) * s.kw + b + s.sw * (c.taps - 1 - j)];
      };
      // dy's rows in this phase's view: from Pt - top, which a crop makes negative (taps see the same rows
      // from 0: the autotune's keys and file hold them so, non-negative)
      const Conv t{s.N, Hp, Wp, s.O, r.count, c.count, s.C, r.taps, c.taps, 1, 1,
                   {std::max<int64>(0, Pt - top), std::max<int64>(0, Pt - top + Ho)},
                   {std::max<int64>(0, Pl - left), std::max<int64>(0, Pl - left + Wo)}};
      conv_core<T>(out, grid, dyp + (top * Wp + left) * s.O, t, sub, nullptr, {}, nullptr,
                   s.sh == 1 && s.sw == 1 ? w : nullptr);  // stride 1: sub is w flipped
    }
}

// Phase (r, c)'s convolution as winograd_filter sees it: unpadded and stride 1, dy's O channels into dx's C.
inline ConvShape phase_shape(const ConvShape& s, const Phase& r, const Phase& c) {
  return {s.N, r.count + r.taps - 1, c.count + c.taps - 1, s.O, s.C, r.taps, c.taps, 1, 1, 0, 0, 0, 0};
}

// The same convolution with its filter grown to a multiple of the stride (5x5 stride 2 as 6x6), zeros in the
// rows and columns added after it, and as much more padding after the input: every output sees the same
// inputs through the same weights, and every sub-pixel phase of its data gradient is an R x R filter.
inline ConvShape stride_multiple(const ConvShape& s) {
  ConvShape t = s;
  t.kh = (s.kh + s.sh - 1) / s.sh * s.sh;
  t.kw = (s.kw + s.sw - 1) / s.sw * s.sw;
  t.pad_bottom += t.kh - s.kh;
  t.pad_right += t.kw - s.kw;
  return t;
}

// w (O, C, kh, kw) as stride_multiple(s)'s filters (O, C, t.kh, t.kw): itself, or grown with zeros in scratch.
template <class T>
const T* stride_multiple_filters(const T* w, const ConvShape& s, const ConvShape& t) {
  if (t.kh == s.kh && t.kw == s.kw) return w;
  T* out = scratch_zeroed<T, 20>(s.O * s.C * t.kh * t.kw);
  for (int64 f = 0; f < s.O * s.C; ++f)
    for (int64 u = 0; u < s.kh; ++u) std::copy_n(w + (f * s.kh + u) * s.kw, s.kw, out + (f * t.kh + u) * t.kw);
  return out;
}

// The sub-pixel phases through Winograd, every one an R x R filter (the filter grown to a multiple of its
// stride: stride_multiple), where the rule offers each phase a tile: the multiplications per channel pair of
// them all (tiles' waste and the grown filter's zeros counted), and phase (0, 0)'s tile; 0 where they do not
// serve. A 4x4 stride-2 layer onto 32x32 takes four 2x2 phases of 16x16, F(4x4, 2x2) each, where space to
// depth's data gradient fills 17x17 blocks of 2x2 pixels (the padding's among them) from 7x7 blocks: 1.44
// times the multiplications; a 5x5 stride-2 layer onto 16x16 four 3x3 phases of 8x8 (one of them of 3x3 taps,
// two of 3x2 and 2x3, one of 2x2), F(4x4, 3x3) each: 2.25 multiplications a pixel against 6.25.
inline double subpixel_winograd_cost(const ConvShape& s, WinogradTile* first = nullptr) {
  if (s.sh == 1 && s.sw == 1) return 0.0;
  const ConvShape g = stride_multiple(s);
  double cost = 0.0;
  for (const Phase& r : phases(g.sh, g.pad_top, g.kh, g.H))
    for (const Phase& c : phases(g.sw, g.pad_left, g.kw, g.W)) {
      if (!r.count || !c.count) continue;
      const ConvShape t = phase_shape(g, r, c);
      const WinogradTile k = winograd_filter(t);
      if (!k) return 0.0;
      if (first && !*first) *first = k;
      cost += winograd_cost(t, k.alpha) * double(r.count * c.count);
    }
  return cost;
}

// dx as data_gradient_subpixel, each phase by Winograd (subpixel_winograd_cost says where), written in place.
template <class T>
void data_gradient_subpixel_winograd(T* dx, const T* dy, const T* w_, const ConvShape& s_) {
  const ConvShape s = stride_multiple(s_);
  const T* w = stride_multiple_filters(w_, s_, s);
  const Grid grid{s.H * s.W * s.C, s.sh * s.W * s.C, s.sw * s.C};
  const Buffer<T> zero(s.C, T(0));
  const auto ph = phases(s.sh, s.pad_top, s.kh, s.H), pw = phases(s.sw, s.pad_left, s.kw, s.W);
  for (int64 a = 0; a < s.sh; ++a)
    for (int64 b = 0; b < s.sw; ++b) {
      const Phase r = ph[a], c = pw[b];
      if (!r.count || !c.count) continue;
      // sub(ch, o, i, j) = w[((o*C + ch)*kh + a + sh*(taps_r - 1 - i))*kw + b + sw*(taps_c - 1 - j)]: this
      // phase's rows and columns of w, flipped, channels transposed
      const FilterView<T> sub{w, (a + s.sh * (r.taps - 1)) * s.kw + b + s.sw * (c.taps - 1), s.kh * s.kw,
                              s.C * s.kh * s.kw, -s.sh * s.kw, -s.sw};
      const Padded<T> dyp{dy, s.out_h(), s.out_w(), s.O, r.taps - 1 - r.e, c.taps - 1 - c.e};
      with_winograd(winograd_filter(phase_shape(s, r, c)), [&](auto R, auto A) {
        winograd_forward<R, A>(dx + (r.first * s.W + c.first) * s.C, dyp, s.N, r.count, c.count, s.C, sub, zero.data(),
                               {}, grid);
      });
    }
}

// The data gradient where Winograd does not serve: the sub-pixel convolutions above, or, for strided
// filters, one GEMM and a gather (col2im, conv_col2im.hpp), whose product keeps its efficiency where the
// phases are a few pixels each. Offered where the gather adds runs of at least a vector of channels and one
// image's products fit kColsBudget (a 256x256 map would hold 34 MB of them); measured, else col2im for output
// maps of at most kCol2imPixels pixels from and into 128 channels or more. Batch 16,
// float32, sub-pixel -> col2im (ms): 8x8x256 -> 512 4x4 s2 9.5 -> 6.8; 8x8x128 -> 256 3x3 s2 1.12 -> 0.78;
// 4x4x256 -> 256 2x2 s2 0.93 -> 0.27; batch 64 8x8x64 -> 128 4x4 s2 1.67 both; 32x32x64 -> 128 4x4 s2
// (space to depth's Winograd 4.2) 6.2; a 7x7 s2 stem of 3 channels 1.5 -> 4.4 (not offered).
// HDL_CONV_COL2IM=1 (=0) takes col2im (the sub-pixel path) for every data gradient that reaches here;
// HDL_CONV_IMPLICIT set either way, and this one not, takes the sub-pixel path (whose phases it forces).
constexpr int64 kCol2imPixels = 64;

template <class T>
void data_gradient_unless_winograd(T* dx, const T* dy, const T* w, const ConvShape& s) {
  const auto subpixel = [&] { data_gradient_subpixel(dx, dy, w, s); };
  const auto col2im = [&] { data_gradient_col2im(dx, dy, w, s); };
  int forced = switch_setting("HDL_CONV_COL2IM");
  if (forced < 0 && switch_setting("HDL_CONV_IMPLICIT") >= 0) forced = 0;
  const bool offered = (s.sh > 1 || s.sw > 1) && s.C >= Simd<T>::lanes &&
                       s.out_h() * s.out_w() * s.kh * s.kw * s.C <= kColsBudget;
  if (forced < 0 && !offered) return subpixel();
  const bool rule = s.C >= 128 && s.O >= 128 && s.out_h() * s.out_w() <= kCol2imPixels;
  tuned<T>(shape_key(autotune::Pass::data_gradient, s), conv_work(s), forced, rule, autotune::Algorithm::subpixel,
           autotune::Algorithm::col2im, subpixel, col2im);
}

// The GEMM core serves filters that cover their input (a fully connected layer). 1x1 stride-1 filters,
// which it could serve too, measured faster direct here (batch 64, 16x16 64->128: dw 2.8-3.8 against
// 6.0-6.7 ms, dx+dw 5.0-6.2 against 8.7-13.8 ms; the forward level), so they stay direct.
inline bool gemm_serves(const ConvShape& s) { return conv_is_gemm(s) && !(s.kh == 1 && s.kw == 1 && s.H * s.W > 1); }

}  // namespace

// The forward pass where neither one GEMM nor Winograd serves.
template <class T>
void forward_unless_winograd(T* y, const T* x, const T* w, const T* b, const ConvShape& s, Rectify<T> rectify) {
  const T* xp = pad_input<0>(x, s.N, s.H, s.W, s.C, s.pad_top, s.pad_bottom, s.pad_left, s.pad_right);
  if (conv_one_channel_serves<T>(s))
    return conv_one_channel(y, xp, s.H + s.pad_top + s.pad_bottom, s.W + s.pad_left + s.pad_right, w, b, s, rectify);
  const Conv c{s.N, s.H + s.pad_top + s.pad_bottom, s.W + s.pad_left + s.pad_right, s.C, s.out_h(), s.out_w(), s.O,
               s.kh, s.kw, s.sh, s.sw, {s.pad_top, s.pad_top + s.H}, {s.pad_left, s.pad_left + s.W}};
  conv_core<T>(y, Grid{s.out_h() * s.out_w() * s.O, s.out_w() * s.O, s.O}, xp, c,
               [&](int64 o, int64 ch, int64 u, int64 v) { return w[((o * s.C + ch) * s.kh + u) * s.kw + v]; }, b, rectify,
               w);
}

// The Winograd tiles the rules offer each pass of s (the autotune then measures them against the rest):
// the forward pass's, the data gradient's (the stride-1 convolution of dy that it is, or space to depth's),
// and the filter gradient's; none where one GEMM serves. `strided`: through space to depth.
struct WinogradOffer {
  WinogradTile forward, data_gradient, filter_gradient;
  bool strided = false, subpixel = false;  // subpixel: the data gradient's phases (its tile: phase (0, 0)'s)
};

// dx as a stride-1 convolution of dy, padded by kernel-1-pad, with the filters flipped: its output is (H, W)
inline ConvShape data_gradient_shape(const ConvShape& s) {
  return {s.N, s.out_h(), s.out_w(), s.O, s.C, s.kh, s.kw, 1, 1, s.kh - 1 - s.pad_top, s.H + s.pad_top - s.out_h(),
          s.kw - 1 - s.pad_left, s.W + s.pad_left - s.out_w()};
}

template <class T>
WinogradOffer winograd_offer(const ConvShape& s) {
  if (gemm_serves(s)) return {};
  // a strided data gradient: space to depth's, or the sub-pixel phases' where they take fewer multiplications
  WinogradTile phase;
  const double by_phases = subpixel_winograd_cost(s, &phase) * double(s.C);
  const double direct = double(s.kh * s.kw) / double(s.sh * s.sw) * double(s.H * s.W * s.C);  // the phases' own
  const bool phases_pay = by_phases > 0 && by_phases < kSpaceToDepthGain * direct;
  if (const auto k = space_to_depth_winograd(s)) {
    const ConvShape t = space_to_depth_data_gradient_shape(s);
    const WinogradTile kd = winograd_filter(t);
    if (phases_pay && (!kd || by_phases < winograd_cost(t, kd.alpha) * double(t.out_h() * t.out_w() * t.O)))
      return {k, phase, k, true, true};
    return {k, kd, k, true};
  }
  if (phases_pay) return {{}, phase, {}, false, true};
  const bool stride1 = s.sh == 1 && s.sw == 1;
  const WinogradTile k = winograd_filter(s);
  // Inputs of fewer channels than a vector measured faster without Winograd's filter gradient, through the
  // direct one (conv1 of the CIFAR net: 2.6 against 2.9 ms); they take the other paths unmeasured.
  return {k, stride1 ? winograd_filter(data_gradient_shape(s)) : WinogradTile{},
          s.C < Simd<T>::lanes ? WinogradTile{} : k, false};
}

template <class T>
void conv_winograd_offer(const ConvShape& s, int64* offer) {
  const WinogradOffer k = winograd_offer<T>(s);
  const WinogradTile tiles[3] = {k.forward, k.data_gradient, k.filter_gradient};
  for (int i = 0; i < 3; ++i) {
    offer[2 * i] = tiles[i].r;
    offer[2 * i + 1] = tiles[i] ? tiles[i].alpha : 0;
  }
  offer[6] = k.strided;
  offer[7] = k.subpixel;
}

// sigma over y (n values) in place, in chunks across the threads: the activations the paths other than one
// GEMM apply after (all but the ReLUs).
template <class T>
void activate_all(T* y, int64 n, Activation act, T slope) {
  for_chunks(n, [&](int64 b, int64 e) { activate(y + b, e - b, act, slope); });
}

// The forward pass of the paths other than one GEMM, which apply the ReLU and the leaky ReLU in registers.
template <class T>
void conv2d_forward_rectified(T* y, const T* x, const T* w, const T* b, const ConvShape& s, Rectify<T> rectify) {
  // an inference over filters that held still since its last pass keeps (and reads) their transforms, and
  // chooses its algorithms as for filters read kept
  const HoldFilters held(keep_filters() && filters_hold(w, s.O * s.C * s.kh * s.kw));
  const auto other = [&] { forward_unless_winograd(y, x, w, b, s, rectify); };
  const WinogradOffer offer = winograd_offer<T>(s);
  const WinogradTile k = offer.forward;
  if (offer.strided)
    return winograd_or_other<T>(autotune::Pass::winograd_forward, s, other,
                                [&] { space_to_depth_forward(y, x, w, b, s, k, rectify); });
  if (!k) return other();
  winograd_or_other<T>(autotune::Pass::winograd_forward, s, other, [&] {
    const int64 r = k.r;
    const FilterView<T> filter{w, 0, s.C * r * r, r * r, r, 1};
    const Padded<T> xp{x, s.H, s.W, s.C, s.pad_top, s.pad_left};
    const winograd::FilterSource<T> source{w, s.O * s.C * r * r};
    with_winograd(k, [&](auto R, auto A) {
      winograd_forward<R, A>(y, xp, s.N, s.out_h(), s.out_w(), s.O, filter, b, rectify, {}, source);
    });
  });
}

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, Activation act, T slope) {
  if (gemm_serves(s)) return conv_gemm_forward(y, x, w, s, Epilogue<T>{b, false, act, slope});
  const bool in_registers = Rectify<T>::covers(act);
  conv2d_forward_rectified(y, x, w, b, s, Rectify<T>{in_registers ? act : Activation::linear, slope});
  if (!in_registers) activate_all(y, s.N * s.out_h() * s.out_w() * s.O, act, slope);
}

// The filter gradient where neither one GEMM nor Winograd serves.
template <class T>
void filter_gradient_unless_winograd(T* dw, T* db, const T* dy, const T* x, const ConvShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  const T* xs = pad_input<0>(x, s.N, s.H, s.W, s.C, s.pad_top, s.pad_bottom, s.pad_left, s.pad_right);
  const int64 Hp = s.H + s.pad_top + s.pad_bottom, Wp = s.W + s.pad_left + s.pad_right;
  const auto implicit = [&] {
    conv_implicit_filter_gradient(dw, dy, Patches<T>{xs, s.N, Hp, Wp, s.C, Ho, Wo, s.kh, s.kw, s.sh, s.sw}, s.O);
    bias_gradient(db, dy, s.N * Ho * Wo, s.O);
  };
  const auto direct = [&] {
    with_channel_vector<T>(s.O, [&](auto nv, auto bytes) {
      filter_gradient_direct<T, decltype(nv)::value, decltype(bytes)::value>(dw, db, dy, xs, Hp, Wp, s);
    });
  };
  direct_or_implicit<T>(shape_key(autotune::Pass::filter_gradient, s), conv_work(s),
                        implicit_rule(s.C, s.O, s.kh, s.kw, true), direct, implicit);
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  const HoldFilters held(false);  // the data gradient's filters are w flipped: never kept under w's address
  if (gemm_serves(s)) return conv_gemm_backward(dx, dw, db, dy, x, w, s);
  const int64 Ho = s.out_h(), Wo = s.out_w();
  const WinogradOffer offer = winograd_offer<T>(s);

  if (dx) {
    // the filters flipped in space and transposed in channels: w'(c, o, u, v) = w(o, c, kh-1-u, kw-1-v)
    const FilterView<T> flipped{w, (s.kh - 1) * s.kw + s.kw - 1, s.kh * s.kw, s.C * s.kh * s.kw, -s.kw, -1};
    const WinogradTile k = offer.data_gradient;
    const auto other = [&] { data_gradient_unless_winograd(dx, dy, w, s); };
    if (offer.subpixel) {
      winograd_or_other<T>(autotune::Pass::winograd_data_gradient, s, other,
                           [&] { data_gradient_subpixel_winograd(dx, dy, w, s); });
    } else if (k && offer.strided) {
      winograd_or_other<T>(autotune::Pass::winograd_data_gradient, s, other,
                           [&] { space_to_depth_data_gradient(dx, dy, w, s, k); });
    } else if (!k) {
      other();
    } else {
      winograd_or_other<T>(autotune::Pass::winograd_data_gradient, s, other, [&] {
        const Buffer<T> zero(s.C, T(0));
        const Padded<T> dyp{dy, Ho, Wo, s.O, s.kh - 1 - s.pad_top, s.kw - 1 - s.pad_left};
        with_winograd(k, [&](auto R, auto A) { winograd_forward<R, A>(dx, dyp, s.N, s.H, s.W, s.C, flipped, zero.data(), {}); });
      });
    }
  }

  const auto other = [&] { filter_gradient_unless_winograd(dw, db, dy, x, s); };
  const WinogradTile k = offer.filter_gradient;
  if (offer.strided)
    return winograd_or_other<T>(autotune::Pass::winograd_filter_gradient, s, other,
                                [&] { space_to_depth_filter_gradient(dw, db, dy, x, s, k); });
  if (!k) return other();
  winograd_or_other<T>(autotune::Pass::winograd_filter_gradient, s, other, [&] {
    const Padded<T> xp{x, s.H, s.W, s.C, s.pad_top, s.pad_left};
    with_winograd(k, [&](auto R, auto A) { winograd_filter_gradient<R, A>(dw, db, dy, xp, s.N, Ho, Wo, s.O); });
  });
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(conv)
