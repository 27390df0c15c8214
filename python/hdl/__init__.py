"""hdl: deep learning for applied mathematicians, fast.

The system of C. F. Higham and D. J. Higham, "Deep Learning: An Introduction for
Applied Mathematicians", SIAM Review 61(4), 2019, with its kernels in C++.

    import hdl
    net = hdl.Network([2, 2, 3, 2], seed=1)        # the network of Figure 2.3
    X, Y = hdl.data.ten_points()                    # Figure 2.1, columns are points
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=10**6, seed=1)
    net.W[2], net.b[2], net.cost(X, Y), net.predict(X)
"""
def _load_openblas():
    """Loads the OpenBLAS of the scipy-openblas32 wheel that hdl._C was linked against."""
    import ctypes
    import os

    import scipy_openblas32

    ctypes.CDLL(os.path.join(scipy_openblas32.get_lib_dir(), "libscipy_openblas.so"), mode=ctypes.RTLD_GLOBAL)


_load_openblas()

from hdl import data  # noqa: E402
from hdl._C import get_num_threads, isa, set_num_threads  # noqa: E402
from hdl.layers import Dense  # noqa: E402
from hdl.lsq import least_squares  # noqa: E402
from hdl.network import Network  # noqa: E402
from hdl.optim import History, steepest_descent, stochastic_gradient  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Dense", "History", "Network", "data", "get_num_threads", "isa", "least_squares", "set_num_threads",
           "steepest_descent", "stochastic_gradient"]
