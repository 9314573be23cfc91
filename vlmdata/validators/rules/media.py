"""VD3: media files — existence, containment, readability, sizes, orientation, model limits.

Every check works on a ``MediaView`` whose ``info`` the engine filled from header probes
(``vlmdata.media.inspect``: no pixel decoded, cached on disk). Videos are only checked for
existence (a frame folder must list something).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlmdata.media.headers import BOMB_PIXELS, BOMB_WARN_PIXELS
from vlmdata.media.inspect import BOMB, TRUNCATED, UNREADABLE, MediaInfo, folder_status
from vlmdata.media.paths import is_remote
from vlmdata.media.smart_resize import IMAGE_FACTOR
from vlmdata.media.tokens import QWEN_RESIZE
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import max_dynamic_patch as tile_cap
from vlmdata.validators.view import MediaView

EMBEDDED = "<embedded bytes>"  # what the record view shows for an HF image struct without a path
QWEN_MAX_RATIO = 200
OLD_TRANSFORMERS_MIN_SIDE = 10  # transformers' smart_resize before cb0fc56f (docs/frames.md#smart_resize)
TINY_SIDE = 28
INTERNVL_STRETCH = 4  # warn when dynamic tiling stretches one axis more than this (see extreme_aspect_ratio)
LLAVA_MAX_RATIO = 5  # warn when LLaVA's pad-to-square leaves the content < 1/5 of the 336-px frame
UNKNOWN_MODEL_MAX_RATIO = 50
ORIENTATIONS = {  # how viewers display the stored frame, by EXIF Orientation value
    2: "mirrored left-right",
    3: "rotated 180°",
    4: "mirrored top-bottom",
    5: "transposed (mirrored, rotated 90°)",
    6: "rotated 90° clockwise",
    7: "transversed (mirrored, rotated 270°)",
    8: "rotated 90° counter-clockwise",
}


def _info(m: MediaView) -> MediaInfo | None:
    """The probe result of an image that exists and is local; None otherwise."""
    info = m.info
    if m.kind != "image" or not isinstance(info, MediaInfo) or not info.exists or info.remote:
        return None
    return info


def _embedded(m: MediaView) -> bool:
    """The media travels inside the record: an HF ``{"bytes": ..., "path": ...}`` struct, a data URI
    or a bare base64 string."""
    if m.path == EMBEDDED or m.path.startswith("data:") or len(m.path) > 2000:
        return True
    raw = m.record.raw
    if not isinstance(raw, dict):
        return False
    keys = ("images", "image") if m.kind == "image" else ("videos", "video")
    value = next((raw[k] for k in keys if k in raw), None)
    items = value if isinstance(value, list) else [value]
    item = items[m.position] if m.position < len(items) else None
    return isinstance(item, dict) and bool(item.get("bytes"))


def _family(ctx: ValidationContext) -> str | None:
    """The model family the data is for: --model, else what the target trains."""
    model = (ctx.model or "").lower()
    for family in ("qwen", "internvl", "llava"):
        if model.startswith(family):
            return family
    return {"qwen": "qwen", "internvl": "internvl", "llava": "llava"}.get(ctx.target)


def _size(info: MediaInfo) -> tuple[int, int] | None:
    if info.error or not info.width or not info.height:
        return None
    return info.width, info.height


def _qwen_factor(ctx: ValidationContext) -> int:
    """smart_resize's factor for ``--model`` (patch x merge: 28 for Qwen2/2.5-VL, 32 for Qwen3-VL)."""
    return QWEN_RESIZE.get(ctx.model or "", (IMAGE_FACTOR,))[0]


def _qwen_refusal(m: MediaView, ctx: ValidationContext) -> str | None:
    """Why the Qwen2-VL/2.5-VL image pipeline of ``ctx.target`` raises for this image, if it does."""
    info = _info(m)
    size = _size(info) if info else None
    if size is None or _family(ctx) != "qwen" or ctx.target == "llamafactory":
        return None  # LLaMA-Factory's Qwen2VLPlugin fixes both cases first (docs/frames.md#llama-factory-pre-resize)
    w, h = size
    ratio = max(w, h) / min(w, h)
    if ratio > QWEN_MAX_RATIO:
        return (
            f"aspect ratio {ratio:.0f}:1 over {QWEN_MAX_RATIO}: smart_resize raises "
            f"'absolute aspect ratio must be smaller than 200' in transformers and qwen-vl-utils alike"
        )
    if ctx.target == "swift":
        return None  # ms-swift resizes with qwen-vl-utils, which rounds tiny sides up to 28 px
    side = min(w, h)
    factor = _qwen_factor(ctx)
    if side < OLD_TRANSFORMERS_MIN_SIDE:
        return (
            f"a side of {side} px: transformers' Qwen2VLImageProcessor raises "
            f"'height:{h} or width:{w} must be larger than factor:{factor}' "
            f"(every version: older ones refuse sides < {OLD_TRANSFORMERS_MIN_SIDE}, newer ones < {factor})"
        )
    if side < factor:
        return (
            f"a side of {side} px: transformers' Qwen2VLImageProcessor raises "
            f"'height:{h} or width:{w} must be larger than factor:{factor}' "
            f"(recent transformers; versions that only refuse sides < {OLD_TRANSFORMERS_MIN_SIDE} scale it up)"
        )
    return None


@rule(
    "VD301",
    "media-not-found",
    "error",
    "media",
    "{kind} {path!r} not found (looked at {resolved}); fix the path or pass the right --root, or drop the record",
    what="Reports an image or video that does not exist where the consumer will look for it (the path "
    "joined to the media root the way the target resolves it).",
    why="InternVL catches the error, prints 'Failed to load image' and trains on a random other row "
    "(after 10 misses in a row it stops); ms-swift raises FileNotFoundError while encoding and, with "
    "`--strict false`, deletes the row with a warning; LLaMA-Factory's mm_plugin aborts the run mid-"
    "preprocessing; LLaVA crashes the data loader. In every case the trained set differs from the file.",
    example='{"image": "coco/000000123.jpg", ...}   with no coco/000000123.jpg under --root',
    fix="Correct the path or the root (`--root`, the InternVL meta `root`, the dataset_info `media_dir`), "
    "or remove the record.",
)
def media_not_found(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if m.resolved is None or _embedded(m):
        return
    if m.kind == "image":
        info = m.info
        missing = isinstance(info, MediaInfo) and not info.exists
    else:
        missing = not folder_status(m.resolved).exists
    if missing:
        yield {"kind": m.kind, "path": m.path, "resolved": m.resolved}


@rule(
    "VD302",
    "media-outside-root",
    "error",
    "media",
    "{error}",
    what="Reports a media path that resolves outside the media root: `../` components, an absolute "
    "path when a root was named, or a symlink whose target lies outside the root.",
    why="Training machines usually get the dataset folder, not the files around it: the row fails there "
    "as a missing file (see VD301 for what each trainer does). A path out of the root is also how a "
    "dataset reads files it should not (`../../etc/...`).",
    example='{"image": "../other_dataset/img.jpg", ...}',
    fix="Copy the file under the root and fix the path, pass the right `--root`, or accept it with "
    "`--allow-outside-root`.",
)
def media_outside_root(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if m.resolve_error:
        yield {"kind": m.kind, "path": m.path, "error": m.resolve_error}


@rule(
    "VD303",
    "remote-media-unchecked",
    "info",
    "media",
    "{kind} {url!r} is remote: not checked (existence, size, orientation)",
    what="Notes a media reference that is a URL (http, https, s3, oss, gs, data URIs): vlmdata does not "
    "download it, so none of the other media rules ran on it.",
    why="ms-swift and qwen-vl-utils fetch http(s) URLs at training time (a dead link fails the row then); "
    "InternVL string-concatenates `s3://` paths for petrel; LLaVA and LLaMA-Factory expect local files.",
    example='{"images": ["https://example.com/cat.jpg"], ...}',
    fix="Download the media and point the records at local copies to have them checked, or `--ignore VD303`.",
)
def remote_media_unchecked(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if is_remote(m.path) and not _embedded(m):
        yield {"kind": m.kind, "url": m.path[:200]}


@rule(
    "VD304",
    "empty-frame-folder",
    "error",
    "media",
    "video {path!r} is a frame folder with no files in it ({resolved}); add the frames or drop the record",
    what="Reports a video given as a folder of frames (InternVL `video` ending in `/`) that is empty.",
    why="InternVL samples frames from the folder listing: an empty list raises inside `__getitem__`, "
    "which prints 'Failed to load video' and trains on a random other row.",
    example='{"video": "clips/0001/", ...}   with clips/0001/ empty',
    fix="Extract the frames into the folder, fix the path, or remove the record.",
)
def empty_frame_folder(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if m.kind != "video" or m.resolved is None or _embedded(m):
        return
    status = folder_status(m.resolved)
    if status.is_dir and status.entries == 0:
        yield {"path": m.path, "resolved": m.resolved}


@rule(
    "VD305",
    "unreadable-image",
    "error",
    "media",
    "image {path!r} {error}; replace the file or drop the record",
    what="Reports an image whose header cannot be read: not an image, an unknown format, an empty file, "
    "a folder or device where a file is expected, a header cut short.",
    why="Every trainer opens images with `PIL.Image.open(...).convert('RGB')`: InternVL prints the error "
    "and trains on a random other row, ms-swift deletes the row (or stops with `--strict true`), "
    "LLaMA-Factory and LLaVA stop the run.",
    example='{"image": "img/0001.jpg", ...}   where img/0001.jpg is an HTML error page saved by a crawler',
    fix="Re-download or re-export the image (`python -c \"from PIL import Image; Image.open('f').load()\"` "
    "reproduces the error), or remove the record.",
)
def unreadable_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    if info is not None and info.problem == UNREADABLE:
        yield {"path": m.path, "error": info.error}


@rule(
    "VD306",
    "truncated-image",
    "error",
    "media",
    "image {path!r} {error}; re-download or re-export it",
    what="Reports an image whose file is cut short: a JPEG without its end-of-image marker after the scan "
    "data, a PNG without its IEND chunk, a GIF without its trailer, a WebP shorter than its RIFF size — "
    "when decoding it then fails. The end of the file is checked for every image; only the suspects "
    "are decoded, so files with trailing bytes (motion photos) are not reported.",
    why="The header is intact, so listing and size checks pass and the failure appears only when the "
    "trainer decodes the pixels: `OSError: image file is truncated`. InternVL then trains on a random "
    "other row, ms-swift drops the row, LLaMA-Factory and LLaVA stop the run, possibly hours in. A loader "
    "that sets `ImageFile.LOAD_TRUNCATED_IMAGES = True` trains on a grey-filled image instead.",
    example='{"image": "img/0001.jpg", ...}   where the download of img/0001.jpg stopped at 60%',
    fix="Re-download or re-export the image, or remove the record.",
)
def truncated_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    if info is not None and info.problem == TRUNCATED:
        yield {"path": m.path, "error": info.error}


@rule(
    "VD307",
    "decompression-bomb",
    "error",
    "media",
    "image {path!r} {error}: every trainer's Image.open raises DecompressionBombError; downscale it or drop the record",
    what=f"Reports an image over {BOMB_PIXELS:,} pixels (twice Pillow's `MAX_IMAGE_PIXELS`), from its "
    "header only: a decompression bomb or an absurd size.",
    why="Pillow refuses to open it (`DecompressionBombError`) unless the trainer disables the guard, in which "
    "case decoding it takes gigabytes per data-loader worker. InternVL trains on a random other row, "
    "ms-swift drops the row, LLaMA-Factory and LLaVA stop the run.",
    example='{"image": "scan.png", ...}   where scan.png is a 30000x30000 1-bit PNG of 100 KB',
    fix="Downscale the image to what the model can use (no VLM here sees more than ~13 megapixels) or "
    "remove the record.",
)
def decompression_bomb(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    if info is not None and info.problem == BOMB:
        yield {"path": m.path, "error": info.error}


@rule(
    "VD308",
    "huge-image",
    "warning",
    "media",
    "image {path!r} is {width}x{height} = {pixels:,} pixels, over {limit:,}: Pillow warns and every "
    "load decodes ~{mb:,} MB of RGB; downscale it",
    what=f"Reports an image over Pillow's `MAX_IMAGE_PIXELS` ({BOMB_WARN_PIXELS:,}) and up to twice that: "
    "opened with a `DecompressionBombWarning`.",
    why="The trainers decode the full frame on every epoch before shrinking it to at most 12 InternVL tiles "
    "(2.4 MP) or Qwen's max_pixels (1-12.8 MP): data loading slows down and each worker holds hundreds of "
    "megabytes; nothing of the resolution reaches the model.",
    example='{"image": "aerial.tif", ...}   12000x9000',
    fix="Downscale the image once, offline (keeping boxes relative or rescaling pixel boxes), or tile it "
    "into several records.",
)
def huge_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    size = _size(info) if info else None
    if size is not None and size[0] * size[1] > BOMB_WARN_PIXELS:
        w, h = size
        yield {
            "path": m.path,
            "width": w,
            "height": h,
            "pixels": w * h,
            "limit": BOMB_WARN_PIXELS,
            "mb": w * h * 3 // 10**6,
        }


@rule(
    "VD309",
    "image-size-mismatch",
    "error",
    "media",
    "image {path!r}: the record declares {field} = {dw}x{dh} but the file is {w}x{h}{hint}; "
    "set {field} to {w}x{h} and re-check boxes computed from the declared size",
    what="Reports an image whose declared size (InternVL `width`/`height`, or `width_list`/`height_list` "
    "for multi-image records) differs from the stored frame read from the file header.",
    why="Boxes are normalised to 0-1000 with these sizes (InternVL docs: `round(x / width * 1000)`); "
    "tools that convert or check boxes trust them. A wrong size means every box of the record points at "
    "the wrong place, silently: InternVL's loader never reads the fields. A swapped size usually comes "
    "from an EXIF-aware tool (see VD310).",
    example='{"image": "a.jpg", "width": 640, "height": 480, ...}   where a.jpg is 480x640',
    fix="Write the file's size (the raw frame, without EXIF rotation) and recompute boxes that were "
    "normalised with the wrong one.",
)
def image_size_mismatch(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    size = _size(info) if info else None
    if size is None or m.declared is None or tuple(m.declared) == size:
        return
    (dw, dh), (w, h) = m.declared, size
    hint = ""
    if (dw, dh) == (h, w) and info.exif_orientation in (5, 6, 7, 8):
        hint = " (the declared size is the EXIF-rotated view; trainers load the stored frame)"
    elif (dw, dh) == (h, w):
        hint = " (width and height swapped)"
    raw = m.record.raw or {}
    single = isinstance(raw.get("image", raw.get("images")), str)
    field = "width/height" if single else f"width_list/height_list[{m.position}]"
    yield {"path": m.path, "field": field, "dw": dw, "dh": dh, "w": w, "h": h, "hint": hint}


@rule(
    "VD310",
    "exif-orientation",
    "warning",
    "media",
    "image {path!r} has EXIF orientation {orientation}: viewers show it {effect} ({shown}), the trainers load "
    "the stored {w}x{h} frame; bake the orientation into the pixels if boxes or text describe the displayed view",
    what="Reports an image whose EXIF Orientation tag is 2-8: photo viewers, browsers and most annotation "
    "tools display it mirrored or rotated, while the stored pixels are not.",
    why="None of the loaders (ms-swift, InternVL, LLaVA, LLaMA-Factory, Qwen's, TRL) calls "
    "`ImageOps.exif_transpose` (docs/consumers.md#exif-orientation): the model sees the stored frame. Boxes drawn on "
    "the displayed view are wrong on it (for 5-8 even width and height are swapped), and 'left'/'right' in "
    "the text is mirrored for 2, 4, 5 and 7.",
    example='{"image": "phone.jpg", "width": 3024, "height": 4032, ...}   stored 4032x3024 with orientation 6',
    fix="If the annotations were made on the displayed view, rewrite the image upright and drop the tag "
    "(`ImageOps.exif_transpose(im).save(...)`, or losslessly `exiftran -ai *.jpg`); if they were made on "
    "the stored frame, strip the tag (`exiftool -Orientation= -n`) so that viewers agree with the trainer.",
)
def exif_orientation(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    size = _size(info) if info else None
    if size is None or info.exif_orientation not in ORIENTATIONS:
        return
    w, h = size
    shown = f"{h}x{w}" if info.exif_orientation >= 5 else f"{w}x{h}"
    yield {
        "path": m.path,
        "orientation": info.exif_orientation,
        "effect": ORIENTATIONS[info.exif_orientation],
        "shown": shown,
        "w": w,
        "h": h,
    }


@rule(
    "VD311",
    "qwen-rejects-image",
    "error",
    "media",
    "image {path!r} is {w}x{h}, {reason}; pad or crop it (or drop the record)",
    what="For Qwen2-VL / Qwen2.5-VL data (`--model qwen2-vl|qwen2.5-vl`, or `--target qwen`): reports an "
    "image the processor's `smart_resize` refuses (docs/frames.md#smart_resize): an aspect ratio over 200 (every "
    "implementation), or a side under 28 px where transformers' image processor runs on the raw image "
    "(recent transformers raise below 28 px, older versions below 10 px). Not reported for "
    "`--target llamafactory` (its Qwen2VLPlugin resizes both cases first: VD312/VD313 warn instead), and "
    "tiny sides not for `--target swift` (qwen-vl-utils rounds them up to 28 px: VD312).",
    why="The processor raises `ValueError` while the row is encoded: ms-swift drops the row (or stops with "
    "`--strict true`), Qwen's qwen-vl-finetune and TRL stop the run.",
    example='{"images": ["strip.png"], ...}   strip.png is 8x2000 (ratio 250), --model qwen2.5-vl',
    fix="Pad the image towards a sane aspect ratio (and shift pixel boxes by the padding), crop it into "
    "pieces, upscale a tiny image to at least 28 px per side, or drop the record.",
)
def qwen_rejects_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    reason = _qwen_refusal(m, ctx)
    if reason is not None:
        info = m.info
        yield {"path": m.path, "w": info.width, "h": info.height, "reason": reason}


def _tiny_effect(ctx: ValidationContext, side: int) -> str:
    family = _family(ctx)
    if family == "qwen":
        if ctx.target == "llamafactory":
            return "LLaMA-Factory's Qwen2VLPlugin stretches sides under 28 px to 28 (distorting it)"
        return "qwen-vl-utils rounds the side up to 28 px (a few pixels stretched over one token)"
    if family == "internvl":
        return f"InternVL upsamples it ~{448 / side:.0f}x into a 448-px tile"
    if family == "llava":
        return f"LLaVA pads it to a square and upsamples it ~{336 / side:.0f}x to 336 px"
    return "recent transformers' Qwen2-VL/2.5-VL processor refuses sides under 28 px; other models upsample it"


@rule(
    "VD312",
    "tiny-image",
    "warning",
    "media",
    "image {path!r} is {w}x{h}, a side under {limit} px: {effect}; check that it is the intended image",
    what=f"Reports an image with a side under {TINY_SIDE} px (one Qwen token is 28x28 px; two ViT patches of "
    "InternVL/LLaVA) when the target's pipeline does not refuse it outright (that is VD311).",
    why="Such images are usually placeholders, icons or failed downloads (1x1 tracking pixels). The model "
    "gets a blurred upsampled patch: LLaMA-Factory's Qwen2VLPlugin stretches the side to 28 px, "
    "qwen-vl-utils (ms-swift) rounds it up to 28, InternVL upsamples to a 448-px tile, LLaVA to 336 px.",
    example='{"image": "thumb.gif", ...}   thumb.gif is 1x1',
    fix="Replace it with the real image or remove the record.",
)
def tiny_image(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    size = _size(info) if info else None
    if size is None or min(size) >= TINY_SIDE or _qwen_refusal(m, ctx) is not None:
        return
    w, h = size
    yield {"path": m.path, "w": w, "h": h, "limit": TINY_SIDE, "effect": _tiny_effect(ctx, min(w, h))}


def _aspect_problem(m: MediaView, ctx: ValidationContext, w: int, h: int) -> str | None:
    ratio = max(w, h) / min(w, h)
    family = _family(ctx)
    if family == "internvl":
        # dynamic_preprocess picks the grid i x j (i*j <= max_num) closest to the image's ratio, then
        # resizes without keeping the aspect: past max_num:1 the frame is stretched by ratio / max_num
        n = max(1, len(m.record.images))
        max_num = max(1, tile_cap(ctx) // n)
        stretch = ratio / max_num
        if stretch > INTERNVL_STRETCH:
            grid = f"{max_num}x1" if w >= h else f"1x{max_num}"
            return (
                f"InternVL's dynamic tiling (at most {max_num} tiles{' per image' if n > 1 else ''}) resizes it to "
                f"a {grid} grid of 448-px tiles, distorting its aspect {stretch:.0f}x"
            )
        return None
    if family == "llava":
        if ratio > LLAVA_MAX_RATIO:
            return (
                f"LLaVA pads it to a square before resizing to 336 px: {100 - 100 / ratio:.1f}% of the input is "
                f"padding and the image keeps {336 / ratio:.0f} px across"
            )
        return None
    if family == "qwen":
        if ctx.target == "llamafactory" and ratio > QWEN_MAX_RATIO:
            return "LLaMA-Factory's Qwen2VLPlugin resizes it to 180:1 (distorting it) so that smart_resize accepts it"
        return None  # native resolution copes; > 200 elsewhere is VD311
    if ratio > UNKNOWN_MODEL_MAX_RATIO:
        return (
            "Qwen2-VL/2.5-VL refuse ratios over 200, InternVL stretches it over its tile grid, LLaVA fills "
            "most of its square with padding (pass --model for a precise verdict)"
        )
    return None


@rule(
    "VD313",
    "extreme-aspect-ratio",
    "warning",
    "media",
    "image {path!r} is {w}x{h} (aspect ratio {ratio:.0f}:1): {problem}; crop or tile it",
    what="Reports an image so elongated that the target model's preprocessing distorts or wastes it; "
    "the limit depends on the model (`--model`, else the target): InternVL when dynamic tiling "
    f"stretches one axis more than {INTERNVL_STRETCH}x (ratio > {INTERNVL_STRETCH} x max_dynamic_patch "
    "/ images in the record: 48:1 for one image and 12 tiles), LLaVA-1.5 over "
    f"{LLAVA_MAX_RATIO}:1 (pad to square), Qwen with LLaMA-Factory over 200:1, any other model over "
    f"{UNKNOWN_MODEL_MAX_RATIO}:1.",
    why="InternVL resizes to the closest grid of 448-px tiles with at most max_dynamic_patch tiles "
    "(docs/consumers.md#image-tokens), ignoring the aspect: a 20x2000 strip becomes 448x5376 (1x12 tiles), each pixel "
    "column stretched 22x wide but only 2.7x tall, text unreadable. LLaVA-1.5 pads to a square: at 5:1 "
    "80% of its 336-px input is padding and the content keeps 67 px across (under 5 patches). "
    "LLaMA-Factory's Qwen2VLPlugin squeezes ratios over 200 to 180:1. Qwen elsewhere refuses them (VD311).",
    example='{"image": "receipt_strip.png", ...}   20x2000, --target internvl',
    fix="Crop the relevant region, or cut the image into several images of the record (one `<image>` "
    "each), or pad it towards a square (shifting pixel boxes by the padding).",
)
def extreme_aspect_ratio(m: MediaView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    info = _info(m)
    size = _size(info) if info else None
    if size is None:
        return
    w, h = size
    problem = _aspect_problem(m, ctx, w, h)
    if problem is not None:
        yield {"path": m.path, "w": w, "h": h, "ratio": max(w, h) / min(w, h), "problem": problem}
