"""read -> Sample stream -> transforms -> filters -> write, accounting for every record.

The engine behind ``vlmdata transform`` and ``vlmdata filter``. It reads through the engine
(``RecordSource``) and writes with the convert pipeline's writers (``record_outputs``): a record
that cannot be decoded (or a transformed sample that cannot be encoded) is *rejected* with its
reason, like ``convert`` does; a sample that a transform or filter removes on purpose is *dropped*
with the filter's name and score. Both go to ``--rejects`` (JSONL) with the original record.

Accounting (printed and in ``StreamReport.to_dict``)::

    in = written + rejected + dropped + merged - split_added

``merged`` counts records folded into an earlier sample (merge by image) and ``split_added`` the
extra samples made by splitting long conversations; without those two transforms the equation is
``in = written + rejected + dropped`` per filter.

Transforms are plain functions ``(samples, events) -> samples`` (``events`` may be None);
filters are plain functions ``sample -> Drop | None``. Neither reorders turns.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.convert.codec import Options, WriteContext
from vlmdata.convert.engine import DATA_ERRORS, RecordSource, display_name, rejection_for
from vlmdata.convert.io import Raw
from vlmdata.convert.pipeline import (
    RejectsFile,
    check_run_paths,
    dump_entry,
    output_layout,
    output_path,
    record_outputs,
)
from vlmdata.convert.registry import get_codec
from vlmdata.convert.report import ConvertReport
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import check_outputs, transaction
from vlmdata.schemas.sample import Sample

RAW_KEY = "__vlmdata_raw__"  # the input record, carried in Sample.extra while --rejects needs it


@dataclass(slots=True, frozen=True)
class Drop:
    """Why a filter or transform removed a sample: its name, a score and a sentence."""

    filter: str
    score: float
    reason: str
    detail: dict[str, Any] | None = None  # extra keys for the rejects file (e.g. the dedup cluster)


class Events:
    """What transforms tell the engine; the default does nothing (library use)."""

    def drop(self, sample: Sample, drop: Drop) -> None:
        """``sample`` was removed on purpose."""

    def merged(self, sample: Sample, into: Sample) -> None:
        """``sample`` was folded into ``into`` (it is no longer a sample of its own)."""

    def split(self, sample: Sample, parts: int) -> None:
        """``sample`` was split into ``parts`` samples."""


Transform = Callable[[Iterable[Sample], Events | None], Iterable[Sample]]
SampleFilter = Callable[[Sample], Drop | None]


@dataclass
class StreamReport(ConvertReport):
    """A ConvertReport plus what transforms and filters did."""

    dropped: Counter[str] = field(default_factory=Counter)  # filter name -> samples dropped
    merged: int = 0
    split_added: int = 0
    drop_examples: list[str] = field(default_factory=list)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    @property
    def balanced(self) -> bool:
        return self.records_in == self.written + self.rejected + self.dropped_total + self.merged - self.split_added

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["dropped"] = dict(self.dropped)
        out["merged"] = self.merged
        out["split_added"] = self.split_added
        return out


class _EngineEvents(Events):
    def __init__(self, report: StreamReport, rejects: RejectsFile) -> None:
        self.report = report
        self.rejects = rejects

    def drop(self, sample: Sample, drop: Drop) -> None:
        self.report.dropped[drop.filter] += 1
        if len(self.report.drop_examples) < 20:
            where = sample.origin.where() if sample.origin else str(sample.id)
            self.report.drop_examples.append(f"{where}: {drop.filter} (score {drop.score:.3g}): {drop.reason}")
        writer = self.rejects.writer
        if writer is None:
            return
        origin = sample.origin
        entry = {
            "file": origin.file if origin else None,
            "line": origin.line if origin else None,
            "index": origin.index if origin else None,
            "id": sample.id,
            "filter": drop.filter,
            "score": drop.score,
            "error": drop.reason,
            "record": _record_of(sample),
        }
        if drop.detail:
            entry.update({k: v for k, v in drop.detail.items() if k not in entry})
        writer.write_bytes(dump_entry(entry))

    def merged(self, sample: Sample, into: Sample) -> None:
        self.report.merged += 1

    def split(self, sample: Sample, parts: int) -> None:
        self.report.split_added += parts - 1


def _sample_record(sample: Sample) -> dict[str, Any]:
    """The sample as a dict for the rejects file; one too deep to serialise is named, not a crash."""
    try:
        return sample.to_dict()
    except (ValueError, TypeError, RecursionError) as exc:
        return {"id": sample.id, "not_written": f"the sample cannot be shown as JSON ({exc})"}


def _record_of(sample: Sample) -> Any:
    """The original record of ``sample`` (as read), or the sample itself when it was not kept."""
    raw = sample.extra.get(RAW_KEY)
    if raw is None:
        data = _sample_record(sample)
        if isinstance(data.get("extra"), dict):
            data["extra"].pop(RAW_KEY, None)
        return data
    payload = raw.payload
    if isinstance(payload, bytes | bytearray):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload.decode("utf-8", "replace").rstrip("\n")
    return payload


def apply_filters(
    samples: Iterable[Sample], filters: Sequence[SampleFilter], events: Events | None
) -> Iterator[Sample]:
    """Keep the samples no filter objects to; the first objecting filter names the drop."""
    for sample in samples:
        for check in filters:
            drop = check(sample)
            if drop is not None:
                if events is not None:
                    events.drop(sample, drop)
                break
        else:
            yield sample


def run_stream(
    src: str,
    dst: str,
    *,
    transforms: Sequence[Transform] = (),
    filters: Sequence[SampleFilter] = (),
    to: str | None = None,
    from_format: str | None = None,
    rejects: str | None = None,
    layout: str | None = None,
    **option_values: Any,
) -> StreamReport:
    """Read ``src``, run ``transforms`` then ``filters``, write ``dst`` (input format unless ``to``).

    The output and the rejects file are written atomically: on an error nothing replaces them.
    """
    started = time.perf_counter()
    options = Options(**option_values)
    check_outputs([src], [("-o", dst), ("--rejects", rejects), ("--meta", options.meta)])  # before reading
    source = RecordSource(src, from_format, options)
    with source:
        options = source.options
        target = get_codec(to) if to is not None else source.codec
        if to is None and "relative_paths" not in option_values and "relative_paths" in target.write_options:
            options.relative_paths = True  # same format: ms-swift paths stay as relative as they were
        target.check_options(options)
        dst = output_path(src, dst, target)
        check_run_paths(src, target, dst, rejects, options)
        if layout is None and (dst == "-" or not os.path.splitext(dst)[1]) and source.layout in target.layouts:
            layout = source.layout
        out_layout = output_layout(target, dst, layout)
        report = StreamReport(source.name, display_name(dst, "<stdout>"), source.codec.name, target.name)
        report.tally = source.tally
        out_resolver = PathResolver(source.root, explicit_root=options.root is not None, allow_outside=True)
        wctx = WriteContext(out_resolver, options, source.tally)
        with transaction():  # the output, the rejects and the side files are published together or not at all
            with record_outputs(target, dst, out_layout, options, rejects) as (writer, rejects_file):
                _write_stream(source, target, wctx, writer, rejects_file, report, transforms, filters)
            report.written = writer.count
            report.side_files = target.after_write(dst, report.written, source.root, options)
    report.seconds = time.perf_counter() - started
    return report


def _write_stream(
    source: RecordSource,
    target: Any,
    wctx: WriteContext,
    writer: Any,
    rejects_file: RejectsFile,
    report: StreamReport,
    transforms: Sequence[Transform],
    filters: Sequence[SampleFilter],
) -> None:
    """Decode, transform, filter and encode every record into ``writer``, accounting for each one."""
    name = report.source
    events = _EngineEvents(report, rejects_file)
    keep_raw = rejects_file.writer is not None
    stream: Iterable[Sample] = _decoded(source, report, rejects_file, keep_raw)
    for transform in transforms:
        stream = transform(stream, events)
    if filters:
        stream = apply_filters(stream, filters, events)
    encode = target.encode
    for sample in stream:
        raw = sample.extra.pop(RAW_KEY, None)
        try:
            writer.write(encode(sample, wctx))  # a record orjson cannot write fails before any byte is written
        except DATA_ERRORS as exc:
            origin = sample.origin
            where = raw or Raw(_sample_record(sample), origin.line if origin else None, origin.index if origin else 0)
            rejection = rejection_for(origin.file if origin else name, where, exc, sample.id)
            report.add_rejection(rejection)
            rejects_file.add(rejection, where)


def _decoded(source: RecordSource, report: StreamReport, rejects_file: RejectsFile, keep_raw: bool) -> Iterator[Sample]:
    """Samples of the records; bad records are rejected (counted, written to rejects), never raised."""
    for item in source.items():
        report.records_in += 1
        if item.rejection is not None:
            report.add_rejection(item.rejection)
            rejects_file.add(item.rejection, item.raw)
            continue
        sample = item.sample
        assert sample is not None
        if keep_raw:
            sample.extra[RAW_KEY] = item.raw
        yield sample
