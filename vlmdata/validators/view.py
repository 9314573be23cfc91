"""What rules look at: a lenient view of one record, of one media reference, of one data file.

Rules must see records *as written* (a consumer's counting rule is about the literal tags), so
the view is extracted from the raw record by a forgiving reader that never rejects; the strictly
decoded ``Sample`` rides along when the format's codec accepts the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vlmdata.consumers.base import MEDIA_BLOCKS, MESSAGE_LISTS, TAGS
from vlmdata.consumers.swift import ROLE_ALIASES
from vlmdata.schemas.sample import Sample

ROLE_NAMES = ROLE_ALIASES  # the role spellings readers know, mapped to the canonical roles
BLOCK_TAGS = {block: TAGS[kind] for block, kind in MEDIA_BLOCKS.items()}


@dataclass(slots=True)
class Turn:
    role: str  # canonical role, or the raw value when it is not a known role
    raw_role: Any
    text: str  # content with media blocks shown as tags
    key: str  # where it sits in the record, e.g. "conversations[2].value"
    content_key: str | None = None  # "value"/"content", None when the turn has neither


@dataclass
class RecordView:
    file: str
    line: int | None
    index: int
    format: str
    raw: dict[str, Any] | None
    turns: list[Turn] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    declared_sizes: list[tuple[int, int] | None] = field(default_factory=list)
    block_media: list[tuple[str, str]] = field(default_factory=list)  # (kind, path) of typed blocks with a payload
    sample: Sample | None = None
    decode_error: str | None = None

    @property
    def id(self) -> Any:
        return self.raw.get("id") if isinstance(self.raw, dict) else None


@dataclass
class MediaView:
    """One media path of one record, with what the header probe found (``info``)."""

    record: RecordView
    kind: str  # "image" | "video"
    position: int  # index in the record's media list
    path: str  # as written
    resolved: str | None  # None when it escapes the root (reported by a rule)
    resolve_error: str | None
    declared: tuple[int, int] | None  # width/height the record states
    info: Any = None  # vlmdata.media.inspect.MediaInfo, filled by the engine


@dataclass
class FileView:
    path: str
    format: str
    layout: str  # "jsonl" | "json" | "parquet" | "meta" | ...
    records: int = 0
    meta_entry: dict[str, Any] | None = None  # when the file was named by an InternVL meta entry
    meta_file: str | None = None
    meta_name: str | None = None


def _as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _media_paths(value: Any) -> list[str]:
    out = []
    for item in _as_list(value):
        if isinstance(item, dict):
            item = item.get("path") or "<embedded bytes>"
        if isinstance(item, list):  # a video as frames
            item = item[0] if item else ""
        out.append(item if isinstance(item, str) else repr(item))
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                kind = block.get("type")
                if not isinstance(kind, str):  # a list or dict as type: no block any consumer reads
                    continue
                if kind == "text":
                    text = block.get("text")
                    parts.append(str(block.get("value", "") if text is None else text))  # LLaMA-Factory v1: value
                elif kind in BLOCK_TAGS:
                    parts.append(BLOCK_TAGS[kind])
        return "".join(parts)
    return "" if content is None else str(content)


def _block_media(blocks: list[Any]) -> list[tuple[str, str]]:
    """Media that typed blocks carry themselves: ``{"type": "image", "image": path}``, OpenAI
    ``{"type": "image_url", "image_url": {"url": ..}}``, LLaMA-Factory v1 ``{"type": "image_url", "value": ..}``."""
    out = []
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str) or block["type"] not in MEDIA_BLOCKS:
            continue
        btype = block["type"]
        value = next((block[k] for k in (btype, "path", "url", "value") if block.get(k) not in (None, "")), None)
        if isinstance(value, dict):
            value = value.get("url") or value.get("path") or ("<embedded bytes>" if value.get("bytes") else None)
        if isinstance(value, str) and value:
            out.append((MEDIA_BLOCKS[btype], value))
    return out


def build_view(raw: Any, file: str, line: int | None, index: int, fmt: str) -> RecordView:
    """The forgiving view of a parsed record (never raises)."""
    view = RecordView(file, line, index, fmt, raw if isinstance(raw, dict) else None)
    if not isinstance(raw, dict):
        return view
    key, msgs = next(((k, raw[k]) for k in MESSAGE_LISTS if isinstance(raw.get(k), list)), ("", None))
    if msgs is not None:
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                view.turns.append(Turn(str(m), m, "", f"{key}[{i}]"))
                continue
            raw_role = m.get("role", m.get("from"))
            content_key = "content" if "content" in m else ("value" if "value" in m else None)
            text = _content_text(m.get(content_key)) if content_key else ""
            role = ROLE_NAMES.get(raw_role, raw_role) if isinstance(raw_role, str) else str(raw_role)
            view.turns.append(Turn(role, raw_role, text, f"{key}[{i}]", content_key))
            content = m.get(content_key) if content_key else None
            if isinstance(content, list):
                view.block_media.extend(_block_media(content))
    elif "response" in raw or "query" in raw:
        if raw.get("system"):
            view.turns.append(Turn("system", "system", str(raw["system"]), "system", "system"))
        history = raw.get("history")
        if isinstance(history, list):
            for i, pair in enumerate(history):
                if isinstance(pair, list | tuple) and len(pair) == 2:
                    view.turns.append(Turn("user", "user", str(pair[0]), f"history[{i}][0]"))
                    view.turns.append(Turn("assistant", "assistant", str(pair[1]), f"history[{i}][1]"))
        view.turns.append(Turn("user", "user", str(raw.get("query") or ""), "query", "query"))
        view.turns.append(Turn("assistant", "assistant", str(raw.get("response") or ""), "response", "response"))
    images = raw.get("images", raw.get("image"))
    view.images = _media_paths(images)
    view.videos = _media_paths(raw.get("videos", raw.get("video")))
    if isinstance(images, str):
        w, h = raw.get("width"), raw.get("height")
        view.declared_sizes = [(w, h) if isinstance(w, int) and isinstance(h, int) else None]
    else:
        ws, hs = raw.get("width_list"), raw.get("height_list")
        if isinstance(ws, list) and isinstance(hs, list) and len(ws) == len(hs) == len(view.images):
            view.declared_sizes = [
                (w, h) if isinstance(w, int) and isinstance(h, int) else None for w, h in zip(ws, hs, strict=True)
            ]
        else:
            view.declared_sizes = [None] * len(view.images)
    return view
