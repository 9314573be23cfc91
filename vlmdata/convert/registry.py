"""The format registry and input-format detection by confidence vote (Datumaro style)."""

from __future__ import annotations

import importlib
from typing import Any

import orjson

from vlmdata.convert.codec import Codec, Layout
from vlmdata.errors import VlmdataError

# One line per format: "module:CodecClass". Order = the order of `vlmdata formats`.
CODEC_PATHS = [
    "vlmdata.convert.swift:SwiftCodec",
    "vlmdata.convert.swift_legacy:SwiftLegacyCodec",
    "vlmdata.convert.internvl:InternVLCodec",
    "vlmdata.convert.llava:LlavaCodec",
    "vlmdata.convert.sharegpt:SharegptCodec",
    "vlmdata.convert.qwen:QwenCodec",
    "vlmdata.convert.hf:HfCodec",
    "vlmdata.convert.coco:CocoCodec",
]
DETECT_SAMPLE = 50


def _load(paths: list[str]) -> dict[str, Codec]:
    codecs: dict[str, Codec] = {}
    for path in paths:
        module, cls = path.split(":")
        codec = getattr(importlib.import_module(module), cls)()
        codecs[codec.name] = codec
    return codecs


FORMATS: dict[str, Codec] = _load(CODEC_PATHS)


def get_codec(name: str) -> Codec:
    try:
        return FORMATS[name]
    except KeyError:
        raise VlmdataError(f"unknown format {name!r}; known formats: {', '.join(FORMATS)}") from None


def detect(payloads: list[Any], layout: Layout, name: str) -> Codec:
    """The codec with the highest mean confidence over the first records."""
    records = []
    first_error = None
    for p in payloads[:DETECT_SAMPLE]:
        if isinstance(p, bytes | bytearray):
            try:
                p = orjson.loads(p)
            except orjson.JSONDecodeError as exc:
                first_error = first_error or str(exc)
                continue
        records.append(p)
    if not records:
        why = f" (first record: invalid JSON: {first_error})" if first_error else ""
        raise VlmdataError(f"{name}: no readable record to detect the format from{why}; fix the file or pass --from")
    scores = {c.name: sum(c.detect(r, layout) for r in records) / len(records) for c in FORMATS.values()}
    best = max(scores, key=lambda k: scores[k])
    if scores[best] < 0.3:
        raise VlmdataError(
            f"{name}: cannot tell the format (best guess {best} at {scores[best]:.2f}); "
            f"pass --from with one of {', '.join(FORMATS)}"
        )
    return FORMATS[best]
