"""Perceptual hashes and pixel heuristics of images, computed once per file and cached on disk.

One small decode per image gives everything the quality tools need:

* ``phash``: the 64-bit DCT perceptual hash (as ``imagehash.phash``: greyscale 32x32, the 8x8
  lowest frequencies against their median; see ``phash_of`` for the one change). Resized,
  re-encoded and colour-jittered copies land within a few bits; a 2-6% crop within ~10; different
  photos ~30 bits apart. Needs numpy (``pip install 'vlmdata[quality]'``); without it ``phash``
  is None.
* ``std``: the standard deviation of the greyscale thumbnail (0-255): ~0 for blank images.
* ``pad``: the fraction of the image covered by uniform bands along its edges (letterbox or
  padding), from the same thumbnail.

Decoding is cheap for JPEG: ``draft("L", ...)`` decodes the luminance only, DCT-scaled by 1/2 to
1/8 (``bench/dedup.py``: ~1.7x the speed of a plain full decode and ~4x that of a full decode
followed by ``imagehash.phash``); other formats are decoded and reduced. Results are stored by
(path, size, mtime_ns) in the table ``visual_hashes`` of ``media.cache``'s SQLite file, next to the
header probes of ``media.inspect``.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageStat

from vlmdata.errors import VlmdataError
from vlmdata.media.cache import FileCache, Memo, cache_location

VISUAL_VERSION = 5  # bump when what is computed changes: old rows are then ignored
THUMB = 128  # thumbnail side the heuristics and the hash start from
BAND_TOLERANCE = 10  # a padding row/column: max - min of its grey values at most this
HASH_BITS = 64
QUALITY_EXTRA = "pip install 'vlmdata[quality]'"


@dataclass(slots=True, frozen=True)
class Visual:
    """What one decode of an image found; ``error`` says why nothing was (missing, unreadable)."""

    phash: int | None = None  # 64-bit unsigned
    std: float | None = None
    pad: float | None = None
    error: str | None = None


@functools.cache
def have_hashing() -> bool:
    """numpy (the ``quality`` extra) is there: perceptual hashes can be computed."""
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def require_hashing(what: str) -> None:
    """Raise a VlmdataError naming the extra when numpy is missing (the CLI exits 2)."""
    if not have_hashing():
        raise VlmdataError(f"{what} needs perceptual image hashes (numpy): {QUALITY_EXTRA}")


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def thumbnail(path: str) -> Image.Image:
    """A greyscale copy at most THUMB px wide/high, decoded as little as the format allows."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("L", (THUMB, THUMB))  # DCT scaling, luminance only: ~1.7x cheaper than a full decode
            elif im.mode not in ("L", "RGB", "RGBA", "LA", "P", "1", "I", "I;16", "F", "CMYK", "YCbCr"):
                im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS, reducing_gap=None)
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                flat = Image.new("RGBA", im.size, (255, 255, 255, 255))  # transparent = white, as most viewers
                flat.alpha_composite(im)
                im = flat
            return im.convert("L")


ZERO_BAND = 0.05  # DCT coefficients under this share of the AC spread count as exactly 0
_DCT: Any = None


def phash_of(grey: Image.Image) -> int | None:
    """The 64-bit DCT hash of ``grey``: 32x32 Lanczos, 2-D DCT-II, the 8x8 lowest frequencies
    against their median (imagehash's ``phash``), with one change: coefficients within
    ``ZERO_BAND`` of the AC spread are set to 0 first. Symmetric drawings on flat backgrounds have
    dozens of exactly-zero coefficients and a zero median; without the band, resampling noise flips
    them at random (a resized copy of such an image landed 21 bits away, now 0)."""
    try:
        import numpy as np
    except ImportError:
        return None
    global _DCT
    if _DCT is None:
        k = np.arange(32)
        _DCT = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 64)
    px = np.asarray(grey.resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = (_DCT @ px @ _DCT.T)[:8, :8].ravel()
    low = np.where(np.abs(low) < ZERO_BAND * low[1:].std(), 0.0, low)
    return int.from_bytes(np.packbits(low > np.median(low)).tobytes(), "big")


def padding_fraction(grey: Image.Image) -> float:
    """Share of the image in uniform bands along its four edges (rows/columns whose grey values
    span at most BAND_TOLERANCE and match the edge's first line)."""
    w, h = grey.size
    rows = grey.tobytes()
    cols = grey.transpose(Image.Transpose.TRANSPOSE).tobytes()

    def band(data: bytes, length: int, count: int, order: range) -> int:
        first: int | None = None
        n = 0
        for k in order:
            line = data[k * length : (k + 1) * length]
            lo, hi = min(line), max(line)
            if hi - lo > BAND_TOLERANCE:
                break
            mid = (lo + hi) // 2
            if first is None:
                first = mid
            elif abs(mid - first) > BAND_TOLERANCE:
                break
            n += 1
        return n

    top = band(rows, w, h, range(h))
    if top == h:
        return 1.0
    bottom = band(rows, w, h, range(h - 1, -1, -1))
    left = band(cols, h, w, range(w))
    right = band(cols, h, w, range(w - 1, -1, -1))
    inner = max(0, h - top - bottom) * max(0, w - left - right)
    return 1 - inner / (w * h)


def compute_visual(path: str) -> Visual:
    """Hash and heuristics of one local image file (never raises for bad data)."""
    try:
        grey = thumbnail(path)
    except FileNotFoundError:
        return Visual(error="not found")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Visual(error="too large (decompression bomb guard)")
    except Exception as exc:  # Pillow raises many types for bad files
        return Visual(error=f"cannot be decoded: {type(exc).__name__}: {exc}")
    std = ImageStat.Stat(grey).stddev[0]
    return Visual(phash_of(grey), round(std, 3), round(padding_fraction(grey), 4))


# --------------------------------------------------------------------------- the cache


def _signed(v: int | None) -> int | None:
    return None if v is None else v - (1 << 64) if v >= 1 << 63 else v


def _unsigned(v: int | None) -> int | None:
    return None if v is None else v + (1 << 64) if v < 0 else v


class VisualCache(FileCache):
    """(path, size, mtime_ns) -> Visual in the cache file (``media.cache``), next to the header probes."""

    NAME = "visual cache"
    TABLE = "visual_hashes"
    COLUMNS = "version INTEGER NOT NULL, phash INTEGER, std REAL, pad REAL, error TEXT"

    def get_many(self, keyed: list[tuple[str, int, int]]) -> dict[str, Visual]:
        return {
            path: Visual(_unsigned(ph), std, pad, error)
            for path, _size, (version, ph, std, pad, error) in self.rows(keyed)
            if version == VISUAL_VERSION
        }

    def put_many(self, rows: Iterable[tuple[str, int, int, Visual]]) -> None:
        self.put_rows((p, s, m, VISUAL_VERSION, _signed(v.phash), v.std, v.pad, v.error) for p, s, m, v in rows)


class ImageHasher:
    """Visuals of many images: cached on disk, computed in threads (Pillow decodes without the GIL).

    ``computed`` and ``cache_hits`` count the files decoded and the cache rows used.
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        threads: int | None = None,
        *,
        cache: bool = True,
        cache_file: str | None = None,
    ) -> None:
        self.threads = max(1, threads or min(8, os.cpu_count() or 1))
        file = cache_file if cache_file is not None else cache_location(cache_dir)
        self._cache = VisualCache(file if cache else None)
        self._seen: Memo[Visual] = Memo(200_000)  # room for every image of a dataset (dedup, overlap)
        self.computed = 0
        self.cache_hits = 0
        self.seconds = 0.0

    def get_many(self, paths: Iterable[str]) -> dict[str, Visual]:
        started = time.perf_counter()
        found, todo = self._seen.split(paths, Visual(error="remote (not downloaded)"))
        out: dict[str, Visual] = found  # type: ignore[assignment]  # the Nones of ``todo`` are filled below
        keyed: list[tuple[str, int, int]] = []
        for p in todo:
            try:
                st = os.stat(p)
            except (OSError, ValueError):
                out[p] = Visual(error="not found")
                continue
            if not os.path.isfile(p):
                out[p] = Visual(error="not a file")
                continue
            keyed.append((os.path.abspath(p), st.st_size, st.st_mtime_ns))
            out[p] = Visual()  # placeholder, filled below
        by_key = {k[0]: k for k in keyed}
        cached = self._cache.get_many(keyed)
        if have_hashing():  # rows written without numpy lack the hash: compute them again
            cached = {k: v for k, v in cached.items() if v.phash is not None or v.error is not None}
        self.cache_hits += len(cached)
        misses = [k for k in keyed if k[0] not in cached]
        fresh: dict[str, Visual] = {}
        if misses:
            if self.threads > 1 and len(misses) > 16:
                with ThreadPoolExecutor(self.threads) as pool:
                    results = list(pool.map(compute_visual, [k[0] for k in misses], chunksize=16))
            else:
                results = [compute_visual(k[0]) for k in misses]
            self.computed += len(misses)
            fresh = {k[0]: v for k, v in zip(misses, results, strict=True)}
            self._cache.put_many((k[0], k[1], k[2], fresh[k[0]]) for k in misses if fresh[k[0]].error is None)
        for p in list(out):
            key = os.path.abspath(p)
            if key in by_key:
                out[p] = cached.get(key) or fresh[key]
        self._seen.remember(out)
        self.seconds += time.perf_counter() - started
        return out

    def get(self, path: str) -> Visual:
        return self.get_many([path])[path]

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> ImageHasher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
