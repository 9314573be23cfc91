"""InternVL ``internvl_chat`` (2.5/3, conv style internvl2_5) as a data consumer.

Upstream: OpenGVLab/InternVL ``internvl_chat/internvl/train/internvl_chat_finetune.py`` and
``internvl/train/dataset.py`` at 2410d1d: ``multi_modal_get_item`` prepends ``<image>\n`` to
conversations[0] only for a single image (a string ``image``) whose first turn has none;
``multi_modal_multi_image_get_item`` inserts nothing; ``preprocess_internvl2_5`` replaces tags in
``human`` turns only and asserts the count; a failing record is replaced by a random one. Paths
are ``os.path.join(root, path)`` (``root`` from the meta entry); grounding is
``<ref>..</ref><box>[[x1, y1, x2, y2]]</box>`` in 0-1000 of the original image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vlmdata.consumers.base import (
    TAGS,
    Consumer,
    Issue,
    TurnMedia,
    count,
    plural,
    surplus,
    tags_text,
    unread,
    where_text,
)

if TYPE_CHECKING:
    from vlmdata.validators.view import RecordView


def analyse(view: RecordView, tms: list[TurnMedia], out: list[Issue]) -> None:
    raw = view.raw or {}
    image, video = raw.get("image"), raw.get("video")
    if image and video:
        out.append(
            (
                "VD101",
                {
                    "what": "the record has both image and video",
                    "effect": "InternVL dispatches on image first and never loads the video",
                    "fix": "split it into an image record and a video record",
                },
            )
        )
        video = None
    for kind, value in (("image", image), ("video", video)):
        tag = TAGS[kind]
        user_tags = count(tms, kind, ("user",), literal_only=True)
        if isinstance(value, str) and value:
            _single(view, kind, tag, user_tags, out)
        elif isinstance(value, list) and value:
            if kind == "video":
                out.append(
                    (
                        "VD101",
                        {
                            "what": "video is a list",
                            "effect": "InternVL joins one video path (or frame folder) to the root and fails on a list",
                            "fix": "give one video path per record, or write the frames as images "
                            "(vlmdata convert --internvl-video images)",
                        },
                    )
                )
                continue
            n = len(value)
            if user_tags < n:
                out.append(
                    (
                        "VD101",
                        {
                            "what": f"{tags_text(user_tags, kind)} in human turns but {plural(n, kind)}",
                            "effect": f"InternVL inserts no tag for several images and asserts '{user_tags} != {n}': "
                            "the record is skipped and a random one is loaded instead",
                            "fix": f"put one {tag} per image in the human turns, in image order",
                        },
                    )
                )
            elif user_tags > n:
                out.append(("VD102", surplus(kind, user_tags, n, "InternVL replaces the first and keeps the rest")))
        elif user_tags:
            out.append(("VD102", surplus(kind, user_tags, 0, "InternVL keeps them")))
        literal_elsewhere = [tm.key for tm in tms if tm.role != "user" and tm.literal[kind]]
        if literal_elsewhere:
            effect = "InternVL (internvl2_5) replaces tags in human turns only"
            out.append(("VD105", unread(kind, literal_elsewhere, effect)))


def _single(view: RecordView, kind: str, tag: str, user_tags: int, out: list[Issue]) -> None:
    if not view.turns:
        return
    first = view.turns[0]
    if tag not in first.text:
        # multi_modal_get_item / video_get_item: '<tag>\n' goes in front of conversations[0]
        if first.role == "user":
            user_after = user_tags + 1
            if user_tags:
                later = [t.key for t in view.turns[1:] if t.role == "user" and tag in t.text]
                out.append(
                    (
                        "VD106",
                        {
                            "kind": kind,
                            "tag": tag,
                            "where": where_text(later),
                            "fixable": kind == "image" and user_tags == 1,
                            "fix": "write the image as a one-element list (image: [path], width_list/height_list), "
                            "which InternVL takes as written"
                            if kind == "image"
                            else "move <video> to the start of conversations[0]",
                        },
                    )
                )
                user_after -= 1  # reported here; the surplus below counts only further tags
        else:
            user_after = user_tags
            out.append(
                (
                    "VD107",
                    {
                        "kind": kind,
                        "tag": tag,
                        "role": first.role,
                        "effect": (
                            f"and no human turn has one, so the human turns count 0 {tag} for 1 {kind}: "
                            "the record fails InternVL's assertion and is skipped"
                            if user_tags == 0
                            else "where it stays literal text"
                        )
                        if kind == "image"
                        else "where its frames are never counted: the record fails InternVL's assertion and is skipped",
                        "fixable": kind == "image" and user_tags <= 1 and any(t.role == "user" for t in view.turns),
                        "fix": "write the image as a one-element list (image: [path]) with one <image> in the first "
                        "human turn"
                        if kind == "image"
                        else "drop the system turn or convert the video to frame images "
                        "(vlmdata convert --internvl-video images)",
                    },
                )
            )
    else:
        user_after = user_tags
        if first.role != "user" and user_tags == 0:
            out.append(
                (
                    "VD101",
                    {
                        "what": f"the only {tag} is in conversations[0], a {first.role} turn",
                        "effect": f"InternVL sees a tag in conversations[0] and inserts none, then counts human turns "
                        f"only: 0 {tag} for 1 {kind}, the record fails its assertion and is skipped",
                        "fix": f"move {tag} into the first human turn",
                    },
                )
            )
        elif kind == "video" and first.role == "user" and "<video>\n" not in first.text:
            out.append(
                (
                    "VD101",
                    {
                        "what": "<video> in conversations[0] is not followed by a newline",
                        "effect": "InternVL only expands '<video>\\n' into its 'Frame-i: <image>' lines, so the frames "
                        "get no tag: the record fails its assertion and is skipped",
                        "fix": "write '<video>\\n'",
                    },
                )
            )
    if user_after > 1:
        out.append(("VD102", surplus(kind, user_after, 1, "InternVL replaces the first and keeps the rest")))


CONSUMER = Consumer(
    name="internvl",
    title="InternVL",
    source="OpenGVLab/InternVL internvl_chat @2410d1d",
    raw_roles=frozenset({"human", "gpt", "system"}),
    role_names="human, gpt and a leading system",
    role_effect="InternVL raises NotImplementedError, skips the record and loads a random one",
    system="first",
    system_effect="InternVL (internvl2_5) raises NotImplementedError, skips the record and loads a random one",
    analyse_media=analyse,
    interpreted=(
        "<image>",
        "<video>",
        "<ref>",
        "</ref>",
        "<box>",
        "</box>",
        "<quad>",
        "</quad>",
        "<img>",
        "</img>",
        "<IMG_CONTEXT>",
    ),
    paths="the meta entry's root (os.path.join(root, path))",
    urls=False,
    url_effect="InternVL joins it to the meta root, cannot open it, and silently trains a random other record instead",
    grounding="<ref>..</ref><box>[[x1, y1, x2, y2]]</box>, 0-1000 of the original image",
    top_keys=frozenset(
        {"id", "image", "video", "width", "height", "width_list", "height_list", "conversations", "clip", "length"}
    ),
    turn_keys=frozenset({"from", "value"}),
)
