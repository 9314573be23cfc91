"""VD0: files and records that cannot be read at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import FileView, RecordView


@rule(
    "VD001",
    "unreadable-file",
    "error",
    "file",
    "{error}",
    what="Reports a data file that cannot be read: not JSON, a JSON syntax error, an empty file.",
    why="Every trainer refuses the whole file (LLaVA's json.load, InternVL's json.loads per line, "
    "datasets' JSON builder), usually after the model has been loaded.",
    example='[\n  {"id": "1", "conversations": [...]},\n]   <- trailing comma',
    fix="Fix the JSON at the line and column given.",
)
def unreadable_file(file: FileView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    """Emitted by the engine when reading fails; nothing to check afterwards."""
    return iter(())


@rule(
    "VD002",
    "unreadable-record",
    "error",
    "record",
    "the record cannot be read as {format}: {error}",
    what="Reports a record that its format's reader rejects: invalid JSON on the line, a wrong type, "
    "a missing field, tags that cannot be matched with the media.",
    why="ms-swift deletes such rows with a warning, InternVL retries a random row and only prints, "
    "LLaMA-Factory aborts the run (docs/consumers.md#bad-rows): the trained sample count silently differs "
    "from the file.",
    example='{"messages": [{"role": "user", "content": null}]}',
    fix="Follow the message; `vlmdata formats` lists each format's fields.",
)
def unreadable_record(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if view.decode_error:
        yield {"format": view.format, "error": view.decode_error}
