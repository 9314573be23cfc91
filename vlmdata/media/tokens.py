"""How many tokens a model spends on an image, from the image's size alone (docs/consumers.md#image-tokens,
docs/frames.md#smart_resize).

* InternVL 2.5 / 3 (``internvl_chat``): ``dynamic_preprocess`` picks a grid of 448x448 tiles whose
  aspect ratio is closest to the image's (``min_num`` 1 <= i*j <= ``max_num``; a tie goes to the
  larger grid when ``W*H > 0.5 * 448^2 * i*j``), and ``use_thumbnail`` appends one more 448x448
  tile when the grid has more than one. Each tile is ``(448/14)^2 * 0.5^2`` = 256 tokens
  (``num_image_token``, pixel shuffle). ``max_num`` is ``--max_dynamic_patch`` (12 in the
  fine-tune scripts, or the meta entry's ``max_dynamic_patch``); a record with N images gives each
  image ``max(1, max_dynamic_patch // N)`` (``multi_modal_multi_image_get_item``).
* Qwen2-VL / Qwen2.5-VL: ``smart_resize`` (factor 28 = patch 14 x merge 2), then
  ``(h'/14) * (w'/14) / 4 = h'*w' / 784`` tokens. Defaults are qwen-vl-utils' ``MIN_PIXELS``
  3,136 and ``MAX_PIXELS`` 12,845,056 (also what the released checkpoints' preprocessor_config.json
  say); LLaMA-Factory shrinks the image to ``image_max_pixels`` (589,824) first
  (docs/frames.md#llama-factory-pre-resize).
* Qwen3-VL: the same with factor 32 (patch 16 x merge 2): ``h'*w' / 1024`` tokens; defaults from
  its checkpoints' preprocessor_config.json, ``min_pixels`` 65,536 and ``max_pixels`` 16,777,216.
* LLaVA-1.5: CLIP ViT-L/14 at 336 px, ``(336/14)^2`` = 576 tokens per image, whatever its size.

The counts are the image *feature* tokens (the ``<IMG_CONTEXT>`` / ``<|image_pad|>`` / image
features that replace ``<image>``); the two wrapper tokens per image (``<img>``/``</img>``,
``<|vision_start|>``/``<|vision_end|>``) are part of the template overhead.

Text tokens are estimated (``estimate_text_tokens``) unless a tokenizer folder with a
``tokenizer.json`` is given and the optional ``tokenizers`` package is installed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.smart_resize import (
    IMAGE_FACTOR,
    QWEN2_MAX_PIXELS,
    QWEN2_MIN_PIXELS,
    QWEN3_IMAGE_FACTOR,
    QWEN3_MAX_PIXELS,
    QWEN3_MIN_PIXELS,
    llamafactory_preresize,
    smart_resize,
)

BUDGET_MODELS = ("internvl2.5", "internvl3", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "llava-1.5")  # validate --model
INTERNVL_MODELS = ("internvl2.5", "internvl3")
QWEN_MODELS = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl")
# Qwen's resize per model: (smart_resize factor, default min_pixels, default max_pixels); a token is factor^2 pixels
QWEN_RESIZE = {
    "qwen2-vl": (IMAGE_FACTOR, QWEN2_MIN_PIXELS, QWEN2_MAX_PIXELS),
    "qwen2.5-vl": (IMAGE_FACTOR, QWEN2_MIN_PIXELS, QWEN2_MAX_PIXELS),
    "qwen3-vl": (QWEN3_IMAGE_FACTOR, QWEN3_MIN_PIXELS, QWEN3_MAX_PIXELS),
}

INTERNVL_IMAGE_SIZE = 448  # --force_image_size
INTERNVL_TOKENS_PER_TILE = 256  # int((448 // 14) ** 2 * 0.5 ** 2)
INTERNVL_MAX_DYNAMIC_PATCH = 12  # --max_dynamic_patch in the fine-tune scripts
LLAVA_TOKENS = 576  # (336 // 14) ** 2, CLIP ViT-L/14-336
LLAMAFACTORY_IMAGE_MAX_PIXELS = 768 * 768  # LLaMA-Factory ModelArguments.image_max_pixels default
LLAMAFACTORY_IMAGE_MIN_PIXELS = 32 * 32

# Wrapper tokens around one image's features, and a turn's role markers/separators (template overhead).
WRAPPER_TOKENS = {"internvl": 2, "qwen": 2, "llava": 0}
TURN_OVERHEAD = 4


def check_model(model: str) -> str:
    """``model`` if it is a known token-budget model, else a usage error."""
    if model not in BUDGET_MODELS:
        raise VlmdataError(f"unknown model {model!r} for token budgets; choose one of {', '.join(BUDGET_MODELS)}")
    return model


def family(model: str) -> str:
    if model in INTERNVL_MODELS:
        return "internvl"
    if model in QWEN_MODELS:
        return "qwen"
    return "llava"


# --- InternVL dynamic tiling ---------------------------------------------------------------------


@lru_cache(maxsize=64)
def _target_ratios(min_num: int, max_num: int) -> tuple[tuple[int, int], ...]:
    # Built exactly as dynamic_preprocess does (a set sorted by tile count): the order decides ties.
    ratios = {
        (i, j)
        for n in range(min_num, max_num + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_num <= i * j <= max_num
    }
    return tuple(sorted(ratios, key=lambda x: x[0] * x[1]))


def internvl_grid(
    width: int,
    height: int,
    max_num: int = INTERNVL_MAX_DYNAMIC_PATCH,
    min_num: int = 1,
    image_size: int = INTERNVL_IMAGE_SIZE,
) -> tuple[int, int]:
    """(columns, rows) of 448x448 tiles that InternVL's ``dynamic_preprocess`` cuts the image into."""
    aspect_ratio = width / height
    best_diff = float("inf")
    best = (1, 1)
    area = width * height
    for ratio in _target_ratios(min_num, max_num):  # find_closest_aspect_ratio
        diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff = diff
            best = ratio
        elif diff == best_diff and area > 0.5 * image_size * image_size * ratio[0] * ratio[1]:
            best = ratio
    return best


def internvl_tiles(
    width: int,
    height: int,
    max_num: int = INTERNVL_MAX_DYNAMIC_PATCH,
    *,
    use_thumbnail: bool = True,
    min_num: int = 1,
) -> int:
    """Tiles (``num_patches``) of one image: the grid, plus the thumbnail when the grid has more than one."""
    cols, rows = internvl_grid(width, height, max_num, min_num)
    blocks = cols * rows
    return blocks + 1 if use_thumbnail and blocks != 1 else blocks


def internvl_max_num(max_dynamic_patch: int, num_images: int) -> int:
    """The tile cap per image: ``max(1, max_dynamic_patch // num_images)`` for several images."""
    return max_dynamic_patch if num_images <= 1 else max(1, max_dynamic_patch // num_images)


# --- per model -----------------------------------------------------------------------------------


def llamafactory_qwen_preprocess(
    width: int, height: int, image_max_pixels: int, image_min_pixels: int
) -> tuple[int, int]:
    """(w, h) after LLaMA-Factory's ``_preprocess_image`` and ``Qwen2VLPlugin._preprocess_image``:
    shrink to ``image_max_pixels``, grow to ``image_min_pixels`` (``int()`` both ways), a side under
    28 px set to 28, an aspect ratio over 200 cut to 180:1 (docs/frames.md#llama-factory-pre-resize)."""
    width, height = llamafactory_preresize(width, height, image_max_pixels)
    if width * height < image_min_pixels:
        factor = math.sqrt(image_min_pixels / (width * height))
        width, height = int(width * factor), int(height * factor)
    if min(width, height) < 28:
        width, height = max(width, 28), max(height, 28)
    if width / height > 200:
        width = height * 180
    if height / width > 200:
        height = width * 180
    return width, height


def qwen_image_tokens(
    width: int,
    height: int,
    *,
    model: str = "qwen2.5-vl",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    image_max_pixels: int | None = None,
) -> int:
    """``h'*w' / factor^2`` after ``smart_resize`` (784 for Qwen2/2.5-VL, 1024 for Qwen3-VL), after
    LLaMA-Factory's pre-resize when ``image_max_pixels``."""
    factor, default_min, default_max = QWEN_RESIZE[model]
    if image_max_pixels is not None:
        width, height = llamafactory_qwen_preprocess(width, height, image_max_pixels, LLAMAFACTORY_IMAGE_MIN_PIXELS)
    h, w = smart_resize(height, width, factor, min_pixels or default_min, max_pixels or default_max)
    return h * w // (factor * factor)


def min_image_tokens(model: str, *, min_pixels: int | None = None) -> int:
    """The fewest tokens one image of unknown size can take (so a count from them never overstates)."""
    fam = family(model)
    if fam == "internvl":
        return INTERNVL_TOKENS_PER_TILE
    if fam == "qwen":
        factor, default_min, _max = QWEN_RESIZE[model]
        return max(min_pixels or default_min, 4 * factor * factor) // (factor * factor)
    return LLAVA_TOKENS


def image_tokens(
    model: str,
    sizes: Sequence[tuple[int, int] | None],
    *,
    max_dynamic_patch: int = INTERNVL_MAX_DYNAMIC_PATCH,
    use_thumbnail: bool = True,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    image_max_pixels: int | None = None,
) -> list[int | None]:
    """Tokens of each image of one record, in order; ``None`` for a size that is unknown or refused
    (InternVL divides ``max_dynamic_patch`` by the number of images, known or not)."""
    fam = family(check_model(model))
    out: list[int | None] = []
    max_num = internvl_max_num(max_dynamic_patch, len(sizes))
    for size in sizes:
        if size is None or size[0] <= 0 or size[1] <= 0:
            out.append(LLAVA_TOKENS if fam == "llava" else None)
        elif fam == "internvl":
            tiles = internvl_tiles(size[0], size[1], max_num, use_thumbnail=use_thumbnail)
            out.append(INTERNVL_TOKENS_PER_TILE * tiles)
        elif fam == "qwen":
            try:
                tokens = qwen_image_tokens(
                    size[0],
                    size[1],
                    model=model,
                    min_pixels=min_pixels,
                    max_pixels=max_pixels,
                    image_max_pixels=image_max_pixels,
                )
                out.append(tokens)
            except (RecordError, ValueError):  # aspect ratio over 200: the media rules report it
                out.append(None)
        else:
            out.append(LLAVA_TOKENS)
    return out


# --- text ----------------------------------------------------------------------------------------

# Characters per token, for ASCII text and tokens per character for the rest (CJK mostly), by the
# tokenizer family: Qwen2/2.5 and InternLM2 have ~150k-token vocabularies (about 4 ASCII characters
# and 1.4 CJK characters per token); LLaVA-1.5's Vicuna (LLaMA, 32k) splits more finely.
TEXT_HEURISTIC = {"internvl": (4.0, 0.7), "qwen": (4.0, 0.7), "llava": (3.5, 1.5)}


def estimate_text_tokens(text: str, model: str = "qwen2.5-vl") -> int:
    """A rough token count of ``text``: ASCII characters / 4 (3.5 for LLaMA) plus 0.7 (1.5 for LLaMA)
    tokens per other character. Good to about +-25% on English and Chinese prose."""
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    per_token, per_char = TEXT_HEURISTIC[family(model)]
    return math.ceil(ascii_chars / per_token + (len(text) - ascii_chars) * per_char)


class TextCounter:
    """Exact text token counts with a tokenizer folder's ``tokenizer.json`` (optional ``tokenizers``)."""

    def __init__(self, folder: str) -> None:
        path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(path):
            raise VlmdataError(
                f"--tokenizer {folder}: no tokenizer.json in this folder; give a Hugging Face tokenizer folder "
                "(one with tokenizer.json), or leave --tokenizer out to estimate text tokens"
            )
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise VlmdataError(
                "--tokenizer needs the optional `tokenizers` package (pip install tokenizers); "
                "leave --tokenizer out to estimate text tokens"
            ) from None
        try:
            self._tok: Any = Tokenizer.from_file(path)
        except Exception as exc:  # the Rust side raises plain Exceptions for a bad file
            raise VlmdataError(f"--tokenizer {path}: cannot be loaded ({exc})") from None

    def count(self, text: str) -> int:
        if not text:
            return 0
        return len(self._tok.encode(text, add_special_tokens=False).ids)


@lru_cache(maxsize=4)
def text_counter(folder: str) -> TextCounter:
    return TextCounter(folder)
