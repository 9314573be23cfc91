"""The image size Qwen2-VL / Qwen2.5-VL actually see: ``smart_resize`` (docs/frames.md#smart_resize,
docs/frames.md#llama-factory-pre-resize).

Qwen2.5-VL boxes are absolute pixels of this resized image (docs/frames.md#pixel_resized,
docs/frames.md#converting-by-hand-summary), so the size must be computed exactly as the training pipeline does:

* ``smart_resize`` follows qwen-vl-utils (``vision_process.py``): sides rounded to a multiple of
  ``factor`` (28 = patch 14 x merge 2), then scaled down (floor) above ``max_pixels`` or up (ceil)
  below ``min_pixels``. Tiny images are scaled up, not refused (qwen-vl-utils clamps to ``factor``;
  newer transformers raise for a side < 28); a side never drops below ``factor``. An aspect ratio
  over 200 is refused, as every implementation does.
* ``llamafactory_preresize`` is LLaMA-Factory's ``_preprocess_image`` shrink that runs *before* the
  processor when ``image_max_pixels`` is set: both sides times ``sqrt(max / (W*H))``, ``int()``.

Defaults are qwen-vl-utils' ``MIN_PIXELS`` / ``MAX_PIXELS`` for Qwen2-VL / Qwen2.5-VL (here
``QWEN2_MIN_PIXELS`` / ``QWEN2_MAX_PIXELS``); the transformers image processor's own default
``max_pixels`` is 1,003,520 (the Qwen notebook's), so pass the value your training used. Qwen3-VL
(factor 32) has its own defaults (``QWEN3_*``). Pillow's decompression-bomb limits are another
thing (``media.headers.BOMB_PIXELS``).
"""

from __future__ import annotations

import math

from vlmdata.errors import RecordError

IMAGE_FACTOR = 28  # Qwen2-VL / Qwen2.5-VL: patch 14 x merge 2
# Qwen2-VL / Qwen2.5-VL defaults: qwen-vl-utils' MIN_PIXELS / MAX_PIXELS (and the checkpoints' preprocessor_config)
QWEN2_MIN_PIXELS = 4 * 28 * 28  # 3,136 (transformers' 56*56 is the same number)
QWEN2_MAX_PIXELS = 16384 * 28 * 28  # 12,845,056
TRANSFORMERS_MAX_PIXELS = 28 * 28 * 1280  # 1,003,520 (transformers Qwen2VLImageProcessor, Qwen's notebook)
# Qwen3-VL: patch 16 x merge 2, so resized sides are multiples of 32; its checkpoints' preprocessor_config.json
# has size {"shortest_edge": 65536, "longest_edge": 16777216}
QWEN3_IMAGE_FACTOR = 32
QWEN3_MIN_PIXELS = 64 * 32 * 32  # 65,536 (256 x 256)
QWEN3_MAX_PIXELS = 16384 * 32 * 32  # 16,777,216 (4096 x 4096)
MAX_RATIO = 200


def smart_resize(
    height: int,
    width: int,
    factor: int = IMAGE_FACTOR,
    min_pixels: int = QWEN2_MIN_PIXELS,
    max_pixels: int = QWEN2_MAX_PIXELS,
    *,
    image: str | None = None,
) -> tuple[int, int]:
    """(h', w') of a ``height`` x ``width`` image, in that order as upstream returns it.

    ``image`` names the image in the error raised for an aspect ratio over 200.
    """
    if height <= 0 or width <= 0:
        raise RecordError(f"{_name(image)} has an impossible size {width}x{height}", "replace the file")
    if max_pixels < min_pixels:
        raise ValueError(f"max_pixels ({max_pixels}) must be greater than or equal to min_pixels ({min_pixels})")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_RATIO:
        raise RecordError(
            f"{_name(image)} is {width}x{height}: absolute aspect ratio must be smaller than {MAX_RATIO}, got {ratio}",
            "Qwen's smart_resize refuses this image: crop or pad it, or drop the record",
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def llamafactory_preresize(width: int, height: int, image_max_pixels: int) -> tuple[int, int]:
    """(w, h) after LLaMA-Factory's ``_preprocess_image`` shrink (docs/frames.md#llama-factory-pre-resize)."""
    if width * height > image_max_pixels:
        factor = math.sqrt(image_max_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    return width, height


def resized_size(
    width: int,
    height: int,
    *,
    min_pixels: int = QWEN2_MIN_PIXELS,
    max_pixels: int = QWEN2_MAX_PIXELS,
    image_max_pixels: int | None = None,
    image: str | None = None,
) -> tuple[int, int]:
    """(W', H') that Qwen2.5-VL boxes of a ``width`` x ``height`` image are pixels of.

    ``image_max_pixels`` (LLaMA-Factory) first shrinks the image, then ``smart_resize`` applies.
    """
    if image_max_pixels is not None:
        width, height = llamafactory_preresize(width, height, image_max_pixels)
    h, w = smart_resize(height, width, IMAGE_FACTOR, min_pixels, max_pixels, image=image)
    return w, h


def _name(image: str | None) -> str:
    return f"image {image!r}" if image is not None else "the image"
