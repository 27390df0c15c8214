#!/usr/bin/env bash
# The kernels and the module under AddressSanitizer and UndefinedBehaviorSanitizer: built into
# build/sanitize with -DHDL_SANITIZE=address,undefined, then a subset of the kernel and layer tests
# run against that build once per instruction set this processor has (HDL_ISA=generic, avx2 and,
# where the processor has it, avx512). Any report fails the run (abort_on_error, halt_on_error).
#
#   tools/check_sanitizers.sh [pytest args]      (without test paths: the subset below)
#   tools/check_sanitizers.sh --ci [pytest args] (CI's step: a smaller subset, the properties at 1/10 of their
#                                                cases, that still meets every kernel family on every ISA)
#
# The subset covers every kernel family (GEMM and dense, convolution: direct, Winograd and the GEMM
# paths, pooling, pointwise and activations, loss, SGD updates, the compiled stochastic_gradient
# loop), the layers and the bindings' error paths. Leaks are not checked: Python leaks by design.
# Numba's oracles run as usual (its JIT code is not instrumented and works under ASan), but compiling
# them under ASan's allocator is slow: on 2 cores, from nothing, the build took 1.5 min, the first
# instruction set 3.5 min (3 of them Numba's), each further one 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
ci=0
if [ "${1:-}" = --ci ]; then ci=1; shift; fi
python -m pip install -q pybind11 ninja 2>&1 | { grep -v "^WARNING: Location" || true; }
build=build/sanitize
start=$SECONDS
t0=$SECONDS
# -O0 -g1: the sanitized build compiles three copies of the kernels, and ASan's instrumentation under the
# optimiser is most of that (the AVX-512 convolutions: 130 s at -O1, 24 s at -O0; the whole build 299 s against
# 94 s on 2 cores), while the tests run 1.2-1.5x slower; nothing optimised away hides an access. Line tables for
# the reports.
cmake -S . -B "$build" -G Ninja -DHDL_SANITIZE=address,undefined -DHDL_CUDA=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -g1" \
  -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" -DPython_EXECUTABLE="$(command -v python)" > /dev/null
cmake --build "$build" -j"$(nproc)" > "$build.log" 2>&1 || { cat "$build.log"; exit 1; }
tail -1 "$build.log"
echo "check_sanitizers: build $((SECONDS - t0)) s"
pkg=$(mktemp -d)
trap 'rm -rf "$pkg"' EXIT
# The package's Python files, with the Numba caches of an installed copy of these same sources where there is one
# (CI's, after its pytest step): compiling the oracles under ASan's allocator is most of a cold run.
src=python/hdl
installed=$(cd / && python -c "import hdl, os; print(os.path.dirname(hdl.__file__))" 2>/dev/null || true)
if [ -n "$installed" ] && [ "$installed" != "$root/python/hdl" ] &&
  diff -rq -x __pycache__ -x '_C*.so' -x '_cuda*.so' python/hdl "$installed" > /dev/null 2>&1; then
  src=$installed
fi
echo "check_sanitizers: the package from $src"
cp -rp "$src" "$pkg/hdl"
rm -f "$pkg"/hdl/_C*.so "$pkg"/hdl/_cuda*.so
cp "$build"/_C*.so "$pkg/hdl/"

tests=()
paths=0
for arg in "$@"; do  # test paths relative to the repository, as from its root
  if [[ $arg != /* && -e $root/${arg%%::*} ]]; then arg=$root/$arg; fi
  [[ $arg == /* ]] && paths=1
  tests+=("$arg")
done
if [ $paths = 0 ] && [ $ci = 1 ]; then
  # GEMM and dense, convolution (direct, Winograd, GEMM; forward and backward), pooling, pointwise and the
  # activations, the losses and the SGD update (test_cnn_kernels), the compiled stochastic_gradient loop, the
  # fused ReLUs; the Hypothesis properties at a tenth of their cases (conftest.examples). The layers, models
  # and error paths are the full run's.
  export HDL_EXAMPLES_SCALE=0.1
  tests+=(
    "$root/tests/test_gemm.py"
    "$root/tests/test_dense_kernels.py"
    "$root/tests/test_conv.py"
    "$root/tests/test_cnn_kernels.py"
    "$root/tests/test_training.py"
    "$root/tests/test_relu_nan.py"
    -k "not every_instruction_set"  # runs each ISA in a subprocess of its own: the loop below does that
  )
elif [ $paths = 0 ]; then  # options alone (-x, -k ...) apply to the default subset
  tests+=(
    "$root/tests/test_gemm.py"
    "$root/tests/test_dense_kernels.py"
    "$root/tests/test_conv.py"
    "$root/tests/test_cnn_kernels.py"
    "$root/tests/test_layers.py"
    "$root/tests/test_backprop.py"
    "$root/tests/test_training.py"
    "$root/tests/test_convnet.py"
    "$root/tests/test_errors.py"
  )
fi

# ASan's runtime must be loaded first (python itself is not instrumented), and libstdc++ with it:
# ASan finds the __cxa_throw it intercepts when it starts, and without libstdc++ loaded by then the
# first C++ exception (a bad argument's ValueError) stops the run with "CHECK failed ... __cxa_throw".
preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
for lib in $preload; do
  [ -f "$lib" ] || { echo "check_sanitizers: no $lib" >&2; exit 1; }
done
# The reports go to files (pytest holds the tests' stderr, and an aborted run would lose them).
logs=$pkg/reports
mkdir "$logs"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:log_path=$logs/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan
reports() {
  local f found=1
  for f in "$logs"/*; do
    [ -e "$f" ] || continue
    echo "check_sanitizers: $f" >&2; cat "$f" >&2; found=0
  done
  return $found
}

isas=(generic avx2)
grep -qw avx512f /proc/cpuinfo && isas+=(avx512)
cd "$pkg"  # python -m puts this folder first on sys.path: the tests import the sanitized build
for isa in "${isas[@]}"; do
  t0=$SECONDS
  got=$(HDL_ISA=$isa LD_PRELOAD="$preload" python -c "import hdl; assert hdl.__file__.startswith('$pkg'), hdl.__file__; print(hdl.isa())")
  [ "$got" = "$isa" ] || { echo "check_sanitizers: HDL_ISA=$isa runs '$got'" >&2; exit 1; }
  echo "check_sanitizers: HDL_ISA=$isa"
  # peak.cpp, which no test calls
  HDL_ISA=$isa LD_PRELOAD="$preload" python -c "from hdl import _C; assert _C.fma_peak_gflops(0.05) > 0" ||
    { reports; exit 1; }
  rc=0
  HDL_ISA=$isa LD_PRELOAD="$preload" python -m pytest -q -p no:cacheprovider --rootdir "$root" \
    -c "$root/pyproject.toml" "${tests[@]}" || rc=$?
  if reports; then echo "check_sanitizers: HDL_ISA=$isa: sanitizer reports above" >&2; exit 1; fi
  [ $rc = 0 ] || exit $rc
  echo "check_sanitizers: HDL_ISA=$isa $((SECONDS - t0)) s"
done
echo "check_sanitizers: all $((SECONDS - start)) s"
