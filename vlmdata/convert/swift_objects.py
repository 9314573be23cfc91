"""ms-swift ``objects`` grounding: filling ``<ref-object>``/``<bbox>`` and building it back.

Two semantics (docs/formats.md#swift-objects, docs/formats.md#swift-legacy-objects):

* current dict ``{ref, bbox, bbox_type, image_id}``: ``<ref-object>`` and ``<bbox>`` are
  independent counters over ``ref`` and ``bbox``; ``bbox_type`` is ``real`` (default) or
  ``norm1``. ms-swift reads any other value as ``real`` without a word (docs/formats.md#swift-objects), so we refuse it.
* legacy list ``[{caption, bbox, bbox_type, image}]``: the i-th ``<ref-object>`` and the i-th
  ``<bbox>`` both take ``objects[i]``; ``bbox`` may hold several boxes; ``bbox_type`` is
  ``real`` | ``norm_1000`` (0-999, x999 floor) | ``norm_1``.
"""

from __future__ import annotations

from typing import Any

import orjson

from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Boxes, Frame, Message, Part, Points, Ref, Sample, Text, part_boxes

CURRENT_TYPES = {"real": Frame.PIXEL, "norm1": Frame.NORM1}
LEGACY_TYPES = {"real": Frame.PIXEL, "norm_1000": Frame.NORM999, "norm_1": Frame.NORM1, None: Frame.PIXEL}
LEGACY_NAMES = {Frame.PIXEL: "real", Frame.NORM999: "norm_1000", Frame.NORM1: "norm_1"}


def parse_objects(raw: Any) -> dict[str, Any] | list[Any] | None:
    """``objects`` as a dict or list; a JSON string is parsed first (legacy wrote strings)."""
    if raw is None or raw == "" or raw == [] or raw == {}:
        return None
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise RecordError(f"objects is a string but not valid JSON: {exc}", "fix objects") from None
    if not isinstance(raw, dict | list):
        raise RecordError(f"objects must be an object or a list, got {type(raw).__name__}")
    return raw


def _box(values: Any, frame: Frame, what: str) -> Box:
    if not isinstance(values, list) or len(values) not in (2, 4):
        raise RecordError(
            f"{what} must be [x1, y1, x2, y2] or a point [x, y], got {values!r}",
            "ms-swift asserts len(box) in {2, 4}",
        )
    for v in values:
        t = type(v)
        if t is not int and t is not float and (t is bool or not isinstance(v, int | float)):
            raise RecordError(f"{what} must hold numbers, got {values!r}", "fix the box")
    if len(values) == 2:
        return Box(values[0], values[1], None, None, frame)
    return Box(values[0], values[1], values[2], values[3], frame)


def _image_index(value: Any, what: str) -> int:
    """An image index from the record: a non-negative integer (the validators and writers index
    the record's images with it)."""
    if type(value) is not int or value < 0:
        raise RecordError(f"{what} must be a non-negative image index, got {value!r}", "fix the image index")
    return value


def _part(boxes: list[Box], image_index: int) -> Part:
    if len(boxes) == 1:
        return Points(tuple(boxes), image_index) if boxes[0].x2 is None else Boxes(tuple(boxes), image_index)
    if all(b.is_point for b in boxes):
        return Points(tuple(boxes), image_index)
    return Boxes(tuple(boxes), image_index)


def _markers(messages: list[Message]):
    for m in messages:
        for i, p in enumerate(m.parts):
            if (p.type == "ref" and p.text == "") or (p.type == "boxes" and not p.boxes):  # type: ignore[union-attr]
                yield m, i, p


def fill_current(messages: list[Message], objects: dict[str, Any]) -> int:
    """Fill markers from a current-style dict; returns how many entries stayed unused."""
    refs = objects.get("ref") or []
    if isinstance(refs, str):
        refs = [refs]
    if not isinstance(refs, list):
        raise RecordError(f"objects.ref must be a list of strings, got {type(refs).__name__}", "fix objects")
    if "bbox" not in objects:
        raise RecordError("objects has no 'bbox' list", "ms-swift requires objects['bbox']")
    bboxes = objects["bbox"] or []
    if not isinstance(bboxes, list):
        raise RecordError(f"objects.bbox must be a list of boxes, got {type(bboxes).__name__}", "fix objects")
    bbox_type = objects.get("bbox_type") or "real"
    frame = CURRENT_TYPES.get(bbox_type) if isinstance(bbox_type, str) else None
    if frame is None:
        raise RecordError(
            f"objects.bbox_type {bbox_type!r} is not 'real' or 'norm1': ms-swift would silently "
            "read these boxes as pixels (docs/formats.md#swift-objects)",
            "use 'norm1' for 0-1 fractions, convert other scales, or read the file with "
            "--from swift-legacy if it is ms-swift <=3.0 data",
        )
    image_ids = objects.get("image_id") or []
    if not isinstance(image_ids, list):
        raise RecordError(f"objects.image_id must be a list of image indexes, got {image_ids!r}", "fix objects")
    image_ids = [_image_index(v, f"objects.image_id[{k}]") for k, v in enumerate(image_ids)]
    image_ids += [0] * (len(bboxes) - len(image_ids))
    ri = bi = 0
    for m, i, p in _markers(messages):
        if p.type == "ref":
            if ri >= len(refs):
                raise RecordError(
                    f"more <ref-object> placeholders than objects.ref entries ({len(refs)})",
                    "ms-swift would leave the surplus '<ref-object>' as literal text: add refs",
                )
            m.parts[i] = Ref(str(refs[ri]))
            ri += 1
        else:
            if bi >= len(bboxes):
                raise RecordError(
                    f"more <bbox> placeholders than objects.bbox entries ({len(bboxes)})",
                    "ms-swift would leave the surplus '<bbox>' as literal text: add boxes",
                )
            m.parts[i] = _part([_box(bboxes[bi], frame, f"objects.bbox[{bi}]")], image_ids[bi])
            bi += 1
    return (len(refs) - ri) + (len(bboxes) - bi)


def fill_legacy(messages: list[Message], objects: list[Any]) -> int:
    """Fill markers from a legacy list, pairing the i-th placeholder with ``objects[i]``."""
    parsed: list[tuple[str, list[Box], int]] = []
    for k, obj in enumerate(objects):
        if isinstance(obj, list) and len(obj) == 2:
            obj = {"caption": obj[0], "bbox": obj[1], "bbox_type": None}
        if not isinstance(obj, dict) or "bbox" not in obj:
            raise RecordError(f"objects[{k}] must be {{caption, bbox, bbox_type, image}}, got {obj!r}")
        bbox_type = obj.get("bbox_type")
        if not (bbox_type is None or isinstance(bbox_type, str)) or bbox_type not in LEGACY_TYPES:
            raise RecordError(
                f"objects[{k}].bbox_type {bbox_type!r} is not real, norm_1000 or norm_1",
                "fix bbox_type",
            )
        frame = LEGACY_TYPES[bbox_type]
        raw = obj["bbox"]
        lists = raw if isinstance(raw, list) and raw and isinstance(raw[0], list) else [raw]
        boxes = [_box(b, frame, f"objects[{k}].bbox") for b in lists]
        parsed.append(
            (str(obj.get("caption") or ""), boxes, _image_index(obj.get("image") or 0, f"objects[{k}].image"))
        )
    ri = bi = 0
    for m, i, p in _markers(messages):
        n = ri if p.type == "ref" else bi
        if n >= len(parsed):
            raise RecordError(
                f"placeholder number {n + 1} has no objects[{n}] ({len(parsed)} objects)",
                "add the object or remove the placeholder",
            )
        caption, boxes, image = parsed[n]
        if p.type == "ref":
            m.parts[i] = Ref(caption)
            ri += 1
        else:
            m.parts[i] = _part(boxes, image)
            bi += 1
    used = max(ri, bi)
    return len(parsed) - used


def fill(messages: list[Message], raw_objects: Any) -> int:
    objects = parse_objects(raw_objects)
    if objects is None:
        if any(True for _ in _markers(messages)):
            raise RecordError(
                "the text has <ref-object>/<bbox> placeholders but the record has no objects",
                "add objects or remove the placeholders",
            )
        return 0
    unused = fill_current(messages, objects) if isinstance(objects, dict) else fill_legacy(messages, objects)
    for m in messages:
        m.parts = merge_adjacent_boxes(m.parts)
    return unused


def merge_adjacent_boxes(parts: list[Part]) -> list[Part]:
    """``<bbox><bbox>`` with nothing between is one referent's boxes (as Qwen's consecutive
    ``<|box_start|>`` groups and InternVL's ``<box>[[..], [..]]</box>`` are)."""
    prev_type = None
    for p in parts:
        t = p.type
        if t == prev_type and (t == "boxes" or t == "points"):
            break
        prev_type = t
    else:
        return parts  # no two box parts in a row: nothing to merge
    out: list[Part] = []
    for p in parts:
        prev = out[-1] if out else None
        if isinstance(p, Boxes) and isinstance(prev, Boxes) and prev.image_index == p.image_index:
            out[-1] = Boxes(prev.boxes + p.boxes, p.image_index)
        elif isinstance(p, Points) and isinstance(prev, Points) and prev.image_index == p.image_index:
            out[-1] = Points(prev.points + p.points, p.image_index)
        else:
            out.append(p)
    return out


def grounding_parts(sample: Sample):
    """(message, index, part) of every Ref/Boxes/Points part, in conversation order."""
    for m in sample.messages:
        for i, p in enumerate(m.parts):
            if p.type in ("ref", "boxes", "points"):
                yield m, i, p


class PlaceholderRenderer:
    """Renders parts as ms-swift text: refs become ``<ref-object>``, boxes ``<bbox>``.

    Subclasses collect the refs and boxes into the ``objects`` layout they write.
    """

    def render(self, parts: list[Part]) -> str:
        out = []
        for p in parts:
            if isinstance(p, Text):
                out.append(p.text)
            elif isinstance(p, Ref):
                self.on_ref(p.text)
                out.append("<ref-object>")
            elif isinstance(p, Boxes | Points):
                out.append(self.on_boxes(part_boxes(p), p.image_index))
            else:
                out.append(f"<{p.type}>")
        return "".join(out)

    def on_ref(self, text: str) -> None:
        """Record one ``<ref-object>``."""

    def on_boxes(self, boxes: tuple[Box, ...], image_index: int) -> str:
        """Record one referent's boxes; returns the placeholder text for them."""
        return ""
