"""The invariant of issue 12: ``vlmdata validate --target T`` on what ``convert --to T`` wrote reports
no error-level finding, for every source -> target pair, on a corpus of hostile records (literal
tags and markup in prose, reversed and empty boxes, URLs, odd turn orders, system turns, tools,
missing and surplus tags) and on random ms-swift rows built from the same fragments.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vlmdata
from tests.conftest import make_image, write_jsonl
from vlmdata.consumers import CONSUMER_OF_FORMAT
from vlmdata.validators import validate

TARGETS = ["swift", "swift-legacy", "internvl", "llava", "sharegpt", "qwen", "hf"]
URL = "https://example.com/cat.jpg"
EXT = {
    "swift": "jsonl",
    "swift-legacy": "jsonl",
    "internvl": "jsonl",
    "llava": "json",
    "sharegpt": "json",
    "qwen": "json",
    "hf": "jsonl",
}


def media(root: Path) -> None:
    make_image(root / "a.jpg", (640, 480))
    make_image(root / "b.jpg", (320, 200))
    (root / "v.mp4").write_bytes(b"\0" * 64)


def msg(role: str, content: Any) -> dict[str, Any]:
    return {"role": role, "content": content}


def turn(who: str, value: str) -> dict[str, str]:
    return {"from": who, "value": value}


def swift_corpus(root: Path) -> list[dict[str, Any]]:
    a, b = str(root / "a.jpg"), str(root / "b.jpg")
    u, s = "user", "assistant"
    objects = {"ref": ["cat"], "bbox_type": "real"}
    return [
        {"messages": [msg(u, "<image>What is it?"), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(u, "<image>Why write <ref>cat</ref>?"), msg(s, "Style.")], "images": [a]},
        {"messages": [msg(u, "<image>Is <|box_start|>(1,2),(3,4)<|box_end|> a box?"), msg(s, "Yes.")], "images": [a]},
        {
            "messages": [msg(u, "<image>Find <ref-object>"), msg(s, "<bbox>")],
            "images": [a],
            "objects": {**objects, "bbox": [[300, 250, 100, 50]]},
        },
        {
            "messages": [msg(u, "<image>Find <ref-object>"), msg(s, "<bbox>")],
            "images": [a],
            "objects": {**objects, "bbox": [[10, 20, 300, 400]]},
        },
        {
            "messages": [msg(u, "<image>Find <ref-object>"), msg(s, "<bbox>")],
            "images": [a],
            "objects": {**objects, "bbox": [[100, 50, 100, 80]]},
        },
        {"messages": [msg(u, "<image>What?"), msg(s, "A cat.")], "images": [URL]},
        {"messages": [msg(u, "<image>Hi"), msg(u, "What is it?"), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(s, "Hello!"), msg(u, "<image>What?"), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(u, "<image>What?"), msg(s, "A cat."), msg(u, "And?")], "images": [a]},
        {"messages": [msg("system", "Be brief."), msg(u, "<image>What?"), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(u, "<image>What?"), msg("system", "Be brief."), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(u, "What is it?"), msg(s, "A cat."), msg(u, "Sure?"), msg(s, "Yes.")], "images": [a]},
        {"messages": [msg(u, "<image><image>Compare."), msg(s, "Same.")], "images": [a, b]},
        {
            "messages": [msg(u, "<image>Call it"), msg("tool_call", "{}"), msg("tool_response", "ok"), msg(s, "Done.")],
            "images": [a],
        },
        {"messages": [msg(u, "What?"), msg(s, "<image> a cat")], "images": [a]},
        {"messages": [msg(u, "<video>What happens?"), msg(s, "Nothing.")], "videos": [str(root / "v.mp4")]},
        {"messages": [msg(u, "<image>What?"), msg(s, "")], "images": [a]},
        {"messages": [msg(u, "Plain text <video> talk, <bbox> and [0.1, 0.2, 0.3, 0.4]."), msg(s, "Ok.")]},
    ]


def hf_corpus(root: Path) -> list[dict[str, Any]]:
    a = str(root / "a.jpg")
    u, s = "user", "assistant"
    return [
        {"messages": [msg(u, [{"type": "image", "image": a}, {"type": "text", "text": "What?"}]), msg(s, "A cat.")]},
        {
            "messages": [
                msg(u, [{"type": "image", "image": a}, {"type": "text", "text": "Is <image> a tag?"}]),
                msg(s, "Yes."),
            ]
        },
        {"messages": [msg(u, [{"type": "text", "text": "What is <video>?"}]), msg(s, "A tag.")]},
        {"messages": [msg(u, [{"type": "image"}, {"type": "text", "text": "What?"}]), msg(s, "A cat.")], "images": [a]},
        {"messages": [msg(u, "What is it?"), msg(s, "A cat.")], "images": [a]},
        {
            "messages": [
                msg(u, [{"type": "image_url", "image_url": {"url": URL}}, {"type": "text", "text": "?"}]),
                msg(s, "A cat."),
            ]
        },
        {
            "messages": [
                msg("system", "Be brief."),
                msg(u, [{"type": "image", "image": a}, {"type": "text", "text": "<ref>x"}]),
                msg(s, "<|box_start|>(1,2),(3,4)<|box_end|>"),
            ]
        },
    ]


def internvl_corpus(root: Path) -> list[dict[str, Any]]:
    h, g = "human", "gpt"
    return [
        {"image": "a.jpg", "conversations": [turn(h, "<image>\nWhat?"), turn(g, "A cat.")]},
        {"image": "a.jpg", "conversations": [turn(h, "Hi"), turn(g, "Hi"), turn(h, "<image>\nWhat?"), turn(g, "Cat")]},
        {"image": "a.jpg", "conversations": [turn("system", "Be brief."), turn(h, "What?"), turn(g, "A cat.")]},
        {"image": ["a.jpg", "b.jpg"], "conversations": [turn(h, "<image>\n<image>\nCompare."), turn(g, "Same.")]},
        {
            "image": "a.jpg",
            "conversations": [turn(h, "<image>\nWhere?"), turn(g, "<ref>cat</ref><box>[[900, 20, 800, 400]]</box>")],
        },
        {
            "image": "a.jpg",
            "conversations": [turn(h, "<image>\nWhere?"), turn(g, "<ref>cat</ref><box>[[100, 20, 800, 400]]</box>")],
        },
        {"image": URL, "conversations": [turn(h, "<image>\nWhat?"), turn(g, "A cat.")]},
        {"conversations": [turn(h, "Quote <|box_start|>(1,2),(3,4)<|box_end|> please"), turn(g, "ok")]},
        {"image": "a.jpg", "conversations": [turn(g, "Hello"), turn(h, "<image>\nWhat?"), turn(g, "A cat.")]},
    ]


def llava_corpus(root: Path) -> list[dict[str, Any]]:
    h, g = "human", "gpt"
    return [
        {"id": "1", "image": "a.jpg", "conversations": [turn(h, "<image>\nWhat?"), turn(g, "A cat.")]},
        {"id": "2", "image": "a.jpg", "conversations": [turn(g, "Hello"), turn(h, "<image>\nWhat?"), turn(g, "Cat")]},
        {"id": "3", "image": "a.jpg", "conversations": [turn(h, "<image>\nHi"), turn(h, "What?"), turn(g, "A cat.")]},
        {"id": "4", "image": "a.jpg", "conversations": [turn(h, "<image>\nWhere?"), turn(g, "[0.9, 0.1, 0.2, 0.5]")]},
        {"id": "5", "image": "a.jpg", "conversations": [turn(h, "<image>\nWhere?"), turn(g, "[0.1, 0.1, 0.2, 0.5]")]},
        {"id": "6", "conversations": [turn(h, "Is <ref>x</ref> markup?"), turn(g, "Yes.")]},
    ]


def sharegpt_corpus(root: Path) -> list[dict[str, Any]]:
    h, g = "human", "gpt"
    return [
        {"conversations": [turn(h, "<image>What?"), turn(g, "A cat.")], "images": ["a.jpg"]},
        {
            "conversations": [
                turn(h, "<image>Call"),
                turn("function_call", "{}"),
                turn("observation", "ok"),
                turn(g, "Done"),
            ],
            "images": ["a.jpg"],
        },
        {
            "conversations": [turn(h, "<image>Where?"), turn(g, "<|box_start|>(900,20),(800,400)<|box_end|>")],
            "images": ["a.jpg"],
        },
        {
            "conversations": [turn(h, "<image>Where?"), turn(g, "<|box_start|>(100,20),(800,400)<|box_end|>")],
            "images": ["a.jpg"],
            "system": "Be brief.",
        },
        {"conversations": [turn(h, "<image>What?"), turn(g, "A cat.")], "images": [URL]},
        {"conversations": [turn(h, "<video>What?"), turn(g, "Nothing.")], "videos": ["v.mp4"]},
    ]


def qwen_corpus(root: Path) -> list[dict[str, Any]]:
    h, g = "human", "gpt"
    return [
        {"image": "a.jpg", "conversations": [turn(h, "What? <image>"), turn(g, "A cat.")]},
        {"image": ["a.jpg", "b.jpg"], "conversations": [turn(h, "<image><image>Compare"), turn(g, "Same")]},
        {
            "image": "a.jpg",
            "conversations": [
                turn(h, "<image>Where?"),
                turn(g, '```json\n[{"bbox_2d": [300, 250, 100, 50], "label": "cat"}]\n```'),
            ],
        },
        {
            "image": "a.jpg",
            "conversations": [turn(h, "<image>Where?"), turn(g, "<|box_start|>(10,20),(300,400)<|box_end|>")],
        },
        {"image": "a.jpg", "conversations": [turn(h, "<image>Is <ref>x</ref> markup?"), turn(g, "Yes.")]},
    ]


CORPORA = {
    "swift": swift_corpus,
    "hf": hf_corpus,
    "internvl": internvl_corpus,
    "llava": llava_corpus,
    "sharegpt": sharegpt_corpus,
    "qwen": qwen_corpus,
}


def write_source(root: Path, fmt: str, rows: list[dict[str, Any]]) -> Path:
    if fmt in ("llava", "sharegpt", "qwen"):
        path = root / f"src.{fmt}.json"
        path.write_text(json.dumps(rows))
        return path
    return write_jsonl(root / f"src.{fmt}.jsonl", rows)


def system_for(to: str) -> dict[str, str]:
    """--system applies to the targets without a system prompt only (elsewhere it is a usage error)."""
    return {"system": "merge"} if to in ("llava", "qwen") else {}


def errors_after_convert(folder: Path, src: Path, fmt: str, to: str, **kw: Any) -> tuple[Any, list[str]]:
    out = folder / f"out.{fmt}-to-{to}.{EXT[to]}"
    report = vlmdata.convert(str(src), str(out), to=to, from_format=fmt, **kw)
    if report.written == 0:
        return report, []
    # the media root the consumer is told (InternVL's meta root, LLaVA's --image_folder...) is the convert root
    frame = {"qwen_model": kw["qwen_model"]} if "qwen_model" in kw else {}  # the frame the consumer is told
    found = validate(
        str(out), target=CONSUMER_OF_FORMAT[to], from_format=to, ignore=["VD5"], root=kw.get("root"), **frame
    )
    return report, [f"{f.code} {f.where()}: {f.message}" for f in found.findings if f.severity == "error"]


@pytest.mark.parametrize("to", TARGETS)
@pytest.mark.parametrize("fmt", list(CORPORA))
def test_validate_finds_no_error_in_what_convert_wrote(tmp_path: Path, fmt: str, to: str):
    media(tmp_path)
    src = write_source(tmp_path, fmt, CORPORA[fmt](tmp_path))
    report, errors = errors_after_convert(tmp_path, src, fmt, to, root=str(tmp_path), **system_for(to))
    assert errors == [], "\n".join(errors)
    assert report.written >= 1  # not vacuous: the plain records get through
    assert report.records_in == report.written + report.rejected


@pytest.mark.parametrize("to", ["internvl", "sharegpt", "qwen"])
def test_the_invariant_holds_with_fix_boxes_and_qwen25(tmp_path: Path, to: str):
    media(tmp_path)
    src = write_source(tmp_path, "swift", swift_corpus(tmp_path))
    kw: dict[str, Any] = {"root": str(tmp_path), "fix_boxes": "swap"}
    if to != "internvl":
        kw["qwen_model"] = "qwen2.5-vl"
    report, errors = errors_after_convert(tmp_path, src, "swift", to, **kw)
    assert errors == [] and report.tally.swapped_boxes == 1


FRAGMENTS = [
    "What is it?",
    "<image>",
    "<video>",
    "<ref>cat</ref>",
    "<box>[[1, 2, 3, 4]]</box>",
    "<|box_start|>(1,2),(3,4)<|box_end|>",
    "<ref-object>",
    "<bbox>",
    "[0.1, 0.2, 0.3, 0.4]",
    "<|vision_start|>",
    " ",
    "",
]
ROLES = ["user", "assistant", "system", "tool_call", "tool_response", "user", "assistant"]
_ROOT = Path(tempfile.mkdtemp(prefix="vlmdata-prop-"))
media(_ROOT)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.lists(
                st.tuples(st.sampled_from(ROLES), st.lists(st.sampled_from(FRAGMENTS), max_size=3)),
                min_size=1,
                max_size=5,
            ),
            st.lists(st.sampled_from(["a.jpg", "b.jpg", URL]), max_size=2),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_random_swift_rows_keep_the_invariant_for_every_target(rows: list[Any]):
    data = [
        {
            "messages": [msg(role, "".join(parts)) for role, parts in turns],
            "images": [p if p == URL else str(_ROOT / p) for p in images],
        }
        for turns, images in rows
    ]
    with tempfile.TemporaryDirectory(dir=_ROOT) as tmp:
        root = Path(tmp)
        src = write_source(root, "swift", data)
        for to in TARGETS:
            _report, errors = errors_after_convert(root, src, "swift", to, root=str(_ROOT), **system_for(to))
            assert errors == [], f"--to {to}:\n" + "\n".join(errors)
