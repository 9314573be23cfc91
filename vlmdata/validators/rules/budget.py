"""VD5: token budgets with ``--model`` and ``--max-length`` (docs/consumers.md#image-tokens,
docs/frames.md#smart_resize, docs/consumers.md#truncation).

Image tokens come from image sizes read from the file headers (``ctx.inspector``, cached, so the
media rules' later probe of the same files costs nothing), else from the record's declared
``width``/``height``; an image whose size is unknown counts at its model's minimum, so a count
never overstates. Text tokens are estimated (``vlmdata.media.tokens.estimate_text_tokens``) or
exact with ``--tokenizer``. Videos are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vlmdata.errors import RecordError
from vlmdata.media import tokens as tk
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import max_dynamic_patch as tile_cap
from vlmdata.validators.view import RecordView

MEDIA_TAG = re.compile(r"<image>|<video>|<audio>")

# What each consumer does with a row whose tokens exceed its max length (docs/consumers.md#truncation,
# docs/consumers.md#bad-rows).
OVER_LENGTH = {
    "internvl": "InternVL truncates at model_max_length and asserts 'image tokens are truncated' (the row is "
    "replaced by a random one)",
    "swift": "ms-swift's default truncation_strategy=delete drops the row silently (MaxLengthError with 'raise')",
    "qwen": "transformers' Qwen2-VL raises 'Image features and image tokens do not match' once truncation cuts "
    "image tokens",
    "llamafactory": "LLaMA-Factory's cutoff_len truncation cuts image tokens and transformers raises 'Image "
    "features and image tokens do not match'",
    "llava": "LLaVA cuts the embedded sequence at model_max_length, dropping image features or the answer",
    "hf": "TRL's SFTTrainer truncates at max_length and cuts image tokens (the docs recommend max_length=None)",
}


@dataclass
class Budget:
    model: str
    per_image: list[int | None]  # None: size unknown
    image_tokens: int  # known images + the minimum for each unknown one
    unknown: int
    text_tokens: int
    exact_text: bool
    max_dynamic_patch: int

    @property
    def total(self) -> int:
        return self.image_tokens + self.text_tokens


def _sizes(view: RecordView, ctx: ValidationContext) -> list[tuple[int, int] | None]:
    """Each image's (width, height): from its header when the file can be read, else as declared."""
    resolved: list[str | None] = []
    for path in view.images:
        try:
            resolved.append(ctx.resolver.resolve(path) if ctx.resolver else path)
        except RecordError:  # escapes the root: the media rules report it
            resolved.append(None)
    infos = ctx.inspector.inspect_many(sorted({p for p in resolved if p})) if any(resolved) else {}
    out: list[tuple[int, int] | None] = []
    for k, path in enumerate(resolved):
        info = infos.get(path) if path else None
        declared = view.declared_sizes[k] if k < len(view.declared_sizes) else None
        if info is not None and info.width and info.height:
            out.append((info.width, info.height))
        elif declared is not None and declared[0] > 0 and declared[1] > 0:
            out.append(declared)
        else:
            out.append(None)
    return out


def _text_tokens(view: RecordView, ctx: ValidationContext, model: str) -> tuple[int, bool]:
    counter = tk.text_counter(ctx.tokenizer) if ctx.tokenizer else None
    total = 0
    for turn in view.turns:
        text = MEDIA_TAG.sub("", turn.text)
        total += (counter.count(text) if counter else tk.estimate_text_tokens(text, model)) + tk.TURN_OVERHEAD
    total += tk.WRAPPER_TOKENS[tk.family(model)] * len(view.images)
    return total, counter is not None


def budget(view: RecordView, ctx: ValidationContext) -> Budget | None:
    """The record's token budget for ``ctx.model`` (None without --model); computed once per record."""
    if ctx.model is None:
        return None
    cached = ctx.file_state.get("budget.last")
    if cached is not None and cached[0] is view:
        return cached[1]
    model = tk.check_model(ctx.model)
    max_dynamic_patch = tile_cap(ctx)
    per_image = tk.image_tokens(
        model,
        _sizes(view, ctx) if view.images else [],
        max_dynamic_patch=max_dynamic_patch,
        min_pixels=ctx.min_pixels,
        max_pixels=ctx.max_pixels,
        image_max_pixels=tk.LLAMAFACTORY_IMAGE_MAX_PIXELS if ctx.target == "llamafactory" else None,
    )
    unknown = sum(1 for t in per_image if t is None)
    floor = tk.min_image_tokens(model, min_pixels=ctx.min_pixels)
    image_tokens = sum(t if t is not None else floor for t in per_image)
    text, exact = _text_tokens(view, ctx, model)
    result = Budget(model, per_image, image_tokens, unknown, text, exact, max_dynamic_patch)
    ctx.file_state["budget.last"] = (view, result)
    return result


def _detail(b: Budget, ctx: ValidationContext) -> str:
    """How the image tokens were counted, for the message."""
    fam = tk.family(b.model)
    known = [t for t in b.per_image if t is not None]
    if fam == "internvl":
        per = tk.internvl_max_num(b.max_dynamic_patch, len(b.per_image))
        tiles = "+".join(str(t // tk.INTERNVL_TOKENS_PER_TILE) for t in known) or "0"
        text = f"{tiles} tile(s) x 256, thumbnails included, max_dynamic_patch {b.max_dynamic_patch}"
        if len(b.per_image) > 1:
            text += f" // {len(b.per_image)} images = {per} per image"
    elif fam == "qwen":
        factor, _min, default_max = tk.QWEN_RESIZE[b.model]
        max_pixels = ctx.max_pixels or default_max
        default = "the checkpoints' default" if b.model == "qwen3-vl" else "qwen-vl-utils' default"
        source = "" if ctx.max_pixels else f" ({default})"
        text = (
            f"{'+'.join(map(str, known)) or '0'} = h*w/{factor * factor} after smart_resize, "
            f"max_pixels {max_pixels:,}{source}"
        )
        if ctx.target == "llamafactory":
            text += f", after LLaMA-Factory's image_max_pixels {tk.LLAMAFACTORY_IMAGE_MAX_PIXELS:,}"
    else:
        text = f"{len(b.per_image)} x 576"
    if b.unknown:
        text += f"; {b.unknown} image(s) of unknown size counted at their minimum"
    return text


def _knob(model: str) -> str:
    fam = tk.family(model)
    if fam == "internvl":
        return "lower max_dynamic_patch (the meta entry's or --max_dynamic_patch), use fewer images"
    if fam == "qwen":
        return "lower max_pixels (or resize the images), use fewer images"
    return "use fewer images (LLaVA-1.5 spends 576 tokens on every image)"


@rule(
    "VD501",
    "image-tokens-over-max-length",
    "error",
    "record",
    "the images alone take {image_tokens} tokens with {model} ({detail}), more than --max-length {max_length}: "
    "{consequence}; {knob}, or raise --max-length",
    what="With `--model` and `--max-length`, reports a record whose image tokens alone exceed the maximum length: "
    "InternVL 2.5/3 tiles (256 tokens per 448x448 tile, a thumbnail when there is more than one tile, "
    "`max_dynamic_patch` divided among the images), Qwen2-VL/2.5-VL `smart_resize` (h*w/784), Qwen3-VL "
    "`smart_resize` with factor 32 (h*w/1024), LLaVA-1.5 576.",
    why="Truncation cannot keep such a row intact (docs/consumers.md#truncation): InternVL asserts `image tokens are "
    "truncated` and trains a random row instead, transformers' Qwen2-VL raises `Image features and image "
    "tokens do not match`, and ms-swift's default `truncation_strategy=delete` drops the row without a word.",
    example='{"image": "scan_4000x3000.png", ...}   with --model qwen2.5-vl --max-length 8192 (15,301 image tokens)',
    fix="Lower the resolution budget (InternVL `max_dynamic_patch`, Qwen `max_pixels`), split the images over "
    "several records, or raise the maximum length.",
)
def image_tokens_over_max_length(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.model is None:
        return
    tk.check_model(ctx.model)  # an unknown --model is a usage error even without --max-length
    if ctx.max_length is None:
        return
    b = budget(view, ctx)
    if b is None or not b.per_image or b.image_tokens <= ctx.max_length:
        return
    yield {
        "image_tokens": b.image_tokens,
        "model": b.model,
        "detail": _detail(b, ctx),
        "max_length": ctx.max_length,
        "consequence": OVER_LENGTH.get(ctx.target, OVER_LENGTH["swift"]),
        "knob": _knob(b.model),
    }


@rule(
    "VD502",
    "tokens-over-max-length",
    "warning",
    "record",
    "the record takes {estimate}{total} tokens with {model} ({image_tokens} image + {text_tokens} text{how}), "
    "more than --max-length {max_length}: {consequence}; shorten it, {knob}, or raise --max-length",
    what="With `--model` and `--max-length`, reports a record whose image tokens plus text tokens exceed the "
    "maximum length (and whose images alone do not: that is VD501). Text tokens are estimated: ASCII characters "
    "/ 4 (3.5 for LLaVA's LLaMA tokenizer) + 0.7 per other character (1.5 for LLaMA), + 4 per turn for the "
    "template's role markers, + 2 per image for its wrapper tokens; exact with `--tokenizer DIR` "
    "(`DIR/tokenizer.json`, needs the `tokenizers` package). The template's default system prompt is not counted.",
    why="The row is truncated or dropped (docs/consumers.md#truncation): ms-swift's default "
    "`truncation_strategy=delete` drops it silently, InternVL and transformers' Qwen2-VL fail when truncation reaches "
    "the image tokens, and otherwise the end of the answer is cut from the labels.",
    example='{"image": "a.jpg", "conversations": [... a 20,000-character answer ...]}   with --max-length 4096',
    fix="Shorten or split the conversation, lower the image budget, or raise the maximum length.",
)
def tokens_over_max_length(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.model is None:
        return
    tk.check_model(ctx.model)  # an unknown --model is a usage error even without --max-length
    if ctx.max_length is None:
        return
    b = budget(view, ctx)
    if b is None or b.total <= ctx.max_length or (b.per_image and b.image_tokens > ctx.max_length):
        return
    yield {
        "estimate": "" if b.exact_text else "about ",
        "total": b.total,
        "model": b.model,
        "image_tokens": b.image_tokens,
        "text_tokens": b.text_tokens,
        "how": " by the tokenizer" if b.exact_text else " estimated",
        "max_length": ctx.max_length,
        "consequence": OVER_LENGTH.get(ctx.target, OVER_LENGTH["swift"]),
        "knob": _knob(b.model) if b.per_image else "split it",
    }
