"""LLaVA-1.5 (``llava/train/train.py``) as a data consumer.

Upstream: haotian-liu/LLaVA @c121f04 ``llava/train/train.py``: one image path string per record,
``os.path.join(image_folder, image)`` opened with PIL; ``preprocess_multimodal`` moves a turn's
``<image>`` to its start and inserts none; ``preprocess`` drops a leading non-human turn and
asserts human/gpt alternation; the role map has only human/gpt (a system turn is a KeyError).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vlmdata.consumers.base import (
    Consumer,
    Issue,
    TurnMedia,
    surplus,
    tags_text,
    where_text,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView, Turn


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    image = (view.raw or {}).get("image")
    with_tags = [tm for tm in tms if tm.literal["image"]]
    if isinstance(image, list) and image:
        out.append(
            (
                "VD101",
                {
                    "what": f"image is a list of {len(image)}",
                    "effect": "LLaVA-1.5 takes one image path string per record; os.path.join fails on a list and "
                    "the run stops",
                    "fix": "write one image path (one record per image), or target a multi-image trainer",
                },
            )
        )
    elif isinstance(image, str) and image:
        if not with_tags:
            out.append(
                (
                    "VD101",
                    {
                        "what": "the record has an image but no <image> tag",
                        "effect": "LLaVA never inserts one: the record trains without its image, silently",
                        "fix": "put '<image>\\n' at the start of the first human turn",
                    },
                )
            )
        elif len(with_tags) > 1:
            keys = [tm.key for tm in with_tags]
            out.append(
                (
                    "VD101",
                    {
                        "what": f"<image> in {len(with_tags)} turns ({where_text(keys)}) for one image",
                        "effect": "LLaVA puts an image token in each of these turns but has features for one image: "
                        "the forward pass fails on the mismatch",
                        "fix": "keep one <image>, in the first human turn",
                    },
                )
            )
        elif with_tags[0].literal["image"] > 1:
            tm = with_tags[0]
            out.append(
                (
                    "VD102",
                    {
                        "what": f"{tags_text(tm.literal['image'], 'image')} in {tm.key} for one image",
                        "effect": "LLaVA removes them all and puts a single <image> at the start of that turn; "
                        "their positions are lost",
                        "fix": "write one <image>",
                    },
                )
            )
    elif with_tags:
        n = sum(tm.literal["image"] for tm in with_tags)
        keeps = "LLaVA tokenizes a record without image as plain text and keeps them"
        out.append(("VD102", surplus("image", n, 0, keeps)))


def sequence(turns: list[Turn]) -> str | None:
    """preprocess: a leading non-human turn is dropped, then roles must alternate human/gpt (an assertion)."""
    body = turns[1:] if turns and turns[0].raw_role != "human" else turns
    for j, t in enumerate(body):
        expected = "human" if j % 2 == 0 else "gpt"
        if t.raw_role != expected:
            return f"{t.key} is from={t.raw_role!r} where LLaVA asserts {expected!r} (roles must alternate)"
    return None


def rewrites(turns: list[Turn]) -> Iterator[dict[str, Any]]:
    if turns[0].raw_role != "human" and all(t.role != "system" for t in turns):
        yield {
            "what": f"{turns[0].key} is from={turns[0].raw_role!r}, not 'human'",
            "effect": "LLaVA skips a leading non-human turn: it is not trained on",
            "fix": "add the human question it answers, or drop the turn",
        }


CONSUMER = Consumer(
    name="llava",
    title="LLaVA-1.5",
    source="haotian-liu/LLaVA @c121f04",
    raw_roles=frozenset({"human", "gpt", "system"}),  # system: reported by VD111
    role_names="human, gpt",
    role_effect="LLaVA raises KeyError and the run stops",
    system="none",
    system_effect="LLaVA's roles are human/gpt only: KeyError 'system' stops the run",
    sequence=sequence,
    sequence_effect="the assertion stops the LLaVA run",
    rewrites=rewrites,
    analyse_media=analyse,
    interpreted=("<image>",),
    paths="--image_folder (os.path.join(image_folder, image))",
    urls=False,
    url_effect="LLaVA joins it to --image_folder and PIL cannot open it: the run stops",
    grounding="[x1, y1, x2, y2] fractions 0-1 (of the padded square for LLaVA-1.5 VG data)",
    top_keys=frozenset({"id", "image", "conversations"}),
    turn_keys=frozenset({"from", "value"}),
)
