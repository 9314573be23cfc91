"""read -> Sample stream -> write, with a report that accounts for every record.

``convert`` is the whole pipeline. With ``workers > 1`` the decode/encode work runs in worker
processes over chunks of records while this process reads and writes in order.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pickle
import signal
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic_core

from vlmdata.convert.codec import Codec, Options, ReadContext, Tally, WriteContext, check_applicable
from vlmdata.convert.io import Raw, RecordWriter, SyntaxErrorInFile, TooDeep, read_raw
from vlmdata.convert.registry import FORMATS, detect, get_codec
from vlmdata.convert.report import ConvertReport, Rejection, safe_value
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import check_outputs, transaction
from vlmdata.schemas.sample import Origin, Sample

CHUNK_RECORDS = 2000
EMPTY_INPUT_FORMAT = "swift"  # the reader named for an input with no records (it reads none of them)
# Bad data surfaces in codecs as these; they become rejections, never tracebacks.
DATA_ERRORS = (RecordError, KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError)


def display_name(path: str, stream: str = "<stdin>") -> str:
    return stream if path == "-" else path


def default_root(codec: Codec, src: str) -> str:
    """Where relative media paths resolve when no root is given (docs/consumers.md#media-paths)."""
    if codec.absolute_paths or src == "-":
        return os.getcwd()  # ms-swift: the working directory
    return os.path.dirname(os.path.abspath(src))  # InternVL/LLaVA: their root folder


def resolver_for(codec: Codec, src: str, options: Options) -> PathResolver:
    root = options.root if options.root is not None else default_root(codec, src)
    return PathResolver(root, explicit_root=options.root is not None, allow_outside=options.allow_outside_root)


@dataclass
class Opened:
    codec: Codec
    layout: str
    records: Iterator[Raw]
    close: Any
    empty: bool = False  # the input holds no record at all (its format could not be detected)


def open_records(src: str, fmt: str | None) -> Opened:
    own = get_codec(fmt) if fmt is not None else next((c for c in FORMATS.values() if c.claims(src)), None)
    if own is not None:
        custom = own.open_input(src)
        if custom is not None:
            layout_, records_, close_ = custom
            return Opened(own, layout_, records_, close_)
        fmt = fmt or own.name  # a file its codec claims (e.g. named by a dataset_info.json beside it)
    layout, records, stream = read_raw(src)
    if fmt is not None:
        codec = get_codec(fmt)
    else:
        head: list[Raw] = []
        try:
            head.extend(itertools.islice(records, 50))
        except SyntaxErrorInFile as exc:
            if not head:
                stream.close()
                raise unreadable(display_name(src), exc) from None
            records = _raise_later(exc)
        if not head:  # no record at all: nothing to detect, nothing to convert (0 in = 0 written)
            close = stream.close if src != "-" else (lambda: None)
            return Opened(FORMATS[EMPTY_INPUT_FORMAT], layout, iter(()), close, empty=True)
        try:
            codec = detect([r.payload for r in head], layout, display_name(src))  # type: ignore[arg-type]
        except BaseException:
            if src != "-":
                stream.close()  # "cannot tell the format" / "pass --from coco": nothing will read it
            raise
        records = itertools.chain(head, records)
    close = stream.close if src != "-" else (lambda: None)
    return Opened(codec, layout, records, close)


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
    """Raw records -> Samples for one input file (shared by read() and convert())."""

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


class _Work:
    """Per-process state for converting chunks (built once per worker)."""

    def __init__(
        self, src_format: str, dst_format: str, name: str, in_root: str, explicit: bool, out_root: str, options: Options
    ) -> None:
        self.tally = Tally()
        self.reader = get_codec(src_format)
        self.writer = get_codec(dst_format)
        in_resolver = PathResolver(in_root, explicit_root=explicit, allow_outside=options.allow_outside_root)
        out_resolver = PathResolver(out_root, explicit_root=explicit, allow_outside=True)
        self.decoder = Decoder(self.reader, name, in_resolver, options, self.tally)
        self.wctx = WriteContext(out_resolver, options, self.tally)
        self.name = name
        from vlmdata.validators.check import RecordChecker  # the validator imports this module

        self.checker = RecordChecker(dst_format, name, self.writer.media_root(options, out_root), options, self.tally)

    def run(self, chunk: list[Raw]) -> tuple[list[bytes], list[tuple[Rejection, Raw]]]:
        out: list[bytes] = []
        rejected: list[tuple[Rejection, Raw]] = []
        dumps = orjson.dumps
        decode = self.decoder.decode
        encode = self.writer.encode
        wctx = self.wctx
        before, after = self.checker.before_write, self.checker.after_write
        for raw in chunk:
            try:
                sample = decode(raw)
                before(sample)
                wctx.written_boxes = boxes = []
                record = encode(sample, wctx)
                after(record, raw, sample, boxes)
                out.append(dumps(record))
            except DATA_ERRORS as exc:
                rejected.append((rejection_for(self.name, raw, exc, record_id_of(raw)), raw))
        return out, rejected


_WORKER: _Work | None = None


def _init_worker(*args: Any) -> None:
    """Build the worker's state. Ctrl-C and SIGHUP are the parent's to handle (it stops the pool);
    SIGTERM, which the pool itself uses to stop its workers, ends a worker at once."""
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by _start_pool
    _WORKER = _Work(*args)


Packed = tuple[Any, list[Any], int]  # payloads: bytes records, or the parsed elements pickled


def _pack(chunk: list[Raw]) -> Packed:
    """A chunk as plain lists for the pipe: pickling 2,000 slotted Raw dataclasses calls their
    Python-level __getstate__/__setstate__ per record (~2 us a record on each side).

    Parsed JSON-list elements are pickled here, in the reading thread: an element nested too deeply
    for pickle then becomes one record's rejection instead of failing the pool."""
    payloads: Any = [r.payload for r in chunk]
    if any(not isinstance(p, bytes) for p in payloads):
        try:
            payloads = pickle.dumps(payloads, protocol=pickle.HIGHEST_PROTOCOL)
        except RecursionError:
            payloads = pickle.dumps([_picklable(p) for p in payloads], protocol=pickle.HIGHEST_PROTOCOL)
    return payloads, [r.line for r in chunk], chunk[0].index


def _picklable(payload: Any) -> Any:
    try:
        pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    except RecursionError:
        return TooDeep(b"<a value nested too deeply to hand to a worker process>")
    return payload


def _run_chunk(packed: Packed) -> tuple[list[bytes], list[tuple[Rejection, Raw]], Tally, int]:
    assert _WORKER is not None
    payloads, lines, first = packed
    if isinstance(payloads, bytes):
        payloads = pickle.loads(payloads)
    chunk = [Raw(p, line, first + k) for k, (p, line) in enumerate(zip(payloads, lines, strict=True))]
    _WORKER.tally.__init__()  # type: ignore[misc]
    out, rejected = _WORKER.run(chunk)
    return out, rejected, _WORKER.tally, len(chunk)


def _chunks(records: Iterator[Raw], size: int) -> Iterator[list[Raw]]:
    while True:
        chunk = list(itertools.islice(records, size))
        if not chunk:
            return
        yield chunk


def output_layout(codec: Codec, dst: str, layout: str | None) -> str:
    if layout is None:
        if dst.endswith(".json") and "json" in codec.layouts:
            layout = "json"
        elif dst.endswith(".jsonl") and "jsonl" in codec.layouts:
            layout = "jsonl"
        elif dst.endswith(".parquet") and "parquet" in codec.layouts:
            layout = "parquet"
        else:
            layout = codec.default_layout
    if layout not in codec.layouts:
        raise VlmdataError(f"{codec.title} files are {' or '.join(codec.layouts).upper()}, not {layout.upper()}")
    suffix = "." + layout
    if dst != "-" and os.path.splitext(dst)[1] in (".json", ".jsonl", ".parquet") and not dst.endswith(suffix):
        hint = " (InternVL asserts that annotations end in .jsonl)" if codec.name == "internvl" else ""
        raise VlmdataError(f"{dst}: {codec.title} output must be a {suffix} file{hint}")
    return layout


def output_path(src: str, dst: str, codec: Codec) -> str:
    """``-o out/`` names the file after the input, with the target format's extension."""
    if dst == "-" or not (dst.endswith(os.sep) or os.path.isdir(dst)):
        return dst
    stem = "data" if src == "-" else os.path.splitext(os.path.basename(src))[0]
    return os.path.join(dst, stem + (".json" if codec.default_layout == "json" else ".jsonl"))


def check_run_paths(src: str, target: Codec, dst: str, rejects: str | None, options: Options) -> None:
    """Every output of the run (data, shards, rejects, side files) differs from the input and each other."""
    inputs = [src]
    if src != "-" and os.path.isdir(src):
        inputs += [os.path.join(src, f) for f in sorted(os.listdir(src))]  # a folder of parquet shards
    outputs = [("-o", path) for path in target.output_files(dst)]
    outputs += [("--rejects", rejects), *target.side_files(options)]
    check_outputs(inputs, outputs)


class RejectsFile:
    def __init__(self, path: str | None) -> None:
        self.writer = RecordWriter(path, "jsonl") if path else None

    def add(self, rejection: Rejection, raw: Raw) -> None:
        if self.writer is None:
            return
        payload = raw.payload
        if isinstance(payload, bytes | bytearray):
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError:
                payload = payload.decode("utf-8", "replace").rstrip("\n")
        entry = {
            "file": rejection.file,
            "line": rejection.line,
            "index": rejection.index,
            "id": rejection.id,
            "error": rejection.error,
            "fix": rejection.fix,
            "record": payload,
        }
        self.writer.write_bytes(dump_entry(entry))


@contextlib.contextmanager
def record_outputs(
    target: Codec, dst: str, layout: str, options: Options, rejects: str | None
) -> Iterator[tuple[Any, RejectsFile]]:
    """The output writer and the rejects file of one run: committed (staged, inside a transaction)
    when the block ends normally, both aborted (temp files removed) when it raises."""
    writer = target.open_output(dst, layout, options) or RecordWriter(dst, layout)
    try:
        rejects_file = RejectsFile(rejects)
    except BaseException:
        writer.abort()
        raise
    try:
        yield writer, rejects_file
        writer.commit()
        if rejects_file.writer:
            rejects_file.writer.commit()
    except BaseException:
        writer.abort()
        if rejects_file.writer:
            rejects_file.writer.abort()
        raise


def dump_entry(entry: dict[str, Any]) -> bytes:
    """A rejects-file line; a record orjson cannot write (an integer over 64 bits, a lone surrogate,
    nesting past its limit) is kept as JSON text with escapes, or at worst described, never a crash."""
    try:
        return orjson.dumps(entry, default=_bytes_note)
    except (TypeError, ValueError):
        pass
    record = entry["record"]
    try:
        text = json.dumps(record, ensure_ascii=True, allow_nan=False, default=_bytes_note)
    except (TypeError, ValueError, RecursionError):
        text = f"<a {type(record).__name__} that JSON cannot hold>"
    safe = {k: safe_value(v) for k, v in entry.items() if k != "record"}
    return orjson.dumps({**safe, "record_text": text})


def _bytes_note(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def convert(
    src: str,
    dst: str,
    to: str,
    *,
    from_format: str | None = None,
    rejects: str | None = None,
    layout: str | None = None,
    workers: int = 1,
    progress: Any = None,
    **option_values: Any,
) -> ConvertReport:
    """Convert ``src`` to format ``to`` at ``dst``; returns the report (see ConvertReport)."""
    started = time.perf_counter()
    options = Options(**option_values)
    target = get_codec(to)
    target.check_options(options)
    dst = output_path(src, dst, target)
    check_run_paths(src, target, dst, rejects, options)
    opened = open_records(src, from_format)
    try:
        options = opened.codec.prepare_input(src, options)
        check_applicable(options, opened.codec, target)
        if opened.codec.needs_root and options.root is None:
            raise VlmdataError(
                f"{display_name(src)}: {opened.codec.title} names images by file name only; "
                "pass --root with the image folder"
            )
        out_layout = output_layout(target, dst, layout)
        name = display_name(src)
        in_root = options.root if options.root is not None else default_root(opened.codec, src)
        input_format = "empty" if opened.empty else opened.codec.name
        report = ConvertReport(name, display_name(dst, "<stdout>"), input_format, target.name)
        args = (opened.codec.name, target.name, name, in_root, options.root is not None, in_root, options)
        with transaction():  # the output, the rejects and the side files are published together or not at all
            with record_outputs(target, dst, out_layout, options, rejects) as (writer, rejects_file):
                if workers > 1:
                    _convert_parallel(opened.records, writer, rejects_file, report, args, workers, progress)
                else:
                    _convert_serial(opened.records, writer, rejects_file, report, args, progress)
            report.written = writer.count
            report.side_files = target.after_write(dst, report.written, in_root, options)
            report.advice = target.advice(dst, options)
    finally:
        opened.close()
    report.seconds = time.perf_counter() - started
    return report


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


def _account_syntax_error(exc: SyntaxErrorInFile, report: ConvertReport, name: str) -> None:
    report.records_in += 1
    report.add_rejection(syntax_rejection(exc, name))


def _convert_serial(
    records: Iterator[Raw],
    writer: RecordWriter,
    rejects_file: RejectsFile,
    report: ConvertReport,
    args: tuple[Any, ...],
    progress: Any,
) -> None:
    work = _Work(*args)
    report.tally = work.tally
    for chunk in _chunks_safe(records, report, args[2]):
        out, rejected = work.run(chunk)
        writer.write_many(out)
        _account(chunk, out, rejected, report, rejects_file, progress)


def _convert_parallel(
    records: Iterator[Raw],
    writer: RecordWriter,
    rejects_file: RejectsFile,
    report: ConvertReport,
    args: tuple[Any, ...],
    workers: int,
    progress: Any,
) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
    pool = _start_pool(ctx, workers, args)
    try:
        chunks = map(_pack, _chunks_safe(records, report, args[2]))
        for out, rejected, tally, size in pool.imap(_run_chunk, chunks):
            writer.write_many(out)
            report.tally.merge(tally)
            report.records_in += size
            for rejection, raw in rejected:
                report.add_rejection(rejection)
                rejects_file.add(rejection, raw)
            if progress is not None:
                progress(size)
        pool.close()  # the workers finish on their own: no SIGTERM on the normal path
        pool.join()
    except BaseException:
        pool.terminate()
        raise


def _start_pool(ctx: Any, workers: int, args: tuple[Any, ...]) -> Any:
    """The worker pool, forked with SIGTERM blocked.

    A forked worker inherits this process's Python SIGTERM handler until ``_init_worker`` resets
    it; a SIGTERM arriving in between (the pool's own ``terminate`` on a short run) would trip that
    handler and then be dropped by the reset, and the pool would wait for that worker forever.
    Blocked, the signal stays pending until the worker has its default action back, then ends it.
    """
    blockable = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if blockable else None
    try:
        return ctx.Pool(workers, initializer=_init_worker, initargs=args)
    finally:
        if blockable:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _chunks_safe(records: Iterator[Raw], report: ConvertReport, name: str) -> Iterator[list[Raw]]:
    """Chunks of records; a JSON syntax error ends the stream with one counted rejection."""
    chunk: list[Raw] = []
    try:
        for raw in records:
            chunk.append(raw)
            if len(chunk) >= CHUNK_RECORDS:
                yield chunk
                chunk = []
    except SyntaxErrorInFile as exc:
        if exc.index == 0:
            raise unreadable(name, exc) from None
        if chunk:
            yield chunk
            chunk = []
        _account_syntax_error(exc, report, name)
    if chunk:
        yield chunk


def _account(
    chunk: list[Raw],
    out: list[bytes],
    rejected: list[tuple[Rejection, Raw]],
    report: ConvertReport,
    rejects_file: RejectsFile,
    progress: Any,
) -> None:
    report.records_in += len(chunk)
    for rejection, raw in rejected:
        report.add_rejection(rejection)
        rejects_file.add(rejection, raw)
    if progress is not None:
        progress(len(chunk))


def read(path: str, format: str | None = None, root: str | None = None, **option_values: Any) -> Iterator[Sample]:
    """Yield the Samples of ``path``; a bad record raises RecordError naming file:line (id)."""
    options = Options(root=root, **option_values)
    opened = open_records(path, format)
    name = display_name(path)
    options = opened.codec.prepare_input(path, options)
    decoder = Decoder(opened.codec, name, resolver_for(opened.codec, path, options), options, Tally())
    try:
        for raw in opened.records:
            try:
                yield decoder.decode(raw)
            except DATA_ERRORS as exc:
                rejection = rejection_for(name, raw, exc, record_id_of(raw))
                raise RecordError(rejection.error, rejection.fix, where=rejection.where()) from None
    except SyntaxErrorInFile as exc:
        raise RecordError(
            f"JSON syntax error at line {exc.line} column {exc.column}: {exc.message}",
            "fix the JSON",
            where=name,
        ) from None
    finally:
        opened.close()


def write(
    samples: Iterable[Sample],
    path: str,
    format: str,
    *,
    root: str | None = None,
    layout: str | None = None,
    **option_values: Any,
) -> int:
    """Write ``samples`` to ``path`` in ``format`` atomically; returns how many were written.

    A sample that the format cannot hold, or that its consumer would read otherwise (the record
    rules of ``validate``, as in ``convert``), raises RecordError and nothing is written.
    """
    options = Options(root=root, **option_values)
    codec = get_codec(format)
    out_layout = output_layout(codec, path, layout)
    resolver = PathResolver(root or os.getcwd(), explicit_root=root is not None, allow_outside=True)
    ctx = WriteContext(resolver, options, Tally())
    from vlmdata.validators.check import RecordChecker  # the validator imports this module

    checker = RecordChecker(format, display_name(path), codec.media_root(options, resolver.root), options, ctx.tally)
    with transaction():
        writer = codec.open_output(path, out_layout, options) or RecordWriter(path, out_layout)
        try:
            for k, sample in enumerate(samples):
                try:
                    checker.before_write(sample)
                    ctx.written_boxes = boxes = []
                    record = codec.encode(sample, ctx)
                    checker.after_write(record, Raw(record, None, k), sample, boxes)  # as convert: the consumer's rules
                    writer.write(record)
                except RecordError as exc:
                    exc.where = sample.origin.where() if sample.origin else exc.where
                    raise
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return writer.count
