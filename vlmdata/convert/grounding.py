"""Grounding and placeholder markup: text <-> typed parts, one parser and renderer per syntax.

Syntaxes (docs/formats.md#internvl-grounding, docs/formats.md#qwen-grounding, docs/formats.md#swift-objects,
docs/formats.md#llava-boxes):

* ``internvl``: ``<ref>a dog</ref><box>[[x1, y1, x2, y2], ...]</box>``, 0-1000; several boxes of
  one referent share one ``<box>`` (docs/formats.md#grounding-syntaxes). Legacy ms-swift wrote ``<box> [[..]] </box>``
  with inner spaces; the parser accepts both, the renderer writes InternVL's own form.
* ``qwen``: ``<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(x1,y1),(x2,y2)<|box_end|>``;
  consecutive box groups are one referent's boxes; ``(x,y)`` alone is a point.
* ``llava``: ``[0.21, 0.92, 0.36, 1.0]`` floats in [0, 1], two decimals, no ref markup.

Media tags ``<image>``/``<video>``/``<audio>`` become slots numbered in order of appearance.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from vlmdata.errors import RecordError
from vlmdata.schemas.sample import (
    AudioSlot,
    Box,
    Boxes,
    Frame,
    ImageSlot,
    Part,
    Points,
    Ref,
    Text,
    VideoSlot,
    part_boxes,
    whole,
)

MEDIA_TAGS = ("<image>", "<video>", "<audio>")

_NUM = r"-?\d+(?:\.\d+)?"
_PATTERNS = {
    "media": r"(?P<media><image>|<video>|<audio>)",
    "internvl": (
        r"<ref>(?P<iref>.*?)</ref>"
        r"|<box>\s*(?P<ibox>\[\s*\[[-\d.,\s\[\]]*\]\s*\])\s*</box>"
    ),
    "qwen": (
        r"<\|object_ref_start\|>(?P<qref>.*?)<\|object_ref_end\|>"
        rf"|(?P<qbox>(?:<\|box_start\|>\(\s*{_NUM}\s*,\s*{_NUM}\s*\)"
        rf"(?:\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\))?<\|box_end\|>)+)"
    ),
    "llava": (r"(?P<lbox>\[(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)(?:, ?(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)){3}\])"),
    "swift": r"(?P<sref><ref-object>)|(?P<sbox><bbox>)",
}
_QWEN_GROUP = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_QUICK = {
    "media": ("<image>", "<video>", "<audio>"),
    "internvl": ("<ref>", "<box>"),
    "qwen": ("<|",),
    "swift": ("<ref-object>", "<bbox>"),
}


class Counters:
    """Running media slot numbers over one sample (tags are numbered across all messages)."""

    __slots__ = ("audio", "image", "video")

    def __init__(self) -> None:
        self.image = 0
        self.video = 0
        self.audio = 0


@lru_cache(maxsize=32)
def _compiled(syntaxes: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(_PATTERNS[s] for s in ("media", *syntaxes)), re.S)


def _number(text: str) -> float:
    v = float(text)
    return int(v) if v.is_integer() and "." not in text else v


def _internvl_boxes(raw: str) -> list[list[float]]:
    try:
        import orjson

        value = orjson.loads(raw)
    except Exception as exc:
        raise RecordError(f"cannot read InternVL box {raw!r}", "write <box>[[x1, y1, x2, y2]]</box>") from exc
    if not (isinstance(value, list) and all(isinstance(b, list) for b in value)):
        raise RecordError(f"InternVL box {raw!r} is not a list of lists")
    for b in value:
        if len(b) not in (2, 4) or not all(isinstance(v, int | float) for v in b):
            raise RecordError(
                f"InternVL box {b!r} in {raw!r} must hold 4 numbers (x1, y1, x2, y2)",
                "fix the box or remove it",
            )
    return value


def _make_part(values: list[list[float]], frame: Frame) -> Part:
    boxes = tuple(
        Box(v[0], v[1], None, None, frame) if len(v) == 2 else Box(v[0], v[1], v[2], v[3], frame) for v in values
    )
    if all(b.is_point for b in boxes):
        return Points(boxes)
    return Boxes(boxes)


_PLANS: dict[tuple[str, ...], tuple[re.Pattern[str], tuple[str, ...], bool]] = {}


def _plan(syntaxes: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...], bool]:
    """(pattern, quick substrings, llava?) for ``syntaxes``, built once per tuple."""
    plan = _PLANS.get(syntaxes)
    if plan is None:
        quick = tuple(q for s in ("media", *syntaxes) for q in _QUICK.get(s, ("[",)))
        plan = _PLANS[syntaxes] = (_compiled(syntaxes), quick, "llava" in syntaxes)
    return plan


def _matches(pattern: re.Pattern[str], text: str) -> list[re.Match[str]]:
    """``pattern.finditer(text)`` for patterns whose every branch starts with ``<``: tries a match
    only where a ``<`` is (sre has no first-character skip for this alternation; 3x faster)."""
    out = []
    match = pattern.match
    find = text.find
    i = find("<")
    while i >= 0:
        m = match(text, i)
        if m is None:
            i = find("<", i + 1)
        else:
            out.append(m)
            i = find("<", m.end())
    return out


def parse_text(
    text: str,
    syntaxes: tuple[str, ...],
    counters: Counters,
    llava_frame: Frame = Frame.NORM1,
) -> list[Part]:
    """Split ``text`` into parts; ``syntaxes`` picks the grounding markup this format uses.

    ``swift`` placeholders come back as ``Ref("")``/``Boxes(())`` markers that the ms-swift
    codec fills from the record's ``objects``.
    """
    pattern, quick, llava = _PLANS.get(syntaxes) or _plan(syntaxes)
    if "<" not in text and (not llava or "[" not in text):
        return [Text(text)] if text else []
    for q in quick:
        if q in text:
            break
    else:
        return [Text(text)] if text else []
    parts: list[Part] = []
    pos = 0
    for m in pattern.finditer(text) if llava else _matches(pattern, text):
        start, end = m.span()
        if start > pos:
            parts.append(Text(text[pos:start]))
        pos = end
        kind = m.lastgroup
        if kind == "media":
            tag = m[0]
            if tag == "<image>":
                parts.append(ImageSlot(counters.image))
                counters.image += 1
            elif tag == "<video>":
                parts.append(VideoSlot(counters.video))
                counters.video += 1
            else:
                parts.append(AudioSlot(counters.audio))
                counters.audio += 1
        elif kind == "sref":
            parts.append(Ref(""))
        elif kind == "sbox":
            parts.append(Boxes(()))
        elif kind == "iref":
            parts.append(Ref(m.group("iref")))
        elif kind == "ibox":
            parts.append(_make_part(_internvl_boxes(m.group("ibox")), Frame.NORM1000))
        elif kind == "qref":
            parts.append(Ref(m.group("qref")))
        elif kind == "qbox":
            groups = [[_number(a), _number(b)] for a, b in _QWEN_GROUP.findall(m.group("qbox"))]
            values: list[list[float]] = []
            for chunk in m.group("qbox").split("<|box_end|>")[:-1]:
                n = len(_QWEN_GROUP.findall(chunk))
                pair, groups = groups[:n], groups[n:]
                values.append([c for p in pair for c in p])
            parts.append(_make_part(values, Frame.NORM1000))
        elif kind == "lbox":
            nums = [float(v) for v in m.group("lbox")[1:-1].split(",")]
            parts.append(Boxes((Box(*nums, llava_frame),)))
    if pos < len(text):
        parts.append(Text(text[pos:]))
    return parts


def _fmt(v: float) -> str:
    return str(v) if type(v) is int else str(whole(v))


def render_internvl_boxes(part: Boxes | Points) -> str:
    items = part_boxes(part)
    inner = ", ".join(["[" + ", ".join([_fmt(v) for v in b.coords()]) + "]" for b in items])
    return f"<box>[{inner}]</box>"


def render_qwen_boxes(part: Boxes | Points) -> str:
    items = part_boxes(part)
    out = []
    for b in items:
        c = [_fmt(v) for v in b.coords()]
        pairs = ",".join(f"({c[i]},{c[i + 1]})" for i in range(0, len(c), 2))
        out.append(f"<|box_start|>{pairs}<|box_end|>")
    return "".join(out)


def _llava_number(v: float) -> str:
    return repr(round(float(v), 2))


def render_llava_boxes(part: Boxes | Points) -> str:
    items = part_boxes(part)
    return ", ".join("[" + ", ".join(_llava_number(v) for v in b.coords()) + "]" for b in items)


# Grounding syntaxes by one name each: "qwen" is Qwen2-VL's <|box_start|> tokens ("tokens" on the
# command line of --qwen-boxes and train's --box-syntax, where it is an alias), "internvl" is
# <ref>/<box>, "llava" bare fractions, "json" Qwen2.5/3-VL's [{"bbox_2d": ...}] answers.
SYNTAX_ALIASES = {"tokens": "qwen"}


def syntax_name(value: str) -> str:
    """The one internal name of a grounding syntax given by a user ("tokens" -> "qwen")."""
    return SYNTAX_ALIASES.get(value, value)


RENDER_REF = {
    "internvl": lambda t: f"<ref>{t}</ref>",
    "qwen": lambda t: f"<|object_ref_start|>{t}<|object_ref_end|>",
    "llava": lambda t: t,
}
RENDER_BOXES = {
    "internvl": render_internvl_boxes,
    "qwen": render_qwen_boxes,
    "llava": render_llava_boxes,
}


def render_parts(
    parts: Iterable[Part], syntax: str, convert: Callable[[Boxes | Points], Boxes | Points] | None = None
) -> str:
    """Text of ``parts`` in ``syntax``; boxes must already be in that syntax's frame, or
    ``convert`` puts each Boxes/Points part there first."""
    if type(parts) is list and len(parts) == 1 and parts[0].type == "text":
        return parts[0].text  # type: ignore[union-attr]
    ref = RENDER_REF[syntax]
    boxes = RENDER_BOXES[syntax]
    out: list[str] = []
    previous = ""
    llava = syntax == "llava"
    for p in parts:
        t = p.type
        if llava and previous == "ref" and t in ("boxes", "points"):
            out.append(" ")  # plain-text refs: "the cat [0.1, 0.2, 0.3, 0.4]", not "the cat[0.1, ..."
        previous = t
        if t == "text":
            out.append(p.text)  # type: ignore[union-attr]
        elif t == "image":
            out.append("<image>")
        elif t == "ref":
            out.append(ref(p.text))  # type: ignore[union-attr]
        elif t == "video":
            out.append("<video>")
        elif t == "audio":
            out.append("<audio>")
        else:
            out.append(boxes(convert(p) if convert is not None else p))  # type: ignore[arg-type]
    return "".join(out)
