"""What a conversion did: counts in = written + rejected, and every reason."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from vlmdata.convert.codec import Tally
from vlmdata.schemas.sample import where

KEEP_REJECTIONS = 1000  # kept in memory for the summary; --rejects gets every one
SHOWN_FRAMES = 8  # frame sizes named in the notes; the JSON report has them all


def frames_note(frames: Counter[str]) -> str:
    """One line naming the frames boxes were read or written in, most common first."""
    shown = "; ".join(f"{key}: {n}" for key, n in frames.most_common(SHOWN_FRAMES))
    more = f"; and {len(frames) - SHOWN_FRAMES} more (--json lists all)" if len(frames) > SHOWN_FRAMES else ""
    return (
        f"boxes per frame: {shown}{more} (pixel_resized W'xH' = Qwen2.5-VL pixels of the smart-resized image, "
        "valid only for the min/max pixels used)"
    )


SHOWN_ID = 80  # characters of a record id shown in messages


def safe_text(text: str, limit: int | None = None) -> str:
    """``text`` that every stream and JSON writer accepts: lone surrogates and NULs escaped, maybe cut."""
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isprintable() or (text.isascii() and "\0" not in text):
        return text
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\0", "\\x00")


def safe_value(value: Any) -> Any:
    """A record id (or any scalar from a record) as something messages and JSON can carry."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, str):
        return safe_text(value, SHOWN_ID)
    return safe_text(repr(value) if not isinstance(value, (list, dict)) else f"<{type(value).__name__}>", SHOWN_ID)


def json_text(data: object) -> str:
    """A report as indented JSON text; values strict UTF-8 JSON cannot hold (a lone surrogate from a
    record, an integer over 64 bits) are escaped instead of failing the report."""
    import json

    import orjson

    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        return json.dumps(data, indent=2, ensure_ascii=True, default=str)


@dataclass(slots=True)
class Rejection:
    file: str
    line: int | None
    index: int | None
    id: Any
    error: str
    fix: str

    def __post_init__(self) -> None:
        # the reason quotes the record's own values: keep them printable and JSON-safe
        self.id = safe_value(self.id)
        self.error = safe_text(self.error)
        self.fix = safe_text(self.fix)

    def where(self) -> str:
        return where(self.file, self.line, self.index, self.id)

    def reason(self) -> str:
        """What is wrong, then how to fix it."""
        return self.error + (f"; {self.fix}" if self.fix else "")

    def message(self) -> str:
        return f"{self.where()}: {self.reason()}"


@dataclass
class ConvertReport:
    source: str
    output: str
    input_format: str
    output_format: str
    records_in: int = 0
    written: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    side_files: list[str] = field(default_factory=list)  # meta JSON, dataset_info.json...
    advice: list[str] = field(default_factory=list)  # what to set in the consumer (e.g. LLaMA-Factory's media_dir)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.rejected == 0

    @property
    def meta(self) -> str | None:
        """The InternVL meta file written beside the output, if any."""
        return (
            next((f for f in self.side_files if f.endswith(".json")), None)
            if self.output_format == "internvl"
            else None
        )

    @property
    def clamped(self) -> int:
        return self.tally.clamped

    def add_rejection(self, rejection: Rejection) -> None:
        self.rejected += 1
        if len(self.rejections) < KEEP_REJECTIONS:
            self.rejections.append(rejection)

    def notes(self) -> list[str]:
        """Everything the conversion changed or could not carry, in plain words."""
        t = self.tally
        out = t.counter_notes()
        out.extend(str(n) for n in t.record_notes[:20])
        if len(t.record_notes) > 20:
            out.append(f"... and {len(t.record_notes) - 20} more record note(s) in the JSON report (record_notes)")
        if t.frames:
            out.append(frames_note(t.frames))
        for key, n in sorted(t.dropped_keys.items()):
            out.append(f"key {key!r} could not be written for {n} record(s) ({self.output_format})")
        out.extend(self.advice)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "output": self.output,
            "input_format": self.input_format,
            "output_format": self.output_format,
            "records_in": self.records_in,
            "written": self.written,
            "rejected": self.rejected,
            **self.tally.counter_values(),
            "dropped_keys": dict(self.tally.dropped_keys),
            "frames": dict(self.tally.frames),
            "rejections": [r.message() for r in self.rejections],
            "record_notes": [str(n) for n in self.tally.record_notes],
            "advice": self.advice,
            "side_files": self.side_files,
            "seconds": round(self.seconds, 3),
        }
