"""VD40x: the data file's layout for the target: JSONL for InternVL, one JSON list for LLaVA.

File rules run after a file's records (``FileView.records`` is the real record count).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import at_entry
from vlmdata.validators.view import FileView


def _target(fv: FileView, ctx: ValidationContext) -> str:
    """The consumer: a file named by an InternVL meta entry is InternVL's whatever --target says."""
    return "internvl" if fv.meta_entry is not None else ctx.target


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
    where = at_entry(fv) if fv.meta_entry is not None else {}
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
