"""Convolutional networks (Section 7): layers on NHWC float32 batches and a network that
chains them, ending in the softmax log-loss (7.4).

A layer maps a batch x to y = layer(x); backward(dy, x, y) returns dC/dx and keeps the
gradients of its parameters. Each layer reuses its output buffers from batch to batch.
Inputs are (N, H, W, C) arrays (hdl.ops's NHWC layout); a fully connected layer is a
convolution whose filter covers its whole input, as in MatConvNet.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np

from hdl import _C, _checks, ops


class Layer:
    """The protocol: forward(x, train), backward(dy, x, y), params(), and per-parameter
    learning-rate and weight-decay multipliers."""

    lr_mults: tuple = ()
    decay_mults: tuple = ()

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def config(self) -> dict:
        raise NotImplementedError

    def _buffer(self, name, shape, dtype):
        """An uninitialised array of this shape: the front of one grow-only block per name, so that a
        batch of any size reuses warm pages and computes on its own size only (inference at batch 1
        after training at 64 allocates nothing), and memory stays that of the largest batch seen (a
        block per shape grew without bound when the batch size varied)."""
        cache = self.__dict__.setdefault("_buffers", {})
        dtype, n = np.dtype(dtype), math.prod(shape)
        block = cache.get((name, dtype))
        if block is None or block.size < n:
            block = cache[(name, dtype)] = np.empty(n, dtype)
        return block[:n].reshape(shape)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{type(self).__name__}({args})"


class Conv2d(Layer):
    """y = conv(x, w) + b (Section 7.1): w (out, in, k, k), stride, pad int or (top, bottom, left, right).

    init: 'matconvnet' (scale * N(0,1) filters, zero biases; MatConvNet's cifar net uses 0.01 and 0.05),
    'he' (N(0, 2/fan_in)) or 'glorot' (N(0, 2/(fan_in + fan_out))). lr_mults and decay_mults apply to
    (w, b); MatConvNet's cifar example trains filters at 0.1x and biases at 2x the rate.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, pad=0, init="matconvnet", scale=0.01,
                 lr_mults=(1.0, 1.0), decay_mults=(1.0, 0.0), rng=None, dtype=np.float32):
        self.in_channels = _checks.positive("in_channels", in_channels, integer=True)
        self.out_channels = _checks.positive("out_channels", out_channels, integer=True)
        self.kernel_size = ops._pair("kernel_size", kernel_size)
        self.stride = ops._pair("stride", stride)
        self.pad = ops._pad4(pad)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.pad) < 0:
            raise ValueError(f"Conv2d: kernel_size and stride must be positive and pad non-negative, got "
                             f"{self.kernel_size}, {self.stride}, {self.pad}")
        self.lr_mults, self.decay_mults = tuple(lr_mults), tuple(decay_mults)
        self.init, self.scale = init, float(scale)
        dtype = _checks.float_dtype(dtype)
        self.w = np.zeros((self.out_channels, self.in_channels, *self.kernel_size), dtype)
        self.b = np.zeros(self.out_channels, dtype)
        self.initialize(np.random.default_rng(rng))
        self.grads = {}

    def initialize(self, rng):
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        fan_out = self.out_channels * self.kernel_size[0] * self.kernel_size[1]
        std = {"matconvnet": self.scale, "he": np.sqrt(2.0 / fan_in), "glorot": np.sqrt(2.0 / (fan_in + fan_out))}
        if self.init not in std:
            raise ValueError(f"unknown init {self.init!r}; choose 'matconvnet', 'he' or 'glorot'")
        self.w[...] = std[self.init] * rng.standard_normal(self.w.shape)
        self.b[...] = 0.0

    def params(self):
        return {"w": self.w, "b": self.b}

    def out_shape(self, shape):
        N, H, W, _ = shape
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = self.kernel_size, self.stride, self.pad
        return (N, (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1, self.out_channels)

    # forward and backward call hdl._C straight (ops.conv2d less its argument parsing: stride and pad were
    # checked above, and _C checks the arrays): a small layer runs in microseconds.
    def forward(self, x, train=False, relu=False):
        y = self._buffer("y", self.out_shape(x.shape), x.dtype)
        return _C.conv2d(x, self.w, self.b, *self.stride, *self.pad, relu, y)

    def backward(self, dy, x, y, need_dx=True):
        dx = self._buffer("dx", x.shape, x.dtype) if need_dx else None
        dx, self.grads["w"], self.grads["b"] = _C.conv2d_backward(dy, x, self.w, *self.stride, *self.pad, need_dx, dx)
        return dx

    def config(self):
        return {"type": "Conv2d", "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "pad": list(self.pad),
                "init": self.init, "scale": self.scale, "lr_mults": list(self.lr_mults),
                "decay_mults": list(self.decay_mults)}


class FullyConnected(Conv2d):
    """A fully connected layer W a + b on (N, h, w, C) inputs, as MatConvNet writes one: a
    convolution whose filter covers the whole input, giving (N, 1, 1, out_features)."""

    def __init__(self, in_channels, out_features, input_size=(1, 1), **kwargs):
        super().__init__(in_channels, out_features, tuple(input_size), **kwargs)

    def config(self):
        c = super().config()
        c.update(type="FullyConnected", out_features=c.pop("out_channels"), input_size=c.pop("kernel_size"))
        for key in ("stride", "pad"):
            c.pop(key)
        return c


class _Pool(Layer):
    kind = ""

    def __init__(self, window, stride=None, pad=0):
        self.window = ops._pair("window", window)
        self.stride = ops._pair("stride", self.window if stride is None else stride)
        self.pad = ops._pad4(pad)
        if min(self.window) < 1 or min(self.stride) < 1:
            raise ValueError(f"{type(self).__name__}: window and stride must be positive")
        if not (0 <= min(self.pad) and max(self.pad[:2]) < self.window[0] and max(self.pad[2:]) < self.window[1]):
            raise ValueError(f"{type(self).__name__}: padding {self.pad} must be smaller than the window "
                             f"{self.window}")

    def out_shape(self, shape):
        N, H, W, C = shape
        (kh, kw), (sh, sw), (pt, pb, pl, pr) = self.window, self.stride, self.pad
        return (N, (H + pt + pb - kh) // sh + 1, (W + pl + pr - kw) // sw + 1, C)

    def forward(self, x, train=False):
        f = getattr(ops, f"{self.kind}_pool2d")
        return f(x, self.window, self.stride, self.pad, layout="NHWC", out=self._buffer("y", self.out_shape(x.shape),
                                                                                        x.dtype))

    def backward(self, dy, x, y, need_dx=True):
        f = getattr(ops, f"{self.kind}_pool2d_backward")
        return f(dy, x, self.window, self.stride, self.pad, layout="NHWC", out=self._buffer("dx", x.shape, x.dtype))

    def config(self):
        return {"type": type(self).__name__, "window": list(self.window), "stride": list(self.stride),
                "pad": list(self.pad)}


class MaxPool2d(_Pool):
    """Max over windows; padding never wins (MatConvNet). A training forward pass keeps each window's
    argmax, so the backward pass does not search the windows again. relu=True fuses the ReLU that
    follows it (ConvNet does so): the argmax is then -1 where the ReLU cut the maximum."""
    kind = "max"

    def forward(self, x, train=False, relu=False):
        shape = self.out_shape(x.shape)
        y = self._buffer("y", shape, x.dtype)
        self.relu = relu
        self.argmax = self._buffer("argmax", shape, np.int32) if train else None
        if not train:
            return ops.max_pool2d(x, self.window, self.stride, self.pad, layout="NHWC", out=y, relu=relu)
        return ops.max_pool2d(x, self.window, self.stride, self.pad, layout="NHWC", out=y, relu=relu,
                              return_argmax=True, argmax_out=self.argmax)[0]

    def backward(self, dy, x, y, need_dx=True):
        argmax = getattr(self, "argmax", None)
        if argmax is None and getattr(self, "relu", False):
            dy = ops.relu_backward(dy, y)  # y = max(pool, 0): the ReLU's part of the gradient
        return ops.max_pool2d_backward(dy, x, self.window, self.stride, self.pad, layout="NHWC",
                                       out=self._buffer("dx", x.shape, x.dtype), argmax=argmax)


class AvgPool2d(_Pool):
    """Mean over the in-image cells of each window (MatConvNet)."""
    kind = "avg"


class ReLU(Layer):
    """max(x, 0) (7.3)."""

    slope = 0.0

    def forward(self, x, train=False):
        return ops.relu(x, self.slope, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy, x, y, need_dx=True):
        return ops.relu_backward(dy, y, self.slope, out=dy)  # y > 0 exactly where x > 0; dy is ours to reuse

    def config(self):
        return {"type": "ReLU"}


class LeakyReLU(ReLU):
    """slope * x for x <= 0, x otherwise (Section 8)."""

    def __init__(self, slope=0.01):
        self.slope = _checks.positive("slope", slope)

    def config(self):
        return {"type": "LeakyReLU", "slope": self.slope}


class Sigmoid(Layer):
    """1 / (1 + e^-x) (2.1), with sigma' = sigma (1 - sigma) (2.2)."""

    def forward(self, x, train=False):
        return ops.sigmoid(x, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy, x, y, need_dx=True):
        return ops.sigmoid_backward(dy, y, out=dy)  # dy is ours to reuse

    def config(self):
        return {"type": "Sigmoid"}


class Dropout(Layer):
    """Inverted dropout: at training time each value is zeroed with probability `rate` and the
    others scaled by 1/(1 - rate); at test time the identity."""

    def __init__(self, rate):
        rate = float(rate)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"Dropout: rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = 0  # set by the network for every batch
        self.mask = None

    def forward(self, x, train=False):
        if not train or self.rate == 0.0:
            self.mask = None
            return x
        y, self.mask = ops.dropout(x, self.rate, self.seed, out=self._buffer("y", x.shape, x.dtype),
                                   mask_out=self._buffer("mask", x.shape, x.dtype))
        return y

    def backward(self, dy, x, y, need_dx=True):
        return dy if self.mask is None else np.multiply(dy, self.mask, out=dy)

    def config(self):
        return {"type": "Dropout", "rate": self.rate}


LAYERS = {cls.__name__: cls for cls in (Conv2d, FullyConnected, MaxPool2d, AvgPool2d, ReLU, LeakyReLU, Sigmoid,
                                         Dropout)}


class ConvNet:
    """A chain of layers on NHWC batches ending in K class scores, trained with the softmax log-loss (7.4).

    forward(x) gives the scores (N, K); loss_and_gradients(x, labels) runs forward and backward and
    leaves every layer's parameter gradients in layer.grads; step() applies the fused momentum update.
    """

    def __init__(self, layers, momentum_form="matconvnet"):
        self.layers = list(layers)
        if not self.layers:
            raise ValueError("a ConvNet needs layers")
        if momentum_form not in ops.MOMENTUM_FORMS:
            raise ValueError(f"momentum_form must be one of {sorted(ops.MOMENTUM_FORMS)}")
        self.momentum_form = momentum_form
        self.velocities = [np.zeros_like(p) for p in self.parameters()]

    # -- parameters ------------------------------------------------------------------------------
    def parameters(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params().values()]

    def multipliers(self):
        lr, decay = [], []
        for layer in self.layers:
            for i, _ in enumerate(layer.params()):
                lr.append(layer.lr_mults[i])
                decay.append(layer.decay_mults[i])
        return lr, decay

    @property
    def dtype(self):
        return next(iter(self.parameters())).dtype

    # -- forward, loss, backward -----------------------------------------------------------------
    def check_batch(self, x):
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"a batch must be an (N, H, W, C) array, got shape {np.shape(x)}")
        if x.dtype != self.dtype:
            raise TypeError(f"the batch is {x.dtype} but the network is {self.dtype}")
        return np.ascontiguousarray(x)

    def _forward(self, x, train):
        """Activations [x, y1, y2, ...]; a Conv2d or MaxPool2d followed by a ReLU runs fused (the ReLU's
        output is the convolution's or the pool's buffer)."""
        acts = [self.check_batch(x)]
        self._relu_in_pool = set()  # ReLU layers fused into the max pool before them (no backward pass of their own)
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, (Conv2d, MaxPool2d)) and type(nxt) is ReLU:  # FullyConnected too
                y = layer.forward(acts[-1], train, relu=True)
                acts += [y, y]
                if isinstance(layer, MaxPool2d):
                    self._relu_in_pool.add(i + 1)
                i += 2
            else:
                acts.append(layer.forward(acts[-1], train))
                i += 1
        return acts

    def forward(self, x, train=False) -> np.ndarray:
        """Class scores (N, K), an array of the caller's own (the last layer's buffer is reused)."""
        y = self._forward(x, train)[-1]
        return y.reshape(y.shape[0], -1).copy()

    def predict(self, x, batch_size=500) -> np.ndarray:
        """Class scores for many images, batch by batch."""
        return np.concatenate([self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def loss_and_gradients(self, x, labels, dropout_seed=0):
        """(loss, scores): the mean softmax log-loss (7.4) of the batch; gradients in layer.grads."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, Dropout):
                layer.seed = (dropout_seed * 1_000_003 + i) & 0x7FFF_FFFF_FFFF_FFFF
        acts = self._forward(x, train=True)
        scores = acts[-1].reshape(len(labels), -1)
        loss, g = ops.softmax_log_loss(scores, labels)
        g = g.reshape(acts[-1].shape)
        for i in reversed(range(len(self.layers))):
            if i not in self._relu_in_pool:  # the pool's argmax carries the ReLU's cut
                g = self.layers[i].backward(g, acts[i], acts[i + 1], need_dx=i > 0)
        return loss, scores.copy()

    def step(self, lr, momentum=0.9, weight_decay=0.0):
        """The fused SGD-momentum update of every parameter with its multipliers."""
        grads = [layer.grads[name] for layer in self.layers for name in layer.params()]
        lr_mults, decay_mults = self.multipliers()
        ops.sgd_momentum_(self.parameters(), grads, self.velocities, lr=lr, momentum=momentum,
                          weight_decay=weight_decay, lr_mults=lr_mults, decay_mults=decay_mults,
                          form=self.momentum_form)

    def to(self, device):
        """'cpu': this network; 'cuda': a copy on the GPU (hdl.cuda.convnet.CudaConvNet), whose to('cpu')
        copies the trained values back into this one."""
        if device == "cpu":
            return self
        if device != "cuda":
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        from hdl.cuda.convnet import CudaConvNet
        return CudaConvNet(self)

    # -- files ----------------------------------------------------------------------------------
    def config(self) -> dict:
        return {"format": "hdl-convnet", "version": 1, "dtype": str(self.dtype), "momentum_form": self.momentum_form,
                "layers": [layer.config() for layer in self.layers]}

    @classmethod
    def from_config(cls, config):
        if config.get("format") != "hdl-convnet":
            raise ValueError("not an hdl convnet description (format: hdl-convnet)")
        layers = []
        for spec in config["layers"]:
            spec = dict(spec)
            kind = spec.pop("type")
            if kind not in LAYERS:
                raise ValueError(f"unknown layer type {kind!r}")
            if kind in ("Conv2d", "FullyConnected"):
                spec["dtype"] = config["dtype"]
            layers.append(LAYERS[kind](**spec))
        return cls(layers, config.get("momentum_form", "matconvnet"))

    def state_arrays(self, with_velocities=False) -> dict[str, np.ndarray]:
        arrays = {f"param{i}": p for i, p in enumerate(self.parameters())}
        if with_velocities:
            arrays.update({f"velocity{i}": v for i, v in enumerate(self.velocities)})
        return arrays

    def load_state_arrays(self, data, with_velocities=False):
        for name, group in (("param", self.parameters()), ("velocity", self.velocities)):
            if name == "velocity" and not with_velocities:
                continue
            for i, arr in enumerate(group):
                stored = data[f"{name}{i}"]
                if stored.shape != arr.shape:
                    raise ValueError(f"{name}{i}: stored shape {stored.shape}, expected {arr.shape}")
                arr[...] = stored

    def save(self, path, extra: dict | None = None, with_velocities=False):
        """An .npz of the parameters (and velocities) with the JSON description, written atomically."""
        path = os.fspath(path)
        meta = {"network": self.config(), **(extra or {})}
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(meta)), **self.state_arrays(with_velocities))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, with_velocities=False):
        """(network, metadata) from a file written by save; no pickle."""
        with np.load(os.fspath(path), allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            net = cls.from_config(meta["network"])
            net.load_state_arrays(data, with_velocities)
        return net, meta

    def __repr__(self):
        return "ConvNet([\n" + "".join(f"  {layer!r},\n" for layer in self.layers) + "])"


def cifar_net(dropout=False, seed=0, dtype=np.float32, device="cpu") -> ConvNet:
    """The network of Section 7.4 as MatConvNet's cnn_cifar_init.m ('lenet') sets it up: filters
    0.01 N(0,1) in block 1 and 0.05 N(0,1) after, zero biases; filters at 0.1x and biases at 2x the
    learning rate, a tenth of that (0.01x, 0.2x) in block 5; weight decay on filters and biases
    alike (cnn_train.m's default); with dropout, rates 0.15, 0.15, 0.15, 0.35 after blocks 1-4.
    device='cuda' returns it on the GPU (ConvNet.to)."""
    rng = np.random.default_rng(seed)
    lr = (0.1, 2.0)
    conv = lambda i, o, k, pad, scale, mults=lr: Conv2d(i, o, k, 1, pad, scale=scale, lr_mults=mults,  # noqa
                                                        decay_mults=(1.0, 1.0), rng=rng, dtype=dtype)
    pool = (3, 2, (0, 1, 0, 1))
    drop = (lambda r: [Dropout(r)]) if dropout else (lambda r: [])
    layers = [conv(3, 32, 5, 2, 0.01), MaxPool2d(*pool), ReLU(), *drop(0.15),
              conv(32, 32, 5, 2, 0.05), ReLU(), AvgPool2d(*pool), *drop(0.15),
              conv(32, 64, 5, 2, 0.05), ReLU(), AvgPool2d(*pool), *drop(0.15),
              conv(64, 64, 4, 0, 0.05), ReLU(), *drop(0.35),
              conv(64, 10, 1, 0, 0.05, mults=(0.01, 0.2))]
    return ConvNet(layers).to(device)
