"""hdl.bench: medians for every name, the functions timed in turn, bad arguments named."""
import re
import subprocess
import sys
import time

import pytest

from hdl import bench


def recorder(log, name, seconds=0.0):
    def fn():
        log.append(name)
        if seconds:
            time.sleep(seconds)
    return fn


def test_compare_gives_a_median_per_name_in_order():
    medians = bench.compare({"slow": recorder([], "slow", 2e-3), "fast": recorder([], "fast")}, repeats=3, warmup=0)
    assert list(medians) == ["slow", "fast"]
    assert medians["slow"] >= 1.5e-3 and 0 < medians["fast"] < medians["slow"]


def test_functions_take_turns_within_every_repeat():
    log = []
    bench.compare({"a": recorder(log, "a"), "b": recorder(log, "b")}, repeats=4, warmup=2, target=0)
    # warm-up (2 each), one call each to size the samples (target 0: one call a sample), then a, b per repeat
    assert log == ["a", "a", "b", "b", "a", "b"] + ["a", "b"] * 4


def test_calls_per_sample_fills_the_target():
    assert bench.calls_per_sample(lambda: None, target=0.01) == 100  # capped at `most`
    assert bench.calls_per_sample(lambda: time.sleep(0.02), target=0.01) == 1


def test_table_prints_medians_and_ratios():
    text = bench.table({"hdl": 0.002, "torch": 0.005}, baseline="hdl")
    head, hdl_line, torch_line = text.splitlines()
    assert "median ms" in head and "/ hdl" in head
    assert hdl_line.split() == ["hdl", "2.000", "1.00x"]
    assert torch_line.split() == ["torch", "5.000", "2.50x"]
    assert bench.table({"x": 1.0, "y": 0.5}).splitlines()[2].split()[-1] == "0.50x"  # first name by default


@pytest.mark.parametrize("call, message", [
    (lambda: bench.compare({}), "non-empty dict"),
    (lambda: bench.compare([lambda: None]), "non-empty dict"),
    (lambda: bench.compare({"a": 3}), "every value a function"),
    (lambda: bench.compare({"a": lambda: None}, repeats=0), "repeats must be an integer >= 1"),
    (lambda: bench.compare({"a": lambda: None}, repeats=2.5), "repeats must be an integer >= 1"),
    (lambda: bench.compare({"a": lambda: None}, warmup=-1), "warmup must be an integer >= 0"),
    (lambda: bench.compare({"a": lambda: None}, target=float("nan")), "target must be"),
    (lambda: bench.time_alternating([]), "one or more callables"),
    (lambda: bench.table({}), "non-empty dict"),
    (lambda: bench.table({"a": 0.0}), "positive finite seconds"),
    (lambda: bench.table({"a": 1.0}, baseline="b"), "baseline 'b' is not one of the names ['a']"),
])
def test_bad_arguments_raise_value_error(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


def test_import_is_light():
    """Not imported with hdl, and importing it imports no framework."""
    code = ("import sys, hdl; print('hdl.bench' in sys.modules); import hdl.bench; "
            "print(sorted({'torch', 'numba', 'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "[]"]
