"""Image size from the file header only (Pillow opens lazily; no pixel is decoded).

Sizes are the raw stored frame: the loaders read here never apply EXIF orientation
(FORMATS.md 7.1 #7), so neither do we. Decompression bombs are refused.
"""

from __future__ import annotations

import warnings

from PIL import Image

from vlmdata.errors import RecordError
from vlmdata.media.paths import is_remote

MAX_PIXELS = 178_956_970  # Pillow's own bomb threshold (2 x MAX_IMAGE_PIXELS)


class SizeCache:
    """Per-run cache of probed sizes, keyed by resolved path."""

    def __init__(self) -> None:
        self._sizes: dict[str, tuple[int, int]] = {}

    def size(self, resolved: str, shown: str) -> tuple[int, int]:
        hit = self._sizes.get(resolved)
        if hit is None:
            hit = probe_size(resolved, shown)
            self._sizes[resolved] = hit
        return hit


def probe_size(resolved: str, shown: str) -> tuple[int, int]:
    """(width, height) of the image at ``resolved``; ``shown`` is the path as the record wrote it."""
    if is_remote(resolved):
        raise RecordError(
            f"the size of remote image {shown[:120]!r} is unknown",
            "add width/height to the record or download the image and point at the local copy",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(resolved) as im:
                w, h = im.size
    except FileNotFoundError:
        raise RecordError(
            f"image {shown!r} not found at {resolved} (its size is needed to convert boxes)",
            "fix the path or --root, or add width/height to the record",
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RecordError(
            f"image {shown!r} is too large to be a real image (decompression bomb guard)",
            "check the file; real training images are far below 89 megapixels",
        ) from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"image {shown!r} cannot be read: {exc}", "replace the file") from None
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        raise RecordError(f"image {shown!r} has an absurd size {w}x{h}", "replace the file")
    return w, h
