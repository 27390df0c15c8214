"""The measurement behind the implicit GEMM's rule (csrc/cpu/kernels/conv.cpp, implicit_rule): convolutions
over a spread of channel counts, filters, strides and maps, each run with the implicit GEMM forced on
(HDL_CONV_IMPLICIT=1) and off (=0, the direct kernel), Winograd off; forward, filter gradient (dw) and data
gradient (dx, from the backward pass with and without it), the two taking turns (hdl.bench.time_alternating).
The columns direct / implicit (> 1: the implicit GEMM pays) sit beside what the rule chooses for each pass.
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/implicit_rule.py [--batch 16 64] [--dtype float32]"""
import argparse
import os

import numpy as np

from hdl import _C
from hdl.bench import time_alternating

# (C, O, k, stride, pad, map): the rule's edges (K = k*k*C about 384, O about 2 and 8 vectors) and user layers
SHAPES = [
    (3, 32, 3, 1, 1, 32), (3, 48, 11, 4, 2, 64), (8, 64, 3, 1, 1, 32), (16, 32, 3, 1, 1, 32),
    (32, 32, 3, 1, 1, 32), (32, 64, 3, 2, 1, 16), (32, 64, 5, 1, 2, 14), (48, 128, 5, 1, 2, 7),
    (64, 64, 3, 1, 1, 8), (64, 64, 3, 1, 1, 16), (64, 128, 1, 1, 0, 16), (64, 128, 3, 2, 1, 16),
    (64, 128, 4, 2, 1, 8), (128, 128, 3, 1, 1, 8), (128, 128, 3, 2, 1, 28), (128, 192, 3, 1, 1, 3),
    (256, 64, 1, 1, 0, 16), (256, 256, 1, 1, 0, 8), (256, 256, 3, 1, 1, 8), (16, 64, 1, 1, 0, 16),
]


def rule(C, O, k, filter_gradient=False):
    """implicit_rule, as conv.cpp writes it (the default that the autotune overrides where it measures)."""
    if not filter_gradient:
        return C >= 48 and O >= 48
    return O >= 128 and (k * k * C >= 384 or (k == 1 and C >= 128))


def with_path(path, f):
    def run():
        os.environ["HDL_CONV_IMPLICIT"] = path
        return f()
    return run


def measure(N, C, O, k, s, p, H, dtype, rng, repeats):
    x = rng.standard_normal((N, H, H, C)).astype(dtype)
    w = (rng.standard_normal((O, C, k, k)) / np.sqrt(C * k * k)).astype(dtype)
    b = np.zeros(O, dtype)
    y = _C.conv2d(x, w, b, s, s, p, p, p, p)
    dy = rng.standard_normal(y.shape).astype(dtype)
    fwd = lambda: _C.conv2d(x, w, b, s, s, p, p, p, p, 0, 0.0, y)  # noqa: E731
    dw = lambda: _C.conv2d_backward(dy, x, w, s, s, p, p, p, p, False)  # noqa: E731
    both = lambda: _C.conv2d_backward(dy, x, w, s, s, p, p, p, p, True)  # noqa: E731
    out = {}
    for name, f in (("fwd", fwd), ("dw", dw), ("both", both)):
        out[name] = time_alternating([with_path("0", f), with_path("1", f)], repeats)
    out["dx"] = [out["both"][i] - out["dw"][i] for i in range(2)]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    rng = np.random.default_rng(0)
    saved = {k: os.environ.get(k) for k in ("HDL_CONV_IMPLICIT", "HDL_CONV_WINOGRAD")}
    os.environ["HDL_CONV_WINOGRAD"] = "0"
    print(f"hdl {_C.isa()}, {_C.get_num_threads()} threads; {args.dtype}; ms, direct / implicit GEMM")
    print("| batch | C -> O | k, stride, pad | map | fwd | ratio | rule | dx | ratio | rule | dw | ratio | rule |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    try:
        for N in args.batch:
            for C, O, k, s, p, H in SHAPES:
                t = measure(N, C, O, k, s, p, H, dtype, rng, args.repeats)
                cells = []
                # the data gradient convolves O into C channels (a stride's phases have fewer taps)
                for name, chosen in (("fwd", rule(C, O, k)), ("dx", rule(O, C, -(-k // s))),
                                     ("dw", rule(C, O, k, True))):
                    d, i = (1e3 * v for v in t[name])
                    cells += [f"{d:.3f} / {i:.3f}", f"{d / i:.2f}", "implicit" if chosen else "direct"]
                print(f"| {N} | {C} -> {O} | {k}, {s}, {p} | {H}x{H} | " + " | ".join(cells) + " |", flush=True)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


if __name__ == "__main__":
    main()
