"""hdl's GEMM core beside numpy (OpenBLAS) and torch.matmul, one session, float32 and float64:
1024^3 and the dense layers of an MLP 784-512-512-10 and of LeNet-5 (400-120-84-10) at batch
1..256, the forward product Y = X W^T and the two backward products dW = dY^T X, dX = dY W.
Then one MLP 784-512-512-10 training step in hdl (ConvNet of FullyConnected layers, and Network with
stochastic_gradient) and in PyTorch, 2 threads each.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_gemm.py
(-k "float32 and 64" etc. for a part); the table at the end gives medians, GFLOP/s, the share of
the FMA peak (half of it for float64) and the ratio of each baseline's time to hdl's."""
import numpy as np
import pytest

import hdl
from hdl import _C

try:
    import torch
    torch.set_num_threads(2)
except ImportError:
    torch = None

IMPLS = ["hdl", "numpy (OpenBLAS)", "torch.matmul"]
DTYPES = {"float32": np.float32, "float64": np.float64}
LAYERS = [(784, 512), (512, 512), (512, 10), (400, 120), (120, 84), (84, 10)]  # (in, out)
BATCHES = [1, 16, 64, 128, 256]
# (label, M, N, K, trans_a, trans_b): C (M, N) = op(A) op(B)
SHAPES = [("1024^3", 1024, 1024, 1024, False, False)]
for n_in, n_out in LAYERS:
    for m in BATCHES:
        SHAPES += [(f"{n_in}->{n_out} b{m} forward X W^T", m, n_out, n_in, False, True),
                   (f"{n_in}->{n_out} b{m} dW = dY^T X", n_out, n_in, m, True, False),
                   (f"{n_in}->{n_out} b{m} dX = dY W", m, n_in, n_out, False, False)]


def need(impl):
    if impl.startswith("torch") and torch is None:
        pytest.skip("PyTorch is not installed")


def run(benchmark, f, flop):
    """About 0.2 s of calls (at least 5 rounds), the median kept."""
    rounds = int(min(2000, max(5, 0.2 / max(flop / 50e9, 2e-6))))
    benchmark.pedantic(f, rounds=rounds, warmup_rounds=2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0].replace(" ", "_") for s in SHAPES])
def test_gemm(benchmark, record, shape, dtype, impl):
    need(impl)
    label, M, N, K, ta, tb = shape
    rng = np.random.default_rng(0)
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(DTYPES[dtype])
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(DTYPES[dtype])
    flop = 2.0 * M * N * K
    if impl == "hdl":
        out = np.empty((M, N), A.dtype)
        run(benchmark, lambda: _C.gemm(A, B, out, ta, tb), flop)
    elif impl.startswith("numpy"):
        a, b, out = A.T if ta else A, B.T if tb else B, np.empty((M, N), A.dtype)
        run(benchmark, lambda: np.matmul(a, b, out=out), flop)
    else:
        a, b = torch.from_numpy(A), torch.from_numpy(B)
        a, b = (a.T if ta else a), (b.T if tb else b)
        out = torch.empty((M, N), dtype=a.dtype)
        run(benchmark, lambda: torch.matmul(a, b, out=out), flop)
    record(f"{dtype} {label} ({M}x{N}x{K})", impl, flop=flop, peak_share=1.0 if dtype == "float32" else 0.5)


# ---- an MLP 784-512-512-10 training step -----------------------------------------------------------

SIZES = [784, 512, 512, 10]


def step_flop(batch):
    macs = sum(a * b for a, b in zip(SIZES, SIZES[1:]))
    return 2.0 * batch * (3 * macs - SIZES[0] * SIZES[1])  # forward, dW, dX (none for the input)


@pytest.mark.parametrize("impl", ["hdl ConvNet", "pytorch"])
@pytest.mark.parametrize("batch", [64, 128])
def test_mlp_step(benchmark, record, batch, impl):
    """Softmax log-loss, backward, SGD with momentum: one step on (batch, 1, 1, 784) inputs."""
    need(impl)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 1, 784)).astype(np.float32)
    labels = rng.integers(0, 10, batch)
    if impl.startswith("hdl"):
        from hdl.convnet import ConvNet, FullyConnected, ReLU

        net = ConvNet([FullyConnected(784, 512, (1, 1), init="he"), ReLU(), FullyConnected(512, 512, init="he"),
                       ReLU(), FullyConnected(512, 10, init="he")])

        def step():
            net.loss_and_gradients(x, labels)
            net.step(0.01, momentum=0.9)
    else:
        model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                    torch.nn.ReLU(), torch.nn.Linear(512, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x.reshape(batch, 784)), torch.from_numpy(labels)

        def step():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
    benchmark.pedantic(step, rounds=50, warmup_rounds=5)
    record(f"MLP 784-512-512-10 training step, batch {batch}", "hdl" if impl.startswith("hdl") else impl,
           flop=step_flop(batch))


N_POINTS, STEPS = 6400, 100  # one epoch of mini-batches of 64 per timed call


@pytest.mark.parametrize("impl", ["hdl Network", "pytorch"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_network_sgd(benchmark, record, dtype, impl):
    """One epoch of stochastic_gradient(..., batch_size=64, record_every=0) on a ReLU network with the
    quadratic cost (3.3), its final cost over all points included, against the same in PyTorch (a
    shuffled epoch of plain SGD steps, then the cost over all points); per step."""
    need(impl)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((784, N_POINTS)).astype(DTYPES[dtype]), rng.random((10, N_POINTS)).astype(DTYPES[dtype])
    if impl.startswith("hdl"):
        net = hdl.Network(SIZES, activation="relu", dtype=DTYPES[dtype], seed=0, init="he")

        def steps():
            hdl.stochastic_gradient(net, X, Y, eta=0.01, epochs=1, batch_size=64, replacement=False, record_every=0,
                                    seed=1)
    else:
        tdtype = torch.float32 if dtype == "float32" else torch.float64
        model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512),
                                    torch.nn.ReLU(), torch.nn.Linear(512, 10)).to(tdtype)
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        Xt, Yt = torch.from_numpy(np.ascontiguousarray(X.T)), torch.from_numpy(np.ascontiguousarray(Y.T))
        gen = torch.Generator().manual_seed(1)

        def steps():
            order = torch.randperm(N_POINTS, generator=gen)
            for i in range(STEPS):
                idx = order[i * 64:(i + 1) * 64]
                opt.zero_grad(set_to_none=True)
                (0.5 * ((model(Xt[idx]) - Yt[idx]) ** 2).sum() / 64).backward()
                opt.step()
            with torch.no_grad():
                return 0.5 * ((model(Xt) - Yt) ** 2).sum() / N_POINTS
    benchmark.pedantic(steps, rounds=7, warmup_rounds=1)
    record(f"{dtype} Network 784-512-512-10 SGD, batch 64, per step", "hdl" if impl.startswith("hdl") else impl,
           scale=1.0 / STEPS, flop=step_flop(64), peak_share=1.0 if dtype == "float32" else 0.5)
