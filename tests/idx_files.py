"""IDX files for the loader, CLI and example tests: the MNIST format of an uint8 array."""
import numpy as np


def idx_bytes(a) -> bytes:
    """magic 0x0000 08 ndim, the dimensions as big-endian 32-bit integers, then the bytes."""
    a = np.ascontiguousarray(a, np.uint8)
    return bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape) + a.tobytes()
