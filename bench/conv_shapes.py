"""The convolution shapes of bench_conv.py as a script: per shape and pass (forward, dx, dw), the median
ms of hdl and of PyTorch (channels_last and NCHW, same threads), the ratio and % of FMA peak.
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/conv_shapes.py [name-filter [fwd,dw,dx+dw]]"""
import sys
import time

import numpy as np

from hdl import _C, ops

BATCH = 64
# name: (H=W, C, O, k, stride, pad)
SHAPES = {
    "vgg3x3 32x32 3->32": (32, 3, 32, 3, 1, 1),
    "vgg3x3 32x32 32->32": (32, 32, 32, 3, 1, 1),
    "vgg3x3 16x16 32->64": (16, 32, 64, 3, 1, 1),
    "vgg3x3 16x16 64->64": (16, 64, 64, 3, 1, 1),
    "vgg3x3 8x8 64->128": (8, 64, 128, 3, 1, 1),
    "vgg3x3 8x8 128->128": (8, 128, 128, 3, 1, 1),
    "vgg3x3 4x4 128->128": (4, 128, 128, 3, 1, 1),
    "s2 3x3 32x32 32->64": (32, 32, 64, 3, 2, 1),
    "s2 3x3 16x16 64->128": (16, 64, 128, 3, 2, 1),
    "s2 4x4 32x32 32->64": (32, 32, 64, 4, 2, 1),
    "stem 7x7 s2 64x64 3->32": (64, 3, 32, 7, 2, 3),
    "1x1 s2 32x32 32->64": (32, 32, 64, 1, 2, 0),
    "1x1 16x16 64->128": (16, 64, 128, 1, 1, 0),
    "1x1 8x8 128->128": (8, 128, 128, 1, 1, 0),
    "lenet 5x5 28x28 1->6": (28, 1, 6, 5, 1, 2),
    "lenet 5x5 14x14 6->16": (14, 6, 16, 5, 1, 0),
    "mnist 5x5 28x28 1->20": (28, 1, 20, 5, 1, 0),
    "mnist 5x5 12x12 20->32": (12, 20, 32, 5, 1, 0),
    "cifar 5x5 16x16 32->32": (16, 32, 32, 5, 1, 2),
}


def data(H, C, O, k, s, p, batch=BATCH, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, H, H, C)).astype(np.float32)
    w = (0.1 * rng.standard_normal((O, C, k, k))).astype(np.float32)
    b = np.zeros(O, np.float32)
    Ho = (H + 2 * p - k) // s + 1
    dy = rng.standard_normal((batch, Ho, Ho, O)).astype(np.float32)
    return x, w, b, dy, 2.0 * batch * Ho * Ho * O * C * k * k


def median_ms(f, reps=15, budget=2.0):
    f()
    ts = []
    t_end = time.perf_counter() + budget
    while len(ts) < reps and (len(ts) < 5 or time.perf_counter() < t_end):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def hdl_fns(x, w, b, dy, s, p):
    y = np.empty(dy.shape, np.float32)
    dx = np.empty_like(x)
    return {
        "fwd": lambda: ops.conv2d(x, w, b, s, p, layout="NHWC", out=y),
        "dw": lambda: ops.conv2d_backward(dy, x, w, s, p, want_dx=False, layout="NHWC"),
        "dx+dw": lambda: ops.conv2d_backward(dy, x, w, s, p, want_dx=True, layout="NHWC", dx_out=dx),
    }


def torch_fns(x, w, b, dy, s, p, channels_last):
    import torch
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))  # noqa: E731
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xt = t(x).contiguous(memory_format=fmt).requires_grad_()
    dyt = t(dy).contiguous(memory_format=fmt)
    wt, bt = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_()
    if channels_last:
        wt = torch.from_numpy(w).contiguous(memory_format=torch.channels_last).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)

    def fwd():
        with torch.no_grad():
            torch.nn.functional.conv2d(xt, wt, bt, stride=s, padding=p)
    return {
        "fwd": fwd,
        "dw": lambda: torch.autograd.grad(yt, [wt, bt], dyt, retain_graph=True),
        "dx+dw": lambda: torch.autograd.grad(yt, [xt, wt, bt], dyt, retain_graph=True),
    }


def main(filt="", passes=("fwd", "dw", "dx+dw")):
    import torch
    torch.set_num_threads(_C.get_num_threads())
    peak = _C.fma_peak_gflops(0.5)
    print(f"batch {BATCH}, {_C.get_num_threads()} threads, {_C.isa()}, fp32 FMA peak {peak:.0f} GFLOP/s")
    print(f"{'shape':<26}{'pass':<7}{'hdl ms':>9}{'cl ms':>9}{'nchw ms':>9}{'cl/hdl':>8}{'GF/s':>7}{'%pk':>6}")
    for name, (H, C, O, k, s, p) in SHAPES.items():
        if filt not in name:
            continue
        x, w, b, dy, flop = data(H, C, O, k, s, p)
        fs = [hdl_fns(x, w, b, dy, s, p), torch_fns(x, w, b, dy, s, p, True), torch_fns(x, w, b, dy, s, p, False)]
        for ps in passes:
            ms = [median_ms(f[ps]) for f in fs]
            fl = flop * (2 if ps == "dx+dw" else 1)
            g = fl / ms[0] / 1e6
            print(f"{name:<26}{ps:<7}{ms[0]:9.2f}{ms[1]:9.2f}{ms[2]:9.2f}{ms[1] / ms[0]:8.2f}{g:7.0f}{100 * g / peak:6.0f}",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2].split(",") if len(sys.argv) > 2 else ("fwd", "dw", "dx+dw"))
