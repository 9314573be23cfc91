"""Image size from the file header only (Pillow opens lazily; no pixel is decoded).

Sizes are the raw stored frame: the loaders read here never apply EXIF orientation
(docs/consumers.md#exif-orientation), so neither do we. Decompression bombs are refused.
"""

from __future__ import annotations

import warnings

from PIL import Image

from vlmdata.errors import RecordError
from vlmdata.media.headers import BOMB_PIXELS, HEAD, read_header
from vlmdata.media.paths import CACHE_LIMIT, is_remote


class SizeCache:
    """Per-run cache of probed sizes, keyed by resolved path."""

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[int, int]] = {}

    def size(self, resolved: str, shown: str) -> tuple[int, int]:
        hit = self._sizes.get(resolved)
        if hit is None:
            hit = probe_size(resolved, shown)
            if len(self._sizes) >= CACHE_LIMIT:
                self._sizes.clear()  # one image per row is the norm: keep memory flat
            self._sizes[resolved] = hit
        return hit


def probe_size(resolved: str, shown: str, needed_for: str = "to convert boxes") -> tuple[int, int]:
    """(width, height) of the image at ``resolved``; ``shown`` is the path as the record wrote it,
    ``needed_for`` says in the error why the size was wanted."""
    if is_remote(resolved):
        raise RecordError(
            f"the size of remote image {shown[:120]!r} is unknown",
            "add width/height to the record or download the image and point at the local copy",
        )
    try:
        size = header_size(resolved)
        if size is not None:
            w, h = size
            if Image.MAX_IMAGE_PIXELS and w * h > Image.MAX_IMAGE_PIXELS:
                raise Image.DecompressionBombWarning(f"{w}x{h}")  # what Pillow would warn (then error)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(resolved) as im:
                    w, h = im.size
    except FileNotFoundError:
        raise RecordError(
            f"image {shown!r} not found at {resolved} (its size is needed {needed_for})",
            "fix the path or --root, or add width/height to the record",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RecordError(
            f"image {shown!r} is too large to be a real image (decompression bomb guard)",
            "check the file; real training images are far below 89 megapixels",
        ) from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"image {shown!r} cannot be read: {exc}", "replace the file") from None
    if w <= 0 or h <= 0 or w * h > BOMB_PIXELS:
        raise RecordError(f"image {shown!r} has an absurd size {w}x{h}", "replace the file")
    return w, h


def header_size(path: str) -> tuple[int, int] | None:
    """(width, height) read from a JPEG (first SOFn), PNG (IHDR) or GIF header, as Pillow reports
    them; None for anything else or anything unusual, which Pillow then opens. ~4x cheaper than
    Image.open (one open + read, no plugin search), which matters at one image per row."""
    with open(path, "rb", buffering=0) as f:
        header = read_header(f, f.read(HEAD), full=False, gif=True)
    return (header.width, header.height) if header is not None and header.width > 0 and header.height > 0 else None
