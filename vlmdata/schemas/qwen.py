"""Qwen-VL official fine-tuning record shape (docs/formats.md#qwen, QwenLM ``qwen-vl-finetune``).

LLaVA-like: ``image`` and ``video`` are one path or a list of paths (joined to the dataset's
``data_path``), ``conversations`` is ``[{from, value}]``. A file is a JSON list or JSONL.
"""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, adapter
from vlmdata.schemas.internvl import Turn


@with_config(OPEN)
class QwenRecord(TypedDict):
    id: NotRequired[Any]
    image: NotRequired[str | list[str] | None]
    video: NotRequired[str | list[str] | None]
    conversations: list[Turn]


QWEN_RECORD = adapter(QwenRecord)
