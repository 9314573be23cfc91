"""VD12x: record ids and keys: repeated ids, keys the target drops, turns with a misnamed text key.

Every check reads the lenient view (turns as written, canonical roles, the raw dict), never the
strict ``Sample``, so it still speaks when the format's reader rejects the record (VD002) and can
say what the *target* trainer would do with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from vlmdata.consumers import get_consumer
from vlmdata.consumers.base import MESSAGE_LISTS, where_text
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import raw_messages
from vlmdata.validators.view import RecordView


def _id_key(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(value).encode()


@rule(
    "VD120",
    "duplicate-id",
    "warning",
    "record",
    "id {id!r} was already used by the record at {first}: give every record its own id (a repeated row "
    "is trained twice)",
    what="Reports a record id that an earlier record of the same file already has.",
    why="LLaVA's data format requires unique ids, and ids are how a report, an eval split or a deduplication pass "
    "names a record. A repeated id usually means a row was appended twice (a conversion run twice, files "
    "concatenated): the model then sees that example twice per epoch.",
    example='{"id": "42", ...}\n{"id": "42", ...}',
    fix="Remove the duplicate row, or renumber the ids.",
)
def duplicate_id(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if view.id is None:
        return
    seen = ctx.file_state.setdefault("vd120_ids", {})
    key = _id_key(view.id)
    first = seen.get(key)
    if first is None:
        seen[key] = f"line {view.line}" if view.line is not None else f"index {view.index}"
        return
    yield {"id": view.id, "first": first}


@rule(
    "VD121",
    "unknown-key",
    "info",
    "record",
    "{what} {keys} {are} not read by {consumer} and dropped; remove {them} or keep {them} knowingly "
    "(reported once per file)",
    what="Reports top-level keys the target never reads, and per-message keys it removes (ms-swift keeps only "
    "role/content/loss/loss_scale in a message). Each key is reported once per file, at its first record.",
    why="Nothing fails, which is the problem: data that looks carried along is silently gone, e.g. ms-swift's "
    "`_check_messages` deletes `name` or `reasoning_content` from messages (docs/formats.md#swift, "
    "docs/consumers.md#dropped-keys), ms-swift drops InternVL's `width`/`height`, InternVL ignores ms-swift's "
    "`objects`.",
    example='{"messages": [{"role": "assistant", "content": "...", "reasoning_content": "..."}], ...}',
    fix="Move the information where the target reads it (e.g. into the content), or drop it; ignore this rule "
    "(`--ignore VD121`) for metadata you keep on purpose.",
)
def unknown_key(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    raw = view.raw
    if not isinstance(raw, dict):
        return
    seen = ctx.file_state.setdefault("vd121_keys", set())
    consumer = get_consumer(ctx.target)
    known = consumer.top_keys
    prefixes = consumer.top_prefixes
    top = [k for k in raw if k not in known and not (prefixes and k.startswith(prefixes)) and ("top", k) not in seen]
    if top:
        seen.update(("top", k) for k in top)
        yield _keys_hit("record key", top, ctx)
    turn_known = consumer.turn_keys
    msgs = raw_messages(raw)
    if turn_known is None or msgs is None:
        return
    extra: list[str] = []
    for m in msgs:
        if type(m) is not dict or m.keys() <= turn_known:
            continue
        has_content = "value" in m or "content" in m
        for k in m.keys() - turn_known:
            if ("turn", k) not in seen and (has_content or k != "text"):
                seen.add(("turn", k))
                extra.append(k)
    if extra:
        yield _keys_hit("message key", extra, ctx)


def _keys_hit(what: str, keys: list[str], ctx: ValidationContext) -> dict[str, Any]:
    one = len(keys) == 1
    return {
        "what": what if one else what + "s",
        "keys": ", ".join(repr(k) for k in keys),
        "are": "is" if one else "are",
        "them": "it" if one else "them",
        "consumer": get_consumer(ctx.target).title,
    }


def _text_keyed(msgs: list[Any]) -> list[int]:
    return [
        k for k, m in enumerate(msgs) if isinstance(m, dict) and "text" in m and "value" not in m and "content" not in m
    ]


def _content_key(msgs: list[Any]) -> str:
    for m in msgs:
        if isinstance(m, dict):
            if "value" in m:
                return "value"
            if "content" in m:
                return "content"
    first = next((m for m in msgs if isinstance(m, dict)), {})
    return "value" if "from" in first else "content"


def fix_text_key(record: dict[str, Any], ctx: ValidationContext) -> dict[str, Any] | None:
    key = next((k for k in MESSAGE_LISTS if isinstance(record.get(k), list)), None)
    if key is None:
        return None
    msgs = record[key]
    bad = set(_text_keyed(msgs))
    if not bad:
        return None
    name = _content_key(msgs)
    fixed = [{(name if k2 == "text" else k2): v for k2, v in m.items()} if k in bad else m for k, m in enumerate(msgs)]
    return {k: (fixed if k == key else v) for k, v in record.items()}


@rule(
    "VD122",
    "turn-text-key",
    "error",
    "record",
    "{where} {has} 'text' instead of '{key}': {consumer} reads '{key}' and finds no content; rename the key to '{key}'",
    what="Reports turns that carry their text under 'text' with no 'value'/'content' key (the defect of the "
    "InternVL FAQ's multi-image example).",
    why="InternVL, LLaVA and Qwen read `turn['value']`: a KeyError that InternVL answers by skipping the record "
    "and loading a random one (printing only), LLaVA by stopping the run. ms-swift finds no content and deletes "
    "the row. The answer is lost either way.",
    example='{"image": ["a.jpg"], "conversations": [{"from": "human", "value": "<image>\\nWhat is it?"},\n'
    ' {"from": "gpt", "text": "A cat."}]}',
    fix="Rename 'text' to 'value' (or 'content' in role/content messages).",
    fixer=fix_text_key,
)
def turn_text_key(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    msgs = raw_messages(view.raw)
    if msgs is None:
        return
    bad = _text_keyed(msgs)
    if bad:
        keys = [view.turns[k].key if k < len(view.turns) else str(k) for k in bad]
        yield {
            "where": where_text(keys),
            "has": "has" if len(bad) == 1 else "have",
            "key": _content_key(msgs),
            "consumer": get_consumer(ctx.target).title,
        }
