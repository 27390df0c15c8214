"""A NaN goes through the ReLU (7.3) as NaN on every path: the stand-alone kernel, the ReLU fused into the
convolutions' epilogues (direct, Winograd, GEMM), into the dense layers' (small ones and the GEMM core's) and
into max pooling. Fused and unfused agree bit for bit, NaNs where they are, and with the oracles; a fused ReLU
that made NaN 0 let a layer gone NaN train on unseen (docs/RELIABILITY.md)."""
import numpy as np
import pytest

from hdl import ops
from hdl.reference import cnn, dense


def with_nans(shape, seed, dtype, rate=1 / 40):
    """Normal values with a NaN in about one cell in 1/rate, and at least one."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < rate] = np.nan
    x.flat[0] = np.nan
    return x.astype(dtype)


def check(fused, unfused, ref, same_nans=True):
    """fused == relu(unfused) bit for bit (NaNs included); the oracle's NaNs are NaNs here (exactly these, unless
    the path mixes a tile's inputs, as Winograd does), and the other values agree with it."""
    np.testing.assert_array_equal(fused, ops.relu(unfused))
    assert np.isnan(fused).any()
    assert (np.isnan(fused) >= np.isnan(ref)).all(), "a NaN of the oracle's became a number"
    if same_nans:
        np.testing.assert_array_equal(np.isnan(fused), np.isnan(ref))
    both = ~np.isnan(fused) & ~np.isnan(ref)
    np.testing.assert_allclose(fused[both], ref[both], rtol=2e-5, atol=2e-5 * np.abs(ref[both]).max())


def test_standalone_relu_keeps_nan_as_the_oracle():
    x = with_nans((5, 7, 3), 0, np.float32)
    y = ops.relu(x)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_array_equal(y, cnn.relu(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path,xs,ws,stride,pad", [
    ("direct", (2, 4, 9, 9), (8, 4, 3, 3), 2, 1),
    ("one input channel", (2, 1, 12, 12), (6, 1, 5, 5), 1, 2),
    ("direct, Winograd off", (4, 4, 12, 12), (8, 4, 3, 3), 1, 1),
    ("implicit GEMM", (2, 4, 9, 9), (8, 4, 3, 3), 2, 1),
    ("implicit GEMM, by its rule", (2, 64, 6, 6), (64, 64, 3, 3), 1, 1),
    ("Winograd F(4x4, 3x3)", (4, 32, 8, 8), (32, 32, 3, 3), 1, 1),
    ("Winograd F(6x6, 3x3)", (4, 4, 12, 12), (8, 4, 3, 3), 1, 1),
    ("Winograd F(4x4, 5x5)", (4, 4, 12, 12), (8, 4, 5, 5), 1, 2),
    ("GEMM, 1x1", (2, 16, 6, 6), (24, 16, 1, 1), 1, 0),
    ("GEMM, filter covers the input", (3, 8, 4, 4), (40, 8, 4, 4), 1, 0),
])
def test_conv_fused_relu_keeps_nan(monkeypatch, path, xs, ws, stride, pad, dtype):
    if path.endswith("Winograd off"):
        monkeypatch.setenv("HDL_CONV_WINOGRAD", "0")
    elif path == "implicit GEMM":  # forced; "..., by its rule" is not
        monkeypatch.setenv("HDL_CONV_WINOGRAD", "0")
        monkeypatch.setenv("HDL_CONV_IMPLICIT", "1")
    elif path.startswith("Winograd"):  # 4 -> 8 channels: direct by the channel rule, Winograd by the earlier one
        monkeypatch.setenv("HDL_CONV_WINOGRAD", "1")
    x = with_nans(xs, 1, dtype, rate=0)  # a few NaNs: a convolution spreads each over a window (Winograd a tile)
    x[-1, -1, xs[2] // 2, xs[3] // 2] = np.nan
    w, b = (np.random.default_rng(2).standard_normal(s).astype(dtype) for s in (ws, ws[:1]))
    fused, unfused = ops.conv2d(x, w, b, stride, pad, relu=True), ops.conv2d(x, w, b, stride, pad)
    ref = cnn.relu(cnn.conv2d(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad))
    check(fused, unfused, ref, same_nans=not path.startswith("Winograd"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_out,n_in,m", [(3, 2, 5), (64, 48, 40)])  # plain loops; the GEMM core's epilogue
def test_dense_relu_keeps_nan(n_out, n_in, m, dtype):
    a = with_nans((n_in, m), 3, dtype)
    W, b = (np.random.default_rng(4).standard_normal(s).astype(dtype) for s in ((n_out, n_in), (n_out,)))
    fused, unfused = ops.dense_forward(W, b, a, "relu"), ops.dense_forward(W, b, a, "linear")
    ref = dense.dense_forward(*(v.astype(np.float64) for v in (W, b, a)), 2, 0.0)  # sigma(W a + b) (5.2)-(5.3)
    check(fused, unfused, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 16])  # fewer channels than a vector: the scalar path; more: the vector one
def test_max_pool_fused_relu_keeps_nan(C, dtype):
    x = with_nans((2, 8, 8, C), 5, dtype)
    x[0, :2, :2, :] = np.nan  # a window of NaNs only
    fused = ops.max_pool2d(x, 2, layout="NHWC", relu=True)
    unfused = ops.max_pool2d(x, 2, layout="NHWC")
    np.testing.assert_array_equal(fused, ops.relu(unfused))
    assert np.isnan(fused[0, 0, 0]).all()
    # where the oracle's maximum is NaN depends on where in the window the NaN is (its running max); compare the
    # windows without one
    ref = cnn.relu(cnn.max_pool2d(x.transpose(0, 3, 1, 2).astype(np.float64), 2)).transpose(0, 2, 3, 1)
    clean = ~np.isnan(x.reshape(2, 4, 2, 4, 2, C)).any(axis=(2, 4))
    np.testing.assert_array_equal(fused[clean], ref[clean].astype(dtype))
