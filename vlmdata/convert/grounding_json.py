"""The JSON grounding syntax of Qwen2.5-VL and Qwen3-VL answers, beside the tag syntaxes of
``vlmdata/convert/grounding.py``: ``[{"bbox_2d": [x1, y1, x2, y2], "label": ".."}]`` (``point_2d``
for points), fenced in ```json or bare (docs/formats.md#qwen). Read into Boxes/Points parts and
rendered back; the Qwen codec and train's renderer use it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Boxes, Frame, Part, Points, Ref, Text, part_boxes, whole

GROUNDING_KEYS = ("bbox_2d", "point_2d")
JSON_HINTS = ('"bbox_2d"', '"point_2d"')
_FENCE = re.compile(r"```json[ \t]*\r?\n(.*?)\r?\n?[ \t]*```", re.S)
_DECODER = json.JSONDecoder()
_INVALID = object()


# --- the JSON answer syntax ------------------------------------------------------------------


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        return _INVALID


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _coords(obj: dict[str, Any], key: str) -> list[float]:
    n = 4 if key == "bbox_2d" else 2
    coords = obj[key]
    if not (
        isinstance(coords, list)
        and len(coords) == n
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in coords)
    ):
        raise RecordError(
            f"{key} {_short(coords)} in a JSON answer must be a list of {n} numbers",
            f'write {{"{key}": [{"x1, y1, x2, y2" if n == 4 else "x, y"}], "label": ".."}}',
        )
    return coords


def grounding_parts(value: Any) -> list[Part] | None:
    """``Ref``/``Boxes``/``Points`` parts of a parsed JSON answer (frame NORM1000 until the caller
    sets the model's frame); None when the value is no grounding answer at all."""
    items = [value] if isinstance(value, dict) else value if isinstance(value, list) else None
    if not items or not all(isinstance(x, dict) for x in items):
        return None
    if not any(k in x for x in items for k in GROUNDING_KEYS):
        return None
    parts: list[Part] = []
    current: list[Box] = []
    previous: tuple[str, str | None] | None = None
    for obj in items:
        keys = [k for k in GROUNDING_KEYS if k in obj]
        if len(keys) != 1:
            raise RecordError(
                f"JSON answer object {_short(obj)} must hold exactly one of bbox_2d or point_2d",
                "give every object of the answer list one box or one point",
            )
        key = keys[0]
        other = sorted(set(obj) - {key, "label"})
        if other:
            raise RecordError(
                f"JSON answer object {_short(obj)} has key(s) {other} besides {key} and label, "
                "which a converted box cannot carry",
                "remove those keys, or keep the data in Qwen format without converting it",
            )
        label = obj.get("label")
        if label is not None and not isinstance(label, str):
            raise RecordError(f"label {_short(label)} in a JSON answer must be a string", "fix the label")
        coords = _coords(obj, key)
        box = (
            Box(*coords, Frame.NORM1000) if key == "bbox_2d" else Box(coords[0], coords[1], None, None, Frame.NORM1000)
        )
        if previous != (key, label):
            if current:
                parts.append(_group(previous, current))
            current = []
            if label is not None:
                parts.append(Ref(label))
            previous = (key, label)
        current.append(box)
    parts.append(_group(previous, current))
    return parts


def _group(kind: tuple[str, str | None] | None, boxes: list[Box]) -> Part:
    assert kind is not None
    return Boxes(tuple(boxes)) if kind[0] == "bbox_2d" else Points(tuple(boxes))


def _grounding_or_none(value: Any, strict: bool) -> list[Part] | None:
    if strict:
        return grounding_parts(value)
    try:
        return grounding_parts(value)
    except RecordError:
        return None


def _bare_spans(text: str, lo: int, hi: int, strict: bool) -> list[tuple[int, int, list[Part]]]:
    """Grounding JSON values written without a fence inside ``text[lo:hi]``."""
    sub = text[lo:hi]
    out = []
    i = 0
    while True:
        starts = [j for j in (sub.find("[", i), sub.find("{", i)) if j >= 0]
        if not starts:
            return out
        j = min(starts)
        try:
            value, end = _DECODER.raw_decode(sub, j)
        except ValueError:
            i = j + 1
            continue
        parts = _grounding_or_none(value, strict)
        if parts is not None:
            out.append((lo + j, lo + end, parts))
        i = end


def parse_json_grounding(text: str, strict: bool = True) -> list[Part]:
    """``text`` split into Text and the parts of its JSON answers (fenced or bare).

    ``strict`` (answers): a mention of bbox_2d/point_2d that is not a readable answer list rejects
    the record. Not strict (questions, where prompts often show the answer format with placeholders
    such as ``{"bbox_2d": [x1, y1, x2, y2], "label": "string"}``): such text stays text.
    """
    if not any(h in text for h in JSON_HINTS):
        return [Text(text)] if text else []
    spans: list[tuple[int, int, list[Part]]] = []
    lo = 0
    for m in _FENCE.finditer(text):
        value = _loads(m.group(1))
        parts = _grounding_or_none(value, strict) if value is not _INVALID else None
        if parts is not None:
            spans.extend(_bare_spans(text, lo, m.start(), strict))
            spans.append((m.start(), m.end(), parts))
            lo = m.end()
    spans.extend(_bare_spans(text, lo, len(text), strict))
    out: list[Part] = []
    pos = 0
    for start, end, parts in spans:
        if start > pos:
            out.append(Text(text[pos:start]))
        out.extend(parts)
        pos = end
    if pos < len(text):
        out.append(Text(text[pos:]))
    for p in out:
        if strict and isinstance(p, Text) and any(h in p.text for h in JSON_HINTS):
            raise RecordError(
                "a turn mentions bbox_2d/point_2d outside a readable JSON answer list "
                f"(near {p.text[max(0, p.text.find('_2d') - 40) :][:80]!r}), so its coordinates cannot be converted",
                'write the answer as [{"bbox_2d": [x1, y1, x2, y2], "label": ".."}] (valid JSON)',
            )
    return out


def render_json_answer(items: list[dict[str, Any]]) -> str:
    """The canonical JSON answer: Qwen's own layout (fence, one object per line after a tab)."""
    body = ",\n\t".join(json.dumps(item, ensure_ascii=False) for item in items)
    return f"```json\n[\n\t{body}\n]\n```"


def _is_boxes(part: Part) -> bool:
    return part.type == "boxes" or part.type == "points"


def render_json_parts(parts: list[Part], convert: Callable[[Boxes | Points], Boxes | Points] | None = None) -> str:
    """Text of ``parts`` with every run of (ref +) boxes as one canonical JSON answer."""
    out: list[str] = []
    i, n = 0, len(parts)
    while i < n:
        p = parts[i]
        starts_run = _is_boxes(p) or (p.type == "ref" and i + 1 < n and _is_boxes(parts[i + 1]))
        if not starts_run:
            if p.type == "text" or p.type == "ref":
                out.append(p.text)  # type: ignore[union-attr]
            elif p.type == "image":
                out.append("<image>")
            elif p.type == "video":
                out.append("<video>")
            elif p.type == "audio":
                out.append("<audio>")
            i += 1
            continue
        items: list[dict[str, Any]] = []
        while i < n:
            p = parts[i]
            if p.type == "ref" and i + 1 < n and _is_boxes(parts[i + 1]):
                label: str | None = p.text  # type: ignore[union-attr]
                group = parts[i + 1]
                i += 2
            elif _is_boxes(p):
                label, group = None, p
                i += 1
            else:
                break
            group = convert(group) if convert is not None else group  # type: ignore[arg-type]
            for b in part_boxes(group):  # type: ignore[arg-type]
                item: dict[str, Any] = {("point_2d" if b.is_point else "bbox_2d"): [whole(v) for v in b.coords()]}
                if label is not None:
                    item["label"] = label
                items.append(item)
        if items:
            out.append(render_json_answer(items))
    return "".join(out)


