"""The labelled points of Figure 2.1 (Section 2) and the extra point of Figure 2.5."""
from __future__ import annotations

import numpy as np

X1 = (0.1, 0.3, 0.1, 0.6, 0.4, 0.6, 0.5, 0.9, 0.4, 0.7)
X2 = (0.1, 0.4, 0.5, 0.9, 0.2, 0.3, 0.6, 0.2, 0.4, 0.6)
EXTRA_POINT = (0.3, 0.7)  # category B, added in Figures 2.5 and 6.3


def ten_points(extra_point: bool = False, dtype=np.float64):
    """(X, Y): X is (2, N), its columns the points; Y (2, N) the targets (2.5).

    The first five points are category A, target [1, 0]; the last five (and the
    extra point) category B, target [0, 1].
    """
    X = np.array([X1, X2], dtype=dtype)
    labels = np.array([0] * 5 + [1] * 5)
    if extra_point:
        X = np.concatenate([X, np.array(EXTRA_POINT, dtype=dtype)[:, None]], axis=1)
        labels = np.append(labels, 1)
    Y = np.zeros((2, X.shape[1]), dtype=dtype)
    Y[labels, np.arange(X.shape[1])] = 1.0
    return X, Y
