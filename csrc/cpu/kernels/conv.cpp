// Convolution for one instruction set: im2col and a BLAS GEMM per image
// (OpenBLAS from the scipy-openblas32 wheel, one thread inside each of ours),
// the images of a batch shared among the OpenMP threads. Forward and backward
// side by side; the column matrix of an image is rebuilt in the backward pass
// rather than kept (a batch of them would not fit in cache).
#include <algorithm>
#include <cstring>
#include <vector>

#include <cblas.h>
#include <omp.h>

#include "dense_impl.hpp"
#include "hdl/conv.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

// C (m x n) = alpha op(A) op(B) + beta C, row-major.
inline void gemm(bool ta, bool tb, int64 m, int64 n, int64 k, float alpha, const float* A, int64 lda, const float* B,
                 int64 ldb, float beta, float* C, int64 ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A,
                    lda, B, ldb, beta, C, ldc);
}
inline void gemm(bool ta, bool tb, int64 m, int64 n, int64 k, double alpha, const double* A, int64 lda,
                 const double* B, int64 ldb, double beta, double* C, int64 ldc) {
  scipy_cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, A,
                    lda, B, ldb, beta, C, ldc);
}

// col (C*kh*kw, P): row (c, u, v) holds x[c, i*sh - pt + u, j*sw - pl + v] for the P = out_h*out_w outputs (i, j).
template <class T>
void im2col(T* HDL_RESTRICT col, const T* HDL_RESTRICT x, const ConvShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  for (int64 c = 0; c < s.C; ++c)
    for (int64 u = 0; u < s.kh; ++u)
      for (int64 v = 0; v < s.kw; ++v) {
        T* row = col + ((c * s.kh + u) * s.kw + v) * Ho * Wo;
        for (int64 i = 0; i < Ho; ++i) {
          const int64 r = i * s.sh - s.pad_top + u;
          T* out = row + i * Wo;
          if (r < 0 || r >= s.H) {
            std::fill(out, out + Wo, T(0));
            continue;
          }
          const T* in = x + (c * s.H + r) * s.W;
          // columns j with 0 <= j*sw - pl + v < W
          const int64 q0 = v - s.pad_left;
          for (int64 j = 0; j < Wo; ++j) {
            const int64 q = j * s.sw + q0;
            out[j] = (q >= 0 && q < s.W) ? in[q] : T(0);
          }
        }
      }
}

// The adjoint of im2col: x[c, r, q] += col[(c, u, v), (i, j)] over every use of (r, q).
template <class T>
void col2im(T* HDL_RESTRICT x, const T* HDL_RESTRICT col, const ConvShape& s) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  std::fill(x, x + s.C * s.H * s.W, T(0));
  for (int64 c = 0; c < s.C; ++c)
    for (int64 u = 0; u < s.kh; ++u)
      for (int64 v = 0; v < s.kw; ++v) {
        const T* row = col + ((c * s.kh + u) * s.kw + v) * Ho * Wo;
        for (int64 i = 0; i < Ho; ++i) {
          const int64 r = i * s.sh - s.pad_top + u;
          if (r < 0 || r >= s.H) continue;
          T* out = x + (c * s.H + r) * s.W;
          const int64 q0 = v - s.pad_left;
          for (int64 j = 0; j < Wo; ++j) {
            const int64 q = j * s.sw + q0;
            if (q >= 0 && q < s.W) out[q] += row[i * Wo + j];
          }
        }
      }
}

// A 1x1 filter with unit stride and no padding needs no column matrix: col is x itself.
inline bool col_is_input(const ConvShape& s) {
  return s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.pad_top == 0 && s.pad_bottom == 0 &&
         s.pad_left == 0 && s.pad_right == 0;
}

}  // namespace

template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s) {
  const int64 P = s.out_h() * s.out_w(), K = s.C * s.kh * s.kw;
  const bool direct = col_is_input(s);
  const bool parallel = s.N > 1 && s.N * P * K * s.O > kParallelWork;
#pragma omp parallel if (parallel)
  {
    std::vector<T> col(direct ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64 n = 0; n < s.N; ++n) {
      const T* xn = x + n * s.C * s.H * s.W;
      T* yn = y + n * s.O * P;
      if (!direct) im2col(col.data(), xn, s);
      for (int64 o = 0; o < s.O; ++o) std::fill(yn + o * P, yn + (o + 1) * P, b[o]);
      // y_n (O x P) = w (O x K) col (K x P) + b
      gemm(false, false, s.O, P, K, T(1), w, K, direct ? xn : col.data(), P, T(1), yn, P);
    }
  }
}

template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  const int64 P = s.out_h() * s.out_w(), K = s.C * s.kh * s.kw;
  const bool direct = col_is_input(s);
  const bool parallel = s.N > 1 && s.N * P * K * s.O > kParallelWork;
  const int threads = parallel ? omp_get_max_threads() : 1;
  // Each thread sums dw and db over its images; the sums are added in thread order.
  std::vector<T> dw_part(threads * s.O * K, T(0)), db_part(threads * s.O, T(0));
#pragma omp parallel num_threads(threads) if (parallel)
  {
    const int t = omp_get_thread_num();
    T* my_dw = dw_part.data() + t * s.O * K;
    T* my_db = db_part.data() + t * s.O;
    std::vector<T> col(direct ? 0 : K * P), dcol(direct || !dx ? 0 : K * P);
#pragma omp for schedule(static)
    for (int64 n = 0; n < s.N; ++n) {
      const T* xn = x + n * s.C * s.H * s.W;
      const T* dyn = dy + n * s.O * P;
      if (!direct) im2col(col.data(), xn, s);
      // dw += dy_n (O x P) col^T (P x K)   (the analogue of (5.8))
      gemm(false, true, s.O, K, P, T(1), dyn, P, direct ? xn : col.data(), P, T(1), my_dw, K);
      for (int64 o = 0; o < s.O; ++o) {  // db += sum over outputs  (5.7)
        T sum = T(0);
        for (int64 p = 0; p < P; ++p) sum += dyn[o * P + p];
        my_db[o] += sum;
      }
      if (dx) {  // dcol (K x P) = w^T dy_n, then back to the image  (5.6)
        T* dxn = dx + n * s.C * s.H * s.W;
        gemm(true, false, K, P, s.O, T(1), w, K, dyn, P, T(0), direct ? dxn : dcol.data(), P);
        if (!direct) col2im(dxn, dcol.data(), s);
      }
    }
  }
  std::fill(dw, dw + s.O * K, T(0));
  std::fill(db, db + s.O, T(0));
  for (int t = 0; t < threads; ++t) {
    for (int64 i = 0; i < s.O * K; ++i) dw[i] += dw_part[t * s.O * K + i];
    for (int64 o = 0; o < s.O; ++o) db[o] += db_part[t * s.O + o];
  }
}

template void conv2d_forward<float>(float*, const float*, const float*, const float*, const ConvShape&);
template void conv2d_forward<double>(double*, const double*, const double*, const double*, const ConvShape&);
template void conv2d_backward<float>(float*, float*, float*, const float*, const float*, const float*,
                                     const ConvShape&);
template void conv2d_backward<double>(double*, double*, double*, const double*, const double*, const double*,
                                      const ConvShape&);

}  // namespace HDL_ISA
}  // namespace hdl
