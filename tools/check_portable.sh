#!/usr/bin/env bash
# The portable build (what ARM and other non-x86 machines get): one copy of the kernels with the
# compiler's default flags and no processor queries, built here with -DHDL_PORTABLE=ON, then the
# kernel tests run against it.
#
#   tools/check_portable.sh [pytest args]      (default: the GEMM, dense and convolution kernel tests)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python -m pip install -q pybind11 ninja 2>&1 | { grep -v "^WARNING: Location" || true; }
build=build/portable
cmake -S . -B "$build" -G Ninja -DHDL_PORTABLE=ON -DHDL_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" > /dev/null
cmake --build "$build" -j"$(nproc)" > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
tail -1 "$build.log"
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
cp -r python/hdl "$pkg/hdl"
rm -f "$pkg"/hdl/_C*.so "$pkg"/hdl/_cuda*.so
cp "$build"/_C*.so "$pkg/hdl/"
unset HDL_ISA
isa=$(cd "$pkg" && python -c "import hdl; print(hdl.isa())")
[ "$isa" = generic ] || { echo "check_portable: the portable build reports '$isa', not 'generic'" >&2; exit 1; }
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=("$root/tests/test_gemm.py" "$root/tests/test_dense_kernels.py" "$root/tests/test_conv.py")
cd "$pkg"  # python -m puts this folder first on sys.path: the tests import the portable build
python -c "import hdl; assert hdl.__file__.startswith('$pkg'), hdl.__file__"
python -m pytest -q -p no:cacheprovider --rootdir "$root" -c "$root/pyproject.toml" "${tests[@]}"
