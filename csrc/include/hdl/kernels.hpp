// hdl's CPU kernels, hdl::name<T> for T in {float, double}: declared from the list
// hdl/kernel_list.hpp, where each one's formula and shapes are written. Plain C++17, no Python.
// Each call runs the copy compiled for the best instruction set of the processor (csrc/cpu/dispatch.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "hdl/common.hpp"
#include "hdl/kernel_list.hpp"
#include "hdl/sgd.hpp"
#include "hdl/shapes.hpp"
#include "hdl/stochastic_gradient.hpp"

namespace hdl {

HDL_KERNELS(HDL_DECLARE, HDL_DECLARE1)

// Which instruction set the kernels run with (chosen once, at first use): avx512, avx2, generic or native.
const char* isa_name();

}  // namespace hdl
