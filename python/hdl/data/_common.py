"""What the data loaders share: the error they raise, checksums, where data sets are looked for, and
the download (urllib, with a timeout and a clear error offline)."""
from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
from pathlib import Path


class DataError(ValueError):
    """The data set is missing, incomplete or corrupt."""


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()  # a checksum, not security (FIPS machines)


def cache_dir() -> Path:
    """~/.cache/hdl, where downloads go."""
    return Path.home() / ".cache" / "hdl"


def candidates(root=None):
    """The folders to search, in order: `root` alone when given; else $HDL_DATA, the cache
    ~/.cache/hdl, and ../shared/data of a development checkout."""
    if root is not None:
        yield Path(root)
        return
    if os.environ.get("HDL_DATA"):
        yield Path(os.environ["HDL_DATA"])
    yield cache_dir()
    for up in Path(__file__).resolve().parents:
        yield up / "shared" / "data"
        yield up.parent / "shared" / "data"


def locate(root, folder: str, archive: str, marker: str, what: str, looks: str) -> Path | None:
    """Where a data set of one binary folder or archive is: the first of the candidate folders (or root)
    that holds the file `marker` (itself, or its subfolder `folder`), or the archive there; None when
    nowhere and no root was given; a DataError naming root (and what `looks` like) when it was."""
    for base in candidates(root):
        for path in (base, base / folder, base / archive):
            if path.is_dir() and (path / marker).exists():
                return path
            if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
                return path
    if root is not None:
        raise DataError(f"{root}: no {what} there ({looks})")
    return None


def fetch(url: str, what: str, expected_md5: str | None, timeout: float = 30.0) -> bytes:
    """The bytes at url, checked against expected_md5; a DataError that says what to do when offline."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read()
    except (OSError, http.client.HTTPException) as err:  # offline, refused, or cut off mid-way
        raise DataError(f"{what} is not on this machine and {url} cannot be reached ({err}); download it yourself "
                        "and pass its folder with --data or HDL_DATA") from None
    if expected_md5 and md5(raw) != expected_md5:
        raise DataError(f"{url}: the download has MD5 {md5(raw)}, not the official {expected_md5}")
    return raw


def write_atomically(path: Path, raw: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(raw)
    os.replace(tmp, path)
    return path
