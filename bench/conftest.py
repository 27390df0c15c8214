"""Shared by the benchmarks: a summary table of medians (scaled to the full job) and
ratios to hdl, printed at the end of the run.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench
(the two variables force OpenBLAS onto slow kernels on these machines).
"""
import pytest

RESULTS = {}  # group -> {name: seconds for the full job}


@pytest.fixture
def record(benchmark):
    def _record(group, name, scale=1.0):
        RESULTS.setdefault(group, {})[name] = benchmark.stats.stats.median * scale
    return _record


def pytest_terminal_summary(terminalreporter):
    for group, rows in RESULTS.items():
        terminalreporter.section(f"{group}: median seconds for the full job, and ratio to hdl")
        base = rows.get("hdl")
        for name, seconds in sorted(rows.items(), key=lambda kv: kv[1]):
            ratio = f"{seconds / base:8.1f}x" if base else ""
            terminalreporter.write_line(f"  {name:<28} {seconds:10.3f} s {ratio}")
