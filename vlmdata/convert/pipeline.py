"""read -> Sample stream -> write, with a report that accounts for every record.

``convert`` is the whole pipeline: the engine (``vlmdata/convert/engine.py``) reads the input,
the per-record work (``vlmdata/convert/shards.py``) converts it, serially or in worker processes
over byte-range shards, and every output of the run is published together or not at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from vlmdata.convert.codec import Codec, Options, Tally, WriteContext, check_applicable
from vlmdata.convert.engine import (
    RecordSource,
    batches,
    display_name,
)
from vlmdata.convert.io import Raw, RecordWriter
from vlmdata.convert.registry import get_codec
from vlmdata.convert.report import ConvertReport, Rejection, safe_value
from vlmdata.convert.shards import (
    CHUNK_RECORDS,
    ConvertJob,
    ConvertWork,
    Packed,
    pack,
    plan_shards,
    run_chunk_task,
    run_range_task,
    start_pool,
)
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import check_outputs, discard, temp_for, transaction
from vlmdata.schemas.sample import Sample


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


def input_paths(src: str) -> list[str]:
    """The files an input names: itself, and the files of a folder of parquet shards."""
    if src != "-" and os.path.isdir(src):
        return [src, *(os.path.join(src, f) for f in sorted(os.listdir(src)))]
    return [src]


def check_run_paths(src: str, target: Codec, dst: str, rejects: str | None, options: Options) -> None:
    """Every output of the run (data, shards, rejects, side files) differs from the input and each other."""
    inputs = input_paths(src)
    outputs = [("-o", path) for path in target.output_files(dst)]
    outputs += [("--rejects", rejects), *target.side_files(options)]
    check_outputs(inputs, outputs)


class RejectsFile:
    """``--rejects``: every rejected record with its reason (nothing when no path is given)."""

    def __init__(self, path: str | None) -> None:
        self.writer = RecordWriter(path, "jsonl") if path else None

    def commit(self) -> None:
        if self.writer:
            self.writer.commit()

    def abort(self) -> None:
        if self.writer:
            self.writer.abort()

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
        rejects_file.commit()
    except BaseException:
        writer.abort()
        rejects_file.abort()
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
    workers: int | None = 1,
    progress: Any = None,
    **option_values: Any,
) -> ConvertReport:
    """Convert ``src`` to format ``to`` at ``dst``; returns the report (see ConvertReport).

    ``workers``: processes (None = the usable cores when the input is big enough to gain)."""
    started = time.perf_counter()
    options = Options(**option_values)
    target = get_codec(to)
    target.check_options(options)
    dst = output_path(src, dst, target)
    check_run_paths(src, target, dst, rejects, options)
    source = RecordSource(src, from_format, options)
    with contextlib.closing(source):
        job, out_layout = prepare_job(source, target, dst, layout)
        options = job.options
        input_format = "empty" if source.empty else source.codec.name
        report = ConvertReport(source.name, display_name(dst, "<stdout>"), input_format, target.name)
        workers = usable_workers(src) if workers is None else workers
        with transaction():  # the output, the rejects and the side files are published together or not at all
            with record_outputs(target, dst, out_layout, options, rejects) as (writer, rejects_file):
                run = Run(job, writer, rejects_file, report, progress)
                if workers > 1 and shardable(source, writer):
                    run.sharded(plan_shards(src, workers), workers)
                elif workers > 1:
                    run.chunked(source, workers)
                else:
                    run.serial(source)
            report.written = writer.count
            report.side_files = target.after_write(dst, report.written, source.root, options)
            report.advice = target.advice(dst, options)
    report.seconds = time.perf_counter() - started
    return report


def prepare_job(source: RecordSource, target: Codec, dst: str, layout: str | None) -> tuple[ConvertJob, str]:
    """The job that converts ``source`` (opened, its format known) to ``target`` at ``dst``, and
    the output layout; refuses what cannot be converted before any record is read."""
    options = source.options
    check_applicable(options, source.codec, target)
    if source.codec.needs_root and options.root is None:
        raise VlmdataError(
            f"{source.name}: {source.codec.title} names images by file name only; pass --root with the image folder"
        )
    out_layout = output_layout(target, dst, layout)
    job = ConvertJob(
        source.src,
        source.name,
        source.codec.name,
        target.name,
        source.root,
        options,
        json_layout=out_layout == "json",
    )
    return job, out_layout


AUTO_WORKERS_BYTES = 32 << 20  # below this a pool costs more than it gains


def usable_workers(src: str) -> int:
    """The processes ``--workers`` defaults to: the usable cores for an input of AUTO_WORKERS_BYTES or more, else 1."""
    try:
        big = src != "-" and os.path.getsize(src) >= AUTO_WORKERS_BYTES
    except OSError:
        big = False
    if not big:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


def cuttable(source: RecordSource) -> bool:
    """Whether ``source`` can be cut into byte ranges: a regular JSONL file read by the JSON reader."""
    return (
        source.layout == "jsonl" and not source.opened.custom and source.src != "-" and os.path.isfile(source.src)
    )


def shardable(source: RecordSource, writer: Any) -> bool:
    """Byte-range shards need a cuttable input and a plain file writer (parts are appended to it)."""
    return cuttable(source) and isinstance(writer, RecordWriter)


class Run:
    """One conversion's loop: records in, converted records to the writer, every rejection
    counted and kept (``--rejects``), in the input's order whatever runs the work."""

    def __init__(
        self, job: ConvertJob | None, writer: Any, rejects_file: RejectsFile, report: ConvertReport, progress: Any
    ) -> None:
        self.job = job
        self.writer = writer
        self.rejects_file = rejects_file
        self.report = report
        self.progress = progress

    def reject(self, rejected: list[tuple[Rejection, Raw]]) -> None:
        for rejection, raw in rejected:
            self.report.add_rejection(rejection)
            self.rejects_file.add(rejection, raw)

    def done(self, records: int) -> None:
        self.report.records_in += records
        if self.progress is not None:
            self.progress(records)

    def serial(self, source: RecordSource) -> None:
        work = ConvertWork(self.job, source.tally)
        self.report.tally = work.tally
        for batch in batches(source.items(decode=False), CHUNK_RECORDS):
            out, rejected = work.run(batch, source.decoder)
            self.writer.write_many(out)
            self.reject(rejected)
            self.done(len(batch))

    def sharded(self, ranges: list[tuple[int, int]], workers: int) -> None:
        """Each worker converts its byte ranges into part files; they are appended here in order."""
        parts = PartFiles(self.writer.path)
        pool = start_pool(workers, self.job)
        try:
            line_base = index_base = 0
            tasks = [(r, parts.new()) for r in ranges]
            for result in pool.imap(run_range_task, tasks):
                result.rebase(line_base, index_base)
                line_base += result.lines
                index_base += result.records
                self.writer.append_part(result.part, result.written)
                parts.remove(result.part)
                self.report.tally.merge(result.tally)
                self.reject(result.rejected)
                self.done(result.records)
            pool.close()  # the workers finish on their own: no SIGTERM on the normal path
            pool.join()
        except BaseException:
            pool.terminate()
            raise
        finally:
            parts.remove_all()

    def chunked(self, source: RecordSource, workers: int) -> None:
        """This process reads and ships chunks of records (inputs that cannot be cut by bytes)."""
        pool = start_pool(workers, self.job)
        try:
            for out, rejected, tally, size in pool.imap(run_chunk_task, self._packed(source)):
                self.writer.write_many(out)
                self.report.tally.merge(tally)
                self.reject(rejected)
                self.done(size)
            pool.close()
            pool.join()
        except BaseException:
            pool.terminate()
            raise

    def _packed(self, source: RecordSource) -> Iterator[Packed]:
        for batch in batches(source.items(decode=False), CHUNK_RECORDS):
            good = [item.raw for item in batch if item.rejection is None]
            if good:
                yield pack(good)
            broken = [(item.rejection, item.raw) for item in batch if item.rejection is not None]  # a syntax error
            if broken:
                self.reject(broken)
                self.done(len(broken))


class PartFiles:
    """The shards' part files: hidden temp files beside the output (stdout: in the temp folder),
    named for this process so a crash leaves nothing a later run does not clean up."""

    def __init__(self, dst: str) -> None:
        self.dst = dst if dst != "-" else os.path.join(tempfile.gettempdir(), "vlmdata-stdout")
        self.live: set[str] = set()

    def new(self) -> str:
        fd, path = temp_for(self.dst, "part")
        os.close(fd)
        self.live.add(path)
        return path

    def remove(self, path: str | None) -> None:
        if path is not None:
            discard(path)
            self.live.discard(path)

    def remove_all(self) -> None:
        for path in list(self.live):
            self.remove(path)


def read(path: str, format: str | None = None, root: str | None = None, **option_values: Any) -> Iterator[Sample]:
    """Yield the Samples of ``path``; a bad record raises RecordError naming file:line (id)."""
    source = RecordSource(path, format, Options(root=root, **option_values), fatal_start=False)
    try:
        for item in source.items():
            if item.rejection is not None:
                rejection = item.rejection
                if item.syntax:
                    raise RecordError(rejection.error, rejection.fix, where=rejection.file)
                raise RecordError(rejection.error, rejection.fix, where=rejection.where())
            assert item.sample is not None
            yield item.sample
    finally:
        source.close()


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
                    writer.write(checker.encode(codec, sample, ctx, Raw(None, None, k)))  # as convert checks
                except RecordError as exc:
                    exc.where = sample.origin.where() if sample.origin else exc.where
                    raise
            writer.commit()
        except BaseException:
            writer.abort()
            raise
    return writer.count
