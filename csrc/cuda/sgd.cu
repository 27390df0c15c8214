// The fused SGD-momentum update on the GPU: every parameter tensor of a network in one launch
// (a multi-tensor apply, as apex's and PyTorch's foreach kernels). The tensors are laid end to end
// in one index space of chunks; each block takes chunks, finds its tensor among the slots passed
// by value in the kernel's parameters, and updates it (hdl/sgd.hpp):
//   matconvnet: v = mu v - (g + lambda w);  w = w + eta v
//   pytorch:    v = mu v + (g + lambda w);  w = w - eta v
// with eta and lambda the global rate and decay times the tensor's multipliers.
#include <algorithm>

#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

constexpr int kChunk = 4096;  // elements per block per step

struct Slots {
  float* w[kSlotsPerLaunch];
  const float* g[kSlotsPerLaunch];
  float* v[kSlotsPerLaunch];
  int n[kSlotsPerLaunch];
  int first_chunk[kSlotsPerLaunch + 1];  // chunks of tensor t: [first_chunk[t], first_chunk[t + 1])
  float eta[kSlotsPerLaunch], lambda[kSlotsPerLaunch];
  int count;
};

__global__ void sgd_momentum_kernel(const __grid_constant__ Slots s, float mu, bool pytorch) {
  for (int chunk = blockIdx.x; chunk < s.first_chunk[s.count]; chunk += gridDim.x) {
    int t = 0;
    while (s.first_chunk[t + 1] <= chunk) ++t;
    const int begin = (chunk - s.first_chunk[t]) * kChunk, end = min(s.n[t], begin + kChunk);
    float* w = s.w[t];
    float* v = s.v[t];
    const float* g = s.g[t];
    const float eta = s.eta[t], lambda = s.lambda[t];
    for (int i = begin + threadIdx.x; i < end; i += blockDim.x) {
      if (pytorch) {
        v[i] = mu * v[i] + (g[i] + lambda * w[i]);
        w[i] -= eta * v[i];
      } else {
        v[i] = mu * v[i] - (g[i] + lambda * w[i]);
        w[i] += eta * v[i];
      }
    }
  }
}

}  // namespace

void sgd_momentum(const std::vector<ParamSlot<float>>& slots, double eta, double mu, double lambda,
                  MomentumForm form, cudaStream_t stream) {
  for (std::size_t first = 0; first < slots.size(); first += kSlotsPerLaunch) {
    Slots s{};
    s.count = int(std::min<std::size_t>(kSlotsPerLaunch, slots.size() - first));
    s.first_chunk[0] = 0;
    for (int t = 0; t < s.count; ++t) {
      const ParamSlot<float>& p = slots[first + t];
      s.w[t] = p.w, s.g[t] = p.g, s.v[t] = p.v, s.n[t] = int(p.n);
      s.eta[t] = float(eta * p.lr_mult), s.lambda[t] = float(lambda * p.decay_mult);
      s.first_chunk[t + 1] = s.first_chunk[t] + int((p.n + kChunk - 1) / kChunk);
    }
    const int chunks = s.first_chunk[s.count];
    if (chunks == 0) continue;
    sgd_momentum_kernel<<<std::min(chunks, 65535), kThreads, 0, stream>>>(s, float(mu),
                                                                          form == MomentumForm::pytorch);
    HDL_CUDA_LAUNCHED();
  }
}

}  // namespace hdl::cuda
