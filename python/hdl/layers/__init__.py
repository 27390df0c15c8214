"""Every layer of hdl, one protocol (hdl.layers.base.Layer): fully connected (Dense, FullyConnected),
convolution, pooling, activations, dropout, flatten. A user's layer subclasses Layer and is
registered by name for Model.load."""
from hdl.layers.base import LAYER_TYPES, Layer, layer_type, register
from hdl.layers.conv import Conv2d, FullyConnected
from hdl.layers.dense import Dense
from hdl.layers.pointwise import Dropout, Flatten, LeakyReLU, ReLU, Sigmoid
from hdl.layers.pool import AvgPool2d, MaxPool2d

__all__ = ["AvgPool2d", "Conv2d", "Dense", "Dropout", "Flatten", "FullyConnected", "LAYER_TYPES", "Layer",
           "LeakyReLU", "MaxPool2d", "ReLU", "Sigmoid", "layer_type", "register"]
