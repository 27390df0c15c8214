"""The network API: the paper's notation, parameters, files."""
import json
import zipfile

import numpy as np
import pytest

import hdl


def test_paper_notation_and_views():
    net = hdl.Network([4, 3, 4, 5, 2])  # Figure 3.1
    assert [net.W[l].shape for l in range(2, 6)] == [(3, 4), (4, 3), (5, 4), (2, 5)]
    assert [net.b[l].shape for l in range(2, 6)] == [(3,), (4,), (5,), (2,)]
    assert net.num_params == 3 * 4 + 3 + 4 * 3 + 4 + 5 * 4 + 5 + 2 * 5 + 2
    net.W[3][0, 0] = 7.0
    assert net.layers[1].W[0, 0] == 7.0
    net.b[5] = [1.0, 2.0]
    np.testing.assert_array_equal(net.layers[3].b, [1.0, 2.0])


def test_forward_is_equation_2_4():
    net = hdl.Network([2, 2, 3, 2], seed=3)
    X, _ = hdl.data.ten_points()
    sigma = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    F = sigma(net.W[4] @ sigma(net.W[3] @ sigma(net.W[2] @ X + net.b[2][:, None]) + net.b[3][:, None])
              + net.b[4][:, None])
    np.testing.assert_allclose(net.forward(X), F, rtol=1e-14)
    np.testing.assert_allclose(net.forward(X[:, 3]), F[:, 3:4], rtol=1e-14)  # one point as a vector
    all_a = net.forward(X, return_all=True)
    assert len(all_a) == 4
    np.testing.assert_array_equal(all_a[0], X)
    np.testing.assert_allclose(all_a[-1], F, rtol=1e-14)  # the kernels' exp may differ from NumPy's by an ulp


def test_initialisers():
    net = hdl.Network([500, 400, 300], init="he", seed=0)
    assert np.std(net.W[2]) == pytest.approx(np.sqrt(2 / 500), rel=0.02)
    assert not net.b[2].any()
    net = hdl.Network([500, 400, 300], init="glorot", seed=0)
    assert np.std(net.W[3]) == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    net = hdl.Network([2, 2, 3, 2], seed=0)
    assert np.std(np.concatenate([net.get_params(), hdl.Network([200, 300], seed=1).get_params()])) == \
        pytest.approx(0.5, rel=0.05)


def test_params_roundtrip_and_copy():
    net = hdl.Network([2, 2, 3, 2], seed=0)
    p = net.get_params()
    assert p.shape == (23,)  # "its 23 parameters" (Section 2)
    other = net.copy()
    other.set_params(p + 1)
    np.testing.assert_array_equal(net.get_params(), p)
    with pytest.raises(ValueError, match=r"\(23,\)"):
        net.set_params(np.ones(22))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_and_load_without_pickle(tmp_path, dtype):
    net = hdl.Network([3, 4, 2], activation=["relu", "sigmoid"], seed=5, dtype=dtype)
    path = tmp_path / "net.npz"
    net.save(path)
    with zipfile.ZipFile(path) as z:  # Model's format: every model saves and loads alike
        config = json.loads(np.load(path, allow_pickle=False)["meta"].item())["network"]
        assert "meta.npy" in z.namelist()
    assert config["format"] == "hdl-network" and config["layers"][0]["activation"] == "relu"
    again = hdl.Network.load(path)
    assert type(again) is hdl.Network and again.dtype == dtype
    assert [l.activation for l in again.layers] == ["relu", "sigmoid"]
    np.testing.assert_array_equal(again.get_params(), net.get_params())
    assert not (tmp_path / "net.npz.tmp").exists()
    # files of the earlier Network.save (a 'config' entry and layer<i>.<name> arrays) still load
    old = tmp_path / "old.npz"
    np.savez(old, config=np.array(json.dumps(net.config())),
             **{f"layer{i}.{k}": v for i, layer in enumerate(net.layers) for k, v in layer.params().items()})
    np.testing.assert_array_equal(hdl.Network.load(old).get_params(), net.get_params())


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, config=np.array(json.dumps({"format": "other"})))
    with pytest.raises(ValueError, match="not an hdl network"):
        hdl.Network.load(path)
