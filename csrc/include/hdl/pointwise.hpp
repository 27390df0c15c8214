// Elementwise layers: ReLU (7.3) and leaky ReLU (Section 8), and inverted dropout.
#pragma once
#include <cstdint>

#include "hdl/common.hpp"

namespace hdl {

// y = x for x > 0, slope * x otherwise (slope 0: ReLU)
template <class T>
void relu_forward(T* y, const T* x, int64 n, T slope);
// dx = dy where x > 0, slope * dy otherwise
template <class T>
void relu_backward(T* dx, const T* dy, const T* x, int64 n, T slope);

// Inverted dropout: element i is kept when u_i >= rate, u_i uniform in [0, 1) from a
// counter-based hash of (seed, i); mask = 1/(1 - rate) where kept, 0 elsewhere; y = x * mask.
template <class T>
void dropout_forward(T* y, T* mask, const T* x, int64 n, double rate, std::uint64_t seed);

}  // namespace hdl
