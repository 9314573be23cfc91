"""Deterministic train/val split, streamed in two passes (count, then write).

The val indices are ``random.Random(seed).sample(range(n), k)`` with ``k = round(n * val)``
(at least 1 when n > 1, at most n - 1). Every input record is decoded: one that decodes is
written to train or val (as read, byte for byte, unless ``to`` names another format), one that
does not is rejected with its reason, so ``records_in = train + val + rejected``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.convert.codec import Options, WriteContext
from vlmdata.convert.engine import DATA_ERRORS, RecordSource, record_id_of, rejection_for
from vlmdata.convert.io import RecordWriter
from vlmdata.convert.registry import get_codec
from vlmdata.convert.report import Rejection
from vlmdata.errors import VlmdataError
from vlmdata.media.paths import PathResolver
from vlmdata.outputs import check_outputs, transaction


@dataclass
class SplitReport:
    source: str
    input_format: str
    output_format: str
    train_path: str
    val_path: str
    records_in: int = 0
    train: int = 0
    val: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejections)

    @property
    def ok(self) -> bool:
        return not self.rejections

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input_format": self.input_format,
            "output_format": self.output_format,
            "train": self.train_path,
            "val": self.val_path,
            "records_in": self.records_in,
            "train_records": self.train,
            "val_records": self.val,
            "rejected": self.rejected,
            "rejections": [{"where": r.where(), "error": r.error, "fix": r.fix} for r in self.rejections],
        }


def val_count(n: int, val: float) -> int:
    if n <= 1:
        return 0
    return min(max(1, round(n * val)), n - 1)


def check_ratio(val: Any) -> float:
    if isinstance(val, bool) or not isinstance(val, int | float) or not 0 < val < 1:
        raise VlmdataError(f"--val must be a fraction between 0 and 1 (exclusive), e.g. 0.02; got {val!r}")
    return float(val)


def split(
    src: str,
    out_dir: str,
    val: float = 0.02,
    seed: int = 0,
    to: str | None = None,
    root: str | None = None,
    from_format: str | None = None,
) -> SplitReport:
    """Split ``src`` into ``out_dir/train.<ext>`` and ``out_dir/val.<ext>`` (see the module doc)."""
    val = check_ratio(val)
    if src == "-":
        raise VlmdataError("split reads its input twice; give a file, not stdin")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise VlmdataError(f"{out_dir}: not a folder; -o names the folder that gets train and val files")
    options = Options(root=root, allow_outside_root=True)  # a split never refuses a path
    with RecordSource(src, from_format, options) as counting:  # pass 1: count (a syntax error counts as one)
        n = sum(1 for _ in counting.items(decode=False))
        codec, in_layout = counting.codec, counting.layout
    k = val_count(n, val)
    val_idx = set(random.Random(seed).sample(range(n), k))

    target = get_codec(to) if to else codec
    raw_copy = to is None and in_layout in ("json", "jsonl")
    layout = in_layout if in_layout in target.layouts else target.default_layout
    ext = {"jsonl": ".jsonl", "json": ".json", "parquet": ".parquet"}[layout]
    train_path = os.path.join(out_dir, "train" + ext)
    val_path = os.path.join(out_dir, "val" + ext)
    check_outputs([src], [("-o", train_path), ("-o", val_path)])
    report = SplitReport(counting.name, codec.name, target.name, train_path, val_path)
    os.makedirs(out_dir, exist_ok=True)
    with transaction():  # train and val are published together or not at all
        _write_split(src, codec.name, target, layout, raw_copy, options, val_idx, report)
    return report


def _write_split(
    src: str,
    fmt: str,
    target: Any,
    layout: str,
    raw_copy: bool,
    options: Options,
    val_idx: set[int],
    report: SplitReport,
) -> None:
    writers: dict[str, Any] = {}
    try:
        for key, path in (("train", report.train_path), ("val", report.val_path)):
            writers[key] = (None if raw_copy else target.open_output(path, layout, options)) or RecordWriter(
                path, layout
            )
        with RecordSource(src, fmt, options) as source:
            wctx = WriteContext(
                PathResolver(source.root, explicit_root=options.root is not None, allow_outside=True),
                options,
                source.tally,
            )
            for item in source.items():
                if item.rejection is not None:
                    report.rejections.append(item.rejection)
                    continue
                raw, sample = item.raw, item.sample
                try:
                    data = _raw_bytes(raw.payload) if raw_copy else orjson.dumps(target.encode(sample, wctx))
                except DATA_ERRORS as exc:
                    report.rejections.append(rejection_for(source.name, raw, exc, record_id_of(raw)))
                    continue
                writers["val" if raw.index in val_idx else "train"].write_bytes(data)
            report.records_in = source.records_in
        for w in writers.values():
            w.commit()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    report.train, report.val = writers["train"].count, writers["val"].count


def _raw_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload).rstrip(b"\r\n")
    return orjson.dumps(payload)
