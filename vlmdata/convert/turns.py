"""``conversations: [{from, value}]`` turns shared by InternVL and LLaVA (docs/formats.md#internvl,
docs/formats.md#llava)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vlmdata.consumers.base import FROM_ROLES, TO_FROM
from vlmdata.convert.codec import WriteContext
from vlmdata.convert.frames import part_in_frame
from vlmdata.convert.grounding import Counters, parse_text, render_parts
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Boxes, Frame, Message, Part, Points, Sample, Text

TURN_KEYS = ("from", "value")


def read_turns(
    turns: list[dict[str, Any]],
    syntaxes: tuple[str, ...],
    *,
    source: str,
    allow_system: bool,
    parse: Callable[[str, tuple[str, ...], Counters], list[Part]] = parse_text,
) -> list[Message]:
    if not turns:
        raise RecordError("conversations is empty", "give the record at least one human/gpt pair")
    counters = Counters()
    messages: list[Message] = []
    for k, turn in enumerate(turns):
        who = turn["from"]
        role = FROM_ROLES.get(who)
        if role is None or (role == "system" and (not allow_system or k != 0)):
            where = "" if role is None else " (a system turn is only allowed first)"
            allowed = "human, gpt" + (", and a leading system" if allow_system else "")
            raise RecordError(f"conversations[{k}] has from={who!r}{where}", f"{source} accepts {allowed}")
        if "value" not in turn:
            keys = sorted(set(turn) - {"from"})
            raise RecordError(
                f"conversations[{k}] (from={who}) has no 'value' key (it has {keys})",
                "rename the text key to 'value'",
            )
        value = turn["value"]
        if not isinstance(value, str):
            raise RecordError(
                f"conversations[{k}].value must be a string, got {type(value).__name__}",
                "fix the turn",
            )
        extra = {key: v for key, v in turn.items() if key not in TURN_KEYS}
        messages.append(Message(role, parse(value, syntaxes, counters), extra))  # type: ignore[arg-type]
    return messages


def write_turns(sample: Sample, ctx: WriteContext, syntax: str, frame: Frame, *, source: str) -> list[dict[str, Any]]:
    """Render every message as a {from, value} turn, boxes moved into ``frame``."""

    def convert(part: Boxes | Points) -> Boxes | Points:
        return part_in_frame(part, sample, ctx, frame)

    out = []
    for k, m in enumerate(sample.messages):
        who = TO_FROM.get(m.role)
        if who is None:
            raise RecordError(
                f"message {k} has role {m.role!r}, which {source} cannot hold",
                "remove tool turns before converting",
            )
        turn: dict[str, Any] = {"from": who, "value": render_parts(m.parts, syntax, convert)}
        if m.extra:
            turn.update(m.extra)
        out.append(turn)
    return out


def apply_system_policy(sample: Sample, ctx: WriteContext, source: str) -> Sample:
    """Targets without a per-sample system prompt: reject, drop or merge, never silently."""
    if not sample.messages or sample.messages[0].role != "system":
        return sample
    policy = ctx.options.system
    if policy == "reject":
        raise RecordError(
            f"the record has a system prompt and {source} has no place for one",
            "pass --system drop or --system merge (into the first user turn)",
        )
    system, rest = sample.messages[0], sample.messages[1:]
    if policy == "drop":
        ctx.tally.systems_dropped += 1
    else:
        ctx.tally.systems_merged += 1
        for m in rest:
            if m.role == "user":
                m.parts[:0] = [*system.parts, Text("\n\n")]
                break
    return Sample(rest, sample.images, sample.videos, sample.audios, sample.id, sample.extra, sample.origin)
