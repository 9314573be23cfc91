"""Helpers that several rule families share: the raw turns of a record (VD10x-VD12x) and the
place of an InternVL meta or dataset_info.json entry in its file (VD40x-VD43x)."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from typing import Any

from vlmdata.consumers.base import MESSAGE_LISTS
from vlmdata.validators.view import FileView

# --------------------------------------------------------------------------- the raw turns


def raw_messages(raw: dict[str, Any] | None) -> list[Any] | None:
    if type(raw) is not dict:
        return None
    for k in MESSAGE_LISTS:
        value = raw.get(k)
        if type(value) is list:
            return value
    return None


# --------------------------------------------------------------------------- InternVL's tile cap

MAX_TILES = 1024  # beyond this a meta's max_dynamic_patch is not a tile budget (and the grid search is cubic)


def max_dynamic_patch(ctx: Any) -> int:
    """InternVL's tile cap for the file being checked: the meta entry's ``max_dynamic_patch``
    overrides the run's (docs/formats.md#internvl-meta), unless it is no usable tile budget."""
    fv = ctx.file_state.get("file")
    entry = fv.meta_entry if isinstance(fv, FileView) else None
    value = entry.get("max_dynamic_patch") if isinstance(entry, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_TILES:
        return value
    return int(ctx.max_dynamic_patch)


# --------------------------------------------------------------------------- entries of meta files


@lru_cache(maxsize=8)
def _text_of(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def file_text(path: str) -> str:
    try:
        st = os.stat(path)
        return _text_of(path, st.st_mtime_ns, st.st_size)
    except OSError:
        return ""


def entry_line(meta_file: str | None, name: str | None) -> int | None:
    """The line of entry ``name`` in the meta file (where its key is written)."""
    if not meta_file or name is None:
        return None
    text = file_text(meta_file)
    m = re.search(re.escape(json.dumps(name, ensure_ascii=False)) + r"\s*:", text) or re.search(
        re.escape(json.dumps(name)) + r"\s*:", text
    )
    return text.count("\n", 0, m.start()) + 1 if m else None


def at_entry(fv: FileView) -> dict[str, Any]:
    """Hit fields that place a finding on the meta entry: file, line, entry name."""
    return {"file": fv.meta_file, "line": entry_line(fv.meta_file, fv.meta_name), "entry": fv.meta_name}
