"""Canonical samples shared by the format round-trip tests (matrix, sharegpt)."""

from __future__ import annotations

from pathlib import Path

from vlmdata.convert.frames import convert_box
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Ref, Sample, Text

SIZE = (200, 100)


def canonical(root: Path) -> list[Sample]:
    def media() -> list[MediaRef]:
        return [MediaRef("a.png", str(root / "a.png"))]

    return [
        Sample(
            [Message("user", [ImageSlot(0), Text("\nDescribe the picture.")]), Message("assistant", [Text("Purple.")])],
            media(),
            id="s0",
        ),
        Sample(
            [
                Message("user", [ImageSlot(0), Text("\nWhere is "), Ref("the cat"), Text("?")]),
                Message("assistant", [Ref("the cat"), Boxes((Box(20, 10, 100, 60, Frame.PIXEL),))]),
            ],
            media(),
            id="s1",
        ),
        Sample(
            [
                Message("user", [ImageSlot(0), Text("\nFirst question")]),
                Message("assistant", [Text("First answer")]),
                Message("user", [Text("Second question")]),
                Message("assistant", [Text("Second answer")]),
            ],
            media(),
            id="s2",
        ),
    ]


def summary(sample: Sample) -> list[tuple[str, str, list[tuple[float, ...]]]]:
    """Role, visible text and pixel boxes per message: what every format must keep."""
    out = []
    for m in sample.messages:
        text, boxes = [], []
        for p in m.parts:
            if isinstance(p, Text | Ref):
                text.append(p.text)
            elif isinstance(p, ImageSlot):
                text.append("<image>")
            elif isinstance(p, Boxes):
                for b in p.boxes:
                    boxes.append(convert_box(b, Frame.PIXEL, lambda: SIZE)[0].coords())
        out.append((m.role, "".join(text).rstrip(), boxes))  # LLaVA puts a space between a ref and its box
    return out
