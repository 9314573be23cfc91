"""What a consumer (a trainer's data loader) is, and the helpers every consumer module shares.

A *format* says how a record is written; a *consumer* says how it is read. Each consumer module
(one per trainer) builds one ``Consumer`` holding every fact about that trainer that matters to
the data: which roles it knows and in which order, which turns count media tags and whether it
inserts missing ones, what text it interprets as markup, how media paths resolve and whether it
opens URLs, which grounding syntax and frame it reads. The writers (``vlmdata convert``) and the
validator rules (``vlmdata validate``) both ask these objects; neither holds its own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vlmdata.schemas.sample import Sample

# Typed content blocks (OpenAI/HF/TRL, LLaMA-Factory v1, ms-swift) -> the media kind they hold.
MEDIA_BLOCKS = {"image": "image", "image_url": "image", "video": "video", "video_url": "video"}
AUDIO_BLOCKS = {"audio": "audio", "input_audio": "audio"}
KINDS = ("image", "video")
TAGS = {"image": "<image>", "video": "<video>", "audio": "<audio>"}
MESSAGE_LISTS = ("messages", "conversations", "conversation")
# The ``conversations: [{from, value}]`` convention of LLaVA, InternVL, Qwen and LLaMA-Factory's default tags.
FROM_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
TO_FROM = {"user": "human", "assistant": "gpt", "system": "system"}
QUERY_ROLES = ("user", "tool_response")  # the prompt side of a round
ANSWER_ROLES = ("assistant", "tool_call")

Issue = tuple[str, dict[str, Any]]


@dataclass(slots=True)
class TurnMedia:
    """Media in one turn as written: tags in text, typed blocks without / with their own media."""

    role: str
    key: str
    string: bool  # the content is a plain string (or missing), not a block list
    literal: dict[str, int] = field(default_factory=lambda: {"image": 0, "video": 0})
    bare: dict[str, int] = field(default_factory=lambda: {"image": 0, "video": 0})
    payload: dict[str, int] = field(default_factory=lambda: {"image": 0, "video": 0})

    def tags(self, kind: str) -> int:
        return self.literal[kind] + self.bare[kind] + self.payload[kind]


@dataclass(frozen=True)
class Consumer:
    """Every fact about one trainer's data loader that a writer or a rule needs."""

    name: str  # the --target name
    title: str  # for messages: "ms-swift", "LLaMA-Factory", ...
    source: str  # upstream code and version the facts below come from
    # --- roles and order
    raw_roles: frozenset[str]  # role values (``role``/``from``) it accepts
    role_names: str  # the accepted roles, for a fix text
    role_effect: str  # what it does with an unknown role
    system: str  # "first": one leading system turn; "none": no system turn at all
    system_effect: str  # what it does with a system turn where it allows none
    # --- media tags
    analyse_media: Callable[[Any, list[TurnMedia], list[Issue]], None]  # (view, turns, out) -> VD10x issues
    interpreted: tuple[str, ...]  # text it reads as media tags or markup (a literal one changes meaning)
    # --- media paths
    paths: str  # how a relative path resolves, for messages ("the working directory", ...)
    urls: bool  # whether it opens http(s) URLs itself
    url_effect: str = ""  # what it does with a URL when it does not
    # --- grounding
    grounding: str = ""  # the syntax and frame it reads, for messages
    # --- role order
    sequence: Callable[[list[Any]], str | None] | None = None  # turns -> why it refuses their order (VD112)
    sequence_effect: str = ""  # what it does then
    rewrites: Callable[[list[Any]], Iterator[dict[str, Any]]] | None = None  # turns -> orders it rewrites (VD113)
    # --- record keys
    top_keys: frozenset[str] = frozenset()
    top_prefixes: tuple[str, ...] = ()
    turn_keys: frozenset[str] | None = None

    def literal_markup(self, text: str) -> list[str]:
        """The strings of ``text`` this consumer would read as tags or markup (cheap when none)."""
        if "<" not in text:
            return []
        return [s for s in self.interpreted if s in text]


# --------------------------------------------------------------------------- message helpers


def count(tms: list[TurnMedia], kind: str, roles: tuple[str, ...] | None = None, *, literal_only: bool = False) -> int:
    n = 0
    for tm in tms:
        if roles is None or tm.role in roles:
            n += tm.literal[kind] if literal_only else tm.tags(kind)
    return n


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def tags_text(n: int, kind: str) -> str:
    return f"{n} <{kind}> tag" + ("" if n == 1 else "s")


def where_text(turns: list[str]) -> str:
    shown = ", ".join(turns[:4])
    return shown + (f" and {len(turns) - 4} more" if len(turns) > 4 else "")


def surplus(kind: str, n_tags: int, media: int, keeps: str) -> dict[str, Any]:
    return {
        "what": f"{tags_text(n_tags, kind)} but {plural(media, kind)}",
        "effect": f"{keeps} as literal '<{kind}>' text in the training prompt",
        "fix": f"remove the extra <{kind}> tags (or add the missing {kind}s)",
    }


def unread(kind: str, keys: list[str], effect: str, fix: str = "") -> dict[str, Any]:
    fix = fix or "move it into a human turn or remove it"
    return {"kind": kind, "where": where_text(keys), "effect": effect, "fix": fix}


def literal_markup(sample: Sample, consumer: Consumer) -> list[tuple[int, list[str]]]:
    """(message index, strings) for text of ``sample`` that ``consumer`` would read as tags or markup.

    Readers turn the tags and markup their own consumer interprets into slots, refs and boxes, so
    what is left in text was plain text where the record came from: written for ``consumer`` it
    would gain a meaning (a picture placed where the user only wrote about one, a box) it never had.
    """
    found: list[tuple[int, list[str]]] = []
    if not consumer.interpreted:
        return found
    for k, m in enumerate(sample.messages):
        hits: list[str] = []
        for p in m.parts:
            if p.type == "text" or p.type == "ref":
                for s in consumer.literal_markup(p.text):  # type: ignore[union-attr]
                    if s not in hits:
                        hits.append(s)
        if hits:
            found.append((k, hits))
    return found
