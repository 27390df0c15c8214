"""
hdl's compiled kernels (C++17, OpenMP); use the Python API in hdl and hdl.ops
"""
from __future__ import annotations
import collections.abc
import numpy
import numpy.typing
import typing
__all__: list[str] = ['activations', 'all_finite', 'autotune_clear', 'autotune_entries', 'autotune_record', 'avg_pool2d', 'avg_pool2d_backward', 'conv2d', 'conv2d_backward', 'conv_shape', 'conv_winograd_offer', 'dense_backward', 'dense_forward', 'dropout', 'fma_peak_gflops', 'gemm', 'get_flush_denormal', 'get_num_threads', 'isa', 'keep_filters', 'max_pool2d', 'max_pool2d_backward', 'pool_shape', 'quadratic_cost', 'relu', 'relu_backward', 'rng_below', 'rng_shuffle', 'rng_state', 'set_flush_denormal', 'set_num_threads', 'sgd_momentum', 'sgd_train', 'sigmoid', 'sigmoid_backward', 'softmax_log_loss', 'tanh', 'tanh_backward', 'top_k']
def all_finite(x: numpy.ndarray) -> bool:
    """
    Whether no element of a float32 or float64 array, C- or F-contiguous, is NaN or infinite.
    """
def autotune_clear() -> None:
    """
    Forget every measured choice of this process.
    """
def autotune_entries() -> list:
    """
    The measured choices of this process: (key, algorithm) pairs, the key (pass, bytes, threads, N, Hp, Wp, C, Ho, Wo, O, kh, kw, sh, sw, rows lo, rows hi, cols lo, cols hi), the algorithm 0 direct, 1 implicit GEMM, 2 Winograd, 3 not Winograd, 4 sub-pixel, 5 col2im (hdl.autotune names them).
    """
def autotune_record(key: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], algorithm: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Record a choice (as autotune_entries gives it), measured or loaded.
    """
def avg_pool2d(x: numpy.ndarray, kh: typing.SupportsInt | typing.SupportsIndex, kw: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, out: typing.Any = None, relu: bool = False, want_argmax: bool = False, argmax: typing.Any = None) -> typing.Any:
    ...
def avg_pool2d_backward(dy: numpy.ndarray, x: numpy.ndarray, kh: typing.SupportsInt | typing.SupportsIndex, kw: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, out: typing.Any = None, argmax: typing.Any = None) -> typing.Any:
    ...
def conv2d(x: numpy.ndarray, w: numpy.ndarray, b: numpy.ndarray, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, activation: typing.Any = 0, slope: typing.SupportsFloat | typing.SupportsIndex = 0.0, out: typing.Any = None) -> typing.Any:
    """
    Convolution of x (N, H, W, C) with w (O, C, kh, kw): y (N, out_h, out_w, O) = sigma(conv + b), sigma the activation of that code (hdl.ops.ACTIVATIONS; slope the leaky ReLU's), 0 (linear) for none.
    """
def conv2d_backward(dy: numpy.ndarray, x: numpy.ndarray, w: numpy.ndarray, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, want_dx: bool = True, dx_out: typing.Any = None) -> typing.Any:
    """
    (dx, dw, db) of the NHWC convolution given dy (N, out_h, out_w, O).
    """
def conv_shape(fn: str, x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], w_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex) -> tuple[list[int], tuple[int, int, int, int]]:
    """
    The convolution's shape after the checks of conv2d (ValueError naming fn otherwise): (its fields, as the CUDA bindings take them, and the shape of y). Shared by both backends (hdl/shapes.hpp).
    """
def conv_winograd_offer(x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], w_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, dtype: typing.Any, kept_filters: bool = False) -> dict:
    """
    The Winograd tiles that the rules offer the NHWC convolution's passes, before the autotune measures them (kept_filters: in an inference over filters it reads kept, which offers Winograd on fewer tiles): {'forward', 'data_gradient', 'filter_gradient': (r, alpha) of F(m x m, r x r) on alpha x alpha tiles or None, 'space_to_depth': whether they serve a strided convolution as a stride-1 one, 'data_gradient_subpixel': whether the data gradient's tile serves its sub-pixel phases}.
    """
def dense_backward(g: numpy.ndarray, a_out: numpy.ndarray, W: numpy.ndarray, a_in: numpy.ndarray, activation: typing.SupportsInt | typing.SupportsIndex, slope: typing.SupportsFloat | typing.SupportsIndex = 0.01, scale: typing.SupportsFloat | typing.SupportsIndex = 1.0, want_g_in: bool = True) -> typing.Any:
    """
    (delta, dW, db, g_in) of Lemma 5.1 given g = dC/da_out.
    """
def dense_forward(W: numpy.ndarray, b: numpy.ndarray, a: numpy.ndarray, activation: typing.SupportsInt | typing.SupportsIndex, slope: typing.SupportsFloat | typing.SupportsIndex = 0.01) -> typing.Any:
    """
    sigma(W a + b) for a of shape (n_in, m): (5.2)-(5.3).
    """
def dropout(x: numpy.ndarray, rate: typing.SupportsFloat | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, out: typing.Any = None, mask_out: typing.Any = None) -> typing.Any:
    ...
def fma_peak_gflops(seconds: typing.SupportsFloat | typing.SupportsIndex = 0.5) -> float:
    """
    Measured float32 fused multiply-add peak of hdl's threads, GFLOP/s.
    """
def gemm(A: numpy.ndarray, B: numpy.ndarray, out: typing.Any = None, trans_a: bool = False, trans_b: bool = False, alpha: typing.SupportsFloat | typing.SupportsIndex = 1.0, beta: typing.SupportsFloat | typing.SupportsIndex = 0.0) -> typing.Any:
    """
    alpha op(A) op(B) + beta out, op(X) = X.T when trans_x: hdl's GEMM core (float32 or float64, C-contiguous).
    """
def get_flush_denormal() -> bool:
    """
    Whether hdl's CPU kernels flush subnormal floats to zero.
    """
def get_num_threads() -> int:
    ...
def isa() -> str:
    """
    Instruction set the kernels were dispatched to: avx512, avx2, generic or native.
    """
def keep_filters(on: bool) -> bool:
    """
    Whether this thread's convolutions keep their packed or transformed filters between calls, and keep reading them while the filters hold the same values (inference passes; Model.forward sets it): sets it, returns what it was.
    """
def max_pool2d(x: numpy.ndarray, kh: typing.SupportsInt | typing.SupportsIndex, kw: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, out: typing.Any = None, relu: bool = False, want_argmax: bool = False, argmax: typing.Any = None) -> typing.Any:
    ...
def max_pool2d_backward(dy: numpy.ndarray, x: numpy.ndarray, kh: typing.SupportsInt | typing.SupportsIndex, kw: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex, out: typing.Any = None, argmax: typing.Any = None) -> typing.Any:
    ...
def pool_shape(fn: str, x_shape: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], kh: typing.SupportsInt | typing.SupportsIndex, kw: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, pad_top: typing.SupportsInt | typing.SupportsIndex, pad_bottom: typing.SupportsInt | typing.SupportsIndex, pad_left: typing.SupportsInt | typing.SupportsIndex, pad_right: typing.SupportsInt | typing.SupportsIndex) -> tuple[list[int], tuple[int, int, int, int]]:
    """
    The pooling's shape after the checks of max_pool2d/avg_pool2d (ValueError naming fn otherwise): (its fields, as the CUDA bindings take them, and the shape of y). Shared by both backends (hdl/shapes.hpp).
    """
def quadratic_cost(a: numpy.ndarray, y: numpy.ndarray, scale: typing.SupportsFloat | typing.SupportsIndex = 1.0) -> typing.Any:
    """
    (scale * sum 1/2 ||y - a||^2, scale * (a - y)): the cost (3.3) and dC/da.
    """
def relu(x: numpy.ndarray, slope: typing.SupportsFloat | typing.SupportsIndex = 0.0, out: typing.Any = None) -> typing.Any:
    ...
def relu_backward(dy: numpy.ndarray, x: numpy.ndarray, slope: typing.SupportsFloat | typing.SupportsIndex = 0.0, out: typing.Any = None) -> typing.Any:
    ...
def rng_below(seed: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, count: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.int64]:
    """
    count uniform draws from {0..n-1} by the training generator.
    """
def rng_shuffle(seed: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.int64]:
    """
    The permutation of 0..n-1 the training generator draws first.
    """
def rng_state(seed: typing.SupportsInt | typing.SupportsIndex) -> numpy.typing.NDArray[numpy.uint64]:
    """
    The training generator's four words after seeding with seed.
    """
def set_flush_denormal(on: bool) -> bool:
    """
    Flush subnormal floats to zero inside hdl's CPU kernels (on by default; the caller's own floating-point mode is untouched). Returns False where this processor cannot (then nothing changes).
    """
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Threads for hdl's kernels (OpenMP).
    """
def sgd_momentum(params: list, grads: list, velocities: list, lr_mults: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], decay_mults: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], eta: typing.SupportsFloat | typing.SupportsIndex, mu: typing.SupportsFloat | typing.SupportsIndex, lam: typing.SupportsFloat | typing.SupportsIndex, form: typing.SupportsInt | typing.SupportsIndex) -> None:
    ...
def sgd_train(W: list, b: list, activations: collections.abc.Sequence[typing.SupportsInt | typing.SupportsIndex], slopes: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex], X: numpy.ndarray, Y: numpy.ndarray, iterations: typing.SupportsInt | typing.SupportsIndex, batch_size: typing.SupportsInt | typing.SupportsIndex, replacement: bool, shuffle: bool, eta: typing.SupportsFloat | typing.SupportsIndex, lam: typing.SupportsFloat | typing.SupportsIndex, record_every: typing.SupportsInt | typing.SupportsIndex, seed: typing.SupportsInt | typing.SupportsIndex, epoch_end: typing.Any = None, epoch_length: typing.SupportsInt | typing.SupportsIndex = 0, poll: typing.Any = None, poll_seconds: typing.SupportsFloat | typing.SupportsIndex = 0.1, state: typing.Any = None, order: typing.Any = None, cost: typing.Any = None) -> tuple:
    """
    Train W[l], b[l] in place by the stochastic gradient method; returns (cost history, final cost, updates applied, the update whose mini-batch cost was not finite or -1). epoch_end(epoch, mean_batch_cost) after every epoch_length updates and poll(updates) at most every poll_seconds may return True to stop. state (uint64 (6,): the generator's 4 words, the position in order, the updates applied) and order (int64 (N,)) say where the run starts (None: afresh from seed) and are kept up to date before every epoch_end or poll and at the end; the costs are recorded at the multiples of record_every updates counted from the run's start, into cost if given.
    """
def sigmoid(x: numpy.ndarray, out: typing.Any = None) -> typing.Any:
    ...
def sigmoid_backward(dy: numpy.ndarray, y: numpy.ndarray, out: typing.Any = None) -> typing.Any:
    ...
def softmax_log_loss(v: numpy.ndarray, labels: numpy.ndarray) -> typing.Any:
    ...
def tanh(x: numpy.ndarray, out: typing.Any = None) -> typing.Any:
    ...
def tanh_backward(dy: numpy.ndarray, y: numpy.ndarray, out: typing.Any = None) -> typing.Any:
    ...
def top_k(v: numpy.ndarray, k: typing.SupportsInt | typing.SupportsIndex) -> typing.Any:
    ...
activations: tuple = ('sigmoid', 'tanh')
