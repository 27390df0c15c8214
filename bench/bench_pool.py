"""Max and average pooling, forward and backward, hdl (NHWC) beside PyTorch channels_last, the same threads.

hdl's max pool forward keeps the argmax (as convnet.MaxPool2d does in training) and its backward routes dy
by it; PyTorch's backward is autograd's (torch.autograd.grad of F.max_pool2d / F.avg_pool2d). Asymmetric
padding (top, bottom, left, right) is given to PyTorch as an explicit pad of -inf (max) or 0 (avg, then
divided by the in-image cells as MatConvNet does: only the shapes without padding are timed for avg).

Run:  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE chrt -f 10 python -m pytest bench/bench_pool.py -q
  or  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE chrt -f 10 python bench/bench_pool.py [filter]
      (a table: medians in ms, ratio torch / hdl; hdl and torch alternate in batches of 40 calls)
Without chrt on a shared machine, one runtime's spinning OpenMP threads can cost the other whole
scheduler ticks (hdl at 16 ms where it takes 0.1 ms).
"""
import sys
import time

import numpy as np
import pytest

from hdl import _C, _checks, ops

torch = pytest.importorskip("torch")
F = torch.nn.functional

# (N, H, W, C), window, stride, pad (top, bottom, left, right)
SHAPES = [((64, 28, 28, 6), 2, 2, 0), ((64, 10, 10, 16), 2, 2, 0), ((64, 32, 32, 32), 2, 2, 0),
          ((64, 16, 16, 64), 2, 2, 0), ((64, 32, 32, 32), 3, 2, (0, 1, 0, 1)), ((64, 8, 8, 128), 2, 2, 0)]
SHAPES += [((1,) + s[1:], *rest) for s, *rest in SHAPES]
KINDS = ["max", "avg"]


def _label(shape, window, stride, pad):
    return f"{'x'.join(map(str, shape))} {window}/{stride}" + (f" pad{pad}" if pad else "")


def cases():
    for kind in KINDS:
        for shape, window, stride, pad in SHAPES:
            if kind == "avg" and pad:
                continue
            yield kind, shape, window, stride, pad


def make(kind, shape, window, stride, pad):
    """{name: callable}: hdl and torch forward and backward, on the same data."""
    torch.set_num_threads(_C.get_num_threads())
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    p = _checks.pad4(pad)
    if kind == "max":
        y, at = ops.max_pool2d(x, window, stride, pad, layout="NHWC", return_argmax=True)
    else:
        y = ops.avg_pool2d(x, window, stride, pad, layout="NHWC")
    dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y_out, at_out, dx_out = np.empty_like(y), np.empty_like(at) if kind == "max" else None, np.empty_like(x)

    xt = torch.from_numpy(x.transpose(0, 3, 1, 2))  # a channels_last view of NHWC x
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2))
    pt = (p[2], p[3], p[0], p[1])  # F.pad's order: left, right, top, bottom

    def tfn(z):
        if any(pt):
            z = F.pad(z, pt, value=-float("inf") if kind == "max" else 0.0)
        return (F.max_pool2d if kind == "max" else F.avg_pool2d)(z, window, stride)

    xg = xt.clone(memory_format=torch.channels_last).requires_grad_(True)
    yt = tfn(xg)
    assert tuple(yt.shape) == (y.shape[0], y.shape[3], y.shape[1], y.shape[2])

    if kind == "max":
        def hf():
            ops.max_pool2d(x, window, stride, pad, layout="NHWC", out=y_out, return_argmax=True, argmax_out=at_out)

        def hb():
            ops.max_pool2d_backward(dy, x, window, stride, pad, layout="NHWC", out=dx_out, argmax=at)
    else:
        def hf():
            ops.avg_pool2d(x, window, stride, pad, layout="NHWC", out=y_out)

        def hb():
            ops.avg_pool2d_backward(dy, x, window, stride, pad, layout="NHWC", out=dx_out)

    def tf():  # training forward: autograd keeps PyTorch's indices as hdl keeps its argmax
        tfn(xg)

    def tb():
        torch.autograd.grad(yt, xg, dyt, retain_graph=True)

    return {"hdl forward": hf, "torch forward": tf, "hdl backward": hb, "torch backward": tb}


IDS = [f"{k} {_label(s, w, st, p)}" for k, s, w, st, p in cases()]


@pytest.mark.parametrize("case", list(cases()), ids=IDS)
@pytest.mark.parametrize("who", ["hdl", "torch"])
@pytest.mark.parametrize("way", ["forward", "backward"])
def test_pool(benchmark, record, case, who, way):
    fn = make(*case)[f"{who} {way}"]
    benchmark.group = f"{way} {case[0]} {_label(*case[1:])}"
    benchmark(fn)
    record(benchmark.group, who)


def median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def table(repeats=200, only=None):
    print(f"threads {_C.get_num_threads()}, isa {_C.isa()}; median ms, ratio = torch / hdl (> 1: hdl faster)")
    print(f"{'case':<36} {'hdl fwd':>8} {'torch':>8} {'ratio':>6}   {'hdl bwd':>8} {'torch':>8} {'ratio':>6}")
    for case in cases():
        label = f"{case[0]} {_label(*case[1:])}"
        if only and only not in label:
            continue
        f = make(*case)
        r = {}
        for way in ("forward", "backward"):  # alternate hdl and torch, take the medians
            h, t = [], []
            for _ in range(5):
                h.append(median_ms(f[f"hdl {way}"], repeats // 5))
                t.append(median_ms(f[f"torch {way}"], repeats // 5))
            r[way] = (float(np.median(h)), float(np.median(t)))
        (hf, tf), (hb, tb) = r["forward"], r["backward"]
        print(f"{label:<36} {hf:8.3f} {tf:8.3f} {tf / hf:6.2f}   {hb:8.3f} {tb:8.3f} {tb / hb:6.2f}", flush=True)


if __name__ == "__main__":
    table(only=sys.argv[1] if len(sys.argv) > 1 else None)
