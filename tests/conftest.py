import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

numba = pytest.importorskip("numba", reason="the Numba oracles need numba (pip install '.[test]')")

# The convolutions' measured choices (hdl.autotune) go to a file of this run's, not the user's cache.
if "HDL_AUTOTUNE_CACHE" not in os.environ:
    _tune_dir = tempfile.mkdtemp(prefix="hdl-autotune-")
    atexit.register(shutil.rmtree, _tune_dir, ignore_errors=True)
    os.environ["HDL_AUTOTUNE_CACHE"] = os.path.join(_tune_dir, "autotune.json")

ACTS = ["linear", "sigmoid", "relu", "leaky_relu", "step", "tanh"]
CODES = {name: i for i, name in enumerate(ACTS)}
#: HDL_EXAMPLES_SCALE scales the random cases of the kernel tests' Hypothesis properties (at least 2 each);
#: tools/check_sanitizers.sh --ci runs them at 0.1 under the sanitizers, every kernel and shape family still met.
EXAMPLES_SCALE = float(os.environ.get("HDL_EXAMPLES_SCALE", "1"))


def examples(n: int) -> int:
    """max_examples for a property that runs n cases in a full run."""
    return max(2, round(n * EXAMPLES_SCALE))


def tol(dtype):
    return dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-6)


def away_from_kinks(rng, shape, dtype):
    """Normal draws kept at least 0.05 from 0, where ReLU, leaky ReLU and step have kinks."""
    z = rng.standard_normal(shape)
    z += np.where(z >= 0, 0.05, -0.05)
    return z.astype(dtype)
