"""Data sets: the ten points of Figure 2.1 (points), CIFAR-10 and CIFAR-100 in their official binary
versions (cifar10, cifar100), MNIST and Fashion-MNIST in IDX files (idx), image files for hdl predict
(images) and MatConvNet's preprocessing (preprocess). Only the ten points are imported with hdl."""
from hdl.data.points import EXTRA_POINT, ten_points

__all__ = ["EXTRA_POINT", "ten_points"]
