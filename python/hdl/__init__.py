"""hdl: deep learning for applied mathematicians, fast.

The system of C. F. Higham and D. J. Higham, "Deep Learning: An Introduction for
Applied Mathematicians", SIAM Review 61(4), 2019, with its kernels in C++.

    import hdl
    net = hdl.Network([2, 2, 3, 2], seed=1)        # the network of Figure 2.3
    X, Y = hdl.data.ten_points()                    # Figure 2.1, columns are points
    hist = hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=10**6, seed=1)
    net.W[2], net.b[2], net.cost(X, Y), net.predict(X)
"""
from hdl import cuda, data
from hdl._C import get_flush_denormal, get_num_threads, isa, set_flush_denormal, set_num_threads
from hdl.gradcheck import GradcheckError, gradcheck
from hdl.history import History
from hdl.layers import Dense, Layer, register
from hdl.lsq import least_squares
from hdl.model import Model, ModelFileError
from hdl.network import Network
from hdl.optim import steepest_descent, stochastic_gradient

__version__ = "0.1.0"
__all__ = ["Dense", "GradcheckError", "History", "Layer", "Model", "ModelFileError", "Network", "cuda", "data",
           "get_flush_denormal", "get_num_threads", "gradcheck", "isa", "least_squares", "register",
           "set_flush_denormal", "set_num_threads", "steepest_descent", "stochastic_gradient"]
