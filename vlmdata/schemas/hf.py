"""Hugging Face / TRL conversational rows (docs/formats.md#hf).

A row holds ``messages`` (language modelling) or ``prompt`` + ``completion`` (both conversational
lists, or plain strings), each message ``{role, content}`` with ``content`` a string or a list of
typed blocks (``{"type": "text", "text": ..}``, ``{"type": "image"}`` placeholders, blocks with an
inline ``image``/``path``/``url`` payload, OpenAI ``image_url``, LLaMA-Factory v1 ``value``).
Media come as ``images`` (a list) or ``image`` (one), each a path or an HF ``Image`` struct
``{bytes, path}``; ``videos``/``video`` likewise. Parquet rows read through pyarrow have the same
shape, with every block carrying every block key (``None`` where unused).

Blocks stay plain dicts here: their checks need the block type, so the codec makes them.
"""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, MediaPath, adapter

HF_ROLES = ("system", "user", "assistant", "tool")
IMAGE_STRUCT_KEYS = ("bytes", "path")  # datasets.Image storage (datasets/features/image.py)


@with_config(OPEN)
class HfMessage(TypedDict):
    role: str
    content: NotRequired[str | list[dict[str, Any]] | None]


Conversation = list[HfMessage] | str
Media = MediaPath | list[MediaPath] | None


@with_config(OPEN)
class HfRecord(TypedDict):
    messages: NotRequired[list[HfMessage]]
    prompt: NotRequired[Conversation]
    completion: NotRequired[Conversation]
    images: NotRequired[Media]
    image: NotRequired[Media]
    videos: NotRequired[Media]
    video: NotRequired[Media]


HF_RECORD = adapter(HfRecord)
