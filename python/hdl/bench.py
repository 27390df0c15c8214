"""Timing functions side by side, fairly: the functions take turns within every repeat, so that a
machine whose speed drifts (a shared VM, a laptop warming up) slows all of them alike, and each
is reported as the median over the repeats of its seconds per call.

    import hdl.bench
    medians = hdl.bench.compare({"hdl": hdl_step, "torch": torch_step}, repeats=15, warmup=2)
    print(hdl.bench.table(medians, baseline="hdl"))   # median ms of each, and its time over hdl's

Standard library only: importing it imports no framework.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Function = Callable[[], Any]  # a function of no arguments, timed by its calls

__all__ = ["calls_per_sample", "compare", "table", "time_alternating"]


def _check_int(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


def calls_per_sample(fn: Function, target: float = 0.01, most: int = 100) -> int:
    """How many calls of fn make one sample of about `target` seconds (1 to `most`), from one timed call."""
    t = time.perf_counter()
    fn()
    dt = time.perf_counter() - t
    return max(1, min(most, int(target / max(dt, 1e-6))))


def time_alternating(fns: Iterable[Function], repeats: int = 9, warmup: int = 2, target: float = 0.01) -> list[float]:
    """Median seconds per call of each function, in the order given. Each function is called `warmup`
    times, then every repeat times each in turn: fns[0] n0 times, fns[1] n1 times, ... (n from
    calls_per_sample, so that a sample lasts about `target` seconds, however short one call is)."""
    fns = list(fns)
    if not fns or not all(callable(fn) for fn in fns):
        raise ValueError(f"need one or more callables to time, got {fns!r}")
    _check_int("repeats", repeats, 1)
    _check_int("warmup", warmup, 0)
    if not (isinstance(target, (int, float)) and math.isfinite(target) and target >= 0):
        raise ValueError(f"target must be a non-negative number of seconds, got {target!r}")
    for fn in fns:
        for _ in range(warmup):
            fn()
    inner = [calls_per_sample(fn, target) for fn in fns]
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, n, out in zip(fns, inner, samples):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t) / n)
    return [statistics.median(s) for s in samples]


def compare(fns: Mapping[str, Function], repeats: int = 9, warmup: int = 2, target: float = 0.01) -> dict[str, float]:
    """{name: median seconds per call} for a dict {name: function taking no arguments}, timed by
    time_alternating (the functions in turn within every repeat)."""
    if not isinstance(fns, dict) or not fns:
        raise ValueError(f"compare takes a non-empty dict {{name: function}}, got {type(fns).__name__}")
    bad = [name for name, fn in fns.items() if not isinstance(name, str) or not callable(fn)]
    if bad:
        raise ValueError(f"compare: every name must be a string and every value a function; not so for {bad}")
    return dict(zip(fns, time_alternating(list(fns.values()), repeats, warmup, target)))


def table(medians: Mapping[str, float], baseline: str | None = None) -> str:
    """The lines to print for compare's medians: each name, its median in ms and its time over the
    baseline's (the first name by default): a ratio above 1 means slower than the baseline."""
    if not isinstance(medians, dict) or not medians:
        raise ValueError("table takes compare's non-empty dict {name: median seconds}")
    bad = [k for k, v in medians.items() if not isinstance(v, (int, float)) or not v > 0 or not math.isfinite(v)]
    if bad:
        raise ValueError(f"table: medians must be positive finite seconds; not so for {bad}")
    baseline = next(iter(medians)) if baseline is None else baseline
    if baseline not in medians:
        raise ValueError(f"baseline {baseline!r} is not one of the names {list(medians)}")
    width = max(len(str(k)) for k in medians)
    lines = [f"{'':{width}}  {'median ms':>10}  {'/ ' + baseline:>10}"]
    for name, seconds in medians.items():
        lines.append(f"{name:{width}}  {seconds * 1e3:10.3f}  {seconds / medians[baseline]:9.2f}x")
    return "\n".join(lines)
