import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the Numba oracles need numba (pip install '.[test]')")

ACTS = ["linear", "sigmoid", "relu", "leaky_relu", "step"]
CODES = {name: i for i, name in enumerate(ACTS)}


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)


def away_from_kinks(rng, shape, dtype):
    """Normal draws kept at least 0.05 from 0, where ReLU, leaky ReLU and step have kinks."""
    z = rng.standard_normal(shape)
    z += np.where(z >= 0, 0.05, -0.05)
    return z.astype(dtype)
