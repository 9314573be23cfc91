"""What every format codec provides, and the contexts a codec reads and writes with.

A codec turns one record of its format into a canonical ``Sample`` (``decode``) and back
(``encode``). It never knows about other formats: A -> B is always A -> Sample -> B.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import TypeAdapter, ValidationError

from vlmdata.convert.frames import convert_box
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.media.probe import SizeCache
from vlmdata.schemas.sample import Box, Frame, MediaRef, Origin, Sample

Layout = Literal["jsonl", "json", "parquet"]  # parquet: HF datasets files (the hf codec's own writer)
SystemPolicy = Literal["reject", "drop", "merge"]
KEEP_NOTES = 1000  # per-record notes kept in a report (all are counted)


@dataclass(slots=True)
class RecordNote:
    """Something a conversion changed in one record, with where the record is."""

    origin: Origin | None
    text: str

    def __str__(self) -> str:
        return f"{self.origin.where()}: {self.text}" if self.origin is not None else self.text


@dataclass
class Tally:
    """Counters a codec bumps while it works; the pipeline folds them into the report."""

    clamped: int = 0  # coordinates clamped into their frame
    inserted_tags: int = 0  # media tags added where the source relied on auto-insertion
    systems_dropped: int = 0
    systems_merged: int = 0
    unused_objects: int = 0
    legacy_objects: int = 0  # records written with legacy objects (ms-swift <= 3.0 only)
    crowd_skipped: int = 0  # COCO crowd boxes (iscrowd=1) left out (--coco-crowd skip)
    empty_boxes_skipped: int = 0  # COCO boxes with zero or negative width/height, left out
    unmatched_annotations: int = 0  # COCO annotations whose image_id names no entry of images
    swapped_boxes: int = 0  # reversed corners swapped (--fix-boxes swap)
    dropped_turns: int = 0  # leading turns the source's consumer drops (LLaVA: a leading gpt turn)
    record_notes: list[RecordNote] = field(default_factory=list)  # what was changed per record, first ones kept
    dropped_keys: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)  # boxes per frame, e.g. "pixel_resized 644x420 (read)"

    def note(self, origin: Origin | None, text: str) -> None:
        if len(self.record_notes) < KEEP_NOTES:
            self.record_notes.append(RecordNote(origin, text))

    def merge(self, other: Tally) -> None:
        self.clamped += other.clamped
        self.inserted_tags += other.inserted_tags
        self.systems_dropped += other.systems_dropped
        self.systems_merged += other.systems_merged
        self.unused_objects += other.unused_objects
        self.legacy_objects += other.legacy_objects
        self.crowd_skipped += other.crowd_skipped
        self.empty_boxes_skipped += other.empty_boxes_skipped
        self.unmatched_annotations += other.unmatched_annotations
        self.swapped_boxes += other.swapped_boxes
        self.dropped_turns += other.dropped_turns
        self.record_notes.extend(other.record_notes[: max(0, KEEP_NOTES - len(self.record_notes))])
        self.dropped_keys.update(other.dropped_keys)
        self.frames.update(other.frames)


@dataclass
class Options:
    """User choices that change how records are read or written (all picklable for workers)."""

    root: str | None = None  # media root; None = the format's default (see paths.py)
    allow_outside_root: bool = False
    relative_paths: bool = False  # ms-swift output: keep paths relative to the root
    system: SystemPolicy = "reject"  # targets without a system prompt (LLaVA-1.5)
    llava_padded: bool = False  # LLaVA floats are fractions of the padded square (docs/formats.md#llava-boxes)
    sizes: bool = True  # InternVL output: write width/height read from the image headers
    internvl_video: str = "auto"  # frame-list videos: "auto" = a frame folder when they are one, "images" = Frame-i
    meta: str | None = None  # InternVL output: meta JSON to add or update an entry in
    meta_name: str | None = None  # its entry name (default: the output file's stem)
    dataset_info: str | None = None  # LLaMA-Factory dataset_info.json: entry read for input, updated for output
    dataset_name: str | None = None  # its entry name (default for output: the output file's stem)
    qwen_model: str = "qwen2-vl"  # Qwen box frame: qwen2-vl/qwen3-vl 0-1000, qwen2.5-vl pixels of the resized image
    qwen_boxes: str = "tokens"  # Qwen output box syntax: "tokens" (<|box_start|>..) or "json" ([{"bbox_2d": ..}])
    # Qwen2.5-VL smart_resize max_pixels (qwen-vl-utils MAX_PIXELS, docs/frames.md#smart_resize)
    max_pixels: int = 12_845_056
    min_pixels: int = 3_136  # Qwen2.5-VL smart_resize min_pixels (qwen-vl-utils MIN_PIXELS)
    # LLaMA-Factory shrink before smart_resize (docs/frames.md#llama-factory-pre-resize); None = off
    image_max_pixels: int | None = None
    coco_task: Literal["detect", "refer"] = "detect"  # COCO input: one detection answer per image, or per-category Q&A
    coco_prompt: str | None = None  # COCO input: the user prompt (None = the task's default; {category} in refer)
    coco_answer: str | None = None  # COCO detect: the line before the boxes (None = InternVL's, "" = none)
    coco_empty_answer: str | None = None  # COCO detect: the answer for an image without annotations (None = default)
    coco_crowd: Literal["skip", "include"] = "skip"  # COCO input: crowd boxes (iscrowd=1) left out (counted) or kept
    embed_images: bool = False  # HF parquet output: image bytes in the file (path = basename), not only paths
    shard_size: int = 10_000  # HF parquet output: rows per shard file (name-00000-of-00003.parquet)
    extract_images: str | None = None  # HF parquet input: write embedded image bytes to files in this folder
    hf_layout: str = "messages"  # HF output columns: "messages" or "prompt-completion" (TRL)
    hf_boxes: str = "qwen"  # HF output box text: "qwen" (Qwen2-VL tokens) or "internvl", both 0-1000
    native_grounding: str | None = None  # ms-swift input: its text also holds model-native boxes ("qwen", "internvl")
    fix_boxes: str | None = None  # "swap": reversed box corners are swapped (noted per record) instead of rejected
    media_dir: str | None = None  # LLaMA-Factory output: the media_dir its paths are written relative to
    read_dataset_info: str | None = None  # set by the sharegpt reader: the dataset_info.json that names the input
    read_dataset_name: str | None = None  # ... and its entry for the input file


class ReadContext:
    """What a decoder needs: where paths resolve, options, counters."""

    def __init__(self, resolver: PathResolver, options: Options, tally: Tally) -> None:
        self.resolver = resolver
        self.options = options
        self.tally = tally
        self.sizes = SizeCache()

    def image_size(self, media: MediaRef) -> tuple[int, int]:
        """The image's size from the record or its header (probed once per run), kept on ``media``."""
        if media.width is None or media.height is None:
            media.width, media.height = self.sizes.size(media.resolved or media.path, media.path)
        return media.width, media.height

    def media(self, path: Any, what: str = "image") -> MediaRef:
        if not isinstance(path, str) or not path:
            raise RecordError(f"{what} path must be a non-empty string, got {path!r}", "fix the media list")
        return MediaRef(path, self.resolver.resolve(path))


class WriteContext:
    """What an encoder needs: output path policy, image sizes for box frames, counters."""

    def __init__(self, resolver: PathResolver, options: Options, tally: Tally) -> None:
        self.resolver = resolver
        self.options = options
        self.tally = tally
        self.sizes = SizeCache()
        self.written_boxes: list[Box] | None = None  # the boxes of the record being written, in their frame

    def image_size(self, sample: Sample, index: int) -> tuple[int, int]:
        if index >= len(sample.images):
            raise RecordError(
                f"a box refers to image {index} but the record has {len(sample.images)} image(s)",
                "fix the box's image index",
            )
        media = sample.images[index]
        if media.width is None or media.height is None:
            w, h = self.sizes.size(media.resolved or media.path, media.path)
            media.width, media.height = w, h
        return media.width, media.height  # type: ignore[return-value]

    def known_size(self, sample: Sample, index: int) -> tuple[int, int] | None:
        """The image size when the record or the file header gives it, else None (no rejection)."""
        try:
            return self.image_size(sample, index)
        except RecordError:
            return None

    def box(self, sample: Sample, box: Box, image_index: int, frame: Frame) -> Box:
        out, clamped = convert_box(box, frame, lambda: self.image_size(sample, image_index))
        self.tally.clamped += clamped
        if self.written_boxes is not None:
            self.written_boxes.append(out)
        return out

    def note_box(self, box: Box) -> None:
        """A box a writer moved into its frame itself (not through ``box``): kept for the write-time check."""
        if self.written_boxes is not None:
            self.written_boxes.append(box)

    def out_path(self, media: MediaRef, absolute: bool) -> str:
        """The path to write: absolute for ms-swift, relative to the root for the others."""
        resolved = media.resolved or media.path
        out = resolved if absolute and not self.options.relative_paths else self.resolver.relative(resolved)
        if media.path.endswith("/") and not out.endswith("/"):
            out += "/"  # frame folders keep their trailing slash (InternVL reads it as a folder)
        return out


class Codec(ABC):
    """Base of the format codecs. Subclasses set the class attributes and the three methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    layouts: ClassVar[tuple[Layout, ...]] = ("jsonl", "json")
    default_layout: ClassVar[Layout] = "jsonl"
    fields: ClassVar[str]
    boxes: ClassVar[str]
    absolute_paths: ClassVar[bool] = False  # where relative media paths resolve by default
    needs_root: ClassVar[bool] = False  # media paths mean nothing without --root (COCO file names)
    read_options: ClassVar[frozenset[str]] = frozenset()  # Options fields reading this format uses
    write_options: ClassVar[frozenset[str]] = frozenset()  # Options fields writing this format uses
    schema: ClassVar[TypeAdapter[Any]]
    known_keys: ClassVar[frozenset[str]]

    @abstractmethod
    def detect(self, record: Any, layout: Layout) -> float:
        """Confidence in [0, 1] that ``record`` is of this format."""

    @abstractmethod
    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        """One validated record -> Sample (raises RecordError)."""

    @abstractmethod
    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        """Sample -> one record of this format (raises RecordError)."""

    # --- optional hooks: formats that are not one JSON record per line ---------------------

    def claims(self, path: str) -> bool:
        """Whether this codec reads ``path`` with its own reader whatever its content (parquet)."""
        return False

    def open_input(self, path: str) -> tuple[str, Iterator[Any], Callable[[], None]] | None:
        """(layout, Raw records, close) from a reader of its own; None = the JSON/JSONL reader."""
        return None

    def open_output(self, path: str, layout: str, options: Options) -> Any | None:
        """A writer of its own (same interface as io.RecordWriter); None = the JSON writer."""
        return None

    def check_options(self, options: Options) -> None:
        """Refuse, before any work, options that make no sense for this output format."""
        if options.meta:
            raise VlmdataError("--meta writes an InternVL meta entry; use it with --to internvl")
        if options.embed_images:
            raise VlmdataError("--embed-images writes HF parquet; use it with --to hf -o FILE.parquet")

    def output_files(self, dst: str) -> list[str]:
        """Every file that writing ``dst`` may create or replace (checked against the inputs first)."""
        return [dst]

    def side_files(self, options: Options) -> list[tuple[str, str | None]]:
        """(option, path) of the files ``after_write`` will write, so they are checked against the inputs."""
        return []

    def after_write(self, dst: str, written: int, root: str, options: Options) -> list[str]:
        """Write side files that describe the output (meta, dataset_info); returns their paths."""
        return []

    def media_root(self, options: Options, default: str) -> str:
        """Where this format's consumer resolves relative media paths (``default``: the format's usual root)."""
        return default

    def read_root(self, options: Options, default: str) -> str:
        """Where this format's consumer resolves the relative media paths of an input file
        (after ``prepare_input``; ``default``: the format's usual root)."""
        return default

    def prepare_input(self, path: str, options: Options) -> Options:
        """Options for reading ``path`` that the file's surroundings imply (a dataset_info.json naming it)."""
        return options

    def advice(self, dst: str, options: Options) -> list[str]:
        """What the user must set in the consumer for the output to load as written (printed)."""
        return []

    def load(self, payload: bytes | Any) -> dict[str, Any]:
        """Parse (bytes) and validate the record's shape in pydantic's core."""
        try:
            if isinstance(payload, (bytes, bytearray)):  # a tuple: faster than bytes | bytearray
                return self.schema.validate_json(payload)
            return self.schema.validate_python(payload)
        except ValidationError as exc:
            raise shape_error(exc, self.title) from None

    def extra_of(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in self.known_keys}

    def put_extra(self, out: dict[str, Any], sample: Sample, ctx: WriteContext) -> None:
        """Write the unknown keys back, unless one would overwrite a key of this format."""
        for k, v in sample.extra.items():
            if k in out or k in self.known_keys:
                ctx.tally.dropped_keys[k] += 1
            else:
                out[k] = v


GENERAL_OPTIONS = frozenset({"root", "allow_outside_root", "fix_boxes"})  # every pair uses these


def check_applicable(options: Options, reader: Codec | None, writer: Codec | None) -> None:
    """An option that neither the reader nor the writer uses is a usage error, never ignored."""
    used = set(GENERAL_OPTIONS)
    if reader is not None:
        used |= reader.read_options
    if writer is not None:
        used |= writer.write_options
    defaults = Options()
    for f in dataclasses.fields(Options):
        if f.name not in used and getattr(options, f.name) != getattr(defaults, f.name):
            flag = "--" + f.name.replace("_", "-")
            sides = []
            if reader is not None:
                sides.append(f"reading {reader.title}")
            if writer is not None:
                sides.append(f"writing {writer.title}")
            users = [c.name for c in _all_codecs() if f.name in c.write_options or f.name in c.read_options]
            raise VlmdataError(
                f"{flag} does not apply to {' or '.join(sides)}: it would be ignored; drop it"
                + (f" (it is used with: {', '.join(users)})" if users else "")
            )


def _all_codecs() -> list[Codec]:
    from vlmdata.convert.registry import FORMATS

    return list(FORMATS.values())


def shape_error(exc: ValidationError, title: str) -> RecordError:
    err = exc.errors(include_url=False)[0]
    if err["type"] == "json_invalid":
        return RecordError(f"invalid JSON: {err['ctx']['error']}", "fix the JSON syntax of this line")
    loc = ".".join(str(p) for p in err["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    got = err.get("input")
    shown = repr(got)[:60] if not isinstance(got, dict) else "an object"
    return RecordError(
        f"not a valid {title} record: {loc}: {err['msg']} (got {shown}){more}",
        f"fix {loc}, or pass --from if this is another format",
    )


def origin_of(file: str, line: int | None, index: int, record: dict[str, Any]) -> Origin:
    return Origin(file, line, index, record.get("id"))
