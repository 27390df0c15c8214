"""The benchmark zoo: networks a user writes, each built twice, in hdl and in PyTorch, so that
hdl is measured on more than the paper's two workloads (issue 10, point 5).

A conv net is a spec, a list of layers on NHWC images that both twins are built from:
  ("conv", out, k, stride, pad)   3x3 pad 1 etc.; pad an int (PyTorch needs it symmetric)
  ("fc", out)                     a dense layer over the whole input (hdl FullyConnected; Flatten+Linear)
  ("max" | "avg", window, stride, pad)   pad an int, or (0, e, 0, e) = PyTorch's ceil_mode
  ("relu",) ("sigmoid",) ("tanh",) ("leaky",)   activations (leaky: slope 0.01)
  ("dropout", rate)               inverted dropout in training, the identity in inference
trained with the softmax log-loss and SGD with momentum 0.9 and weight decay 5e-4 (hdl: ConvNet.step
in PyTorch's momentum form; PyTorch: torch.optim.SGD), PyTorch in channels_last. A dense net in the
paper's style (hdl.Network, columns are points, quadratic cost (3.3), plain SGD by
hdl.stochastic_gradient) has a PyTorch twin with the same cost and update.

As a script it times each net alternating hdl and PyTorch in one process (warm-up, then the median
of k repeats) and prints a markdown table; bench/zoo_layers.py (the same arguments) adds a per-layer
forward/backward profile:

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE chrt -f 10 python bench/zoo.py [--batch 64] [--threads 2]
      [--nets mlp lenet5 ...] [--repeats 9]
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

import numpy as np

import hdl
from hdl import _C, _checks, ops
from hdl.bench import time_alternating
from hdl.convnet import (AvgPool2d, Conv2d, ConvNet, Dropout, FullyConnected, LeakyReLU, MaxPool2d, ReLU, Sigmoid,
                         cifar_net)
from hdl.layers import Tanh

LR, MOMENTUM, DECAY = 1e-3, 0.9, 5e-4  # a rate at which every net, at every batch, stays finite
POOL_CEIL = (0, 1, 0, 1)


@dataclass
class Net:
    name: str
    what: str
    input: tuple  # (H, W, C) for a conv net, (n_in,) for a paper-style dense net
    spec: list = field(default_factory=list)  # conv nets
    sizes: list = field(default_factory=list)  # paper-style dense nets (hdl.Network)
    dtype: type = np.float32
    hdl_build: object = None  # a function of the seed giving the hdl ConvNet, where not built from spec

    @property
    def classes(self):
        return self.sizes[-1] if self.sizes else out_shapes(self.input, self.spec)[-1][-1]

    @property
    def macs(self):
        """Forward multiply-adds per image."""
        if self.sizes:
            return sum(a * b for a, b in zip(self.sizes, self.sizes[1:]))
        total, shape = 0, self.input
        for item, out in zip(self.spec, out_shapes(self.input, self.spec)):
            if item[0] == "conv":
                total += out[0] * out[1] * out[2] * shape[2] * item[2] ** 2
            elif item[0] == "fc":
                total += int(np.prod(shape)) * item[1]
            shape = out
        return total


def _cifar_spec():
    conv = lambda o, k, p: ("conv", o, k, 1, p)  # noqa: E731
    return [conv(32, 5, 2), ("max", 3, 2, POOL_CEIL), ("relu",), conv(32, 5, 2), ("relu",), ("avg", 3, 2, POOL_CEIL),
            conv(64, 5, 2), ("relu",), ("avg", 3, 2, POOL_CEIL), conv(64, 4, 0), ("relu",), conv(10, 1, 0)]


def _conv_relu(o, k, s=1, p=0):
    return [("conv", o, k, s, p), ("relu",)]


ZOO = [
    Net("mlp", "MLP 784-512-512-10, ReLU, FullyConnected", (1, 1, 784),
        [("fc", 512), ("relu",), ("fc", 512), ("relu",), ("fc", 10)]),
    Net("lenet5", "LeNet-5 on 28x28x1: conv5 6 pad 2, max 2, conv5 16, max 2, fc 120, 84, 10", (28, 28, 1),
        [*_conv_relu(6, 5, 1, 2), ("max", 2, 2, 0), *_conv_relu(16, 5), ("max", 2, 2, 0),
         ("fc", 120), ("relu",), ("fc", 84), ("relu",), ("fc", 10)]),
    Net("vgg", "VGG-style 32x32x3: 3x3 pad 1 convs 32,32,max,64,64,max,128,max, fc 10", (32, 32, 3),
        [*_conv_relu(32, 3, 1, 1), *_conv_relu(32, 3, 1, 1), ("max", 2, 2, 0), *_conv_relu(64, 3, 1, 1),
         *_conv_relu(64, 3, 1, 1), ("max", 2, 2, 0), *_conv_relu(128, 3, 1, 1), ("max", 2, 2, 0), ("fc", 10)]),
    Net("strided", "stride-2 downsampling 32x32x3: 7x7 s2 stem 32, 3x3 32, 3x3 s2 64, 4x4 s2 128, fc 10",
        (32, 32, 3), [*_conv_relu(32, 7, 2, 3), *_conv_relu(32, 3, 1, 1), *_conv_relu(64, 3, 2, 1),
                      *_conv_relu(128, 4, 2, 1), ("fc", 10)]),
    Net("cifar", "the paper's CIFAR-10 net (hdl.convnet.cifar_net)", (32, 32, 3), _cifar_spec(),
        hdl_build=lambda seed: cifar_net(seed=seed)),
    Net("mlp-f64", "hdl.Network 784-256-256-10 float64, ReLU, quadratic cost, plain SGD", (784,),
        sizes=[784, 256, 256, 10], dtype=np.float64),
    Net("mlp-network", "hdl.Network 784-512-512-10 float32, ReLU, quadratic cost, plain SGD", (784,),
        sizes=[784, 512, 512, 10]),
    # Three that no issue lists.
    Net("bottleneck", "1x1 bottlenecks 32x32x3: conv3 32, max, [1x1 16, 3x3 16, 1x1 64], max, "
        "[1x1 32, 3x3 32, 1x1 128], global avg, 1x1 10", (32, 32, 3),
        [*_conv_relu(32, 3, 1, 1), ("max", 2, 2, 0), *_conv_relu(16, 1), *_conv_relu(16, 3, 1, 1),
         *_conv_relu(64, 1), ("max", 2, 2, 0), *_conv_relu(32, 1), *_conv_relu(32, 3, 1, 1), *_conv_relu(128, 1),
         ("avg", 8, 8, 0), ("conv", 10, 1, 1, 0)]),
    Net("gray-avg", "one input channel 28x28x1: conv3 16, avg 3 s2 pad 1, conv3 32, avg 3 s2 pad 1, fc 10",
        (28, 28, 1), [*_conv_relu(16, 3, 1, 1), ("avg", 3, 2, 1), *_conv_relu(32, 3, 1, 1), ("avg", 3, 2, 1),
                      ("fc", 10)]),
    Net("deep-sigmoid", "deep narrow MLP 784-(128 x 6)-10, sigmoid, FullyConnected", (1, 1, 784),
        [item for _ in range(6) for item in (("fc", 128), ("sigmoid",))] + [("fc", 10)]),
    # Three more, written as users write them, that found slow paths (2026-12-06): a dense layer over a
    # 7x7x64 map, wide convolutions on 8x8 and 3x3 maps, an 11x11 stride-4 stem.
    Net("mnist-tf", "the TensorFlow MNIST tutorial's 28x28x1: conv5 32 pad 2, max 2, conv5 64 pad 2, max 2, "
        "fc 1024, fc 10", (28, 28, 1),
        [*_conv_relu(32, 5, 1, 2), ("max", 2, 2, 0), *_conv_relu(64, 5, 1, 2), ("max", 2, 2, 0),
         ("fc", 1024), ("relu",), ("fc", 10)]),
    Net("wide-8x8", "8x8x256 (a late ResNet stage): 1x1 256, 1x1 256, 3x3 256, global avg, 1x1 10", (8, 8, 256),
        [*_conv_relu(256, 1), *_conv_relu(256, 1), *_conv_relu(256, 3, 1, 1), ("avg", 8, 8, 0),
         ("conv", 10, 1, 1, 0)]),
    Net("alex-mini", "AlexNet-style 64x64x3: conv11 s4 pad 2 48, max 3 s2, conv5 pad 2 128, max 3 s2, "
        "conv3 pad 1 192, fc 10", (64, 64, 3),
        [*_conv_relu(48, 11, 4, 2), ("max", 3, 2, 0), *_conv_relu(128, 5, 1, 2), ("max", 3, 2, 0),
         *_conv_relu(192, 3, 1, 1), ("fc", 10)]),
    # One more found slow (2026-12-06, later): 4x4 stride-2 convolutions down to a 4x4 map, as a DCGAN discriminator writes them.
    Net("dcgan", "DCGAN discriminator-style 64x64x3: conv4 s2 pad 1 64, 128, 256, 512, fc 10", (64, 64, 3),
        [*_conv_relu(64, 4, 2, 1), *_conv_relu(128, 4, 2, 1), *_conv_relu(256, 4, 2, 1), *_conv_relu(512, 4, 2, 1),
         ("fc", 10)]),
    # Two more found level with PyTorch or slower (2026-12-07): eight narrow 3x3 layers at full resolution (3.2 MB
    # of activations each at batch 64), and 5x5 and 3x3 stride-2 layers without pooling.
    Net("narrow-deep", "narrow and deep 28x28x1: eight conv3 pad 1 16, fc 10", (28, 28, 1),
        [item for _ in range(8) for item in _conv_relu(16, 3, 1, 1)] + [("fc", 10)]),
    Net("strided-5x5", "strided, no pooling, 32x32x3: conv5 s2 pad 2 64, conv5 s2 pad 2 128, conv3 s2 pad 1 256, "
        "fc 10", (32, 32, 3), [*_conv_relu(64, 5, 2, 2), *_conv_relu(128, 5, 2, 2), *_conv_relu(256, 3, 2, 1), ("fc", 10)]),
]
NETS = {net.name: net for net in ZOO}


# -- shapes ---------------------------------------------------------------------------------------------

def _pool_out(n, k, s, lo, hi):
    return (n + lo + hi - k) // s + 1


def out_shapes(shape, spec):
    """The (H, W, C) after each spec item (hdl's arithmetic, which the PyTorch twin must reproduce)."""
    out = []
    H, W, C = shape
    for item in spec:
        kind = item[0]
        if kind == "conv":
            _, o, k, s, p = item
            H, W, C = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1, o
        elif kind in ("max", "avg"):
            _, k, s, p = item
            p = _checks.pad4(p)
            H, W = _pool_out(H, k, s, p[0], p[1]), _pool_out(W, k, s, p[2], p[3])
        elif kind == "fc":
            H, W, C = 1, 1, item[1]
        out.append((H, W, C))
    return out


# -- the hdl twins --------------------------------------------------------------------------------------

def hdl_convnet(net: Net, seed=0) -> ConvNet:
    if net.hdl_build is not None:
        return net.hdl_build(seed)
    rng = np.random.default_rng(seed)
    layers, shape = [], net.input
    for item, out in zip(net.spec, out_shapes(net.input, net.spec)):
        kind = item[0]
        if kind == "conv":
            _, o, k, s, p = item
            layers.append(Conv2d(shape[2], o, k, s, p, init="he", rng=rng, dtype=net.dtype))
        elif kind == "fc":
            layers.append(FullyConnected(shape[2], item[1], shape[:2], init="he", rng=rng, dtype=net.dtype))
        elif kind in ("max", "avg"):
            layers.append((MaxPool2d if kind == "max" else AvgPool2d)(*item[1:]))
        elif kind == "dropout":
            layers.append(Dropout(item[1]))
        else:
            layers.append({"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh, "leaky": LeakyReLU}[kind]())
        shape = out
    return ConvNet(layers, momentum_form="pytorch")


class HdlConvTwin:
    def __init__(self, net: Net, batch, seed=0):
        rng = np.random.default_rng(seed)
        self.model = hdl_convnet(net, seed)
        self.x = rng.standard_normal((batch, *net.input)).astype(net.dtype)
        self.labels = rng.integers(0, net.classes, batch)

    def step(self):
        self.model.loss_and_gradients(self.x, self.labels)
        self.model.step(LR, MOMENTUM, DECAY)

    def infer(self):
        return self.model.forward(self.x)

    def num_params(self):
        return sum(p.size for p in self.model.parameters())


class HdlNetworkTwin:
    """hdl.Network trained by hdl.stochastic_gradient: `steps` mini-batch steps per call (one epoch over
    steps * batch columns, cost recording off), so that the call's setup is shared as in a real run."""

    steps = 8

    def __init__(self, net: Net, batch, seed=0):
        rng = np.random.default_rng(seed)
        acts = ["relu"] * (len(net.sizes) - 2) + ["linear"]
        self.model = hdl.Network(net.sizes, activation=acts, dtype=net.dtype, init="he", seed=seed)
        self.batch = batch
        self.X = rng.standard_normal((net.sizes[0], batch * self.steps)).astype(net.dtype)
        self.Y = np.eye(net.sizes[-1], dtype=net.dtype)[:, rng.integers(0, net.sizes[-1], batch * self.steps)]
        self.x = np.ascontiguousarray(self.X[:, :batch])

    def step(self):
        hdl.stochastic_gradient(self.model, self.X, self.Y, LR, self.steps, batch_size=self.batch,
                                replacement=False, record_every=0, seed=1)

    def infer(self):
        return self.model.forward(self.x).T

    def num_params(self):
        return self.model.num_params


# -- the PyTorch twins ----------------------------------------------------------------------------------

def torch_modules(torch, net: Net):
    """One module per spec item (so that module i is hdl layer i)."""
    nn = torch.nn
    mods, shape = [], net.input
    for item, out in zip(net.spec, out_shapes(net.input, net.spec)):
        kind = item[0]
        if kind == "conv":
            _, o, k, s, p = item
            mods.append(nn.Conv2d(shape[2], o, k, s, p))
        elif kind == "fc":
            mods.append(nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), item[1])))
        elif kind in ("max", "avg"):
            _, k, s, p = item
            if isinstance(p, int):
                pad, ceil = p, False
            elif tuple(p) in ((0, e, 0, e) for e in range(1, k)):
                pad, ceil = 0, True
            else:
                raise ValueError(f"{net.name}: PyTorch pools take symmetric padding or ceil_mode, not {p}")
            mods.append(nn.MaxPool2d(k, s, pad, ceil_mode=ceil) if kind == "max" else
                        nn.AvgPool2d(k, s, pad, ceil_mode=ceil, count_include_pad=False))
        elif kind == "dropout":
            mods.append(nn.Dropout(item[1]))
        else:
            mods.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "leaky": nn.LeakyReLU}[kind]())
        shape = out
    return mods


class TorchConvTwin:
    def __init__(self, torch, net: Net, batch, seed=0):
        torch.manual_seed(seed)
        self.torch = torch
        dtype = torch.float64 if net.dtype == np.float64 else torch.float32
        self.mods = torch_modules(torch, net)
        self.model = torch.nn.Sequential(*self.mods).to(dtype=dtype, memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=DECAY)
        H, W, C = net.input
        self.x = torch.randn(batch, C, H, W, dtype=dtype).contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, net.classes, (batch,))

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.torch.nn.functional.cross_entropy(self.model(self.x).flatten(1), self.labels)
        loss.backward()
        self.opt.step()

    def infer(self):
        with self.torch.no_grad():
            return self.model(self.x).flatten(1)

    def num_params(self):
        return sum(p.numel() for p in self.model.parameters())


class TorchNetworkTwin:
    """Linear layers with the same activations, Cost = 1/(2m) sum ||y - a||^2 (3.3), plain SGD."""

    steps = HdlNetworkTwin.steps

    def __init__(self, torch, net: Net, batch, seed=0):
        torch.manual_seed(seed)
        self.torch, nn = torch, torch.nn
        dtype = torch.float64 if net.dtype == np.float64 else torch.float32
        mods = []
        for i, (a, b) in enumerate(zip(net.sizes, net.sizes[1:])):
            mods += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(net.sizes) - 2 else [])
        self.mods = mods
        self.model = nn.Sequential(*mods).to(dtype)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        n = batch * self.steps
        self.X = torch.randn(n, net.sizes[0], dtype=dtype)
        self.Y = torch.nn.functional.one_hot(torch.randint(0, net.sizes[-1], (n,)), net.sizes[-1]).to(dtype)
        self.batch = batch

    def step(self):
        b = self.batch
        for k in range(self.steps):
            x, y = self.X[k * b:(k + 1) * b], self.Y[k * b:(k + 1) * b]
            self.opt.zero_grad(set_to_none=True)
            loss = 0.5 * ((self.model(x) - y) ** 2).sum() / b
            loss.backward()
            self.opt.step()

    def infer(self):
        with self.torch.no_grad():
            return self.model(self.X[:self.batch])

    def num_params(self):
        return sum(p.numel() for p in self.model.parameters())


def twins(net: Net, batch, torch=None, seed=0):
    """(hdl twin, PyTorch twin or None); each has step(), infer(), num_params()."""
    if net.sizes:
        return HdlNetworkTwin(net, batch, seed), (TorchNetworkTwin(torch, net, batch, seed) if torch else None)
    return HdlConvTwin(net, batch, seed), (TorchConvTwin(torch, net, batch, seed) if torch else None)


def steps_per_call(twin):
    return getattr(twin, "steps", 1)


# -- timing ---------------------------------------------------------------------------------------------

# hdl.bench.time_alternating times the twins: the median seconds per call of each function, the functions
# taking turns within every repeat (bench/zoo_layers.py imports it from here).


def measure(net: Net, batch, torch, repeats=9):
    """{'hdl_step', 'torch_step', 'hdl_infer', 'torch_infer'}: median seconds per training step and per
    inference batch; 'flop_step', 'flop_infer'."""
    h, t = twins(net, batch, torch)
    ks = steps_per_call(h)
    hs, ts = time_alternating([h.step, t.step], repeats)
    hi, ti = time_alternating([h.infer, t.infer], repeats)
    fwd = 2.0 * net.macs * batch
    return dict(hdl_step=hs / ks, torch_step=ts / ks, hdl_infer=hi, torch_infer=ti, flop_step=3 * fwd, flop_infer=fwd)


def table(rows, peak):
    head = ("| network | batch | hdl step ms | torch step ms | torch/hdl | hdl img/s | torch img/s | "
            "hdl infer ms | torch infer ms | torch/hdl | hdl step % peak | hdl infer % peak |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, batch, r in rows:
        pk = peak / 2 if NETS[name].dtype == np.float64 else peak
        lines.append(
            f"| {name} | {batch} | {r['hdl_step'] * 1e3:.2f} | {r['torch_step'] * 1e3:.2f} | "
            f"{r['torch_step'] / r['hdl_step']:.2f}x | {batch / r['hdl_step']:.0f} | {batch / r['torch_step']:.0f} | "
            f"{r['hdl_infer'] * 1e3:.3f} | {r['torch_infer'] * 1e3:.3f} | {r['torch_infer'] / r['hdl_infer']:.2f}x | "
            f"{100 * r['flop_step'] / r['hdl_step'] / 1e9 / pk:.1f}% | "
            f"{100 * r['flop_infer'] / r['hdl_infer'] / 1e9 / pk:.1f}% |")
    return "\n".join(lines)


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, nargs="+", default=[64])
    p.add_argument("--threads", type=int, default=None, help="hdl and PyTorch threads (default: hdl's)")
    p.add_argument("--nets", nargs="+", default=[n.name for n in ZOO], choices=list(NETS))
    p.add_argument("--repeats", type=int, default=15)
    return p.parse_args(argv)


def main(argv=None):
    """Prints the zoo's table; returns (torch, the measured peak) for bench/zoo_layers.py."""
    args = parse(argv)
    import torch

    if args.threads:
        hdl.set_num_threads(args.threads)
    threads = _C.get_num_threads()
    torch.set_num_threads(threads)
    peak = _C.fma_peak_gflops(0.5)
    print(f"hdl {_C.isa()}, {threads} threads, PyTorch {torch.__version__} ({torch.get_num_threads()} threads); "
          f"measured float32 FMA peak {peak:.0f} GFLOP/s (float64: half)", flush=True)
    rows = []
    for batch in args.batch:
        for name in args.nets:
            t0 = time.perf_counter()
            rows.append((name, batch, measure(NETS[name], batch, torch, args.repeats)))
            print(f"  {name} batch {batch}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    print(table(rows, peak))
    return args, torch, peak


if __name__ == "__main__":
    main()
