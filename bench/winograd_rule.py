"""The measurement behind Winograd's channel rule (csrc/cpu/kernels/winograd.hpp, winograd_filter): stride-1
3x3 and 5x5 convolutions over a grid of channel counts, each run with Winograd forced on
(HDL_CONV_WINOGRAD=1, the earlier rule C >= 4, O >= 8) and off (=0), forward and backward (dx + dw), best
of three; the last column is direct / Winograd for the whole step (> 1: Winograd pays), next to the harmonic
mean of the channel counts that the rule compares with 16 (AVX-512) or 10 (AVX2 and narrower), and what the
rule now chooses.
Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/winograd_rule.py [batch ...]"""
import os
import sys
import time

import numpy as np

from hdl import _C

os.environ["HDL_AUTOTUNE"] = "0"  # Winograd off means the rules' direct kernel or implicit GEMM, not a measured one

# (k, H = W, pad): LeNet-5's second layer, a padded 5x5 (the paper's CIFAR net), a VGG 3x3
MAPS = ((5, 14, 0), (5, 16, 2), (3, 16, 1))
CHANNELS = ((4, 8), (6, 16), (8, 8), (8, 16), (16, 8), (16, 16), (16, 32), (32, 32))


def best_ms(f, n=15):
    f()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e3


def measure(N, k, H, p, C, O, rng):
    x = rng.standard_normal((N, H, H, C)).astype(np.float32)
    w = rng.standard_normal((O, C, k, k)).astype(np.float32)
    b = np.zeros(O, np.float32)
    dy = rng.standard_normal(_C.conv2d(x, w, b, 1, 1, p, p, p, p).shape).astype(np.float32)
    times = {}
    for mode in ("1", "0"):
        os.environ["HDL_CONV_WINOGRAD"] = mode
        times[mode] = (best_ms(lambda: _C.conv2d(x, w, b, 1, 1, p, p, p, p)),
                       best_ms(lambda: _C.conv2d_backward(dy, x, w, 1, 1, p, p, p, p, True)))
    os.environ.pop("HDL_CONV_WINOGRAD")
    return times["1"], times["0"]


def main(argv=None):
    batches = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [64, 256]
    rng = np.random.default_rng(0)
    threshold = 16 if _C.isa() == "avx512" else 10
    print(f"hdl {_C.isa()}, {_C.get_num_threads()} threads; float32; ms")
    print("| batch | k | map | C -> O | Winograd fwd / bwd | direct fwd / bwd | direct / Winograd | 2CO/(C+O) | rule |")
    print("|---|---|---|---|---|---|---|---|---|")
    for N in batches:
        for k, H, p in MAPS:
            for C, O in CHANNELS:
                (wf, wb), (df, db) = measure(N, k, H, p, C, O, rng)
                rule = "Winograd" if 2 * C * O >= threshold * (C + O) else "direct"
                print(f"| {N} | {k} | {H}x{H} | {C} -> {O} | {wf:.3f} / {wb:.3f} | {df:.3f} / {db:.3f} | "
                      f"{(df + db) / (wf + wb):.2f} | {2 * C * O / (C + O):.1f} | {rule} |", flush=True)


if __name__ == "__main__":
    main()
