#!/usr/bin/env bash
# The one prepared GPU run (bench/GPU.md): on a bare GPU machine whose image has nvcc, CMake, ninja,
# pybind11, scikit-build-core, numba, pytest, pytest-benchmark and PyTorch with CUDA, it
#   1. builds hdl with CUDA for sm_90 (H100/H200) into a venv that sees the image's packages,
#   2. runs the GPU tests (tests/test_cuda_*.py, every kernel against the Numba oracle and the CPU),
#   3. times the kernels, the CIFAR-10 step at batch 100 beside PyTorch/cuDNN, full synthetic epochs
#      and a short real-data run (bench/gpu_bench.py),
# writing build.log, tests.log, tests.xml, bench.log and gpu_results.json to $OUT. Each stage has its
# own timeout; the whole run stays under 8 minutes. Usage, from the device tool:
#   run(command="bash bench/gpu_check.sh", carry=["gpu_data"], timeout_s=540)
set -u
OUT=${OUT:-$PWD/out}
mkdir -p "$OUT"
T0=$(date +%s)
say() { echo "[gpu_check +$(( $(date +%s) - T0 ))s] $*"; }
ARCHS=${HDL_CUDA_ARCHS:-90}
BUILD_S=${BUILD_S:-210} TESTS_S=${TESTS_S:-110} BENCH_S=${BENCH_S:-140}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/nvidia-smi.txt" 2>&1
say "$(tail -1 "$OUT/nvidia-smi.txt")"

# -- 1. build ----------------------------------------------------------------------------------------
# A venv that sees the image's packages (torch, numba, ...) and takes ours without touching it;
# HDL_VENV names an existing one instead (a dry run where the code is written).
VENV=${HDL_VENV:-/tmp/hdl-venv}
if [ -n "${HDL_VENV:-}" ]; then
  . "$VENV/bin/activate"
elif python3 -m venv --system-site-packages "$VENV" >> "$OUT/build.log" 2>&1; then
  . "$VENV/bin/activate"
else
  say "no venv module: installing into the image's Python"; export PIP_BREAK_SYSTEM_PACKAGES=1
fi
if ! python -c "import hypothesis" 2>/dev/null; then  # the tests use it; the image may lack it
  pip install -q --no-index --find-links gpu_data/wheels hypothesis >> "$OUT/build.log" 2>&1 \
    || say "hypothesis not installed (no gpu_data/wheels?): the hypothesis-driven tests will fail to import"
fi
say "building hdl with CUDA for sm_$ARCHS"
export HDL_CUDA=ON HDL_CUDA_ARCHS=$ARCHS CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
if ! timeout "$BUILD_S" pip install --no-build-isolation --no-deps -v . >> "$OUT/build.log" 2>&1; then
  say "BUILD FAILED (see build.log)"; tail -40 "$OUT/build.log"; exit 1
fi
say "built; $(python -c 'import hdl.cuda as c; print(c.device_name() if c.is_available() else c.why_unavailable())')"

# -- 2. tests ----------------------------------------------------------------------------------------
say "GPU tests"
# (the host-emulation cases ran where the code was written; here only the GPU and CPU ones)
timeout "$TESTS_S" python -m pytest -q -p no:cacheprovider tests/test_cuda_kernels.py tests/test_cuda_cpu_side.py \
  -k "not emulated and not fake" --junitxml="$OUT/tests.xml" -o addopts="" -rfEs > "$OUT/tests.log" 2>&1
say "tests exit $? : $(tail -1 "$OUT/tests.log")"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -20

# -- 3. timings --------------------------------------------------------------------------------------
say "bench"
timeout "$BENCH_S" python bench/gpu_bench.py --quick --budget $((BENCH_S - 10)) > "$OUT/bench.log" 2>&1
say "bench exit $?"
tail -5 "$OUT/bench.log"
python - "$OUT/gpu_results.json" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))["sections"]
s = r.get("step_batch100", {})
e = r.get("epochs_50000", {})
d = r.get("real_data_learning", {})
print("step ms:", {k: round(v, 3) for k, v in s.items() if isinstance(v, float)})
print("epochs:", {k: v for k, v in e.items() if "45" in k or "epoch_s" in k})
print("real data:", {k: d.get(k) for k in ("max_rel_diff_first_10", "loss_first_10_mean", "loss_last_10_mean", "learns")})
PY
say "done"
