// Bindings of the fully connected layer kernels (hdl/kernel_list.hpp, dense.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "checks.hpp"
#include "hdl/kernels.hpp"

namespace hdl::bind {

void bind_dense(py::module_& m) {
  m.def(
      "dense_forward",
      [](const py::array& W_, const py::array& b_, const py::array& a_, int act, double slope) {
        return by_dtype(W_, [&](auto t) -> py::object {
          using T = decltype(t);
          const char* fn = "dense_forward";
          const T* W = data_of<T>(fn, "W", W_, {-1, -1});
          const int64 n_out = W_.shape(0), n_in = W_.shape(1);
          const T* b = data_of<T>(fn, "b", b_, {n_out});
          const T* a_in = data_of<T>(fn, "a", a_, {n_in, -1});
          const int64 m = a_.shape(1);
          py::array_t<T> out({n_out, m});
          T* a_out = out.mutable_data();
          const Activation activation = activation_of(act);
          without_gil([&] { dense_forward<T>(a_out, W, b, a_in, n_out, n_in, m, activation, T(slope)); });
          return out;
        });
      },
      py::arg("W"), py::arg("b"), py::arg("a"), py::arg("activation"), py::arg("slope") = 0.01,
      "sigma(W a + b) for a of shape (n_in, m): (5.2)-(5.3).");
  m.def(
      "dense_backward",
      [](const py::array& g_, const py::array& aout_, const py::array& W_, const py::array& ain_, int act,
         double slope, double scale, bool want_g_in) {
        return by_dtype(W_, [&](auto t) -> py::object {
          using T = decltype(t);
          const char* fn = "dense_backward";
          const T* W = data_of<T>(fn, "W", W_, {-1, -1});
          const int64 n_out = W_.shape(0), n_in = W_.shape(1);
          const T* a_in = data_of<T>(fn, "a_in", ain_, {n_in, -1});
          const int64 m = ain_.shape(1);
          const T* a_out = data_of<T>(fn, "a_out", aout_, {n_out, m});
          const T* g = data_of<T>(fn, "g", g_, {n_out, m});
          py::array_t<T> delta({n_out, m}), dW({n_out, n_in}), db({n_out});
          py::object g_in = py::none();
          T* g_in_ptr = nullptr;
          if (want_g_in) {
            py::array_t<T> g_arr({n_in, m});
            g_in_ptr = g_arr.mutable_data();
            g_in = g_arr;
          }
          T *d = delta.mutable_data(), *dw = dW.mutable_data(), *dbp = db.mutable_data();
          const Activation activation = activation_of(act);
          without_gil([&] {
            dense_backward<T>(d, dw, dbp, g_in_ptr, g, a_out, W, a_in, n_out, n_in, m, activation, T(slope), T(scale));
          });
          return py::make_tuple(delta, dW, db, g_in);
        });
      },
      py::arg("g"), py::arg("a_out"), py::arg("W"), py::arg("a_in"), py::arg("activation"), py::arg("slope") = 0.01,
      py::arg("scale") = 1.0, py::arg("want_g_in") = true,
      "(delta, dW, db, g_in) of Lemma 5.1 given g = dC/da_out.");
  m.def(
      "gemm",
      [](const py::array& A_, const py::array& B_, const py::object& out_, bool ta, bool tb, double alpha,
         double beta) {
        return by_dtype(A_, [&](auto t) -> py::object {
          using T = decltype(t);
          const char* fn = "gemm";
          const T* A = data_of<T>(fn, "A", A_, {-1, -1});
          const T* B = data_of<T>(fn, "B", B_, {-1, -1});
          const int64 M = A_.shape(ta ? 1 : 0), K = A_.shape(ta ? 0 : 1);
          const int64 Kb = B_.shape(tb ? 1 : 0), N = B_.shape(tb ? 0 : 1);
          if (K != Kb)
            throw py::value_error(std::string(fn) + ": op(A) is (" + std::to_string(M) + ", " + std::to_string(K) +
                                  ") but op(B) is (" + std::to_string(Kb) + ", " + std::to_string(N) + ") (A " +
                                  shape_str(A_) + ", B " + shape_str(B_) + ", trans_a=" + (ta ? "True" : "False") +
                                  ", trans_b=" + (tb ? "True" : "False") + ")");
          if (out_.is_none() && beta != 0.0) throw py::value_error("gemm: beta != 0 needs out (C to accumulate into)");
          py::array_t<T> out = output<T>(fn, out_, {M, N});
          T* C = out.mutable_data();
          without_gil([&] { gemm<T>(ta, tb, M, N, K, T(alpha), A, A_.shape(1), B, B_.shape(1), T(beta), C, N); });
          return out;
        });
      },
      py::arg("A"), py::arg("B"), py::arg("out") = py::none(), py::arg("trans_a") = false,
      py::arg("trans_b") = false, py::arg("alpha") = 1.0, py::arg("beta") = 0.0,
      "alpha op(A) op(B) + beta out, op(X) = X.T when trans_x: hdl's GEMM core (float32 or float64, C-contiguous).");
  m.def(
      "quadratic_cost",
      [](const py::array& a_, const py::array& y_, double scale) {
        return by_dtype(a_, [&](auto t) -> py::object {
          using T = decltype(t);
          const char* fn = "quadratic_cost";
          const T* a = data_of<T>(fn, "a", a_, {-1, -1});
          const T* y = data_of<T>(fn, "y", y_, {a_.shape(0), a_.shape(1)});
          py::array_t<T> g({a_.shape(0), a_.shape(1)});
          T* gp = g.mutable_data();
          const double c = without_gil([&] { return quadratic_cost<T>(gp, a, y, a_.shape(0), a_.shape(1), scale); });
          return py::make_tuple(c, g);
        });
      },
      py::arg("a"), py::arg("y"), py::arg("scale") = 1.0,
      "(scale * sum 1/2 ||y - a||^2, scale * (a - y)): the cost (3.3) and dC/da.");
}

}  // namespace hdl::bind
