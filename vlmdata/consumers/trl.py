"""TRL / HF messages (typed content blocks) as a data consumer.

Upstream: huggingface/trl ``trl/data_utils.py`` (``prepare_multimodal_messages``): images are
placed by ``{"type": "image"}`` blocks; a string first user message gets every image before its
text; ``<image>`` in text is only text. Media are the ``images`` column (paths, URLs or bytes,
decoded by HF datasets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vlmdata.consumers.base import (
    KINDS,
    Consumer,
    Issue,
    TurnMedia,
    plural,
    unread,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    first_string_user = next((tm for tm in tms if tm.role == "user" and tm.string), None)
    for kind in KINDS:
        column = len(view.images if kind == "image" else view.videos)
        bare = sum(tm.bare[kind] for tm in tms)
        placeholders = bare + (column if first_string_user is not None else 0)
        if placeholders != column:
            out.append(
                (
                    "VD101",
                    {
                        "what": f'{bare} {{"type": "{kind}"}} block(s)'
                        + (f" plus {column} put before {first_string_user.key}" if first_string_user and column else "")
                        + f" for {plural(column, kind)} in the {kind}s column",
                        "effect": f"TRL raises 'Number of {kind}s provided ({column}) does not match number of {kind} "
                        f"placeholders ({placeholders})'",
                        "fix": f'give one {{"type": "{kind}"}} block per entry of {kind}s, in order',
                    },
                )
            )
        elif first_string_user is not None and column:
            out.append(
                (
                    "VD103",
                    {
                        "n": column,
                        "tag": f'{{"type": "{kind}"}}',
                        "kind": kind,
                        "where": first_string_user.key,
                        "consumer": "TRL",
                    },
                )
            )
        literal = [tm.key for tm in tms if tm.literal[kind]]
        if literal:
            fix = f'replace it with a {{"type": "{kind}"}} block (vlmdata convert --to hf does)'
            out.append(("VD105", unread(kind, literal, f"TRL places {kind}s by typed blocks only", fix)))


CONSUMER = Consumer(
    name="hf",
    title="TRL",
    source="huggingface/trl 0.24 / 1.x",
    raw_roles=frozenset({"system", "user", "assistant", "tool"}),
    role_names="system, user, assistant, tool",
    role_effect="TRL raises 'Invalid role in message'",
    system="first",
    system_effect="TRL's chat templates take the system prompt from the first message only",
    analyse_media=analyse,
    interpreted=(),
    paths="the images column (HF datasets Image feature)",
    urls=True,
    grounding="text in the model's own syntax (Qwen2-VL tokens or InternVL tags, 0-1000)",
    top_keys=frozenset({"id", "messages", "prompt", "completion", "images", "image", "videos", "video"}),
)
