// Grow-only scratch buffers, one per calling thread and use, so that the large
// temporaries of a kernel (a padded input, a spread-out gradient) reuse warm
// pages from call to call instead of faulting fresh ones in every time.
#pragma once
#include <cstddef>
#include <vector>

namespace hdl {
namespace HDL_ISA {

template <class T, int Use>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

}  // namespace HDL_ISA
}  // namespace hdl
