#!/usr/bin/env bash
# Installs a built wheel the way a user without a compiler does and runs hdl's main job:
# a fresh venv, PATH holding nothing but that venv (no gcc, g++, cc, cmake, nvcc), binary packages
# only (--only-binary: pip may build nothing from source), no PYTHONPATH, then `import hdl` (from the
# venv, checked), `hdl --version` and `hdl netbp --no-plot` (the paper's ten-point run).
#
#   tools/check_wheel.sh dist/hdl_higham-*.whl
set -euo pipefail
wheel=$(realpath "$1")
name=$(basename "$wheel")
work=$(mktemp -d)
rm=$(command -v rm) grep=$(command -v grep)
trap '"$rm" -rf "$work"' EXIT
python3 -m venv "$work/venv"
export PATH="$work/venv/bin"  # from here on, only the venv's programs
unset PYTHONPATH PYTHONHOME HDL_ISA
export PYTHONNOUSERSITE=1
for tool in gcc g++ cc c++ cmake nvcc; do
  if command -v "$tool" > /dev/null; then echo "check_wheel: $tool is on PATH" >&2; exit 1; fi
done
python -m pip install -q --only-binary :all: "$wheel" 2>&1 | { "$grep" -v "^WARNING: Location" || true; }
cd "$work"  # not the source tree: the installed package is what runs
python -c "import hdl; assert hdl.__file__.startswith('$work/venv/'), hdl.__file__; assert hdl.isa() != 'native'
print('hdl', hdl.__version__, 'from', hdl.__file__, 'kernels:', hdl.isa())"
hdl --version
hdl netbp --no-plot
python -m hdl --help > /dev/null
echo "check_wheel: $name installs and runs without a compiler"
