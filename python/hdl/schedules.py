"""Learning-rate schedules: eta for each epoch (numbered from 1)."""
from __future__ import annotations

import math
from collections.abc import Iterable


class Schedule:
    def __call__(self, epoch: int) -> float:
        raise NotImplementedError


class PerEpoch(Schedule):
    """A list of rates, one per epoch, as the paper's 0.05 (30 epochs), 0.005 (10), 0.0005 (5);
    the last rate continues past the end of the list."""

    def __init__(self, rates: Iterable[float]):
        self.rates = [float(r) for r in rates]
        if not self.rates or min(self.rates) <= 0 or not all(map(math.isfinite, self.rates)):
            raise ValueError(f"learning rates must be positive and finite, got {rates}")

    def __call__(self, epoch: int) -> float:
        return self.rates[min(epoch, len(self.rates)) - 1]

    @classmethod
    def paper(cls, epochs: Iterable[int] = (30, 10, 5), rates: Iterable[float] = (0.05, 0.005, 0.0005)) -> PerEpoch:
        return cls([r for n, r in zip(epochs, rates) for _ in range(n)])


class Step(Schedule):
    """eta0 * gamma ** (number of milestones passed)."""

    def __init__(self, eta0: float, milestones: Iterable[int], gamma: float = 0.1):
        self.eta0, self.milestones, self.gamma = float(eta0), sorted(milestones), float(gamma)

    def __call__(self, epoch: int) -> float:
        return self.eta0 * self.gamma ** sum(epoch > m for m in self.milestones)


class Decay(Schedule):
    """eta0 / (1 + epoch / tau) ** power with 1/2 < power <= 1: sum eta_k^2 finite and sum eta_k
    infinite, the conditions of Section 8 (8.1)."""

    def __init__(self, eta0: float, tau: float = 10.0, power: float = 1.0):
        if not 0.5 < power <= 1.0:
            raise ValueError("power must be in (1/2, 1] for sum eta^2 < inf and sum eta = inf")
        self.eta0, self.tau, self.power = float(eta0), float(tau), float(power)

    def __call__(self, epoch: int) -> float:
        return self.eta0 / (1.0 + (epoch - 1) / self.tau) ** self.power


def make(spec: Schedule | float | Iterable[float]) -> Schedule:
    """A schedule from a Schedule, a number (constant) or a list of per-epoch rates."""
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, (int, float)):
        return PerEpoch([spec])
    return PerEpoch(spec)
