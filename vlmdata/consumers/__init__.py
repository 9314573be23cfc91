"""The data consumers (trainers' loaders) vlmdata writes for and validates against.

One module per consumer; this registry is the only other place that names them. A format's
default consumer is one line of ``CONSUMER_OF_FORMAT``.

Adding a consumer: write ``vlmdata/consumers/<name>.py`` with its ``CONSUMER = Consumer(...)`` (the
facts, each with its upstream source) and add it to ``CONSUMER_PATHS`` (and, when a format is read
by it by default, to ``CONSUMER_OF_FORMAT``). ``validate --target <name>`` and the write-time check
of ``convert`` then use it; the rules ask ``get_consumer(target)``.
"""

from __future__ import annotations

import importlib

from vlmdata.consumers.base import Consumer

# --target name -> "module:attribute" (order = the order of `vlmdata validate --target`).
CONSUMER_PATHS = {
    "internvl": "vlmdata.consumers.internvl:CONSUMER",
    "llamafactory": "vlmdata.consumers.llamafactory:CONSUMER",
    "swift": "vlmdata.consumers.swift:CONSUMER",
    "llava": "vlmdata.consumers.llava:CONSUMER",
    "qwen": "vlmdata.consumers.qwen:CONSUMER",
    "hf": "vlmdata.consumers.trl:CONSUMER",
}
# The consumer that reads each format's files by default.
CONSUMER_OF_FORMAT = {
    "internvl": "internvl",
    "llava": "llava",
    "swift": "swift",
    "swift-legacy": "swift",
    "sharegpt": "llamafactory",
    "qwen": "qwen",
    "hf": "hf",
}
TARGETS = tuple(CONSUMER_PATHS)
_LOADED: dict[str, Consumer] = {}


def get_consumer(name: str) -> Consumer:
    consumer = _LOADED.get(name)
    if consumer is None:
        module, attr = CONSUMER_PATHS[name].split(":")
        consumer = _LOADED[name] = getattr(importlib.import_module(module), attr)
    return consumer


def target_of(fmt: str) -> str:
    """The consumer that reads format ``fmt`` by default; an input-only format (COCO) gets ms-swift's."""
    return CONSUMER_OF_FORMAT.get(fmt, "swift")


__all__ = ["CONSUMER_OF_FORMAT", "TARGETS", "Consumer", "consumer_of", "get_consumer"]
