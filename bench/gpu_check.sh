#!/usr/bin/env bash
# The one prepared GPU run (bench/GPU.md). On a bare GPU machine whose image has nvcc, CMake, ninja,
# pybind11, scikit-build-core, numba, pytest and PyTorch with CUDA, it
#   1. makes its own venv (over the image's packages) and uses that interpreter, by path, for everything;
#      installs hypothesis from the carried gpu_data/wheels (tests that need a missing package skip, saying so);
#   2. builds hdl with CUDA for sm_90 (H100/H200) into it;
#   3. times the CIFAR-10 step at batch 100 beside PyTorch, then full synthetic epochs, then the kernels
#      and a short real-data run (bench/gpu_bench.py: the figures that matter first);
#   4. runs the GPU tests (tests/test_cuda_*.py on the GPU, every kernel against the oracle and the CPU).
# Writes build.log, bench.log, gpu_results.json, tests.log, tests.xml to $OUT. Each stage has its own
# timeout; the whole run stays under 6 minutes, so a second one fits. From the device tool:
#   run(command="bash bench/gpu_check.sh", carry=["gpu_data"], timeout_s=420)
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*"; }
ARCHS=${HDL_CUDA_ARCHS:-90}
BUILD_S=${BUILD_S:-150} BENCH_S=${BENCH_S:-120} TESTS_S=${TESTS_S:-60}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.txt" 2>&1
say "$(tail -1 "$OUT/nvidia-smi.txt")"

# -- 1. the interpreter ----------------------------------------------------------------------------
# HDL_VENV names an existing venv (a dry run where the code is written); else one is made here from
# HDL_PYTHON (default: the image's python3), seeing the image's packages (torch, numba, pytest).
if [ -n "${HDL_VENV:-}" ]; then
  VENV=$HDL_VENV
else
  VENV=/tmp/hdl-venv
  BASE=${HDL_PYTHON:-$(command -v python3)}
  if [ -z "$BASE" ] || ! "$BASE" -m venv --system-site-packages "$VENV" >> "$OUT/build.log" 2>&1; then
    say "cannot make a venv with '${BASE:-python3}' (see build.log); set HDL_PYTHON to an interpreter with venv"
    exit 1
  fi
fi
PY=$VENV/bin/python
say "interpreter $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
for mod in numpy pybind11 scikit_build_core pytest; do
  "$PY" -c "import $mod" 2>/dev/null || say "missing $mod: the build or the tests will say what failed"
done
if ! "$PY" -c "import hypothesis" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --find-links gpu_data/wheels hypothesis >> "$OUT/build.log" 2>&1 \
    || say "hypothesis not installed (no gpu_data/wheels?): the random-shape tests will skip, saying so"
fi

# -- 2. build --------------------------------------------------------------------------------------
say "building hdl with CUDA for sm_$ARCHS"
export HDL_CUDA=ON HDL_CUDA_ARCHS=$ARCHS CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
if ! timeout "$BUILD_S" "$PY" -m pip install --no-build-isolation --no-deps -v . >> "$OUT/build.log" 2>&1; then
  say "BUILD FAILED (see build.log)"; tail -40 "$OUT/build.log"; exit 1
fi
cd /tmp  # import the installed hdl, not the source tree's python/ folder
say "built; $("$PY" -c 'import hdl.cuda as c; print(c.device_name() if c.is_available() else c.why_unavailable())')"
cd - > /dev/null

# -- 3. timings: the step and the epochs first -----------------------------------------------------
say "bench"
OUT=$OUT timeout "$BENCH_S" "$PY" bench/gpu_bench.py --quick --budget $((BENCH_S - 10)) > "$OUT/bench.log" 2>&1
say "bench exit $?"
tail -5 "$OUT/bench.log"
"$PY" - "$OUT/gpu_results.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))["sections"]
s = r.get("step_batch100", {})
e = r.get("epochs_50000", {})
d = r.get("real_data_learning", {})
print("step ms:", {k: round(v, 3) for k, v in s.items() if isinstance(v, float)})
print("epochs:", {k: v for k, v in e.items() if "45" in k or "epoch_s" in k})
print("real data:", {k: d.get(k) for k in ("max_rel_diff_first_10", "loss_first_10_mean", "loss_last_10_mean", "learns")})
PY

# -- 4. tests --------------------------------------------------------------------------------------
say "GPU tests"
# (the host-emulation cases ran where the code was written; here only the GPU and CPU ones)
timeout "$TESTS_S" "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py tests/test_cuda_kernels_random.py \
  tests/test_cuda_cpu_side.py -k "not emulated and not fake" --junitxml="$OUT/tests.xml" -o addopts="" -rfEs \
  > "$OUT/tests.log" 2>&1
say "tests exit $? : $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)|^SKIPPED.*(not installed|needs)" "$OUT/tests.log" | head -20
say "done"
