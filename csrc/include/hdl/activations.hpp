// Elementwise activations, each written once for the CPU kernels (csrc/cpu/kernels/pointwise.cpp) and the
// CUDA kernels (csrc/cuda/pointwise.cu): a struct with
//   forward<M>(x)    y = sigma(x)
//   backward(dy, y)  dx = dy sigma'(x), written in terms of the output y = sigma(x), which the layer keeps
// where M supplies exp for the backend (the CPU's branch-free, vectorising exp_ of math.hpp; CUDA's expf
// and exp). Each struct has its line in HDL_ACTIVATIONS (hdl/kernel_list.hpp), from which the kernels,
// both modules' bindings and hdl.ops / hdl.cuda.ops follow.
#pragma once

#if defined(__CUDACC__)
#define HDL_ACTIVATION_HD __host__ __device__
#else
#define HDL_ACTIVATION_HD
#endif

namespace hdl::activations {

// The sigmoid (2.1), sigma' = sigma (1 - sigma) (2.2). exp saturates, so 0 and 1 at the ends, no overflow.
struct Sigmoid {
  template <class M, class T>
  static HDL_ACTIVATION_HD T forward(T x) { return T(1) / (T(1) + M::exp(-x)); }
  template <class T>
  static HDL_ACTIVATION_HD T backward(T dy, T y) { return dy * y * (T(1) - y); }
};

// tanh x = 2 sigma(2x) - 1 (absolute error a few units in the last place of 1), tanh' = 1 - tanh^2.
struct Tanh {
  template <class M, class T>
  static HDL_ACTIVATION_HD T forward(T x) { return T(2) / (T(1) + M::exp(T(-2) * x)) - T(1); }
  template <class T>
  static HDL_ACTIVATION_HD T backward(T dy, T y) { return dy * (T(1) - y * y); }
};

}  // namespace hdl::activations
