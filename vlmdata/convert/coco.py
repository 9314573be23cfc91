"""COCO object detection ("instances" JSON) as grounding conversations; an input-only format.

Reading (``--from coco``): one sample per entry of ``images``, in file order, every image included.

* ``--coco-task detect`` (default): the user turn is ``<image>\\n`` + the InternVL doc's detection
  prompt, the answer is the InternVL doc's V3Det answer line, a blank line, then one line per
  category present: ``<ref>name</ref><box>[[...], [...]]</box>`` with all its instances in one box
  list (docs/formats.md#internvl-grounding). Categories come in the order of ``categories``, the boxes of a category
  in annotation id order. An image without any annotation is answered "There are no objects to
  detect." (``--coco-empty-answer``).
* ``--coco-task refer``: one multi-turn sample per image (RefCOCO style, docs/formats.md#internvl-grounding): per
  category present, the question "... describes: <ref>name</ref>" and the answer
  ``<ref>name</ref><box>[[...]]</box>``. One sample per (image, category) is not offered: the
  pipeline reads one record into one sample, and one conversation per image keeps the image once.
  An image without annotations has nothing to ask about and is rejected.

Boxes: COCO ``[x, y, w, h]`` pixels become corner boxes ``x, y, x + w, y + h`` in ``Frame.PIXEL``
(docs/frames.md#coco-xywh); ``width``/``height`` of the image entry go onto the MediaRef, so no image is
opened to convert them. ``file_name`` resolves under ``--root`` (the image folder; default: the
folder of the instances file, as for the other formats with relative paths).

Nothing is left out without a count: crowd regions (``iscrowd=1``) are skipped by default
(``--coco-crowd include`` keeps them) and boxes with ``w <= 0`` or ``h <= 0`` are skipped, both
counted in the report; annotations whose ``image_id`` is not in ``images`` are counted; an
annotation naming a category that is not in ``categories`` rejects its image, and so does an image
whose annotations were all skipped (answering "no objects" would be false). Segmentations,
keypoints and the other annotation fields are not carried; unknown keys of an image entry are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
from pydantic import ValidationError

from vlmdata.convert.codec import Codec, Layout, Options, ReadContext, WriteContext, shape_error
from vlmdata.convert.io import Raw
from vlmdata.convert.io import open_input as open_stream
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.coco import COCO_CATEGORIES, COCO_IMAGE_RECORD, IMAGE_KEYS
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, Message, Part, Ref, Sample, Text

# InternVL chat_data_format.md, the V3Det example (docs/formats.md#internvl-grounding)
DETECT_PROMPT = "Please detect and label all objects in the following image and mark their positions."
DETECT_ANSWER = "Sure, I will detect and label all objects in the image and mark their positions."
EMPTY_ANSWER = "There are no objects to detect."
# InternVL chat_data_format.md, the RefCOCO example; {category} becomes a Ref part
REFER_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {category}"
INPUT_ONLY = "COCO is an input format; convert from it with --from coco"


class CocoCodec(Codec):
    name = "coco"
    read_options = frozenset({"coco_task", "coco_prompt", "coco_answer", "coco_empty_answer", "coco_crowd"})
    needs_root = True
    title = "COCO instances JSON"
    layouts = ("json",)
    default_layout = "json"
    fields = "images[{id, file_name, width, height}], annotations[{image_id, category_id, bbox, iscrowd}], categories"
    boxes = "bbox: x, y, w, h in pixels of the original image (read as x, y, x+w, y+h); input only (--from coco)"
    schema = COCO_IMAGE_RECORD
    known_keys = IMAGE_KEYS

    def detect(self, record: Any, layout: Layout) -> float:
        """0 for every record: COCO is read by ``open_input`` only, so it needs ``--from coco``.

        A whole instances file read as one record by the generic reader is named in the error
        rather than reported as an unknown format."""
        if (
            isinstance(record, dict)
            and isinstance(record.get("images"), list)
            and isinstance(record.get("annotations"), list)
            and isinstance(record.get("categories"), list)
        ):
            raise VlmdataError(
                "this looks like a COCO instances file (images, annotations, categories): pass --from coco"
            )
        return 0.0

    def check_options(self, options: Options) -> None:
        raise VlmdataError(INPUT_ONLY)

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        raise RecordError(INPUT_ONLY, "pick another --to format")

    def open_input(self, path: str) -> tuple[str, Iterator[Raw], Callable[[], None]]:
        """Load the instances file whole, then yield one record per entry of ``images``.

        A COCO instances file is one JSON object whose ``annotations`` list must be grouped by
        ``image_id`` before any image is complete, so it is read whole with orjson (not streamed
        like JSONL or a JSON list); ``segmentation`` polygons/RLE, the bulk of the file, are
        dropped right after loading. Problems with the whole file (not JSON, not an object, no
        ``images``/``annotations``/``categories`` list, conflicting category ids) are usage errors.
        """
        name = "<stdin>" if path == "-" else path
        data = _load(path, name)
        images = _list(data, "images", name)
        annotations = _list(data, "annotations", name)
        categories = _categories(_list(data, "categories", name), name)
        if not images:
            raise VlmdataError(f"{name}: images is empty; there is nothing to convert")
        if not annotations:
            raise VlmdataError(
                f"{name}: annotations is empty: every image would be answered 'no objects'; "
                "an image-info file (image_info_test*.json) has no boxes to convert"
            )

        first_index: dict[Any, int] = {}
        by_image: dict[Any, list[Any]] = {}
        for k, image in enumerate(images):
            key = _key(image.get("id")) if isinstance(image, dict) else None
            if key is not None and key not in first_index:
                first_index[key] = k
                by_image[key] = []
        unmatched = 0
        for ann in annotations:
            bucket = by_image.get(_key(ann.get("image_id"))) if isinstance(ann, dict) else None
            if bucket is None:
                unmatched += 1
                continue
            ann.pop("segmentation", None)
            bucket.append(ann)
        del data, annotations
        category_position = {c["id"]: k for k, c in enumerate(categories)}

        def records() -> Iterator[Raw]:
            for k, image in enumerate(images):
                image_id = image.get("id") if isinstance(image, dict) else None
                key = _key(image_id)
                anns = by_image.get(key, []) if first_index.get(key) == k else []
                used = {category_position.get(_key(a.get("category_id"))) for a in anns}
                used.discard(None)
                payload: dict[str, Any] = {
                    "id": image_id,
                    "image": image,
                    "annotations": anns,
                    "categories": [categories[p] for p in sorted(used)],  # type: ignore[type-var]
                }
                if key is not None and first_index[key] != k:
                    payload["duplicate_of"] = first_index[key]
                if k == 0 and unmatched:
                    payload["unmatched_annotations"] = unmatched  # a file-level count, tallied once
                yield Raw(payload, None, k)

        return "json", records(), lambda: None

    def load(self, payload: bytes | Any) -> dict[str, Any]:
        """The reader's own dict; it is validated in ``decode``, after its file-level counts are tallied."""
        if not isinstance(payload, dict):
            raise RecordError("a COCO record comes from --from coco's reader only", "pass --from coco")
        return payload

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        ctx.tally.unmatched_annotations += record.get("unmatched_annotations") or 0
        record = _validate(record)
        if "duplicate_of" in record:
            raise RecordError(
                f"image id {record['id']!r} was already given by images[{record['duplicate_of']}], "
                "which took its annotations",
                "give every image entry its own id",
            )
        options = ctx.options
        image = record["image"]
        objects, crowd, empty = _objects(record, options.coco_crowd == "include")
        if not objects and (crowd or empty):
            raise RecordError(
                f"every annotation of this image was left out ({crowd} crowd region(s), {empty} box(es) "
                "with zero or negative width/height): answering that there is nothing to detect would be false",
                "pass --coco-crowd include to keep crowd boxes, or fix the boxes",
            )
        messages = _refer(objects, options) if options.coco_task == "refer" else _detect(objects, options)
        media = ctx.media(image["file_name"])
        media.width, media.height = image["width"], image["height"]
        extra = {} if image.keys() <= IMAGE_KEYS else {k: v for k, v in image.items() if k not in IMAGE_KEYS}
        ctx.tally.crowd_skipped += crowd  # counted once the sample is made: a rejected image is reported as such
        ctx.tally.empty_boxes_skipped += empty
        return Sample(messages, [media], [], [], image["id"], extra)


def _load(path: str, name: str) -> dict[str, Any]:
    stream = open_stream(path)
    try:
        raw = stream.read()
    finally:
        if path != "-":
            stream.close()
    if not raw.strip():
        raise VlmdataError(f"{name}: the file is empty; there is nothing to convert")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VlmdataError(f"{name}: invalid JSON ({exc}); a COCO instances file is one JSON object") from None
    if not isinstance(data, dict):
        raise VlmdataError(
            f"{name}: a COCO instances file is one JSON object with images, annotations and categories, "
            f"not a {type(data).__name__}; drop --from coco if this file is another format"
        )
    return data


def _list(data: dict[str, Any], key: str, name: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        got = "has none" if value is None else f"has a {type(value).__name__}"
        raise VlmdataError(
            f"{name}: a COCO instances file needs a {key!r} list and this one {got} "
            "(captions, image-info and panoptic files are not detection data)"
        )
    return value


def _categories(raw: list[Any], name: str) -> list[dict[str, Any]]:
    """The categories, validated, one entry per id (a repeated id must repeat its name)."""
    try:
        categories = COCO_CATEGORIES.validate_python(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise VlmdataError(f"{name}: categories.{loc}: {err['msg']}; every category needs an id and a name") from None
    seen: dict[Any, str] = {}
    out = []
    for cat in categories:
        if cat["id"] in seen:
            if seen[cat["id"]] != cat["name"]:
                raise VlmdataError(
                    f"{name}: category id {cat['id']!r} is both {seen[cat['id']]!r} and {cat['name']!r}; "
                    "give each category its own id"
                )
            continue
        seen[cat["id"]] = cat["name"]
        out.append(cat)
    return out


def _key(value: Any) -> Any:
    """An id usable as a dict key (int or str, not bool); None for anything else."""
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _validate(record: dict[str, Any]) -> dict[str, Any]:
    try:
        return COCO_IMAGE_RECORD.validate_python(record)
    except ValidationError as exc:
        err = shape_error(exc, "COCO").what
        loc = exc.errors(include_url=False)[0]["loc"]
        if len(loc) > 1 and loc[0] == "annotations" and isinstance(loc[1], int):
            ann = record["annotations"][loc[1]]
            ann_id = ann.get("id") if isinstance(ann, dict) else None
            err += f" (annotation id={ann_id!r})"
        raise RecordError(err, "fix the image entry or its annotations in the instances file") from None


def _corner(start: float, length: float) -> float:
    """``start + length`` without float noise (473.07 + 38.65 = 511.71999999999997 -> 511.72)."""
    return round(start + length, 9)


def _objects(record: dict[str, Any], keep_crowd: bool) -> tuple[list[tuple[str, tuple[Box, ...]]], int, int]:
    """(category name, its boxes) in category order, and how many crowd / empty boxes were skipped."""
    position = {c["id"]: (k, c["name"]) for k, c in enumerate(record["categories"])}
    grouped: dict[int, list[tuple[tuple[Any, ...], Box]]] = {}
    crowd = empty = 0
    for i, ann in enumerate(record["annotations"]):
        cat = position.get(ann["category_id"])
        if cat is None:
            raise RecordError(
                f"annotation id={ann.get('id')!r} has category_id {ann['category_id']!r}, which is not in categories",
                "add the category to categories or remove the annotation",
            )
        if ann.get("iscrowd") and not keep_crowd:
            crowd += 1
            continue
        x, y, w, h = ann["bbox"]
        if w <= 0 or h <= 0:
            empty += 1
            continue
        ann_id = ann.get("id")
        order = (0, ann_id, i) if isinstance(ann_id, int) else (1, str(ann_id), i)
        grouped.setdefault(cat[0], []).append((order, Box(x, y, _corner(x, w), _corner(y, h), Frame.PIXEL)))
    names = {k: n for k, n in position.values()}
    objects = [
        (names[k], tuple(box for _order, box in sorted(items, key=lambda item: item[0])))
        for k, items in sorted(grouped.items())
    ]
    return objects, crowd, empty


def _detect(objects: list[tuple[str, tuple[Box, ...]]], options: Options) -> list[Message]:
    prompt = DETECT_PROMPT if options.coco_prompt is None else options.coco_prompt
    user = Message("user", [ImageSlot(0), Text("\n" + prompt)])
    if not objects:
        answer = EMPTY_ANSWER if options.coco_empty_answer is None else options.coco_empty_answer
        return [user, Message("assistant", [Text(answer)])]
    lead = DETECT_ANSWER if options.coco_answer is None else options.coco_answer
    parts: list[Part] = [Text(lead + "\n\n")] if lead else []
    for name, boxes in objects:
        parts += [Ref(name), Boxes(boxes), Text("\n")]
    return [user, Message("assistant", parts)]


def _refer(objects: list[tuple[str, tuple[Box, ...]]], options: Options) -> list[Message]:
    if not objects:
        raise RecordError(
            "the image has no annotations, so --coco-task refer has nothing to ask about",
            "use --coco-task detect to keep images without objects (answered that there is nothing to detect)",
        )
    template = REFER_PROMPT if options.coco_prompt is None else options.coco_prompt
    messages = []
    for k, (name, boxes) in enumerate(objects):
        question: list[Part] = [ImageSlot(0), Text("\n")] if k == 0 else []
        question += _fill(template, name)
        messages += [Message("user", question), Message("assistant", [Ref(name), Boxes(boxes)])]
    return messages


def _fill(template: str, name: str) -> list[Part]:
    """``template`` with each ``{category}`` as a Ref part; without one the Ref goes at the end."""
    pieces = template.split("{category}")
    if len(pieces) == 1:
        pieces.append("")
        if template and not template[-1].isspace():
            pieces[0] += " "
    parts: list[Part] = []
    for k, piece in enumerate(pieces):
        if k:
            parts.append(Ref(name))
        if piece:
            parts.append(Text(piece))
    return parts
