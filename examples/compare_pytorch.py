"""The same small network in hdl and in PyTorch, timed side by side with hdl.bench: a dense net 784-256-10 with
ReLU (7.3), the softmax log-loss (7.4) and SGD with momentum and weight decay (PyTorch's momentum form on
both sides), the same initial weights. hdl.bench.compare times the two in turn, so that a machine whose speed
drifts slows both alike, and reports medians; a ratio above 1 in the table means slower than hdl.

Without PyTorch (pip install torch) it says so and times hdl alone.

    python examples/compare_pytorch.py [--batch 64] [--repeats 15] [--warmup 2]
"""
import argparse

import numpy as np

import hdl
import hdl.bench
from hdl.layers import Dense

LR, MOMENTUM, DECAY = 0.01, 0.9, 5e-4


def hdl_twin(x, y):
    """(training step, inference) of the hdl network, as functions of no arguments."""
    model = hdl.Model([Dense(784, 256, "relu", rng=0, dtype=np.float32),
                       Dense(256, 10, "linear", rng=1, dtype=np.float32)], momentum_form="pytorch")

    def step():
        model.loss_and_gradients(x, y)
        model.step(LR, MOMENTUM, DECAY)
    return model, step, lambda: model.forward(x)


def torch_twin(torch, model, x, y):
    """The PyTorch network with the hdl model's weights, its (training step, inference)."""
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    with torch.no_grad():
        for linear, dense in zip([net[0], net[2]], [model.layers[0], model.layers[1]]):
            linear.weight.copy_(torch.from_numpy(dense.W))  # (n_out, n_in) in both
            linear.bias.copy_(torch.from_numpy(dense.b))
    weights, biases = [net[0].weight, net[2].weight], [net[0].bias, net[2].bias]  # no decay on biases, as hdl
    opt = torch.optim.SGD([{"params": weights}, {"params": biases, "weight_decay": 0.0}], lr=LR, momentum=MOMENTUM,
                          weight_decay=DECAY)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    def infer():
        with torch.no_grad():
            return net(xt)
    return step, infer


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    x, y = rng.random((args.batch, 784), dtype=np.float32), rng.integers(0, 10, args.batch)

    model, steps, infers = hdl_twin(x, y)
    steps, infers = {"hdl": steps}, {"hdl": infers}
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install torch): timing hdl alone")
    else:
        torch.set_num_threads(hdl.get_num_threads())
        steps["torch"], infers["torch"] = torch_twin(torch, model, x, y)
        gap = np.abs(infers["hdl"]() - infers["torch"]().numpy()).max()
        print(f"{'the same' if gap < 1e-4 else 'DIFFERENT'} outputs: max |hdl - torch| = {gap:.1e} (PyTorch "
              f"{torch.__version__}, "
              f"{hdl.get_num_threads()} threads each)")

    for what, fns in (("training step", steps), ("inference", infers)):
        print(f"\n{what}, batch {args.batch}:")
        print(hdl.bench.table(hdl.bench.compare(fns, repeats=args.repeats, warmup=args.warmup), baseline="hdl"))


if __name__ == "__main__":
    main()
