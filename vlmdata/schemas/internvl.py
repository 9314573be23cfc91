"""InternVL chat fine-tuning record and meta entry shapes (docs/formats.md#internvl-meta, docs/formats.md#internvl)."""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, adapter

Turn = TypedDict("Turn", {"from": str, "value": NotRequired[Any]})
Turn.__pydantic_config__ = OPEN  # type: ignore[attr-defined]


@with_config(OPEN)
class InternVLRecord(TypedDict):
    id: NotRequired[Any]
    image: NotRequired[str | list[str] | None]
    video: NotRequired[str | None]
    width: NotRequired[int | None]
    height: NotRequired[int | None]
    width_list: NotRequired[list[int] | None]
    height_list: NotRequired[list[int] | None]
    conversations: list[Turn]


@with_config(OPEN)
class InternVLMetaEntry(TypedDict):
    root: str
    annotation: str
    data_augment: bool
    repeat_time: int | float
    length: NotRequired[int]
    max_dynamic_patch: NotRequired[int]


INTERNVL_RECORD = adapter(InternVLRecord)
INTERNVL_META = adapter(dict[str, InternVLMetaEntry])
