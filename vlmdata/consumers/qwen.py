"""Qwen-VL fine-tuning code (``qwen-vl-finetune``) as a data consumer.

Upstream: QwenLM/Qwen3-VL @9658872 ``qwen-vl-finetune/qwenvl/data/data_processor.py``:
``_build_messages`` turns every ``from`` other than ``human`` into an assistant turn, replaces
``<image>``/``<video>`` in human turns only, inserts none and raises on a count mismatch; media
paths are joined to the dataset's ``data_path``. Grounding: Qwen2-VL/Qwen3-VL tokens in 0-1000,
Qwen2.5-VL absolute pixels of the smart-resized image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vlmdata.consumers.base import (
    KINDS,
    Consumer,
    Issue,
    TurnMedia,
    count,
    plural,
    tags_text,
    unread,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    raw = view.raw or {}
    for kind in KINDS:
        value = raw.get(kind)
        media = len(value) if isinstance(value, list) else (1 if value else 0)
        tags = count(tms, kind, ("user",), literal_only=True)
        message = mismatch_message(kind, tags, media)
        if message:
            out.append(
                (
                    "VD101",
                    {
                        "what": f"{tags_text(tags, kind)} in human turns but {plural(media, kind)}",
                        "effect": f"Qwen's loader replaces tags in human turns only, inserts none and raises "
                        f"'{message}'",
                        "fix": f"write exactly one <{kind}> per {kind} in the human turns",
                    },
                )
            )
        elsewhere = [tm.key for tm in tms if tm.role != "user" and tm.literal[kind]]
        if elsewhere:
            out.append(("VD105", unread(kind, elsewhere, "Qwen's loader replaces tags in human turns only")))


def mismatch_message(kind: str, n_tags: int, n_media: int) -> str:
    """The loader's own error text for a tag/media count mismatch (empty when they match)."""
    if n_tags > n_media:
        return f"Number of <{kind}> placeholders exceeds the number of provided {kind}s"
    if n_tags < n_media:
        return f"{n_media - n_tags} {kind}(s) remain unused (not consumed by placeholders)"
    return ""


CONSUMER = Consumer(
    name="qwen",
    title="Qwen-VL fine-tuning",
    source="QwenLM/Qwen3-VL qwen-vl-finetune @9658872",
    raw_roles=frozenset({"human", "gpt", "system"}),  # system: reported by VD111
    role_names="human, gpt",
    role_effect="Qwen's loader treats every from other than 'human' as an assistant turn: it is trained as an answer",
    system="none",
    system_effect="Qwen's loader treats it as an assistant turn and trains the model to answer with the system prompt",
    analyse_media=analyse,
    interpreted=(
        "<image>",
        "<video>",
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|box_start|>",
        "<|box_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ),
    paths="the dataset's data_path",
    urls=False,
    url_effect="Qwen's loader joins it to data_path and cannot open it",
    grounding="Qwen2-VL/Qwen3-VL tokens 0-1000, Qwen2.5-VL resized pixels",
    top_keys=frozenset({"id", "image", "video", "conversations"}),
    turn_keys=frozenset({"from", "value"}),
)
