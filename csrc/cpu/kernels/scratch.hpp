// Grow-only scratch buffers, one per calling thread and use, so that the large
// temporaries of a kernel (a padded input, a spread-out gradient) reuse warm
// pages from call to call instead of faulting fresh ones in every time.
#pragma once
#include <algorithm>
#include <cstddef>
#include <vector>

#include "buffer.hpp"

namespace hdl {
namespace HDL_ISA {

//
// A fresh std::vector of more than 128 KB is fresh pages from mmap every call: the packed filters of a
// 64 -> 128 channel 4x4 convolution (512 KB) cost 0.4 ms of page faults a call, where its batch-1
// forward pass is 0.02 ms of arithmetic. Uses (one slot each): 0, 1 padded inputs; 2 padded dy;
// 3 packed filters; 4, 5 per-thread filter-gradient sums; 6 Winograd's transformed filters; 7, 8 its
// per-thread filter-gradient sums; 9, 16 patch-order filters of the GEMM convolutions; 10-15, 17 Winograd;
// 18 the staging tile of the filter pack (one per thread packing); 19 that of the filter gradient's sums; 20, 21 the GEMM
// convolutions' inputs and data gradient in the filters' order; 22-25 the implicit GEMM's filters, output
// and filter gradients (conv_implicit.hpp); 26 the stage of Winograd's filter transform (per thread);
// 27, 28 the space-to-depth input and its gradient (conv_space_to_depth.hpp); 29 col2im's products
// (conv_col2im.hpp).
template <class T, int Use>
T* scratch(std::size_t n) {
  thread_local Buffer<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// scratch<T, Use>(n) set to zero.
template <class T, int Use>
T* scratch_zeroed(std::size_t n) {
  T* p = scratch<T, Use>(n);
  std::fill(p, p + n, T(0));
  return p;
}

}  // namespace HDL_ISA
}  // namespace hdl
