"""Batches for the model: images loaded, samples rendered, labels on assistant tokens only.

Labels come from the chat template's ``{% generation %}`` spans after the processor has expanded
the image placeholders (``return_assistant_tokens_mask``), so no image, system or user token is
ever a label. Each batch is checked: every sample has supervised tokens (a template without a
generation block gives an all-zero mask silently: notes, pitfall P6), no image token is a label,
and for Qwen2.5-VL the grid the processor returned equals the resize the boxes were rendered for.
"""

from __future__ import annotations

import sys
from typing import Any

from vlmdata.convert.report import Rejection
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Sample
from vlmdata.train.data import rejection_of
from vlmdata.train.render import Renderer

IGNORE = -100


def load_image(resolved: str | None, shown: str) -> Any:
    from PIL import Image

    if resolved is None:
        raise RecordError(f"image {shown} has no resolved path", "pass --root")
    try:
        with Image.open(resolved) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise RecordError(f"cannot decode image {shown} ({exc})", "run vlmdata validate; replace the file") from None


class Collator:
    """Renders and encodes a list of ``Sample`` into a model batch with ``labels``."""

    def __init__(self, renderer: Renderer, processor: Any, pad_to: int | None = None) -> None:
        self.padding: dict[str, Any] = {"padding": True}
        if pad_to is not None:  # naive padding to a fixed length (the benchmark's baseline)
            self.padding = {"padding": "max_length", "max_length": pad_to}
        self.renderer = renderer
        self.processor = processor
        self.image_token_id = getattr(processor, "image_token_id", None)
        self.dropped: list[Rejection] = []

    def encode(self, samples: list[Sample]) -> dict[str, Any]:
        import torch

        rendered, kept = [], []
        for sample in samples:
            try:
                images = [load_image(m.resolved, m.path) for m in sample.images]
                rendered.append(self.renderer.render(sample, images))
                kept.append(sample)
            except RecordError as exc:
                # An image that passed the header checks but does not decode: leave the record out of
                # this batch (listed in left_out.jsonl at the end) rather than lose the whole run.
                rejection = rejection_of(sample, exc)
                self.dropped.append(rejection)
                print(f"warning: left out of training: {rejection.message()}", file=sys.stderr, flush=True)
        if not kept:
            where = ", ".join(r.where() for r in self.dropped[-len(samples) :])
            raise RecordError(f"no record of this batch could be loaded ({where})", "run vlmdata validate")
        samples = kept
        batch = self.processor.apply_chat_template(
            [r.conversation for r in rendered],
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs=self.padding,
            return_assistant_tokens_mask=True,
        )
        mask = torch.as_tensor(batch.pop("assistant_masks"))
        labels = batch["input_ids"].clone()
        labels[mask != 1] = IGNORE
        batch["labels"] = labels
        self._check(batch, mask, rendered, samples)
        return dict(batch)

    __call__ = encode

    def _check(self, batch: Any, mask: Any, rendered: list, samples: list[Sample]) -> None:
        for i, sample in enumerate(samples):
            if int(mask[i].sum()) == 0:
                raise RecordError(
                    "no assistant token is supervised",
                    "the chat template needs a {% generation %} block around assistant replies "
                    "(use --chat-template builtin)",
                    where=sample.origin.where() if sample.origin else None,
                )
        if self.image_token_id is not None and bool((batch["labels"] == self.image_token_id).any()):
            raise AssertionError("image tokens in the labels: the template's generation span covers an image")
        grid = batch.get("image_grid_thw")
        resized = [r for item in rendered for r in item.resized]
        if grid is not None and resized and all(r is not None for r in resized):
            patch = self.processor.image_processor.patch_size
            for (_, gh, gw), (w, h) in zip(grid.tolist(), resized, strict=True):
                if (gw * patch, gh * patch) != (w, h):
                    raise AssertionError(
                        f"boxes were rendered for a {w}x{h} resize but the processor made {gw * patch}x{gh * patch}"
                    )
