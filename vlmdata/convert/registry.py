"""The format registry and input-format detection by confidence vote (Datumaro style)."""

from __future__ import annotations

from typing import Any

import orjson

from vlmdata.convert.codec import Codec, Layout
from vlmdata.convert.internvl import InternVLCodec
from vlmdata.convert.llava import LlavaCodec
from vlmdata.convert.swift import SwiftCodec
from vlmdata.convert.swift_legacy import SwiftLegacyCodec
from vlmdata.errors import VlmdataError

FORMATS: dict[str, Codec] = {c.name: c for c in (SwiftCodec(), SwiftLegacyCodec(), InternVLCodec(), LlavaCodec())}
DETECT_SAMPLE = 50


def get_codec(name: str) -> Codec:
    try:
        return FORMATS[name]
    except KeyError:
        raise VlmdataError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


def detect(payloads: list[Any], layout: Layout, name: str) -> Codec:
    """The codec with the highest summed confidence over the first records."""
    records = []
    for p in payloads[:DETECT_SAMPLE]:
        if isinstance(p, bytes | bytearray):
            try:
                p = orjson.loads(p)
            except orjson.JSONDecodeError:
                continue
        records.append(p)
    if not records:
        raise VlmdataError(f"{name}: no readable record to detect the format from; pass --from")
    scores = {c.name: sum(c.detect(r, layout) for r in records) / len(records) for c in FORMATS.values()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < 0.3:
        raise VlmdataError(
            f"{name}: cannot tell the format (best guess {best} at {scores[best]:.2f}); "
            f"pass --from with one of {', '.join(FORMATS)}"
        )
    return FORMATS[best]
