"""The CUDA backend where there is no GPU (these run everywhere): importing never fails, the reason
is given, device memory is refused with it, argument checks come first, and the DLPack capsules of
hdl._cuda are read and written correctly (checked on host memory with numpy as the peer)."""
import numpy as np
import pytest

import hdl
import hdl.cuda
from hdl.convnet import cifar_net


def test_is_available_never_raises_and_says_why():
    available = hdl.cuda.is_available()
    assert isinstance(available, bool)
    why = hdl.cuda.why_unavailable()
    assert (why is None) == available
    if not available:
        assert "CUDA" in why


@pytest.mark.skipif(hdl.cuda.is_available(), reason="a GPU is present")
def test_device_memory_is_refused_with_the_reason():
    with pytest.raises(RuntimeError, match="CUDA"):
        hdl.cuda.DeviceArray.from_numpy(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="CUDA"):
        hdl.cuda.empty((2, 2))
    with pytest.raises(RuntimeError, match="CUDA"):
        cifar_net(device="cuda")
    with pytest.raises(RuntimeError, match="CUDA"):
        hdl.cuda.synchronize()
    hdl.cuda.set_tf32(False)  # harmless without a GPU
    hdl.cuda.empty_cache()


def test_ops_check_arguments_before_touching_the_device():
    x = np.ones((1, 4, 4, 3), np.float32)
    with pytest.raises(TypeError, match="DeviceArray"):
        hdl.cuda.ops.conv2d(x, np.ones((2, 3, 3, 3), np.float32), np.ones(2, np.float32))
    with pytest.raises(TypeError, match="DeviceArray"):
        hdl.cuda.ops.relu(x)
    with pytest.raises(ValueError, match="form"):
        hdl.cuda.ops.sgd_momentum_([], [], [], lr=0.1, form="adam")
    with pytest.raises(ValueError, match="device must be"):
        cifar_net().to("tpu")
    net = cifar_net()
    assert net.to("cpu") is net  # the host model itself


_cuda = pytest.importorskip("hdl._cuda", reason="hdl was built without CUDA (HDL_CUDA=OFF)")


class Producer:
    """Hands out a given capsule, as a DLPack producer on the CPU would."""

    def __init__(self, capsule):
        self.capsule = capsule

    def __dlpack__(self, **kwargs):
        return self.capsule

    def __dlpack_device__(self):
        return (1, 0)


@pytest.mark.parametrize("versioned", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.uint8])
def test_exported_capsules_are_read_by_numpy(versioned, dtype):
    a = np.arange(24).astype(dtype).reshape(2, 3, 4)
    capsule = _cuda.dlpack_export(a, a.ctypes.data, list(a.shape), {"f": 2, "i": 0, "u": 1}[a.dtype.kind],
                                  a.dtype.itemsize * 8, 1, 0, versioned)
    b = np.from_dlpack(Producer(capsule))
    assert b.ctypes.data == a.ctypes.data and b.dtype == a.dtype
    np.testing.assert_array_equal(b, a)


def test_export_keeps_the_owner_alive_until_the_consumer_is_done():
    import gc
    import sys
    a = np.arange(6, dtype=np.float32)
    before = sys.getrefcount(a)
    capsule = _cuda.dlpack_export(a, a.ctypes.data, [6], 2, 32, 1, 0, True)
    assert sys.getrefcount(a) == before + 1
    b = np.from_dlpack(Producer(capsule))
    del capsule
    gc.collect()
    assert sys.getrefcount(a) == before + 1  # numpy's b holds the tensor
    del b
    gc.collect()
    assert sys.getrefcount(a) == before
    unconsumed = _cuda.dlpack_export(a, a.ctypes.data, [6], 2, 32, 1, 0, False)
    del unconsumed  # never consumed: the capsule's destructor frees it
    gc.collect()
    assert sys.getrefcount(a) == before


@pytest.mark.parametrize("max_version", [None, (1, 0)])
def test_imported_capsules_describe_numpy_arrays(max_version):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)[:, 1:]  # strided: byte offset and strides
    capsule = a.__dlpack__() if max_version is None else a.__dlpack__(max_version=max_version)
    info = _cuda.dlpack_import(capsule)
    assert info["ptr"] == a.ctypes.data
    assert info["shape"] == (3, 3)
    assert info["strides"] in ((4, 1), None)
    assert info["dtype"] == (2, 32, 1)
    assert info["device"] == (1, 0)
    with pytest.raises(TypeError, match="unconsumed"):
        _cuda.dlpack_import(capsule)  # already consumed
    from hdl.cuda.array import _wrap_capsule
    with pytest.raises(ValueError, match="C-contiguous"):
        _wrap_capsule(info)
    ok = _wrap_capsule(_cuda.dlpack_import(np.ones((2, 5), np.int64).__dlpack__()))
    assert ok.shape == (2, 5) and ok.dtype == np.int64
