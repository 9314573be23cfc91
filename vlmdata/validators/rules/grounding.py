"""VD2: grounding: boxes inside their frame, corner order, ms-swift ``objects`` and placeholders.

Box checks read the strictly decoded ``Sample`` (every format's box syntax is parsed into
``Box``es with their frame there) and are skipped when the reader rejected the record (VD002 says
why). The ms-swift ``objects`` checks read the raw record, so they still explain a record whose
objects the reader refuses. Pixel boxes are checked against the sizes the record declares
(``width``/``height``, ``width_list``/``height_list``); files are never opened here (the media
rules own probing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vlmdata.convert.swift_objects import parse_objects
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Frame, part_boxes
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import RecordView

LIMITS = {Frame.NORM1000: 1000, Frame.NORM999: 999, Frame.NORM1: 1, Frame.NORM1_SQUARE: 1}
FRAME_NAMES = {
    Frame.NORM1000: "the 0-1000 frame",
    Frame.NORM999: "the 0-999 frame (legacy ms-swift norm_1000)",
    Frame.NORM1: "the 0-1 frame",
    Frame.NORM1_SQUARE: "the 0-1 frame of the padded square",
}


@dataclass(slots=True)
class BoxAt:
    where: str  # the turn, e.g. "conversations[1]"
    ref: str | None  # the referring expression just before the box, if any
    image: int  # image index
    box: Box


_CACHE: list[Any] = [None, None]


def boxes_of(view: RecordView) -> list[BoxAt]:
    """Every box and point of the decoded sample, in conversation order (empty without a sample)."""
    if _CACHE[0] is view:
        return _CACHE[1]
    out: list[BoxAt] = []
    if view.sample is not None:
        for k, m in enumerate(view.sample.messages):
            where = view.turns[k].key if k < len(view.turns) else f"message {k}"
            ref = None
            for p in m.parts:
                if p.type == "ref":
                    ref = p.text  # type: ignore[union-attr]
                elif p.type in ("boxes", "points"):
                    items = part_boxes(p)  # type: ignore[arg-type]
                    out.extend(BoxAt(where, ref, p.image_index, b) for b in items)  # type: ignore[union-attr]
    _CACHE[:] = [view, out]
    return out


def _num(v: float) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _show(b: BoxAt) -> str:
    text = "[" + ", ".join(_num(v) for v in b.box.coords()) + "]"
    if b.ref:
        text += f" ({b.ref[:40]!r})"
    return f"{text} in {b.where}"


def _more(n: int) -> str:
    return f" (and {n} more in this record)" if n else ""


def _size(view: RecordView, image: int) -> tuple[int, int] | None:
    """The image size the record declares (no file is read)."""
    if image < len(view.declared_sizes) and view.declared_sizes[image]:
        return view.declared_sizes[image]
    if view.sample is not None and image < len(view.sample.images):
        media = view.sample.images[image]
        if media.width and media.height:
            return media.width, media.height
    return None


def _bounds(view: RecordView, b: BoxAt) -> tuple[float, float] | None:
    """(max x, max y) of the box's frame, when known."""
    frame = b.box.frame
    if frame in LIMITS:
        return LIMITS[frame], LIMITS[frame]
    if frame is Frame.PIXEL_RESIZED:
        return b.box.resized
    return _size(view, b.image)


def _reversed(b: Box) -> bool:
    return b.x2 is not None and b.y2 is not None and (b.x1 >= b.x2 or b.y1 >= b.y2)


def _xywh_like(view: RecordView, b: BoxAt) -> bool:
    """Reversed corners that read as a plausible x, y, w, h (positive size, inside the frame)."""
    box = b.box
    if box.x2 is None or box.y2 is None or not (box.x2 < box.x1 or box.y2 < box.y1):
        return False
    if min(box.coords()) < 0 or box.x2 <= 0 or box.y2 <= 0:
        return False
    bounds = _bounds(view, b)
    return bounds is None or (box.x1 + box.x2 <= bounds[0] and box.y1 + box.y2 <= bounds[1])


@rule(
    "VD201",
    "reversed-box",
    "error",
    "record",
    "box {box} has {problem}{more}: ms-swift silently swaps reversed corners (hiding a wrong conversion) and the "
    "other trainers learn the box as written; recheck the conversion and write x1 < x2, y1 < y2",
    what="Reports boxes `[x1, y1, x2, y2]` with x1 >= x2 or y1 >= y2 (reversed corners, or no width/height), in "
    "any grounding syntax the record uses.",
    why="Every format here uses corner boxes (docs/frames.md#coco-xywh). ms-swift swaps reversed corners without a "
    "word, so a wrong conversion (x,y,w,h read as corners, axes swapped) trains without complaint there and yields "
    "garbage boxes for InternVL, Qwen or LLaVA, which take the numbers as written. A zero-size box is "
    "usually a rounding or clamping accident.",
    example="<ref>cat</ref><box>[[500, 400, 120, 600]]</box>",
    fix="Find the conversion step that produced the box and write x1 < x2, y1 < y2 (VD205 says when the boxes "
    "look like x, y, w, h).",
)
def reversed_box(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    bad = [b for b in boxes_of(view) if _reversed(b.box)]
    if bad:
        box = bad[0].box
        problem = (
            "x1 >= x2 and y1 >= y2"
            if box.x1 >= box.x2 and box.y1 >= box.y2  # type: ignore[operator]
            else ("x1 >= x2" if box.x1 >= box.x2 else "y1 >= y2")  # type: ignore[operator]
        )
        yield {"box": _show(bad[0]), "problem": problem, "more": _more(len(bad) - 1)}


def _out_of_range(b: BoxAt) -> bool:
    frame = b.box.frame
    coords = b.box.coords()
    if frame in LIMITS:
        return min(coords) < 0 or max(coords) > LIMITS[frame]
    if frame is Frame.PIXEL_RESIZED and b.box.resized:
        w, h = b.box.resized
        return min(coords) < 0 or max(coords[0::2]) > w or max(coords[1::2]) > h
    return False


@rule(
    "VD202",
    "box-out-of-range",
    "error",
    "record",
    "box {box} is outside {frame}{more}: {hint}; fix the scale of the conversion (or clamp the box)",
    what="Reports box or point coordinates outside the range of their frame: 0-1000 (InternVL, Qwen2-VL/3-VL "
    "tokens), 0-999 (legacy ms-swift norm_1000), 0-1 (ms-swift norm1, LLaVA), 0-W'/H' (Qwen2.5-VL resized "
    "pixels).",
    why="No trainer checks the range: ms-swift does not clamp when it normalises (values > 1000 go into the "
    "prompt), InternVL and Qwen tokenize whatever number is written. A value out of range almost always means "
    "the wrong scale was used (pixels written as 0-1000, 0-1000 written as norm1), so every box of the file is "
    "wrong, not just this one (docs/frames.md#norm999, docs/frames.md#clamping).",
    example='{"messages": [...], "objects": {"ref": ["cat"], "bbox": [[120, 40, 380, 300]], "bbox_type": "norm1"}}',
    fix="Convert with the right scale (`vlmdata convert` moves boxes between frames), or clamp boxes that only "
    "overshoot the image edge.",
)
def box_out_of_range(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    bad = [b for b in boxes_of(view) if _out_of_range(b)]
    if not bad:
        return
    first = bad[0]
    frame = first.box.frame
    if frame is Frame.PIXEL_RESIZED:
        w, h = first.box.resized  # type: ignore[misc]
        name = f"the {w}x{h} resized image"
    else:
        name = FRAME_NAMES[frame]
    coords = first.box.coords()
    if min(coords) < 0:
        hint = "negative coordinates"
    elif frame in (Frame.NORM1, Frame.NORM1_SQUARE):
        hint = "values above 1 in a 0-1 frame are usually pixels or 0-1000 numbers"
    elif frame is Frame.PIXEL_RESIZED:
        hint = "the box does not fit the smart-resized image: the boxes were made for another resize setting"
    else:
        hint = f"values above {LIMITS[frame]} are usually pixels written as 0-{LIMITS[frame]} numbers"
    yield {
        "box": _show(first),
        "frame": name,
        "more": _more(len(bad) - 1),
        "hint": hint,
    }


@rule(
    "VD203",
    "box-outside-image",
    "warning",
    "record",
    "pixel box {box} lies outside {image}{more}: no trainer clamps it (ms-swift normalises it to values "
    "beyond 0-1000); clamp it to the image, or check the declared image size and the box source",
    what="Reports pixel boxes (ms-swift `bbox_type: real`, COCO) with negative coordinates or beyond the image's "
    "width/height, when the record declares the size (`width`/`height`, `width_list`/`height_list`).",
    why="ms-swift's `normalize_bbox` has no clamping (docs/formats.md#swift-objects, docs/frames.md#clamping): a box "
    "past the edge becomes coordinates above 1000 in the prompt. A box far outside usually means the declared size "
    "belongs to another version of the image (resized, EXIF-rotated) than the one the boxes were drawn on.",
    example='{"images": ["a.jpg"], "width_list": [320], "height_list": [240],\n'
    ' "objects": {"ref": ["cat"], "bbox": [[200, 100, 400, 200]]}, ...}',
    fix="Clamp boxes that overshoot by a pixel or two; otherwise find which size the boxes were drawn on "
    "(the media rules check declared sizes against the files).",
)
def box_outside_image(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    bad: list[tuple[BoxAt, str]] = []
    for b in boxes_of(view):
        if b.box.frame is not Frame.PIXEL:
            continue
        coords = b.box.coords()
        size = _size(view, b.image)
        if size is not None:
            w, h = size
            if min(coords) < 0 or max(coords[0::2]) > w or max(coords[1::2]) > h:
                bad.append((b, f"the {w}x{h} image"))
        elif min(coords) < 0:
            bad.append((b, "the image (negative coordinates)"))
    if bad:
        yield {"box": _show(bad[0][0]), "image": bad[0][1], "more": _more(len(bad) - 1)}


@rule(
    "VD205",
    "box-looks-like-xywh",
    "info",
    "record",
    "{n} reversed box(es) read as x, y, w, h, e.g. {box} would be the corners {corners}: if the source was "
    "COCO-style x, y, w, h, convert with x2 = x + w, y2 = y + h",
    what="A diagnosis for VD201: reversed boxes whose numbers make sense as x, y, width, height (positive size, "
    "x + w and y + h inside the frame).",
    why="COCO and Visual Genome store x, y, w, h; every trainer here expects corners (docs/frames.md#coco-xywh). "
    "Written as corners, most such boxes come out reversed, which ms-swift silently swaps into a box of the "
    "wrong size. The hint says which conversion to check.",
    example='{"objects": {"ref": ["cat"], "bbox": [[120, 80, 60, 40]]}, ...}   <- x=120, y=80, w=60, h=40',
    fix="Convert x, y, w, h to corners: x2 = x + w, y2 = y + h (then renormalise if the frame is relative).",
)
def box_looks_like_xywh(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    like = [b for b in boxes_of(view) if _xywh_like(view, b)]
    if like:
        box = like[0].box
        corners = [box.x1, box.y1, box.x1 + box.x2, box.y1 + box.y2]  # type: ignore[operator]
        yield {
            "n": len(like),
            "box": _show(like[0]),
            "corners": "[" + ", ".join(_num(round(v, 6)) for v in corners) + "]",
        }


# --------------------------------------------------------------------------- ms-swift objects (raw)


def _objects(view: RecordView, ctx: ValidationContext) -> tuple[bool, Any]:
    """(present, parsed objects or None when unreadable) for --target swift."""
    raw = view.raw
    if ctx.target != "swift" or not isinstance(raw, dict):
        return False, None
    value = raw.get("objects")
    if value is None or value == "" or value == [] or value == {}:
        return False, None
    try:
        return True, parse_objects(value)
    except RecordError:
        return True, None


def _numbers(boxes: Any) -> list[float] | None:
    """Every coordinate of an objects.bbox list, or None when it is not a list of number lists."""
    if not isinstance(boxes, list):
        return None
    out: list[float] = []
    for b in boxes:
        if not isinstance(b, list):
            return None
        for v in b:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return None
            out.append(v)
    return out


SWIFT_TYPES = ("real", "norm1")
TYPE_ADVICE = {
    "norm_1": "write 'norm1'",
    "norm-1": "write 'norm1'",
    "norm_1000": "convert the boxes to pixels ('real') or to 0-1 fractions ('norm1'): ms-swift has no 0-1000 input",
    "norm1000": "convert the boxes to pixels ('real') or to 0-1 fractions ('norm1'): ms-swift has no 0-1000 input",
}


@rule(
    "VD204",
    "bbox-type-read-as-pixels",
    "error",
    "record",
    "{what}: ms-swift tests bbox_type == 'norm1' only and reads every other box as pixels, so these boxes are "
    "silently mis-scaled; {fix}",
    what="For `--target swift`: an `objects` dict whose `bbox_type` is not 'real' or 'norm1' ('norm_1', "
    "'norm_1000', 'norm1000', ...), or whose boxes are all 0-1 fractions while `bbox_type` is missing or 'real'.",
    why="ms-swift (>= 3.1) compares `bbox_type` with the exact string 'norm1'; anything else, including the "
    "legacy names 'norm_1' and 'norm_1000', is taken as pixel coordinates without a warning ("
    "docs/formats.md#swift-objects). Fractions read as pixels put every box into the top-left pixel of the image.",
    example='{"messages": [...], "images": ["a.jpg"],\n'
    ' "objects": {"ref": ["cat"], "bbox": [[0.1, 0.2, 0.5, 0.8]], "bbox_type": "norm_1"}}',
    fix="Use 'norm1' for 0-1 fractions and 'real' (or no bbox_type) for pixels; convert 0-1000 boxes to one of "
    "the two (`vlmdata convert --from swift-legacy` reads ms-swift 2.x objects).",
)
def bbox_type_read_as_pixels(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    present, objects = _objects(view, ctx)
    if not present or not isinstance(objects, dict):
        return
    bbox_type = objects.get("bbox_type")
    if bbox_type not in (None, "") and bbox_type not in SWIFT_TYPES:
        advice = TYPE_ADVICE.get(str(bbox_type).lower(), "use 'real' (pixels) or 'norm1' (0-1 fractions)")
        yield {"what": f"objects.bbox_type is {bbox_type!r}", "fix": advice}
        return
    if bbox_type == "norm1":
        return
    values = _numbers(objects.get("bbox"))
    if values and all(0 <= v <= 1 for v in values) and any(v != int(v) for v in values):
        shown = "missing" if bbox_type in (None, "") else repr(bbox_type)
        yield {
            "what": f"objects.bbox holds 0-1 fractions but bbox_type is {shown} (pixels)",
            "fix": "set bbox_type to 'norm1'",
        }


def _placeholders(view: RecordView) -> tuple[int, int]:
    refs = sum(t.text.count("<ref-object>") for t in view.turns)
    boxes = sum(t.text.count("<bbox>") for t in view.turns)
    return refs, boxes


_COUNTS_CACHE: list[Any] = [None, None]


def _grounding_counts(view: RecordView, ctx: ValidationContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(surplus placeholders, unused entries) of a record for --target swift (VD206 and VD207 share it)."""
    if ctx.target != "swift":
        return [], []
    if _COUNTS_CACHE[0] is view:
        return _COUNTS_CACHE[1]
    result = _count_grounding(view, ctx)
    _COUNTS_CACHE[:] = [view, result]
    return result


def _count_grounding(view: RecordView, ctx: ValidationContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    present, objects = _objects(view, ctx)
    n_ref, n_bbox = _placeholders(view)
    surplus: list[dict[str, Any]] = []
    unused: list[dict[str, Any]] = []
    if not present:
        if n_ref or n_bbox:
            surplus.append(
                {
                    "what": f"{n_ref} <ref-object> and {n_bbox} <bbox> placeholder(s) but the record has no objects",
                    "fix": "add objects {ref, bbox} or remove the placeholders",
                }
            )
        return surplus, unused
    if isinstance(objects, dict):
        refs = objects.get("ref")
        n_refs = 1 if isinstance(refs, str) else (len(refs) if isinstance(refs, list) else 0)
        if "bbox" not in objects:
            surplus.append({"what": "objects has no 'bbox' list", "fix": "add objects.bbox (ms-swift reads it always)"})
            return surplus, unused
        bboxes = objects.get("bbox")
        n_boxes = len(bboxes) if isinstance(bboxes, list) else 0
        for name, have, placed in (("ref", n_refs, n_ref), ("bbox", n_boxes, n_bbox)):
            tag = "<ref-object>" if name == "ref" else "<bbox>"
            if placed > have:
                surplus.append(
                    {
                        "what": f"{placed} {tag} placeholder(s) but {have} objects.{name} "
                        + ("entry" if have == 1 else "entries"),
                        "fix": f"add the missing objects.{name} entries or remove the extra {tag}",
                    }
                )
            elif have > placed:
                entries = "entry" if have == 1 else "entries"
                unused.append({"what": f"{have} objects.{name} {entries} but {placed} {tag} placeholder(s)"})
    elif isinstance(objects, list):
        n = len(objects)
        if max(n_ref, n_bbox) > n:
            surplus.append(
                {
                    "what": f"{n_ref} <ref-object> and {n_bbox} <bbox> placeholder(s) but {n} legacy objects "
                    "(paired by index)",
                    "fix": "add the missing objects or remove the extra placeholders",
                }
            )
        elif n > max(n_ref, n_bbox):
            unused.append({"what": f"{n} legacy objects but {max(n_ref, n_bbox)} placeholder(s) to pair them with"})
    return surplus, unused


@rule(
    "VD206",
    "surplus-grounding-placeholders",
    "error",
    "record",
    "{what}: ms-swift fills <ref-object>/<bbox> in order and leaves the surplus as literal text in the training "
    "prompt; {fix}",
    what="For `--target swift`: more `<ref-object>` or `<bbox>` placeholders than `objects` has entries "
    "(`ref`/`bbox` counted separately; legacy list objects pair both by index), or placeholders without "
    "`objects`, or `objects` without `bbox`.",
    why="ms-swift's two counters are independent and never fail on a shortfall: the model is trained to print "
    "the string '<bbox>' (docs/formats.md#swift-objects). Without `objects.bbox`, ms-swift's preprocessing raises and "
    "the row is deleted.",
    example='{"messages": [{"role": "user", "content": "<image>Find the <ref-object>"},\n'
    ' {"role": "assistant", "content": "<bbox><bbox>"}], "images": ["a.jpg"],\n'
    ' "objects": {"ref": ["cat"], "bbox": [[10, 20, 110, 220]]}}',
    fix="Add the missing `objects` entries, or remove the extra placeholders.",
)
def surplus_grounding_placeholders(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _grounding_counts(view, ctx)[0]


@rule(
    "VD207",
    "unused-objects",
    "warning",
    "record",
    "{what}: ms-swift never renders the extra entries; add the <ref-object>/<bbox> placeholders where they "
    "belong or remove the entries",
    what="For `--target swift`: `objects` entries (`ref` or `bbox`) that no placeholder consumes.",
    why="ms-swift fills placeholders in order and silently ignores what is left: the boxes are not trained on, "
    "and if a placeholder was lost in an edit, the remaining boxes are paired with the wrong referents.",
    example='{"messages": [{"role": "user", "content": "<image>Find the <ref-object>"},\n'
    ' {"role": "assistant", "content": "<bbox>"}], "images": ["a.jpg"],\n'
    ' "objects": {"ref": ["cat"], "bbox": [[10, 20, 110, 220], [200, 20, 300, 220]]}}',
    fix="Add a placeholder for every entry, or remove the entries nobody uses.",
)
def unused_objects(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _grounding_counts(view, ctx)[1]
