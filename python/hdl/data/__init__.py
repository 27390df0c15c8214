"""Data sets: the ten points of Figure 2.1, CIFAR-10 (official binary version), IDX files."""
from hdl.data.points import EXTRA_POINT, ten_points

__all__ = ["EXTRA_POINT", "ten_points"]
