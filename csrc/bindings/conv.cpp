// Bindings of the convolution (hdl/kernel_list.hpp, conv.cpp) and of its shape check, which the CUDA
// backend shares (hdl/shapes.hpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <vector>

#include "checks.hpp"
#include "hdl/autotune.hpp"
#include "hdl/kernels.hpp"

namespace hdl::bind {

void bind_conv(py::module_& m) {
  m.def(
      "conv2d",
      [](const py::array& x_, const py::array& w_, const py::array& b_, int64 sh, int64 sw, int64 pt, int64 pb,
         int64 pl, int64 pr, const py::object& activation, double slope, const py::object& out) {
        const char* fn = "conv2d";
        const ConvShape s = conv_shape(fn, dims(x_), dims(w_), sh, sw, pt, pb, pl, pr);
        // a code, not a bool: the argument was `relu` before it was any activation, and True would be the sigmoid
        require(py::isinstance<py::int_>(activation) && !py::isinstance<py::bool_>(activation),
                std::string(fn) + ": activation must be an int code of hdl.ops.ACTIVATIONS, got " +
                    std::string(py::repr(activation)));
        int overflow = 0;
        const long long code = PyLong_AsLongLongAndOverflow(activation.ptr(), &overflow);
        require(overflow == 0, "unknown activation code " + std::string(py::repr(activation)));
        const Activation act = activation_of(code);
        require(std::isfinite(slope), std::string(fn) + ": slope must be finite, got " + std::to_string(slope));
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
          const T* w = data_of<T>(fn, "w", w_, {s.O, s.C, s.kh, s.kw});
          const T* b = data_of<T>(fn, "b", b_, {s.O});
          py::array_t<T> y = output<T>(fn, out, {s.N, s.out_h(), s.out_w(), s.O});
          T* yp = y.mutable_data();
          without_gil([&] { conv2d_forward<T>(yp, x, w, b, s, act, T(slope)); });
          return y;
        });
      },
      py::arg("x"), py::arg("w"), py::arg("b"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("activation") = 0, py::arg("slope") = 0.0,
      py::arg("out") = py::none(),
      "Convolution of x (N, H, W, C) with w (O, C, kh, kw): y (N, out_h, out_w, O) = sigma(conv + b), sigma the "
      "activation of that code (hdl.ops.ACTIVATIONS; slope the leaky ReLU's), 0 (linear) for none.");
  m.def(
      "conv2d_backward",
      [](const py::array& dy_, const py::array& x_, const py::array& w_, int64 sh, int64 sw, int64 pt, int64 pb,
         int64 pl, int64 pr, bool want_dx, const py::object& dx_out) {
        const char* fn = "conv2d_backward";
        const ConvShape s = conv_shape(fn, dims(x_), dims(w_), sh, sw, pt, pb, pl, pr);
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
          const T* w = data_of<T>(fn, "w", w_, {s.O, s.C, s.kh, s.kw});
          const T* dy = data_of<T>(fn, "dy", dy_, {s.N, s.out_h(), s.out_w(), s.O});
          py::array_t<T> dw({s.O, s.C, s.kh, s.kw}), db({s.O});
          py::object dx = py::none();
          T* dxp = nullptr;
          if (want_dx) {
            py::array_t<T> arr = output<T>(fn, dx_out, {s.N, s.H, s.W, s.C});
            dxp = arr.mutable_data();
            dx = arr;
          }
          T *dwp = dw.mutable_data(), *dbp = db.mutable_data();
          without_gil([&] { conv2d_backward<T>(dxp, dwp, dbp, dy, x, w, s); });
          return py::make_tuple(dx, dw, db);
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("want_dx") = true, py::arg("dx_out") = py::none(),
      "(dx, dw, db) of the NHWC convolution given dy (N, out_h, out_w, O).");
  m.def(
      "conv_shape",
      [](const std::string& fn, const std::vector<int64>& x, const std::vector<int64>& w, int64 sh, int64 sw, int64 pt,
         int64 pb, int64 pl, int64 pr) {
        const ConvShape s = conv_shape(fn, x, w, sh, sw, pt, pb, pl, pr);
        return py::make_tuple(s.fields(), py::make_tuple(s.N, s.out_h(), s.out_w(), s.O));
      },
      py::arg("fn"), py::arg("x_shape"), py::arg("w_shape"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"),
      "The convolution's shape after the checks of conv2d (ValueError naming fn otherwise): (its fields, as the "
      "CUDA bindings take them, and the shape of y). Shared by both backends (hdl/shapes.hpp).");
  m.def(
      "conv_winograd_offer",
      [](const std::vector<int64>& x, const std::vector<int64>& w, int64 sh, int64 sw, int64 pt, int64 pb, int64 pl,
         int64 pr, const py::object& dtype, bool kept) {
        const ConvShape s = conv_shape("conv_winograd_offer", x, w, sh, sw, pt, pb, pl, pr);
        const HoldFilters held(kept);
        int64 offer[8];
        const py::dtype dt = py::dtype::from_args(dtype);
        if (dt.is(py::dtype::of<float>())) conv_winograd_offer<float>(s, offer);
        else if (dt.is(py::dtype::of<double>())) conv_winograd_offer<double>(s, offer);
        else throw py::type_error("conv_winograd_offer: dtype must be float32 or float64, got " + py::str(dt).cast<std::string>());
        py::dict out;
        const char* passes[3] = {"forward", "data_gradient", "filter_gradient"};
        for (int i = 0; i < 3; ++i)
          out[passes[i]] = offer[2 * i] ? py::object(py::make_tuple(offer[2 * i], offer[2 * i + 1])) : py::none();
        out["space_to_depth"] = bool(offer[6]);
        out["data_gradient_subpixel"] = bool(offer[7]);
        return out;
      },
      py::arg("x_shape"), py::arg("w_shape"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"), py::arg("pad_bottom"),
      py::arg("pad_left"), py::arg("pad_right"), py::arg("dtype"), py::arg("kept_filters") = false,
      "The Winograd tiles that the rules offer the NHWC convolution's passes, before the autotune measures them "
      "(kept_filters: in an inference over filters it reads kept, which offers Winograd on fewer tiles): {'forward', 'data_gradient', 'filter_gradient': (r, alpha) of F(m x m, r x r) on alpha x alpha tiles or "
      "None, 'space_to_depth': whether they serve a strided convolution as a stride-1 one, "
      "'data_gradient_subpixel': whether the data gradient's tile serves its sub-pixel phases}.");
  // The measured choices of hdl/autotune.hpp, as hdl.autotune saves and loads them.
  m.def(
      "autotune_entries",
      [] {
        py::list out;
        for (const auto& [key, choice] : autotune::entries())
          out.append(py::make_tuple(py::tuple(py::cast(std::vector<int64>(key.begin(), key.end()))), int(choice)));
        return out;
      },
      "The measured choices of this process: (key, algorithm) pairs, the key (pass, bytes, threads, N, Hp, Wp, "
      "C, Ho, Wo, O, kh, kw, sh, sw, rows lo, rows hi, cols lo, cols hi), the algorithm 0 direct, 1 implicit GEMM, "
      "2 Winograd, 3 not Winograd, 4 sub-pixel, 5 col2im (hdl.autotune names them).");
  m.def(
      "autotune_record",
      [](const std::vector<int64>& key, int choice) {
        if (key.size() != autotune::kKeyLength)
          throw py::value_error("autotune_record: a key has " + std::to_string(autotune::kKeyLength) + " integers, got " +
                                std::to_string(key.size()));
        if (choice < 0 || choice >= autotune::kAlgorithms)
          throw py::value_error("autotune_record: the algorithm is 0 (direct), 1 (implicit GEMM), 2 (Winograd), "
                                "3 (not Winograd), 4 (sub-pixel) or 5 (col2im), got " + std::to_string(choice));
        if (key[0] < 0 || key[0] >= autotune::kPasses)
          throw py::value_error("autotune_record: the pass (the key's first integer) is 0 to " +
                                std::to_string(autotune::kPasses - 1) + ", got " + std::to_string(key[0]));
        if (!autotune::pass_chooses(int(key[0]), choice))
          throw py::value_error("autotune_record: passes 0-1 and 6 choose 0 or 1 (direct, implicit GEMM), passes "
                                "2-4 and 7 choose 2 or 3 (Winograd or not), pass 5 chooses 4 or 5 (sub-pixel, "
                                "col2im); got " +
                                std::to_string(choice) + " for pass " + std::to_string(key[0]));
        autotune::Key k;
        std::copy(key.begin(), key.end(), k.begin());
        autotune::record(k, autotune::Algorithm(choice));
      },
      py::arg("key"), py::arg("algorithm"), "Record a choice (as autotune_entries gives it), measured or loaded.");
  m.def("autotune_clear", &autotune::clear, "Forget every measured choice of this process.");
  m.def(
      "keep_filters",
      [](bool on) {
        const bool was = keep_filters();
        keep_filters() = on;
        return was;
      },
      py::arg("on"),
      "Whether this thread's convolutions keep their packed or transformed filters between calls, and keep reading "
      "them while the filters hold the same values (inference passes; Model.forward sets it): sets it, returns "
      "what it was.");
}

}  // namespace hdl::bind
