"""Bad input raises a clear exception naming the problem; it never crashes."""
import json

import numpy as np
import pytest

import hdl
from hdl import _C, ops


@pytest.fixture
def problem():
    X, Y = hdl.data.ten_points()
    return hdl.Network([2, 2, 3, 2], seed=0), X, Y


def test_wrong_shapes(problem):
    net, X, Y = problem
    with pytest.raises(ValueError, match=r"X must have 2 rows.*\(3, 10\)"):
        net.forward(np.ones((3, 10)))
    with pytest.raises(ValueError, match="10 columns.*Y has 9"):
        net.cost(X, Y[:, :9])
    with pytest.raises(ValueError, match="matrix"):
        net.forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="no columns"):
        net.forward(np.ones((2, 0)))
    with pytest.raises(ValueError, match=r"a must have shape \(2, \*\), got \(3, 4\)"):
        ops.dense_forward(np.ones((2, 2)), np.ones(2), np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        ops.dense_forward(np.ones((2, 2)), np.ones(3), np.ones((2, 4)))
    with pytest.raises(ValueError, match="do not chain"):
        hdl.Network([hdl.Dense(2, 3), hdl.Dense(4, 2)])


def test_wrong_dtypes(problem):
    net, X, Y = problem
    with pytest.raises(TypeError, match="float32.*astype"):
        net.forward(X.astype(np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        net.forward(np.array([["a"], ["b"]]))
    with pytest.raises(TypeError, match="float64"):
        ops.dense_forward(np.ones((2, 2)), np.ones(2), np.ones((2, 4), np.float32))
    with pytest.raises(TypeError, match="int64"):
        ops.dense_forward(np.ones((2, 2), np.int64), np.ones(2), np.ones((2, 4)))
    with pytest.raises(TypeError, match="dtype"):
        hdl.Network([2, 2], dtype=np.int32)


def test_non_contiguous_arrays_are_refused_by_kernels_and_copied_by_the_api(problem):
    net, X, Y = problem
    with pytest.raises(ValueError, match="C-contiguous"):
        ops.dense_forward(np.ones((2, 2)), np.ones(2), np.asfortranarray(np.ones((2, 4))))
    Xf = np.asfortranarray(X)
    np.testing.assert_array_equal(net.forward(Xf), net.forward(X))


def test_nan_and_inf_in_data(problem):
    net, X, Y = problem
    X = X.copy()
    X[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 1, column 4"):
        hdl.stochastic_gradient(net, X, Y, eta=0.05, iterations=10)
    Y = Y.copy()
    Y[0, 0] = np.inf
    with pytest.raises(ValueError, match="Y contains NaN or infinity"):
        net.cost(hdl.data.ten_points()[0], Y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 16, 16383, 16384, 16385, 100_003])  # _C.all_finite's chunks are 16384 values
def test_all_finite_finds_every_nan_and_infinity(dtype, n):
    """The check of every array hdl is given: NaN, +-inf, the largest finite values and subnormals, at the
    first and last element and at the chunk edges, in C and F order; other layouts and dtypes go to numpy."""
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype)
    a[::5] = np.finfo(dtype).max
    a[1::7] = -np.finfo(dtype).smallest_subnormal
    assert _C.all_finite(a) and hdl._checks.all_finite(a)
    for i in sorted({0, n - 1, min(16383, n - 1), min(16384, n - 1), n // 2}):
        for bad in (np.nan, np.inf, -np.inf, -np.nan):
            b = a.copy()
            b[i] = bad
            assert not _C.all_finite(b), (i, bad)
            assert not hdl._checks.all_finite(b)
    if n > 8:
        m = a[: n // 4 * 4].reshape(4, -1)
        m[2, 2] = np.inf
        assert not _C.all_finite(np.asfortranarray(m)) and not hdl._checks.all_finite(m[:, ::2])
        assert hdl._checks.all_finite(m[:, 1::2])  # strided: numpy's check
    assert _C.all_finite(np.zeros(0, dtype))
    with pytest.raises(TypeError, match="float32 or float64, got int64"):
        _C.all_finite(np.arange(3))
    with pytest.raises(ValueError, match="C- or F-contiguous"):
        _C.all_finite(np.zeros((4, 6), dtype)[:, ::2])


@pytest.mark.parametrize("kwargs,match", [
    (dict(eta=-0.05, iterations=10), "eta must be positive"),
    (dict(eta=0.0, iterations=10), "eta must be positive"),
    (dict(eta=float("nan"), iterations=10), "eta must be positive"),
    (dict(eta=0.05, iterations=0), "iterations must be positive"),
    (dict(eta=0.05, iterations=-3), "iterations must be positive"),
    (dict(eta=0.05, iterations=2.5), "iterations must be an integer"),
    (dict(eta=0.05, iterations=10, batch_size=0), "batch_size must be positive"),
    (dict(eta=0.05, iterations=10, lam=-1.0), "lam must be non-negative"),
    (dict(eta=0.05, iterations=10, record_every=-1), "record_every must be non-negative"),
    (dict(eta=0.05), "either iterations or epochs"),
    (dict(eta=0.05, iterations=5, epochs=2), "either iterations or epochs"),
])
def test_bad_settings(problem, kwargs, match):
    net, X, Y = problem
    before = net.get_params()
    with pytest.raises((ValueError, TypeError), match=match):
        hdl.stochastic_gradient(net, X, Y, **kwargs)
    np.testing.assert_array_equal(net.get_params(), before)


def test_settings_are_checked_in_the_extension_too(problem):
    net, X, Y = problem
    args = ([net.W[2], net.W[3], net.W[4]], [net.b[2], net.b[3], net.b[4]], [1, 1, 1], [0.01] * 3, X, Y)
    with pytest.raises(ValueError, match="iterations must be positive"):
        _C.sgd_train(*args, 0, 1, True, True, 0.05, 0.0, 1, 0)
    with pytest.raises(ValueError, match="eta must be positive"):
        _C.sgd_train(*args, 10, 1, True, True, -1.0, 0.0, 1, 0)
    with pytest.raises(ValueError, match="unknown activation"):
        _C.dense_forward(np.ones((2, 2)), np.ones(2), np.ones((2, 4)), 9)


def test_divergence_is_reported(problem):
    net = hdl.Network([2, 3, 2], activation="linear", seed=0)
    X, Y = problem[1], problem[2]
    with pytest.raises(FloatingPointError, match="eta"):
        hdl.stochastic_gradient(net, X * 1e3, Y, eta=10.0, iterations=2000, seed=0)


def test_bad_network_definitions():
    with pytest.raises(ValueError, match="unknown activation"):
        hdl.Network([2, 2], activation="tanhh")
    with pytest.raises(ValueError, match="need 2 activations"):
        hdl.Network([2, 3, 2], activation=["sigmoid"])
    with pytest.raises(ValueError, match="positive"):
        hdl.Network([2, 0, 2])
    with pytest.raises(ValueError, match="at least 2"):
        hdl.Network([2])
    with pytest.raises(ValueError, match="unknown init"):
        hdl.Network([2, 2], init="zeros")
    with pytest.raises(IndexError, match=r"numbered 2\.\.3"):
        hdl.Network([2, 3, 2]).W[1]


def _damaged_files(path):
    """{kind: bytes} of files that are not whole model files, made from a good one at path."""
    data = path.read_bytes()
    mid = len(data) // 2
    return {"truncated": data[:mid], "byte changed": data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:],
            "empty": b"", "text": b"not a model\n"}


@pytest.mark.parametrize("cls", [hdl.Model, hdl.Network])
def test_damaged_model_files_are_refused_naming_the_file(tmp_path, cls):
    from hdl.model import ModelFileError
    good = tmp_path / "good.npz"
    net = hdl.Network([3, 4, 2], seed=1)
    net.save(good)
    for kind, content in _damaged_files(good).items():
        bad = tmp_path / f"{kind.replace(' ', '_')}.npz"
        bad.write_bytes(content)
        with pytest.raises(ModelFileError, match=str(bad)):
            cls.load(bad)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(ModelFileError, match="a single array"):
        cls.load(tmp_path / "array.npy")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ModelFileError, match="no model description"):
        cls.load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        cls.load(tmp_path / "absent.npz")
    assert np.array_equal(hdl.Network.load(good).W[2], net.W[2])  # the good file still loads


def test_model_files_of_the_other_kind_or_without_velocities_say_so(tmp_path):
    from hdl.model import ModelFileError
    path = tmp_path / "net.npz"
    hdl.Network([3, 4, 2], seed=1).save(path)  # parameters only
    with pytest.raises(ModelFileError, match="hdl.Network.load"):
        hdl.Model.load(path)
    with pytest.raises(ModelFileError, match="saved without velocities"):
        hdl.Network.load(path, with_velocities=True)


def test_model_files_carry_named_arrays_and_refuse_bad_names(tmp_path):
    net = hdl.Network([3, 4, 2], seed=1)
    mean = np.arange(6.0).reshape(2, 3)
    net.save(tmp_path / "m.npz", extra={"note": "x"}, arrays={"mean": mean})
    back = hdl.Network.load(tmp_path / "m.npz")
    assert back.meta["note"] == "x" and list(back.arrays) == ["mean"] and np.array_equal(back.arrays["mean"], mean)
    assert hdl.Network.load(tmp_path / "m.npz").W[2].shape == (4, 3)
    with pytest.raises(ValueError, match="identifiers"):
        net.save(tmp_path / "bad.npz", arrays={"a/b": mean})


def test_model_files_whose_arrays_do_not_fit_their_description_name_the_file(tmp_path):
    from hdl.model import ModelFileError
    net = hdl.Network([3, 4, 2], seed=1)
    arrays = {**net.state_arrays(), "param0": np.zeros((5, 5))}  # the first W no longer 4 x 3
    np.savez(tmp_path / "shape.npz", meta=np.array(json.dumps({"network": net.config()})), **arrays)
    with pytest.raises(ModelFileError, match=r"shape\.npz.*stored shape \(5, 5\)"):
        hdl.Network.load(tmp_path / "shape.npz")
    # hdl's earlier Network format: a JSON 'config' and layer<i>.<name> arrays
    np.savez(tmp_path / "old.npz", config=np.array(json.dumps(net.config())), **{"layer0.W": net.W[2]})
    with pytest.raises(ModelFileError, match=r"old\.npz.*layer0\.b"):
        hdl.Network.load(tmp_path / "old.npz")
    np.savez(tmp_path / "old_bad.npz", config=np.array("{not json"))
    with pytest.raises(ModelFileError, match=r"old_bad\.npz"):
        hdl.Network.load(tmp_path / "old_bad.npz")
