"""What every format codec provides, and the contexts a codec reads and writes with.

A codec turns one record of its format into a canonical ``Sample`` (``decode``) and back
(``encode``). It never knows about other formats: A -> B is always A -> Sample -> B.
"""

from __future__ import annotations

import dataclasses
import typing
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
from vlmdata.media.smart_resize import QWEN2_MAX_PIXELS, QWEN2_MIN_PIXELS
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


def counter(note: str, key: str | None = None) -> Any:
    """A ``Tally`` counter: ``note`` is the report's sentence for it (``{n}`` is the count), ``key``
    its name in the JSON report (default: the field's). Declared once, it is merged, printed and
    reported without another edit (``vlmdata/convert/report.py``)."""
    return field(default=0, metadata={"note": note, "key": key})


@dataclass
class Tally:
    """Counters a codec bumps while it works; the pipeline folds them into the report."""

    clamped: int = counter(
        "{n} box coordinate(s) were outside their frame and were clamped", key="clamped_coordinates"
    )
    inserted_tags: int = counter(
        "{n} media tag(s) were added where the source relied on its consumer's auto-insertion"
    )
    unused_objects: int = counter("{n} objects entr(y/ies) had no placeholder and were not used")
    legacy_objects: int = counter(  # records written with legacy objects (ms-swift <= 3.0 only)
        "{n} record(s) carry legacy objects (a JSON string): only ms-swift <= 3.0 reads them, ms-swift >= 3.1 "
        "drops those rows; use --to swift for current ms-swift"
    )
    crowd_skipped: int = counter("{n} COCO crowd box(es) (iscrowd=1) were left out; keep: --coco-crowd include")
    empty_boxes_skipped: int = counter("{n} COCO box(es) with zero or negative width/height were left out")
    unmatched_annotations: int = counter(
        "{n} COCO annotation(s) name an image_id that is not in images and were not converted"
    )
    systems_dropped: int = counter("{n} system prompt(s) were dropped (--system drop)")
    systems_merged: int = counter("{n} system prompt(s) were merged into the first user turn")
    swapped_boxes: int = counter("{n} box(es) had reversed corners and were swapped (--fix-boxes swap)")
    dropped_turns: int = counter(  # leading turns the source's consumer drops (LLaVA: a leading gpt turn)
        "{n} leading gpt turn(s) were dropped, as LLaVA does (it never trains on them)"
    )
    record_notes: list[RecordNote] = field(default_factory=list)  # what was changed per record, first ones kept
    dropped_keys: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)  # boxes per frame, e.g. "pixel_resized 644x420 (read)"

    def note(self, origin: Origin | None, text: str) -> None:
        if len(self.record_notes) < KEEP_NOTES:
            self.record_notes.append(RecordNote(origin, text))

    def merge(self, other: Tally) -> None:
        for name in COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.record_notes.extend(other.record_notes[: max(0, KEEP_NOTES - len(self.record_notes))])
        self.dropped_keys.update(other.dropped_keys)
        self.frames.update(other.frames)

    def counter_notes(self) -> list[str]:
        """The report's sentence for every counter that is not zero, in declaration order."""
        return [COUNTERS[name]["note"].format(n=getattr(self, name)) for name in COUNTERS if getattr(self, name)]

    def counter_values(self) -> dict[str, int]:
        """Every counter under its JSON report name."""
        return {COUNTERS[name]["key"] or name: getattr(self, name) for name in COUNTERS}


COUNTERS = {f.name: f.metadata for f in dataclasses.fields(Tally) if "note" in f.metadata}


def opt(
    default: Any,
    help: str,
    *,
    flag: str | None = None,
    metavar: str | None = None,
    minimum: int | None = None,
    off_flag: bool = False,
    cli: bool = True,
) -> Any:
    """An ``Options`` field with what the command line says about it.

    The convert/transform options are generated from these (``vlmdata/convert/cli_options.py``), the
    choices from the field's ``Literal`` type, and each option's help names the formats whose
    codecs declare it in ``read_options``/``write_options``: a default, a choice or a help text
    is written once, here. ``off_flag``: a True default switched off by ``--no-NAME``."""
    meta = {"help": help, "flag": flag, "metavar": metavar, "min": minimum, "off_flag": off_flag, "cli": cli}
    return field(default=default, metadata=meta)


QwenModel = Literal["qwen2-vl", "qwen2.5-vl", "qwen3-vl"]


@dataclass
class Options:
    """User choices that change how records are read or written (all picklable for workers).

    Which format uses which option is declared by its codec (``read_options``, ``write_options``);
    an option that neither the reader nor the writer of a run uses is refused (``check_applicable``)."""

    root: str | None = opt(
        None, "Media root: input paths resolve under it; InternVL/LLaVA output is relative to it."
    )  # None = the format's default (docs/consumers.md#media-paths)
    allow_outside_root: bool = opt(False, "Allow media paths that leave the root (../, symlinks).")
    relative_paths: bool = opt(False, "ms-swift output: keep paths relative (set ROOT_IMAGE_DIR).")
    fix_boxes: Literal["swap"] | None = opt(
        None,
        "Reversed box corners (x2 < x1 or y2 < y1): swap them, with a note per record (default: reject, VD201).",
    )
    native_grounding: Literal["qwen", "internvl", "both"] | None = opt(
        None,
        "ms-swift input: its text also holds the trained model's own box markup (Qwen2-VL tokens, InternVL "
        "<ref>/<box>); read it as boxes (default: it is text, as it is to ms-swift).",
    )
    system: SystemPolicy = opt("reject", "What to do with system prompts the target cannot hold.")
    # LLaVA floats are fractions of the padded square (docs/formats.md#llava-boxes)
    llava_padded: bool = opt(False, "LLaVA boxes are fractions of the padded square image.")
    sizes: bool = opt(
        True, "InternVL output: do not read image headers to write width/height.", flag="--no-sizes", off_flag=True
    )
    internvl_video: Literal["auto", "images"] = opt(
        "auto", "InternVL output of frame videos: a frame folder when they are one, or Frame-i images."
    )
    meta: str | None = opt(None, "Also write/update this InternVL meta JSON with an entry for the output.")
    meta_name: str | None = opt(None, "Meta entry name (default: the output file's stem).", flag="--name")
    dataset_info: str | None = opt(
        None,
        "LLaMA-Factory dataset_info.json: --from sharegpt reads the entry's columns/tags (media under its "
        "folder unless --root); --to sharegpt adds/updates the output's entry.",
        metavar="PATH",
    )
    media_dir: str | None = opt(
        None,
        "--to sharegpt: write media paths relative to this folder (LLaMA-Factory's media_dir; default: the "
        "--dataset-info folder, else absolute paths).",
        metavar="DIR",
    )
    dataset_name: str | None = opt(
        None, "dataset_info.json entry name (default for --to sharegpt: the output file's stem).", metavar="NAME"
    )
    qwen_model: QwenModel = opt(
        "qwen2-vl",
        "Qwen input/output box frame: qwen2-vl and qwen3-vl 0-1000 of the image; qwen2.5-vl absolute pixels "
        "of the smart-resized image (set --max-pixels/--min-pixels to the training values).",
    )
    qwen_boxes: Literal["tokens", "qwen", "json"] = opt(
        "tokens",
        "Qwen output box syntax: <|box_start|>(x1,y1),(x2,y2)<|box_end|> tokens (also called qwen), or a ```json "
        '[{"bbox_2d": [..], "label": ".."}] answer. Input reads both.',
    )
    # Qwen2.5-VL smart_resize max_pixels (qwen-vl-utils MAX_PIXELS, docs/frames.md#smart_resize)
    max_pixels: int = opt(
        QWEN2_MAX_PIXELS,
        "Qwen2.5-VL boxes: smart_resize max_pixels (default: qwen-vl-utils MAX_PIXELS; transformers' is 1003520).",
        minimum=1,
    )
    min_pixels: int = opt(QWEN2_MIN_PIXELS, "Qwen2.5-VL boxes: smart_resize min_pixels.", minimum=1)
    # LLaMA-Factory shrink before smart_resize (docs/frames.md#llama-factory-pre-resize); None = off
    image_max_pixels: int | None = opt(
        None,
        "Qwen2.5-VL boxes: LLaMA-Factory's image_max_pixels shrink before smart_resize (off unless given; "
        "LLaMA-Factory's default is 589824).",
        minimum=1,
    )
    embed_images: bool = opt(False, "HF parquet output: store image bytes in the file (path: its name).")
    shard_size: int = opt(10_000, "HF parquet output: rows per file.", minimum=1)
    extract_images: str | None = opt(
        None, "HF parquet input: write embedded image bytes to files in DIR.", metavar="DIR"
    )
    hf_layout: Literal["messages", "prompt-completion"] = opt(
        "messages", "HF output columns: messages, or TRL prompt/completion (the last assistant turns)."
    )
    hf_boxes: Literal["qwen", "internvl"] = opt("qwen", "HF output: box markup in text blocks (0-1000 either way).")
    coco_task: Literal["detect", "refer"] = opt(
        "detect",
        "COCO input: one detection answer per image, or one referring question per category (multi-turn).",
    )
    coco_prompt: str | None = opt(
        None,
        "COCO input: the user prompt (default: InternVL's detection prompt; for refer, InternVL's RefCOCO "
        "question, where {category} marks the category).",
    )
    coco_answer: str | None = opt(
        None, "COCO detect: the line before the boxes ('' for none; default: InternVL's V3Det answer line)."
    )
    coco_empty_answer: str | None = opt(
        None, "COCO detect: the answer for an image without annotations (default: 'There are no objects to detect.')."
    )
    coco_crowd: Literal["skip", "include"] = opt(
        "skip", "COCO input: crowd regions (iscrowd=1) are left out (counted in the report) or kept as boxes."
    )
    # set by the sharegpt reader (prepare_input): the dataset_info.json that names the input, and its entry
    read_dataset_info: str | None = opt(None, "", cli=False)
    read_dataset_name: str | None = opt(None, "", cli=False)


def option_flag(name: str) -> str:
    """The command-line flag of an ``Options`` field (``--name`` for ``meta_name``...)."""
    f = OPTION_FIELDS[name]
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def option_choices(name: str) -> tuple[Any, ...] | None:
    """The values a ``Literal``-typed option may take (None: any value of its type)."""
    hint = OPTION_HINTS[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if len(args) == 1 and typing.get_origin(args[0]) is Literal:
        return typing.get_args(args[0])
    return None


OPTION_FIELDS = {f.name: f for f in dataclasses.fields(Options)}
OPTION_HINTS = typing.get_type_hints(Options)


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
        """Refuse, before any work, options that make no sense for this output format: a value
        outside an option's choices, and an option only writers of other formats use."""
        check_choices(options)
        for name in OPTION_FIELDS:
            if name in self.write_options or name in GENERAL_OPTIONS or not _given(options, name):
                continue
            writers = [c for c in _all_codecs() if name in c.write_options]
            if writers and not any(name in c.read_options for c in _all_codecs()):
                raise VlmdataError(
                    f"{option_flag(name)} is used writing {' or '.join(c.title for c in writers)}; "
                    f"use it with --to {' or --to '.join(c.name for c in writers)}, or drop it"
                )

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
    for f in dataclasses.fields(Options):
        if f.name not in used and _given(options, f.name):
            flag = option_flag(f.name)
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


_DEFAULTS = Options()


def _given(options: Options, name: str) -> bool:
    return bool(getattr(options, name) != getattr(_DEFAULTS, name))


def check_choices(options: Options) -> None:
    """Values of ``Literal`` options come from the library too (not only the CLI's choices)."""
    for name in OPTION_FIELDS:
        choices = option_choices(name)
        value = getattr(options, name)
        if choices is not None and value is not None and value not in choices:
            raise VlmdataError(f"{option_flag(name)} must be one of {', '.join(map(str, choices))}, not {value!r}")


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
