// Bindings of whole training runs (csrc/include/hdl/stochastic_gradient.hpp)
// and of the generator, so that tests can hold the Numba twin to it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "checks.hpp"
#include "hdl/float_mode.hpp"
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
// Before every call into Python the run's SGDState is copied into the caller's state array, if it gave one, so
// that a checkpoint written by a callback holds it.
struct PyHooks {
  py::object epoch_end, poll;
  double poll_seconds = 0.1;
  std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();
  const SGDState* state = nullptr;
  std::uint64_t* state_out = nullptr;  // (6,): the generator's 4 words, position, updates

  void publish() const {
    if (state_out == nullptr) return;
    for (int i = 0; i < 4; ++i) state_out[i] = state->rng.s[i];
    state_out[4] = std::uint64_t(state->position);
    state_out[5] = std::uint64_t(state->updates);
  }
};

bool epoch_end_hook(void* context, int64 epoch, double mean_batch_cost) {
  auto* h = static_cast<PyHooks*>(context);
  h->publish();
  py::gil_scoped_acquire gil;
  const FloatModeGuard ieee(false);  // the user's Python sees IEEE subnormals
  return py::bool_(h->epoch_end(epoch, mean_batch_cost));  // an exception in it leaves the run
}

bool poll_hook(void* context, int64 iterations_done) {
  auto* h = static_cast<PyHooks*>(context);
  const auto now = std::chrono::steady_clock::now();
  if (std::chrono::duration<double>(now - h->last).count() < h->poll_seconds) return false;
  h->last = now;
  py::gil_scoped_acquire gil;
  const FloatModeGuard ieee(false);
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  return !h->poll.is_none() && py::bool_(h->poll(iterations_done));
}

// One of the caller's integer arrays that the run reads and writes: (n,) of I, C-contiguous, writeable.
template <class I>
I* state_array(const char* name, const py::object& obj, int64 n) {
  const char* type = std::is_signed<I>::value ? "int64" : "uint64";
  const std::string what = std::string("sgd_train: ") + name + " must be a writeable " + type + " array of shape " +
                           hdl::shape_str({n});
  require(py::isinstance<py::array_t<I>>(obj), what + ", got " + std::string(py::str(py::type::of(obj))));
  const py::array a = py::reinterpret_borrow<py::array>(obj);
  require(a.dtype().kind() == (std::is_signed<I>::value ? 'i' : 'u') && a.itemsize() == 8 && a.ndim() == 1 &&
              a.shape(0) == n && (a.flags() & py::array::c_style) && a.writeable(),
          what + ", got " + std::string(py::str(a.dtype())) + " " + shape_str(a));
  return static_cast<I*>(const_cast<void*>(a.data()));
}

// The run's start: fresh from the seed, or the caller's state (6,) and order (N,), checked before they are used.
SGDState start_state(std::uint64_t seed, const py::object& state, const py::object& order, int64 N,
                     std::vector<int64>& own_order, PyHooks& hooks) {
  if (state.is_none()) {
    require(order.is_none(), "sgd_train: order is given without state");
    own_order.resize(N);
    std::iota(own_order.begin(), own_order.end(), int64(0));
    return {Rng(seed).state(), own_order.data(), N, 0};
  }
  std::uint64_t* s = state_array<std::uint64_t>("state", state, 6);
  int64* o = state_array<int64>("order", order, N);
  require((s[0] | s[1] | s[2] | s[3]) != 0, "sgd_train: state's generator words are all zero (not a state it left)");
  require(s[4] <= std::uint64_t(N) && s[5] < (std::uint64_t(1) << 62),
          "sgd_train: state's position must be in [0, N] and its updates below 2^62, got " + std::to_string(s[4]) +
              ", " + std::to_string(s[5]));
  for (int64 i = 0; i < N; ++i)
    require(o[i] >= 0 && o[i] < N, "sgd_train: order[" + std::to_string(i) + "] = " + std::to_string(o[i]) +
                                       " is not a point in [0, " + std::to_string(N) + ")");
  hooks.state_out = s;
  return {{{s[0], s[1], s[2], s[3]}}, o, int64(s[4]), int64(s[5])};
}

template <class T>
py::tuple train(const py::list& Ws, const py::list& bs, const std::vector<int>& acts,
                const std::vector<double>& slopes, const py::array& X_, const py::array& Y_, const SGDConfig& cfg,
                std::uint64_t seed, PyHooks& py_hooks, int64 epoch_length, const py::object& state_,
                const py::object& order_, const py::object& cost_) {
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
  std::vector<int64> own_order;
  SGDState state = start_state(seed, state_, order_, N, own_order, py_hooks);
  py_hooks.state = &state;
  const int64 r = cfg.record_every, u0 = state.updates, first = r > 0 ? (u0 + r - 1) / r : 0;
  const int64 records = r > 0 ? (u0 + cfg.iterations) / r - first + 1 : 0;
  py::array_t<double> history = cost_.is_none() ? py::array_t<double>(records) : py::array_t<double>();
  if (!cost_.is_none()) {
    require(py::isinstance<py::array_t<double>>(cost_), "sgd_train: cost must be a float64 array");
    history = py::reinterpret_borrow<py::array_t<double>>(cost_);
    require(history.ndim() == 1 && history.shape(0) >= records && (history.flags() & py::array::c_style) &&
                history.writeable(),
            "sgd_train: cost must be a writeable float64 array of at least " + std::to_string(records) +
                " values, got " + shape_str(history));
  }
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
  const double final_cost = without_gil([&] { return sgd_train<T>(layers, X, Y, cfg, state, h, hooks); });
  py_hooks.publish();
  const int64 written = r > 0 ? (u0 + hooks.iterations_done) / r - first + 1 : 0;
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
         int64 epoch_length, const py::object& poll, double poll_seconds, const py::object& state,
         const py::object& order, const py::object& cost) {
        SGDConfig cfg;
        cfg.iterations = iterations;
        cfg.batch_size = batch_size;
        cfg.replacement = replacement;
        cfg.shuffle = shuffle;
        cfg.eta = eta;
        cfg.lambda = lam;
        cfg.record_every = record_every;
        PyHooks hooks{epoch_end, poll, poll_seconds};
        return first_is_float32(Ws)
                   ? train<float>(Ws, bs, acts, slopes, X, Y, cfg, seed, hooks, epoch_length, state, order, cost)
                   : train<double>(Ws, bs, acts, slopes, X, Y, cfg, seed, hooks, epoch_length, state, order, cost);
      },
      py::arg("W"), py::arg("b"), py::arg("activations"), py::arg("slopes"), py::arg("X"), py::arg("Y"),
      py::arg("iterations"), py::arg("batch_size"), py::arg("replacement"), py::arg("shuffle"), py::arg("eta"),
      py::arg("lam"), py::arg("record_every"), py::arg("seed"), py::arg("epoch_end") = py::none(),
      py::arg("epoch_length") = 0, py::arg("poll") = py::none(), py::arg("poll_seconds") = 0.1,
      py::arg("state") = py::none(), py::arg("order") = py::none(), py::arg("cost") = py::none(),
      "Train W[l], b[l] in place by the stochastic gradient method; returns (cost history, final cost, updates "
      "applied, the update whose mini-batch cost was not finite or -1). epoch_end(epoch, mean_batch_cost) after "
      "every epoch_length updates and poll(updates) at most every poll_seconds may return True to stop. "
      "state (uint64 (6,): the generator's 4 words, the position in order, the updates applied) and order "
      "(int64 (N,)) say where the run starts (None: afresh from seed) and are kept up to date before every "
      "epoch_end or poll and at the end; the costs are recorded at the multiples of record_every updates "
      "counted from the run's start, into cost if given.");
  m.def(
      "rng_state",
      [](std::uint64_t seed) {
        const RngState s = Rng(seed).state();
        return py::array_t<std::uint64_t>(4, s.s);
      },
      py::arg("seed"), "The training generator's four words after seeding with seed.");
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
