"""xoshiro256** seeded by splitmix64, Lemire's bounded integers and Fisher-Yates:
the generator of csrc/include/hdl/rng.hpp, draw for draw."""
import numba
import numpy as np

U64 = np.uint64
MASK32 = U64(0xFFFFFFFF)


@numba.njit(cache=True)
def _rotl(x, k):
    return (x << U64(k)) | (x >> U64(64 - k))


@numba.njit(cache=True)
def seed_state(seed):
    """Four words of splitmix64 from seed."""
    s = np.empty(4, dtype=np.uint64)
    x = U64(seed)
    for i in range(4):
        x = x + U64(0x9E3779B97F4A7C15)
        z = x
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        s[i] = z ^ (z >> U64(31))
    return s


@numba.njit(cache=True)
def next_u64(s):
    result = _rotl(s[1] * U64(5), 7) * U64(9)
    t = s[1] << U64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@numba.njit(cache=True)
def below(s, n):
    """Uniform in {0, ..., n-1}: Lemire's multiply-and-reject on the top 32 bits."""
    n = U64(n)
    m = (next_u64(s) >> U64(32)) * n
    low = m & MASK32
    if low < n:
        threshold = ((U64(1) << U64(32)) - n) % n
        while low < threshold:
            m = (next_u64(s) >> U64(32)) * n
            low = m & MASK32
    return np.int64(m >> U64(32))


@numba.njit(cache=True)
def shuffle(s, idx):
    """Fisher-Yates, from the last position down."""
    for i in range(idx.shape[0] - 1, 0, -1):
        j = below(s, i + 1)
        idx[i], idx[j] = idx[j], idx[i]


@numba.njit(cache=True)
def rng_below(seed, n, count):
    s = seed_state(seed)
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        out[i] = below(s, n)
    return out


@numba.njit(cache=True)
def rng_shuffle(seed, n):
    s = seed_state(seed)
    idx = np.arange(n)
    shuffle(s, idx)
    return idx
