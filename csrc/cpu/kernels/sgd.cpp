// The fused SGD-momentum update for one instruction set: every tensor in one call.
#include "dense_impl.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {

template <class T>
void sgd_momentum(const std::vector<ParamSlot<T>>& slots, double eta_, double mu_, double lambda_,
                  MomentumForm form) {
  // Work items: (tensor, chunk) pairs, so that small and large tensors share the threads.
  std::vector<std::pair<size_t, int64>> items;
  int64 total = 0;
  for (size_t t = 0; t < slots.size(); ++t) {
    for (int64 b = 0; b < slots[t].n; b += kChunk) items.emplace_back(t, b);
    total += slots[t].n;
  }
  const T mu = T(mu_);
  parallel_for(int64(items.size()), total > kParallelWork, [&](int64 it) {
    const ParamSlot<T>& p = slots[items[it].first];
    const int64 b = items[it].second, e = std::min(p.n, b + kChunk);
    const T eta = T(eta_ * p.lr_mult), lambda = T(lambda_ * p.decay_mult);
    T* HDL_RESTRICT w = p.w;
    T* HDL_RESTRICT v = p.v;
    const T* HDL_RESTRICT g = p.g;
    if (form == MomentumForm::matconvnet) {
      for (int64 i = b; i < e; ++i) {
        v[i] = mu * v[i] - (g[i] + lambda * w[i]);
        w[i] += eta * v[i];
      }
    } else {
      for (int64 i = b; i < e; ++i) {
        v[i] = mu * v[i] + (g[i] + lambda * w[i]);
        w[i] -= eta * v[i];
      }
    }
  });
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(sgd)
