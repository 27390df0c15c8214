"""One record of a training run, for hdl.train.fit and hdl.stochastic_gradient alike."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

KEYS = ("objective", "top1", "top5")


@dataclass
class History:
    """What a run recorded.

    Per recorded update (stochastic_gradient): iterations, cost (cost[i] is Cost (3.3) after
    iterations[i] updates), final_cost (None when nothing was recorded), batch_cost (the last
    mini-batch's), sampler_state and sampler_order (where its random choice of mini-batches stands after
    the last update: the generator's 4 words, the position in the epoch's order and the updates applied
    (uint64 (6,)), and that order (int64 (N,)); a checkpoint holds them, and resume=True continues from
    them). Per epoch (fit and stochastic_gradient with epochs): epochs, lr, train and val (the objective (7.4) and the top-1 and
    top-5 errors), epoch_seconds, images_per_second, best_epoch. Both: seconds (the run's wall time),
    method and seed.
    """

    iterations: NDArray[np.int64] | None = None
    cost: NDArray[np.floating[Any]] | None = None
    final_cost: float | None = None
    seconds: float = 0.0
    method: str = ""
    seed: int | None = None
    batch_cost: float | None = None
    epochs: list[int] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    train: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KEYS})
    val: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KEYS})
    epoch_seconds: list[float] = field(default_factory=list)
    images_per_second: list[float] = field(default_factory=list)
    best_epoch: int = 0
    sampler_state: NDArray[np.uint64] | None = None
    sampler_order: NDArray[np.int64] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The epoch records and scalars as plain JSON values (for checkpoints and logs)."""
        return {"seconds": self.seconds, "method": self.method, "seed": self.seed, "epochs": self.epochs,
                "lr": self.lr, "train": self.train, "val": self.val, "epoch_seconds": self.epoch_seconds,
                "images_per_second": self.images_per_second, "best_epoch": self.best_epoch}

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The arrays beside the epoch records (recorded costs, the sampler's state), for checkpoints."""
        names = ("iterations", "cost", "sampler_state", "sampler_order")
        return {k: np.asarray(getattr(self, k)) for k in names if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]] | None = None) -> History:
        """The history to_dict and arrays gave (arrays: a checkpoint's Model.arrays)."""
        d = {**dict(d), **{k: np.array(v) for k, v in (arrays or {}).items()}}
        if isinstance(d.get("seconds"), list):  # checkpoints of earlier versions: seconds per epoch
            d["epoch_seconds"] = d.pop("seconds")
            d["seconds"] = float(sum(d["epoch_seconds"]))
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
