// Fully connected layer kernels for one instruction set (see kernels.inc).
#include "dense_impl.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {

template <class T>
void dense_forward(T* a_out, const T* W, const T* b, const T* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, T slope) {
  dense_forward_impl(a_out, W, b, a_in, n_out, n_in, m, act, slope);
}

template <class T>
void dense_backward(T* delta, T* dW, T* db, T* g_in, const T* g, const T* a_out, const T* W, const T* a_in,
                    int64 n_out, int64 n_in, int64 m, Activation act, T slope, T scale) {
  dense_backward_impl(delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale);
}

template <class T>
double quadratic_cost(T* g, const T* a, const T* y, int64 n, int64 m, double scale) {
  return quadratic_cost_impl(g, a, y, n * m, scale);
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(dense)
