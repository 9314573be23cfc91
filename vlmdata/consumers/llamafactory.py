"""LLaMA-Factory 0.9.5 (sharegpt datasets) as a data consumer.

Upstream: hiyouga/LLaMA-Factory v0.9.5 ``src/llamafactory/data/converter.py``
(``SharegptDatasetConverter``: optional leading system message, then user/observation and
assistant/function_call alternating, an even number, else 'Invalid role tag' / 'Invalid message
count' and the row is skipped; ``_find_medias`` joins each path to ``media_dir``, default the
dataset_info.json folder, falling back to the raw string) and ``mm_plugin.py``
(``_validate_messages``: ``<image>``/``<video>``/``<audio>`` counted over all messages must equal
the media, else a ValueError aborts the run; ``_regularize_images`` opens files with PIL). It has
no grounding syntax of its own; vlmdata writes Qwen2-VL tokens (0-1000), or Qwen2.5-VL pixels of
the resized image with ``--qwen-model qwen2.5-vl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vlmdata.consumers.base import (
    ANSWER_ROLES,
    KINDS,
    QUERY_ROLES,
    Consumer,
    Issue,
    TurnMedia,
    plural,
    tags_text,
    unread,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView, Turn


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    for kind in KINDS:
        counted = [tm for tm in tms if tm.role != "system"]  # a leading system turn is the system prompt
        tags = sum(tm.tags(kind) for tm in counted)
        # a v1 block that carries its media ({"type": "image_url", "value": path}) is a tag and an image
        media = len(view.images if kind == "image" else view.videos) + sum(tm.payload[kind] for tm in counted)
        if tags != media:
            out.append(
                (
                    "VD101",
                    {
                        "what": f"{tags_text(tags, kind)} in the messages but {plural(media, kind)}",
                        "effect": f"LLaMA-Factory counts the tags in every message, inserts none, and raises 'The "
                        f"number of {kind}s does not match the number of <{kind}> tokens': the run aborts",
                        "fix": f"write exactly one <{kind}> per {kind}, where each belongs",
                    },
                )
            )
        system = [tm.key for tm in tms if tm.role == "system" and tm.literal[kind]]
        if system:
            out.append(("VD105", unread(kind, system, "LLaMA-Factory moves the system turn into the system prompt")))


def sequence(turns: list[Turn]) -> str | None:
    """SharegptDatasetConverter: [system], then user/observation and assistant/function_call alternating, in pairs."""
    roles = [t.role for t in turns]
    start = 1 if roles and roles[0] == "system" else 0
    body = turns[start:]
    for j, t in enumerate(body):
        expected = QUERY_ROLES if j % 2 == 0 else ANSWER_ROLES
        if t.role not in expected:
            want = "a user (or observation)" if j % 2 == 0 else "an assistant (or function_call)"
            article = "an" if t.role[0] in "aeiou" else "a"
            return f"{t.key} is {article} {t.role} turn where {want} turn must come ('Invalid role tag')"
    if not body:
        return "there is no user/assistant turn ('Invalid message count')"
    if len(body) % 2:
        return (
            f"{len(body)} turns after the system turn, an odd number: the last user turn has no answer "
            "('Invalid message count')"
        )
    return None


CONSUMER = Consumer(
    name="llamafactory",
    title="LLaMA-Factory",
    source="hiyouga/LLaMA-Factory v0.9.5",
    raw_roles=frozenset({"human", "gpt", "user", "assistant", "observation", "function_call", "system"}),
    role_names="human/gpt (or user/assistant), observation, function_call, system",
    role_effect="LLaMA-Factory logs 'Invalid role tag' and skips the row",
    system="first",
    system_effect="LLaMA-Factory logs 'Invalid role tag' and skips the row",
    sequence=sequence,
    sequence_effect="LLaMA-Factory skips the row",
    analyse_media=analyse,
    interpreted=(
        "<image>",
        "<video>",
        "<audio>",
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ),
    paths="media_dir (default: the folder of dataset_info.json), else the path as written",
    urls=False,
    url_effect="LLaMA-Factory opens media with PIL, which cannot fetch a URL: the run aborts",
    grounding="Qwen2-VL tokens 0-1000 (qwen2-vl/qwen3-vl) or Qwen2.5-VL resized pixels",
    top_keys=frozenset(
        {
            "id",
            "conversations",
            "messages",
            "images",
            "videos",
            "audios",
            "system",
            "tools",
            "chosen",
            "rejected",
            "kto_tag",
            "label",
        }
    ),
    turn_keys=frozenset({"from", "value", "role", "content"}),
)
