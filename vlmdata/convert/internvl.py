"""InternVL chat fine-tuning JSONL records (docs/formats.md#internvl).

Reading follows ``internvl2_5`` (the InternVL2.5/3 fine-tune style): an optional leading system
turn, ``<image>``/``<video>`` counted in human turns only, ``<image>\\n`` inserted at the start of
the first human turn for a single image (or ``<video>\\n`` for a video) when the record has no tag,
multi-image counts that must match exactly. Boxes are ``<ref>..</ref><box>[[..]]</box>`` on 0-1000.
Writing puts an explicit tag for every image in a human turn and boxes in 0-1000 computed from
the original image size; media paths are written relative to the meta ``root``.
"""

from __future__ import annotations

import os
from typing import Any

from vlmdata.convert.codec import Codec, Layout, Options, ReadContext, WriteContext
from vlmdata.convert.meta import update_internvl_meta
from vlmdata.convert.placeholders import reconcile, slot_roles
from vlmdata.convert.turns import read_turns, write_turns
from vlmdata.errors import RecordError
from vlmdata.media.video import common_folder, is_frame_folder, list_frames
from vlmdata.schemas.internvl import INTERNVL_RECORD
from vlmdata.schemas.sample import Frame, ImageSlot, MediaRef, Message, Part, Sample, Text

SOURCE = "InternVL"


def _image_slots(sample: Sample) -> tuple[int, bool]:
    """(image slots, whether an image/video slot sits outside a user turn) in one pass."""
    n = 0
    misplaced = False
    for m in sample.messages:
        user = m.role == "user"
        for p in m.parts:
            t = p.type
            if t == "image":
                n += 1
                misplaced = misplaced or not user
            elif t == "video" and not user:
                misplaced = True
    return n, misplaced


class InternVLCodec(Codec):
    name = "internvl"
    write_options = frozenset({"sizes", "internvl_video", "meta", "meta_name"})
    title = "InternVL chat JSONL"
    layouts = ("jsonl",)
    fields = "id, image (str | list), video, width/height (width_list/height_list), conversations[{from, value}]"
    boxes = "<ref>text</ref><box>[[x1, y1, x2, y2], ...]</box>, integers 0-1000 of the original image"
    schema = INTERNVL_RECORD
    known_keys = frozenset({"id", "image", "video", "width", "height", "width_list", "height_list", "conversations"})

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            return 0.0
        score = 0.5
        if isinstance(record.get("image"), list) or "width" in record or "width_list" in record:
            score += 0.2
        if "video" in record:
            score += 0.2
        if layout == "jsonl":
            score += 0.2
        return min(score, 1.0)

    def side_files(self, options: Options) -> list[tuple[str, str | None]]:
        return [("--meta", options.meta)]

    def after_write(self, dst: str, written: int, root: str, options: Options) -> list[str]:
        if not options.meta or dst == "-":
            return []
        name = options.meta_name or os.path.splitext(os.path.basename(dst))[0]
        update_internvl_meta(options.meta, name, root=root, annotation=dst, length=written)
        return [options.meta]

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        messages = read_turns(record["conversations"], ("internvl",), source=SOURCE, allow_system=True)
        images = self._images(record, ctx)
        videos = [ctx.media(record["video"], "video")] if record.get("video") else []
        if images and videos:
            raise RecordError("the record has both image and video", "InternVL takes one kind per record")
        for kind in ("image", "video"):
            outside = slot_roles(messages, kind) - {"user"}
            if outside:
                raise RecordError(
                    f"<{kind}> appears in {'/'.join(sorted(outside))} turns",
                    "InternVL (internvl2_5) only replaces tags in human turns: move the tag",
                )
        ctx.tally.inserted_tags += reconcile(
            messages,
            {"image": len(images), "video": len(videos)},
            prepend_to=("user",),
            newline=True,
            only_single=True,
            source=SOURCE,
        )
        return Sample(messages, images, videos, [], record.get("id"), self.extra_of(record))

    def _images(self, record: dict[str, Any], ctx: ReadContext) -> list[MediaRef]:
        raw = record.get("image")
        if not raw:
            return []
        paths = raw if isinstance(raw, list) else [raw]
        images = [ctx.media(p) for p in paths]
        widths = record.get("width_list") if isinstance(raw, list) else [record.get("width")]
        heights = record.get("height_list") if isinstance(raw, list) else [record.get("height")]
        if widths and heights and len(widths) == len(heights) == len(images):
            for media, w, h in zip(images, widths, heights, strict=True):
                if w and h:
                    media.width, media.height = w, h
        return images

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        if sample.videos and not sample.images and ctx.options.internvl_video == "images":
            sample = video_as_frame_images(sample, ctx)
        if sample.images and sample.videos:
            raise RecordError("the record has images and a video", "InternVL takes one kind per record")
        if len(sample.videos) > 1:
            raise RecordError(f"{len(sample.videos)} videos in one record", "InternVL takes one video")
        if sample.audios:
            raise RecordError("the record has audio", "InternVL has no audio input")
        n_tags, misplaced = _image_slots(sample)
        if misplaced:
            for kind in ("image", "video"):
                outside = slot_roles(sample.messages, kind) - {"user"}
                if outside:
                    raise RecordError(
                        f"<{kind}> tags in {'/'.join(sorted(outside))} turns",
                        "InternVL only reads media tags in human turns",
                    )
        if n_tags != len(sample.images):
            raise RecordError(f"{n_tags} <image> tags but {len(sample.images)} images")
        out: dict[str, Any] = {}
        if sample.id is not None:
            out["id"] = sample.id
        conversations = write_turns(sample, ctx, "internvl", Frame.NORM1000, source=SOURCE)
        sizes = [ctx.known_size(sample, k) for k in range(len(sample.images))] if ctx.options.sizes else []
        if len(sample.images) == 1 and _slot_in_first_turn(sample, "image"):
            out["image"] = ctx.out_path(sample.images[0], absolute=False)
            if sizes and sizes[0]:
                out["width"], out["height"] = sizes[0]
        elif sample.images:
            # One image whose tag is not in the first turn is written as a one-element list: the
            # single-image path only looks at conversations[0] and would add a second tag there
            # (into the system prompt when there is one), the multi-image path takes tags as they are.
            out["image"] = [ctx.out_path(m, absolute=False) for m in sample.images]
            if sizes and all(sizes):
                out["width_list"] = [s[0] for s in sizes]  # type: ignore[index]
                out["height_list"] = [s[1] for s in sizes]  # type: ignore[index]
        if sample.videos:
            video = sample.videos[0]
            if video.frames:
                folder = common_folder(video.frames)
                if folder is None:
                    raise RecordError(
                        "the video is a list of frame files that is not exactly one folder's frames",
                        "InternVL reads a video file or a frame folder: pass --internvl-video images to write "
                        "the frames as images with Frame-i labels",
                    )
                video = MediaRef(folder + "/", folder + "/")
            out["video"] = ctx.out_path(video, absolute=False)
            conversations[0]["value"] = _video_first(sample, conversations[0]["value"])
        out["conversations"] = conversations
        self.put_extra(out, sample, ctx)
        return out


def _slot_in_first_turn(sample: Sample, kind: str) -> bool:
    first = sample.messages[0] if sample.messages else None
    if first is None or first.role != "user":
        return False
    for p in first.parts:  # noqa: SIM110 - a loop: any() over a generator costs ~2x here
        if p.type == kind:
            return True
    return False


def _video_first(sample: Sample, first_value: str) -> str:
    """InternVL expands only ``'<video>\n'`` in conversations[0] into ``Frame-i: <image>`` tags."""
    if not _slot_in_first_turn(sample, "video"):
        where = "a system turn comes first" if sample.messages[0].role == "system" else "the tag is in a later turn"
        raise RecordError(
            f"InternVL replaces '<video>\\n' in the first turn only, and {where}",
            "put <video> in the first human turn (and drop the system prompt) before converting",
        )
    if "<video>\n" not in first_value:
        first_value = first_value.replace("<video>", "<video>\n", 1)
    return first_value


def video_as_frame_images(sample: Sample, ctx: WriteContext) -> Sample:
    """A video written as its frames: ``<video>\n`` becomes ``Frame-1: <image>\nFrame-2: <image>\n``.

    This is InternVL's own expansion (``video_get_item``, docs/consumers.md#media-tags: "Frame-1" with
    a hyphen) done in the data, so the record loads through the multi-image path, which needs no
    video reader (InternVL's needs petrel_client, docs/consumers.md#bad-rows).
    """
    if len(sample.videos) != 1:
        raise RecordError(f"{len(sample.videos)} videos in one record", "InternVL takes one video")
    video = sample.videos[0]
    if video.frames:
        frames = video.frames
    elif is_frame_folder(video.path):
        frames = list_frames(video.resolved or video.path, video.path)
    else:
        raise RecordError(
            f"video {video.path!r} is a file; its frames are needed to write it as images",
            "extract the frames to a folder first, or keep it as a video",
        )
    messages = []
    for m in sample.messages:
        parts: list[Part] = []
        consumed_newline = False
        for p in m.parts:
            if p.type == "video":
                for i in range(len(frames)):
                    parts += [Text(f"Frame-{i + 1}: "), ImageSlot(i), Text("\n")]
                consumed_newline = True
                continue
            if consumed_newline and isinstance(p, Text) and p.text.startswith("\n"):
                p = Text(p.text[1:])
            consumed_newline = False
            if not (isinstance(p, Text) and not p.text):
                parts.append(p)
        messages.append(Message(m.role, parts, m.extra))
    images = [MediaRef(f, f) for f in frames]
    return Sample(messages, images, [], [], sample.id, sample.extra, sample.origin)
