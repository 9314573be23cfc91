"""VD10x: media tags as the target consumer counts and places them, literal markup, remote media.

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

from vlmdata.consumers import get_consumer
from vlmdata.consumers.base import KINDS, MEDIA_BLOCKS, TAGS, Issue, TurnMedia
from vlmdata.media.paths import is_url
from vlmdata.validators.context import ValidationContext
from vlmdata.validators.registry import rule
from vlmdata.validators.rules.common import raw_messages
from vlmdata.validators.view import RecordView

# --------------------------------------------------------------------------- the media of each turn


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
        if is_url(path):
            yield {"kind": kind, "url": path[:200], "effect": consumer.url_effect}
            return
