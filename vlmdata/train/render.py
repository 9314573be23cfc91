"""A ``Sample`` as the chat-template conversation the model's processor takes.

Image slots become ``{"type": "image", "image": <PIL image>}`` content items at their place (the
template writes the family's placeholder there); everything between them is text with grounding
rendered in the family's syntax and frame. Boxes are converted with the size of the *loaded*
image, and for Qwen2.5-VL with the size the processor resizes that very image to, computed by the
processor's own ``smart_resize`` and settings: the box frame and the pixels the model sees cannot
disagree (the upstream bug class of docs/frames.md#pixel_resized). The collator re-checks it against the
``image_grid_thw`` the processor returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vlmdata.convert.frames import convert_box
from vlmdata.convert.grounding import render_parts, syntax_name
from vlmdata.convert.grounding_json import render_json_parts
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Boxes, Frame, Part, Points, Sample, map_boxes
from vlmdata.train.families import Family

_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


@dataclass
class Rendered:
    conversation: list[dict[str, Any]]
    resized: list[tuple[int, int] | None] = field(default_factory=list)  # (W', H') per image (Qwen2.5-VL)
    clamped: int = 0


def qwen_resized(image_processor: Any, width: int, height: int) -> tuple[int, int]:
    """(W', H') that a Qwen2-VL-style image processor resizes a ``width`` x ``height`` image to."""
    # The smart_resize of the module that defines this image processor (PIL or torchvision backend).
    smart_resize = getattr(sys.modules[type(image_processor).__module__], "smart_resize", None)
    if smart_resize is None:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
    factor = image_processor.patch_size * image_processor.merge_size
    size = image_processor.size
    h, w = smart_resize(height, width, factor, min_pixels=size["shortest_edge"], max_pixels=size["longest_edge"])
    return w, h


class Renderer:
    """Renders samples for one family / processor / box syntax."""

    def __init__(self, family: Family, processor: Any, box_syntax: str | None = None) -> None:
        self.family = family
        self.processor = processor
        self.box_syntax = box_syntax or family.box_syntax
        self.frame = family.box_frame

    def render(self, sample: Sample, images: list[Any]) -> Rendered:
        """The conversation of ``sample`` given its loaded ``images`` (PIL, in sample order)."""
        if sample.videos:
            raise RecordError(
                "the record has a video", "the training stage takes images only (videos need torchvision)"
            )
        if sample.audios:
            raise RecordError("the record has audio", "none of the supported models takes audio")
        sizes = [img.size for img in images]
        resized: list[tuple[int, int] | None] = [None] * len(images)
        if self.frame is Frame.PIXEL_RESIZED:
            resized = [qwen_resized(self.processor.image_processor, w, h) for w, h in sizes]
        out = Rendered([], resized)
        convert = self._converter(sizes, resized, out)
        for message in sample.messages:
            role = _ROLES.get(message.role)
            if role is None:
                raise RecordError(
                    f"a {message.role} turn", "the training stage takes system, user and assistant turns only"
                )
            out.conversation.append({"role": role, "content": self._content(message.parts, images, convert)})
        if not any(m["role"] == "assistant" for m in out.conversation):
            raise RecordError("no assistant turn", "a training record needs at least one assistant reply to learn")
        return out

    def _content(self, parts: list[Part], images: list[Any], convert: Callable) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        run: list[Part] = []
        for part in parts:
            if part.type == "image":
                self._flush(run, content, convert)
                run = []
                index = part.index  # type: ignore[union-attr]
                if index >= len(images):
                    raise RecordError(f"image slot {index} but the record has {len(images)} images")
                content.append({"type": "image", "image": images[index]})
            else:
                run.append(part)
        self._flush(run, content, convert)
        return content

    def _flush(self, run: list[Part], content: list[dict[str, Any]], convert: Callable) -> None:
        if not run:
            return
        if self.box_syntax == "json":
            text = render_json_parts(run, convert)
        else:
            text = render_parts(run, syntax_name(self.box_syntax), convert)
        if text:
            content.append({"type": "text", "text": text})

    def _converter(
        self, sizes: list[tuple[int, int]], resized: list[tuple[int, int] | None], out: Rendered
    ) -> Callable[[Boxes | Points], Boxes | Points]:
        frame = self.frame

        def convert(part: Boxes | Points) -> Boxes | Points:
            index = part.image_index
            if index >= len(sizes):
                raise RecordError(f"a box refers to image {index} but the record has {len(sizes)} images")

            def size() -> tuple[int, int]:
                return sizes[index]

            def one(box: Box) -> Box:
                converted, clamped = convert_box(box, frame, size, resized[index])
                out.clamped += clamped
                return converted

            return map_boxes(part, one)

        return convert
