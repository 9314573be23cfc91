"""ms-swift record shapes (docs/formats.md#swift, docs/formats.md#swift-legacy, docs/formats.md#swift-objects,
docs/formats.md#swift-legacy-objects).

Current rows hold ``messages``; legacy rows hold ``query``/``response``/``history``. ``objects``
is a dict ``{ref, bbox, bbox_type, image_id}`` (current) or a list of
``{caption, bbox, bbox_type, image}`` (legacy), either of them possibly as a JSON string.
"""

from __future__ import annotations

from typing import Any

from pydantic import with_config
from typing_extensions import NotRequired, TypedDict

from vlmdata.schemas.common import OPEN, MediaPath, adapter

SwiftMessage = TypedDict(
    "SwiftMessage",
    {
        "role": NotRequired[str],
        "from": NotRequired[str],
        "content": NotRequired[str | list[dict[str, Any]] | None],
        "value": NotRequired[str | None],
    },
)
SwiftMessage.__pydantic_config__ = OPEN  # type: ignore[attr-defined]

Objects = str | dict[str, Any] | list[Any]
Media = MediaPath | list[MediaPath | list[str]]


@with_config(OPEN)
class SwiftRecord(TypedDict):
    messages: list[SwiftMessage]
    images: NotRequired[Media | None]
    videos: NotRequired[Media | None]
    audios: NotRequired[Media | None]
    objects: NotRequired[Objects | None]


@with_config(OPEN)
class SwiftLegacyRecord(TypedDict):
    query: NotRequired[str | None]
    response: str
    history: NotRequired[list[list[str]] | str | None]
    system: NotRequired[str | None]
    images: NotRequired[Media | None]
    videos: NotRequired[Media | None]
    audios: NotRequired[Media | None]
    objects: NotRequired[Objects | None]


SWIFT_RECORD = adapter(SwiftRecord)
SWIFT_LEGACY_RECORD = adapter(SwiftLegacyRecord)
