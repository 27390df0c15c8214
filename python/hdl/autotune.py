"""Measured algorithm choices for the CPU convolutions, kept per machine.

A convolution that one GEMM does not serve runs on the direct kernel, as an implicit GEMM, or (3x3 and 5x5,
stride 1) by Winograd's minimal filtering (the README's table of algorithms). Which is fastest depends on the
processor as much as on the shape: the direct forward pass ran 1.15-1.56x slower than the implicit GEMM on
128-256 channels on an Intel Xeon, and 1.04-1.16x faster on an AMD EPYC; and Winograd, which the rules choose
by counting multiplications, lost to both on the few tiles of a batch of 1 (16x16x128 -> 128 3x3: 0.59 against
0.44 ms). So the first call of each shape (of at least 2**20 multiply-adds) times the candidates on its own
data, three times each, and keeps the fastest (the rule's choice where two are within 3%) for every later
call (hdl/autotune.hpp): for each pass, Winograd or not, where the rules offer Winograd; for a strided data
gradient, its sub-pixel convolutions or one GEMM and a gather (col2im); then the direct kernel or the implicit GEMM.
An inference pass (``hdl.ops.keeping_filters``, which ``Model.forward`` enters) over filters unchanged since its
last pass chooses its forward pass's algorithms again, under passes of their own (``conv_kept``,
``winograd_forward_kept``), timed reading the filters kept: without their packing and transform, Winograd wins on a few tiles (a batch of one
8x8x256 -> 256 3x3: 0.22 against 0.49 ms) where training's timing, which makes them each call, refuses it.

This module keeps those choices across processes: the first convolution of a process loads the file for this
machine, and the process saves what it measured when it exits (merged with the file, replaced atomically).

- ``HDL_AUTOTUNE=0``: measure nothing; the shape rules decide. Use it where results must not depend on a cache:
  the algorithms round differently (a process's results depend only on its recorded choices).
- ``HDL_CONV_IMPLICIT=0/1``, ``HDL_CONV_WINOGRAD=0/1`` and ``HDL_CONV_COL2IM=0/1`` (the tests' and benchmarks'
  switches) force an algorithm either way.
- ``HDL_AUTOTUNE_CACHE=path``: the file to use, in place of ``~/.cache/hdl/autotune-<machine>.json``
  (``$XDG_CACHE_HOME`` respected); the machine is the processor's model, the instruction set and hdl's version.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import platform
import tempfile
import warnings
from pathlib import Path
from typing import Any

from hdl import _C

FORMAT = 1
ALGORITHMS = ("direct", "implicit_gemm", "winograd", "not_winograd", "subpixel", "col2im")
PASSES = ("conv", "filter_gradient", "winograd_forward", "winograd_data_gradient", "winograd_filter_gradient",
          "data_gradient", "conv_kept", "winograd_forward_kept")
# the two algorithms each pass chooses between (hdl/autotune.hpp's pass_chooses)
CHOICES = {"conv": ("direct", "implicit_gemm"), "filter_gradient": ("direct", "implicit_gemm"),
           "winograd_forward": ("winograd", "not_winograd"), "winograd_data_gradient": ("winograd", "not_winograd"),
           "winograd_filter_gradient": ("winograd", "not_winograd"), "data_gradient": ("subpixel", "col2im"),
           "conv_kept": ("direct", "implicit_gemm"), "winograd_forward_kept": ("winograd", "not_winograd")}
KEY_FIELDS = ("pass", "bytes", "threads", "N", "Hp", "Wp", "C", "Ho", "Wo", "O", "kh", "kw", "sh", "sw",
              "rows_lo", "rows_hi", "cols_lo", "cols_hi")

_loaded = False
_loaded_pairs: set[tuple[tuple[int, ...], int]] = set()


def enabled() -> bool:
    """Whether convolutions measure their algorithms (HDL_AUTOTUNE is not '0')."""
    return os.environ.get("HDL_AUTOTUNE") != "0"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str]:
    """What a choice was measured on: a file holds one machine's choices."""
    from hdl import __version__
    return {"cpu": _cpu_model(), "isa": _C.isa(), "hdl": __version__}


def cache_path() -> Path:
    """HDL_AUTOTUNE_CACHE, else autotune-<machine>.json in ~/.cache/hdl (or $XDG_CACHE_HOME/hdl)."""
    if os.environ.get("HDL_AUTOTUNE_CACHE"):
        return Path(os.environ["HDL_AUTOTUNE_CACHE"])
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha1(json.dumps(machine(), sort_keys=True).encode()).hexdigest()[:12]
    return root / "hdl" / f"autotune-{tag}.json"


def entries() -> list[dict[str, Any]]:
    """This process's choices, measured or loaded, one dict each: the key's fields by name and 'algorithm'."""
    out = []
    for key, algorithm in _C.autotune_entries():
        entry: dict[str, Any] = dict(zip(KEY_FIELDS, key))
        entry["pass"] = PASSES[entry["pass"]]
        entry["algorithm"] = ALGORITHMS[algorithm]
        out.append(entry)
    return out


def _check_entry(key: list[Any], algorithm: int) -> None:
    """ValueError unless key is 18 integers in range and the algorithm is one of its pass's two."""
    if len(key) != len(KEY_FIELDS) or not all(type(k) is int and 0 <= k < 2**62 for k in key):
        raise ValueError(f"a key is not {len(KEY_FIELDS)} non-negative integers: {key!r}")
    if key[0] >= len(PASSES) or ALGORITHMS[algorithm] not in CHOICES[PASSES[key[0]]]:
        raise ValueError(f"{ALGORITHMS[algorithm]!r} is not an algorithm of the pass {key[0]}")


def _read(path: Path) -> list[tuple[list[int], int]]:
    """The (key, algorithm) pairs of a cache file; none, with a warning, from a file that is not one."""
    try:
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT or data.get("machine") != machine():
            raise ValueError(f"written for {data.get('machine')} in format {data.get('format')}")
        pairs = [(list(key), ALGORITHMS.index(name)) for key, name in data["entries"]]
        for key, algorithm in pairs:
            _check_entry(key, algorithm)
        return pairs
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        warnings.warn(f"hdl.autotune: ignoring {path} ({e}); it will be rewritten", RuntimeWarning, stacklevel=2)
        return []


def load(path: str | os.PathLike[str] | None = None) -> int:
    """Record the choices saved in `path` (default cache_path()) in this process; returns how many."""
    pairs = _read(Path(path) if path is not None else cache_path())
    for key, algorithm in pairs:
        _C.autotune_record(key, algorithm)
    return len(pairs)


def save(path: str | os.PathLike[str] | None = None) -> Path:
    """Write this process's choices, merged over those already in `path` (default cache_path()), atomically:
    another process reading it meanwhile sees the old file or the new one, never a part."""
    path = Path(path) if path is not None else cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    # processes saving at once take turns (a side lock file), so that none drops what another merged
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = {tuple(key): algorithm for key, algorithm in _read(path)}
        merged.update((tuple(key), algorithm) for key, algorithm in _C.autotune_entries())
        body = {"format": FORMAT, "machine": machine(), "fields": list(KEY_FIELDS),
                "entries": [[list(key), ALGORITHMS[a]] for key, a in sorted(merged.items())]}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp's is 0600)
            with os.fdopen(fd, "w") as f:
                json.dump(body, f)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    return path


def clear(cache_file: bool = False) -> None:
    """Forget this process's choices (and delete the cache file too when cache_file)."""
    _C.autotune_clear()
    if cache_file:
        cache_path().unlink(missing_ok=True)


def _save_at_exit() -> None:
    if not set(_C.autotune_entries()) <= _loaded_pairs:  # something measured
        try:
            save()
        except OSError as e:
            warnings.warn(f"hdl.autotune: could not save the measured choices ({e})", RuntimeWarning, stacklevel=1)


def ensure_loaded() -> None:
    """Load this machine's choices once per process, and save them at exit (hdl.ops' convolutions call this)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    if enabled():
        load()
        _loaded_pairs.update(_C.autotune_entries())
        atexit.register(_save_at_exit)
