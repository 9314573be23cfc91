"""Media slots in conversations: counting, numbering, and the consumers' insertion rules.

Every consumer replaces media tags left to right with the media list in order (docs/consumers.md#media-tags), so a
slot's index is its order of appearance; ``renumber`` restores that after an insertion. Where a source format relied on
auto-insertion, the reader inserts the slot exactly where that format's consumer would have put it, and counts the
insertion in the report.
"""

from __future__ import annotations

import re

from vlmdata.errors import RecordError
from vlmdata.schemas.sample import AudioSlot, ImageSlot, Message, Part, Text, VideoSlot

SLOT_TYPES: dict[str, type[ImageSlot] | type[VideoSlot] | type[AudioSlot]] = {
    "image": ImageSlot,
    "video": VideoSlot,
    "audio": AudioSlot,
}


def count_slots(messages: list[Message], kind: str, roles: tuple[str, ...] | None = None) -> int:
    n = 0
    for m in messages:
        if roles is not None and m.role not in roles:
            continue
        for p in m.parts:
            if p.type == kind:
                n += 1
    return n


def renumber(messages: list[Message]) -> None:
    counters = {"image": 0, "video": 0, "audio": 0}
    for m in messages:
        for p in m.parts:
            if p.type in counters:
                p.index = counters[p.type]  # type: ignore[union-attr]
                counters[p.type] += 1


def insert_slots(message: Message, kind: str, n: int, newline: bool) -> None:
    """Put ``n`` slots at the start of ``message`` (``<image>\\n`` style when ``newline``)."""
    new: list[Part] = []
    for _ in range(n):
        new.append(SLOT_TYPES[kind](0))
        if newline:
            new.append(Text("\n"))
    message.parts[:0] = new


def first_message(messages: list[Message], roles: tuple[str, ...]) -> Message:
    for m in messages:
        if m.role in roles:
            return m
    raise RecordError(f"there is no {'/'.join(roles)} message to hold the media tag", "add a user turn")


def reconcile(
    messages: list[Message],
    media_counts: dict[str, int],
    *,
    prepend_to: tuple[str, ...],
    newline: bool,
    only_single: bool,
    source: str,
) -> int:
    """Make the slots match the media lists by the source consumer's rule; returns insertions.

    ``only_single``: the consumer inserts a missing tag only for a single image/video
    (InternVL, docs/consumers.md#media-tags); otherwise it prepends every missing tag (ms-swift,
    docs/consumers.md#media-tags). Surplus tags, or a shortfall the consumer would not fill, reject the record with
    counts.
    """
    inserted = 0
    for kind, n_media in media_counts.items():
        n_tags = count_slots(messages, kind)
        if n_tags == n_media:
            continue
        fillable = n_tags < n_media and (not only_single or (n_media == 1 and n_tags == 0))
        if not fillable:
            # the consumer leaves the extra tags as text (ms-swift only warns, docs/consumers.md#media-tags)
            if n_tags > n_media:
                fix = f"{source} pairs no {kind} with the extra tag(s): remove them or add the missing {kind}(s)"
            else:
                fix = f"{source} inserts no tag here: add a <{kind}> tag where each {kind} belongs"
            raise RecordError(f"{n_tags} <{kind}> tag(s) but {n_media} {kind}(s) in the record", fix)
        insert_slots(first_message(messages, prepend_to), kind, n_media - n_tags, newline)
        inserted += n_media - n_tags
    if inserted:
        renumber(messages)
    return inserted


_IMG_TAG = re.compile(r"<img>(.*?)</img>", re.S)


def extract_img_tags(messages: list[Message]) -> list[str]:
    """ms-swift compat: ``<img>path</img>`` in text becomes an image slot (docs/consumers.md#media-paths)."""
    paths: list[str] = []
    for m in messages:
        new_parts: list[Part] = []
        for p in m.parts:
            if p.type != "text" or "<img>" not in p.text:  # type: ignore[union-attr]
                new_parts.append(p)
                continue
            pos = 0
            text = p.text  # type: ignore[union-attr]
            for match in _IMG_TAG.finditer(text):
                if match.start() > pos:
                    new_parts.append(Text(text[pos : match.start()]))
                new_parts.append(ImageSlot(0))
                paths.append(match.group(1).strip())
                pos = match.end()
            if pos < len(text):
                new_parts.append(Text(text[pos:]))
        m.parts = new_parts
    if paths:
        renumber(messages)
    return paths


def slot_roles(messages: list[Message], kind: str) -> set[str]:
    return {m.role for m in messages for p in m.parts if p.type == kind}
