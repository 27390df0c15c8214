// Small helpers shared by the .cu files: grid sizes and kernels' names for the launch check.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "hdl/cuda/memory.hpp"

namespace hdl::cuda {

constexpr int kThreads = 256;

// Blocks of kThreads for n elements, capped (the kernels loop with a grid stride).
inline unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65535LL * 8)));
}

// "Delta", "ActivationForward<Tanh>": the type F of a kernel body, without its namespaces.
inline std::string short_type_name(std::string s) {
  for (const char* anon : {"(anonymous namespace)::", "{anonymous}::", "<unnamed>::"})
    for (std::size_t at; (at = s.find(anon)) != std::string::npos;) s.erase(at, std::string(anon).size());
  std::string out;
  for (char ch : s) {
    out += ch;
    if (out.size() >= 2 && out.compare(out.size() - 2, 2, "::") == 0) {  // drop the qualifier just ended
      std::size_t from = out.find_last_of("<, ", out.size() - 3);
      out.erase(from == std::string::npos ? 0 : from + 1);
    }
  }
  return out;
}

template <class F>
const char* kernel_name() {
  static const std::string name = [](std::string pretty) {  // "... [with F = ns::Delta]" (gcc)
    std::size_t at = pretty.find("F = ");
    std::size_t from = at == std::string::npos ? pretty.find("F=") : at;
    if (from == std::string::npos) return pretty;
    from += at == std::string::npos ? 2 : 4;
    const std::size_t to = pretty.find_first_of(";]", from);
    return short_type_name(pretty.substr(from, to == std::string::npos ? std::string::npos : to - from));
  }(__PRETTY_FUNCTION__);
  return name.c_str();
}

// for i in [0, n) over the whole grid
#define HDL_GRID_STRIDE(i, n)                                                                   \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += std::int64_t(gridDim.x) * blockDim.x)

}  // namespace hdl::cuda
