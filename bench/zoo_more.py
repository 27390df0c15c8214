"""Networks beyond the zoo's list, written to check hdl on nets that no issue names (issue 10: "other networks a
user might write"): tanh and leaky-ReLU activations, dropout, large grey images, the paper's scale, 1x1 and 6x6
strided filters, odd sizes, float64 conv nets, a wide MLP. Runs as bench/zoo.py does, these nets added to its
table (bench/zoo.py's arguments; --nets picks among them and the zoo's):

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE chrt -f 10 python bench/zoo_more.py --nets tanh-lenet leaky-vgg ...
      --batch 1 16 64 --repeats 7
"""
import sys

import numpy as np

from zoo import NETS, ZOO, Net, _conv_relu, main

MORE = [
    Net("tanh-lenet", "LeNet-1998-style 28x28x1: conv5 20 tanh, avg 2, conv5 50 tanh, avg 2, fc 500 tanh, fc 10",
        (28, 28, 1),
        [("conv", 20, 5, 1, 0), ("tanh",), ("avg", 2, 2, 0), ("conv", 50, 5, 1, 0), ("tanh",), ("avg", 2, 2, 0),
         ("fc", 500), ("tanh",), ("fc", 10)]),
    Net("leaky-vgg", "32x32x3: conv3 48 leaky x2, max 2, dropout 0.25, conv3 96 leaky, max 2, fc 256 leaky, "
        "dropout 0.5, fc 10", (32, 32, 3),
        [("conv", 48, 3, 1, 1), ("leaky",), ("conv", 48, 3, 1, 1), ("leaky",), ("max", 2, 2, 0), ("dropout", 0.25),
         ("conv", 96, 3, 1, 1), ("leaky",), ("max", 2, 2, 0), ("fc", 256), ("leaky",), ("dropout", 0.5),
         ("fc", 10)]),
    Net("big-grey", "96x96x1: conv5 s2 16, max 2, conv3 32, max 2, conv3 64, avg 12, fc 4", (96, 96, 1),
        [*_conv_relu(16, 5, 2, 2), ("max", 2, 2, 0), *_conv_relu(32, 3, 1, 1), ("max", 2, 2, 0),
         *_conv_relu(64, 3, 1, 1), ("avg", 12, 12, 0), ("fc", 4)]),
    Net("paper-scale", "2 -> 16 -> 16 -> 2, sigmoid (the paper's scale)", (1, 1, 2),
        [("fc", 16), ("sigmoid",), ("fc", 16), ("sigmoid",), ("fc", 2)]),
    Net("tanh-mlp", "784 -> 256 tanh, dropout 0.2 -> 128 tanh -> 10", (1, 1, 784),
        [("fc", 256), ("tanh",), ("dropout", 0.2), ("fc", 128), ("tanh",), ("fc", 10)]),
    Net("conv1x1-s2", "16x16x64: conv1 s2 128, conv3 128, conv1 s2 256, avg 4, fc 10", (16, 16, 64),
        [*_conv_relu(128, 1, 2, 0), *_conv_relu(128, 3, 1, 1), *_conv_relu(256, 1, 2, 0), ("avg", 4, 4, 0),
         ("fc", 10)]),
    Net("lenet-f64", "LeNet-5 in float64", (28, 28, 1),
        [*_conv_relu(6, 5, 1, 2), ("max", 2, 2, 0), *_conv_relu(16, 5), ("max", 2, 2, 0), ("fc", 120), ("relu",),
         ("fc", 84), ("relu",), ("fc", 10)], dtype=np.float64),
    Net("vgg-f64", "32x32x3 3x3 stack in float64: conv3 32 x2, max 2, conv3 64 x2, max 2, fc 10", (32, 32, 3),
        [*_conv_relu(32, 3, 1, 1), *_conv_relu(32, 3, 1, 1), ("max", 2, 2, 0), *_conv_relu(64, 3, 1, 1),
         *_conv_relu(64, 3, 1, 1), ("max", 2, 2, 0), ("fc", 10)], dtype=np.float64),
    Net("patchgan", "64x64x3: conv4 s2 32, 64, 128, fc 2", (64, 64, 3),
        [*_conv_relu(32, 4, 2, 1), *_conv_relu(64, 4, 2, 1), *_conv_relu(128, 4, 2, 1), ("fc", 2)]),
    Net("odd-sizes", "37x29x5: conv3 24 pad 1, max 3 s2, conv5 40, fc 7", (37, 29, 5),
        [*_conv_relu(24, 3, 1, 1), ("max", 3, 2, 0), *_conv_relu(40, 5), ("fc", 7)]),
    Net("resnet-stem", "64x64x3: conv7 s2 64, max 3 s2 pad 1, conv3 64 x2, conv3 s2 128, avg 8, fc 10", (64, 64, 3),
        [*_conv_relu(64, 7, 2, 3), ("max", 3, 2, 1), *_conv_relu(64, 3, 1, 1), *_conv_relu(64, 3, 1, 1),
         *_conv_relu(128, 3, 2, 1), ("avg", 8, 8, 0), ("fc", 10)]),
    Net("six-three", "36x36x8: conv6 s3 32, conv6 s3 64, fc 5", (36, 36, 8),
        [*_conv_relu(32, 6, 3), *_conv_relu(64, 6, 3), ("fc", 5)]),
    Net("wide-mlp", "100 -> 1000 -> 1000 -> 2", (1, 1, 100),
        [("fc", 1000), ("relu",), ("fc", 1000), ("relu",), ("fc", 2)]),
]


def add():
    """bench/zoo.py's ZOO and NETS with these nets too."""
    for net in MORE:
        if net.name not in NETS:
            ZOO.append(net)
            NETS[net.name] = net


if __name__ == "__main__":
    add()
    main(sys.argv[1:] if "--nets" in sys.argv else sys.argv[1:] + ["--nets", *[n.name for n in MORE]])
