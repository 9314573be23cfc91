"""Qwen-VL official fine-tuning records (docs/formats.md#qwen) with Qwen2-VL / 2.5-VL / 3-VL grounding
(docs/formats.md#qwen-grounding).

Reading follows ``_build_messages`` of qwen-vl-finetune (``qwenvl/data/data_processor.py``):
``image``/``video`` are a path or a list of paths joined to ``data_path`` (here: ``--root``, by
default the input file's folder); ``<image>``/``<video>`` are replaced in human turns only, one
tag per media item, never inserted: where Qwen's loader raises on a count mismatch, the record is
rejected with the counts and Qwen's message. Qwen turns every ``from`` other than ``human`` into
an assistant turn, so a ``system`` turn would be trained on as an answer: the reader rejects it and
the writer applies ``--system reject|drop|merge`` instead of writing one.

Boxes, read in both syntaxes and written in the one ``qwen_boxes`` names:

* ``tokens``: ``<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``
  (parsed and rendered by ``vlmdata.convert.grounding``);
* ``json``: the answers Qwen2.5-VL/Qwen3-VL give, ``[{"bbox_2d": [x1, y1, x2, y2], "label": ".."}]``
  (``point_2d`` for points). Any JSON value (fenced or bare) whose objects hold ``bbox_2d``/
  ``point_2d`` is read into ``Ref(label)`` + ``Boxes`` parts; consecutive objects with the same
  label become one referent's boxes. It is written in one canonical form, the layout of Qwen's
  own answers (cookbooks): a fence, one ``json.dumps`` object per line after a tab::

      ```json
      [
      \t{"bbox_2d": [147, 134, 619, 407], "label": "bowl of carrots"}
      ]
      ```

  so text vlmdata writes reads back to the same parts and renders to the same text. Other layouts
  (a bare object, other whitespace) are read and re-rendered in this form. A ref that is not
  followed by boxes has no JSON form and is written as its plain text. An answer that mentions
  ``bbox_2d`` but is not such a list (other keys, invalid JSON, nested in another object) is
  rejected: its coordinates could not be moved between frames. In questions such text stays text:
  prompts show the answer format with placeholders (``{"bbox_2d": [x1, y1, x2, y2], ...}``).

``qwen_model`` picks the frame: ``qwen2-vl`` and ``qwen3-vl`` are integers 0-1000 of the original
image; ``qwen2.5-vl`` is absolute pixels of the smart-resized image (``vlmdata.media.smart_resize``
with ``min_pixels``/``max_pixels`` and LLaMA-Factory's optional ``image_max_pixels`` pre-resize), so
reading it needs each image's size (probed from the header; a missing image rejects the record,
naming it) and every box carries its (W', H'), counted in the report's frames.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

from vlmdata.consumers.base import TO_FROM
from vlmdata.consumers.qwen import mismatch_message
from vlmdata.convert.codec import Codec, Layout, Options, QwenModel, ReadContext, WriteContext
from vlmdata.convert.frames import convert_box, part_in_frame
from vlmdata.convert.grounding import render_parts
from vlmdata.convert.grounding_json import JSON_HINTS, parse_json_grounding, render_json_parts
from vlmdata.convert.placeholders import count_slots, slot_roles
from vlmdata.convert.turns import apply_system_policy, read_turns
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.smart_resize import resized_size
from vlmdata.schemas.qwen import QWEN_RECORD
from vlmdata.schemas.sample import (
    Box,
    Boxes,
    Frame,
    MediaRef,
    Message,
    Part,
    Points,
    Sample,
    Text,
    map_boxes,
    part_boxes,
)

SOURCE = "Qwen-VL fine-tuning"
FRAME_MODELS = get_args(QwenModel)  # the box frames --qwen-model names (declared with the option)
RESIZED_MODEL = "qwen2.5-vl"
QWEN_FRAME_OPTIONS = frozenset({"qwen_model", "max_pixels", "min_pixels", "image_max_pixels"})
BOX_SYNTAXES = ("tokens", "qwen", "json")  # "tokens" and "qwen" name one syntax (grounding.syntax_name)
_TOKEN_HINTS = ("<|box_start|>", "<|object_ref_start|>", *JSON_HINTS)


def check_settings(options: Options) -> None:
    """Refuse impossible Qwen options for the whole run (a usage error, not a record's fault)."""
    if options.qwen_model not in FRAME_MODELS:
        raise VlmdataError(f"--qwen-model must be one of {', '.join(FRAME_MODELS)}, not {options.qwen_model!r}")
    if options.qwen_boxes not in BOX_SYNTAXES:
        raise VlmdataError(f"--qwen-boxes must be one of {', '.join(BOX_SYNTAXES)}, not {options.qwen_boxes!r}")
    if options.min_pixels < 1 or options.max_pixels < options.min_pixels:
        raise VlmdataError(
            f"--max-pixels ({options.max_pixels}) must be at least --min-pixels ({options.min_pixels}), "
            "which must be positive (qwen-vl-utils asserts the same)"
        )
    if options.image_max_pixels is not None and options.image_max_pixels < 1:
        raise VlmdataError(f"--image-max-pixels must be positive, not {options.image_max_pixels}")


def resized_of(media: MediaRef, size: tuple[int, int], options: Options) -> tuple[int, int]:
    """(W', H') of an image of ``size`` under the run's resize settings."""
    return resized_size(
        size[0],
        size[1],
        min_pixels=options.min_pixels,
        max_pixels=options.max_pixels,
        image_max_pixels=options.image_max_pixels,
        image=media.path,
    )


# --- the codec ----------------------------------------------------------------------------------


def read_json_answers(messages: list[Message]) -> None:
    """JSON boxes in the turns' text become parts; strictly in answers, leniently in questions."""
    for m in messages:
        if not any(isinstance(p, Text) and "_2d" in p.text for p in m.parts):
            continue
        out: list[Part] = []
        for p in m.parts:
            if isinstance(p, Text) and any(h in p.text for h in JSON_HINTS):
                out.extend(parse_json_grounding(p.text, strict=m.role == "assistant"))
            else:
                out.append(p)
        m.parts = out


def _paths(raw: Any) -> list[Any]:
    """``item.get(key) or []``, a string as a one-item list (Qwen's ``_build_messages``)."""
    if not raw:
        return []
    return [raw] if isinstance(raw, str) else list(raw)


def check_slots(messages: list[Message], n_images: int, n_videos: int) -> None:
    """Qwen's loader: tags replaced in human turns only, one per media item, never inserted."""
    for kind, n_media in (("image", n_images), ("video", n_videos)):
        outside = slot_roles(messages, kind) - {"user"}
        if outside:
            raise RecordError(
                f"<{kind}> appears in {'/'.join(sorted(outside))} turns, where Qwen's loader leaves it as literal text",
                f"move the <{kind}> tag into a human turn",
            )
        n_tags = count_slots(messages, kind)
        message = mismatch_message(kind, n_tags, n_media)
        if message:
            raise RecordError(
                f"{n_tags} <{kind}> placeholder(s) but {n_media} {kind}(s): Qwen's loader raises '{message}'",
                f"add the missing {kind}(s) to the record or remove the surplus <{kind}> tags"
                if n_tags > n_media
                else f"put one <{kind}> tag per {kind} in the human turns (Qwen does not insert them)",
            )


def to_resized_frame(messages: list[Message], images: list[MediaRef], ctx: ReadContext) -> None:
    """Qwen2.5-VL: the parsed numbers are pixels of each image's smart-resized size."""
    resized: dict[int, tuple[int, int]] = {}
    for m in messages:
        for k, part in enumerate(m.parts):
            if not isinstance(part, Boxes | Points):
                continue
            index = part.image_index
            if index not in resized:
                resized[index] = _resized(images, index, ctx)
            size = resized[index]
            m.parts[k] = map_boxes(part, lambda b, size=size: Box(b.x1, b.y1, b.x2, b.y2, Frame.PIXEL_RESIZED, size))
            ctx.tally.frames[f"pixel_resized {size[0]}x{size[1]} (read)"] += len(part_boxes(part))


def _resized(images: list[MediaRef], index: int, ctx: ReadContext) -> tuple[int, int]:
    if index >= len(images):
        raise RecordError(
            f"the record has boxes but {'no image' if not images else f'no image {index}'}: Qwen2.5-VL boxes are "
            "pixels of the smart-resized image, which cannot be known without it",
            "add the image, or read with --qwen-model qwen2-vl/qwen3-vl if the boxes are 0-1000",
        )
    media = images[index]
    try:
        size = ctx.image_size(media)
    except RecordError as exc:
        raise RecordError(
            f"Qwen2.5-VL boxes are pixels of the smart-resized image: {exc.what}",
            "fix the path or --root (Qwen joins image paths to data_path)",
        ) from None
    return resized_of(media, size, ctx.options)


def box_converter(sample: Sample, ctx: WriteContext) -> Callable[[Boxes | Points], Boxes | Points]:
    if ctx.options.qwen_model != RESIZED_MODEL:

        def to_norm1000(part: Boxes | Points) -> Boxes | Points:
            return part_in_frame(part, sample, ctx, Frame.NORM1000)

        return to_norm1000

    def to_resized(part: Boxes | Points) -> Boxes | Points:
        index = part.image_index
        size = ctx.image_size(sample, index)
        resized = resized_of(sample.images[index], size, ctx.options)

        def one(b: Box) -> Box:
            box, clamped = convert_box(b, Frame.PIXEL_RESIZED, lambda: size, resized=resized)
            ctx.tally.clamped += clamped
            ctx.note_box(box)
            return box

        moved = map_boxes(part, one)
        ctx.tally.frames[f"pixel_resized {resized[0]}x{resized[1]} (written)"] += len(part_boxes(moved))
        return moved

    return to_resized


class QwenCodec(Codec):
    name = "qwen"
    read_options = frozenset(QWEN_FRAME_OPTIONS)
    write_options = frozenset({*QWEN_FRAME_OPTIONS, "qwen_boxes", "system"})
    title = "Qwen-VL fine-tuning JSON"
    layouts = ("json", "jsonl")
    default_layout = "json"
    fields = "image (str | list), video (str | list), conversations[{from: human|gpt, value}]; paths under data_path"
    boxes = (
        "<|object_ref_start|>..<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|> or "
        '[{"bbox_2d": [..], "label": ".."}]; 0-1000 (Qwen2-VL, Qwen3-VL) or pixels of the smart-resized '
        "image (Qwen2.5-VL, --qwen-model)"
    )
    schema = QWEN_RECORD
    known_keys = frozenset({"id", "image", "video", "conversations"})

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            return 0.0
        if any(k in record for k in ("images", "videos", "messages", "width", "width_list")):
            return 0.1  # LLaMA-Factory sharegpt, ms-swift, InternVL keys
        for turn in record["conversations"]:
            value = turn.get("value") if isinstance(turn, dict) else None
            if isinstance(value, str) and any(h in value for h in _TOKEN_HINTS):
                return 0.95  # Qwen grounding in a conversations record
        if isinstance(record.get("video"), list):
            return 0.8  # InternVL takes one video path, LLaVA none
        if layout == "json" and (isinstance(record.get("image"), list) or record.get("video")):
            return 0.8  # several images or a video in a JSON list: not LLaVA, and InternVL is JSONL only
        return 0.4

    def check_options(self, options: Options) -> None:
        super().check_options(options)
        check_settings(options)

    # --- reading ----------------------------------------------------------------------------

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        options = ctx.options
        check_settings(options)
        turns = record["conversations"]
        for k, turn in enumerate(turns):
            if turn.get("from") == "system":
                raise RecordError(
                    f"conversations[{k}] has from='system': Qwen's fine-tuning code makes every turn that is not "
                    "'human' an assistant turn, so this system prompt would be trained on as an answer",
                    "remove the turn, or move its text into the first human turn",
                )
        messages = read_turns(turns, ("qwen",), source=SOURCE, allow_system=False)
        read_json_answers(messages)
        images = [ctx.media(p) for p in _paths(record.get("image"))]
        videos = [ctx.media(p, "video") for p in _paths(record.get("video"))]
        check_slots(messages, len(images), len(videos))
        if options.qwen_model == RESIZED_MODEL:
            to_resized_frame(messages, images, ctx)
        return Sample(messages, images, videos, [], record.get("id"), self.extra_of(record))

    # --- writing ----------------------------------------------------------------------------

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        options = ctx.options
        check_settings(options)  # vlmdata.write() does not go through check_options
        if sample.audios:
            raise RecordError("the record has audio", "Qwen-VL fine-tuning takes images and videos only")
        for video in sample.videos:
            if video.frames:
                raise RecordError(
                    "a video is a list of frame files", "Qwen-VL fine-tuning data takes one path per video"
                )
        # tag counts and placement are the Qwen loader's rules (consumers/qwen.py): the write-time check
        # refuses a record it would raise on with their code (VD101, VD105)
        sample = apply_system_policy(sample, ctx, SOURCE)
        convert = box_converter(sample, ctx)
        json_boxes = options.qwen_boxes == "json"
        conversations = []
        for k, m in enumerate(sample.messages):
            who = TO_FROM.get(m.role) if m.role != "system" else None  # Qwen has no system turn
            if who is None:
                raise RecordError(
                    f"message {k} has role {m.role!r}, which {SOURCE} cannot hold "
                    "(every turn that is not 'human' is trained as an assistant turn)",
                    "remove tool turns before converting",
                )
            value = render_json_parts(m.parts, convert) if json_boxes else render_parts(m.parts, "qwen", convert)
            turn: dict[str, Any] = {"from": who, "value": value}
            for key, v in m.extra.items():
                turn.setdefault(key, v)
            conversations.append(turn)
        out: dict[str, Any] = {}
        if sample.id is not None:
            out["id"] = sample.id
        for key, media in (("image", sample.images), ("video", sample.videos)):
            if media:
                paths = [ctx.out_path(x, absolute=False) for x in media]
                out[key] = paths[0] if len(paths) == 1 else paths
        out["conversations"] = conversations
        self.put_extra(out, sample, ctx)
        return out
