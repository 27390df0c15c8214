// Bindings of the CUDA kernels (hdl/cuda/kernels.hpp). Arguments are device pointers as integers
// and sizes; python/hdl/cuda/ops.py checks every shape and dtype first and names them in its
// errors. Every call is asynchronous on hdl's stream.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "hdl/cuda/kernels.hpp"
#include "hdl/cuda/memory.hpp"

namespace py = pybind11;

namespace hdl::bind_cuda {

namespace {

template <class T>
T* p(std::uintptr_t a) {
  return reinterpret_cast<T*>(a);
}
using F = float;
using I64 = std::int64_t;
using U = std::uintptr_t;

// The shapes in their flat form (hdl/shapes.hpp), as hdl._C.conv_shape and pool_shape return them
// after their checks.
template <class Shape>
Shape shape_of(const std::vector<int64>& v) {
  if (v.size() != size_t(Shape::kFields))
    throw py::value_error("a shape of " + std::to_string(Shape::kFields) + " numbers was expected, got " +
                          std::to_string(v.size()) + " (use hdl._C.conv_shape or pool_shape)");
  return Shape::from_fields(v.data());
}
ConvShape conv_shape(const std::vector<int64>& v) { return shape_of<ConvShape>(v); }
PoolShape pool_shape(const std::vector<int64>& v) { return shape_of<PoolShape>(v); }

}  // namespace

void bind_kernels(py::module_& m) {
  namespace hc = hdl::cuda;
  m.def("dense_forward", [](U a_out, U W, U b, U a_in, int64 n_out, int64 n_in, int64 mm, int act, float slope) {
    hc::dense_forward(p<F>(a_out), p<F>(W), p<F>(b), p<F>(a_in), n_out, n_in, mm, Activation(act), slope, hc::stream());
  });
  m.def("dense_backward", [](U delta, U dW, U db, U g_in, U g, U a_out, U W, U a_in, int64 n_out, int64 n_in,
                             int64 mm, int act, float slope, float scale) {
    hc::dense_backward(p<F>(delta), p<F>(dW), p<F>(db), p<F>(g_in), p<F>(g), p<F>(a_out), p<F>(W), p<F>(a_in), n_out,
                       n_in, mm, Activation(act), slope, scale, hc::stream());
  });
  // shape: ConvShape::fields(), from hdl._C.conv_shape
  m.def("conv2d_forward", [](U y, U x, U w, U b, const std::vector<int64>& shape, bool relu) {
    hc::conv2d_forward(p<F>(y), p<F>(x), p<F>(w), p<F>(b), conv_shape(shape), relu, hc::stream());
  });
  m.def("conv2d_backward", [](U dx, U dw, U db, U dy, U x, U w, const std::vector<int64>& shape) {
    hc::conv2d_backward(p<F>(dx), p<F>(dw), p<F>(db), p<F>(dy), p<F>(x), p<F>(w), conv_shape(shape), hc::stream());
  });
  // shape: PoolShape::fields(), from hdl._C.pool_shape
  m.def("max_pool2d_forward", [](U y, U argmax, U x, const std::vector<int64>& shape, bool relu) {
    hc::max_pool2d_forward(p<F>(y), p<std::int32_t>(argmax), p<F>(x), pool_shape(shape), relu, hc::stream());
  });
  m.def("max_pool2d_backward_argmax", [](U dx, U dy, U argmax, const std::vector<int64>& shape) {
    hc::max_pool2d_backward_argmax(p<F>(dx), p<F>(dy), p<std::int32_t>(argmax), pool_shape(shape), hc::stream());
  });
  m.def("max_pool2d_backward", [](U dx, U dy, U x, const std::vector<int64>& shape) {
    hc::max_pool2d_backward(p<F>(dx), p<F>(dy), p<F>(x), pool_shape(shape), hc::stream());
  });
  m.def("avg_pool2d_forward", [](U y, U x, const std::vector<int64>& shape) {
    hc::avg_pool2d_forward(p<F>(y), p<F>(x), pool_shape(shape), hc::stream());
  });
  m.def("avg_pool2d_backward", [](U dx, U dy, const std::vector<int64>& shape) {
    hc::avg_pool2d_backward(p<F>(dx), p<F>(dy), pool_shape(shape), hc::stream());
  });
#define HDL_BIND_CUDA_ACTIVATION(K, name, Struct)                                                          \
  m.def(#name "_forward", [](U y, U x, I64 n) { hc::name##_forward(p<F>(y), p<F>(x), n, hc::stream()); });     \
  m.def(#name "_backward",                                                                                   \
        [](U dx, U dy, U y, I64 n) { hc::name##_backward(p<F>(dx), p<F>(dy), p<F>(y), n, hc::stream()); });
  HDL_ACTIVATIONS(HDL_BIND_CUDA_ACTIVATION, _)
#undef HDL_BIND_CUDA_ACTIVATION
  m.def("relu_forward", [](U y, U x, int64 n, float slope) {
    hc::relu_forward(p<F>(y), p<F>(x), n, slope, hc::stream());
  });
  m.def("relu_backward", [](U dx, U dy, U x, int64 n, float slope) {
    hc::relu_backward(p<F>(dx), p<F>(dy), p<F>(x), n, slope, hc::stream());
  });
  m.def("dropout_forward", [](U y, U mask, U x, int64 n, double rate, std::uint64_t seed) {
    hc::dropout_forward(p<F>(y), p<F>(mask), p<F>(x), n, rate, seed, hc::stream());
  });
  m.def("dropout_backward", [](U dx, U dy, U mask, int64 n) {
    hc::dropout_backward(p<F>(dx), p<F>(dy), p<F>(mask), n, hc::stream());
  });
  m.def("softmax_log_loss", [](U dv, U loss, U v, U labels, int64 N, int64 K) {
    hc::softmax_log_loss(p<F>(dv), p<double>(loss), p<F>(v), p<I64>(labels), N, K, hc::stream());
  });
  m.def("top_k", [](U idx, U v, int64 N, int64 K, int64 k) {
    hc::top_k(p<I64>(idx), p<F>(v), N, K, k, hc::stream());
  });
  // slots: (w, g, v, n, lr_mult, decay_mult) per tensor
  m.def("sgd_momentum", [](const std::vector<std::tuple<U, U, U, int64, double, double>>& slots, double eta,
                           double mu, double lambda, int form) {
    std::vector<ParamSlot<float>> s;
    s.reserve(slots.size());
    for (const auto& [w, g, v, n, lr, decay] : slots) s.push_back({p<F>(w), p<F>(g), p<F>(v), n, lr, decay});
    hc::sgd_momentum(s, eta, mu, lambda, MomentumForm(form), hc::stream());
  });
}

}  // namespace hdl::bind_cuda
