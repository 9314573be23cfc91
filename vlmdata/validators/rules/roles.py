"""VD11x: roles and turns as the target consumer reads them: the system turn, the order of roles,
empty and unanswered turns, unknown roles.

Every check reads the lenient view (turns as written, canonical roles, the raw dict), never the
strict ``Sample``, so it still speaks when the format's reader rejects the record (VD002) and can
say what the *target* trainer would do with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vlmdata.consumers import get_consumer
from vlmdata.consumers.base import ANSWER_ROLES, QUERY_ROLES, where_text
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import raw_messages
from vlmdata.validators.view import RecordView, Turn


def _from_list(view: RecordView) -> bool:
    """Turns read from a messages/conversations list (legacy query/response rows have fixed roles)."""
    return raw_messages(view.raw) is not None


_ROLES_CACHE: list[Any] = [None, None, None]  # (view, target, turns): four rules ask


def _unknown_roles(view: RecordView, ctx: ValidationContext) -> list[Turn]:
    if _ROLES_CACHE[0] is view and _ROLES_CACHE[1] == ctx.target:
        return _ROLES_CACHE[2]
    bad: list[Turn] = []
    if _from_list(view):
        known = get_consumer(ctx.target).raw_roles
        bad = [t for t in view.turns if not isinstance(t.raw_role, str) or t.raw_role not in known]
    _ROLES_CACHE[:] = [view, ctx.target, bad]
    return bad


@rule(
    "VD110",
    "system-not-first",
    "error",
    "record",
    "system turn at {where}: {effect}; move it to the front (one system turn) or merge it into a user turn",
    what="Reports a system turn that is not the first turn, for targets that accept a system turn only first "
    "(ms-swift, LLaMA-Factory, InternVL internvl2_5).",
    why="ms-swift takes the system prompt from messages[0] only and fails the role assertion on any other "
    "system message (the row is deleted); LLaMA-Factory logs 'Invalid role tag' and skips the row; InternVL "
    "raises NotImplementedError and loads a random record instead (docs/formats.md#swift, "
    "docs/consumers.md#roles-and-system, docs/formats.md#sharegpt).",
    example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}, ...]}',
    fix="Move the system turn to the front, or merge its text into the next user turn.",
)
def system_not_first(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    consumer = get_consumer(ctx.target)
    if consumer.system != "first" or ctx.target == "hf":
        return
    late = [t.key for k, t in enumerate(view.turns) if k and t.role == "system"]
    if late:
        yield {"where": where_text(late), "effect": consumer.system_effect}


@rule(
    "VD111",
    "system-turn-unsupported",
    "error",
    "record",
    "system turn at {where}: {effect}; drop it or merge it into the first human turn "
    "(vlmdata convert --system drop|merge)",
    what="Reports any system turn for targets without a per-record system prompt: LLaVA-1.5 and Qwen's "
    "fine-tuning code.",
    why="LLaVA's role map has only human/gpt: a system turn raises KeyError and stops the run. Qwen's "
    "`_build_messages` turns every `from` other than 'human' into an assistant turn: the system prompt is "
    "trained on as an answer, silently (docs/consumers.md#roles-and-system, docs/formats.md#qwen).",
    example='{"image": "a.jpg", "conversations": [{"from": "system", "value": "Be brief."}, ...]}',
    fix="Drop the system turn or merge it into the first human turn (`vlmdata convert --system merge`).",
)
def system_turn_unsupported(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    consumer = get_consumer(ctx.target)
    if consumer.system != "none":
        return
    found = [t.key for t in view.turns if t.role == "system"]
    if found:
        yield {"where": where_text(found), "effect": consumer.system_effect}


@rule(
    "VD112",
    "role-sequence-rejected",
    "error",
    "record",
    "{what}: {effect}; {fix}",
    what="Checks the order of turns for targets that refuse other orders: LLaMA-Factory (an optional leading "
    "system turn, then user/assistant pairs, an even number) and LLaVA-1.5 (human/gpt alternating).",
    why="LLaMA-Factory logs 'Invalid role tag' or 'Invalid message count' and skips the row, so the trained "
    "sample count silently shrinks; LLaVA's `preprocess` asserts `role == conv.roles[j % 2]` and the run stops "
    "(docs/consumers.md#roles-and-system, docs/formats.md#sharegpt).",
    example='{"conversations": [{"from": "human", "value": "Hi"}, {"from": "human", "value": "Hello?"},\n'
    ' {"from": "gpt", "value": "Hi."}]}',
    fix="Merge consecutive turns of one role, add the missing answer, or drop the unanswered last question.",
)
def role_sequence_rejected(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    consumer = get_consumer(ctx.target)
    if consumer.sequence is None or not view.turns or _unknown_roles(view, ctx):
        return
    if any(t.role == "system" for t in view.turns[1 if consumer.system == "first" else 0 :]):
        return  # VD110 / VD111 report it
    problem = consumer.sequence(view.turns)
    if problem:
        yield {
            "what": problem,
            "effect": consumer.sequence_effect,
            "fix": "merge consecutive turns of one role, add the missing turn, or drop the unanswered last question",
        }


@rule(
    "VD113",
    "role-sequence-rewritten",
    "warning",
    "record",
    "{what}: {effect}; {fix}",
    what="Reports role orders the target silently rewrites: ms-swift merges consecutive user (or assistant) "
    "messages and inserts an empty user turn before a leading assistant turn; LLaVA drops a leading non-human "
    "turn.",
    why="The record still trains, but not as written: merged turns lose their boundary (two answers become one "
    "long answer), a leading assistant turn becomes an answer to an empty question, LLaVA discards the first "
    "turn (docs/formats.md#swift, docs/consumers.md#roles-and-system). An assistant-only record is ms-swift "
    "pretraining data and is not reported.",
    example='{"messages": [{"role": "user", "content": "Hi"}, {"role": "user", "content": "<image>What is it?"},\n'
    ' {"role": "assistant", "content": "A cat."}], "images": ["a.jpg"]}',
    fix="Merge the turns yourself, or add the missing turn.",
)
def role_sequence_rewritten(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    consumer = get_consumer(ctx.target)
    turns = [t for t in view.turns if t.role != "system"]
    if consumer.rewrites is None or not turns or _unknown_roles(view, ctx):
        return
    yield from consumer.rewrites(view.turns)


@rule(
    "VD114",
    "empty-turn",
    "warning",
    "record",
    "{where} is an empty {role} turn: {effect}; write its text or remove the turn",
    what="Reports turns whose content is empty or only whitespace (media tags count as content).",
    why="An empty assistant turn trains the model to answer with nothing (it learns to stop at once); an empty "
    "user turn is a question without text; an empty system turn replaces the template's default system prompt "
    "with nothing in ms-swift. Empty turns are usually left over from a failed conversion or a truncated export.",
    example='{"messages": [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": " "}]}',
    fix="Fill the turn in, or remove it (with its question, for an empty answer).",
)
def empty_turn(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    msgs = raw_messages(view.raw)
    for k, t in enumerate(view.turns):
        if t.text.strip():
            continue
        raw = msgs[k] if msgs is not None and k < len(msgs) else None
        if msgs is None and t.key == "query" and view.raw is not None and view.raw.get("query") is None:
            continue  # a response-only legacy row: no user turn was written
        missing = msgs is not None and t.content_key is None
        if missing and (not isinstance(raw, dict) or "text" in raw):
            continue  # not a message object (VD002), or VD122's misnamed key
        if t.role == "assistant":
            effect = "the model is trained to answer with nothing"
        elif t.role == "system":
            effect = "an empty system prompt can replace the template's default one"
        else:
            effect = "the model is trained to answer a prompt without text"
        if missing:
            effect = "it has no content key at all; " + effect
        yield {"where": t.key, "role": t.role, "effect": effect}


@rule(
    "VD115",
    "trailing-user-turn",
    "warning",
    "record",
    "the conversation ends with {where}, a {role} turn without answer: {effect}; add the answer or drop the turn",
    what="Reports conversations whose last turn is a user (or tool) turn, or that have no assistant turn at all. "
    "(For LLaMA-Factory this is an odd message count, reported by VD112.)",
    why="For fine-tuning the last question trains nothing: ms-swift accepts such rows only as inference/GRPO "
    "prompts (it appends an empty answer), InternVL, LLaVA, Qwen and TRL mask it out. It usually means the "
    "answer was lost in an export or a conversion.",
    example='{"messages": [{"role": "user", "content": "<image>What is it?"}], "images": ["a.jpg"]}',
    fix="Add the answer, or drop the unanswered question (keep such rows in a separate prompt-only file).",
)
def trailing_user_turn(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.target == "llamafactory" or _unknown_roles(view, ctx):
        return
    turns = [t for t in view.turns if t.role != "system"]
    if not turns or turns[-1].role not in QUERY_ROLES:
        return
    answered = any(t.role in ANSWER_ROLES for t in turns)
    if ctx.target == "swift":
        effect = "ms-swift treats the row as an inference prompt and trains nothing on " + (
            "that turn" if answered else "it (there is no assistant turn at all)"
        )
    else:
        effect = f"{get_consumer(ctx.target).title} trains nothing on " + (
            "it" if answered else "the record (there is no assistant turn at all)"
        )
    yield {"where": turns[-1].key, "role": turns[-1].role, "effect": effect}


@rule(
    "VD116",
    "unknown-role",
    "error",
    "record",
    "{where} has role {role}: {effect}; use {known}",
    what="Reports role values (`from`/`role`) the target does not know.",
    why="ms-swift deletes the row; LLaMA-Factory skips it ('Invalid role tag'); InternVL raises "
    "NotImplementedError and loads a random record; LLaVA raises KeyError; Qwen's loader silently trains any "
    "non-'human' turn as an assistant answer; TRL raises 'Invalid role in message'.",
    example='{"conversations": [{"from": "user", "value": "<image>Hi"}, {"from": "gpt", "value": "Hi"}]}   '
    "<- InternVL wants 'human'",
    fix="Rename the roles to the target's names (`vlmdata convert` writes them).",
)
def unknown_role(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    bad = _unknown_roles(view, ctx)
    if bad:
        roles = sorted({repr(t.raw_role) for t in bad})
        yield {
            "where": where_text([t.key for t in bad]),
            "role": roles[0] if len(roles) == 1 else ", ".join(roles),
            "effect": get_consumer(ctx.target).role_effect,
            "known": get_consumer(ctx.target).role_names,
        }
