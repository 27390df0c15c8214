// Bindings of the softmax log-loss and top-k (hdl/kernel_list.hpp, loss.cpp) and the
// fused SGD-momentum update (sgd.cpp).
#include "hdl/kernels.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "checks.hpp"

namespace hdl::bind {

namespace {

const std::int64_t* labels_of(const char* fn, const py::array& labels, int64 N, int64 K) {
  require(labels.dtype().kind() == 'i' && labels.itemsize() == 8 && (labels.flags() & py::array::c_style),
          std::string(fn) + ": labels must be a contiguous int64 array, got " + std::string(py::str(labels.dtype())));
  require(labels.ndim() == 1 && labels.shape(0) == N, std::string(fn) + ": labels must have shape (" +
                                                          std::to_string(N) + ",), got " + shape_str(labels));
  const auto* l = static_cast<const std::int64_t*>(labels.data());
  for (int64 i = 0; i < N; ++i)
    require(l[i] >= 0 && l[i] < K, std::string(fn) + ": label " + std::to_string(l[i]) + " at " + std::to_string(i) +
                                       " is outside [0, " + std::to_string(K) + ")");
  return l;
}

template <class T>
void sgd(const py::list& params, const py::list& grads, const py::list& vels, const std::vector<double>& lr_mults,
         const std::vector<double>& decay_mults, double eta, double mu, double lambda, int form) {
  const size_t n = params.size();
  std::vector<ParamSlot<T>> slots;
  for (size_t i = 0; i < n; ++i) {
    py::array w = params[i], g = grads[i], v = vels[i];
    const std::string k = "[" + std::to_string(i) + "]";
    T* wp = data_any<T>("sgd_momentum", "params" + k, w);
    const T* gp = data_like<T>("sgd_momentum", "grads" + k, g, "params" + k, w);
    T* vp = data_like<T>("sgd_momentum", "velocities" + k, v, "params" + k, w);
    require(w.writeable() && v.writeable(), "sgd_momentum: params" + k + " and velocities" + k + " must be writable");
    slots.push_back({wp, gp, vp, w.size(), lr_mults[i], decay_mults[i]});
  }
  without_gil([&] { sgd_momentum<T>(slots, eta, mu, lambda, static_cast<MomentumForm>(form)); });
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def(
      "softmax_log_loss",
      [](const py::array& v_, const py::array& labels_) {
        return by_dtype(v_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* v = data_of<T>("softmax_log_loss", "v", v_, {-1, -1});
          const int64 N = v_.shape(0), K = v_.shape(1);
          require(N > 0 && K > 0, "softmax_log_loss: v must be (N, K) with N, K > 0, got " + shape_str(v_));
          const std::int64_t* labels = labels_of("softmax_log_loss", labels_, N, K);
          py::array_t<T> dv({N, K});
          T* d = dv.mutable_data();
          const double value = without_gil([&] { return softmax_log_loss<T>(d, v, labels, N, K); });
          return py::make_tuple(value, dv);
        });
      },
      py::arg("v"), py::arg("labels"));
  m.def(
      "top_k",
      [](const py::array& v_, int64 k) {
        return by_dtype(v_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* v = data_of<T>("top_k", "v", v_, {-1, -1});
          const int64 N = v_.shape(0), K = v_.shape(1);
          require(k >= 1 && k <= K, "top_k: k must be in [1, " + std::to_string(K) + "], got " + std::to_string(k));
          py::array_t<std::int64_t> idx({N, k});
          std::int64_t* out = idx.mutable_data();
          without_gil([&] { top_k<T>(out, v, N, K, k); });
          return idx;
        });
      },
      py::arg("v"), py::arg("k"));
  m.def(
      "sgd_momentum",
      [](const py::list& params, const py::list& grads, const py::list& vels, const std::vector<double>& lr_mults,
         const std::vector<double>& decay_mults, double eta, double mu, double lambda, int form) {
        const size_t n = params.size();
        require(grads.size() == n && vels.size() == n && lr_mults.size() == n && decay_mults.size() == n,
                "sgd_momentum: need one gradient, velocity and pair of multipliers per parameter");
        require(form == 0 || form == 1, "sgd_momentum: unknown form");
        if (n == 0) return;
        by_dtype(py::array(params[0]),
                 [&](auto t) { sgd<decltype(t)>(params, grads, vels, lr_mults, decay_mults, eta, mu, lambda, form); });
      },
      py::arg("params"), py::arg("grads"), py::arg("velocities"), py::arg("lr_mults"), py::arg("decay_mults"),
      py::arg("eta"), py::arg("mu"), py::arg("lam"), py::arg("form"));
}

}  // namespace hdl::bind
