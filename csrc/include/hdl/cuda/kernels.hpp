// The CUDA twins of the CPU kernels: the same interfaces (hdl/kernel_list.hpp, with the shapes of
// hdl/shapes.hpp) in namespace hdl::cuda, float32 only, every pointer a device pointer, every call
// asynchronous on the given stream. Indices are 32-bit inside the kernels: callers keep each array
// below 2^31 elements. Shapes, formulas and border rules are those of the CPU list, which says them
// in full; one line each here.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "hdl/common.hpp"
#include "hdl/kernel_list.hpp"
#include "hdl/sgd.hpp"
#include "hdl/shapes.hpp"

namespace hdl::cuda {

// ---- dense.cu: fully connected layers, batch in columns (5.2)-(5.8) -------------------------
// a_out (n_out, m) = sigma(W (n_out, n_in) a_in (n_in, m) + b), sigma fused
void dense_forward(float* a_out, const float* W, const float* b, const float* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, float slope, cudaStream_t stream);
// delta = sigma'(z) o g; dW = scale delta a_in^T; db = scale sum_cols delta; g_in = W^T delta (null: skipped)
void dense_backward(float* delta, float* dW, float* db, float* g_in, const float* g, const float* a_out,
                    const float* W, const float* a_in, int64 n_out, int64 n_in, int64 m, Activation act, float slope,
                    float scale, cudaStream_t stream);

// ---- conv.cu: NHWC convolution as implicit GEMM (Section 7.1) --------------------------------
// y (N, out_h, out_w, O) = conv(x (N, H, W, C), w (O, C, kh, kw)) + b, ReLU fused on request
void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvShape& s, bool relu,
                    cudaStream_t stream);
// dx (N, H, W, C) (null: skipped), dw (O, C, kh, kw), db (O) from dy (N, out_h, out_w, O)
void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const ConvShape& s, cudaStream_t stream);

// ---- pool.cu: MatConvNet's max and average pooling, NHWC -------------------------------------
// relu fuses max(y, 0); argmax (null: not kept) gets r*W + q of each window's first maximal cell, -1 where
// the fused ReLU cut the maximum
void max_pool2d_forward(float* y, std::int32_t* argmax, const float* x, const PoolShape& s, bool relu,
                        cudaStream_t stream);
void max_pool2d_backward(float* dx, const float* dy, const float* x, const PoolShape& s, cudaStream_t stream);
void max_pool2d_backward_argmax(float* dx, const float* dy, const std::int32_t* argmax, const PoolShape& s,
                                cudaStream_t stream);
void avg_pool2d_forward(float* y, const float* x, const PoolShape& s, cudaStream_t stream);
void avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s, cudaStream_t stream);

// ---- pointwise.cu: ReLU (7.3), leaky ReLU, inverted dropout (the CPU's hash: equal masks) ----
void relu_forward(float* y, const float* x, int64 n, float slope, cudaStream_t stream);
void relu_backward(float* dx, const float* dy, const float* x, int64 n, float slope, cudaStream_t stream);
void dropout_forward(float* y, float* mask, const float* x, int64 n, double rate, std::uint64_t seed,
                     cudaStream_t stream);
// dx = dy o mask (dx may be dy)
void dropout_backward(float* dx, const float* dy, const float* mask, int64 n, cudaStream_t stream);
// <name>_forward: y = sigma(x); <name>_backward: dx = dy sigma'(x) from y; for every line of HDL_ACTIVATIONS
#define HDL_CUDA_DECLARE_ACTIVATION(K, name, Struct)                                            \
  void name##_forward(float* y, const float* x, int64 n, cudaStream_t stream);                  \
  void name##_backward(float* dx, const float* dy, const float* y, int64 n, cudaStream_t stream);
HDL_ACTIVATIONS(HDL_CUDA_DECLARE_ACTIVATION, _)
#undef HDL_CUDA_DECLARE_ACTIVATION

// ---- loss.cu: softmax log-loss (7.4) and top-k -----------------------------------------------
// v (N, K), labels (N) in [0, K): *loss (one double on the device) = mean_i log sum_k e^{v_ik} - v_i,label;
// dv = (softmax(v_i) - e_label) / N. Labels outside [0, K) give a NaN loss (checked on the host side).
void softmax_log_loss(float* dv, double* loss, const float* v, const std::int64_t* labels, int64 N, int64 K,
                      cudaStream_t stream);
// idx (N, k): the k largest scores of each row, largest first, ties to the lower index
void top_k(std::int64_t* idx, const float* v, int64 N, int64 K, int64 k, cudaStream_t stream);

// ---- sgd.cu: the fused SGD-momentum update, every tensor in one launch -----------------------
// (up to kSlotsPerLaunch tensors per launch; more are done in further launches)
constexpr int kSlotsPerLaunch = 48;
void sgd_momentum(const std::vector<ParamSlot<float>>& slots, double eta, double mu, double lambda,
                  MomentumForm form, cudaStream_t stream);

}  // namespace hdl::cuda
