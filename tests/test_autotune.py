"""hdl.autotune: the measured choice between the direct kernel and the implicit GEMM (hdl/autotune.hpp), its
table, and its cache file. conftest.py points HDL_AUTOTUNE_CACHE at a temporary file for the whole run."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from hdl import _C, autotune, ops
from hdl.reference import cnn

# 4 x 16x16x64 -> 64 3x3 stride 2 (not Winograd's): 4*8*8*64*64*9 = 9.4 M multiply-adds, past the 2**20 below
# which the rules decide; its filter gradient too, and its data gradient's four phases.
SHAPE = dict(x=(4, 64, 16, 16), w=(64, 64, 3, 3), stride=2, pad=1)


@pytest.fixture
def fresh(monkeypatch):
    """An empty table, measuring on, no path forced."""
    for name in ("HDL_AUTOTUNE", "HDL_CONV_IMPLICIT", "HDL_CONV_WINOGRAD", "HDL_CONV_COL2IM"):
        monkeypatch.delenv(name, raising=False)
    autotune.clear()
    yield
    autotune.clear()


def run_conv(seed=0, dtype=np.float64, **shape):
    s = {**SHAPE, **shape}
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(n).astype(dtype) for n in (s["x"], s["w"], s["w"][0]))
    y = ops.conv2d(x, w, b, s["stride"], s["pad"])
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = (y, *ops.conv2d_backward(dy, x, w, s["stride"], s["pad"]))
    want = (cnn.conv2d(x, w, b, s["stride"], s["pad"]), *cnn.conv2d_backward(dy, x, w, s["stride"], s["pad"]))
    return got, want


def assert_matches(got, want, dtype=np.float64):
    for g, r in zip(got, want):
        scale = np.abs(r).max()
        atol = 1e-12 * scale if dtype == np.float64 else 2e-5 * scale
        np.testing.assert_allclose(g, r, rtol=0, atol=atol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_first_call_measures_and_every_call_is_right(fresh, dtype):
    for _ in range(2):  # measured, then the recorded choice
        assert_matches(*run_conv(dtype=dtype), dtype=dtype)
    entries = autotune.entries()
    passes = sorted(e["pass"] for e in entries)
    # the forward pass and the filter gradient; the data gradient's stride-1 phases (2x2, 2x1, 1x2 and 1x1 taps
    # over 4*8*8 pixels of 64 -> 64 channels: 1-4 M multiply-adds) too
    assert passes.count("filter_gradient") == 1 and passes.count("conv") >= 1
    fwd = next(e for e in entries if e["pass"] == "conv" and e["kh"] == 3)
    assert (fwd["N"], fwd["Hp"], fwd["Wp"], fwd["C"], fwd["Ho"], fwd["Wo"], fwd["O"], fwd["sh"]) == \
        (4, 18, 18, 64, 8, 8, 64, 2)
    assert fwd["bytes"] == np.dtype(dtype).itemsize and fwd["threads"] == _C.get_num_threads()
    assert (fwd["rows_lo"], fwd["rows_hi"], fwd["cols_lo"], fwd["cols_hi"]) == (1, 17, 1, 17)
    assert all(e["algorithm"] in autotune.ALGORITHMS for e in entries)
    n = len(entries)
    run_conv(dtype=dtype)
    assert len(autotune.entries()) == n  # nothing measured twice


def choice(key, which):
    """The first (which = 0) or second of the two algorithms key's pass chooses between, as recorded."""
    return autotune.ALGORITHMS.index(autotune.CHOICES[autotune.PASSES[key[0]]][which])


@pytest.mark.parametrize("which", [0, 1])
def test_a_recorded_choice_is_obeyed(fresh, which):
    """Every key recorded as its pass's first (second) algorithm in advance: nothing is measured, and the
    results are right."""
    run_conv()
    keys = [key for key, _ in _C.autotune_entries()]
    autotune.clear()
    for key in keys:
        _C.autotune_record(list(key), choice(key, which))
    assert_matches(*run_conv(seed=1))
    assert sorted(_C.autotune_entries()) == sorted((key, choice(key, which)) for key in keys)


@pytest.mark.parametrize("env", [{"HDL_AUTOTUNE": "0"}, {"HDL_CONV_IMPLICIT": "1"}, {"HDL_CONV_IMPLICIT": "0"}])
def test_switches_measure_nothing(fresh, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert_matches(*run_conv())
    assert autotune.entries() == []
    assert autotune.enabled() == (env.get("HDL_AUTOTUNE") != "0")


# 4 x 16x16x32 -> 32 3x3 stride 1, which Winograd's rule offers to all three passes (9.4 M multiply-adds)
WINOGRAD_SHAPE = dict(x=(4, 32, 16, 16), w=(32, 32, 3, 3), stride=1, pad=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_winograd_is_measured_against_the_others(fresh, dtype):
    for _ in range(2):
        assert_matches(*run_conv(dtype=dtype, **WINOGRAD_SHAPE), dtype=dtype)
    by_pass = {e["pass"]: e["algorithm"] for e in autotune.entries()}
    for name in ("winograd_forward", "winograd_data_gradient", "winograd_filter_gradient"):
        assert by_pass[name] in ("winograd", "not_winograd")
    # where Winograd lost the forward pass, what serves it otherwise was measured too (its own key: 18x18 padded
    # input, 16x16 output; the data gradient's stride-1 convolution has that shape too, so there may be two)
    if by_pass["winograd_forward"] == "not_winograd":
        assert [e for e in autotune.entries() if e["pass"] == "conv" and (e["Hp"], e["Ho"]) == (18, 16)]


# 8 x 64x64x3 -> 48 11x11 stride 4 (AlexNet's stem), which space to depth offers to Winograd (a 3x3 over 48
# channels, conv_space_to_depth.hpp): 31 M multiply-adds
STEM_SHAPE = dict(x=(8, 3, 64, 64), w=(48, 3, 11, 11), stride=4, pad=2)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_space_to_depth_is_measured_against_the_strided_paths(fresh, dtype):
    for _ in range(2):
        assert_matches(*run_conv(dtype=dtype, **STEM_SHAPE), dtype=dtype)
    strided = {e["pass"]: e["algorithm"] for e in autotune.entries() if e["sh"] == 4 and e["pass"].startswith("wino")}
    assert set(strided) == {"winograd_forward", "winograd_data_gradient", "winograd_filter_gradient"}


# 4 x 8x8x128 -> 128 4x4 stride 2 (a DCGAN discriminator's): its data gradient is measured as four sub-pixel
# convolutions of 4x4 outputs against one GEMM and a gather (col2im, conv_col2im.hpp): 16.8 M multiply-adds
COL2IM_SHAPE = dict(x=(4, 128, 8, 8), w=(128, 128, 4, 4), stride=2, pad=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_col2im_is_measured_against_the_subpixel_data_gradient(fresh, dtype):
    for _ in range(2):
        assert_matches(*run_conv(dtype=dtype, **COL2IM_SHAPE), dtype=dtype)
    chosen = [e for e in autotune.entries() if e["pass"] == "data_gradient"]
    assert len(chosen) == 1 and chosen[0]["algorithm"] in ("subpixel", "col2im")
    assert (chosen[0]["N"], chosen[0]["C"], chosen[0]["O"], chosen[0]["kh"], chosen[0]["sh"]) == (4, 128, 128, 4, 2)


@pytest.mark.parametrize("algorithm", ["subpixel", "col2im"])
def test_a_recorded_data_gradient_choice_is_obeyed(fresh, algorithm):
    run_conv(**COL2IM_SHAPE)
    key = next(key for key, _ in _C.autotune_entries() if autotune.PASSES[key[0]] == "data_gradient")
    autotune.clear()
    _C.autotune_record(list(key), autotune.ALGORITHMS.index(algorithm))
    assert_matches(*run_conv(seed=2, **COL2IM_SHAPE))
    assert dict(_C.autotune_entries())[key] == autotune.ALGORITHMS.index(algorithm)
    # the sub-pixel path's phases measured their own kernels; col2im's product is one GEMM, nothing to measure
    assert any(key[0] == 0 and key[12] == 1 for key, _ in _C.autotune_entries()) == (algorithm == "subpixel")


@pytest.mark.parametrize("env", [{"HDL_CONV_COL2IM": "1"}, {"HDL_CONV_COL2IM": "0"}])
def test_col2im_forced_measures_no_data_gradient(fresh, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert_matches(*run_conv(**COL2IM_SHAPE))
    assert not [e for e in autotune.entries() if e["pass"] == "data_gradient"]


@pytest.mark.parametrize("shape", [SHAPE, WINOGRAD_SHAPE, STEM_SHAPE, COL2IM_SHAPE])
def test_a_measuring_call_matches_later_calls_bit_for_bit(fresh, shape):
    """The chosen algorithm writes the measuring call's output last: no trace of the other's rounding."""
    first = run_conv(seed=3, dtype=np.float32, **shape)[0]
    for _ in range(2):
        for a, b in zip(first, run_conv(seed=3, dtype=np.float32, **shape)[0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("algorithm", [2, 3])
def test_a_recorded_winograd_choice_is_obeyed(fresh, algorithm):
    run_conv(**WINOGRAD_SHAPE)
    keys = [key for key, _ in _C.autotune_entries() if key[0] >= 2]
    assert len(keys) == 3
    autotune.clear()
    for key in keys:
        _C.autotune_record(list(key), algorithm)
    assert_matches(*run_conv(seed=2, **WINOGRAD_SHAPE))
    recorded = dict(_C.autotune_entries())
    assert all(recorded[key] == algorithm for key in keys)
    # Winograd chosen: nothing else measured; not chosen: the others' own choices appear
    assert (len(recorded) == 3) == (algorithm == 2)


def test_winograd_forced_on_measures_none_of_its_passes(fresh, monkeypatch):
    monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")
    assert_matches(*run_conv(**WINOGRAD_SHAPE))
    assert autotune.entries() == []


def test_small_convolutions_keep_the_rule(fresh):
    """Below 2**20 multiply-adds (1 x 8x8x16 -> 16 3x3 s2: 9 K) nothing is timed."""
    assert_matches(*run_conv(x=(1, 16, 8, 8), w=(16, 16, 3, 3)))
    assert autotune.entries() == []


def test_cropped_subpixel_phases_keep_the_file_loadable(fresh, tmp_path):
    """A 2x2 stride-2 filter with padding 1: its data gradient's phases crop dy (the part not padding starts
    before their view); their keys were once negative there, and a file holding one was thrown away whole."""
    run_conv(x=(8, 64, 24, 24), w=(64, 64, 2, 2), stride=2, pad=1)
    entries = _C.autotune_entries()
    assert [key for key, _ in entries if key[0] == 0 and key[12] == 1]  # the phases were measured
    assert all(min(key) >= 0 for key, _ in entries)
    path = tmp_path / "cropped.json"
    autotune.save(path)
    autotune.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autotune.load(path) == len(entries)


def test_save_load_round_trip_and_merge(fresh, tmp_path):
    path = tmp_path / "tune.json"
    run_conv()
    first = sorted(_C.autotune_entries())
    assert autotune.save(path) == path
    data = json.loads(path.read_text())
    assert data["format"] == autotune.FORMAT and data["machine"] == autotune.machine()
    assert data["fields"] == list(autotune.KEY_FIELDS)
    autotune.clear()
    assert autotune.load(path) == len(first)
    assert sorted(_C.autotune_entries()) == first
    # another shape saved by "another process": the file keeps both
    autotune.clear()
    run_conv(x=(2, 64, 16, 16))
    second = sorted(_C.autotune_entries())
    autotune.save(path)
    autotune.clear()
    autotune.load(path)
    assert sorted(_C.autotune_entries()) == sorted(set(first) | set(second))
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # the temporary file was renamed


def _file(entries):
    return json.dumps({"format": autotune.FORMAT, "machine": autotune.machine(), "entries": entries})


@pytest.mark.parametrize("text", ["{not json", '{"format": 1, "machine": {"cpu": "another"}, "entries": []}',
                                  '{"format": 99}', "[1, 2]",
                                  "BAD_PASS", "BAD_ALGORITHM", "BAD_COL2IM", "HUGE", "STRING_KEY", "SHORT_KEY"])
def test_a_foreign_or_broken_file_is_ignored_with_a_warning(fresh, tmp_path, text):
    """Nothing of it is recorded, and the first convolution after it runs."""
    good = [0, 4, 2] + [1] * 15
    text = {"BAD_PASS": _file([[[7] + good[1:], "direct"]]),
            "BAD_ALGORITHM": _file([[good, "winograd"]]),
            "BAD_COL2IM": _file([[[5] + good[1:], "direct"]]),
            "HUGE": _file([[good[:-1] + [2**70], "direct"]]),
            "STRING_KEY": _file([[good[:-1] + ["1"], "direct"]]),
            "SHORT_KEY": _file([[good[:5], "direct"]])}.get(text, text)
    path = tmp_path / "tune.json"
    path.write_text(text)
    with pytest.warns(RuntimeWarning, match="ignoring"):
        assert autotune.load(path) == 0
    assert _C.autotune_entries() == []


def test_a_bad_entry_is_refused():
    with pytest.raises(ValueError, match="18 integers"):
        _C.autotune_record([0, 4, 2], 1)
    with pytest.raises(ValueError, match="algorithm is 0"):
        _C.autotune_record([0] * 18, 6)
    with pytest.raises(ValueError, match="pass .* is 0 to 7"):
        _C.autotune_record([8] + [0] * 17, 1)
    with pytest.raises(ValueError, match="passes 0-1 and 6 choose 0 or 1"):
        _C.autotune_record([0] * 18, 2)
    with pytest.raises(ValueError, match="passes 0-1 and 6 choose 0 or 1"):
        _C.autotune_record([3] + [0] * 17, 1)
    with pytest.raises(ValueError, match="passes 0-1 and 6 choose 0 or 1"):
        _C.autotune_record([6] + [0] * 17, 2)
    with pytest.raises(ValueError, match="2-4 and 7 choose 2 or 3"):
        _C.autotune_record([7] + [0] * 17, 0)
    with pytest.raises(ValueError, match="pass 5 chooses 4 or 5"):
        _C.autotune_record([5] + [0] * 17, 3)
    with pytest.raises(ValueError, match="pass 5 chooses 4 or 5"):
        _C.autotune_record([1] + [0] * 17, 4)


def test_a_process_saves_at_exit_and_the_next_loads(tmp_path):
    path = tmp_path / "machine.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HDL_AUTOTUNE", "HDL_CONV_IMPLICIT")}
    env["HDL_AUTOTUNE_CACHE"] = str(path)
    code = ("import sys, numpy as np; from hdl import ops, autotune, _C; x = np.ones((4, 64, 16, 16)); "
            "w = np.ones((64, 64, 3, 3)); ops.conv2d(x, w, np.zeros(64), 2, 1); "
            "print(len(_C.autotune_entries()))")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(first.stdout) >= 1 and path.exists()
    saved = json.loads(path.read_text())["entries"]
    assert len(saved) == int(first.stdout)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(second.stdout) == len(saved)  # loaded, nothing new measured
    assert json.loads(path.read_text())["entries"] == saved


def test_the_command_lists_and_clears(fresh, tmp_path, monkeypatch, capsys):
    from hdl import cli
    path = tmp_path / "cli.json"
    monkeypatch.setenv("HDL_AUTOTUNE_CACHE", str(path))
    assert cli.main(["autotune"]) == 0
    assert "no file yet" in capsys.readouterr().out
    run_conv()
    n = len(_C.autotune_entries())
    autotune.save()
    autotune.clear()
    assert cli.main(["autotune", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["path"] == str(path) and len(listed["entries"]) == n and listed["exists"]
    assert _C.autotune_entries() == []  # listing loads nothing into the process
    assert cli.main(["autotune"]) == 0
    out = capsys.readouterr().out
    assert f"{n} choices" in out and "filter_gradient:" in out
    assert cli.main(["autotune", "--clear"]) == 0
    assert "deleted" in capsys.readouterr().out and not path.exists()


# 1 x 8x8x64 -> 64 3x3 pad 1: four 4x4 Winograd tiles, too few for training's rule (kMinTiles), offered to an
# inference over filters that held since its last pass, which reads their transform kept (2.4 M multiply-adds)
KEPT_SHAPE = dict(x=(1, 64, 8, 8), w=(64, 64, 3, 3), stride=1, pad=1)


def _kept_inference(dtype, seed=0, calls=3):
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(n).astype(dtype) for n in (KEPT_SHAPE["x"], KEPT_SHAPE["w"], (64,)))
    want = cnn.conv2d(x, w, b, 1, 1)
    with ops.keeping_filters():
        for _ in range(calls):
            assert_matches([ops.conv2d(x, w, b, 1, 1)], [want], dtype)
    return x, w, b, want


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inference_over_held_filters_measures_under_its_own_passes(fresh, dtype):
    args = ((1, 8, 8, 64), (64, 64, 3, 3), 1, 1, 1, 1, 1, 1, dtype)
    assert _C.conv_winograd_offer(*args)["forward"] is None
    assert _C.conv_winograd_offer(*args, kept_filters=True)["forward"] == (3, 6)
    x, w, b, want = _kept_inference(dtype)
    by_pass = {e["pass"]: e["algorithm"] for e in autotune.entries()}
    # the first pass, over filters not seen before, chose as training does (Winograd not offered on 4 tiles);
    # the second, over filters that held, chose reading them kept
    assert by_pass["conv"] in ("direct", "implicit_gemm") and "winograd_forward" not in by_pass
    assert by_pass["winograd_forward_kept"] in ("winograd", "not_winograd")
    if by_pass["winograd_forward_kept"] == "not_winograd":
        assert by_pass["conv_kept"] in ("direct", "implicit_gemm")
    # a training pass of the same shape takes training's choice, measuring nothing
    assert_matches([ops.conv2d(x, w, b, 1, 1)], [want], dtype)
    assert {e["pass"]: e["algorithm"] for e in autotune.entries()} == by_pass


def test_an_inference_after_each_training_step_chooses_as_training(fresh):
    """Filters that change between inference passes (a training step in between) never hold: every pass runs
    training's algorithms and nothing is measured or kept as for held filters."""
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(n) for n in (KEPT_SHAPE["x"], KEPT_SHAPE["w"], (64,)))
    for step in range(4):
        w += 1e-3 * rng.standard_normal(w.shape)  # every weight moves, as in an SGD step
        with ops.keeping_filters():
            assert_matches([ops.conv2d(x, w, b, 1, 1)], [cnn.conv2d(x, w, b, 1, 1)])
    assert {e["pass"] for e in autotune.entries()} == {"conv"}


@pytest.mark.parametrize("which", [0, 1])
def test_a_recorded_kept_choice_is_obeyed(fresh, which):
    """The inference's passes recorded as their first (second) algorithm in advance: nothing measured, every
    call right (Winograd with kept filters, or the direct kernel or the implicit GEMM; before the filters hold,
    training's choice)."""
    _kept_inference(np.float64)
    rest = next(key for key, _ in _C.autotune_entries() if key[0] == 7)[1:]  # conv's and conv_kept's: the same shape
    keys = [(0, *rest), (6, *rest), (7, *rest)]  # the first pass (filters not yet held) runs as training does
    autotune.clear()
    for key in keys:
        _C.autotune_record(list(key), choice(key, which))
    _kept_inference(np.float64, seed=1)
    assert sorted(_C.autotune_entries()) == sorted((key, choice(key, which)) for key in keys)
