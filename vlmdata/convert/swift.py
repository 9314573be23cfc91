"""ms-swift current ``messages`` rows (docs/formats.md#swift).

Reading follows ms-swift: role/content aliases, typed content blocks flattened into tags, missing
``<image>`` tags prepended to the first non-system message (``_add_default_tags``), ``<img>path</img>``
extracted when ``images`` is empty, ``objects`` filling ``<ref-object>``/``<bbox>``. Model-native
grounding text (Qwen2-VL tokens, InternVL tags) is parsed too. Writing always emits explicit tags,
``objects`` for boxes (``real`` when every box is in pixels, else ``norm1``), and absolute media
paths (ms-swift resolves relative paths against the working directory, docs/consumers.md#media-paths) unless
``relative_paths``.
"""

from __future__ import annotations

from typing import Any

from vlmdata.consumers.base import AUDIO_BLOCKS, MEDIA_BLOCKS
from vlmdata.consumers.swift import ROLE_ALIASES
from vlmdata.convert import swift_objects
from vlmdata.convert.codec import Codec, Layout, Options, ReadContext, WriteContext
from vlmdata.convert.grounding import Counters, parse_text
from vlmdata.convert.placeholders import extract_img_tags, reconcile
from vlmdata.errors import RecordError
from vlmdata.media.video import is_frame_folder, list_frames
from vlmdata.schemas.sample import Box, Frame, MediaRef, Message, Part, Sample, part_boxes, whole
from vlmdata.schemas.swift import SWIFT_RECORD

ROLES = ROLE_ALIASES
MEDIA_KEYS = (("images", "image"), ("videos", "video"), ("audios", "audio"))
BLOCK_KINDS = {**MEDIA_BLOCKS, **AUDIO_BLOCKS}
MESSAGE_KEYS = ("role", "from", "content", "value")
# ms-swift itself interprets only the objects placeholders; markup of a model's own grounding syntax
# (Qwen2-VL tokens, InternVL tags) is text to it, read as boxes only when the user says the rows hold
# it for the model they train (--native-grounding).
NATIVE_SYNTAXES = {"qwen": ("qwen",), "internvl": ("internvl",), "both": ("internvl", "qwen")}


def swift_syntaxes(options: Options, objects: Any) -> tuple[str, ...]:
    native = NATIVE_SYNTAXES[options.native_grounding] if options.native_grounding else ()
    return (*native, "swift") if objects else native


def media_list(record: dict[str, Any], key: str, alias: str, ctx: ReadContext) -> list[MediaRef]:
    raw = record.get(key)
    if raw is None:
        raw = record.get(alias)
    if raw is None or raw == "":
        return []
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, dict):
            if not item.get("path"):
                raise RecordError(f"{key} holds embedded bytes without a path", "write the bytes to a file first")
            item = item["path"]
        if isinstance(item, list):  # a video given as frames (docs/formats.md#swift)
            frames = [ctx.media(f, alias) for f in item]
            if not frames:
                raise RecordError(f"{key} holds an empty frame list", "remove it")
            first = frames[0]
            first.frames = [f.resolved or f.path for f in frames]
            out.append(first)
        else:
            out.append(ctx.media(item, alias))
    return out


def finish(
    sample: Sample,
    raw_objects: Any,
    ctx: ReadContext,
    *,
    had_images_key: bool,
    source: str,
    counters: Counters | None = None,
) -> Sample:
    """The steps ms-swift applies after building messages: <img> tags, tags, objects.

    ``counters``: the slot counts parse_text left; when they already match the media lists there
    is nothing to reconcile (the common case: skip three passes over every part).
    """
    if not had_images_key:
        for path in extract_img_tags(sample.messages):
            sample.images.append(ctx.media(path))
    elif (
        counters is not None
        and counters.image == len(sample.images)
        and counters.video == len(sample.videos)
        and counters.audio == len(sample.audios)
    ):
        if raw_objects:
            ctx.tally.unused_objects += swift_objects.fill(sample.messages, raw_objects)
            return sample
        return _check_no_markers(sample, raw_objects)
    non_system = ("user", "assistant", "tool_call", "tool_response")
    ctx.tally.inserted_tags += reconcile(
        sample.messages,
        {"image": len(sample.images), "video": len(sample.videos), "audio": len(sample.audios)},
        prepend_to=non_system,
        newline=False,
        only_single=False,
        source=source,
    )
    ctx.tally.unused_objects += swift_objects.fill(sample.messages, raw_objects)
    return sample


def _check_no_markers(sample: Sample, raw_objects: Any) -> Sample:
    """fill() without objects: only its check that no placeholder waits for one."""
    for m in sample.messages:
        for p in m.parts:
            t = p.type
            if (t == "ref" and not p.text) or (t == "boxes" and not p.boxes):  # type: ignore[union-attr]
                swift_objects.fill(sample.messages, raw_objects)  # raises the usual error
    return sample


def check_system_first(messages: list[Message]) -> None:
    for k, m in enumerate(messages):
        if m.role == "system" and k != 0:
            raise RecordError(
                f"system message at position {k}; ms-swift accepts one only as the first message",
                "move it to the front or merge it",
            )


class SwiftCodec(Codec):
    name = "swift"
    read_options = frozenset({"native_grounding"})
    write_options = frozenset({"relative_paths"})
    title = "ms-swift messages"
    fields = "messages[{role, content}], images, videos, audios, objects{ref, bbox, bbox_type, image_id}"
    boxes = "objects: real pixels or norm1; <ref-object>/<bbox> placeholders; native Qwen/InternVL text"
    absolute_paths = True
    schema = SWIFT_RECORD
    known_keys = frozenset({"id", "messages", "images", "videos", "audios", "objects"})

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict):
            return 0.0
        msgs = record.get("messages")
        if isinstance(msgs, list):
            first = msgs[0] if msgs else {}
            return 0.95 if isinstance(first, dict) and "role" in first else 0.6
        return 0.0

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        images = media_list(record, "images", "image", ctx)
        videos = media_list(record, "videos", "video", ctx) if "videos" in record or "video" in record else []
        audios = media_list(record, "audios", "audio", ctx) if "audios" in record or "audio" in record else []
        raw_objects = record.get("objects")
        syntaxes = swift_syntaxes(ctx.options, raw_objects)
        counters = Counters()
        messages: list[Message] = []
        block_media: dict[str, list[MediaRef]] | None = None
        raw_messages = record["messages"]
        if not raw_messages:
            raise RecordError("messages is empty", "ms-swift drops such rows without a word")
        misplaced_system = False
        for k, raw in enumerate(raw_messages):
            role_name = raw["role"] if "role" in raw else raw.get("from")
            role = ROLES.get(role_name) if isinstance(role_name, str) else None
            if role is None:
                raise RecordError(
                    f"messages[{k}] has role {role_name!r}",
                    f"use one of {', '.join(sorted(set(ROLES)))}",
                )
            content = raw["content"] if "content" in raw else raw.get("value")
            if content is None:
                raise RecordError(f"messages[{k}].content is missing or null", "give it a string")
            if isinstance(content, str):
                parts = parse_text(content, syntaxes, counters)
            else:
                if block_media is None:
                    block_media = {"image": [], "video": [], "audio": []}
                parts = self._blocks(content, k, syntaxes, counters, block_media, ctx)
            if len(raw) == 2 and ("role" in raw or "from" in raw) and ("content" in raw or "value" in raw):
                extra = {}
            else:
                extra = {key: v for key, v in raw.items() if key not in MESSAGE_KEYS}
            if role == "system" and k:
                misplaced_system = True
            messages.append(Message(role, parts, extra))  # type: ignore[arg-type]
        if misplaced_system:
            check_system_first(messages)
        if block_media is not None:
            for kind, found in block_media.items():
                if found:
                    target = {"image": images, "video": videos, "audio": audios}[kind]
                    if target:
                        raise RecordError(
                            f"{kind}s come both as content blocks and as a top-level list",
                            "ms-swift asserts on this mix: keep one of the two",
                        )
                    target.extend(found)
        extra = {} if record.keys() <= self.known_keys else self.extra_of(record)
        sample = Sample(messages, images, videos, audios, record.get("id"), extra)
        had_images = bool(record.get("images") or record.get("image") or (block_media and block_media["image"]))
        return finish(sample, raw_objects, ctx, had_images_key=had_images, source="ms-swift", counters=counters)

    def _blocks(
        self,
        blocks: list[dict[str, Any]],
        k: int,
        syntaxes: tuple[str, ...],
        counters: Counters,
        block_media: dict[str, list[MediaRef]],
        ctx: ReadContext,
    ) -> list[Part]:
        """OpenAI/HF typed blocks: media blocks become tags, their values join the media lists."""
        parts: list[Part] = []
        for j, block in enumerate(blocks):
            kind = block.get("type")
            if kind == "text":
                parts.extend(parse_text(str(block.get("text", "")), syntaxes, counters))
                continue
            media_kind = BLOCK_KINDS.get(kind) if isinstance(kind, str) else None
            if media_kind is None:
                raise RecordError(f"messages[{k}].content[{j}] has unknown block type {kind!r}")
            value = block.get(kind) or block.get("url") or block.get("path")
            if isinstance(value, dict):
                value = value.get("url") or value.get("path")
            if not value:
                raise RecordError(
                    f"messages[{k}].content[{j}] ({kind}) has no path or url",
                    "give the block its media",
                )
            parts.extend(parse_text(f"<{media_kind}>", (), counters))
            block_media[media_kind].append(ctx.media(value, media_kind))
        return parts

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        objects = ObjectsBuilder(sample, ctx)
        messages = []
        for m in sample.messages:
            msg: dict[str, Any] = {"role": m.role, "content": objects.render(m.parts)}
            msg.update(m.extra)
            messages.append(msg)
        out: dict[str, Any] = {"messages": messages}
        for key, _alias in MEDIA_KEYS:
            media = getattr(sample, key)
            if media:
                out[key] = [media_value(x, ctx, absolute=True) for x in media]
        if objects.used:
            out["objects"] = objects.current()
        if sample.id is not None:
            out["id"] = sample.id
        self.put_extra(out, sample, ctx)
        return out


def media_value(media: MediaRef, ctx: WriteContext, *, absolute: bool) -> Any:
    """A path, or a list of frame paths: ms-swift reads frame lists, not InternVL frame folders."""
    frames = media.frames
    if frames is None and is_frame_folder(media.path):
        frames = list_frames(media.resolved or media.path, media.path)
    if frames:
        return [ctx.out_path(MediaRef(f, f), absolute) for f in frames]
    return ctx.out_path(media, absolute)


class ObjectsBuilder(swift_objects.PlaceholderRenderer):
    """Collects refs and boxes while rendering, in the frame ms-swift can hold for them."""

    def __init__(self, sample: Sample, ctx: WriteContext) -> None:
        self.sample = sample
        self.ctx = ctx
        frames = {
            b.frame
            for _m, _i, p in swift_objects.grounding_parts(sample)
            if p.type != "ref"
            for b in part_boxes(p)  # type: ignore[arg-type]
        }
        self.frame = Frame.PIXEL if frames <= {Frame.PIXEL} else Frame.NORM1
        self.refs: list[str] = []
        self.bboxes: list[list[float]] = []
        self.image_ids: list[int] = []
        self.used = False

    def on_ref(self, text: str) -> None:
        self.used = True
        self.refs.append(text)

    def on_boxes(self, boxes: tuple[Box, ...], image_index: int) -> str:
        self.used = True
        for b in boxes:
            box = self.ctx.box(self.sample, b, image_index, self.frame)
            self.bboxes.append([whole(v) for v in box.coords()])
            self.image_ids.append(image_index)
        return "<bbox>" * len(boxes)

    def current(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"ref": self.refs, "bbox": self.bboxes}
        if self.frame is Frame.NORM1:
            obj["bbox_type"] = "norm1"
        if any(self.image_ids):
            obj["image_id"] = self.image_ids
        return obj
