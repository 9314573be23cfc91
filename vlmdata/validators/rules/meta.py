"""VD41x: InternVL meta files and their entries (root, annotation, repeat_time, length, max_dynamic_patch).

File rules run after a file's records (``FileView.records`` is the real record count). Rules
about an InternVL meta entry report at the meta file, on the entry's line (a ``file`` key in the
hit), because that is where the fix goes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import at_entry
from vlmdata.validators.view import FileView

META_REQUIRED = {
    "root": '"root": "<folder the image paths are relative to>"',
    "annotation": '"annotation": "<path>.jsonl"',
    "data_augment": '"data_augment": false',
    "repeat_time": '"repeat_time": 1',
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
            **at_entry(fv),
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
    yield {**at_entry(fv), "value": value, "why": why, "fix": fix}


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
    yield {**at_entry(fv), "value": value, "kept": kept}


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
    yield {**at_entry(fv), "annotation": annotation, "problem": problem, "relative": relative, "hint": hint}


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
        yield {**at_entry(fv), "length": entry["length"], "path": fv.path, "records": fv.records}


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
    yield {**at_entry(fv), "value": value, "why": why}
