// The list of hdl's CPU kernels: the one place where their signatures are written (X-macros).
// Each kernel file csrc/cpu/kernels/<file>.cpp has a group HDL_KERNELS_<file>(K, K1) with one entry
// per kernel it defines (in namespace hdl::HDL_ISA):
//   HDL_K(return type, name, (parameters), (arguments))    a template, for T in {float, double}
//   HDL_K1(return type, name, (parameters), (arguments))   not a template
// where the arguments are the parameters' names, in order. From the list follow:
//   hdl/kernels.hpp               the public declarations, hdl::name<T>
//   csrc/cpu/kernels/kernels.inc  the declarations per instruction set, hdl::<isa>::name<T>, and
//                                 HDL_INSTANTIATE(<file>), the last line of each kernel file
//   csrc/cpu/dispatch.cpp         hdl::name<T>, which calls the best instruction set's copy
//
// To add a kernel: write it in csrc/cpu/kernels/<file>.cpp (template <class T>, namespace
// hdl::HDL_ISA); add its entry to HDL_KERNELS_<file> below, and its formula and the shapes of its
// arrays to the comment above the group; bind it in csrc/bindings/<family>.cpp (checks.hpp:
// by_dtype, data_of, output, without_gil). A new kernel file also gets a group here, a place in
// HDL_KERNELS, and HDL_INSTANTIATE(<file>) as its last line.
//
// Arrays are raw pointers, row-major and contiguous, with int64 sizes; nothing of Python. Types:
// hdl/common.hpp (Activation), hdl/shapes.hpp (ConvShape, PoolShape), hdl/sgd.hpp (ParamSlot,
// MomentumForm), hdl/stochastic_gradient.hpp (DenseLayerRef, SGDConfig).
#pragma once

// ---- dense.cpp: fully connected layers (Sections 2-5), batched over columns ---------------------
// A mini-batch of m inputs is a matrix whose columns are the inputs. W is (n_out, n_in), b is
// (n_out), activations are (n, m).
// dense_forward: z = W a_in + b (5.2), a_out = sigma(z) (5.3), the activation fused.
//   a_out: (n_out, m)   W: (n_out, n_in)   b: (n_out)   a_in: (n_in, m)
// dense_backward: back propagation through one layer (Lemma 5.1), given g = dC/da_out:
//   delta = sigma'(z) o g                          (5.5), (5.6)   delta: (n_out, m)
//   dW    = scale * delta a_in^T                    (5.8)          dW: (n_out, n_in)
//   db    = scale * sum over columns of delta       (5.7)          db: (n_out)
//   g_in  = W^T delta, dC/da_in for the layer below (5.6)          g_in: (n_in, m), may be null
//   sigma'(z) is computed from a_out = sigma(z). scale = 1 sums over the batch, 1/m averages.
// quadratic_cost: the cost (3.3) of outputs a against targets y, both (n, m): returns
//   scale * sum_i 1/2 ||y_i - a_i||^2 and writes g = dC/da = scale * (a - y) when g is not null.
#define HDL_KERNELS_dense(HDL_K, HDL_K1)                                                                               \
  HDL_K(void, dense_forward,                                                                                           \
    (T* a_out, const T* W, const T* b, const T* a_in, int64 n_out, int64 n_in, int64 m, Activation act, T slope),      \
    (a_out, W, b, a_in, n_out, n_in, m, act, slope))                                                                   \
  HDL_K(void, dense_backward,                                                                                          \
    (T* delta, T* dW, T* db, T* g_in, const T* g, const T* a_out, const T* W, const T* a_in, int64 n_out,              \
     int64 n_in, int64 m, Activation act, T slope, T scale),                                                           \
    (delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale))                                       \
  HDL_K(double, quadratic_cost, (T* g, const T* a, const T* y, int64 n, int64 m, double scale), (g, a, y, n, m, scale))

// ---- gemm.cpp: the matrix product under every dense layer (gemm.hpp), row-major -----------------
// gemm: C (M, N) = alpha op(A) op(B) + beta C; op(A) (M, K) is A or, when trans_a, A^T for A stored
//   (K, M); the same for B. lda, ldb, ldc: the distance between rows of A, B, C as stored.
#define HDL_KERNELS_gemm(HDL_K, HDL_K1)                                                                                \
  HDL_K(void, gemm,                                                                                                    \
    (bool trans_a, bool trans_b, int64 M, int64 N, int64 K, T alpha, const T* A, int64 lda, const T* B, int64 ldb,    \
     T beta, T* C, int64 ldc),                                                                                         \
    (trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))

// ---- stochastic_gradient.cpp: whole training runs (Section 4, back propagation of Lemma 5.1) ------
// sgd_train: trains in place. X is (n_1, N), Y is (n_L, N), columns are the training points (DataRef).
//   state (SGDState) says where the run starts (its updates u0 = state.updates) and is left where it stops.
//   cost_history gets Cost (3.3)/(8.2) after every multiple of record_every updates counted from the run's
//   start, u0 included when it is one: (u0 + iterations) / r - ceil(u0 / r) + 1 values (u0 = 0:
//   iterations / r + 1). Returns the Cost after the last update (over all N
//   points), or with record_every = 0 the cost (3.3) of the last mini-batch before its update.
//   hooks (SGDHooks) are called after every epoch and every poll_every updates, and may stop the run;
//   a mini-batch whose cost is not finite stops it before its update (hooks.diverged_at). A run stopped
//   after k updates wrote the costs up to update u0 + k.
#define HDL_KERNELS_stochastic_gradient(HDL_K, HDL_K1)                                                                 \
  HDL_K(double, sgd_train,                                                                                             \
    (const std::vector<DenseLayerRef<T>>& layers, DataRef<T> X, DataRef<T> Y, const SGDConfig& config,                \
     SGDState& state, double* cost_history, SGDHooks& hooks),                                                          \
    (layers, X, Y, config, state, cost_history, hooks))

// ---- conv.cpp: 2-D convolution, NHWC (hdl/shapes.hpp: ConvShape) ---------------------------------
// conv2d_forward: y (N, out_h, out_w, O) = sigma(conv + b) for the activation act (slope: the leaky
//   ReLU's); linear for none. One GEMM (dense layers, 1x1 and covering filters) applies sigma as it stores each
//   tile; the other paths the ReLU and the leaky ReLU in registers and any other sigma over y after.
// conv2d_backward: from dy = dC/dy (N, out_h, out_w, O): dx = dC/dx (N, H, W, C) (skipped when
//   null), dw (O, C, kh, kw), db (O).
// conv_winograd_offer: the Winograd tiles that the rules offer the three passes (what the autotune then
//   measures against the other paths): offer[0..5] = (r, alpha) of F(m x m, r x r) on alpha x alpha tiles
//   for the forward pass, the data gradient and the filter gradient, (0, 0) for none; offer[6] = 1 where
//   they serve a strided convolution through space to depth; offer[7] = 1 where the data gradient's tile
//   serves its sub-pixel phases (the tile of phase (0, 0)).
#define HDL_KERNELS_conv(HDL_K, HDL_K1)                                                                                \
  HDL_K(void, conv2d_forward, (T* y, const T* x, const T* w, const T* b, const ConvShape& s, Activation act, T slope), \
    (y, x, w, b, s, act, slope))                                                                                       \
  HDL_K(void, conv2d_backward, (T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s),         \
    (dx, dw, db, dy, x, w, s))                                                                                         \
  HDL_K(void, conv_winograd_offer, (const ConvShape& s, int64* offer), (s, offer))

// ---- pool.cpp: max and average pooling, NHWC, MatConvNet's borders (hdl/shapes.hpp: PoolShape) ---
// max_pool2d_forward: y (N, out_h, out_w, C) = max over each window of x; relu fuses y = max(y, 0)
//   (the ReLU that follows a max pool in MatConvNet's networks). argmax (same shape as y, or null)
//   receives the index r*W + q in its image of the first maximal cell (row-major) of each window,
//   -1 where the fused ReLU cut the maximum (no gradient flows back there).
// max_pool2d_backward: dx (N, H, W, C); each dy goes to the first maximal cell of its window.
// max_pool2d_backward_argmax: the same from the forward pass's argmax, without x; each cell of dx
//   is written once.
// avg_pool2d_forward: y = mean over the in-image cells of each window; avg_pool2d_backward its dx.
#define HDL_KERNELS_pool(HDL_K, HDL_K1)                                                                                \
  HDL_K(void, max_pool2d_forward, (T* y, std::int32_t* argmax, const T* x, const PoolShape& s, bool relu),             \
    (y, argmax, x, s, relu))                                                                                           \
  HDL_K(void, max_pool2d_backward, (T* dx, const T* dy, const T* x, const PoolShape& s), (dx, dy, x, s))               \
  HDL_K(void, max_pool2d_backward_argmax, (T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s),        \
    (dx, dy, argmax, s))                                                                                               \
  HDL_K(void, avg_pool2d_forward, (T* y, const T* x, const PoolShape& s), (y, x, s))                                   \
  HDL_K(void, avg_pool2d_backward, (T* dx, const T* dy, const PoolShape& s), (dx, dy, s))

// ---- activations: the elementwise sigma of hdl/activations.hpp, one line each: A(K, name, struct) ----
// <name>_forward: y = sigma(x); <name>_backward: dx = dy sigma'(x) from the output y (dx may be dy);
// n elements. From this list follow the CPU kernels (pointwise.cpp: the struct's formulas in a loop), the
// CUDA kernels (pointwise.cu), both bindings (hdl._C.<name>, <name>_backward; hdl._cuda's), and the
// functions hdl.ops.<name> and hdl.cuda.ops.<name> (and _backward). A new activation: its struct in
// hdl/activations.hpp and its line here; then its layer, its oracle and its test.
#define HDL_ACTIVATIONS(A, K) \
  A(K, sigmoid, Sigmoid)      \
  A(K, tanh, Tanh)
#define HDL_ACTIVATION_KERNELS(HDL_K, name, Struct)                                                                    \
  HDL_K(void, name##_forward, (T* y, const T* x, int64 n), (y, x, n))                                                  \
  HDL_K(void, name##_backward, (T* dx, const T* dy, const T* y, int64 n), (dx, dy, y, n))

// ---- pointwise.cpp: ReLU (7.3), leaky ReLU (Section 8), inverted dropout, the activations; n elements -
// relu_forward: y = x for x > 0, slope * x otherwise (slope 0: ReLU).
// relu_backward: dx = dy where x > 0, slope * dy otherwise (dx may be dy).
// dropout_forward: element i is kept when u_i >= rate, u_i uniform in [0, 1) from a counter-based
//   hash of (seed, i); mask = 1/(1 - rate) where kept, 0 elsewhere; y = x * mask.
// all_finite: whether no x_i is NaN or infinite (the check of every array the Python layer is given).
#define HDL_KERNELS_pointwise(HDL_K, HDL_K1)                                                                           \
  HDL_K(bool, all_finite, (const T* x, int64 n), (x, n))                                                               \
  HDL_K(void, relu_forward, (T* y, const T* x, int64 n, T slope), (y, x, n, slope))                                    \
  HDL_K(void, relu_backward, (T* dx, const T* dy, const T* x, int64 n, T slope), (dx, dy, x, n, slope))                \
  HDL_ACTIVATIONS(HDL_ACTIVATION_KERNELS, HDL_K)                                                                       \
  HDL_K(void, dropout_forward, (T* y, T* mask, const T* x, int64 n, double rate, std::uint64_t seed),                  \
    (y, mask, x, n, rate, seed))

// ---- loss.cpp: softmax log-loss (7.4) and top-k ------------------------------------------------------
// softmax_log_loss: v (N, K) class scores, labels in [0, K). Returns the mean over the batch of
//   log(sum_k e^{v_ik}) - v_i,label (by log-sum-exp); dv = (softmax(v_i) - e_label) / N.
// top_k: idx (N, k), the k largest scores of each row, largest first (ties: lower index first).
#define HDL_KERNELS_loss(HDL_K, HDL_K1)                                                                                \
  HDL_K(double, softmax_log_loss, (T* dv, const T* v, const std::int64_t* labels, int64 N, int64 K),                   \
    (dv, v, labels, N, K))                                                                                             \
  HDL_K(void, top_k, (std::int64_t* idx, const T* v, int64 N, int64 K, int64 k), (idx, v, N, K, k))

// ---- sgd.cpp: the fused SGD-momentum update, one pass over every parameter tensor (hdl/sgd.hpp) ----
#define HDL_KERNELS_sgd(HDL_K, HDL_K1)                                                                                 \
  HDL_K(void, sgd_momentum,                                                                                            \
    (const std::vector<ParamSlot<T>>& slots, double eta, double mu, double lambda, MomentumForm form),                 \
    (slots, eta, mu, lambda, form))

// ---- peak.cpp: the measured float32 FMA throughput of all threads, GFLOP/s, over about `seconds` ---
#define HDL_KERNELS_peak(HDL_K, HDL_K1) HDL_K1(double, fma_peak_gflops, (double seconds), (seconds))

// Every kernel.
#define HDL_KERNELS(HDL_K, HDL_K1)                         \
  HDL_KERNELS_dense(HDL_K, HDL_K1)                         \
  HDL_KERNELS_gemm(HDL_K, HDL_K1)                          \
  HDL_KERNELS_stochastic_gradient(HDL_K, HDL_K1)           \
  HDL_KERNELS_conv(HDL_K, HDL_K1)                          \
  HDL_KERNELS_pool(HDL_K, HDL_K1)                          \
  HDL_KERNELS_pointwise(HDL_K, HDL_K1)                     \
  HDL_KERNELS_loss(HDL_K, HDL_K1)                          \
  HDL_KERNELS_sgd(HDL_K, HDL_K1)                           \
  HDL_KERNELS_peak(HDL_K, HDL_K1)

// Declarations (hdl/kernels.hpp, kernels.inc).
#define HDL_DECLARE(R, name, params, args) template <class T> R name params;
#define HDL_DECLARE1(R, name, params, args) R name params;
