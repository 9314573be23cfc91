"""InternVL meta JSON entries (docs/formats.md#internvl-meta), written atomically, other entries kept."""

from __future__ import annotations

import json
import os
from typing import Any

import orjson

from vlmdata.errors import VlmdataError
from vlmdata.outputs import atomic_write_bytes


def load_meta(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)  # small file; the stdlib names the line and column of an error
    except json.JSONDecodeError as exc:
        raise VlmdataError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "fix it (a trailing comma after the last entry is the usual cause) or write another meta file"
        ) from None
    except RecursionError:
        raise VlmdataError(f"{path}: the JSON is nested too deeply to read; fix the meta file") from None
    if not isinstance(data, dict):
        raise VlmdataError(f"{path}: an InternVL meta file is a JSON object of named entries")
    return data


def update_internvl_meta(
    path: str,
    name: str,
    *,
    root: str,
    annotation: str,
    length: int,
    data_augment: bool = False,
    repeat_time: int | float = 1,
) -> dict[str, Any]:
    """Add or update entry ``name``; settings a user chose for an existing entry are kept.

    ``root`` and ``annotation`` are written absolute: InternVL resolves both against the
    working directory of the training run, not the meta file.
    """
    meta = load_meta(path)
    entry = dict(meta.get(name) or {})
    entry["root"] = os.path.abspath(root)
    entry["annotation"] = os.path.abspath(annotation)
    entry.setdefault("data_augment", data_augment)
    entry.setdefault("repeat_time", repeat_time)
    entry["length"] = length
    meta[name] = entry
    atomic_write_bytes(path, orjson.dumps(meta, option=orjson.OPT_INDENT_2) + b"\n")
    return meta
