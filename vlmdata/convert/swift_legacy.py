"""ms-swift legacy ``query``/``response``/``history`` rows (docs/formats.md#swift-legacy,
docs/formats.md#swift-legacy-objects).

``history`` is a list of ``[query, response]`` pairs (or its string form, parsed with
``ast.literal_eval`` as ms-swift does). ``objects`` is the legacy list, usually as a JSON string,
paired by index with the placeholders; ``bbox_type`` ``norm_1000`` means the x999 floor scale.
Writing produces the same layout, ``objects`` as a JSON string, as ms-swift 2.x documented it.
"""

from __future__ import annotations

import ast
from typing import Any

import orjson

from vlmdata.convert.codec import Codec, Layout, ReadContext, WriteContext
from vlmdata.convert.frames import convert_box
from vlmdata.convert.grounding import Counters, parse_text
from vlmdata.convert.swift import (
    MEDIA_KEYS,
    finish,
    media_list,
    media_value,
    swift_syntaxes,
)
from vlmdata.convert.swift_objects import LEGACY_NAMES, PlaceholderRenderer
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Frame, Message, Sample, whole
from vlmdata.schemas.swift import SWIFT_LEGACY_RECORD


def _history(raw: Any) -> list[list[str]]:
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            raise RecordError("history is a string that is not a list of pairs", "fix history") from None
    if not isinstance(raw, list):
        raise RecordError("history must be a list of [query, response] pairs")
    for k, pair in enumerate(raw):
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise RecordError(f"history[{k}] must be a [query, response] pair of strings, got {pair!r}")
    return [list(p) for p in raw]


class SwiftLegacyCodec(Codec):
    name = "swift-legacy"
    read_options = frozenset({"native_grounding"})
    write_options = frozenset({"relative_paths"})
    title = "ms-swift legacy query/response"
    fields = "query, response, history[[q, r]], system, images, videos, objects (JSON string)"
    boxes = "objects [{caption, bbox, bbox_type: real|norm_1000 (x999 floor)|norm_1, image}]"
    absolute_paths = True
    schema = SWIFT_LEGACY_RECORD
    known_keys = frozenset({"id", "query", "response", "history", "system", "images", "videos", "audios", "objects"})

    def detect(self, record: Any, layout: Layout) -> float:
        if isinstance(record, dict) and "response" in record and "messages" not in record:
            return 0.95 if "query" in record else 0.7
        return 0.0

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        syntaxes = swift_syntaxes(ctx.options, record.get("objects"))
        counters = Counters()
        messages: list[Message] = []

        def add(role: str, text: str) -> None:
            messages.append(Message(role, parse_text(text, syntaxes, counters)))  # type: ignore[arg-type]

        if record.get("system"):
            add("system", record["system"])
        for q, r in _history(record.get("history")):
            add("user", q)
            add("assistant", r)
        add("user", record.get("query") or "")
        add("assistant", record["response"])
        sample = Sample(
            messages,
            media_list(record, "images", "image", ctx),
            media_list(record, "videos", "video", ctx),
            media_list(record, "audios", "audio", ctx),
            record.get("id"),
            self.extra_of(record),
        )
        return finish(
            sample,
            record.get("objects"),
            ctx,
            had_images_key=bool(record.get("images")),
            source="ms-swift",
        )

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        msgs = list(sample.messages)
        objects = LegacyObjects(sample, ctx)
        out: dict[str, Any] = {}
        if sample.id is not None:
            out["id"] = sample.id
        if msgs and msgs[0].role == "system":
            out["system"] = objects.render(msgs.pop(0).parts)
        roles = [m.role for m in msgs]
        if (
            len(msgs) < 2
            or len(msgs) % 2
            or any(r != ("user" if k % 2 == 0 else "assistant") for k, r in enumerate(roles))
        ):
            raise RecordError(
                f"roles {roles} are not user/assistant pairs ending with an assistant answer",
                "the legacy layout holds only query/response rounds; write --to swift instead",
            )
        rounds = [[objects.render(msgs[k].parts), objects.render(msgs[k + 1].parts)] for k in range(0, len(msgs), 2)]
        out["query"], out["response"] = rounds[-1]
        if len(rounds) > 1:
            out["history"] = rounds[:-1]
        for key, _alias in MEDIA_KEYS:
            media = getattr(sample, key)
            if media:
                out[key] = [media_value(x, ctx, absolute=True) for x in media]
        if objects.objects:
            out["objects"] = orjson.dumps(objects.finish()).decode()
            ctx.tally.legacy_objects += 1
        self.put_extra(out, sample, ctx)
        return out


class LegacyObjects(PlaceholderRenderer):
    """Legacy pairing: the i-th ``<ref-object>`` and the i-th ``<bbox>`` share ``objects[i]``."""

    def __init__(self, sample: Sample, ctx: WriteContext) -> None:
        self.sample = sample
        self.ctx = ctx
        self.objects: list[dict[str, Any]] = []
        self.refs = 0
        self.boxes = 0

    def _slot(self, n: int) -> dict[str, Any]:
        while len(self.objects) <= n:
            self.objects.append({"caption": "", "bbox": None, "bbox_type": "real", "image": 0})
        return self.objects[n]

    def on_ref(self, text: str) -> None:
        self._slot(self.refs)["caption"] = text
        self.refs += 1

    def on_boxes(self, boxes: tuple[Box, ...], image_index: int) -> str:
        frame = _legacy_frame(boxes[0].frame, several=len(boxes) > 1)
        values = [self._convert(b, frame, image_index) for b in boxes]
        obj = self._slot(self.boxes)
        obj["bbox"] = values[0] if len(values) == 1 else values
        obj["bbox_type"] = LEGACY_NAMES[frame]
        obj["image"] = image_index
        self.boxes += 1
        return "<bbox>"

    def _convert(self, box: Box, frame: Frame, image_index: int) -> list[float]:
        out, clamped = convert_box(box, frame, lambda: self.ctx.image_size(self.sample, image_index))
        self.ctx.tally.clamped += clamped
        self.ctx.note_box(out)
        return [whole(v) for v in out.coords()]

    def finish(self) -> list[dict[str, Any]]:
        """Every object needs a bbox; a ref whose index has none borrows its referent's box.

        (A ref mentioned in the question and again, with its box, in the answer takes two ref
        slots but one bbox slot; the borrowed copy is never rendered by ms-swift.)
        """
        by_caption = {o["caption"]: o for o in self.objects if o["bbox"] is not None}
        for k, obj in enumerate(self.objects):
            if obj["bbox"] is None:
                partner = by_caption.get(obj["caption"])
                if partner is None:
                    raise RecordError(
                        f"<ref-object> number {k + 1} ({obj['caption']!r}) has no box",
                        "legacy objects pair refs and boxes by index; write --to swift instead",
                    )
                obj.update(bbox=partner["bbox"], bbox_type=partner["bbox_type"], image=partner["image"])
        return self.objects


def _legacy_frame(frame: Frame, *, several: bool) -> Frame:
    """The legacy bbox_type that holds ``frame`` without loss (norm1000 -> norm_1 exactly).

    Several boxes of one object only work with ``real``: ms-swift <=3.0 normalises a list of
    boxes in its ``real`` branch alone (``norm_1``/``norm_1000`` do ``int(coord * 999)`` on
    each element and crash on a nested list), so those are written in pixels.
    """
    if several:
        return Frame.PIXEL
    if frame in LEGACY_NAMES:
        return frame
    if frame is Frame.NORM1000:
        return Frame.NORM1
    return Frame.PIXEL
