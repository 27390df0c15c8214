"""Costs computed from a model's outputs, each returning (cost, dC/d(outputs)) so that Model.backward_from
back-propagates it; the softmax log-loss (7.4) of classification is hdl.ops.softmax_log_loss.

logistic_loss is the binary cross-entropy of a logit, the cost of the discriminator of a generative
adversarial network [12] (Goodfellow et al., 2014): for a score s = logit of the probability that the input
is real and a target t in [0, 1],

    C = mean over the batch of  -t log sigma(s) - (1 - t) log(1 - sigma(s))  =  mean( softplus(s) - t s ),

dC/ds = (sigma(s) - t) / N, computed without overflow for scores of any size."""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["logistic_loss"]


def logistic_loss(s: NDArray[Any], t: ArrayLike) -> tuple[float, NDArray[Any]]:
    """(C, dC/ds) for logits s (N, 1) or (N,) (float32 or float64) and targets t in [0, 1], a number or an
    array of s's shape; dC/ds has s's shape and dtype."""
    if not isinstance(s, np.ndarray) or s.dtype.kind != "f" or s.size == 0 or s.ndim not in (1, 2) or (
            s.ndim == 2 and s.shape[1] != 1):
        raise ValueError(f"s must be a non-empty float array of shape (N,) or (N, 1), got {type(s).__name__} "
                         f"{getattr(s, 'dtype', '')} {getattr(s, 'shape', '')}")
    t_arr = np.broadcast_to(np.asarray(t, np.float64), s.shape) if np.ndim(t) == 0 else np.asarray(t, np.float64)
    if t_arr.shape != s.shape:
        raise ValueError(f"t must be a number or an array of s's shape {s.shape}, got shape {t_arr.shape}")
    if not (np.all(t_arr >= 0) and np.all(t_arr <= 1)):
        raise ValueError("t (targets) must lie in [0, 1]")
    z = s.astype(np.float64)
    softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # log(1 + e^z), stable
    cost = float(np.mean(softplus - t_arr * z))
    sigma = np.exp(-np.logaddexp(0.0, -z))  # 1 / (1 + e^-z), stable
    return cost, ((sigma - t_arr) / s.size).astype(s.dtype)
