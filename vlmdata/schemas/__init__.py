"""Pydantic models: the canonical Sample and the record shape of every format."""

from vlmdata.schemas.sample import (
    SAMPLE_ADAPTER,
    AudioSlot,
    Box,
    Boxes,
    Frame,
    ImageSlot,
    MediaRef,
    Message,
    Origin,
    Part,
    Points,
    Ref,
    Sample,
    Text,
    VideoSlot,
)

__all__ = [
    "SAMPLE_ADAPTER",
    "AudioSlot",
    "Box",
    "Boxes",
    "Frame",
    "ImageSlot",
    "MediaRef",
    "Message",
    "Origin",
    "Part",
    "Points",
    "Ref",
    "Sample",
    "Text",
    "VideoSlot",
]
