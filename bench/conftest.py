"""Shared by the benchmarks: a summary table per group (medians scaled to the full job,
ratio to hdl, GFLOP/s and the share of the measured FMA peak, half of it for float64 groups), printed at the end.
GFLOP/s count the multiply-adds of a direct convolution (2 flops each): where a fast
algorithm (hdl's Winograd F(4x4,5x5)) does fewer, the rate can pass the peak.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench
(the two variables force OpenBLAS onto slow kernels on these machines).
"""
import pytest

RESULTS = {}  # group -> {name: (seconds for the full job, flop or None)}
PEAK_SHARE = {}  # group -> the share of the float32 peak its % refers to (0.5: a float64 group)


@pytest.fixture
def record(benchmark):
    def _record(group, name, scale=1.0, flop=None, peak_share=1.0):
        RESULTS.setdefault(group, {})[name] = (benchmark.stats.stats.median * scale, flop)
        PEAK_SHARE[group] = peak_share
    return _record


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    from hdl import _C

    peak = _C.fma_peak_gflops(0.5)
    terminalreporter.section(f"summary (measured float32 FMA peak of {_C.get_num_threads()} threads: "
                             f"{peak:.0f} GFLOP/s; instruction set {_C.isa()})")
    for group, rows in RESULTS.items():
        terminalreporter.write_line(f"{group}: median seconds for the full job, ratio to hdl, "
                                     "direct-convolution GFLOP/s, % of peak")
        base = rows.get("hdl", (None,))[0]
        for name, (seconds, flop) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            ratio = f"{seconds / base:7.2f}x" if base else ""
            share = peak * PEAK_SHARE.get(group, 1.0)
            rate = f"{flop / seconds / 1e9:8.1f} {100 * flop / seconds / 1e9 / share:5.1f}%" if flop else ""
            terminalreporter.write_line(f"  {name:<32} {seconds * 1e3:10.2f} ms {ratio} {rate}")
