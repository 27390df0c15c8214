// The fused SGD-momentum update: one pass over every parameter tensor of a network.
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

template <class T>
void sgd_momentum(const std::vector<ParamSlot<T>>& slots, double eta, double mu, double lambda, MomentumForm form);

}  // namespace hdl
