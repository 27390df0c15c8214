"""Error rates and the confusion matrix of Section 7.4."""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hdl import ops


def top_k_error(scores: ArrayLike, labels: ArrayLike, k: int = 1) -> float:
    """The fraction of rows whose k largest scores miss the label (top-1, top-5 error)."""
    scores = np.ascontiguousarray(scores)
    k = min(k, scores.shape[1])
    hit = (ops.top_k(scores, k) == np.asarray(labels)[:, None]).any(axis=1)
    return float(1.0 - hit.mean())


def confusion_matrix(predicted: ArrayLike, labels: ArrayLike, classes: int) -> NDArray[np.int64]:
    """M[i, j] = how often class i was predicted for an image of class j (the paper's Figure 7.4)."""
    M = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(M, (np.asarray(predicted), np.asarray(labels)), 1)
    return M
