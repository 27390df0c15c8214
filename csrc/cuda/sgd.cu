// The fused SGD-momentum update on the GPU: every parameter tensor of a network in one launch
// (a multi-tensor apply, as apex's and PyTorch's foreach kernels). The tensors are laid end to end
// in one index space of chunks; the slot table travels by value in the kernel's parameters. Thread
// e works on chunk e / 256, from element e % 256 in steps of 256 (neighbouring threads, neighbouring
// elements), and updates (hdl/sgd.hpp):
//   matconvnet: v = mu v - (g + lambda w);  w = w + eta v
//   pytorch:    v = mu v + (g + lambda w);  w = w - eta v
// with eta and lambda the global rate and decay times the tensor's multipliers.
#include <algorithm>

#include "exec.cuh"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

constexpr int kChunk = 4096;  // elements per chunk
constexpr int kLanes = 256;   // threads per chunk

struct SgdSlots {
  float* w[kSlotsPerLaunch];
  const float* g[kSlotsPerLaunch];
  float* v[kSlotsPerLaunch];
  int n[kSlotsPerLaunch];
  int first_chunk[kSlotsPerLaunch + 1];  // chunks of tensor t: [first_chunk[t], first_chunk[t + 1])
  float eta[kSlotsPerLaunch], lambda[kSlotsPerLaunch];
  int count;
  float mu;
  bool pytorch;

  HDL_HD void operator()(std::int64_t e) const {
    const int chunk = int(e / kLanes), lane = int(e % kLanes);
    int t = 0;
    while (first_chunk[t + 1] <= chunk) ++t;
    const int begin = (chunk - first_chunk[t]) * kChunk, end = n[t] < begin + kChunk ? n[t] : begin + kChunk;
    float* W = w[t];
    float* V = v[t];
    const float* G = g[t];
    for (int i = begin + lane; i < end; i += kLanes) {
      if (pytorch) {
        V[i] = mu * V[i] + (G[i] + lambda[t] * W[i]);
        W[i] -= eta[t] * V[i];
      } else {
        V[i] = mu * V[i] - (G[i] + lambda[t] * W[i]);
        W[i] += eta[t] * V[i];
      }
    }
  }
};

}  // namespace

template <class Exec>
void sgd_momentum_on(const Exec& exec, const std::vector<ParamSlot<float>>& slots, double eta, double mu,
                     double lambda, MomentumForm form) {
  for (std::size_t first = 0; first < slots.size(); first += kSlotsPerLaunch) {
    SgdSlots s{};
    s.count = int(std::min<std::size_t>(kSlotsPerLaunch, slots.size() - first));
    s.mu = float(mu);
    s.pytorch = form == MomentumForm::pytorch;
    for (int t = 0; t < s.count; ++t) {
      const ParamSlot<float>& p = slots[first + t];
      s.w[t] = p.w, s.g[t] = p.g, s.v[t] = p.v, s.n[t] = int(p.n);
      s.eta[t] = float(eta * p.lr_mult), s.lambda[t] = float(lambda * p.decay_mult);
      s.first_chunk[t + 1] = s.first_chunk[t] + int((p.n + kChunk - 1) / kChunk);
    }
    exec.each(std::int64_t(s.first_chunk[s.count]) * kLanes, s);  // one launch for these tensors
  }
}

void sgd_momentum(const std::vector<ParamSlot<float>>& slots, double eta, double mu, double lambda,
                  MomentumForm form, cudaStream_t stream) {
  sgd_momentum_on(Device{stream}, slots, eta, mu, lambda, form);
}

}  // namespace hdl::cuda
