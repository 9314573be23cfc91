"""What validation needs to know about a media file, from its header only, cached on disk.

``MediaInspector.inspect_many`` is the entry point the validator uses (per chunk of records):

* **Header only.** JPEG and PNG headers are parsed by ``media.headers`` (size, mode, EXIF
  orientation from the APP1 / eXIf block before the pixel data); every other format is opened
  lazily with Pillow, which reads the header and no pixel. Sizes are the raw stored frame, as
  every loader sees it (none of them applies EXIF orientation, docs/consumers.md#exif-orientation).
* **Truncation, cheaply.** A complete JPEG ends with the EOI marker ``FFD9`` (after the start of
  scan), a PNG with its ``IEND`` chunk, a GIF with ``0x3B``, a WebP's RIFF size covers the file: one
  read of the file's last 4 KiB. Only a file that fails this test is decoded (``Image.load()``),
  and only its verdict counts: a file with trailing bytes after EOI (motion photos) decodes fine and
  is not reported; a cut file raises ``image file is truncated`` exactly as it will at training time.
* **Decompression bombs** are found from the header size, never opened.
* **Threads.** Stats and probes run in a thread pool, in chunks, when they wait on I/O (cold
  disks, network file systems: the latencies overlap); a first sample of each batch is timed in
  the calling thread, and when it shows no waiting (page-cached files) the batch stays there,
  since threads would only take turns holding the GIL.
* **Cache.** Results are stored on disk by (path, size, mtime_ns) in the table ``probe`` of
  ``media.cache``'s SQLite file (where it lives, how two processes share it, pruning, switching it
  off: that module's docstring; ``MediaInspector(cache=False)`` also switches it off). A second
  run over unchanged images costs a ``stat`` and a row lookup per image.
"""

from __future__ import annotations

import os
import stat as stat_mod
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from PIL import Image

from vlmdata.media.cache import FileCache, Memo, cache_location
from vlmdata.media.headers import BOMB_PIXELS, BOMB_WARN_PIXELS, HEAD, read_header
from vlmdata.media.paths import is_remote

PROBE_SAMPLE = 32  # items timed in the calling thread before deciding on threads (MediaInspector._map)
TAIL = 4096  # last read, for the truncation test
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"

# problem kinds (MediaInfo.problem)
UNREADABLE = "unreadable"
TRUNCATED = "truncated"
BOMB = "bomb"

T = TypeVar("T")
R = TypeVar("R")


@dataclass(slots=True)
class MediaInfo:
    exists: bool
    error: str | None = None  # why the file is unusable: undecodable, truncated, bomb, absurd size
    width: int | None = None  # stored frame (EXIF orientation not applied)
    height: int | None = None
    format: str | None = None  # Pillow's format name: "JPEG", "PNG", ...
    mode: str | None = None  # Pillow's mode as opened (best effort for the JPEG/PNG header reader)
    exif_orientation: int | None = None  # EXIF tag 0x0112 as stored (1 = upright), None without one
    size_bytes: int | None = None
    remote: bool = False
    problem: str | None = None  # UNREADABLE | TRUNCATED | BOMB when ``error`` is set
    is_dir: bool = False
    entries: int | None = None  # a folder: 0 when empty, 1 when it has something (not counted further)
    transient: bool = False  # an I/O error or a probe failure that may go away: never cached

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


# --------------------------------------------------------------------------- probing one file


def probe_file(path: str, size: int) -> MediaInfo:
    """Everything about the regular file ``path`` (``size`` bytes) that needs no pixel decode."""
    info = MediaInfo(exists=True, size_bytes=size)
    if size == 0:
        return _bad(info, UNREADABLE, "is an empty file (0 bytes)")
    try:
        f = _File(os.open(path, _O_FLAGS))
        try:
            head = f.read(HEAD)
            header = read_header(f, head)
            if header is not None:
                info.width, info.height, info.format = header.width, header.height, header.format
                info.mode, info.exif_orientation = header.mode, header.orientation
                scan = header.scan
            else:  # another format, or anything unusual: Pillow decides
                info = _pillow_header(path, size)
                if info.error:
                    return info
                scan = 0
            if _bomb(info):
                return info
            complete = _looks_complete(f, head, size, info.format, scan)
        finally:
            os.close(f.fd)
    except OSError as exc:  # permissions, I/O errors: reported, not cached (chmod does not change mtime)
        info.transient = True
        return _bad(info, UNREADABLE, f"cannot be read: {exc.strerror or exc}")
    if not complete:
        _confirm_truncated(path, info)
    return info


_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


class _File:
    """Unbuffered reads on a bare descriptor: a third of the cost of ``open()`` per file."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def read(self, n: int) -> bytes:
        return os.read(self.fd, n)

    def seek(self, pos: int) -> None:
        os.lseek(self.fd, pos, os.SEEK_SET)


def _bad(info: MediaInfo, problem: str, error: str) -> MediaInfo:
    info.problem, info.error = problem, error
    return info


def _bomb(info: MediaInfo) -> bool:
    w, h = info.width or 0, info.height or 0
    if w <= 0 or h <= 0:
        _bad(info, UNREADABLE, f"has an impossible size {w}x{h}")
        return True
    if w * h > BOMB_PIXELS:
        _bad(info, BOMB, f"is {w}x{h} = {w * h:,} pixels, over Pillow's decompression-bomb limit ({BOMB_PIXELS:,})")
        return True
    return False


def _pillow_header(path: str, size: int) -> MediaInfo:
    """Pillow's lazy open: header only. ``Image.Image.getexif`` (not the subclass's) never loads
    pixels (PngImageFile.getexif does, to look for an eXIf after the image data)."""
    info = MediaInfo(exists=True, size_bytes=size)
    try:
        with Image.open(path) as im:
            info.width, info.height = im.size
            info.format, info.mode = im.format, im.mode
            orientation = Image.Image.getexif(im).get(0x0112)
            info.exif_orientation = int(orientation) if isinstance(orientation, int) else None
    except Image.DecompressionBombError as exc:
        return _bad(info, BOMB, f"is over Pillow's decompression-bomb limit ({exc})")
    except Image.UnidentifiedImageError:
        return _bad(info, UNREADABLE, "is not an image Pillow can identify (wrong or broken file)")
    except Exception as exc:  # Pillow raises many types for broken headers
        return _bad(info, UNREADABLE, f"has a broken header ({type(exc).__name__}: {exc})")
    return info


def _looks_complete(f: _File, head: bytes, size: int, fmt: str | None, scan: int) -> bool:
    """The cheap end-of-file test; True when the format has none."""
    if fmt not in ("JPEG", "PNG", "GIF", "WEBP"):
        return True
    if fmt == "WEBP":
        if head[:4] != b"RIFF" or len(head) < 8:
            return True
        return struct.unpack("<I", head[4:8])[0] + 8 <= size
    start = max(0, size - TAIL)
    if start < len(head) and len(head) >= size:
        tail = head[start:]
    else:
        f.seek(start)
        tail = f.read(TAIL)
    if fmt == "GIF":
        return tail.rstrip(b"\x00").endswith(b";")
    if fmt == "PNG":
        return tail.endswith(_PNG_IEND) or b"IEND" in tail
    body = tail[max(0, scan - start) :]  # JPEG: an FFD9 in an EXIF thumbnail does not count
    return tail.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9") or b"\xff\xd9" in body


def _confirm_truncated(path: str, info: MediaInfo) -> None:
    """The end-of-file test failed: decode once, as the trainer will, and report what it says."""
    if (info.width or 0) * (info.height or 0) > BOMB_WARN_PIXELS:
        _bad(info, TRUNCATED, f"does not end with its {info.format} end marker (not decoded: too large)")
        return
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as exc:
        _bad(info, TRUNCATED, f"is truncated or corrupt: decoding it fails with {type(exc).__name__}: {exc}")


def _stat(path: str) -> os.stat_result | MediaInfo:
    """The stat of a local path, or the MediaInfo of a remote (not fetched) or missing one."""
    if is_remote(path):
        return MediaInfo(exists=True, remote=True)
    try:
        return os.stat(path)
    except OSError:
        return MediaInfo(exists=False)


def inspect_path(path: str) -> MediaInfo:
    """One path, uncached (remote URLs are not fetched)."""
    st = _stat(path)
    return st if isinstance(st, MediaInfo) else _probe_stat(path, st)


def _probe_stat(path: str, st: os.stat_result) -> MediaInfo:
    if stat_mod.S_ISDIR(st.st_mode):
        return _bad(MediaInfo(exists=True, is_dir=True), UNREADABLE, "is a folder, not an image file")
    if not stat_mod.S_ISREG(st.st_mode):
        return _bad(MediaInfo(exists=True), UNREADABLE, "is not a regular file (a device, a pipe or a socket)")
    return probe_file(path, st.st_size)


def folder_status(path: str) -> MediaInfo:
    """Existence of a video (a file, or a folder of frames: ``entries`` 0 when empty)."""
    st = _stat(path)
    if isinstance(st, MediaInfo):
        return st
    if not stat_mod.S_ISDIR(st.st_mode):
        return MediaInfo(exists=True, size_bytes=st.st_size)
    try:
        with os.scandir(path) as it:
            entries = 0 if next(it, None) is None else 1
    except OSError as exc:
        return _bad(MediaInfo(exists=True, is_dir=True), UNREADABLE, f"cannot be listed: {exc.strerror or exc}")
    return MediaInfo(exists=True, is_dir=True, entries=entries)


# --------------------------------------------------------------------------- the on-disk cache


class ProbeCache(FileCache):
    """(path, size, mtime_ns) -> MediaInfo in the cache file (``media.cache``)."""

    NAME = "probe cache"
    TABLE = "probe"
    COLUMNS = "width INTEGER, height INTEGER, format TEXT, mode TEXT, orientation INTEGER, problem TEXT, error TEXT"

    def get_many(self, keyed: Sequence[tuple[str, int, int]]) -> dict[str, MediaInfo]:
        """Infos for the (path, size, mtime_ns) whose row is current."""
        out = {}
        for path, size, (w, h, fmt, mode, orient, problem, error) in self.rows(keyed):
            out[path] = MediaInfo(True, error, w, h, fmt, mode, orient, size, False, problem)
        return out

    def put_many(self, items: Iterable[tuple[str, int, int, MediaInfo]]) -> None:
        self.put_rows(
            (p, s, m, i.width, i.height, i.format, i.mode, i.exif_orientation, i.problem, i.error)
            for p, s, m, i in items
            if not i.transient
        )


# --------------------------------------------------------------------------- the inspector


class MediaInspector:
    """Header probes of many images: threaded, cached on disk by (path, size, mtime_ns).

    ``probed`` and ``cache_hits`` count the files probed and the cache rows used.
    """

    IO_BOUND_RATIO = 1.5  # wall / CPU time of the sampled items above which threads are used

    def __init__(self, cache_dir: str | None = None, threads: int = 8, *, cache: bool = True) -> None:
        self.threads = max(1, int(threads))
        self.cache_file = cache_location(cache_dir) if cache else None
        self._cache: ProbeCache | None = None
        self._cache_opened = False
        self._pool: ThreadPoolExecutor | None = None
        self._seen: Memo[MediaInfo] = Memo()
        self.probed = 0
        self.cache_hits = 0
        self.pooled = 0  # how many batches went to the thread pool

    @property
    def cache(self) -> ProbeCache | None:
        if not self._cache_opened:
            self._cache_opened = True
            if self.cache_file is not None:
                self._cache = ProbeCache(self.cache_file)
        return self._cache if self._cache is not None and self._cache.enabled else None

    @property
    def cache_error(self) -> str | None:
        return self._cache.error if self._cache is not None else None

    def _map(self, fn: Callable[[list[T]], list[R]], items: list[T]) -> list[R]:
        """``fn`` over ``items``, results in order: in the pool when the work waits on I/O.

        The first ``PROBE_SAMPLE`` items run here, timed: when their wall time is under
        ``IO_BOUND_RATIO`` x their CPU time (files in the page cache, metadata cached), the rest runs
        here too, because threads would only take turns holding the GIL (~2x slower on 2 cores);
        otherwise (cold disks, network file systems) the rest goes to the pool in chunks.
        """
        if self.threads == 1 or len(items) <= PROBE_SAMPLE:
            return fn(items)
        wall, cpu = time.perf_counter(), time.thread_time()
        out = fn(items[:PROBE_SAMPLE])
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        rest = items[PROBE_SAMPLE:]
        if wall < self.IO_BOUND_RATIO * cpu:
            out.extend(fn(rest))
            return out
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vlmdata-probe")
        self.pooled += 1
        size = max(8, min(128, -(-len(rest) // (self.threads * 4))))
        for part in self._pool.map(fn, [rest[i : i + size] for i in range(0, len(rest), size)]):
            out.extend(part)
        return out

    def inspect_many(self, paths: Iterable[str]) -> dict[str, MediaInfo]:
        found, todo = self._seen.split(paths, MediaInfo(exists=True, remote=True))
        out: dict[str, MediaInfo] = found  # type: ignore[assignment]  # the Nones of ``todo`` are filled below
        if not todo:
            return out
        stats = self._map(_stat_chunk, todo)
        keyed: list[tuple[str, int, int]] = []
        files: list[tuple[str, str, os.stat_result]] = []
        for p, key, st in stats:
            if st is None:
                out[p] = MediaInfo(exists=False)
            elif not stat_mod.S_ISREG(st.st_mode):
                out[p] = _probe_stat(p, st)
            else:
                keyed.append((key, st.st_size, st.st_mtime_ns))
                files.append((p, key, st))
        cache = self.cache
        cached = cache.get_many(keyed) if cache is not None else {}
        self.cache_hits += len(cached)
        misses = []
        for p, key, st in files:
            hit = cached.get(key)
            if hit is not None:
                out[p] = hit
            else:
                misses.append((p, key, st))
        if misses:
            infos = self._map(_probe_chunk, [(p, st) for p, _, st in misses])
            self.probed += len(misses)
            for (p, _, _), info in zip(misses, infos, strict=True):
                out[p] = info
            if cache is not None:
                cache.put_many(
                    (key, st.st_size, st.st_mtime_ns, info) for (_, key, st), info in zip(misses, infos, strict=True)
                )
        self._seen.remember(out)
        return out

    def close(self) -> None:
        """Stop the threads and close the on-disk cache (pruning old rows once a day)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._cache is not None:
            self._cache.close()
        self._cache, self._cache_opened = None, False

    def __enter__(self) -> MediaInspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stat_chunk(paths: list[str]) -> list[tuple[str, str, os.stat_result | None]]:
    out: list[tuple[str, str, os.stat_result | None]] = []
    for p in paths:
        try:
            st: os.stat_result | None = os.stat(p)
        except (OSError, ValueError):
            st = None
        out.append((p, p if p[:1] == "/" and os.sep == "/" else os.path.abspath(p), st))  # the engine's are absolute
    return out


def _probe_chunk(items: list[tuple[str, os.stat_result]]) -> list[MediaInfo]:
    out = []
    for p, st in items:
        try:
            out.append(probe_file(p, st.st_size))
        except Exception as exc:  # never a traceback for bad data
            info = MediaInfo(exists=True, size_bytes=st.st_size, transient=True)
            out.append(_bad(info, UNREADABLE, f"cannot be probed: {type(exc).__name__}: {exc}"))
    return out
