"""Hugging Face / TRL conversational rows, as JSONL/JSON or parquet (docs/formats.md#hf).

Reading follows TRL's ``prepare_multimodal_messages`` (docs/consumers.md#media-tags): ``{"type": "image"}`` blocks
without a payload take the entries of ``images`` (or ``image``) in order; blocks with a payload (``image``,
``path``, ``url``, OpenAI ``image_url``, LLaMA-Factory v1 ``value``) bring their own. When the
first user message's content is a string, one image slot per ``images`` entry goes before its text
(counted as inserted tags); placeholders and images must then match one to one, as TRL raises
otherwise. ``videos``/``{"type": "video"}`` are read the same way. Roles: system, user, assistant,
tool. Text is text: a literal ``<image>`` inside a text block stays text (docs/consumers.md#media-tags); Qwen2-VL and
InternVL grounding markup in text is parsed into boxes (0-1000).

Writing gives every message a block list (``{"type": "text", "text": ..}`` and ``{"type":
"image"}`` in place), the images in slot order in ``images`` (absolute paths unless ``--relative-paths``), boxes as
Qwen2-VL tokens on 0-1000 (``--hf-boxes internvl`` for InternVL tags), ``prompt``/``completion``
with ``--hf-layout prompt-completion`` (the completion = the trailing assistant turns).

Parquet files (reading shards, the sharded writer) are ``convert/parquet.py``'s; this codec claims
them. In parquet rows images are the ``datasets.Image`` struct ``{bytes, path}``: without bytes the
path resolves under the root; with bytes, ``--extract-images DIR`` writes them to
``DIR/<sha256>.<ext>``, else the path is used when it names a file under the root and the row is
rejected when it does not. Relative paths resolve against the working directory by default, as
``datasets``' ``Image`` opens them; pass ``--root``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from vlmdata.consumers.base import MEDIA_BLOCKS
from vlmdata.convert.codec import Codec, Layout, Options, ReadContext, WriteContext
from vlmdata.convert.frames import part_in_frame
from vlmdata.convert.grounding import Counters, parse_text, render_parts
from vlmdata.convert.parquet import ParquetWriter, is_parquet, read_parquet, shards_of
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import is_remote
from vlmdata.outputs import atomic_write_bytes
from vlmdata.schemas.hf import HF_RECORD
from vlmdata.schemas.sample import (
    Boxes,
    Frame,
    ImageSlot,
    MediaRef,
    Message,
    Part,
    Points,
    Sample,
    Text,
    VideoSlot,
)

ROLES_IN = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool_response"}
ROLES_OUT = {"system": "system", "user": "user", "assistant": "assistant", "tool_response": "tool"}
SYNTAXES = ("internvl", "qwen")
MESSAGE_KEYS = ("role", "content")
_MAGIC = ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"))


# --------------------------------------------------------------------------- reading records


class _RowState:
    """Media found while reading one row: slots in order, None = filled from the media column."""

    __slots__ = ("counters", "first_string_user", "images", "videos")

    def __init__(self) -> None:
        self.images: list[MediaRef | None] = []
        self.videos: list[MediaRef | None] = []
        self.first_string_user = True
        self.counters = Counters()  # parse_text numbers media tags; here they become text again

    def slot(self, kind: str, media: MediaRef | None) -> Part:
        if kind == "image":
            self.images.append(media)
            return ImageSlot(len(self.images) - 1)
        self.videos.append(media)
        return VideoSlot(len(self.videos) - 1)


def _text_parts(text: str, state: _RowState) -> list[Part]:
    """Grounding markup becomes parts; media tags stay literal text (TRL has no textual tag)."""
    parts = parse_text(text, SYNTAXES, state.counters)
    for p in parts:
        if p.type in ("image", "video", "audio"):
            break
    else:
        return parts
    out: list[Part] = []
    for p in parts:
        t = p.type
        if t in ("image", "video", "audio"):
            p = Text(f"<{t}>")
        if p.type == "text" and out and out[-1].type == "text":
            out[-1] = Text(out[-1].text + p.text)  # type: ignore[union-attr]
        else:
            out.append(p)
    return out


def _sniff_suffix(data: bytes) -> str:
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return ".bin"


def extract_bytes(data: bytes, path: Any, folder: str) -> MediaRef:
    """Write embedded media bytes to ``folder/<sha256[:24]><suffix>`` once; the MediaRef names it."""
    suffix = os.path.splitext(path)[1].lower() if isinstance(path, str) else ""
    if not suffix or len(suffix) > 6:
        suffix = _sniff_suffix(data)
    target = os.path.join(os.path.abspath(folder), hashlib.sha256(data).hexdigest()[:24] + suffix)
    if not os.path.exists(target):
        atomic_write_bytes(target, data)  # the same name for the same bytes: safe across workers
    return MediaRef(target, target)


def _media(value: Any, kind: str, ctx: ReadContext, where: str) -> MediaRef:
    """A path, an OpenAI ``{url}`` or an HF ``{bytes, path}`` struct -> MediaRef."""
    if isinstance(value, str):
        return ctx.media(value, kind)
    if not isinstance(value, dict):
        raise RecordError(f"{where} must be a path or a {{bytes, path}} struct, got {type(value).__name__}")
    url = value.get("url")
    if isinstance(url, str) and url:
        return ctx.media(url, kind)
    data = value.get("bytes")
    path = value.get("path")
    if not data:
        if not isinstance(path, str) or not path:
            raise RecordError(f"{where} has neither bytes nor a path", "give the media a path")
        return ctx.media(path, kind)
    if not isinstance(data, bytes | bytearray):
        raise RecordError(f"{where}.bytes must be binary, got {type(data).__name__}")
    if ctx.options.extract_images:
        return extract_bytes(bytes(data), path, ctx.options.extract_images)
    resolved = None
    if isinstance(path, str) and path:
        media = ctx.media(path, kind)
        resolved = media.resolved
        if resolved and (is_remote(resolved) or os.path.isfile(resolved)):
            return media
    raise RecordError(
        f"{where} holds embedded bytes and its path {path!r} is not a file" + (f" ({resolved})" if resolved else ""),
        "pass --extract-images DIR to write the embedded media to files (or --root where the files are)",
    )


def _payload(block: dict[str, Any], kind: str) -> Any:
    for key in (kind, "path", "url", "value"):
        value = block.get(key)
        if value is not None and value != "":
            return value
    return None


def _hf_only(block: dict[str, Any]) -> bool:
    """A TRL placeholder (no payload) or a LLaMA-Factory v1 ``{type, value}`` block."""
    kind = block.get("type")
    if kind in ("image", "video"):
        return _payload(block, kind) is None
    return kind == "text" and block.get("text") is None and "value" in block


def _fill(found: list[MediaRef | None], column: list[MediaRef], kind: str) -> list[MediaRef]:
    placeholders = found.count(None)
    if placeholders != len(column):
        raise RecordError(
            f"Number of {kind}s provided ({len(column)}) does not match number of {kind} placeholders ({placeholders})",
            f'TRL raises on this: give one {{"type": "{kind}"}} block per entry of {kind}s',
        )
    if not placeholders:
        return found  # type: ignore[return-value]
    rest = iter(column)
    return [m if m is not None else next(rest) for m in found]


def _column(record: dict[str, Any], key: str, alias: str, kind: str, ctx: ReadContext) -> list[MediaRef]:
    raw = record.get(key)
    if raw is None:
        raw = record.get(alias)
        key = alias
    if raw is None or raw == "":
        return []
    if isinstance(raw, list):
        return [_media(item, kind, ctx, f"{key}[{k}]") for k, item in enumerate(raw)]
    return [_media(raw, kind, ctx, key)]


# --------------------------------------------------------------------------- the codec


class HfCodec(Codec):
    name = "hf"
    read_options = frozenset({"extract_images"})
    write_options = frozenset({"embed_images", "shard_size", "hf_layout", "hf_boxes", "relative_paths"})
    title = "HF/TRL messages"
    layouts = ("jsonl", "json", "parquet")
    fields = (
        "messages[{role, content: [{type: text|image|video, text}]}] or prompt/completion; "
        "images | image (path or {bytes, path}), videos; .parquet files or folders"
    )
    boxes = "no TRL convention: Qwen2-VL <|box_start|>(x1,y1),(x2,y2)<|box_end|> 0-1000 in text (--hf-boxes)"
    absolute_paths = True  # relative paths resolve against the working directory, as datasets' Image does
    schema = HF_RECORD
    known_keys = frozenset({"id", "messages", "prompt", "completion", "images", "image", "videos", "video"})

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict):
            return 0.0
        msgs = record.get("messages")
        if isinstance(msgs, list):
            typed = False
            for m in msgs:
                content = m.get("content") if isinstance(m, dict) else None
                if not isinstance(content, list):
                    continue
                for block in content:
                    if isinstance(block, dict) and "type" in block:
                        typed = True
                        if _hf_only(block):
                            return 0.97  # above ms-swift's 0.95: it cannot read this block
            if typed:
                return 0.9  # payload-carrying (OpenAI) blocks: ms-swift reads them as well, and wins
            return 0.5 if msgs and isinstance(msgs[0], dict) and "role" in msgs[0] else 0.0
        if "prompt" in record and "completion" in record:
            return 0.9 if isinstance(record["prompt"], list) else 0.6
        return 0.0

    # --- files ----------------------------------------------------------------------------

    def claims(self, path: str) -> bool:
        if path == "-":
            return False
        if path.endswith(".parquet"):
            return True
        return os.path.isdir(path) and any(is_parquet(f) for f in os.listdir(path))

    def open_input(self, path: str) -> tuple[str, Iterator[Any], Callable[[], None]] | None:
        if not self.claims(path):
            return None
        return ("parquet", *read_parquet(path))

    def output_files(self, dst: str) -> list[str]:
        """A parquet output also replaces the older shards of its name (NAME-00000-of-0000N.parquet)."""
        return [dst, *shards_of(dst)]

    def open_output(self, path: str, layout: str, options: Options) -> Any | None:
        if layout != "parquet":
            if options.embed_images:
                raise VlmdataError("--embed-images stores image bytes in parquet; give an output ending in .parquet")
            return None
        if path == "-":
            raise VlmdataError("parquet cannot be written to stdout; give an output file ending in .parquet")
        return ParquetWriter(path, options)

    def check_options(self, options: Options) -> None:
        super().check_options(options)
        if options.shard_size < 1:
            raise VlmdataError("--shard-size must be at least 1")

    # --- records --------------------------------------------------------------------------

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        if "messages" in record and record["messages"] is not None:
            conversation: list[tuple[str, Any]] = [("messages", record["messages"])]
        elif record.get("prompt") is not None and record.get("completion") is not None:
            conversation = [("prompt", record["prompt"]), ("completion", record["completion"])]
        else:
            raise RecordError(
                "the row has neither messages nor prompt + completion",
                "TRL conversational rows hold messages, or prompt and completion",
            )
        column_images = _column(record, "images", "image", "image", ctx)
        column_videos = _column(record, "videos", "video", "video", ctx)
        state = _RowState()
        messages: list[Message] = []
        for key, value in conversation:
            if isinstance(value, str):  # standard (non-chat) prompt/completion: a user and an assistant turn
                value = [{"role": "user" if key == "prompt" else "assistant", "content": value}]
            if not isinstance(value, list):
                raise RecordError(f"{key} must be a list of messages, got {type(value).__name__}")
            for k, raw in enumerate(value):
                messages.append(self._message(raw, f"{key}[{k}]", state, column_images, column_videos, ctx))
        if not messages:
            raise RecordError("the conversation is empty", "give the row at least one user and one assistant turn")
        images = _fill(state.images, column_images, "image")
        videos = _fill(state.videos, column_videos, "video")
        if record.keys() <= self.known_keys:
            extra = {}
        else:
            extra = {k: v for k, v in record.items() if k not in self.known_keys and v is not None}
        return Sample(messages, images, videos, [], record.get("id"), extra)

    def _message(
        self,
        raw: Any,
        where: str,
        state: _RowState,
        column_images: list[MediaRef],
        column_videos: list[MediaRef],
        ctx: ReadContext,
    ) -> Message:
        if not isinstance(raw, dict):
            raise RecordError(f"{where} must be an object with role and content")
        role_name = raw.get("role")
        role = ROLES_IN.get(role_name) if isinstance(role_name, str) else None
        if role is None:
            raise RecordError(
                f"{where}: Invalid role in message: {role_name}. Expected 'system', 'user', 'assistant', or 'tool'.",
                "use one of system, user, assistant, tool",
            )
        content = raw.get("content")
        parts: list[Part] = []
        if isinstance(content, str):
            if role == "user" and state.first_string_user:
                # TRL: the first string-content user message gets every image in front of its text
                state.first_string_user = False
                for _ in column_images:
                    parts.append(state.slot("image", None))
                for _ in column_videos:
                    parts.append(state.slot("video", None))
                ctx.tally.inserted_tags += len(column_images) + len(column_videos)
            parts.extend(_text_parts(content, state))
        elif isinstance(content, list):
            for j, block in enumerate(content):
                parts.extend(self._block(block, f"{where}.content[{j}]", role, state, ctx))
        elif content is not None:
            raise RecordError(f"{where}.content must be a string or a list of blocks, got {type(content).__name__}")
        if len(raw) == 2 and "content" in raw:
            extra = {}
        else:
            extra = {k: v for k, v in raw.items() if k not in MESSAGE_KEYS and v is not None}
        return Message(role, parts, extra)  # type: ignore[arg-type]

    def _block(self, block: Any, where: str, role: str, state: _RowState, ctx: ReadContext) -> list[Part]:
        if not isinstance(block, dict):
            raise RecordError(f"{where} must be a typed block object, got {type(block).__name__}")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if text is None:
                text = block.get("value")  # LLaMA-Factory v1 blocks: {type, value}
            if not isinstance(text, str):
                raise RecordError(f"{where} is a text block without text", 'give it "text": "..."')
            return _text_parts(text, state)
        media_kind = MEDIA_BLOCKS.get(kind) if isinstance(kind, str) else None
        if media_kind is None:
            raise RecordError(f"{where} has block type {kind!r}", "vlmdata reads text, image, video and *_url blocks")
        value = _payload(block, kind)  # type: ignore[arg-type]
        if value is None:
            if kind.endswith("_url"):  # type: ignore[union-attr]
                raise RecordError(f"{where} ({kind}) has no url", "give the block its media")
            if role == "tool_response":
                raise RecordError(f"{where}: TRL does not fill {media_kind} placeholders in tool messages")
            return [state.slot(media_kind, None)]
        return [state.slot(media_kind, _media(value, media_kind, ctx, where))]

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        if sample.audios:
            raise RecordError("the record has audio", "HF/TRL rows hold images and videos only")
        writer = _MessageWriter(sample, ctx)
        messages = [writer.message(m, k) for k, m in enumerate(sample.messages)]
        for kind, media, used in (("image", sample.images, writer.images), ("video", sample.videos, writer.videos)):
            if len(used) != len(media):
                raise RecordError(
                    f"{len(used)} {kind} slot(s) but {len(media)} {kind}(s) in the record",
                    f'TRL pairs {{"type": "{kind}"}} blocks with {kind}s one to one',
                )
        out: dict[str, Any] = {}
        if sample.id is not None:
            out["id"] = sample.id
        if ctx.options.hf_layout == "prompt-completion":
            split = _completion_start(sample.messages)
            out["prompt"], out["completion"] = messages[:split], messages[split:]
        else:
            out["messages"] = messages
        if writer.images:
            out["images"] = writer.images
        if writer.videos:
            out["videos"] = writer.videos
        self.put_extra(out, sample, ctx)
        return out


def _completion_start(messages: list[Message]) -> int:
    split = len(messages)
    while split > 0 and messages[split - 1].role == "assistant":
        split -= 1
    if split == len(messages) or split == 0:
        raise RecordError(
            "prompt/completion rows need a conversation that ends with assistant turns after a prompt",
            "write --hf-layout messages for this data",
        )
    return split


class _MessageWriter:
    """Blocks for one sample's messages; collects the media values in slot order."""

    def __init__(self, sample: Sample, ctx: WriteContext) -> None:
        self.sample = sample
        self.ctx = ctx
        self.syntax = ctx.options.hf_boxes
        self.images: list[Any] = []
        self.videos: list[str] = []

    def _in_frame(self, part: Boxes | Points) -> Boxes | Points:
        return part_in_frame(part, self.sample, self.ctx, Frame.NORM1000)

    def message(self, m: Message, k: int) -> dict[str, Any]:
        role = ROLES_OUT.get(m.role)
        if role is None:
            raise RecordError(
                f"message {k} has role {m.role!r}, which HF/TRL messages cannot hold",
                "HF chat rows put tool calls in an assistant message's tool_calls: convert these turns first",
            )
        blocks: list[dict[str, Any]] = []
        pending: list[Part] = []
        for p in m.parts:
            t = p.type
            if t in ("image", "video"):
                self._flush(pending, blocks)
                pending = []
                blocks.append({"type": t})
                self._media(t, p.index)  # type: ignore[union-attr]
            elif t == "audio":
                raise RecordError(f"message {k} holds an audio slot", "HF/TRL rows hold images and videos only")
            else:
                pending.append(p)
        self._flush(pending, blocks)
        out: dict[str, Any] = {"role": role, "content": blocks}
        for key, v in m.extra.items():
            if key not in out:
                out[key] = v
        return out

    def _flush(self, parts: list[Part], blocks: list[dict[str, Any]]) -> None:
        if parts:
            text = render_parts(parts, self.syntax, self._in_frame)  # type: ignore[arg-type]
            if text:
                blocks.append({"type": "text", "text": text})

    def _media(self, kind: str, index: int) -> None:
        media_list = self.sample.images if kind == "image" else self.sample.videos
        if not 0 <= index < len(media_list):
            raise RecordError(f"an {kind} slot refers to {kind} {index} but the record has {len(media_list)}")
        media = media_list[index]
        if kind == "video":
            if media.frames:
                raise RecordError("the video is a list of frame files", "HF rows take one video file per video")
            self.videos.append(self.ctx.out_path(media, absolute=True))
        elif self.ctx.options.embed_images:
            resolved = media.resolved or media.path
            if is_remote(resolved):
                raise RecordError(f"image {media.path!r} is remote; --embed-images reads local files")
            if not os.path.isfile(resolved):
                raise RecordError(f"image {media.path!r} is not a file ({resolved})", "fix the path or the --root")
            self.images.append({"path": os.path.basename(resolved), "file": resolved})  # bytes read by the writer
        else:  # absolute: datasets' Image (and the reader) resolve a relative path against the working directory
            self.images.append(self.ctx.out_path(media, absolute=True))
