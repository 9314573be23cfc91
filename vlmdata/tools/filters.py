"""Heuristic sample filters in the spirit of InternVL 2.5's data filtering pipeline.

Each factory returns a plain function ``sample -> Drop | None``; a Drop names the filter, a score
and the reason. They look at the *answers* (assistant turns, their text and referring phrases;
box coordinates are not text) except ``garbage``, which looks at every message:

- ``repetition(threshold, n)``: score = the largest, over answers, of the fraction of repeated
  word n-grams (``1 - distinct / total``; CJK characters count as words) and the fraction of
  repeated non-empty lines. Drops when score > threshold. Answers with fewer than
  ``MIN_NGRAMS`` n-grams (and fewer than 3 lines) score 0: short answers repeat by nature.
- ``length(min_chars, max_chars)``: score = characters of all answers together.
- ``empty()``: no answer, or an answer that is empty or only placeholders (tags such as
  ``<image>``, ``N/A``, ``none``, ``...``) and has no boxes; score = the fraction of such answers.
- ``garbage(threshold)``: score = fraction of control (except tab/newline), private-use,
  unassigned and U+FFFD replacement characters in the sample's text; drops when score > threshold.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

from vlmdata.schemas.sample import Boxes, Message, Points, Ref, Sample, Text
from vlmdata.tools.stream import Drop, SampleFilter

MIN_NGRAMS = 8
PLACEHOLDERS = frozenset(
    {"", "n/a", "na", "none", "null", "nil", "nan", "-", "--", "...", "…", "?", "todo", "tbd", "placeholder", "<unk>"}
)
_WORDS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+", re.UNICODE)
_TAGS = re.compile(r"<[^<>\s]{1,40}>")


def answers(sample: Sample) -> list[Message]:
    return [m for m in sample.messages if m.role == "assistant"]


def answer_text(message: Message) -> str:
    return "".join(p.text for p in message.parts if isinstance(p, Text | Ref))


def repetition_score(text: str, n: int = 3) -> float:
    """The larger of the repeated n-gram fraction and the repeated line fraction of ``text``."""
    score = 0.0
    words = _WORDS.findall(text.casefold())
    grams = [tuple(words[k : k + n]) for k in range(len(words) - n + 1)]
    if len(grams) >= MIN_NGRAMS:
        score = 1 - len(set(grams)) / len(grams)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= 3:
        score = max(score, 1 - len(set(lines)) / len(lines))
    return score


def repetition(threshold: float = 0.3, n: int = 3) -> SampleFilter:
    def check(sample: Sample) -> Drop | None:
        score = max((repetition_score(answer_text(m), n) for m in answers(sample)), default=0.0)
        if score > threshold:
            return Drop("repetition", score, f"{score:.0%} of the answer's {n}-grams/lines repeat (> {threshold:g})")
        return None

    return check


def length(min_chars: int | None = None, max_chars: int | None = None) -> SampleFilter:
    def check(sample: Sample) -> Drop | None:
        chars = sum(len(answer_text(m)) for m in answers(sample))
        if max_chars is not None and chars > max_chars:
            return Drop("max-chars", chars, f"answers are {chars} characters long (> {max_chars})")
        if min_chars is not None and chars < min_chars:
            return Drop("min-chars", chars, f"answers are {chars} characters long (< {min_chars})")
        return None

    return check


def is_placeholder(message: Message) -> bool:
    """An answer with no boxes/points whose text is empty or only tags and placeholder words."""
    if any(isinstance(p, Boxes | Points) for p in message.parts):
        return False
    text = _TAGS.sub(" ", answer_text(message)).strip().casefold()
    return text.strip(" .\n\t") in PLACEHOLDERS or text in PLACEHOLDERS


def empty() -> SampleFilter:
    def check(sample: Sample) -> Drop | None:
        replies = answers(sample)
        if not replies:
            return Drop("empty", 1.0, "the sample has no answer (no assistant turn)")
        bad = sum(is_placeholder(m) for m in replies)
        if bad:
            return Drop("empty", bad / len(replies), f"{bad} of {len(replies)} answer(s) empty or placeholder-only")
        return None

    return check


def garbage_score(text: str) -> float:
    if not text:
        return 0.0
    counts = Counter(unicodedata.category(c) for c in text if c not in "\n\t\r")
    bad = counts["Cc"] + counts["Co"] + counts["Cn"] + counts["Cs"] + text.count("\ufffd")
    return bad / len(text)


def garbage(threshold: float = 0.1) -> SampleFilter:
    def check(sample: Sample) -> Drop | None:
        text = "".join(m.text() for m in sample.messages)
        score = garbage_score(text)
        if score > threshold:
            return Drop(
                "garbage", score, f"{score:.0%} of the text is control/replacement characters (> {threshold:g})"
            )
        return None

    return check
