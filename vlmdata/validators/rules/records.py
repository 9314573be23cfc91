"""VD1: records as the target consumer reads them: media tags, roles and turns, ids, keys.

Every check reads the lenient view (turns as written, canonical roles, the raw dict), never the
strict ``Sample``, so it still speaks when the format's reader rejects the record (VD002) and can
say what the *target* trainer would do with it. The counting rules follow docs/consumers.md#media-tags:

========= ============================ =============================================================
target    which tags count             fewer tags than media / more tags than media
========= ============================ =============================================================
internvl  human turns                  single image/video: inserted in conversations[0]; several
                                       images: the record fails its assertion / extras stay text
llamafac. every message (not system)   exact equality, else the run aborts
swift     every message and the system prepended to the first message / extras stay text
llava     every turn, one image        no insertion: the image is unused / tags of a turn collapse
qwen      human turns                  exact equality, else the loader raises
hf        {"type": "image"} blocks     a string first user message gets every image before it
========= ============================ =============================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from vlmdata.consumers import get_consumer
from vlmdata.consumers.base import (
    ANSWER_ROLES,
    KINDS,
    MEDIA_BLOCKS,
    MESSAGE_LISTS,
    QUERY_ROLES,
    TAGS,
    Issue,
    TurnMedia,
    where_text,
)
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.view import RecordView, Turn

# --------------------------------------------------------------------------- the raw turns


def raw_messages(raw: dict[str, Any] | None) -> list[Any] | None:
    if type(raw) is not dict:
        return None
    for k in MESSAGE_LISTS:
        value = raw.get(k)
        if type(value) is list:
            return value
    return None


def _has_payload(block: dict[str, Any], kind: str) -> bool:
    return any(block.get(k) not in (None, "") for k in (kind, "path", "url", "value"))


def _scan(role: str, key: str, content: Any) -> TurnMedia:
    tm = TurnMedia(role, key, not isinstance(content, list))
    if isinstance(content, str):
        for kind in KINDS:
            tm.literal[kind] = content.count(TAGS[kind])
    elif isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype == "text":
                text = block.get("text", block.get("value"))
                if isinstance(text, str):
                    for kind in KINDS:
                        tm.literal[kind] += text.count(TAGS[kind])
            elif isinstance(btype, str) and btype in MEDIA_BLOCKS:
                kind = MEDIA_BLOCKS[btype]
                (tm.payload if _has_payload(block, btype) else tm.bare)[kind] += 1
    return tm


def turn_media(view: RecordView) -> list[TurnMedia]:
    """One TurnMedia per turn of the view (HF prompt/completion rows read from the raw record)."""
    msgs = raw_messages(view.raw)
    if msgs is None and isinstance(view.raw, dict) and not view.turns:
        out = []
        for name in ("prompt", "completion"):
            value = view.raw.get(name)
            if isinstance(value, str):
                out.append(_scan("user" if name == "prompt" else "assistant", name, value))
            elif isinstance(value, list):
                for i, m in enumerate(value):
                    if isinstance(m, dict):
                        role = m.get("role")
                        role = "tool_response" if role == "tool" else str(role)
                        out.append(_scan(role, f"{name}[{i}]", m.get("content")))
        return out
    out = []
    for i, turn in enumerate(view.turns):
        raw = msgs[i] if msgs is not None and i < len(msgs) else None
        if msgs is None:
            content: Any = turn.text
        elif isinstance(raw, dict) and turn.content_key:
            content = raw.get(turn.content_key)
        else:
            content = None
        out.append(_scan(turn.role, turn.key, content))
    return out


# --------------------------------------------------------------------------- media tag verdicts

_CACHE: list[Any] = [None, None, None]  # (view, target, issues): the VD10x rules share one analysis


def media_issues(view: RecordView, ctx: ValidationContext) -> list[Issue]:
    if _CACHE[0] is view and _CACHE[1] == ctx.target:
        return _CACHE[2]
    issues: list[Issue] = []
    if isinstance(view.raw, dict):
        tms = turn_media(view)
        get_consumer(ctx.target).analyse_media(view, tms, issues)
    _CACHE[:] = [view, ctx.target, issues]
    return issues


def _issues(code: str, view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    for c, fields in media_issues(view, ctx):
        if c == code:
            yield dict(fields, consumer=fields.get("consumer", get_consumer(ctx.target).title))


# --------------------------------------------------------------------------- fixers


def _listify(record: dict[str, Any]) -> dict[str, Any] | None:
    """``image: "x"`` -> ``["x"]`` (width/height -> width_list/height_list), keys kept in place."""
    if not isinstance(record.get("image"), str) or not record["image"]:
        return None
    out: dict[str, Any] = {}
    for k, v in record.items():
        if k == "image":
            out[k] = [v]
        elif k == "width":
            out["width_list"] = [v]
        elif k == "height":
            out["height_list"] = [v]
        else:
            out[k] = v
    return out


def fix_tag_not_in_first_turn(record: dict[str, Any], ctx: ValidationContext) -> dict[str, Any] | None:
    return _listify(record)


def fix_first_turn_not_human(record: dict[str, Any], ctx: ValidationContext) -> dict[str, Any] | None:
    out = _listify(record)
    turns = out.get("conversations") if out else None
    if out is None or not isinstance(turns, list):
        return None
    humans = [t for t in turns if isinstance(t, dict) and t.get("from") == "human" and isinstance(t.get("value"), str)]
    if not humans:
        return None
    if not any("<image>" in t["value"] for t in humans):
        first = humans[0]
        out["conversations"] = [
            dict(t, value="<image>\n" + t["value"]) if t is first else t
            for t in turns  # the tag InternVL meant
        ]
    return out


# --------------------------------------------------------------------------- VD10x: media tags

_COUNT_WHY = (
    "Each trainer pairs tags with media its own way (docs/consumers.md#media-tags): LLaMA-Factory counts every message "
    "and aborts the whole run on a mismatch; Qwen's loader raises; InternVL asserts on multi-image records and "
    "silently skips them (loading a random record instead); LLaVA never inserts a tag, so an image without one is "
    "silently unused; TRL raises when the image blocks and the images column differ."
)


@rule(
    "VD101",
    "media-tag-mismatch",
    "error",
    "record",
    "{what}: {effect}; {fix}",
    what="Counts `<image>`/`<video>` tags against the record's media by the counting rule of the target "
    "(`--target`): which turns count, whether missing tags are inserted, what happens to extras. Reports the "
    "records the target rejects, skips, or trains without their media.",
    why=_COUNT_WHY,
    example='{"messages": [{"role": "user", "content": "Describe it."}, {"role": "assistant", "content": "A cat."}],\n'
    ' "images": ["cat.jpg"]}      <- --target llamafactory: 0 <image> tags for 1 image',
    fix="Write one tag per media item where the target reads tags (human turns for InternVL and Qwen, any message "
    'for LLaMA-Factory and ms-swift); for TRL, one `{"type": "image"}` block per image.',
)
def media_tag_mismatch(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _issues("VD101", view, ctx)


@rule(
    "VD102",
    "surplus-media-tags",
    "warning",
    "record",
    "{what}: {effect}; {fix}",
    what="Reports more `<image>`/`<video>` tags than media where the target does not fail but keeps the extra "
    "tags as literal text (ms-swift, InternVL), or collapses several tags of a turn into one (LLaVA). A single "
    "LLaVA `<image>` at the end of a turn is not reported: LLaVA moves it to the start, and LLaVA-Instruct's own "
    "data relies on that.",
    why="ms-swift only warns ('We will only replace the frontmost media_tags ...') and InternVL's internvl2_5 "
    "style replaces tags up to the image count: the rest is trained on as the literal string '<image>'. LLaVA "
    "removes every `<image>` of a turn and puts one at its start, so interleaved positions are lost.",
    example='{"messages": [{"role": "user", "content": "<image><image>Compare."}, ...], "images": ["a.jpg"]}',
    fix="Remove the extra tags, or add the media they stand for.",
)
def surplus_media_tags(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _issues("VD102", view, ctx)


@rule(
    "VD103",
    "media-tags-inserted",
    "info",
    "record",
    "{n} {kind}(s) and no tag: {consumer} puts {n} {tag} in front of {where}; write the tags where the {kind}s "
    "belong if their position matters",
    what="Reports records that rely on the target inserting every tag: ms-swift prepends missing tags to the "
    "first non-system message; TRL puts all images before the text of the first string user message.",
    why="Nothing fails, but the media always land at the start of the first message: a multi-turn record whose "
    "image belongs to a later question, or interleaved text and images, is trained differently than written. "
    "Converting to LLaMA-Factory, Qwen or LLaVA (which insert nothing) breaks such records.",
    example='{"messages": [{"role": "user", "content": "What is this?"}, ...], "images": ["a.jpg"]}',
    fix="Write the tags (or image blocks) explicitly; `vlmdata convert` does this for every record.",
)
def media_tags_inserted(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _issues("VD103", view, ctx)


@rule(
    "VD104",
    "partial-media-tags",
    "warning",
    "record",
    "{tags} <{kind}> tag(s) for {media} {kind}s: ms-swift prepends the {missing} missing tag(s) to the first "
    "message, so they take the FIRST {kind}s and the tags you wrote get later ones; write one tag per {kind}",
    what="Reports ms-swift records with some, but fewer, tags than media.",
    why="ms-swift's `_add_default_tags` prepends the missing tags to the first non-system message and then "
    "replaces tags left to right: the written tags are paired with the wrong media (e.g. 'Image-2: <image>' gets "
    "the third image), silently.",
    example='{"messages": [{"role": "user", "content": "Image-1: <image> vs the rest?"}, ...],\n'
    ' "images": ["a.jpg", "b.jpg", "c.jpg"]}',
    fix="Write one tag per media item.",
)
def partial_media_tags(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.target == "swift":
        yield from _issues("VD104", view, ctx)


@rule(
    "VD105",
    "media-tag-in-unread-turn",
    "warning",
    "record",
    "<{kind}> in {where}: {effect}, so it stays literal text there; {fix}",
    what="Reports `<image>`/`<video>` tags in turns the target does not replace tags in: assistant and system "
    "turns for InternVL and Qwen, the system turn for LLaMA-Factory, any text for TRL (which uses typed blocks).",
    why="Such a tag is neither an image slot nor an error: the model is trained on the string '<image>' "
    "(an assistant turn teaches it to print the tag). InternVL and Qwen then also count one tag fewer than "
    "written.",
    example='{"image": "a.jpg", "conversations": [{"from": "human", "value": "What is it?"},\n'
    ' {"from": "gpt", "value": "<image> a cat"}]}   <- --target internvl',
    fix='Put the tag in a human turn (or a `{"type": "image"}` block for TRL), or remove it.',
)
def media_tag_in_unread_turn(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    yield from _issues("VD105", view, ctx)


@rule(
    "VD106",
    "internvl-tag-not-in-first-turn",
    "error",
    "record",
    "single-{kind} record with its {tag} in {where}, not in conversations[0]: InternVL checks conversations[0] "
    "only, adds a second {tag} there and leaves yours as literal text; {fix}",
    what="For `--target internvl`: a single image (`image` is a string) or video whose tag is in a later human turn.",
    why="InternVL's single-image path (`multi_modal_get_item`) prepends '<image>\\n' to conversations[0] when "
    "that turn has none, without looking further (docs/consumers.md#media-tags): the image moves to the first "
    "question and the real tag is trained on as text. The multi-image path takes tags as written.",
    example='{"image": "a.jpg", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hi"},\n'
    ' {"from": "human", "value": "<image>\\nWhat is it?"}, {"from": "gpt", "value": "A cat."}]}',
    fix='Write the image as a one-element list: `"image": ["a.jpg"]` (and `width_list`/`height_list` for '
    "`width`/`height`).",
    fixer=fix_tag_not_in_first_turn,
)
def internvl_tag_not_in_first_turn(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.target == "internvl":
        yield from _issues("VD106", view, ctx)


@rule(
    "VD107",
    "internvl-first-turn-not-human",
    "error",
    "record",
    "single-{kind} record whose conversations[0] is a {role} turn without {tag}: InternVL puts '{tag}\\n' into "
    "that {role} turn {effect}; {fix}",
    what="For `--target internvl`: a single image (`image` is a string) or video whose conversations[0] is a "
    "system (or gpt) turn without the tag.",
    why="InternVL's insertion looks at conversations[0] whatever its role: with a leading system turn the tag "
    "lands in the system prompt, which internvl2_5 never scans for tags. With no tag in a human turn the record "
    "fails the image-count assertion and is skipped (a random record is loaded instead); with one, the system "
    "prompt carries a literal '<image>'.",
    example='{"image": "a.jpg", "conversations": [{"from": "system", "value": "Be brief."},\n'
    ' {"from": "human", "value": "What is it?"}, {"from": "gpt", "value": "A cat."}]}',
    fix='Write the image as a one-element list (`"image": ["a.jpg"]`) with one `<image>` in the first human '
    "turn: the multi-image path inserts nothing.",
    fixer=fix_first_turn_not_human,
)
def internvl_first_turn_not_human(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if ctx.target == "internvl":
        yield from _issues("VD107", view, ctx)


@rule(
    "VD108",
    "literal-markup",
    "error",
    "record",
    "{where} holds {strings} as plain text, which {consumer} reads as a media tag or grounding markup: it would "
    "place a picture or a box where the text only spoke of one; reword the text (e.g. 'image' for '<image>') "
    "or remove it",
    what="Reports text that the record's own format reads as plain text (an HF/TRL text block, ms-swift prose) "
    "but that the target consumer interprets: `<image>`/`<video>` tags, InternVL `<ref>`/`<box>`, Qwen "
    "`<|box_start|>` tokens, ms-swift `<ref-object>`/`<bbox>` placeholders. `vlmdata convert` rejects such records "
    "with this code instead of writing them.",
    why="Written to a tag format the literal text becomes a real tag: LLaMA-Factory aborts the run on the extra "
    "placeholder ('The number of images does not match'), ms-swift and InternVL put the picture where the user only "
    "wrote about it; markup becomes boxes or special tokens the data never meant. None of these consumers has a way "
    "to escape such text.",
    example='{"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What does '
    '<image> mean in HTML?"}]}, ...]}   <- --target llamafactory',
    fix="Reword the text so that it no longer spells the tag or markup, or remove it.",
)
def literal_markup_rule(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    if view.sample is None:
        return
    from vlmdata.validators.check import markup_hit

    hit = markup_hit(view.sample, ctx.target)
    if hit is not None:
        yield hit


@rule(
    "VD109",
    "remote-media-unsupported",
    "error",
    "record",
    "{kind} {url!r} is a URL: {effect}; download it and write the local path (or target a consumer that fetches "
    "URLs: ms-swift, TRL)",
    what="Reports http(s) media URLs for targets whose loaders open local files only: InternVL, LLaMA-Factory, "
    "LLaVA-1.5 and Qwen's fine-tuning code. `vlmdata convert` refuses to write such records for those targets.",
    why="InternVL joins the URL to its root, fails to open it and silently trains a random other record instead; "
    "LLaMA-Factory opens media with PIL, which cannot fetch a URL, and the whole run aborts; LLaVA and Qwen join "
    "it to their image folder and fail. ms-swift and TRL (HF datasets) fetch URLs themselves.",
    example='{"image": "https://example.com/cat.jpg", "conversations": [...]}   <- --target internvl',
    fix="Download the media and point the record at the local copy.",
)
def remote_media_unsupported(view: RecordView, ctx: ValidationContext) -> Iterator[dict[str, Any]]:
    consumer = get_consumer(ctx.target)
    if consumer.urls:
        return
    media = [("image", p) for p in view.images] + [("video", p) for p in view.videos] + view.block_media
    for kind, path in media:
        if path.startswith(("http://", "https://")):
            yield {"kind": kind, "url": path[:200], "effect": consumer.url_effect}
            return


# --------------------------------------------------------------------------- VD11x: roles and turns


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


# --------------------------------------------------------------------------- VD12x: ids and keys


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
