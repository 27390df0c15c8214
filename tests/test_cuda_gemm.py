"""The CUDA GEMM's loads (csrc/cuda/gemm.cuh) in the host emulation, against NumPy: float4 groups where the
loader allows them (16-byte aligned pointer, rows a multiple of 4 apart) and the scalar path elsewhere
(misaligned views, odd row spacings, the narrow operand of a narrow tile), groups cut by every edge (M, N, K
not multiples of 4 or of the tile, K under one slice), split-K, the three tile shapes, both loaders on both
sides, and both shared-memory stages (the emulation fills a stage with NaN before it is stored, so a cell
left unwritten shows). The float4 loads are counted, exactly, and none may come from a misaligned address
(a fault on the GPU)."""
import ctypes

import numpy as np
import pytest
from cuda_emu import emu

from hdl import ops

pytestmark = pytest.mark.skipif(emu.NVCC is None, reason="no nvcc to build the host emulation of the CUDA kernels")

TILES = {"square": (64, 64), "tall": (128, 32), "wide": (32, 128)}


def tile_of(M, N):
    return "tall" if N <= 32 else "wide" if M <= 32 else "square"


def operand(rng, rows, cols, transposed=False, pad=0, shift=0):
    """A rows x cols float32 matrix stored row-major (or, transposed, as the transpose of a cols x rows one)
    with `pad` spare floats a row, starting `shift` floats past a 64-byte boundary."""
    r, c = (cols, rows) if transposed else (rows, cols)
    buf = np.zeros(r * (c + pad) + shift + 16, np.float32)
    start = (-buf.ctypes.data % 64) // 4 + shift
    store = buf[start:start + r * (c + pad)].reshape(r, c + pad)[:, :c]
    store[...] = rng.standard_normal((r, c), np.float32)
    return store.T if transposed else store


def vec4_loads(M, N, K, a_vec, b_vec, a_t, b_t):
    """The float4 loads the GEMM makes: every group of four inside the matrix, once per block that reads it.
    A group runs along the operand's memory order (k for a stored A, m for a transposed one; n for a stored
    B, k for a transposed one); the narrow side of a narrow tile is read by the scalar path."""
    tile = tile_of(M, N)
    BM, BN = TILES[tile]
    blocks_n, blocks_m = -(-N // BN), -(-M // BM)
    a = (K * (M // 4) if a_t else M * (K // 4)) * blocks_n if a_vec and tile != "wide" else 0
    b = (N * (K // 4) if b_t else K * (N // 4)) * blocks_m if b_vec and tile != "tall" else 0
    return a + b


def check(M, N, K, a_t=False, b_t=False, a_pad=0, b_pad=0, a_shift=0, b_shift=0, parts=1, seed=0):
    rng = np.random.default_rng(seed)
    a = operand(rng, M, K, a_t, a_pad, a_shift)
    b = operand(rng, K, N, b_t, b_pad, b_shift)
    got, (loads, misaligned) = emu.gemm(a, b, parts)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, np.sqrt(K)))
    assert misaligned == 0
    a_vec = a_shift % 4 == 0 and ((M if a_t else K) + a_pad) % 4 == 0
    b_vec = b_shift % 4 == 0 and ((K if b_t else N) + b_pad) % 4 == 0
    assert loads == vec4_loads(M, N, K, a_vec, b_vec, a_t, b_t)
    return loads


@pytest.mark.parametrize("a_t", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("b_t", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("M,N,K", [(128, 128, 64), (256, 32, 48), (32, 256, 48)], ids=TILES)
def test_aligned_operands_are_read_in_float4s(M, N, K, a_t, b_t):
    assert check(M, N, K, a_t, b_t) > 0


@pytest.mark.parametrize("a_t", [False, True], ids=["A", "At"])
@pytest.mark.parametrize("b_t", [False, True], ids=["B", "Bt"])
@pytest.mark.parametrize("M,N,K", [(67, 45, 37), (130, 29, 21), (7, 133, 19), (97, 70, 3), (65, 66, 15)],
                         ids=["square", "tall", "wide", "K3", "K15"])
def test_groups_cut_by_the_edges(M, N, K, a_t, b_t):
    """Rows spaced by a multiple of 4 (padded), so the float4 path runs up to the edges, whatever M, N, K."""
    pad = lambda n: -n % 4  # noqa: E731
    check(M, N, K, a_t, b_t, a_pad=pad(M if a_t else K), b_pad=pad(K if b_t else N))


@pytest.mark.parametrize("a_shift,b_shift", [(1, 0), (0, 2), (3, 1)])
@pytest.mark.parametrize("a_t,b_t", [(False, False), (True, True)], ids=["A.B", "At.Bt"])
def test_misaligned_views_take_the_scalar_path(a_shift, b_shift, a_t, b_t):
    check(100, 72, 40, a_t, b_t, a_shift=a_shift, b_shift=b_shift)


@pytest.mark.parametrize("a_pad,b_pad", [(1, 0), (0, 2), (3, 1)])
@pytest.mark.parametrize("a_t,b_t", [(False, False), (True, False), (False, True)])
def test_rows_not_a_multiple_of_4_apart_take_the_scalar_path(a_pad, b_pad, a_t, b_t):
    loads = check(68, 72, 40, a_t, b_t, a_pad=a_pad, b_pad=b_pad)  # rows 41, 69, 74, ... floats apart
    assert (loads == 0) == (a_pad > 0 and b_pad > 0)


@pytest.mark.parametrize("M,N,K,parts", [(40, 36, 1100, 3), (130, 20, 700, 4), (20, 150, 333, 2), (64, 64, 40, 5)])
@pytest.mark.parametrize("b_t", [False, True], ids=["B", "Bt"])
def test_split_k(M, N, K, parts, b_t):
    check(M, N, K, False, b_t, b_pad=-(K if b_t else N) % 4, parts=parts, a_pad=-K % 4)


def test_exact_count_of_one_square_tile():
    """64 x 64 x 32, both stored: one block, two slices, each 256 groups of A and 256 of B."""
    assert check(64, 64, 32) == 4 * 256


def shifted(a, shift):
    """A copy of a starting `shift` floats past a 16-byte boundary."""
    buf = np.zeros(a.size + 8, np.float32)
    start = (-buf.ctypes.data % 16) // 4 + shift
    out = buf[start:start + a.size].reshape(a.shape)
    out[...] = a
    return out


def vec4_count():
    count = (ctypes.c_longlong * 2)()
    emu.load().emu_vec4_count(count)
    return tuple(count)


@pytest.mark.parametrize("C,O,shift,vector", [(8, 12, 0, True), (3, 5, 0, False), (8, 12, 1, False)],
                         ids=["channels-by-4", "odd-channels", "misaligned"])
def test_convolutions_read_float4s_where_channels_allow(C, O, shift, vector):
    """Implicit GEMM: im2col, the data gradient's gather and dy^T in float4s when the channels come in fours
    and the arrays are aligned, element by element otherwise; the same results either way."""
    rng = np.random.default_rng(0)
    x, dy = (shifted(rng.standard_normal(s, np.float32), shift) for s in ((2, 7, 6, C), (2, 7, 6, O)))
    w, b = rng.standard_normal((O, C, 3, 3), np.float32), rng.standard_normal(O, np.float32)
    dev = emu.Emulated()
    vec4_count()
    y = dev.conv2d(x, w, b, 1, 1)
    grads = dev.conv2d_backward(dy, x, w, 1, 1)
    loads, misaligned = vec4_count()
    assert misaligned == 0 and (loads > 0) == vector
    tol = dict(rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(y, ops.conv2d(x, w, b, 1, 1, layout="NHWC"), **tol)
    for got, want in zip(grads, ops.conv2d_backward(dy, x, w, 1, 1, layout="NHWC")):
        np.testing.assert_allclose(got, want, **tol)
