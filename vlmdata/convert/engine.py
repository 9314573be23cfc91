"""The one place records are read: an input becomes a stream of Items, each the record's origin
and either its ``Sample`` or the reason it was rejected, with the count of records read.

Every command reads through ``RecordSource`` (convert, transform, filter, split, validate, stats,
show, overlap, meta's length count and train's data pass), so a record is counted, located
(``file:line (id=...)``) and rejected the same way everywhere: a record that its codec cannot
read is one rejection, a JSON syntax error mid-file is one rejection that ends the file, and a
syntax error before the first record makes the whole file unreadable (exit 2). Decoding is
optional (``decode=False``) for callers that only need the records' positions or raw bytes.

A source can also be one byte range of a JSONL file (``byte_range``): its lines are numbered
from 1 and its records from 0 within the range, and ``lines_read`` and ``records_in`` say how many
it held so that the caller rebases positions when it joins shards (see
``vlmdata/convert/shards.py``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic_core

from vlmdata.convert.codec import Codec, Options, ReadContext, Tally
from vlmdata.convert.io import RangeRecords, Raw, SyntaxErrorInFile, TooDeep, read_raw
from vlmdata.convert.registry import FORMATS, detect, get_codec
from vlmdata.convert.report import Rejection
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.schemas.sample import Origin, Sample

EMPTY_INPUT_FORMAT = "swift"  # the reader named for an input with no records (it reads none of them)
DETECT_RECORDS = 50  # records the format vote looks at
# Bad data surfaces in codecs as these; they become rejections, never tracebacks.
DATA_ERRORS = (RecordError, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError)


def display_name(path: str, stream: str = "<stdin>") -> str:
    return stream if path == "-" else path


def default_root(codec: Codec, src: str) -> str:
    """Where relative media paths resolve when no root is given (docs/consumers.md#media-paths)."""
    if codec.absolute_paths or src == "-":
        return os.getcwd()  # ms-swift: the working directory
    return os.path.dirname(os.path.abspath(src))  # InternVL/LLaVA: their root folder


def input_root(codec: Codec, src: str, options: Options) -> str:
    """The folder relative media paths of ``src`` resolve against: ``--root``, else where the
    format's consumer looks (LLaMA-Factory: its dataset_info.json folder), else the format's default."""
    if options.root is not None:
        return options.root
    return codec.read_root(options, default_root(codec, src))


def resolver_for(codec: Codec, src: str, options: Options, allow_outside: bool | None = None) -> PathResolver:
    outside = options.allow_outside_root if allow_outside is None else allow_outside
    return PathResolver(input_root(codec, src, options), explicit_root=options.root is not None, allow_outside=outside)


@dataclass
class Opened:
    codec: Codec
    layout: str
    records: Iterator[Raw]
    close: Any
    empty: bool = False  # the input holds no record at all (its format could not be detected)
    custom: bool = False  # read by its codec's own reader (parquet), not the JSON reader


def open_records(src: str, fmt: str | None, byte_range: tuple[int, int] | None = None) -> Opened:
    """The raw records of ``src`` and the codec that reads them (named, claimed or detected)."""
    if byte_range is not None:  # a shard of a JSONL file whose format the caller already knows
        assert fmt is not None, "a byte range is read with a known format"
        records = RangeRecords(src, *byte_range)
        return Opened(get_codec(fmt), "jsonl", records, records.close)  # type: ignore[arg-type]
    own = get_codec(fmt) if fmt is not None else next((c for c in FORMATS.values() if c.claims(src)), None)
    if own is not None:
        custom = own.open_input(src)
        if custom is not None:
            layout_, records_, close_ = custom
            return Opened(own, layout_, records_, close_, custom=True)
        fmt = fmt or own.name  # a file its codec claims (e.g. named by a dataset_info.json beside it)
    layout, records, stream = read_raw(src)
    close = stream.close if src != "-" else (lambda: None)
    if fmt is not None:
        return Opened(get_codec(fmt), layout, records, close)
    head: list[Raw] = []
    try:
        head.extend(itertools.islice(records, DETECT_RECORDS))
    except SyntaxErrorInFile as exc:
        if not head:
            close()
            raise unreadable(display_name(src), exc) from None
        records = _raise_later(exc)
    if not head:  # no record at all: nothing to detect, nothing to convert (0 in = 0 written)
        return Opened(FORMATS[EMPTY_INPUT_FORMAT], layout, iter(()), close, empty=True)
    try:
        codec = detect([r.payload for r in head], layout, display_name(src))  # type: ignore[arg-type]
    except BaseException:
        close()  # "cannot tell the format" / "pass --from coco": nothing will read it
        raise
    return Opened(codec, layout, itertools.chain(head, records), close)


def unreadable(name: str, exc: SyntaxErrorInFile) -> VlmdataError:
    """A JSON syntax error before the first record: the whole file is unreadable (exit 2)."""
    return VlmdataError(
        f"{name}:{exc.line}:{exc.column}: JSON syntax error: {exc.message}; "
        "fix the JSON (a trailing comma or a missing bracket is the usual cause)"
    )


def _raise_later(exc: SyntaxErrorInFile) -> Iterator[Raw]:
    raise exc
    yield  # pragma: no cover - makes this a generator


def describe_error(exc: BaseException) -> str:
    """A record error's text for reports: the codec's own words, or the exception's type and text."""
    return str(exc) if isinstance(exc, RecordError) else f"{type(exc).__name__}: {exc}"


def describe_rejection(rejection: Rejection) -> str:
    """A rejection's reason as one sentence (what is wrong; the fix after a semicolon)."""
    return rejection.reason()


def rejection_for(name: str, raw: Raw, exc: BaseException, record_id: Any) -> Rejection:
    if isinstance(exc, RecordError):
        return Rejection(name, raw.line, raw.index, record_id, exc.what, exc.fix)
    if isinstance(exc, orjson.JSONEncodeError):  # the converted record could not be serialised
        return Rejection(
            name,
            raw.line,
            raw.index,
            record_id,
            f"the record cannot be written as JSON ({exc})",
            "integers must fit in 64 bits and text must be valid Unicode (no lone surrogates)",
        )
    return Rejection(
        name,
        raw.line,
        raw.index,
        record_id,
        f"unexpected record shape ({type(exc).__name__}: {exc})",
        "check the record against the format's fields (vlmdata formats)",
    )


def syntax_rejection(exc: SyntaxErrorInFile, name: str) -> Rejection:
    """A JSON syntax error mid-file, as the rejection of the record it breaks (counted as one in)."""
    return Rejection(
        name,
        exc.line,
        exc.index,
        None,
        f"JSON syntax error at line {exc.line} column {exc.column}: {exc.message}; the rest of the file cannot be read",
        "fix the JSON (a trailing comma or a missing bracket is the usual cause)",
    )


def record_id_of(raw: Raw) -> Any:
    payload = raw.payload
    if isinstance(payload, dict):
        return payload.get("id")
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        if isinstance(payload, memoryview):
            payload = payload.tobytes()
        if not isinstance(payload, bytes | bytearray | str):
            return None  # a JSON list element that is not an object
        try:  # the readers take NaN/Infinity (pydantic's JSON parser), orjson does not
            value = pydantic_core.from_json(payload, allow_inf_nan=True)
        except (ValueError, TypeError):  # TypeError: a str holding a lone surrogate
            return None
    return value.get("id") if isinstance(value, dict) else None


class Decoder:
    """Raw records -> Samples for one input file."""

    def __init__(self, codec: Codec, name: str, resolver: PathResolver, options: Options, tally: Tally):
        self.codec = codec
        self.name = name
        self.ctx = ReadContext(resolver, options, tally)

    def decode(self, raw: Raw) -> Sample:
        if type(raw.payload) is TooDeep:
            raise RecordError(
                "the record is nested deeper than the JSON reader's limit (about 1,000 levels)",
                "no trainer reads such a record: flatten it or drop it",
            )
        record = self.codec.load(raw.payload)
        if not isinstance(record, dict):
            raise RecordError("the record is not a JSON object")
        sample = self.codec.decode(record, self.ctx)
        sample.origin = Origin(self.name, raw.line, raw.index, sample.id)
        return sample


@dataclass(slots=True)
class Item:
    """One record read: where it is (``raw``), and its Sample or why it was rejected.

    With ``decode=False`` a readable record has neither; a syntax error always has a rejection
    (and ``raw.payload`` is None: there is no record text past the break)."""

    raw: Raw
    sample: Sample | None = None
    rejection: Rejection | None = None
    syntax: bool = False  # the rejection is a JSON syntax error that ends the file


class RecordSource:
    """The records of one input as Items; ``records_in`` counts every Item yielded.

    ``options`` are the user's reading options; the codec may add what the file's surroundings
    imply (``prepare_input``: a dataset_info.json naming the file). ``allow_outside`` overrides
    ``options.allow_outside_root`` for tools that only look (stats, split). ``fatal_start``: a
    syntax error before the first record raises (exit 2) instead of being one rejection.
    """

    def __init__(
        self,
        src: str,
        fmt: str | None = None,
        options: Options | None = None,
        *,
        allow_outside: bool | None = None,
        byte_range: tuple[int, int] | None = None,
        fatal_start: bool = True,
        tally: Tally | None = None,
        prepared: bool = False,
    ) -> None:
        self.src = src
        self.name = display_name(src)
        self.opened = open_records(src, fmt, byte_range)
        try:
            self.codec = self.opened.codec
            options = options or Options()
            self.options = options if prepared else self.codec.prepare_input(src, options)
            self.resolver = resolver_for(self.codec, src, self.options, allow_outside)
        except BaseException:
            self.opened.close()
            raise
        self.layout = self.opened.layout
        self.empty = self.opened.empty
        self.tally = tally if tally is not None else Tally()
        self.decoder = Decoder(self.codec, self.name, self.resolver, self.options, self.tally)
        self.fatal_start = fatal_start and byte_range is None
        self.records_in = 0

    @property
    def root(self) -> str:
        return self.resolver.root

    def close(self) -> None:
        self.opened.close()

    def __enter__(self) -> RecordSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def items(self, decode: bool = True, limit: int | None = None) -> Iterator[Item]:
        """Every record as an Item, in order; at most ``limit`` records."""
        records = self.opened.records if limit is None else itertools.islice(self.opened.records, limit)
        name = self.name
        try:
            yield from to_items(_counted(records, self), self.decoder if decode else None)
        except SyntaxErrorInFile as exc:
            if exc.index == 0 and self.fatal_start:
                raise unreadable(name, exc) from None
            self.records_in += 1  # the broken record counts: in = out + rejected
            yield Item(Raw(None, exc.line, exc.index), None, syntax_rejection(exc, name), syntax=True)

    __iter__ = items

    @property
    def lines_read(self) -> int:
        """Lines a byte range held, blank ones included (for rebasing its positions; 0 otherwise)."""
        return getattr(self.opened.records, "lines_read", 0)


def _counted(records: Iterator[Raw], source: RecordSource) -> Iterator[Raw]:
    for raw in records:
        source.records_in += 1
        yield raw


def to_items(raws: Iterator[Raw] | list[Raw], decoder: Decoder | None) -> Iterator[Item]:
    """Raw records as Items: decoded to a Sample, or rejected with the reason (``decoder`` None:
    not decoded)."""
    if decoder is None:
        for raw in raws:
            yield Item(raw)
        return
    for raw in raws:
        yield decode_item(raw, decoder)


def decode_item(raw: Raw, decoder: Decoder) -> Item:
    """One record decoded, or rejected with the reason: the one place a record that cannot be read
    becomes a rejection, whatever the exception."""
    try:
        return Item(raw, decoder.decode(raw))
    except DATA_ERRORS as exc:
        return Item(raw, None, rejection_for(decoder.name, raw, exc, record_id_of(raw)))


def batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last one shorter): the unit of work of every command."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
