"""The convolutional networks of Section 7: the paper's CIFAR-10 network (cifar_net), built from the
layers of hdl.layers into an hdl.model.Model. ConvNet is Model's name in earlier versions of hdl."""
from __future__ import annotations

import numpy as np

from hdl.layers import (AvgPool2d, Conv2d, Dense, Dropout, Flatten, FullyConnected, Layer, LeakyReLU, MaxPool2d,
                        ReLU, Sigmoid)
from hdl.model import Model

ConvNet = Model

__all__ = ["AvgPool2d", "Conv2d", "ConvNet", "Dense", "Dropout", "Flatten", "FullyConnected", "Layer", "LeakyReLU",
           "MaxPool2d", "Model", "ReLU", "Sigmoid", "cifar_net"]


def cifar_net(dropout=False, seed=0, dtype=np.float32, device="cpu") -> Model:
    """The network of Section 7.4 as MatConvNet's cnn_cifar_init.m ('lenet') sets it up: filters
    0.01 N(0,1) in block 1 and 0.05 N(0,1) after, zero biases; filters at 0.1x and biases at 2x the
    learning rate, a tenth of that (0.01x, 0.2x) in block 5; weight decay on filters and biases
    alike (cnn_train.m's default); with dropout, rates 0.15, 0.15, 0.15, 0.35 after blocks 1-4.
    device='cuda' returns it on the GPU (Model.to)."""
    rng = np.random.default_rng(seed)
    lr = (0.1, 2.0)
    conv = lambda i, o, k, pad, scale, mults=lr: Conv2d(i, o, k, 1, pad, scale=scale, lr_mults=mults,  # noqa
                                                        decay_mults=(1.0, 1.0), rng=rng, dtype=dtype)
    pool = (3, 2, (0, 1, 0, 1))
    drop = (lambda r: [Dropout(r)]) if dropout else (lambda r: [])
    layers = [conv(3, 32, 5, 2, 0.01), MaxPool2d(*pool), ReLU(), *drop(0.15),
              conv(32, 32, 5, 2, 0.05), ReLU(), AvgPool2d(*pool), *drop(0.15),
              conv(32, 64, 5, 2, 0.05), ReLU(), AvgPool2d(*pool), *drop(0.15),
              conv(64, 64, 4, 0, 0.05), ReLU(), *drop(0.35),
              conv(64, 10, 1, 0, 0.05, mults=(0.01, 0.2))]
    return Model(layers).to(device)
