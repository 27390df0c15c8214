// One tiled matrix product behind the dense layers and the convolutions:
//   C (M x N) = A (M x K) B (K x N)
// with A and B read through loader functors a(m, k), b(k, n) (0 outside the matrix), so that a
// convolution is an implicit GEMM (im2col computed on the fly, never stored), and the result handed
// to an epilogue store(m, n, acc, split) that adds the bias, applies the activation, scales or
// writes a split-K partial. Classic shared-memory tiling (Volkov & Demmel 2008; the CUTLASS
// "threadblock tile / thread tile" split): a 64x64 tile per block of 256 threads, 16 deep in K,
// each thread a 4x4 register tile at stride 16 (bank-conflict free), the next K slice prefetched into
// registers while the current one is multiplied. With TF32 the 64x64 tile is computed by tensor
// cores (wmma m16n16k8, inputs rounded to TensorFloat-32, sums in float32).
#pragma once
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>

#include "hdl/cuda/memory.hpp"

#define HDL_HD __host__ __device__

namespace hdl::cuda::gemm {

constexpr int BM = 64, BN = 64, BK = 16, kThreads = 256;

// Loaders say which index runs along memory, so that neighbouring threads read neighbouring
// addresses: A::m_major (a(m, k) contiguous in m, else in k), B::k_major (b(k, n) contiguous in k,
// else in n).
//
// The work of one thread t between two barriers is a __host__ __device__ function (fetch, stash,
// multiply, write), so that tests/cuda_emu runs the very same code on the CPU, thread by thread and
// phase by phase (gemm::emulate in host_exec.cuh).

// The next K slice [k0, k0 + BK) of the tile into thread t's registers.
template <class LoadA, class LoadB>
HDL_HD inline void fetch(int t, int m0, int n0, int k0, int k_end, int M, int N, const LoadA& a, const LoadB& b,
                         float ra[4], float rb[4]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int e = t + kThreads * i;  // element of the 64x16 slice
    const int am = LoadA::m_major ? e % BM : e / BK, ak = LoadA::m_major ? e / BM : e % BK;
    ra[i] = (m0 + am < M && k0 + ak < k_end) ? a(m0 + am, k0 + ak) : 0.0f;
    const int bn = LoadB::k_major ? e / BK : e % BN, bk = LoadB::k_major ? e % BK : e / BN;
    rb[i] = (n0 + bn < N && k0 + bk < k_end) ? b(k0 + bk, n0 + bn) : 0.0f;
  }
}

// Thread t's registers into the shared tiles: As[k][m] = A(m0 + m, k0 + k), Bs[k][n] = B(k0 + k, n0 + n).
template <class LoadA, class LoadB>
HDL_HD inline void stash(int t, const float ra[4], const float rb[4], float (*As)[BM], float (*Bs)[BN]) {
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int e = t + kThreads * i;
    const int am = LoadA::m_major ? e % BM : e / BK, ak = LoadA::m_major ? e / BM : e % BK;
    As[ak][am] = ra[i];
    const int bn = LoadB::k_major ? e / BK : e % BN, bk = LoadB::k_major ? e % BK : e / BN;
    Bs[bk][bn] = rb[i];
  }
}

// acc[i][j] += sum_k As[k][ty + 16 i] Bs[k][tx + 16 j]: thread t's 4x4 outputs, at stride 16.
HDL_HD inline void multiply(int t, const float (*As)[BM], const float (*Bs)[BN], float acc[4][4]) {
  const int tx = t % 16, ty = t / 16;
#pragma unroll
  for (int k = 0; k < BK; ++k) {
    float av[4], bv[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) av[i] = As[k][ty + 16 * i];
#pragma unroll
    for (int j = 0; j < 4; ++j) bv[j] = Bs[k][tx + 16 * j];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
  }
}

template <class Store>
HDL_HD inline void write(int t, int m0, int n0, int M, int N, const float acc[4][4], const Store& store, int slice) {
  const int tx = t % 16, ty = t / 16;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) store(m, n, acc[i][j], slice);
    }
}

template <bool TF32, class LoadA, class LoadB, class Store>
__global__ void __launch_bounds__(kThreads) gemm_kernel(int M, int N, int K, int k_per_split,
                                                         const __grid_constant__ LoadA a,
                                                         const __grid_constant__ LoadB b,
                                                         const __grid_constant__ Store store) {
  __shared__ __align__(128) float As[BK][BM];
  __shared__ __align__(128) float Bs[BK][BN];
  const int t = threadIdx.x;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int k_begin = blockIdx.z * k_per_split, k_end = min(K, k_begin + k_per_split);
  float ra[4], rb[4];  // the next K slice, held in registers while the current one is multiplied

  if constexpr (!TF32) {
    float acc[4][4] = {};
    fetch(t, m0, n0, k_begin, k_end, M, N, a, b, ra, rb);
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
      stash<LoadA, LoadB>(t, ra, rb, As, Bs);
      __syncthreads();
      if (k0 + BK < k_end) fetch(t, m0, n0, k0 + BK, k_end, M, N, a, b, ra, rb);
      multiply(t, As, Bs, acc);
      __syncthreads();
    }
    write(t, m0, n0, M, N, acc, store, blockIdx.z);
  } else {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    using namespace nvcuda;
    __shared__ __align__(128) float Cs[BM][BN + 4];
    const int warp = t / 32, wm = warp % 4, wn = (warp / 4) * 2;  // rows 16 wm, columns 16 wn and 16 (wn + 1)
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> c[2];
    wmma::fill_fragment(c[0], 0.0f);
    wmma::fill_fragment(c[1], 0.0f);
    fetch(t, m0, n0, k_begin, k_end, M, N, a, b, ra, rb);
    for (int k0 = k_begin; k0 < k_end; k0 += BK) {
      stash<LoadA, LoadB>(t, ra, rb, As, Bs);
      __syncthreads();
      if (k0 + BK < k_end) fetch(t, m0, n0, k0 + BK, k_end, M, N, a, b, ra, rb);
#pragma unroll
      for (int k = 0; k < BK; k += 8) {
        wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> fa;
        wmma::load_matrix_sync(fa, &As[k][16 * wm], BM);  // A(m, k) at As[k][m]: column-major, ld BM
#pragma unroll
        for (int i = 0; i < fa.num_elements; ++i) fa.x[i] = wmma::__float_to_tf32(fa.x[i]);
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb;
          wmma::load_matrix_sync(fb, &Bs[k][16 * (wn + j)], BN);
#pragma unroll
          for (int i = 0; i < fb.num_elements; ++i) fb.x[i] = wmma::__float_to_tf32(fb.x[i]);
          wmma::mma_sync(c[j], fa, fb, c[j]);
        }
      }
      __syncthreads();
    }
    wmma::store_matrix_sync(&Cs[16 * wm][16 * wn], c[0], BN + 4, wmma::mem_row_major);
    wmma::store_matrix_sync(&Cs[16 * wm][16 * (wn + 1)], c[1], BN + 4, wmma::mem_row_major);
    __syncthreads();
    float acc[4][4];
    const int tx = t % 16, ty = t / 16;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = Cs[ty + 16 * i][tx + 16 * j];
    write(t, m0, n0, M, N, acc, store, blockIdx.z);
#endif
  }
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
  const int tiles = ((M + BM - 1) / BM) * ((N + BN - 1) / BN);
  return split_k(K, std::min(std::max(1, 264 / tiles), std::max(1, K / 256)));
}

// Launches the product on `stream`. With split.count > 1 each block sums one slice of K and
// store(m, n, partial, slice) must combine the partial sums.
template <class LoadA, class LoadB, class Store>
void run(cudaStream_t stream, int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store,
         Split split = {0, 1}) {
  if (M <= 0 || N <= 0) return;
  if (split.count <= 1) split = {std::max(K, 1), 1};
  const dim3 grid((N + BN - 1) / BN, (M + BM - 1) / BM, split.count);
  if (tf32())
    gemm_kernel<true><<<grid, kThreads, 0, stream>>>(M, N, K, split.k_per_split, a, b, store);
  else
    gemm_kernel<false><<<grid, kThreads, 0, stream>>>(M, N, K, split.k_per_split, a, b, store);
  HDL_CUDA_CHECK(cudaGetLastError());
}

}  // namespace hdl::cuda::gemm
