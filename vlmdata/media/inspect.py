"""What validation needs to know about a media file, from its header only.

``MediaInspector.inspect_many`` is the entry point the validator uses (per chunk of records);
this first version probes sequentially without a cache (to be replaced by the threaded, on-disk
cached version keyed by (path, size, mtime)).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from PIL import Image

from vlmdata.errors import RecordError
from vlmdata.media.paths import is_remote
from vlmdata.media.probe import probe_size


@dataclass(slots=True)
class MediaInfo:
    exists: bool
    error: str | None = None  # why the file is unusable: undecodable, truncated, bomb, absurd size
    width: int | None = None
    height: int | None = None
    format: str | None = None
    mode: str | None = None
    exif_orientation: int | None = None
    size_bytes: int | None = None
    remote: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


def inspect_path(path: str) -> MediaInfo:
    if is_remote(path):
        return MediaInfo(exists=True, remote=True)
    try:
        st = os.stat(path)
    except OSError:
        return MediaInfo(exists=False)
    if os.path.isdir(path):
        return MediaInfo(exists=True, size_bytes=st.st_size)
    info = MediaInfo(exists=True, size_bytes=st.st_size)
    try:
        info.width, info.height = probe_size(path, path)
        with Image.open(path) as im:
            info.format, info.mode = im.format, im.mode
            orientation = im.getexif().get(0x0112)
            info.exif_orientation = int(orientation) if orientation else None
    except RecordError as exc:
        info.error = exc.what
    except Exception as exc:  # Pillow raises many types for broken headers
        info.error = f"cannot be read: {exc}"
    return info


class MediaInspector:
    def __init__(self, cache_dir: str | None = None, threads: int = 8) -> None:
        self.cache_dir = cache_dir
        self.threads = threads
        self._seen: dict[str, MediaInfo] = {}

    def inspect_many(self, paths: list[str]) -> dict[str, MediaInfo]:
        out = {}
        for p in paths:
            hit = self._seen.get(p)
            if hit is None:
                hit = self._seen[p] = inspect_path(p)
            out[p] = hit
        return out

    def close(self) -> None:
        """Flush the on-disk cache (no-op without one)."""
