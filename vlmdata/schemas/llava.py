"""LLaVA-1.5 record shape (docs/formats.md#llava): one JSON list of these."""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, adapter
from vlmdata.schemas.internvl import Turn


@with_config(OPEN)
class LlavaRecord(TypedDict):
    id: NotRequired[Any]
    image: NotRequired[str | None]
    conversations: list[Turn]


LLAVA_RECORD = adapter(LlavaRecord)
