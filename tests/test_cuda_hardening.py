"""The CUDA backend's runtime where there is no GPU (issue 14): the real allocator, error reporting,
device choice and DLPack release of csrc/cuda/runtime.cu and memory.cu, run by the host emulation
(tests/cuda_emu: the CUDA runtime calls go to host stand-ins, a kernel's fault can be injected), and
the Python side over it (tests/cuda_emu/fake_cuda.py)."""
import ctypes
import gc
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cuda_emu import emu

import hdl.cuda

pytestmark = pytest.mark.skipif(emu.NVCC is None, reason="no nvcc to build the host emulation of the CUDA kernels")
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def lib():
    lib = emu.load()
    lib.emu_log.restype = lib.emu_last_error.restype = ctypes.c_char_p
    yield lib
    lib.emu_clear_fault()
    lib.emu_set_sync_launches(0)


@pytest.fixture
def fake_gpu(monkeypatch, lib):
    from cuda_emu import fake_cuda
    monkeypatch.setattr(hdl.cuda, "_cuda", fake_cuda)
    return fake_cuda


def run_python(code, **env):
    """code in a fresh interpreter (a crash there, e.g. std::terminate, cannot take pytest down)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path]), **env})
    return done.returncode, done.stdout + done.stderr


# -- DLPack: an imported tensor goes back to its producer only after hdl's stream is done with it ------
def test_dlpack_deleter_waits_for_hdls_stream(lib):
    lib.emu_clear_log()
    lib.emu_release_imported(2)  # kDLCUDA
    assert lib.emu_log().split() == [b"sync", b"deleted"]
    lib.emu_clear_log()
    lib.emu_release_imported(1)  # host memory: nothing to wait for
    assert lib.emu_log().split() == [b"deleted"]


def test_a_failed_wait_still_releases_and_is_reported_next(lib):
    lib.emu_inject_fault(b"ReluForward")
    x = np.ones(4, np.float32)
    emu.Emulated().relu(x)  # the injected fault: sticky, as on a GPU
    lib.emu_clear_log()
    lib.emu_release_imported(2)  # the wait fails; no exception escapes the deleter, the producer gets its tensor
    assert lib.emu_log().split()[-1:] == [b"deleted"]
    lib.emu_clear_fault()
    with pytest.raises(RuntimeError, match="earlier error.*ReluForward|ReluForward.*earlier error"):
        emu.Emulated().relu(x)
    emu.Emulated().relu(x)  # reported once


# -- exported memory is not handed out again while another library may read it --------------------------
def test_exported_arrays_are_not_reused_before_the_device_is_idle(fake_gpu):
    nbytes = 777_777
    gc.collect()
    hdl.cuda.empty_cache()  # no block left by other tests: the cache holds only this test's
    a = hdl.cuda.empty(nbytes, np.uint8)
    p = a.ptr
    del a
    gc.collect()
    before = hdl.cuda.memory_stats()
    b = hdl.cuda.empty(nbytes, np.uint8)  # not exported: reused at once (hdl's stream orders it)
    assert b.ptr == p and hdl.cuda.memory_stats()["device_syncs"] == before["device_syncs"]

    interface = b.__cuda_array_interface__  # a consumer (CuPy, Numba, PyTorch) now reads it on its streams
    assert interface["data"] == (p, False)
    del b, interface
    gc.collect()
    lent = hdl.cuda.memory_stats()
    assert lent["exported_pending_bytes"] >= nbytes
    c = hdl.cuda.empty(nbytes, np.uint8)  # the block comes back only after a device-wide synchronisation
    after = hdl.cuda.memory_stats()
    assert after["device_syncs"] == lent["device_syncs"] + 1 and after["exported_pending_bytes"] == 0
    assert c.ptr == p
    d = hdl.cuda.empty(nbytes, np.uint8)
    assert d.ptr != p


# -- kernel faults are reported with the kernel's name ---------------------------------------------------
def test_a_kernel_fault_is_reported_at_the_next_call_naming_the_kernel(fake_gpu, lib):
    x = hdl.cuda.DeviceArray.from_numpy(np.ones((2, 3), np.float32))
    lib.emu_inject_fault(b"ReluForward")
    y = hdl.cuda.ops.relu(x)  # queued: the fault is not known yet
    with pytest.raises(RuntimeError, match=r"a kernel failed: cudaErrorIllegalAddress.*ReluForward.*HDL_CUDA_SYNC"):
        y.numpy()


def test_sync_launches_names_the_failing_kernel_at_its_launch(fake_gpu, lib):
    x = hdl.cuda.DeviceArray.from_numpy(np.ones((3, 4), np.float32))
    hdl.cuda.sync_launches(True)
    lib.emu_inject_fault(b"gemm:BiasActivation")
    W, b = hdl.cuda.DeviceArray.from_numpy(np.ones((2, 3), np.float32)), hdl.cuda.zeros(2)
    with pytest.raises(RuntimeError, match=r"kernel gemm:BiasActivation failed: cudaErrorIllegalAddress"):
        hdl.cuda.ops.dense_forward(W, b, x, "relu")


def test_environment_variables_choose_sync_and_device():
    code = ("from cuda_emu import emu, fake_cuda as f; import numpy as np; lib = f.lib(); "
            "lib.emu_set_device_count(2); print('device', f.current_device()); "
            "lib.emu_inject_fault(b'ReluForward'); emu.Emulated().relu(np.ones(3, np.float32))")
    rc, out = run_python(code, HDL_CUDA_SYNC="1", HDL_DEVICE="1")
    assert rc != 0 and "device 1" in out and "kernel ReluForward failed" in out and "HDL_CUDA_SYNC" in out, out
    rc, out = run_python("from cuda_emu import fake_cuda as f; f.current_device()", HDL_DEVICE="gpu1")
    assert rc != 0 and "HDL_DEVICE must be a GPU number" in out and "gpu1" in out, out


# -- destructors never throw ---------------------------------------------------------------------------------
def test_freeing_memory_never_throws_and_the_error_comes_next():
    code = ("import ctypes; from cuda_emu import fake_cuda as f; lib = f.lib(); "
            "lib.emu_scratch(ctypes.c_size_t(1000)); "  # Scratch's destructor gives it back
            "lib.emu_device_free(ctypes.c_void_p(12345)); print('survived'); "  # a pointer hdl never gave out
            "f.Buffer(16)")
    rc, out = run_python(code)
    assert "survived" in out and "terminate" not in out, out
    assert rc != 0 and "RuntimeError" in out and "freeing a pointer the allocator does not own" in out, out


# -- device choice -------------------------------------------------------------------------------------------
def test_set_device_and_the_device_reported_to_consumers(fake_gpu, lib):
    _cuda = pytest.importorskip("hdl._cuda", reason="hdl was built without CUDA (HDL_CUDA=OFF)")
    lib.emu_set_device_count(2)
    try:
        with pytest.raises(ValueError, match=r"set_device\(2\): this machine has 2 GPUs"):
            hdl.cuda.set_device(2)
        with pytest.raises(TypeError, match="int"):
            hdl.cuda.set_device("1")
        a = hdl.cuda.zeros(3)
        assert a.device == 0 and a.__dlpack_device__() == (2, 0)
        with pytest.raises(RuntimeError, match="holds memory on GPU 0"):
            hdl.cuda.set_device(1)
        del a
        gc.collect()
        hdl.cuda.empty_cache()
        hdl.cuda.set_device(1)
        assert hdl.cuda.current_device() == 1
        b = hdl.cuda.zeros((2, 3))
        assert lib.emu_current_device() == 1  # made current on this thread
        assert b.device == 1 and b[1].device == 1 and b.reshape(6).device == 1
        assert b.__dlpack_device__() == (2, 1)
        info = _cuda.dlpack_import(b.__dlpack__(max_version=(1, 0)))
        assert info["device"] == (2, 1)

        class OnGpu0:
            def __dlpack_device__(self):
                return (2, 0)

            def __dlpack__(self, **kwargs):
                raise AssertionError("not to be asked")
        with pytest.raises(ValueError, match="on GPU 0; hdl uses GPU 1"):
            hdl.cuda.from_dlpack(OnGpu0())
        del b, info
        gc.collect()
        hdl.cuda.empty_cache()
    finally:
        hdl.cuda.set_device(0)
        lib.emu_set_device_count(1)


# -- the GEMM's grid: the large dimension on x -----------------------------------------------------------------
def test_gemm_grid_puts_the_rows_on_x(lib):
    grid = (ctypes.c_uint * 3)()

    def geometry(M, N, K):
        if lib.emu_gemm_grid(M, N, K, grid):
            raise RuntimeError(lib.emu_last_error().decode())
        return tuple(grid)
    M = 65535 * 128 + 1  # more row tiles than grid.y takes, with either tile
    assert geometry(M, 64, 9) == (65535 * 2 + 1, 1, 1)  # 64x64 tiles
    assert geometry(M, 10, 9) == (65536, 1, 1)  # 128x32 tiles for a narrow output
    assert geometry(5, 1000, 9) == (1, 8, 1)  # 32x128 tiles for few rows
    with pytest.raises(RuntimeError, match="too large for one launch"):
        geometry(100, 65536 * 64 + 1, 1)


def test_gemm_on_a_grid_of_many_blocks_both_ways(lib):
    rng = np.random.default_rng(0)
    W, a = rng.standard_normal((300, 7), np.float32), rng.standard_normal((7, 150), np.float32)
    b = rng.standard_normal(300, np.float32)
    y = emu.Emulated().dense_forward(W, b, a, "linear")  # 5 x 3 tiles of 64x64
    np.testing.assert_allclose(y, W @ a + b[:, None], rtol=1e-5, atol=1e-5)


# -- uploads on the copy stream: ordered by events, overlapping the previous step ---------------------------
def _happens_before(trace):
    """after[i]: the operations that operation i is ordered before (its stream's order and event waits)."""
    succ = {i: set() for i in range(len(trace))}
    last = {}
    for i, op in enumerate(trace):
        if op["stream"] in last:
            succ[last[op["stream"]]].add(i)
        last[op["stream"]] = i
        if op["op"] == "wait":
            succ[op["event"]].add(i)
    after = {}
    for i in reversed(range(len(trace))):
        after[i] = set().union(*({j} | after[j] for j in succ[i])) if succ[i] else set()
    return after


def test_uploads_wait_for_readers_and_overlap_the_previous_step(fake_gpu):
    fake_gpu.trace.clear()
    up = hdl.cuda.Uploader()
    batches = [np.full((2, 5), k, np.float32) for k in range(5)]
    for k, batch in enumerate(batches):
        x = up(batch)
        np.testing.assert_array_equal(hdl.cuda.ops.relu(x).numpy(), batch)  # the step of batch k reads x
    trace = fake_gpu.trace
    after = _happens_before(trace)
    copies = [i for i, op in enumerate(trace) if op["op"] == "copy"]
    kernels = [i for i, op in enumerate(trace) if op["op"] == "kernel" and op["name"] == "emu_relu_forward"]
    assert len(copies) == len(kernels) == 5
    for k, (c, kern) in enumerate(zip(copies, kernels)):
        (dst,) = trace[c]["ptrs"]
        assert dst in trace[kern]["ptrs"]
        assert kern in after[c]  # the step reads the batch after its copy
        for j in range(k):  # earlier steps that read the same device buffer finish before it is overwritten
            if dst in trace[kernels[j]]["ptrs"]:
                assert c in after[kernels[j]], (k, j)
        if k >= 2:  # (the first copy into each new buffer waits for everything queued)
            assert c not in after[kernels[k - 1]]  # the copy of batch k may run during the step of batch k-1
    assert len({next(iter(trace[c]["ptrs"])) for c in copies}) == 2  # two device buffers, in turn
