"""Image files for hdl predict: PNG and JPEG (read with Pillow, which matplotlib, the plot extra, depends
on), and .npy arrays (one image (H, W) or (H, W, C), or a stack (N, H, W[, C])), as uint8
pixel values 0..255 in (N, H, W, C). Images are never resized; channels change only when that loses
nothing: grey to RGB (the value in each channel), RGB whose channels are equal to grey, and an alpha
channel that is opaque everywhere is dropped."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PICTURES = (".png", ".jpg", ".jpeg")


def _read_picture(path: Path) -> np.ndarray:
    """PNG or JPEG pixels with Pillow (matplotlib's imread reads through Pillow too: the plot extra brings it)."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"{path}: reading PNG and JPEG images needs Pillow: pip install 'hdl-higham[plot]' "
                          "(matplotlib, which brings Pillow) or pip install pillow") from None
    with Image.open(path) as img:
        if img.mode not in ("L", "RGB", "RGBA"):
            img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else
                              "L" if img.mode in ("1", "I", "I;16", "F") else "RGB")
        return np.asarray(img)


def _as_pixels(a: np.ndarray, path) -> np.ndarray:
    """uint8 0..255 from uint8, other integers 0..255, or floats in [0, 1] (matplotlib's PNGs) or 0..255."""
    if a.dtype == np.uint8:
        return a
    if a.dtype.kind not in "iuf" or a.size == 0:
        raise ValueError(f"{path}: expected numbers (pixel values), got an array of {a.dtype} {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: the image has NaN or infinite values")
    if a.dtype.kind == "f" and a.min() >= 0 and a.max() <= 1:
        a = a * 255.0  # floats in [0, 1] are taken as fractions of full scale
    if a.min() < 0 or a.max() > 255:
        raise ValueError(f"{path}: pixel values must lie in 0..255 (or 0..1 as floats), found "
                         f"{a.min():g}..{a.max():g}")
    return np.rint(a).astype(np.uint8)


def _grey_stack(a: np.ndarray, size) -> bool:
    """Whether a 3-d array is a stack of grey images (N, H, W) rather than one image (H, W, C): its last
    two axes are the expected size (H, W), or, with none expected, its last axis is no channel count."""
    if size is not None:
        return a.shape[1:] == tuple(size) and a.shape[:2] != tuple(size)
    return a.shape[-1] not in (1, 3, 4)


def read_images(path, size=None) -> np.ndarray:
    """The image(s) in a file as uint8 (N, H, W, C) (C is 1 for grey); size, the (H, W) expected,
    tells a stack of grey images (N, H, W) in a .npy file from one image (H, W, C)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise ValueError(f"{path}: not a .npy array of numbers ({err})") from None
        if a.ndim not in (2, 3, 4):
            raise ValueError(f"{path}: expected an image (H, W) or (H, W, C) or a stack (N, H, W, C), got shape "
                             f"{a.shape}")
    elif suffix in PICTURES:
        a = _read_picture(path)
    else:
        raise ValueError(f"{path}: not an image hdl reads (PNG, JPEG or .npy)")
    a = _as_pixels(a, path)
    if a.ndim == 2 or (suffix == ".npy" and a.ndim == 3 and _grey_stack(a, size)):
        a = a[..., None]  # grey (H, W), or a stack of grey images (N, H, W)
    return a if a.ndim == 4 else a[None]


def fit_channels(images: np.ndarray, channels: int, path) -> tuple[np.ndarray, str]:
    """(images with `channels` channels, a note saying what was converted or ''); a ValueError when the
    conversion would be a guess (a colour image for a grey model, or a transparent one)."""
    c, note = images.shape[-1], []
    if c in (2, 4):  # grey or colour with alpha
        if np.any(images[..., -1] != 255):
            raise ValueError(f"{path}: the image has transparent pixels; hdl does not guess a background")
        images, c = images[..., :-1], c - 1
        note.append("dropped the opaque alpha channel")
    if c == channels:
        return images, "; ".join(note)
    if c == 1 and channels == 3:
        note.append("grey to RGB (the grey value in each channel)")
        return np.repeat(images, 3, axis=-1), "; ".join(note)
    if c == 3 and channels == 1:
        if np.all(images[..., :1] == images[..., 1:]):
            note.append("RGB with equal channels to grey")
            return images[..., :1], "; ".join(note)
        raise ValueError(f"{path}: a colour image, but the model takes grey images (1 channel); convert it to "
                         "grey yourself")
    raise ValueError(f"{path}: {c} channels, but the model takes {channels}")
