"""ms-swift 4.x as a data consumer.

Upstream: modelscope/ms-swift v4.6.0 ``swift/dataset/preprocessor/core.py`` (``MessagesPreprocessor``
role aliases, ``_check_messages``: a system message only first) and ``swift/template/base.py``
(``_add_default_tags``: missing media tags are prepended to the first non-system message unless a
user message is a block list; surplus tags only warn and stay literal; ``<ref-object>``/``<bbox>``
are filled from ``objects``). Relative media paths resolve against the working directory (then
``ROOT_IMAGE_DIR``); http(s) URLs and base64 are loaded as such.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from vlmdata.consumers.base import (
    KINDS,
    TAGS,
    Consumer,
    Issue,
    TurnMedia,
    count,
    plural,
    surplus,
    tags_text,
    where_text,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView, Turn


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    for kind in KINDS:
        tags = count(tms, kind)
        media = len(view.images if kind == "image" else view.videos) + sum(tm.payload[kind] for tm in tms)
        if tags < media:
            if any(tm.role == "user" and not tm.string for tm in tms):
                out.append(
                    (
                        "VD101",
                        {
                            "what": f"{tags_text(tags, kind)} for {plural(media, kind)}, and a user message is a block "
                            "list",
                            "effect": "ms-swift inserts no missing tag when any user content is a block list: the "
                            f"{kind}s without a tag have no place in the prompt and the row fails to encode",
                            "fix": f'add a {{"type": "{kind}"}} block (or a <{kind}> tag) for every {kind}',
                        },
                    )
                )
            elif tags == 0:
                first = next((tm.key for tm in tms if tm.role != "system"), "the first message")
                fields = {"n": media, "tag": TAGS[kind], "kind": kind, "where": first, "consumer": "ms-swift"}
                out.append(("VD103", fields))
            else:
                out.append(("VD104", {"tags": tags, "media": media, "kind": kind, "missing": media - tags}))
        elif tags > media:
            out.append(("VD102", surplus(kind, tags, media, "ms-swift warns and keeps the extra tags")))


# ms-swift's role aliases (MessagesPreprocessor.role_mapping plus its canonical names).
ROLE_ALIASES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "system": "system",
    "tool_call": "tool_call",
    "function_call": "tool_call",
    "tool_response": "tool_response",
    "tool": "tool_response",
    "function_response": "tool_response",
    "observation": "tool_response",
    "observations": "tool_response",
}


def rewrites(turns: list[Turn]) -> Iterator[dict[str, Any]]:
    """MessagesPreprocessor merges consecutive user (or assistant) messages; the template puts an empty
    user turn before a leading assistant turn (an assistant-only row is pretraining data: not reported)."""
    body = [t for t in turns if t.role != "system"]
    runs = [(a, b) for a, b in pairwise(body) if a.role == b.role and a.role in ("user", "assistant")]
    if runs:
        roles = "/".join(sorted({a.role for a, _b in runs}))
        yield {
            "what": f"consecutive {roles} messages ({where_text([f'{a.key}+{b.key}' for a, b in runs])})",
            "effect": "ms-swift merges each run into one message (the texts are concatenated without a separator)",
            "fix": "merge them yourself or add the missing turn between them",
        }
    if body[0].role == "assistant" and any(t.role == "user" for t in body):
        yield {
            "what": f"the conversation starts with an assistant turn ({body[0].key})",
            "effect": "ms-swift inserts an empty user turn before it and trains it as the answer to nothing",
            "fix": "add the question that turn answers, or drop the turn",
        }


CONSUMER = Consumer(
    name="swift",
    title="ms-swift",
    source="modelscope/ms-swift v4.6.0",
    raw_roles=frozenset(ROLE_ALIASES),
    role_names="user, assistant, system, tool_call, tool_response (or human, gpt, tool, observation)",
    role_effect="ms-swift fails on the role and deletes the row",
    system="first",
    system_effect="ms-swift accepts a system message only first; the role assertion fails and the row is deleted",
    rewrites=rewrites,
    analyse_media=analyse,
    interpreted=("<image>", "<video>", "<audio>", "<ref-object>", "<bbox>"),
    paths="the working directory of the training run (then ROOT_IMAGE_DIR)",
    urls=True,
    grounding="objects {ref, bbox, bbox_type} filling <ref-object>/<bbox>",
    top_keys=frozenset(
        {
            "id",
            "messages",
            "conversation",
            "conversations",
            "images",
            "image",
            "videos",
            "video",
            "audios",
            "audio",
            "tools",
            "objects",
            "system",
            "system_prompt",
            "query",
            "prompt",
            "input",
            "instruction",
            "question",
            "problem",
            "response",
            "answer",
            "output",
            "targets",
            "target",
            "answer_key",
            "answers",
            "solution",
            "text",
            "completion",
            "content",
            "history",
            "rejected_response",
            "label",
            "channel",
            "margin",
            "teacher_prompt",
            "chat_template_kwargs",
        }
    ),
    top_prefixes=("rejected_", "positive_", "negative_"),
    turn_keys=frozenset({"role", "content", "from", "value", "loss", "loss_scale"}),
)
