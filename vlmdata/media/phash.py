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
followed by ``imagehash.phash``); other formats are decoded and reduced. Results are stored in
the probe cache's SQLite file (the table ``visual_hashes``, next to the header probes of
``media.inspect``) keyed by absolute path and valid while the file's (size, mtime_ns) are
unchanged; ``VLMDATA_CACHE_DIR=off`` disables it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageStat

from vlmdata.errors import VlmdataError
from vlmdata.media.inspect import PRUNE_DAYS, cache_location
from vlmdata.media.paths import is_remote

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visual_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, version INTEGER NOT NULL,
    phash INTEGER, std REAL, pad REAL, error TEXT, day INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"""
_BATCH = 500


def _signed(v: int | None) -> int | None:
    return None if v is None else v - (1 << 64) if v >= 1 << 63 else v


def _unsigned(v: int | None) -> int | None:
    return None if v is None else v + (1 << 64) if v < 0 else v


class VisualCache:
    """(path, size, mtime_ns) -> Visual in the probe cache's SQLite file; failures disable it."""

    def __init__(self, file: str | None) -> None:
        self.error: str | None = None
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if file is None:
            return
        try:
            os.makedirs(os.path.dirname(file), exist_ok=True)
            db = sqlite3.connect(file, timeout=30, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA busy_timeout = 30000")
            with contextlib.suppress(sqlite3.OperationalError):
                db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)
            self._db = db
        except (OSError, sqlite3.Error) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self.error = f"visual cache disabled: {exc}"
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None

    def get_many(self, keyed: list[tuple[str, int, int]]) -> dict[str, Visual]:
        if self._db is None or not keyed:
            return {}
        want = {p: (s, m) for p, s, m in keyed}
        paths = list(want)
        out: dict[str, Visual] = {}
        with self._lock:
            try:
                for i in range(0, len(paths), _BATCH):
                    part = paths[i : i + _BATCH]
                    rows = self._db.execute(
                        "SELECT path, size, mtime_ns, version, phash, std, pad, error FROM visual_hashes "
                        f"WHERE path IN ({','.join('?' * len(part))})",
                        part,
                    ).fetchall()
                    for path, size, mtime, version, ph, std, pad, error in rows:
                        if want[path] == (size, mtime) and version == VISUAL_VERSION:
                            out[path] = Visual(_unsigned(ph), std, pad, error)
            except sqlite3.Error as exc:
                self._fail(exc)
        return out

    def put_many(self, rows: Iterable[tuple[str, int, int, Visual]]) -> None:
        if self._db is None:
            return
        day = int(time.time() // 86400)
        data = [(p, s, m, VISUAL_VERSION, _signed(v.phash), v.std, v.pad, v.error, day) for p, s, m, v in rows]
        if not data:
            return
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO visual_hashes VALUES (?,?,?,?,?,?,?,?,?)", data)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
                self._fail(exc)

    def close(self) -> None:
        """Close, deleting rows written more than PRUNE_DAYS ago (recomputed when used again)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("DELETE FROM visual_hashes WHERE day < ?", (int(time.time() // 86400) - PRUNE_DAYS,))
                self._db.close()
            self._db = None


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
        self._seen: dict[str, Visual] = {}
        self.computed = 0
        self.cache_hits = 0
        self.seconds = 0.0

    def get_many(self, paths: Iterable[str]) -> dict[str, Visual]:
        started = time.perf_counter()
        out: dict[str, Visual] = {}
        keyed: list[tuple[str, int, int]] = []
        for p in paths:
            if p in out:
                continue
            hit = self._seen.get(p)
            if hit is not None:
                out[p] = hit
                continue
            if is_remote(p):
                out[p] = Visual(error="remote (not downloaded)")
                continue
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
        self._seen.update(out)
        if len(self._seen) > 200_000:
            self._seen.clear()
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
