// The packed, cache-blocked GEMM of gemm.hpp, in the BLIS design: five loops around a
// register-blocked micro-kernel. Loops, outermost first:
//   jc: NC columns of B and C           (B block in L3)
//   pc: KC of the sum; B(pc, jc) is packed into NR-column panels, kc x NR each
//   ic: MC rows of A and C; A(ic, pc) is packed into MR-row panels (the A block lives in L2)
//   jr, ir: one MR x NR tile of C per packed A panel and B panel (the B panel lives in L1)
// The micro-kernel keeps the tile in MR x 2 vector registers: one broadcast of A and two vector
// loads of B feed 2 MR fused multiply-adds per step of the sum. MR follows the register file:
// 6 with AVX2 or SSE (16 registers), 12 with AVX-512 (32). Threads share the packed blocks and
// split the tiles of each (ic, pc) block; the epilogue (bias, activation) runs in the store of
// the last KC block, while the tile is in cache.
#pragma once
#include <omp.h>
#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "buffer.hpp"
#include "hdl/common.hpp"
#include "hdl/float_mode.hpp"
#include "math.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {


// A strided matrix: element (i, j) at p[i * rs + j * cs].
template <class T>
struct Mat {
  T* p;
  int64 rs, cs;
  T& operator()(int64 i, int64 j) const { return p[i * rs + j * cs]; }
  Mat<T> t() const { return {p, cs, rs}; }  // the transpose, no copy
  Mat<T> at(int64 i, int64 j) const { return {p + i * rs + j * cs, rs, cs}; }
};

// What the store of C does after the product: z = C + bias (bias[i] per row or bias[j] per
// column, when not null), then C = sigma(z) for the activations of common.hpp.
template <class T>
struct Epilogue {
  const T* bias = nullptr;
  bool bias_per_row = true;
  Activation act = Activation::linear;
  T slope = T(0);
  Epilogue<T> transposed() const { return {bias, !bias_per_row, act, slope}; }
  T finish(T z, int64 i, int64 j) const {  // one element: z + bias, then sigma
    if (bias) z += bias_per_row ? bias[i] : bias[j];
    activate(&z, 1, act, slope);
    return z;
  }
  // c = sigma(alpha sum + beta c + bias) for C(i, j) = c (beta = 0: c's old value unread)
  void store(T& c, T sum, T alpha, T beta, int64 i, int64 j) const {
    c = finish(alpha * sum + (beta != T(0) ? beta * c : T(0)), i, j);
  }
  bool trivial() const { return bias == nullptr && act == Activation::linear; }
};

template <class T>
struct GemmSizes {
  static constexpr int L = Simd<T>::lanes;
  static constexpr int MR = kVectorBytes == 64 ? 12 : 6;  // rows of a tile: broadcasts of A
  static constexpr int NR = 2 * L;                        // columns of a tile: two vectors of B
  // kc x NR of B: 16 KB in L1 with AVX2; 64 KB with AVX-512, which streams from L2 but halves the passes over C
  // (K = 784 in 2 blocks, not 4; 256 x 512 x 784 x W^T 768 -> 724 us, 1024^3 7.16 -> 6.98 ms on 2 threads)
  static constexpr int64 KC = kVectorBytes == 64 ? 512 : 256;
  static constexpr int64 MC = (int64(1) << 18) / int64(sizeof(T)) / KC / MR * MR;  // MC x KC of A: <= 256 KB of L2
  static constexpr int64 NC = 4096;                       // KC x NC of B: 4 MB (fp32) of L3
};

// ---- packing ----------------------------------------------------------------------------------

// r[k][j] = r[j][k] for an 8 x 8 block of float32 in AVX2 registers: the shuffles are those of
// _mm256_unpacklo/hi_ps, _mm256_shuffle_ps and _mm256_permute2f128_ps.
template <class V, class I>
inline void transpose8x8(V (&r)[8]) {
  V t[8], u[8];
  for (int j = 0; j < 8; j += 2) {
    t[j] = __builtin_shuffle(r[j], r[j + 1], I{0, 8, 1, 9, 4, 12, 5, 13});
    t[j + 1] = __builtin_shuffle(r[j], r[j + 1], I{2, 10, 3, 11, 6, 14, 7, 15});
  }
  for (int j = 0; j < 8; j += 4)
    for (int q = 0; q < 2; ++q) {
      u[j + 2 * q] = __builtin_shuffle(t[j + q], t[j + q + 2], I{0, 1, 8, 9, 4, 5, 12, 13});
      u[j + 2 * q + 1] = __builtin_shuffle(t[j + q], t[j + q + 2], I{2, 3, 10, 11, 6, 7, 14, 15});
    }
  for (int k = 0; k < 4; ++k) {
    r[k] = __builtin_shuffle(u[k], u[k + 4], I{0, 1, 2, 3, 8, 9, 10, 11});
    r[k + 4] = __builtin_shuffle(u[k], u[k + 4], I{4, 5, 6, 7, 12, 13, 14, 15});
  }
}

// 32-byte vectors (a ymm register) for the transposes of packing, on AVX2 and on AVX-512 alike
// (whose 64-byte vectors would need other shuffles for no gain: packing is bound by the loads).
constexpr bool kHave256 = kVectorBytes >= 32;
template <class T>
struct V256 {
  static constexpr int lanes = 32 / sizeof(T);
  typedef T vec __attribute__((vector_size(32), aligned(sizeof(T)), may_alias));
  static vec load(const T* p) { return *reinterpret_cast<const vec*>(p); }
  static void store(T* p, vec v) { *reinterpret_cast<vec*>(p) = v; }
};
typedef std::int32_t I32x8 __attribute__((vector_size(32)));

// A store of 32 bytes that bypasses the caches (non-temporal; p 32-byte aligned), for output that is
// read long after, from memory anyway; stream_fence() orders them before the threads meet again.
template <bool Stream, class T>
inline void store256(T* p, typename V256<T>::vec v) {
#if defined(__AVX__)
  if constexpr (Stream && sizeof(T) == 4) return _mm256_stream_ps(p, (__m256)v);
  if constexpr (Stream && sizeof(T) == 8) return _mm256_stream_pd(p, (__m256d)v);
#endif
  V256<T>::store(p, v);
}
inline void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

// dst[k * ldd + j] = src[j * lds + k] for an 8 x 8 block of float32.
template <bool Stream = false>
inline void transpose8x8(float* HDL_RESTRICT dst, int64 ldd, const float* HDL_RESTRICT src, int64 lds) {
  using S = V256<float>;
  S::vec r[8];
  for (int j = 0; j < 8; ++j) r[j] = S::load(src + j * lds);
  transpose8x8<S::vec, I32x8>(r);
  for (int k = 0; k < 8; ++k) store256<Stream, float>(dst + k * ldd, r[k]);
}

// r[k][j] = r[j][k] for a 4 x 4 block of float64 in AVX2 registers (_mm256_unpacklo/hi_pd,
// _mm256_permute2f128_pd).
typedef std::int64_t I64x4 __attribute__((vector_size(32)));
template <class V>
inline void transpose4x4(V (&r)[4]) {
  V t[4];
  for (int j = 0; j < 4; j += 2) {
    t[j] = __builtin_shuffle(r[j], r[j + 1], I64x4{0, 4, 2, 6});
    t[j + 1] = __builtin_shuffle(r[j], r[j + 1], I64x4{1, 5, 3, 7});
  }
  for (int q = 0; q < 2; ++q) {
    r[q] = __builtin_shuffle(t[q], t[q + 2], I64x4{0, 1, 4, 5});
    r[q + 2] = __builtin_shuffle(t[q], t[q + 2], I64x4{2, 3, 6, 7});
  }
}

// dst[k * ldd + j] = src[j * lds + k] for a 4 x 4 block of float64.
template <bool Stream = false>
inline void transpose4x4(double* HDL_RESTRICT dst, int64 ldd, const double* HDL_RESTRICT src, int64 lds) {
  using S = V256<double>;
  S::vec r[4];
  for (int j = 0; j < 4; ++j) r[j] = S::load(src + j * lds);
  transpose4x4(r);
  for (int k = 0; k < 4; ++k) store256<Stream, double>(dst + k * ldd, r[k]);
}

// dst[k * ldd + j] = src[j * lds + k] for an 8 x 8 (float32) or 4 x 4 (float64) block.
template <bool Stream = false>
inline void transpose_block(float* dst, int64 ldd, const float* src, int64 lds) {
  transpose8x8<Stream>(dst, ldd, src, lds);
}
template <bool Stream = false>
inline void transpose_block(double* dst, int64 ldd, const double* src, int64 lds) {
  transpose4x4<Stream>(dst, ldd, src, lds);
}

// dst[k * ldd + j] = src[j * lds + k] for j < rows, k < cols: G x G blocks in registers wherever a whole
// block is there, the edges one by one (all of it without 32-byte vectors). Stream: the blocks' stores
// bypass the caches where dst and ldd let every block row be 32-byte aligned (the caller's stream_fence()
// then ends its part).
template <class T, bool Stream = false>
inline void transpose_rect(T* HDL_RESTRICT dst, int64 ldd, const T* HDL_RESTRICT src, int64 lds, int64 rows,
                           int64 cols) {
  constexpr int64 G = kHave256 ? V256<T>::lanes : 0;  // 0: no blocks
  const int64 jb = G ? rows / G * G : 0, kb = G ? cols / G * G : 0;
  if constexpr (G > 0) {
    auto blocks = [&](auto stream) {
      for (int64 k = 0; k < kb; k += G)
        for (int64 j = 0; j < jb; j += G)
          transpose_block<decltype(stream)::value>(dst + k * ldd + j, ldd, src + j * lds + k, lds);
    };
    if (Stream && reinterpret_cast<std::uintptr_t>(dst) % 32 == 0 && ldd % G == 0) blocks(std::true_type{});
    else blocks(std::false_type{});
  }
  for (int64 j = 0; j < rows; ++j)  // along each source row: contiguous reads
    for (int64 k = j < jb ? kb : 0; k < cols; ++k) dst[k * ldd + j] = src[j * lds + k];
}

// ap[k][r] = row[r][k] for MR rows given by their pointers, k < kc: G rows at a time (8 float32, 4 float64),
// each a G x G block transposed in registers. The last group may hold fewer than G rows (zeros for the
// rest): its store of each k then writes past this k's MR values into the next k's slots, which the next
// k's first store overwrites; so a block of k runs only while another k follows it.
template <class T>
inline void pack_rows(T* HDL_RESTRICT ap, const T* const* row, int64 kc) {
  constexpr int MR = GemmSizes<T>::MR;
  int64 k0 = 0;
  if constexpr (kHave256) {
    using S = V256<T>;
    constexpr int G = S::lanes, groups = (MR + G - 1) / G;
    for (; k0 + G < kc; k0 += G) {
      typename S::vec r[groups][G];
      for (int g = 0; g < groups; ++g) {
        for (int j = 0; j < G; ++j) r[g][j] = g * G + j < MR ? S::load(row[g * G + j] + k0) : typename S::vec{};
        if constexpr (G == 8) transpose8x8<typename S::vec, I32x8>(r[g]);
        else transpose4x4(r[g]);
      }
      for (int k = 0; k < G; ++k)
        for (int g = 0; g < groups; ++g) S::store(ap + (k0 + k) * MR + g * G, r[g][k]);
    }
  }
  for (; k0 < kc; ++k0)  // the rest (all of it elsewhere), MR rows unrolled
    for (int r = 0; r < MR; ++r) ap[k0 * MR + r] = row[r][k0];
}

// A(i0 .. i0+rows, k0 .. k0+kc) as MR-row panels: ap[panel][k][r], zero past `rows`.
template <class T>
inline void pack_a_panel(T* HDL_RESTRICT ap, Mat<const T> A, int64 rows, int64 kc) {
  constexpr int MR = GemmSizes<T>::MR;
  if (A.rs == 1 && rows == MR) {  // column-major A (W^T delta): each k reads MR consecutive values
    for (int64 k = 0; k < kc; ++k)
      for (int r = 0; r < MR; ++r) ap[k * MR + r] = A.p[k * A.cs + r];
    return;
  }
  if (A.cs == 1 && rows == MR) {  // row-major A (W a, x W^T): MR rows of a block of k, transposed in registers
    const T* row[MR];
    for (int r = 0; r < MR; ++r) row[r] = A.p + r * A.rs;
    return pack_rows(ap, row, kc);
  }
  for (int64 k = 0; k < kc; ++k) {
    for (int64 r = 0; r < rows; ++r) ap[k * MR + r] = A(r, k);
    for (int64 r = rows; r < MR; ++r) ap[k * MR + r] = T(0);
  }
}

// The packer of a stored A for gemm_blocked: pack(ap, i0, rows, k0, kc) packs A(i0 .., k0 ..).
template <class T>
struct PackA {
  Mat<const T> A;
  void operator()(T* ap, int64 i0, int64 rows, int64 k0, int64 kc) const { pack_a_panel(ap, A.at(i0, k0), rows, kc); }
};

// B(k0 .. k0+kc, j0 .. j0+cols) as an NR-column panel: bp[k][j], zero past `cols`.
template <class T>
inline void pack_b_panel(T* HDL_RESTRICT bp, Mat<const T> B, int64 kc, int64 cols) {
  constexpr int NR = GemmSizes<T>::NR;
  if (B.cs == 1 && cols == NR) {  // row-major B: two vector copies per k
    using S = Simd<T>;
    for (int64 k = 0; k < kc; ++k) {
      S::store(bp + k * NR, S::load(B.p + k * B.rs));
      S::store(bp + k * NR + S::lanes, S::load(B.p + k * B.rs + S::lanes));
    }
    return;
  }
  if (B.rs == 1 && cols == NR) {  // column-major B (x W^T): each column of the panel is contiguous along k
    transpose_rect(bp, NR, B.p, B.cs, NR, kc);
    return;
  }
  for (int64 k = 0; k < kc; ++k) {
    for (int64 j = 0; j < cols; ++j) bp[k * NR + j] = B(k, j);
    for (int64 j = cols; j < NR; ++j) bp[k * NR + j] = T(0);
  }
}

// Panels [p0, p1) of the block B(k0 .. k0+kc, j0 .. j0+nc), as pack_b_panel packs each. Row-major B is read
// a row of all these panels at a time, not a panel at a time down k: a panel's walk down k reads 2 lines
// from each row, rows far apart (a row of 3136 float32 is 12.5 KB), which the hardware prefetchers do not
// follow; along the rows they do (16 x 3136 x 1024 A B, the data gradient of a dense layer at batch 16:
// see gemm.hpp).
template <class T>
inline void pack_b_panels(T* HDL_RESTRICT bp, Mat<const T> B, int64 kc, int64 nc, int64 p0, int64 p1) {
  constexpr int NR = GemmSizes<T>::NR;
  const int64 full = std::min(p1, nc / NR);  // whole panels [p0, full)
  if (B.cs == 1 && full > p0) {
    using S = Simd<T>;
    for (int64 k = 0; k < kc; ++k) {
      const T* row = B.p + k * B.rs;
      for (int64 p = p0; p < full; ++p) {
        S::store(bp + (p * kc + k) * NR, S::load(row + p * NR));
        S::store(bp + (p * kc + k) * NR + S::lanes, S::load(row + p * NR + S::lanes));
      }
    }
    p0 = full;
  }
  for (int64 p = p0; p < p1; ++p) pack_b_panel(bp + p * kc * NR, B.at(0, p * NR), kc, std::min<int64>(NR, nc - p * NR));
}

// The packer of a stored B for gemm_blocked: pack(bp, k0, j0, kc, nc, p0, p1) packs panels [p0, p1) of the
// block B(k0 .. k0+kc, j0 .. j0+nc), panel p at bp + p*kc*NR (a convolution's patches: conv_implicit.hpp).
template <class T>
struct PackB {
  Mat<const T> B;
  void operator()(T* bp, int64 k0, int64 j0, int64 kc, int64 nc, int64 p0, int64 p1) const {
    pack_b_panels(bp, B.at(k0, j0), kc, nc, p0, p1);
  }
};

// ---- the micro-kernel -------------------------------------------------------------------------

// acc[r][v] = sum_k a[k][r] b[k][v*L ..]: R rows (R <= MR) of the MR x NR tile, NV of its 2 vectors of columns
// (1 for a last panel of at most L columns, whose second vector is zeros: N = 48 channels left a quarter of
// the multiply-adds idle).
template <class T, int R, int NV = 2>
inline void micro_kernel(int64 kc, const T* HDL_RESTRICT a, const T* HDL_RESTRICT b,
                         typename Simd<T>::vec (&acc)[GemmSizes<T>::MR][2]) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes, MR = GemmSizes<T>::MR, NR = GemmSizes<T>::NR;
  V c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = S::zero();
#pragma GCC unroll 4
  for (int64 k = 0; k < kc; ++k) {
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = S::load(b + k * NR + v * L);
    for (int r = 0; r < R; ++r) {
      const T x = a[k * MR + r];
      for (int v = 0; v < NV; ++v) c[r][v] += x * bv[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    acc[r][0] = c[r][0];
    acc[r][1] = NV == 2 ? c[r][NV - 1] : S::zero();
  }
}

// C(tile) = alpha acc + beta C, then the epilogue when `last` (the last KC block of the sum).
// (i0, j0): where the tile sits in the whole C, for the bias.
template <class T>
inline void store_tile(Mat<T> C, int rows, int cols, const typename Simd<T>::vec (&acc)[GemmSizes<T>::MR][2],
                       T alpha, T beta, const Epilogue<T>& ep, bool last, int64 i0, int64 j0) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes, NR = GemmSizes<T>::NR;
  const bool bias = last && ep.bias != nullptr;
  const bool rectified = Rectify<T>::covers(ep.act);  // in registers; the other activations after the store
  const Rectify<T> rectify{ep.act, ep.slope};
  if (C.cs == 1 && cols == NR) {
    for (int r = 0; r < rows; ++r) {
      T* c = C.p + r * C.rs;
      V v0 = alpha * acc[r][0], v1 = alpha * acc[r][1];
      if (beta != T(0)) {
        v0 += beta * S::load(c);
        v1 += beta * S::load(c + L);
      }
      if (bias) {
        if (ep.bias_per_row) {
          v0 += ep.bias[i0 + r];
          v1 += ep.bias[i0 + r];
        } else {
          v0 += S::load(ep.bias + j0);
          v1 += S::load(ep.bias + j0 + L);
        }
      }
      if (last && rectified) {  // in registers; NaN stays NaN, as in the stand-alone ReLU
        v0 = rectify(v0, S::zero());
        v1 = rectify(v1, S::zero());
      }
      S::store(c, v0);
      S::store(c + L, v1);
      if (last && !rectified) activate(c, NR, ep.act, ep.slope);
    }
    return;
  }
  T z[NR];
  for (int r = 0; r < rows; ++r) {
    S::store(z, acc[r][0]);
    S::store(z + L, acc[r][1]);
    for (int j = 0; j < cols; ++j) {
      z[j] *= alpha;
      if (beta != T(0)) z[j] += beta * C(r, j);
      if (bias) z[j] += ep.bias_per_row ? ep.bias[i0 + r] : ep.bias[j0 + j];
    }
    if (last) activate(z, cols, ep.act, ep.slope);
    for (int j = 0; j < cols; ++j) C(r, j) = z[j];
  }
}

// The tile's micro-kernel for its number of rows (fewer than MR only at the bottom edge) and of columns.
template <class T, int R = GemmSizes<T>::MR>
inline void micro_tile(int rows, int cols, int64 kc, const T* a, const T* b,
                       typename Simd<T>::vec (&acc)[GemmSizes<T>::MR][2]) {
  if constexpr (R > 1) {
    if (rows < R) return micro_tile<T, R - 1>(rows, cols, kc, a, b, acc);
  }
  if (cols <= Simd<T>::lanes) return micro_kernel<T, R, 1>(kc, a, b, acc);
  micro_kernel<T, R>(kc, a, b, acc);
}

// ---- the loops around it ----------------------------------------------------------------------

// [begin, end) of n items for thread t of nt, in contiguous ranges.
inline void thread_share(int64 n, int t, int nt, int64& begin, int64& end) {
  begin = n * t / nt;
  end = n * (t + 1) / nt;
}

template <class T>
T* gemm_buffer(Buffer<T>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// The packed, blocked product on `threads` threads (1: no parallel region at all). A and B are given by their
// packers, pack_a(ap, i0, rows, k0, kc) and pack_b(bp, k0, j0, kc, nc, p0, p1) (PackA and PackB for stored
// matrices; the patches of a convolution, conv_implicit.hpp).
template <class T, class PackAFn, class PackBFn>
void gemm_blocked(int64 M, int64 N, int64 K, T alpha, const PackAFn& pack_a, const PackBFn& pack_b, T beta, Mat<T> C,
                  const Epilogue<T>& ep, int threads) {
  using G = GemmSizes<T>;
  using V = typename Simd<T>::vec;
  constexpr int MR = G::MR, NR = G::NR;
  // K in equal blocks of at most KC (784 = 4 x 196, not 3 x 256 + 16: every block pays a pass over C)
  const int64 kblocks = std::max<int64>(1, (K + G::KC - 1) / G::KC);  // K = 0 still scales C and runs the epilogue
  const int64 kc_max = std::max<int64>(1, (K + kblocks - 1) / kblocks);
  const int64 nc_max = std::min<int64>(G::NC, (N + NR - 1) / NR * NR);
  const int64 mblocks = (M + G::MC - 1) / G::MC;  // M, too, in equal blocks of whole panels
  const int64 mc_max = ((M + mblocks - 1) / mblocks + MR - 1) / MR * MR;
  // Grow-only buffers of the calling thread, shared with its team: B block, and A blocks x 2
  // (a thread may pack the next A block while another still reads the last one).
  thread_local Buffer<T> b_buf, a_buf;
  T* bp = gemm_buffer(b_buf, kc_max * nc_max);
  T* ap_both = gemm_buffer(a_buf, 2 * kc_max * mc_max);

  auto run = [&](int t, int nt) {
    int64 parity = 0;
    for (int64 jc = 0; jc < N; jc += G::NC) {
      const int64 nc = std::min(G::NC, N - jc), jpanels = (nc + NR - 1) / NR;
      for (int64 kb = 0; kb < kblocks; ++kb) {
        const int64 pc = kb * kc_max, kc = std::max<int64>(0, std::min(kc_max, K - pc));
        const bool last = kb == kblocks - 1;
        const T beta_k = kb == 0 ? beta : T(1);
        if (nt > 1) {
#pragma omp barrier
        }
        int64 p0, p1;
        thread_share(jpanels, t, nt, p0, p1);
        pack_b(bp, pc, jc, kc, nc, p0, p1);
        for (int64 ic = 0; ic < M; ic += mc_max) {
          const int64 mc = std::min(mc_max, M - ic), ipanels = (mc + MR - 1) / MR;
          T* ap = ap_both + (parity++ & 1) * kc_max * mc_max;
          thread_share(ipanels, t, nt, p0, p1);
          for (int64 p = p0; p < p1; ++p)
            pack_a(ap + p * kc * MR, ic + p * MR, std::min<int64>(MR, mc - p * MR), pc, kc);
          if (nt > 1) {
#pragma omp barrier
          }
          // tiles in column-panel-major order, so that a thread reuses its B panel from L1
          int64 t0, t1;
          thread_share(ipanels * jpanels, t, nt, t0, t1);
          for (int64 q = t0; q < t1; ++q) {
            const int64 jp = q / ipanels, ipn = q % ipanels;
            const int rows = int(std::min<int64>(MR, mc - ipn * MR)), cols = int(std::min<int64>(NR, nc - jp * NR));
            V acc[MR][2];
            for (int r = 0; r < rows; ++r) {  // C's rows into cache while the sum runs
              const T* c = &C(ic + ipn * MR + r, jc + jp * NR);
              __builtin_prefetch(c, 1);
              __builtin_prefetch(c + (cols - 1) * C.cs, 1);
            }
            micro_tile<T>(rows, cols, kc, ap + ipn * kc * MR, bp + jp * kc * NR, acc);
            const int64 i0 = ic + ipn * MR, j0 = jc + jp * NR;
            store_tile(C.at(i0, j0), rows, cols, acc, alpha, beta_k, ep, last, i0, j0);
          }
        }
      }
    }
  };
  if (threads <= 1) {
    run(0, 1);
  } else {
#pragma omp parallel num_threads(threads)
    {
      const FloatModeGuard float_mode;
      run(omp_get_thread_num(), omp_get_num_threads());
    }
  }
}

}  // namespace HDL_ISA
}  // namespace hdl
