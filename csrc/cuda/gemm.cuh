// One tiled matrix product behind the dense layers and the convolutions:
//   C (M x N) = A (M x K) B (K x N)
// with A and B read through loader functors a(m, k), b(k, n) (0 outside the matrix), so that a
// convolution is an implicit GEMM (im2col computed on the fly, never stored), and the result handed
// to an epilogue store(m, n, acc, slice) that adds the bias, applies the activation, scales or
// writes a split-K partial. Classic shared-memory tiling (Volkov & Demmel 2008; CUTLASS's
// "threadblock tile / thread tile"): a BM x BN tile per block of 256 threads, 16 deep in K, each
// thread a 4x4 register tile at strides BM/4 and BN/4 (bank-conflict free). Two shared-memory stages:
// the next K slice is loaded into registers and stored into the other stage while the current one is
// multiplied, one barrier per slice; operands in contiguous, 16-byte aligned memory are loaded as
// float4. (No cp.async: shared memory holds A along m, As[k][m], and the dense layers' A runs along k
// in memory, a transpose that a 16-byte asynchronous copy cannot do.) Three tile shapes, so that the
// 32-channel layers of the CIFAR net do not leave half a tile idle: 64x64, 128x32 (N <= 32) and
// 32x128 (M <= 32). With TF32 the tile is computed by tensor cores (wmma m16n16k8, inputs rounded to
// TensorFloat-32, sums in float32).
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "hdl/cuda/memory.hpp"
#include "launch.cuh"

#define HDL_HD __host__ __device__

namespace hdl::cuda::gemm {

constexpr int BK = 16, kThreads = 256;

template <int BM_, int BN_>
struct Tile {
  static constexpr int BM = BM_, BN = BN_;
  static constexpr int TY = BM / 4, TX = BN / 4;                          // threads down and across
  static constexpr int A_LOADS = BM * BK / kThreads, B_LOADS = BK * BN / kThreads;  // per thread per slice
  static_assert(TX * TY == kThreads, "a tile is 256 threads of 4x4");
};
using Square = Tile<64, 64>;
using Tall = Tile<128, 32>;
using Wide = Tile<32, 128>;

// Loaders say which index runs along memory, so that neighbouring threads read neighbouring
// addresses: A::m_major (a(m, k) contiguous in m, else in k), B::k_major (b(k, n) contiguous in k,
// else in n).
//
// A loader may also read four neighbours along that index at once (one 128-bit load):
//   static constexpr bool vec4 = true;
//   bool vec4_ok() const     its pointer 16-byte aligned and its leading dimension a multiple of 4
//                            (checked at every launch; misaligned views take the scalar path);
//   float4 load4(r, c) const (r, c..c+3), or (r..r+3, c) for a loader contiguous in r; the index
//                            that runs along memory is a multiple of 4 (tile corners and K slices are);
//   float4 at4(row, k) const the same through a Row (RowsOf below), for loaders with one.
// Such an operand is read in groups of 4 (a thread's share of a slice is whole groups); a group cut
// by the matrix's edge is read element by element, as the scalar path does.
//
// The work of one thread t between two barriers is a __host__ __device__ function (fetch, stash,
// multiply, write), so that tests/cuda_emu runs the very same code on the CPU, thread by thread and
// phase by phase (gemm::emulate in host_exec.cuh).

// Four floats from a 16-byte aligned address: one 128-bit load on the GPU. On the host (the emulation)
// the loads are counted, and so are misaligned addresses, which would fault on the GPU (tests read both).
struct Vec4Count {
  long long loads = 0, misaligned = 0;
};
inline Vec4Count& vec4_count() {
  static Vec4Count c;
  return c;
}
HDL_HD inline float4 load_float4(const float* p) {
#ifdef __CUDA_ARCH__
  return *reinterpret_cast<const float4*>(p);
#else
  auto& c = vec4_count();
  ++c.loads;
  c.misaligned += reinterpret_cast<std::uintptr_t>(p) % 16 != 0;
  return make_float4(p[0], p[1], p[2], p[3]);
#endif
}
inline bool aligned16(const float* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

template <class L, class = void>
struct Vec4 : std::false_type {};
template <class L>
struct Vec4<L, std::void_t<decltype(L::vec4)>> : std::bool_constant<L::vec4> {};

// Whether an operand that a thread loads `loads` elements of per slice can be read as float4s
// (the loader's kind), and is (its pointers, at the launch).
template <int loads, class L>
constexpr bool can_vec4 = Vec4<L>::value && loads % 4 == 0;
template <int loads, class L>
bool use_vec4(const L& l) {
  if constexpr (can_vec4<loads, L>) return l.vec4_ok();
  else return false;
}

// Element e of the BM x BK slice of A, and of the BK x BN slice of B, as (row, column) in the slice.
template <class T, class LoadA>
HDL_HD inline void a_cell(int e, int& m, int& k) {
  if (LoadA::m_major) m = e % T::BM, k = e / T::BM;
  else m = e / BK, k = e % BK;
}
template <class T, class LoadB>
HDL_HD inline void b_cell(int e, int& k, int& n) {
  if (LoadB::k_major) n = e / BK, k = e % BK;
  else n = e % T::BN, k = e / T::BN;
}
// Group g of four (the first cell's row and column), along the index that runs along memory.
template <class T, class LoadA>
HDL_HD inline void a_group(int g, int& m, int& k) {
  if (LoadA::m_major) m = 4 * (g % (T::BM / 4)), k = g / (T::BM / 4);
  else m = g / (BK / 4), k = 4 * (g % (BK / 4));
}
template <class T, class LoadB>
HDL_HD inline void b_group(int g, int& k, int& n) {
  if (LoadB::k_major) n = g / (BK / 4), k = 4 * (g % (BK / 4));
  else n = 4 * (g % (T::BN / 4)), k = g / (T::BN / 4);
}

// A's index work split in two, so that the part of a row index is done once per tile, outside the K
// loop: a loader with a `Row` type gives row(m) and at(row, k) (Im2col: the pixel's image and corner);
// any other loader's row is its index. Thread t's rows are the same in every K slice.
template <class L, class = void>
struct RowsOf {
  using Row = int;
  static HDL_HD Row row(const L&, int m) { return m; }
  static HDL_HD float at(const L& l, const Row& r, int k) { return l(r, k); }
  static HDL_HD float4 at4(const L& l, const Row& r, int k) { return l.load4(r, k); }
};
template <class L>
struct RowsOf<L, std::void_t<typename L::Row>> {
  static_assert(!L::m_major, "a Row is one row of A: its group of four runs along k");
  using Row = typename L::Row;
  static HDL_HD Row row(const L& l, int m) { return l.row(m); }
  static HDL_HD float at(const L& l, const Row& r, int k) { return l.at(r, k); }
  static HDL_HD float4 at4(const L& l, const Row& r, int k) { return l.at4(r, k); }
};

// Thread t's rows: of its elements, or with va of its groups (the first cell's).
template <class T, class LoadA>
HDL_HD inline void a_rows(int t, int m0, int M, const LoadA& a, bool va, typename RowsOf<LoadA>::Row* rows) {
  va = can_vec4<T::A_LOADS, LoadA> && va;
#pragma unroll
  for (int i = 0; i < T::A_LOADS; ++i) {
    if (va && i == T::A_LOADS / 4) break;
    int m, k;
    if (va) a_group<T, LoadA>(t + kThreads * i, m, k);
    else a_cell<T, LoadA>(t + kThreads * i, m, k);
    rows[i] = RowsOf<LoadA>::row(a, m0 + m < M ? m0 + m : M - 1);  // rows past M are not read
  }
}

HDL_HD inline void put4(float* r, float4 v) { r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w; }

// A's share of the K slice [k0, k0 + BK) into thread t's registers: ra[i] = cell i, or with va
// ra[4 i + j] = cell j of group i.
template <class T, class LoadA>
HDL_HD inline void fetch_a(int t, int m0, int k0, int k_end, int M, const LoadA& a, bool va,
                           const typename RowsOf<LoadA>::Row* rows, float* ra) {
  using R = RowsOf<LoadA>;
  if constexpr (can_vec4<T::A_LOADS, LoadA>) {
    if (va) {
#pragma unroll
      for (int i = 0; i < T::A_LOADS / 4; ++i) {
        int m, k;
        a_group<T, LoadA>(t + kThreads * i, m, k);
        m += m0, k += k0;
        if (LoadA::m_major ? m + 3 < M && k < k_end : m < M && k + 3 < k_end) {
          put4(ra + 4 * i, R::at4(a, rows[i], k));
        } else {  // cut by the edge
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            if constexpr (LoadA::m_major) ra[4 * i + j] = m + j < M && k < k_end ? a(m + j, k) : 0.0f;
            else ra[4 * i + j] = m < M && k + j < k_end ? R::at(a, rows[i], k + j) : 0.0f;
          }
        }
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < T::A_LOADS; ++i) {
    int m, k;
    a_cell<T, LoadA>(t + kThreads * i, m, k);
    ra[i] = (m0 + m < M && k0 + k < k_end) ? R::at(a, rows[i], k0 + k) : 0.0f;
  }
}

// B's share, likewise.
template <class T, class LoadB>
HDL_HD inline void fetch_b(int t, int n0, int k0, int k_end, int N, const LoadB& b, bool vb, float* rb) {
  if constexpr (can_vec4<T::B_LOADS, LoadB>) {
    if (vb) {
#pragma unroll
      for (int i = 0; i < T::B_LOADS / 4; ++i) {
        int k, n;
        b_group<T, LoadB>(t + kThreads * i, k, n);
        k += k0, n += n0;
        if (LoadB::k_major ? k + 3 < k_end && n < N : k < k_end && n + 3 < N) {
          put4(rb + 4 * i, b.load4(k, n));
        } else {
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int kj = LoadB::k_major ? k + j : k, nj = LoadB::k_major ? n : n + j;
            rb[4 * i + j] = kj < k_end && nj < N ? b(kj, nj) : 0.0f;
          }
        }
      }
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < T::B_LOADS; ++i) {
    int k, n;
    b_cell<T, LoadB>(t + kThreads * i, k, n);
    rb[i] = (n0 + n < N && k0 + k < k_end) ? b(k0 + k, n0 + n) : 0.0f;
  }
}

template <class T, class LoadA, class LoadB>
HDL_HD inline void fetch(int t, int m0, int n0, int k0, int k_end, int M, int N, const LoadA& a, const LoadB& b,
                         bool va, bool vb, const typename RowsOf<LoadA>::Row* rows, float* ra, float* rb) {
  fetch_a<T>(t, m0, k0, k_end, M, a, va, rows, ra);
  fetch_b<T>(t, n0, k0, k_end, N, b, vb, rb);
}

// Thread t's registers into one stage of the shared tiles: As[k][m] = A(m0 + m, k0 + k),
// Bs[k][n] = B(k0 + k, n0 + n), in the layout fetch used.
template <class T, class LoadA, class LoadB>
HDL_HD inline void stash(int t, bool va, bool vb, const float* ra, const float* rb, float (*As)[T::BM],
                         float (*Bs)[T::BN]) {
  va = can_vec4<T::A_LOADS, LoadA> && va;
  vb = can_vec4<T::B_LOADS, LoadB> && vb;
#pragma unroll
  for (int i = 0; i < T::A_LOADS; ++i) {
    int m, k;
    if (va) {
      a_group<T, LoadA>(t + kThreads * (i / 4), m, k);
      if (LoadA::m_major) m += i % 4;
      else k += i % 4;
    } else {
      a_cell<T, LoadA>(t + kThreads * i, m, k);
    }
    As[k][m] = ra[i];
  }
#pragma unroll
  for (int i = 0; i < T::B_LOADS; ++i) {
    int k, n;
    if (vb) {
      b_group<T, LoadB>(t + kThreads * (i / 4), k, n);
      if (LoadB::k_major) k += i % 4;
      else n += i % 4;
    } else {
      b_cell<T, LoadB>(t + kThreads * i, k, n);
    }
    Bs[k][n] = rb[i];
  }
}

// acc[i][j] += sum_k As[k][ty + TY i] Bs[k][tx + TX j]: thread t's 4x4 outputs.
template <class T>
HDL_HD inline void multiply(int t, const float (*As)[T::BM], const float (*Bs)[T::BN], float acc[4][4]) {
  const int tx = t % T::TX, ty = t / T::TX;
#pragma unroll
  for (int k = 0; k < BK; ++k) {
    float av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) av[i] = As[k][ty + T::TY * i];
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = Bs[k][tx + T::TX * j];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

template <class T, class Store>
HDL_HD inline void write(int t, int m0, int n0, int M, int N, const float acc[4][4], const Store& store, int slice) {
  const int tx = t % T::TX, ty = t / T::TX;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty + T::TY * i, n = n0 + tx + T::TX * j;
      if (m < M && n < N) store(m, n, acc[i][j], slice);
    }
}

// The K loop of one block, over two shared-memory stages: while slice k0 is multiplied from stage s,
// slice k0 + BK goes from global memory into registers, then into stage s ^ 1, which every thread
// finished reading before the last barrier: one barrier per slice. mul(As, Bs) multiplies one stage.
template <class T, class LoadA, class LoadB, class Mul>
__device__ inline void k_loop(int t, int m0, int n0, int k_begin, int k_end, int M, int N, const LoadA& a,
                              const LoadB& b, bool va, bool vb, float (*As)[BK][T::BM], float (*Bs)[BK][T::BN],
                              const Mul& mul) {
  float ra[T::A_LOADS], rb[T::B_LOADS];
  typename RowsOf<LoadA>::Row rows[T::A_LOADS];
  a_rows<T>(t, m0, M, a, va, rows);
  fetch<T>(t, m0, n0, k_begin, k_end, M, N, a, b, va, vb, rows, ra, rb);
  stash<T, LoadA, LoadB>(t, va, vb, ra, rb, As[0], Bs[0]);
  __syncthreads();
  for (int k0 = k_begin, s = 0; k0 < k_end; k0 += BK, s ^= 1) {
    const bool next = k0 + BK < k_end;
    if (next) fetch<T>(t, m0, n0, k0 + BK, k_end, M, N, a, b, va, vb, rows, ra, rb);
    mul(As[s], Bs[s]);
    if (next) stash<T, LoadA, LoadB>(t, va, vb, ra, rb, As[s ^ 1], Bs[s ^ 1]);
    __syncthreads();
  }
}

template <class T, bool TF32, class LoadA, class LoadB, class Store>
__global__ void __launch_bounds__(kThreads) gemm_kernel(int M, int N, int K, int k_per_split, bool va, bool vb,
                                                         const __grid_constant__ LoadA a,
                                                         const __grid_constant__ LoadB b,
                                                         const __grid_constant__ Store store) {
  __shared__ __align__(128) float As[2][BK][T::BM];  // two stages
  __shared__ __align__(128) float Bs[2][BK][T::BN];
  const int t = threadIdx.x;
  const int m0 = blockIdx.x * T::BM, n0 = blockIdx.y * T::BN;  // as grid_for lays them out
  const int k_begin = blockIdx.z * k_per_split, k_end = min(K, k_begin + k_per_split);

  if constexpr (!TF32) {
    float acc[4][4] = {};
    k_loop<T>(t, m0, n0, k_begin, k_end, M, N, a, b, va, vb, As, Bs,
              [&](const float (*as)[T::BM], const float (*bs)[T::BN]) { multiply<T>(t, as, bs, acc); });
    write<T>(t, m0, n0, M, N, acc, store, blockIdx.z);
  } else {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    constexpr int LDC = T::BN + 4, COLS = T::BN / 16;  // 16x16 blocks across the tile
    __shared__ __align__(128) float Cs[T::BM][LDC];
    // (BM/16)(BN/16) = 16 blocks of 16x16, two per warp: blocks f = 2 warp + j, at (f / COLS, f % COLS)
    const int warp = t / 32;
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> c[2];
    wmma::fill_fragment(c[0], 0.0f);
    wmma::fill_fragment(c[1], 0.0f);
    const auto mma = [&](const float (*as)[T::BM], const float (*bs)[T::BN]) {
#pragma unroll
      for (int k = 0; k < BK; k += 8) {
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int f = 2 * warp + j, row = 16 * (f / COLS), col = 16 * (f % COLS);
          wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa;
          wmma::load_matrix_sync(fa, &as[k][row], T::BM);  // A(m, k) at As[k][m]: column-major, ld BM
#pragma unroll
          for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
          wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
          wmma::load_matrix_sync(fb, &bs[k][col], T::BN);
#pragma unroll
          for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
          wmma::mma_sync(c[j], fa, fb, c[j]);
        }
      }
    };
    k_loop<T>(t, m0, n0, k_begin, k_end, M, N, a, b, va, vb, As, Bs, mma);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int f = 2 * warp + j;
      wmma::store_matrix_sync(&Cs[16 * (f / COLS)][16 * (f % COLS)], c[j], LDC, wmma::mem_row_major);
    }
    __syncthreads();
    float acc[4][4];
    const int tx = t % T::TX, ty = t / T::TX;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = Cs[ty + T::TY * i][tx + T::TX * j];
    write<T>(t, m0, n0, M, N, acc, store, blockIdx.z);
#endif
  }
}

// The tile for an M x N product: narrow outputs get the narrow tiles (unless set_gemm_tiles says
// square only, for comparisons). f(Tile{}) is called with the choice.
template <class F>
inline void with_tile(int M, int N, F&& f) {
  if (gemm_tiles() == GemmTiles::automatic && N <= 32)
    f(Tall{});
  else if (gemm_tiles() == GemmTiles::automatic && M <= 32)
    f(Wide{});
  else
    f(Square{});
}

// How K is cut for split-K: slices of k_per_split (a multiple of BK), `count` of them.
struct Split {
  int k_per_split, count;
};

inline Split split_k(int K, int parts) {
  parts = std::max(1, parts);
  const int per = std::max(BK, ((K + parts - 1) / parts + BK - 1) / BK * BK);
  return {per, std::max(1, (K + per - 1) / per)};
}

// Parts of K that give about two waves of blocks on a large GPU (132 SMs) for an M x N output,
// each part at least 256 deep.
inline Split split_for(int M, int N, int K) {
  int tiles = 1;
  with_tile(M, N, [&](auto tile) {
    using T = decltype(tile);
    tiles = ((M + T::BM - 1) / T::BM) * ((N + T::BN - 1) / T::BN);
  });
  return split_k(K, std::min(std::max(1, 264 / tiles), std::max(1, K / 256)));
}

struct Grid {
  unsigned x, y, z;
};

// The blocks of an M x N product: M (batch x pixels in a convolution: the large one) along x, which
// takes 2^31 - 1 blocks, N along y (65,535), the K slices along z. Tile (bx, by) is at
// (m0, n0) = (bx BM, by BN).
template <class T>
inline Grid grid_for(int M, int N, Split split) {
  const unsigned x = unsigned((M + T::BM - 1) / T::BM), y = unsigned((N + T::BN - 1) / T::BN);
  if (y > 65535u || split.count > 65535)
    throw std::runtime_error("hdl.cuda: a product " + std::to_string(N) + " columns wide (" + std::to_string(y) +
                             " tiles) or in " + std::to_string(split.count) + " slices is too large for one launch");
  return {x, y, unsigned(split.count)};
}

// Launches the product on `stream`. With split.count > 1 each block sums one slice of K and
// store(m, n, partial, slice) must combine the partial sums.
template <class LoadA, class LoadB, class Store>
void run(cudaStream_t stream, int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store,
         Split split = {0, 1}) {
  if (M <= 0 || N <= 0) return;
  if (split.count <= 1) split = {std::max(K, 1), 1};
  static const std::string name = std::string("gemm:") + kernel_name<Store>();
  enter();
  with_tile(M, N, [&](auto tile) {
    using T = decltype(tile);
    const Grid g = grid_for<T>(M, N, split);
    const dim3 grid(g.x, g.y, g.z);
    const bool va = use_vec4<T::A_LOADS>(a), vb = use_vec4<T::B_LOADS>(b);
    if (tf32())
      gemm_kernel<T, true><<<grid, kThreads, 0, stream>>>(M, N, K, split.k_per_split, va, vb, a, b, store);
    else
      gemm_kernel<T, false><<<grid, kThreads, 0, stream>>>(M, N, K, split.k_per_split, va, vb, a, b, store);
  });
  launched(name.c_str(), stream);
}

}  // namespace hdl::cuda::gemm
