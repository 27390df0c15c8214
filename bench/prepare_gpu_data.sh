#!/usr/bin/env bash
# Fills gpu_data/ (ignored by git), the one folder the GPU run carries (bench/GPU.md): one real
# CIFAR-10 batch for the learning check, and the wheels of hypothesis (the tests need it; the GPU
# image lacks it and cannot reach PyPI). About 32 MiB of the 64 MiB a run may carry.
set -eu
cd "$(dirname "$0")/.."
SRC=${CIFAR10_DIR:-../shared/data/cifar-10-batches-bin}
mkdir -p gpu_data/wheels
cp "$SRC/data_batch_1.bin" gpu_data/
# a pure-Python hypothesis for any Python 3, and its dependencies
pip download -q --no-deps -d gpu_data/wheels "hypothesis==6.115.0" attrs sortedcontainers exceptiongroup \
  typing_extensions
du -sh gpu_data
