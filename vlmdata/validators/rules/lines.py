"""VD42x: line hygiene of text data files: a UTF-8 byte-order mark, CRLF line endings, blank lines.

File rules run after a file's records (``FileView.records`` is the real record count).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import FileView

TEXT_LAYOUTS = ("jsonl", "json", "stream")


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
