"""Transforms on the Sample stream: merge by image, split long conversations, dedup, re-root, system prompts.

Each is a plain function ``(samples, events=None, ...) -> samples`` that yields Samples lazily and
never reorders the turns inside a sample. ``events`` (``stream.Events``) hears about merges,
splits and drops so that the engine can account for every record; library callers may omit it.

Memory: ``merge_by_image(scope="consecutive")``, ``split_turns``, ``reroot`` and ``drop_system``
hold one sample at a time. ``merge_by_image(scope="all")`` holds every sample with images until
the end (an index ``image list -> sample``): use it when QA pairs of one image are scattered over
the file and the file fits in memory. ``dedup_exact`` keeps a dict of 32-byte
digests (one per kept sample, with where it came from) and a cache ``path -> sha256`` of the media files;
``dedup_near`` keeps a MinHash (about 1 KB) per kept sample in an LSH index.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import replace

from vlmdata.media.paths import is_remote
from vlmdata.schemas.sample import (
    AudioSlot,
    Boxes,
    ImageSlot,
    MediaRef,
    Message,
    Points,
    Sample,
    Text,
    VideoSlot,
    part_boxes,
)
from vlmdata.tools.stream import Drop, Events

_NOOP = Events()

# --- system prompts ------------------------------------------------------------------------


def drop_system(samples: Iterable[Sample], events: Events | None = None) -> Iterator[Sample]:
    """Remove the system prompt (a leading system message) of every sample; keeping is the default."""
    for sample in samples:
        if sample.messages and sample.messages[0].role == "system":
            del sample.messages[0]
        yield sample


# --- media paths ---------------------------------------------------------------------------


def parse_reroot(spec: str) -> tuple[str, str]:
    """``OLD=NEW`` -> (OLD, NEW); raises ValueError on a spec without ``=`` or with an empty OLD."""
    old, sep, new = spec.partition("=")
    if not sep or not old:
        raise ValueError(f"--reroot wants OLD=NEW (a path prefix and its replacement), got {spec!r}")
    return old, new


def _swap(value: str, rules: list[tuple[str, str]]) -> str | None:
    for old, new in rules:
        if value.startswith(old):
            return new + value[len(old) :]
    return None


def reroot(
    samples: Iterable[Sample], events: Events | None = None, *, rules: list[tuple[str, str]]
) -> Iterator[Sample]:
    """Rewrite media paths by prefix: the first rule whose OLD starts the path replaces it by NEW.

    A rule matches either the path as written in the record or its resolved absolute path. The
    resolved path follows the change (a relative path keeps its root), so every output format
    writes the new location.
    """
    for sample in samples:
        for media in (*sample.images, *sample.videos, *sample.audios):
            _reroot_one(media, rules)
        yield sample


def _reroot_one(media: MediaRef, rules: list[tuple[str, str]]) -> None:
    new_path = _swap(media.path, rules)
    if new_path is not None:
        norm = os.path.normpath(media.path)
        resolved = (media.resolved or "").rstrip(os.sep)
        if os.path.isabs(new_path) or is_remote(new_path) or os.path.isabs(media.path) or not resolved.endswith(norm):
            media.resolved = new_path
        else:  # relative: keep the root the old path resolved under
            tail = os.sep if new_path.endswith(("/", os.sep)) else ""
            media.resolved = os.path.normpath(resolved[: len(resolved) - len(norm)] + new_path) + tail
        media.path = new_path
    elif media.resolved is not None:
        new_resolved = _swap(media.resolved, rules)
        if new_resolved is not None:
            media.resolved = new_resolved
            media.path = new_resolved if os.path.isabs(media.path) else media.path
    if media.frames:
        media.frames = [_swap(f, rules) or f for f in media.frames]


# --- merge QA pairs of one image -------------------------------------------------------------


def _image_key(sample: Sample) -> tuple[str, ...] | None:
    """The group key: the resolved image list; None (never merged) without images or with other media."""
    if not sample.images or sample.videos or sample.audios:
        return None
    return tuple(m.resolved or m.path for m in sample.images)


def _turns(sample: Sample) -> list[Message]:
    return sample.messages[1:] if sample.messages and sample.messages[0].role == "system" else sample.messages


def _can_merge(a: Sample, b: Sample) -> bool:
    if a.system != b.system:
        return False
    ta, tb = _turns(a), _turns(b)
    return bool(ta) and bool(tb) and ta[-1].role == "assistant" and tb[0].role == "user"


def _without_slots(message: Message, kinds: tuple[type, ...]) -> Message:
    """The message without its media slots; text right after a removed slot loses its leading newline."""
    parts = []
    after_slot = False
    for part in message.parts:
        if isinstance(part, kinds):
            after_slot = True
            continue
        if after_slot and isinstance(part, Text):
            text = part.text.lstrip("\n") if not parts else part.text
            if not text:
                continue
            part = Text(text)
        after_slot = False
        parts.append(part)
    return Message(message.role, parts, dict(message.extra))


def merge_into(a: Sample, b: Sample) -> None:
    """Append the turns of ``b`` to ``a`` (same images): ``a`` keeps its id, system and image tags."""
    for message in _turns(b):
        a.messages.append(_without_slots(message, (ImageSlot,)))


def merge_by_image(
    samples: Iterable[Sample], events: Events | None = None, *, scope: str = "consecutive"
) -> Iterator[Sample]:
    """Merge samples with the same images (resolved paths) into one conversation (LLaVA-1.5 VQA style).

    ``scope="consecutive"`` merges runs of neighbouring records (streaming, one sample in memory);
    ``scope="all"`` merges across the whole file, holding every sample with images in memory and
    writing each merged sample at the position of its first record. The first record keeps its id,
    extra keys and ``<image>`` tags (at their first position); later records give their turns
    without tags. Records whose system prompts differ, or which would not alternate user/assistant,
    are not merged. Samples without images, or with videos/audios, pass through untouched.
    """
    if scope not in ("consecutive", "all"):
        raise ValueError(f"scope must be 'consecutive' or 'all', got {scope!r}")
    events = events or _NOOP
    if scope == "consecutive":
        yield from _merge_consecutive(samples, events)
        return
    order: list[Sample] = []
    groups: dict[tuple[str, ...], list[Sample]] = {}
    for sample in samples:
        key = _image_key(sample)
        if key is not None:
            for head in groups.get(key, ()):
                if _can_merge(head, sample):
                    merge_into(head, sample)
                    events.merged(sample, head)
                    break
            else:
                groups.setdefault(key, []).append(sample)
                order.append(sample)
        else:
            order.append(sample)
    yield from order


def _merge_consecutive(samples: Iterable[Sample], events: Events) -> Iterator[Sample]:
    current: Sample | None = None
    current_key: tuple[str, ...] | None = None
    for sample in samples:
        key = _image_key(sample)
        if current is not None and key is not None and key == current_key and _can_merge(current, sample):
            merge_into(current, sample)
            events.merged(sample, current)
            continue
        if current is not None:
            yield current
        current, current_key = sample, key
    if current is not None:
        yield current


# --- split long conversations ---------------------------------------------------------------


def rounds_of(messages: list[Message]) -> list[list[Message]]:
    """Rounds: a user message and the messages after it up to the next user message."""
    rounds: list[list[Message]] = []
    for message in messages:
        if message.role == "user" or not rounds:
            rounds.append([message])
        else:
            rounds[-1].append(message)
    return rounds


def _slot_indexes(messages: list[Message], kind: type) -> list[int]:
    return [p.index for m in messages for p in m.parts if isinstance(p, kind)]


def split_turns(samples: Iterable[Sample], events: Events | None = None, *, max_turns: int) -> Iterator[Sample]:
    """Split conversations of more than ``max_turns`` rounds into samples of at most ``max_turns``.

    A round is a user turn and the answers after it. Each part keeps the system prompt and gets
    the id ``<id>-1``, ``<id>-2``... (None stays None). Media whose tag was in an earlier part are
    shown again: their slots go at the start of the part's first user turn. Each part lists only
    the media it uses (indexes renumbered in order, boxes follow).
    """
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    events = events or _NOOP
    for sample in samples:
        system = sample.messages[:1] if sample.messages and sample.messages[0].role == "system" else []
        rounds = rounds_of(_turns(sample))
        if len(rounds) <= max_turns:
            yield sample
            continue
        chunks = [rounds[k : k + max_turns] for k in range(0, len(rounds), max_turns)]
        events.split(sample, len(chunks))
        seen: dict[type, set[int]] = {ImageSlot: set(), VideoSlot: set(), AudioSlot: set()}
        for number, chunk in enumerate(chunks, 1):
            body = [Message(m.role, list(m.parts), dict(m.extra)) for r in chunk for m in r]
            carried = []
            for kind in (ImageSlot, VideoSlot, AudioSlot):
                here = set(_slot_indexes(body, kind))
                carried += [kind(i) for i in sorted(seen[kind] - here)]
                seen[kind] |= here
            if carried:
                first_user = next((m for m in body if m.role == "user"), body[0])
                first_user.parts[:0] = carried
            messages = [Message(m.role, list(m.parts), dict(m.extra)) for m in system] + body
            part = Sample(
                messages,
                list(sample.images),
                list(sample.videos),
                list(sample.audios),
                id=f"{sample.id}-{number}" if sample.id is not None else None,
                extra=dict(sample.extra),
                origin=replace(sample.origin, id=sample.id) if sample.origin else None,
            )
            yield _keep_used_media(part)


def _keep_used_media(sample: Sample) -> Sample:
    """Drop media without a slot or box in the sample and renumber the rest (order kept)."""
    maps = {}
    for kind, attr in ((ImageSlot, "images"), (VideoSlot, "videos"), (AudioSlot, "audios")):
        used = set(_slot_indexes(sample.messages, kind))
        if kind is ImageSlot:
            used |= {p.image_index for m in sample.messages for p in m.parts if isinstance(p, Boxes | Points)}
        media = getattr(sample, attr)
        keep = [i for i in range(len(media)) if i in used]
        maps[kind] = {old: new for new, old in enumerate(keep)}
        setattr(sample, attr, [media[i] for i in keep])
    for message in sample.messages:
        for k, p in enumerate(message.parts):
            if isinstance(p, ImageSlot | VideoSlot | AudioSlot):
                message.parts[k] = type(p)(maps[type(p)].get(p.index, p.index))
            elif isinstance(p, Boxes):
                message.parts[k] = Boxes(p.boxes, maps[ImageSlot].get(p.image_index, p.image_index))
            elif isinstance(p, Points):
                message.parts[k] = Points(p.points, maps[ImageSlot].get(p.image_index, p.image_index))
    return sample


# --- dedup ----------------------------------------------------------------------------------


class MediaHasher:
    """sha256 of media files, cached per path. URLs, missing files and folders hash their path."""

    def __init__(self) -> None:
        self.cache: dict[str, str] = {}

    def __call__(self, media: MediaRef) -> str:
        path = media.resolved or media.path
        hit = self.cache.get(path)
        if hit is not None:
            return hit
        if media.frames:
            digest = "frames:" + "|".join(self(MediaRef(f, f)) for f in media.frames)
        elif is_remote(path) or not os.path.isfile(path):
            digest = "path:" + path
        else:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            digest = h.hexdigest()
        self.cache[path] = digest
        return digest


def _media_key(sample: Sample, hasher: MediaHasher) -> list[str]:
    return [
        f"{kind}:{hasher(m)}"
        for kind, media in (("image", sample.images), ("video", sample.videos), ("audio", sample.audios))
        for m in media
    ]


def sample_text(sample: Sample) -> str:
    """Every message as ``role: text`` (slots as tags, box coordinates included), one per line."""
    lines = []
    for message in sample.messages:
        out = []
        for part in message.parts:
            if isinstance(part, Boxes | Points):
                items = part_boxes(part)
                out.append(
                    f"[{part.image_index}:" + ";".join(",".join(f"{c:g}" for c in b.coords()) for b in items) + "]"
                )
            elif isinstance(part, ImageSlot | VideoSlot | AudioSlot):
                out.append(f"<{part.type}{part.index}>")
            else:
                out.append(part.text)
        lines.append(f"{message.role}: {''.join(out)}")
    return "\n".join(lines)


_PUNCT_SPACE = re.compile(r"[\W_]+", re.UNICODE)


def normalize_text(text: str) -> str:
    """Near-duplicate normal form: NFKC, case-folded, punctuation and whitespace runs -> one space."""
    return _PUNCT_SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _digest(parts: list[str]) -> bytes:
    return hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).digest()


def dedup_exact(
    samples: Iterable[Sample], events: Events | None = None, *, hasher: MediaHasher | None = None
) -> Iterator[Sample]:
    """Drop samples whose media bytes (sha256) and text are both identical to an earlier sample's."""
    yield from _dedup(samples, events, hasher or MediaHasher(), "dedup", sample_text)


def dedup_near(
    samples: Iterable[Sample],
    events: Events | None = None,
    *,
    hasher: MediaHasher | None = None,
    threshold: float = 0.8,
) -> Iterator[Sample]:
    """Drop near duplicates: same media bytes and texts whose word-3-gram Jaccard similarity
    (MinHash LSH over ``normalize_text``) is at least ``threshold`` (``tools.dedup``; needs datasketch).

    Case, punctuation, Unicode width forms and spacing do not count; box coordinates and roles do.
    """
    from vlmdata.tools.dedup import dedup_text_near

    h = hasher or MediaHasher()
    yield from dedup_text_near(
        samples,
        events,
        threshold=threshold,
        media_key=lambda s: _media_key(s, h),
        text_of=lambda s: normalize_text(sample_text(s)),
    )


def _dedup(samples, events, hasher, name, text_of) -> Iterator[Sample]:  # type: ignore[no-untyped-def]
    events = events or _NOOP
    seen: dict[bytes, str] = {}
    for sample in samples:
        key = _digest([*_media_key(sample, hasher), text_of(sample)])
        first = seen.get(key)
        if first is not None:
            events.drop(sample, Drop(name, 1.0, f"duplicate of {first}"))
            continue
        seen[key] = sample.origin.where() if sample.origin else str(sample.id)
        yield sample
