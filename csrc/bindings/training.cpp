// Bindings of whole training runs (csrc/include/hdl/stochastic_gradient.hpp)
// and of the generator, so that tests can hold the Numba twin to it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "checks.hpp"
#include "hdl/rng.hpp"
#include "hdl/kernels.hpp"

namespace hdl::bind {

namespace {

// The layers l = 2..L as views of the caller's arrays W[l], b[l], checked to chain.
template <class T>
std::vector<DenseLayerRef<T>> layers_of(const char* fn, const py::list& Ws, const py::list& bs,
                                        const std::vector<int>& acts, const std::vector<double>& slopes) {
  const size_t L = Ws.size();
  require(L > 0, std::string(fn) + ": the network has no layers");
  require(bs.size() == L && acts.size() == L && slopes.size() == L,
          std::string(fn) + ": need one b, activation and slope per W");
  std::vector<DenseLayerRef<T>> layers;
  for (size_t l = 0; l < L; ++l) {
    const std::string wname = "W[" + std::to_string(l + 2) + "]", bname = "b[" + std::to_string(l + 2) + "]";
    py::array W = Ws[l], b = bs[l];
    const int64 n_in = l == 0 ? -1 : layers.back().n_out;
    T* Wp = data_of<T>(fn, wname.c_str(), W, {-1, n_in});
    require(W.writeable(), std::string(fn) + ": " + wname + " is read-only");
    T* bp = data_of<T>(fn, bname.c_str(), b, {W.shape(0)});
    require(b.writeable(), std::string(fn) + ": " + bname + " is read-only");
    layers.push_back({Wp, bp, W.shape(1), W.shape(0), activation_of(acts[l]), T(slopes[l])});
  }
  return layers;
}

// An (n, N) data matrix, C-contiguous (row-major) or F-contiguous (point-major: data.T of an (N, n) array).
template <class T>
DataRef<T> data_ref(const char* fn, const char* name, const py::array& a, int64 n, int64 N) {
  const bool point_major = a.ndim() == 2 && !(a.flags() & py::array::c_style) && (a.flags() & py::array::f_style);
  if (!point_major) return {data_of<T>(fn, name, a, {n, N}), n, a.shape(1), false};
  require(a.shape(0) == n && (N < 0 || a.shape(1) == N), std::string(fn) + ": " + name + " must have shape " +
                                                             hdl::shape_str({n, N < 0 ? int64(a.shape(1)) : N}) + ", got " + shape_str(a));
  const py::array t = a.attr("T");  // its C-contiguous (N, n) transpose, the same memory
  const T* p = data_of<T>(fn, name, t, {N, n});
  return {p, n, a.shape(1), true};
}

// The Python side of SGDHooks: epoch_end(epoch, mean_batch_cost) -> stop and poll(iterations_done) -> stop,
// each None or a callable; the run also answers Ctrl-C (a pending signal raises KeyboardInterrupt out of
// it, the parameters as the last update left them). Polls reach Python at most every poll_seconds.
struct PyHooks {
  py::object epoch_end, poll;
  double poll_seconds = 0.1;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
};

bool epoch_end_hook(void* context, int64 epoch, double mean_batch_cost) {
  auto* h = static_cast<PyHooks*>(context);
  py::gil_scoped_acquire gil;
  return py::bool_(h->epoch_end(epoch, mean_batch_cost));  // an exception in it leaves the run
}

bool poll_hook(void* context, int64 iterations_done) {
  auto* h = static_cast<PyHooks*>(context);
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - h->last).count() < h->poll_seconds) return false;
  h->last = now;
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  return !h->poll.is_none() && py::bool_(h->poll(iterations_done));
}

template <class T>
py::tuple train(const py::list& Ws, const py::list& bs, const std::vector<int>& acts,
                const std::vector<double>& slopes, const py::array& X_, const py::array& Y_, const SGDConfig& cfg,
                PyHooks& py_hooks, int64 epoch_length) {
  const char* fn = "sgd_train";
  auto layers = layers_of<T>(fn, Ws, bs, acts, slopes);
  const DataRef<T> X = data_ref<T>(fn, "X", X_, layers.front().n_in, -1);
  const int64 N = X.N;
  const DataRef<T> Y = data_ref<T>(fn, "Y", Y_, layers.back().n_out, N);
  require(N > 0 && N < (int64(1) << 32), std::string(fn) + ": need 1 <= N < 2^32 training points");
  require(cfg.iterations > 0, std::string(fn) + ": iterations must be positive, got " + std::to_string(cfg.iterations));
  require(cfg.batch_size > 0, std::string(fn) + ": batch_size must be positive, got " + std::to_string(cfg.batch_size));
  require(std::isfinite(cfg.eta) && cfg.eta > 0, std::string(fn) + ": eta must be positive and finite");
  require(std::isfinite(cfg.lambda) && cfg.lambda >= 0, std::string(fn) + ": lambda must be >= 0 and finite");
  require(cfg.record_every >= 0, std::string(fn) + ": record_every must be >= 0");
  const int64 records = cfg.record_every > 0 ? cfg.iterations / cfg.record_every + 1 : 0;
  py::array_t<double> history(records);
  double* h = history.mutable_data();
  SGDHooks hooks;
  hooks.context = &py_hooks;
  if (!py_hooks.epoch_end.is_none()) {
    require(epoch_length > 0, std::string(fn) + ": epoch_end needs a positive epoch_length");
    hooks.epoch_end = epoch_end_hook;
    hooks.epoch_length = epoch_length;
  }
  hooks.poll = poll_hook;  // always: Ctrl-C stops a run of any length
  hooks.poll_every = 16;
  const double final_cost = without_gil([&] { return sgd_train<T>(layers, X, Y, cfg, h, hooks); });
  const int64 written = cfg.record_every > 0 ? hooks.iterations_done / cfg.record_every + 1 : 0;
  return py::make_tuple(history[py::slice(0, written, 1)], final_cost, hooks.iterations_done, hooks.diverged_at);
}

bool first_is_float32(const py::list& Ws) { return Ws.size() > 0 && is_float32(py::array(Ws[0])); }

}  // namespace

void bind_training(py::module_& m) {
  m.def(
      "sgd_train",
      [](const py::list& Ws, const py::list& bs, const std::vector<int>& acts, const std::vector<double>& slopes,
         const py::array& X, const py::array& Y, int64 iterations, int64 batch_size, bool replacement, bool shuffle,
         double eta, double lam, int64 record_every, std::uint64_t seed, const py::object& epoch_end,
         int64 epoch_length, const py::object& poll, double poll_seconds) {
        SGDConfig cfg;
        cfg.iterations = iterations;
        cfg.batch_size = batch_size;
        cfg.replacement = replacement;
        cfg.shuffle = shuffle;
        cfg.eta = eta;
        cfg.lambda = lam;
        cfg.record_every = record_every;
        cfg.seed = seed;
        PyHooks hooks{epoch_end, poll, poll_seconds};
        return first_is_float32(Ws) ? train<float>(Ws, bs, acts, slopes, X, Y, cfg, hooks, epoch_length)
                                    : train<double>(Ws, bs, acts, slopes, X, Y, cfg, hooks, epoch_length);
      },
      py::arg("W"), py::arg("b"), py::arg("activations"), py::arg("slopes"), py::arg("X"), py::arg("Y"),
      py::arg("iterations"), py::arg("batch_size"), py::arg("replacement"), py::arg("shuffle"), py::arg("eta"),
      py::arg("lam"), py::arg("record_every"), py::arg("seed"), py::arg("epoch_end") = py::none(),
      py::arg("epoch_length") = 0, py::arg("poll") = py::none(), py::arg("poll_seconds") = 0.1,
      "Train W[l], b[l] in place by the stochastic gradient method; returns (cost history, final cost, updates "
      "applied, the update whose mini-batch cost was not finite or -1). epoch_end(epoch, mean_batch_cost) after "
      "every epoch_length updates and poll(updates) at most every poll_seconds may return True to stop.");
  m.def(
      "rng_below",
      [](std::uint64_t seed, std::uint32_t n, int64 count) {
        require(n > 0 && count >= 0, "rng_below: need n > 0 and count >= 0");
        Rng rng(seed);
        py::array_t<std::int64_t> out(count);
        auto* p = out.mutable_data();
        for (int64 i = 0; i < count; ++i) p[i] = rng.below(n);
        return out;
      },
      py::arg("seed"), py::arg("n"), py::arg("count"), "count uniform draws from {0..n-1} by the training generator.");
  m.def(
      "rng_shuffle",
      [](std::uint64_t seed, int64 n) {
        require(n > 0, "rng_shuffle: need n > 0");
        Rng rng(seed);
        py::array_t<std::int64_t> out(n);
        auto* p = out.mutable_data();
        for (int64 i = 0; i < n; ++i) p[i] = i;
        rng.shuffle(p, n);
        return out;
      },
      py::arg("seed"), py::arg("n"), "The permutation of 0..n-1 the training generator draws first.");
}

}  // namespace hdl::bind
