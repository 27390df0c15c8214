// Giving an imported DLPack tensor back to its producer. Kernels queued on hdl's stream may still
// read it, and the producer may free or reuse the memory as soon as its deleter runs: so the deleter
// runs only after hdl's stream has finished (a wait that never throws; errors are recorded).
#pragma once
#include "hdl/cuda/dlpack.h"
#include "hdl/cuda/memory.hpp"

namespace hdl::dlpack {

template <class Managed>
void release_imported(Managed* m) noexcept {
  if (!m) return;
  const auto type = m->dl_tensor.device.device_type;
  if (type == kDLCUDA || type == kDLCUDAManaged || type == kDLCUDAHost) hdl::cuda::wait_for_stream_noexcept();
  if (m->deleter) m->deleter(m);
}

}  // namespace hdl::dlpack
