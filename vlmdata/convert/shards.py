"""Converting records in pieces: the per-record work, and running it over shards in parallel.

``ConvertWork`` is what ``convert`` does to one record after the engine read it: the write-time
check, encoding, serialising (or a rejection). It runs in three places, always the same code:

* serially, on the engine's Items;
* on **byte-range shards** of a JSONL file (``--workers N``): each worker opens its own range
  with the engine (``RecordSource(byte_range=...)``), converts it and writes a part file; this
  process only plans the ranges (it reads the few bytes up to the next newline at each cut),
  appends the parts to the output in order and rebases the shards' line numbers in the
  rejections. Output bytes are identical to a serial run; memory is bounded by the shard size.
* on **chunks of records** this process reads and ships, where the input cannot be cut into byte
  ranges (stdin, a JSON list, parquet) or the output writer is not a plain file writer.

``convert_range`` is also the task the Ray engine runs (``vlmdata/tools/ray_engine.py``): over a
byte range of a JSONL input, or over a whole input of any other layout (``byte_range=None``).
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.convert.codec import Options, Tally, WriteContext
from vlmdata.convert.engine import (
    DATA_ERRORS,
    Decoder,
    Item,
    RecordSource,
    batches,
    decode_item,
    record_id_of,
    rejection_for,
    to_items,
)
from vlmdata.convert.io import Raw, TooDeep, plan_ranges
from vlmdata.convert.registry import get_codec
from vlmdata.convert.report import Rejection
from vlmdata.media.paths import PathResolver

CHUNK_RECORDS = 2000  # records per chunk shipped to a worker
MIN_SHARD_BYTES = 1 << 20
MAX_SHARD_BYTES = 16 << 20  # bounds a worker's memory (it reads its range whole) and the tail imbalance
SHARDS_PER_WORKER = 8  # enough pieces that a slow one does not leave the other workers idle


@dataclass(frozen=True)
class ConvertJob:
    """Everything a worker needs to convert records of one input (picklable)."""

    src: str  # the input path (byte-range shards open it themselves)
    name: str  # the input's name in messages
    src_format: str
    dst_format: str
    in_root: str
    options: Options
    json_layout: bool = False  # parts are JSON list elements (",\n" between records), not lines


class ConvertWork:
    """The per-record work of a conversion: check, encode, serialise, or reject with the reason."""

    def __init__(self, job: ConvertJob, tally: Tally | None = None) -> None:
        self.job = job
        self.tally = tally if tally is not None else Tally()
        self.writer = get_codec(job.dst_format)
        options = job.options
        out_resolver = PathResolver(job.in_root, explicit_root=job.options.root is not None, allow_outside=True)
        self.wctx = WriteContext(out_resolver, options, self.tally)
        from vlmdata.validators.check import RecordChecker  # the validator imports the convert layer

        media_root = self.writer.media_root(options, job.in_root)
        self.checker = RecordChecker(job.dst_format, job.name, media_root, options, self.tally)
        self._decoder: Decoder | None = None
        self._fast: Any = None
        self._fast_decoder: Decoder | None = None

    @property
    def decoder(self) -> Decoder:
        """A decoder for records shipped as raw chunks (byte-range shards decode in their own source)."""
        if self._decoder is None:
            job = self.job
            resolver = PathResolver(
                job.in_root, explicit_root=job.options.root is not None, allow_outside=job.options.allow_outside_root
            )
            self._decoder = Decoder(get_codec(job.src_format), job.name, resolver, job.options, self.tally)
        return self._decoder

    def fast_for(self, decoder: Decoder) -> Any:
        """The direct converter for this pair and options (``vlmdata/convert/fastpath.py``), or None.
        It declines every record it cannot convert to exactly the bytes of the full path."""
        if self._fast_decoder is not decoder:
            from vlmdata.convert.fastpath import fast_converter

            job = self.job
            self._fast = fast_converter(job.src_format, job.dst_format, decoder.ctx, self.wctx, self.checker)
            self._fast_decoder = decoder
        return self._fast

    def run(
        self, items: Iterable[Item], decoder: Decoder | None = None
    ) -> tuple[list[bytes], list[tuple[Rejection, Raw]]]:
        """Convert ``items``; an item not decoded yet goes to the fast path first, then to
        ``decoder`` (the source's, or this work's own for shipped chunks)."""
        decoder = decoder or self.decoder
        fast = self.fast_for(decoder)
        out: list[bytes] = []
        rejected: list[tuple[Rejection, Raw]] = []
        dumps = orjson.dumps
        codec, wctx = self.writer, self.wctx
        checked = self.checker.encode
        name = self.job.name
        for item in items:
            raw, sample = item.raw, item.sample
            if item.rejection is not None:
                rejected.append((item.rejection, raw))
                continue
            if sample is None:
                if fast is not None and type(raw.payload) is bytes:
                    data = fast(raw.payload)
                    if data is not None:
                        out.append(data)
                        continue
                item = decode_item(raw, decoder)
                if item.rejection is not None:
                    rejected.append((item.rejection, raw))
                    continue
                sample = item.sample
                assert sample is not None
            try:
                out.append(dumps(checked(codec, sample, wctx, raw)))
            except DATA_ERRORS as exc:
                rejected.append((rejection_for(name, raw, exc, record_id_of(raw)), raw))
        return out, rejected


# --- byte-range shards -----------------------------------------------------------------------


def shard_bytes(size: int, workers: int) -> int:
    return max(MIN_SHARD_BYTES, min(MAX_SHARD_BYTES, size // max(1, workers * SHARDS_PER_WORKER) + 1))


def plan_shards(src: str, workers: int) -> list[tuple[int, int]]:
    """Byte ranges of a JSONL file for ``workers`` processes, cut after newlines."""
    return plan_ranges(src, shard_bytes(os.path.getsize(src), workers))


@dataclass
class ShardResult:
    """What converting one shard gave: its part file and counts, rejections with positions local
    to the shard (``rebase`` moves them to the file's), and the shard's tally."""

    part: str | None
    written: int
    lines: int
    records: int
    rejected: list[tuple[Rejection, Raw]] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    def rebase(self, line_base: int, index_base: int) -> None:
        for rejection, raw in self.rejected:
            _move(rejection, line_base, index_base)
            _move(raw, line_base, index_base)
        for note in self.tally.record_notes:
            if note.origin is not None:
                _move(note.origin, line_base, index_base)


def _move(obj: Any, line_base: int, index_base: int) -> None:
    if obj.line is not None:
        obj.line += line_base
    if obj.index is not None:
        obj.index += index_base


def convert_range(
    job: ConvertJob,
    byte_range: tuple[int, int] | None,
    part: str,
    work: ConvertWork | None = None,
    *,
    whole: bool = False,
) -> ShardResult:
    """Convert one byte range of ``job.src`` (None: the whole input, any layout the engine reads)
    into the file ``part`` (records as the output has them).

    ``part`` must exist (the caller created it as a temp file): it is opened without creating it,
    so a task still running after its run gave up cannot leave a file behind. ``whole``: the part
    is a complete output file (a JSON-layout part is a whole JSON list, bytes as RecordWriter
    writes them), not a piece appended to one."""
    work = work or ConvertWork(job)
    work.tally.__init__()  # type: ignore[misc]
    source = RecordSource(job.src, job.src_format, job.options, byte_range=byte_range, prepared=True, tally=work.tally)
    written = 0
    rejected: list[tuple[Rejection, Raw]] = []
    sep = b",\n" if job.json_layout else b"\n"
    bracket = whole and job.json_layout
    try:
        with open(os.open(part, os.O_WRONLY | os.O_TRUNC), "wb", buffering=1 << 20) as f:
            if bracket:
                f.write(b"[\n")
            for batch in batches(source.items(decode=False), CHUNK_RECORDS):
                written += _write_part(f, work.run(batch, source.decoder), rejected, sep, written)
            if bracket:
                f.write(b"\n]\n" if written else b"]\n")  # "[\n]\n" when empty, as RecordWriter
            f.flush()
            if whole:
                os.fsync(f.fileno())
    finally:
        source.close()
    return ShardResult(part, written, source.lines_read, source.records_in, rejected, work.tally)


def _write_part(
    f: Any, done: tuple[list[bytes], list[tuple[Rejection, Raw]]], rejected: list[Any], sep: bytes, before: int
) -> int:
    out, bad = done
    rejected.extend(bad)
    if out:
        if before and sep == b",\n":
            f.write(sep)
        f.write(sep.join(out))
        if sep == b"\n":
            f.write(b"\n")
    return len(out)


# --- worker processes ------------------------------------------------------------------------

_WORK: ConvertWork | None = None


def _init_worker(job: ConvertJob) -> None:
    """Build the worker's state. Ctrl-C and SIGHUP are the parent's to handle (it stops the pool);
    SIGTERM, which the pool itself uses to stop its workers, ends a worker at once."""
    global _WORK
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})  # blocked by start_pool
    _WORK = ConvertWork(job)


def start_pool(workers: int, job: ConvertJob) -> Any:
    """The worker pool, forked with SIGTERM blocked.

    A forked worker inherits this process's Python SIGTERM handler until ``_init_worker`` resets
    it; a SIGTERM arriving in between (the pool's own ``terminate`` on a short run) would trip that
    handler and then be dropped by the reset, and the pool would wait for that worker forever.
    Blocked, the signal stays pending until the worker has its default action back, then ends it.
    """
    import multiprocessing as mp

    ctx = mp.get_context("fork" if hasattr(os, "fork") else "spawn")
    blockable = hasattr(signal, "pthread_sigmask")
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if blockable else None
    try:
        return ctx.Pool(workers, initializer=_init_worker, initargs=(job,))
    finally:
        if blockable:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_range_task(task: tuple[tuple[int, int], str]) -> ShardResult:
    assert _WORK is not None
    byte_range, part = task
    return convert_range(_WORK.job, byte_range, part, _WORK)


Packed = tuple[Any, list[Any], int]  # payloads: bytes records, or the parsed elements pickled


def pack(chunk: list[Raw]) -> Packed:
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


def run_chunk_task(packed: Packed) -> tuple[list[bytes], list[tuple[Rejection, Raw]], Tally, int]:
    """Convert one shipped chunk (decoded by the engine's ``decode_item`` where the fast path declines)."""
    assert _WORK is not None
    payloads, lines, first = packed
    if isinstance(payloads, bytes):
        payloads = pickle.loads(payloads)
    chunk = [Raw(p, line, first + k) for k, (p, line) in enumerate(zip(payloads, lines, strict=True))]
    _WORK.tally.__init__()  # type: ignore[misc]
    out, rejected = _WORK.run(to_items(chunk, None))
    return out, rejected, _WORK.tally, len(chunk)
