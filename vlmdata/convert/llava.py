"""LLaVA-1.5 JSON list records (docs/formats.md#llava).

One image per record, ``<image>`` in a human turn; LLaVA never inserts a missing tag (the image
would be silently unused), so the reader puts ``<image>\\n`` at the start of the first human turn,
where LLaVA's own data has it, and counts the insertion. Boxes are ``[x1, y1, x2, y2]`` fractions
with two decimals; by default of the image itself, with ``llava_padded`` of the centred padded
square that ``--image_aspect_ratio pad`` trains on (3.5 says the source datasets differ).
"""

from __future__ import annotations

from typing import Any

from vlmdata.convert.codec import Codec, Layout, ReadContext, WriteContext
from vlmdata.convert.grounding import Counters, parse_text
from vlmdata.convert.placeholders import reconcile, slot_roles
from vlmdata.convert.turns import apply_system_policy, read_turns, write_turns
from vlmdata.errors import RecordError
from vlmdata.schemas.llava import LLAVA_RECORD
from vlmdata.schemas.sample import Frame, Part, Sample

SOURCE = "LLaVA-1.5"


class LlavaCodec(Codec):
    name = "llava"
    read_options = frozenset({"llava_padded"})
    write_options = frozenset({"llava_padded", "system"})
    title = "LLaVA-1.5 JSON"
    layouts = ("json",)
    default_layout = "json"
    fields = "id, image (one str), conversations[{from: human|gpt, value}]"
    boxes = "[0.21, 0.92, 0.36, 1.0]: fractions, 2 decimals (of the padded square with --llava-padded)"
    schema = LLAVA_RECORD
    known_keys = frozenset({"id", "image", "conversations"})

    def detect(self, record: Any, layout: Layout) -> float:
        if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
            return 0.0
        if isinstance(record.get("image"), list) or "video" in record or "width" in record:
            return 0.2
        return 0.7 if layout == "json" else 0.5

    def _frame(self, ctx: ReadContext | WriteContext) -> Frame:
        return Frame.NORM1_SQUARE if ctx.options.llava_padded else Frame.NORM1

    def decode(self, record: dict[str, Any], ctx: ReadContext) -> Sample:
        frame = self._frame(ctx)

        def parse(text: str, syntaxes: tuple[str, ...], counters: Counters) -> list[Part]:
            return parse_text(text, syntaxes, counters, llava_frame=frame)

        messages = read_turns(record["conversations"], ("llava",), source=SOURCE, allow_system=False, parse=parse)
        if messages[0].role != "user":  # LLaVA's preprocess drops a leading non-human turn: never trained on
            if any(p.type == "image" for p in messages[0].parts):
                raise RecordError(
                    "conversations[0] is a gpt turn holding the <image> tag: LLaVA drops that turn, and the image "
                    "with it",
                    "start the record with the human turn that asks about the image",
                )
            messages = messages[1:]
            ctx.tally.dropped_turns += 1
            if not messages:
                raise RecordError("the record is one gpt turn, which LLaVA drops", "add the human question")
        image = record.get("image")
        if image is not None and not isinstance(image, str):
            raise RecordError("image must be one path string", "LLaVA-1.5 takes one image per record")
        images = [ctx.media(image)] if image else []
        outside = slot_roles(messages, "image") - {"user"}
        if outside:
            raise RecordError(f"<image> appears in {'/'.join(sorted(outside))} turns", "move it into a human turn")
        ctx.tally.inserted_tags += reconcile(
            messages,
            {"image": len(images)},
            prepend_to=("user",),
            newline=True,
            only_single=True,
            source=SOURCE,
        )
        return Sample(messages, images, [], [], record.get("id"), self.extra_of(record))

    def encode(self, sample: Sample, ctx: WriteContext) -> dict[str, Any]:
        if len(sample.images) > 1:
            raise RecordError(f"{len(sample.images)} images in one record", "LLaVA-1.5 takes one image per record")
        if sample.videos or sample.audios:
            raise RecordError("the record has video or audio", "LLaVA-1.5 takes images only")
        # tag placement and turn order are LLaVA's rules (consumers/llava.py): the write-time check refuses
        # a record LLaVA would misread with their code (VD101, VD112)
        sample = apply_system_policy(sample, ctx, SOURCE)
        out: dict[str, Any] = {"id": _id(sample)}
        if sample.images:
            out["image"] = ctx.out_path(sample.images[0], absolute=False)
        out["conversations"] = write_turns(sample, ctx, "llava", self._frame(ctx), source=SOURCE)
        self.put_extra(out, sample, ctx)
        return out


def _id(sample: Sample) -> Any:
    """LLaVA wants an id on every record; one is made from the origin when the source had none."""
    if sample.id is not None:
        return sample.id
    if sample.origin is not None:
        return f"{sample.origin.file.rsplit('/', 1)[-1]}-{sample.origin.index}"
    raise RecordError("the record has no id", "give every record an id")
