"""VD6: what the pixels show — blank images, letterboxed images, one picture twice in a sample.

These rules decode a small thumbnail of each image (``media.phash``: JPEG draft mode, cached on
disk with the header probes), which costs more than the header-only VD3 checks, so they are
**opt-in**: they run only when selected explicitly (``--select VD6`` or a code such as VD601);
``--select VD`` and the default leave them out. The duplicate check compares perceptual hashes and
needs numpy (``pip install 'vlmdata[quality]'``); without it only the same
file named twice is reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from vlmdata.media.inspect import MediaInfo
from vlmdata.media.phash import ImageHasher, Visual
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import MediaView

BLANK_STD = 3.0  # grey-level standard deviation (0-255) under which an image is near-uniform
PAD_SHARE = 0.4  # share of the image in uniform edge bands from which it is reported as letterboxed
DUP_BITS = 4  # perceptual-hash distance (of 64 bits) under which two images of one sample are one picture


def _visual(m: MediaView, ctx: ValidationContext) -> Visual | None:
    """The thumbnail facts of a local, readable image; None for anything else (VD3 reports those)."""
    info = m.info
    if m.kind != "image" or not isinstance(info, MediaInfo) or not info.exists or info.remote or info.error:
        return None
    if info.is_dir or not m.resolved:
        return None
    if ctx.hasher is None:
        cache = ctx.inspector.cache_file
        ctx.hasher = ImageHasher(cache_file=cache or "", cache=cache is not None, threads=1)  # one per run
    v = ctx.hasher.get(m.resolved)
    return v if v.error is None else None


@rule(
    "VD601",
    "blank-image",
    "warning",
    "media",
    "image {path!r} is blank or near-uniform (grey-level spread {std:.1f} of 255, under {limit:g}); "
    "replace it with the real picture or drop the record",
    what=f"Reports an image whose pixels are (nearly) all one colour: the standard deviation of its "
    f"greyscale thumbnail is under {BLANK_STD:g} (of 255). Opt-in (`--select VD6`): it decodes pixels.",
    why="Blank frames come from failed downloads, placeholder images, black video frames or renders that "
    "did not happen. The model is trained to describe content that is not there: the answer teaches "
    "hallucination, and the image tokens are spent on nothing.",
    example='{"image": "img/000123.jpg", ...}   img/000123.jpg is a 640x480 black JPEG',
    fix="Re-download or re-render the image, or remove the record.",
)
def blank_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    v = _visual(m, ctx)
    if v is not None and v.std is not None and v.std < BLANK_STD:
        yield {"path": m.path, "std": v.std, "limit": BLANK_STD}


@rule(
    "VD602",
    "letterboxed-image",
    "warning",
    "media",
    "{share:.0%} of image {path!r} is uniform bands along its edges (letterbox or padding, at least "
    "{limit:.0%}); crop the bands (moving pixel boxes with them)",
    what=f"Reports an image whose uniform bands along the edges (rows or columns of one colour, as "
    f"letterboxing and pad-to-square leave) cover at least {PAD_SHARE:.0%} of it. Blank images are VD601. "
    "Opt-in (`--select VD6`): it decodes pixels.",
    why="The model's resize spends its pixel budget on the bands: a 16:9 video frame padded into a square "
    "keeps 56% of the tokens for content; LLaVA pads it again to a square. Boxes drawn on the padded "
    "image are also offset from the content if the padding is ever cropped.",
    example='{"image": "frames/clip_07.png", ...}   a 1280x1280 image holding a 1280x500 frame',
    fix="Crop the bands before training (shift pixel boxes by the crop offset) or re-extract the frame.",
)
def letterboxed_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    v = _visual(m, ctx)
    if v is None or v.pad is None or v.std is None or v.std < BLANK_STD or v.pad >= 1:
        return
    if v.pad >= PAD_SHARE:
        yield {"path": m.path, "share": v.pad, "limit": PAD_SHARE}


@rule(
    "VD603",
    "duplicate-image-in-sample",
    "warning",
    "media",
    "image {position} ({path!r}) of this record {how} image {other} ({other_path!r}); "
    "remove the repeated image and its tag, or replace it with the intended one",
    what=f"Reports an image of a multi-image record that is the same file as an earlier image of the "
    f"record, or a near-duplicate of it (perceptual hashes at most {DUP_BITS} bits apart). Opt-in "
    "(`--select VD6`): it decodes pixels.",
    why="Multi-image questions ('what changed between the two pictures?') become unanswerable or trivial "
    "when both pictures are one; the record also pays twice the image tokens. It is usually a copy-paste "
    "or an off-by-one in the script that built the record.",
    example='{"image": ["a.jpg", "a_copy.jpg"], "conversations": [{"from": "human", "value": '
    '"<image>\\n<image>\\nWhat differs?"}, ...]}',
    fix="Point the second tag at the intended image, or remove the repeated image and its tag.",
)
def duplicate_image_in_sample(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if m.kind != "image" or len(m.record.images) < 2:
        return
    state = ctx.file_state.setdefault("vd603", {"record": None, "seen": []})
    if state["record"] is not m.record:
        state["record"], state["seen"] = m.record, []
    seen: list[tuple[int, str, str | None, int | None]] = state["seen"]
    key = os.path.realpath(m.resolved) if m.resolved else None
    v = _visual(m, ctx)
    code = v.phash if v is not None else None
    for position, path, other_key, other_code in seen:
        if key is not None and key == other_key:
            yield {"position": m.position, "path": m.path, "other": position, "other_path": path,
                   "how": "is the same file as"}  # fmt: skip
            break
        if code is not None and other_code is not None and (code ^ other_code).bit_count() <= DUP_BITS:
            d = (code ^ other_code).bit_count()
            yield {"position": m.position, "path": m.path, "other": position, "other_path": path,
                   "how": f"is a near-duplicate ({d} bits of 64 apart) of"}  # fmt: skip
            break
    seen.append((m.position, m.path, key, code))
