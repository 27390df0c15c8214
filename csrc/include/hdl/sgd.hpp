// The types of the fused SGD-momentum update (the kernel sgd_momentum of hdl/kernel_list.hpp).
#pragma once
#include <vector>

#include "hdl/common.hpp"

namespace hdl {

// One parameter tensor w with its gradient g and velocity v, n elements, and its
// multipliers of the learning rate and of the weight decay.
template <class T>
struct ParamSlot {
  T* w;
  const T* g;
  T* v;
  int64 n;
  double lr_mult;
  double decay_mult;
};

enum class MomentumForm : int {
  matconvnet = 0,  // v = mu v - (g + lambda w);  w = w + eta v
  pytorch = 1,     // v = mu v + (g + lambda w);  w = w - eta v
};
// (eta and lambda are the global rate and decay times the tensor's multipliers)
// The update itself is the kernel sgd_momentum of hdl/kernel_list.hpp.

}  // namespace hdl
