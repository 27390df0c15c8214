"""How often the autotune (hdl.autotune, hdl/autotune.hpp) chose wrong: each choice in a cache file re-measured
with both of its algorithms forced, taking turns (hdl.bench.time_alternating), on the convolution its key
describes. Direct or implicit GEMM (HDL_CONV_IMPLICIT=0 and =1, Winograd off): a forward pass (a data gradient's
phase is run as the forward convolution of the same shape) or a filter gradient. Winograd or not
(HDL_CONV_WINOGRAD=1 and =0): the forward pass, the data gradient (the backward pass with it, less the one
without), or the filter gradient. Prints each choice with both medians, and the disagreements.
Fill a cache first, e.g. HDL_AUTOTUNE_CACHE=/tmp/tune.json python bench/zoo.py --batch 16 64, then
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/autotune_check.py /tmp/tune.json [--repeats 7]"""
import argparse
import json
import os

import numpy as np

from hdl import _C
from hdl.autotune import PASSES
from hdl.bench import time_alternating


def forced(env, f):
    def run():
        os.environ.update(env)
        f()
    return run


def pair(p, fwd, dw, both):
    """The two settings (first: the algorithm a0 of the key's pass) and the timed function."""
    if p in (0, 1):
        f = fwd if p == 0 else dw
        return ({"HDL_CONV_IMPLICIT": "0", "HDL_CONV_WINOGRAD": "0"}, {"HDL_CONV_IMPLICIT": "1", "HDL_CONV_WINOGRAD": "0"}), f, None
    settings = ({"HDL_CONV_WINOGRAD": "0", "HDL_CONV_IMPLICIT": ""}, {"HDL_CONV_WINOGRAD": "1", "HDL_CONV_IMPLICIT": ""})
    return settings, {2: fwd, 3: both, 4: dw}[p], dw if p == 3 else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    entries = json.load(open(args.cache))["entries"]
    rng = np.random.default_rng(0)
    print(f"hdl {_C.isa()}, {_C.get_num_threads()} threads; ms, direct / implicit GEMM or not Winograd / Winograd")
    print("| pass | dtype | N | in (HxWxC) | O | k, stride, pad | direct or not | implicit or Winograd | chosen | right |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    checked = wrong = 0
    for key, chosen in entries:
        p, size, threads, N, Hp, Wp, C, Ho, Wo, O, kh, kw, sh, sw, r0, r1, c0, c1 = key
        if threads != _C.get_num_threads():
            continue
        dtype = np.float32 if size == 4 else np.float64
        H, W, pads = r1 - r0, c1 - c0, (sh, sw, r0, Hp - r1, c0, Wp - c1)
        x = rng.standard_normal((N, H, W, C)).astype(dtype)
        w = rng.standard_normal((O, C, kh, kw)).astype(dtype)
        b = np.zeros(O, dtype)
        try:
            y = _C.conv2d(x, w, b, *pads)
        except ValueError:
            continue
        if y.shape[1:3] != (Ho, Wo):
            continue
        dy = rng.standard_normal(y.shape).astype(dtype)
        fwd = lambda: _C.conv2d(x, w, b, *pads, 0, 0.0, y)  # noqa: E731
        dw = lambda: _C.conv2d_backward(dy, x, w, *pads, False)  # noqa: E731
        both = lambda: _C.conv2d_backward(dy, x, w, *pads, True)  # noqa: E731
        (e0, e1), f, less = pair(p, fwd, dw, both)
        t = time_alternating([forced(e0, f), forced(e1, f)], args.repeats)
        if less is not None:  # the data gradient alone
            t0 = time_alternating([forced(e0, less), forced(e1, less)], args.repeats)
            t = [t[0] - t0[0], t[1] - t0[1]]
        names = ("direct", "implicit_gemm") if p < 2 else ("not_winograd", "winograd")
        best = names[0] if t[0] <= t[1] else names[1]
        checked += 1
        wrong += best != chosen
        print(f"| {PASSES[p]} | {np.dtype(dtype).name} | {N} | {H}x{W}x{C} | {O} | "
              f"{kh}x{kw}, {sh}, {r0} | {t[0] * 1e3:.3f} | {t[1] * 1e3:.3f} | {chosen} | "
              f"{'yes' if best == chosen else f'no ({max(t) / min(t):.2f}x)'} |")
    for name in ("HDL_CONV_IMPLICIT", "HDL_CONV_WINOGRAD"):
        os.environ.pop(name, None)
    print(f"\n{checked} choices re-measured, {wrong} disagree")


if __name__ == "__main__":
    main()
