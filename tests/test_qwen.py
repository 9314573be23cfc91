"""Qwen-VL fine-tuning format (docs/formats.md#qwen), Qwen grounding frames (docs/frames.md#pixel_resized) and
smart_resize (docs/frames.md#smart_resize)."""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vlmdata
from vlmdata.cli import main
from vlmdata.convert.frames import convert_box
from vlmdata.convert.grounding_json import parse_json_grounding, render_json_parts
from vlmdata.convert.placeholders import count_slots
from vlmdata.convert.registry import get_codec
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.smart_resize import (
    QWEN2_MAX_PIXELS,
    QWEN2_MIN_PIXELS,
    TRANSFORMERS_MAX_PIXELS,
    llamafactory_preresize,
    resized_size,
    smart_resize,
)
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Points, Ref, Sample, Text

from .conftest import make_image, read_jsonl, write_jsonl

NOTEBOOK = "qwen-bbox-notebook"


def fake_png(path: Path, width: int, height: int) -> Path:
    """A PNG signature + IHDR only: enough for the header-only size probe, at any size, in 33 bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)))
    return path


def record(answer: str, image: str | list[str] | None = "a.png", question: str = "<image>\nWhere?") -> dict:
    rec: dict = {"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]}
    if image is not None:
        rec["image"] = image
    return rec


def write_json(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def boxes_of(sample: Sample) -> list[tuple[str | None, list[tuple[float, ...]]]]:
    out = []
    for m in sample.messages:
        ref = None
        for p in m.parts:
            if isinstance(p, Ref):
                ref = p.text
            elif isinstance(p, Boxes | Points):
                out.append((ref, [b.coords() for b in (p.boxes if isinstance(p, Boxes) else p.points)]))
                ref = None
    return out


# --- smart_resize (docs/frames.md#smart_resize) and the Qwen2.5-VL frame (docs/frames.md#pixel_resized) ----


def test_notebook_oracle_hard_coded():
    # Qwen's process_bbox.ipynb: 640x428 image, transformers' max_pixels 1,003,520 -> (h', w') = (420, 644);
    # box [146, 137, 615, 415] -> Qwen2.5-VL [147, 134, 619, 407], Qwen2-VL [228, 320, 961, 970]
    assert smart_resize(428, 640, 28, 3136, 1003520) == (420, 644)
    assert resized_size(640, 428, max_pixels=TRANSFORMERS_MAX_PIXELS) == (644, 420)
    box = Box(146, 137, 615, 415, Frame.PIXEL)
    out, clamped = convert_box(box, Frame.PIXEL_RESIZED, lambda: (640, 428), resized=(644, 420))
    assert (out.coords(), clamped, out.resized) == ((147, 134, 619, 407), 0, (644, 420))


def test_notebook_oracle_end_to_end(tmp_path: Path):
    make_image(tmp_path / "coco.jpg", (640, 428))
    sample = Sample(
        [
            Message("user", [ImageSlot(0), Text("\nLocate the bowl of carrots.")]),
            Message("assistant", [Ref("bowl of carrots"), Boxes((Box(146, 137, 615, 415, Frame.PIXEL),))]),
        ],
        [MediaRef("coco.jpg", str(tmp_path / "coco.jpg"))],
    )
    out = tmp_path / "q.json"
    vlmdata.write(
        [sample],
        str(out),
        "qwen",
        root=str(tmp_path),
        qwen_model="qwen2.5-vl",
        qwen_boxes="json",
        max_pixels=TRANSFORMERS_MAX_PIXELS,
    )
    rec = json.loads(out.read_text())[0]
    assert rec["image"] == "coco.jpg"
    assert rec["conversations"][1]["value"] == (
        '```json\n[\n\t{"bbox_2d": [147, 134, 619, 407], "label": "bowl of carrots"}\n]\n```'
    )
    vlmdata.write([sample], str(out), "qwen", root=str(tmp_path))  # default: Qwen2-VL tokens, 0-1000
    assert json.loads(out.read_text())[0]["conversations"][1]["value"] == (
        "<|object_ref_start|>bowl of carrots<|object_ref_end|><|box_start|>(228,320),(961,970)<|box_end|>"
    )


def test_notebook_oracle_from_case(realdata: Path, tmp_path: Path):
    folder = realdata / NOTEBOOK
    exp = json.loads((folder / "case.json").read_text())["expected"]
    image, want, box = exp["image"], exp["qwen25vl_resized_pixels"], exp["input_box"]
    args = want["smart_resize_args"]
    h, w = want["resized_HxW"]
    assert smart_resize(image["height"], image["width"], **args) == (h, w)
    # the real image, probed by vlmdata: the notebook's printed 0-1000 and Qwen2.5-VL numbers
    sample = Sample(
        [
            Message("user", [ImageSlot(0), Text("\nLocate it.")]),
            Message("assistant", [Ref(box["label"]), Boxes((Box(*box["bbox_2d"], Frame.PIXEL),))]),
        ],
        [MediaRef(image["path"], str(folder / image["path"]))],
    )
    resize = {"max_pixels": args["max_pixels"], "min_pixels": args["min_pixels"]}
    for model, numbers in [("qwen2-vl", exp["qwen2vl_norm1000"]["value"]), ("qwen2.5-vl", want["value"])]:
        out = tmp_path / f"{model}.json"
        vlmdata.write([sample], str(out), "qwen", root=str(folder), qwen_model=model, qwen_boxes="json", **resize)
        value = json.loads(out.read_text())[0]["conversations"][1]["value"]
        assert value == render_json_parts([Ref(box["label"]), Boxes((Box(*numbers, Frame.NORM1000),))])
    # reading the Qwen2.5-VL file: each box knows its W'xH', and goes back to the pixel box within rounding
    report = vlmdata.convert(
        str(tmp_path / "qwen2.5-vl.json"),
        str(tmp_path / "s.jsonl"),
        to="swift",
        from_format="qwen",
        root=str(folder),
        qwen_model="qwen2.5-vl",
        **resize,
    )
    assert report.ok and report.tally.frames == {f"pixel_resized {w}x{h} (read)": 1}
    read = next(
        vlmdata.read(
            str(tmp_path / "qwen2.5-vl.json"), format="qwen", root=str(folder), qwen_model="qwen2.5-vl", **resize
        )
    )
    read_box = read.messages[1].parts[1].boxes[0]
    assert (read_box.coords(), read_box.resized) == (tuple(want["value"]), (w, h))
    pixel = convert_box(read_box, Frame.PIXEL, lambda: (image["width"], image["height"]))[0].coords()
    assert pixel == pytest.approx(box["bbox_2d"], abs=1.0)


def test_smart_resize_tiny_image_is_scaled_up_not_refused():
    # qwen-vl-utils: sides clamp to the factor, then min_pixels scales up (ceil)
    assert smart_resize(10, 10) == (56, 56)
    assert smart_resize(1, 1) == (56, 56)
    assert smart_resize(1, 200) == (28, 196)  # aspect ratio exactly 200 is allowed


def test_smart_resize_huge_image_is_scaled_down_under_max_pixels():
    h, w = smart_resize(8000, 10000)
    assert (h, w) == (3192, 4004)
    assert h * w <= QWEN2_MAX_PIXELS and h % 28 == 0 and w % 28 == 0
    assert smart_resize(3000, 4000) == (2996, 4004)  # already under 12,845,056: only rounded to 28
    h, w = smart_resize(3000, 4000, max_pixels=TRANSFORMERS_MAX_PIXELS)
    assert h * w <= TRANSFORMERS_MAX_PIXELS and (h, w) == (840, 1148)


def test_smart_resize_refuses_aspect_ratio_over_200_naming_the_image():
    with pytest.raises(RecordError) as exc:
        smart_resize(1, 201, image="strip.png")
    assert "image 'strip.png'" in str(exc.value) and "aspect ratio must be smaller than 200, got 201.0" in str(
        exc.value
    )
    with pytest.raises(RecordError, match=r"'banner\.png'"):
        resized_size(28 * 201, 28, image="banner.png")
    with pytest.raises(ValueError, match="max_pixels"):
        smart_resize(100, 100, min_pixels=QWEN2_MIN_PIXELS, max_pixels=QWEN2_MIN_PIXELS - 1)


def test_llamafactory_pre_resize_then_smart_resize():
    # docs/frames.md#llama-factory-pre-resize: int(W * sqrt(max / (W*H))) first: 4000x3000 at 589,824 -> 886x665, then
    # smart_resize
    assert llamafactory_preresize(4000, 3000, 589_824) == (886, 665)
    assert resized_size(4000, 3000, image_max_pixels=589_824) == (896, 672)
    assert resized_size(4000, 3000) == (4004, 2996)
    assert llamafactory_preresize(640, 428, 589_824) == (640, 428)  # under the limit: untouched


# --- real data: the Qwen finetune demo files and README examples --------------------------------


def test_finetune_demo(realdata: Path):
    folder = realdata / "qwen-finetune-demo"
    c = json.loads((folder / "case.json").read_text())
    exp = c["expected"]
    samples = list(vlmdata.read(str(folder / c["data_files"][0]), format="qwen", root=str(folder)))
    assert len(samples) == exp["records"]
    assert [len(s.images) for s in samples] == exp["images_per_record"]
    assert [count_slots(s.messages, "image") for s in samples] == exp["image_placeholders_per_record"]
    by_path = {m["path"]: m for m in exp["media"]}
    for s in samples:
        media = by_path[s.images[0].path]
        assert s.images[0].resolved == str(folder / media["resolved"])
        assert os.path.exists(s.images[0].resolved)  # both PNGs resolve
        assert s.messages[0].parts[-1] == ImageSlot(0)  # '<image>' at the end of the question stays there
    assert {m.path for s in samples for m in s.images} == set(by_path)


def test_finetune_demo_to_internvl_and_back(realdata: Path, tmp_path: Path):
    folder = realdata / "qwen-finetune-demo"
    src = folder / "demo" / "single_images.json"
    report = vlmdata.convert(str(src), str(tmp_path / "i.jsonl"), to="internvl", from_format="qwen", root=str(folder))
    assert (report.records_in, report.written, report.rejected) == (3, 3, 0)
    rec = read_jsonl(tmp_path / "i.jsonl")[0]
    assert (rec["image"], rec["width"], rec["height"]) == ("demo/images/10095.png", 422, 359)
    back = vlmdata.convert(str(tmp_path / "i.jsonl"), str(tmp_path / "q.json"), to="qwen", root=str(folder))
    assert back.ok
    assert json.loads((tmp_path / "q.json").read_text()) == json.loads(src.read_text())


def test_finetune_demo_video(realdata: Path):
    folder = realdata / "qwen-finetune-demo-video"
    c = json.loads((folder / "case.json").read_text())
    exp = c["expected"]
    root = folder / c["root"]
    samples = list(vlmdata.read(str(folder / c["data_files"][0]), root=str(root)))  # detected as qwen
    assert len(samples) == exp["records"]
    assert [len(s.videos) for s in samples] == exp["videos_per_record"]
    assert [count_slots(s.messages, "video") for s in samples] == exp["video_placeholders_per_record"]
    assert [s.videos[0].resolved for s in samples] == [str(folder / m["resolved"]) for m in exp["media"]]
    assert not any(os.path.exists(s.videos[0].resolved) for s in samples)  # not stored; reading needs no file


def test_readme_examples(realdata: Path, tmp_path: Path):
    folder = realdata / "qwen-finetune-readme-examples"
    c = json.loads((folder / "case.json").read_text())
    for name, fexp in c["expected"]["per_file"].items():
        path = folder / name
        if not fexp["parses_as_json"]:
            err = fexp["json_error"]
            with pytest.raises(VlmdataError) as exc:
                vlmdata.convert(str(path), str(tmp_path / "o.json"), to="qwen", from_format="qwen")
            assert f"{path}:{err['line']}:{err['column']}: JSON syntax error" in str(exc.value)
            continue
        samples = list(vlmdata.read(str(path), format="qwen"))
        assert len(samples) == len(fexp["records"]), name
        for s, rec in zip(samples, fexp["records"], strict=True):
            assert [{"user": "human", "assistant": "gpt"}[m.role] for m in s.messages] == rec["roles"]
            assert (len(s.images), len(s.videos)) == (rec["images"], rec["videos"])
            assert count_slots(s.messages, "image") == rec["image_placeholders"]
            assert count_slots(s.messages, "video") == rec["video_placeholders"]
        assert [m.path for s in samples for m in s.images + s.videos] == fexp["media_paths"]


def test_readme_grounding_example_once_repaired(realdata: Path, tmp_path: Path):
    folder = realdata / "qwen-finetune-readme-examples"
    c = json.loads((folder / "case.json").read_text())
    repaired = c["expected"]["grounding_example_if_repaired"]
    text = (folder / "readme_example4_grounding.json").read_text()
    rec = json.loads(text.replace('"{\\n"bbox_2d"', '"{\\n\\"bbox_2d\\"'))
    src = write_json(tmp_path / "g.json", [rec])
    # as Qwen2-VL/Qwen3-VL 0-1000: a bare object (no fence) is read; 1016 is out of range and clamped on the way
    sample = next(vlmdata.read(str(src), format="qwen"))
    assert boxes_of(sample) == [(None, [tuple(repaired["bbox_2d"])])]
    report = vlmdata.convert(str(src), str(tmp_path / "i.jsonl"), to="internvl", from_format="qwen", sizes=False)
    assert report.ok and report.tally.clamped == 1
    assert read_jsonl(tmp_path / "i.jsonl")[0]["conversations"][1]["value"] == "<box>[[135, 114, 1000, 672]]</box>"
    # as Qwen2.5-VL pixels the image size is needed, and the README's path does not exist
    report = vlmdata.convert(str(src), str(tmp_path / "q.json"), to="qwen", from_format="qwen", qwen_model="qwen2.5-vl")
    assert report.rejected == 1
    err = report.rejections[0].error
    assert "image 'demo/COCO_train2014_000000580957.jpg'" in err and "not found" in err
    # with the image where the repository has it (W'xH' = 644x420): x2 and y2 leave the image, and are
    # clamped (and counted) on the way to 0-1000
    rec["image"] = "demo/images/COCO_train2014_000000580957.jpg"
    write_json(src, [rec])
    report = vlmdata.convert(
        str(src),
        str(tmp_path / "i.jsonl"),
        to="internvl",
        from_format="qwen",
        qwen_model="qwen2.5-vl",
        root=str(realdata / NOTEBOOK),
        max_pixels=TRANSFORMERS_MAX_PIXELS,
    )
    assert report.ok and report.tally.clamped == 2
    assert report.tally.frames == {"pixel_resized 644x420 (read)": 1}
    # 135 * 640/644 = 134.2 px -> 210; 114 * 428/420 = 116.2 px -> 271
    assert read_jsonl(tmp_path / "i.jsonl")[0]["conversations"][1]["value"] == "<box>[[210, 271, 1000, 1000]]</box>"


# --- records: placeholders, roles, system, paths (docs/formats.md#qwen) ---------------------------


def test_placeholder_counts_must_match_with_qwen_messages(tmp_path: Path):
    rows = [
        record("a", image=["a.png", "b.png"], question="<image>\nq"),
        record("a", image="a.png", question="<image><image>\nq"),
        record("a", image=None, question="<video>\nq"),
        record("<image> here", image="a.png"),
    ]
    report = vlmdata.convert(
        str(write_json(tmp_path / "in.json", rows)), str(tmp_path / "o.json"), to="qwen", from_format="qwen"
    )
    errors = [r.error for r in report.rejections]
    assert report.rejected == 4
    assert "1 <image> placeholder(s) but 2 image(s)" in errors[0] and "1 image(s) remain unused" in errors[0]
    assert (
        "2 <image> placeholder(s) but 1 image(s)" in errors[1] and "exceeds the number of provided images" in errors[1]
    )
    assert "exceeds the number of provided videos" in errors[2]
    assert "<image> appears in assistant turns" in errors[3]


def test_system_turn_rejected_on_read_and_policy_on_write(tmp_path: Path):
    rows = [
        {
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "q"},
                {"from": "gpt", "value": "a"},
            ]
        }
    ]
    src = write_json(tmp_path / "in.json", rows)
    report = vlmdata.convert(str(src), str(tmp_path / "o.json"), to="qwen", from_format="qwen")
    assert report.rejected == 1 and "trained on as an answer" in report.rejections[0].error
    swift = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "messages": [
                    {"role": "system", "content": "S"},
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                ]
            }
        ],
    )
    report = vlmdata.convert(str(swift), str(tmp_path / "o.json"), to="qwen")
    assert report.rejected == 1 and "--system drop" in report.rejections[0].fix
    report = vlmdata.convert(str(swift), str(tmp_path / "o.json"), to="qwen", system="merge")
    turns = json.loads((tmp_path / "o.json").read_text())[0]["conversations"]
    assert turns == [{"from": "human", "value": "S\n\nq"}, {"from": "gpt", "value": "a"}]
    assert report.tally.systems_merged == 1
    vlmdata.convert(str(swift), str(tmp_path / "o.json"), to="qwen", system="drop")
    assert [t["from"] for t in json.loads((tmp_path / "o.json").read_text())[0]["conversations"]] == ["human", "gpt"]


def test_media_written_as_str_or_list_relative_to_root(tmp_path: Path):
    swift = write_jsonl(
        tmp_path / "s.jsonl",
        [
            {
                "messages": [{"role": "user", "content": "<image><image>q"}, {"role": "assistant", "content": "a"}],
                "images": [str(tmp_path / "img" / "a.png"), str(tmp_path / "img" / "b.png")],
            },
            {
                "messages": [{"role": "user", "content": "<video>q"}, {"role": "assistant", "content": "a"}],
                "videos": [str(tmp_path / "img" / "v.mp4")],
                "id": 7,
            },
        ],
    )
    report = vlmdata.convert(str(swift), str(tmp_path / "o.jsonl"), to="qwen", root=str(tmp_path / "img"))
    assert report.ok
    a, b = read_jsonl(tmp_path / "o.jsonl")
    assert a["image"] == ["a.png", "b.png"] and "video" not in a
    assert b == {
        "id": 7,
        "video": "v.mp4",
        "conversations": [{"from": "human", "value": "<video>q"}, {"from": "gpt", "value": "a"}],
    }


def test_detection(tmp_path: Path):
    codec = get_codec("qwen")
    tokens = record("<|box_start|>(1,2),(3,4)<|box_end|>")
    assert codec.detect(tokens, "jsonl") == 0.95
    assert codec.detect({"video": ["a.mp4"], "conversations": []}, "jsonl") == 0.8
    assert codec.detect({"images": ["a.png"], "conversations": []}, "json") == 0.1  # LLaMA-Factory sharegpt
    src = write_json(
        tmp_path / "t.json",
        [
            {
                "video": "v.mp4",
                "conversations": [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}],
            }
        ],
    )
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift")
    assert report.input_format == "qwen"


# --- grounding syntaxes ---------------------------------------------------------------------------


def test_json_answer_forms(tmp_path: Path):
    parts = parse_json_grounding(
        'Found:\n```json\n[\n  {"bbox_2d": [1, 2, 3, 4], "label": "cat"},\n  {"bbox_2d": [5, 6, 7, 8], "label": "cat"},'
        '\n  {"point_2d": [9, 9], "label": "dog"}\n]\n```\nDone.'
    )
    assert parts[0] == Text("Found:\n") and parts[-1] == Text("\nDone.")
    assert parts[1] == Ref("cat") and [b.coords() for b in parts[2].boxes] == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert parts[3] == Ref("dog") and isinstance(parts[4], Points)
    # re-rendered in the canonical layout (Qwen's own: tab, one object per line)
    assert render_json_parts(parts) == (
        'Found:\n```json\n[\n\t{"bbox_2d": [1, 2, 3, 4], "label": "cat"},\n\t{"bbox_2d": [5, 6, 7, 8], "label": "cat"},'
        '\n\t{"point_2d": [9, 9], "label": "dog"}\n]\n```\nDone.'
    )
    assert parse_json_grounding('{"bbox_2d": [1, 2, 3, 4]}') == [Boxes((Box(1, 2, 3, 4, Frame.NORM1000),))]
    assert parse_json_grounding("```json\n[]\n```") == [Text("```json\n[]\n```")]  # no boxes: plain text
    for bad, why in [
        ('[{"bbox_2d": [1, 2, 3, 4], "text_content": "x"}]', "text_content"),
        ('```json\n[{"bbox_2d": [1, 2, 3]}]\n```', "list of 4 numbers"),
        ('```json\n[{"bbox_2d": [1, 2, 3, 4],}]\n```', "outside a readable JSON answer"),
        ('{"objects": [{"bbox_2d": [1, 2, 3, 4]}]}', "outside a readable JSON answer"),
    ]:
        with pytest.raises(RecordError, match=why):
            parse_json_grounding(bad)


def test_answer_format_shown_in_the_question_stays_text(tmp_path: Path):
    # Qwen's grounding prompts spell the format out with placeholders; only answers must be readable JSON
    prompt = '<image>\nLocate the cat. Report it in JSON as {"bbox_2d": [x1, y1, x2, y2], "label": "string"}.'
    rows = [record('```json\n[\n\t{"bbox_2d": [1, 2, 3, 4], "label": "cat"}\n]\n```', question=prompt)]
    sample = next(vlmdata.read(str(write_json(tmp_path / "in.json", rows)), format="qwen"))
    assert sample.messages[0].parts[-1] == Text(prompt[len("<image>") :])
    assert boxes_of(sample) == [("cat", [(1, 2, 3, 4)])]
    rows = [record('Report it as {"bbox_2d": [x1, y1, x2, y2]}.')]
    report = vlmdata.convert(str(write_json(tmp_path / "in.json", rows)), str(tmp_path / "o.json"), to="qwen")
    assert report.rejected == 1 and "outside a readable JSON answer" in report.rejections[0].error


def test_json_answer_with_extra_keys_rejects_the_record(tmp_path: Path):
    src = write_json(tmp_path / "in.json", [record('[{"bbox_2d": [1, 2, 3, 4], "label": "a", "score": 0.9}]')])
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="qwen")
    assert report.rejected == 1 and "['score']" in report.rejections[0].error


words = st.text(alphabet="abcdefgh xyz:.\n", min_size=1, max_size=12)
labels = st.text(alphabet='abc "\\é/', min_size=1, max_size=8)
coord = st.integers(0, 1000)


@st.composite
def grounded(draw):
    """Text, then (ref +) boxes or points groups, in the shape a JSON answer holds."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        parts.append(Text(draw(words)))
        previous = None
        for _ in range(draw(st.integers(1, 3))):
            label = draw(st.one_of(st.none(), labels))
            point = draw(st.booleans())
            if (label, point) == previous or (label is None and previous is not None):
                # consecutive objects with one label are one referent's boxes (JSON), and consecutive
                # <|box_start|> groups without a ref between them are one referent's boxes (tokens)
                continue
            previous = (label, point)
            if label is not None:
                parts.append(Ref(label))
            n = draw(st.integers(1, 3))
            if point:
                parts.append(Points(tuple(Box(draw(coord), draw(coord), None, None, Frame.NORM1000) for _ in range(n))))
            else:
                parts.append(
                    Boxes(tuple(Box(*draw(st.tuples(coord, coord, coord, coord)), Frame.NORM1000) for _ in range(n)))
                )
    return parts


def _span(a: float, b: float) -> tuple[float, float]:
    lo, hi = sorted((a, b))
    if lo == hi:
        return (lo, hi + 1) if hi < 1000 else (lo - 1, hi)
    return lo, hi


def proper_boxes(parts: list) -> list:
    """The same parts with every box's corners in order and of positive size."""
    out = []
    for p in parts:
        if isinstance(p, Boxes):
            boxes = []
            for b in p.boxes:
                (x1, x2), (y1, y2) = _span(b.x1, b.x2), _span(b.y1, b.y2)
                boxes.append(Box(x1, y1, x2, y2, b.frame))
            p = Boxes(tuple(boxes), p.image_index)
        out.append(p)
    return out


@given(grounded())
def test_json_syntax_round_trip(parts):
    text = render_json_parts(parts)
    assert parse_json_grounding(text) == parts
    assert render_json_parts(parse_json_grounding(text)) == text


@given(grounded())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=40)
def test_both_syntaxes_round_trip_through_files(parts):
    parts = proper_boxes(parts)  # writing refuses reversed and empty boxes (VD201)
    sample = Sample(
        [Message("user", [ImageSlot(0), Text("\nq")]), Message("assistant", parts)], [MediaRef("a.png", "/data/a.png")]
    )
    with tempfile.TemporaryDirectory() as tmp:
        for syntax in ("tokens", "json"):
            out = os.path.join(tmp, f"{syntax}.json")
            vlmdata.write([sample], out, "qwen", root="/data", qwen_boxes=syntax)
            text = json.loads(Path(out).read_text())[0]["conversations"][1]["value"]
            back = next(vlmdata.read(out, format="qwen", root="/data"))
            assert back.messages[1].parts == parts, syntax
            again = os.path.join(tmp, f"{syntax}-again.json")
            vlmdata.write([back], again, "qwen", root="/data", qwen_boxes=syntax)
            assert json.loads(Path(again).read_text())[0]["conversations"][1]["value"] == text


# --- Qwen2.5-VL pixels <-> 0-1000 (docs/frames.md#pixel_resized) ----------------------------------


def qwen25_round_trip(tmp: Path, size: tuple[int, int], boxes: list[tuple[int, int, int, int]], **opts) -> list:
    """Qwen2.5-VL file -> InternVL (0-1000) -> Qwen2.5-VL file; the boxes read at the end."""
    fake_png(tmp / "img" / "a.png", *size)
    answer = render_json_parts([Boxes(tuple(Box(*b, Frame.NORM1000) for b in boxes))])
    src = write_json(tmp / "q.json", [record(answer)])
    common = {"root": str(tmp / "img"), "qwen_model": "qwen2.5-vl", **opts}
    first = vlmdata.convert(str(src), str(tmp / "i.jsonl"), to="internvl", from_format="qwen", **common)
    second = vlmdata.convert(str(tmp / "i.jsonl"), str(tmp / "back.json"), to="qwen", qwen_boxes="json", **common)
    assert first.ok and second.ok and first.tally.clamped == second.tally.clamped == 0
    resized = resized_size(*size, **{k: v for k, v in opts.items() if k.endswith("pixels")})
    assert first.tally.frames == {f"pixel_resized {resized[0]}x{resized[1]} (read)": len(boxes)}
    assert second.tally.frames == {f"pixel_resized {resized[0]}x{resized[1]} (written)": len(boxes)}
    back = next(vlmdata.read(str(tmp / "back.json"), format="qwen", **common))
    got = back.messages[1].parts[0].boxes
    assert all(b.frame is Frame.PIXEL_RESIZED and b.resized == resized for b in got)
    return [b.coords() for b in got]


@pytest.mark.parametrize(
    ("size", "opts", "box"),
    [
        ((640, 428), {"max_pixels": TRANSFORMERS_MAX_PIXELS}, (147, 134, 619, 407)),  # the notebook (644x420)
        ((640, 428), {}, (0, 0, 643, 419)),  # the corners of the resized frame
        ((422, 359), {}, (1, 2, 419, 363)),  # qwen-finetune-demo 10095.png -> 420x364
        ((4000, 3000), {"image_max_pixels": 589_824}, (10, 20, 895, 671)),  # LLaMA-Factory -> 896x672
        ((30, 20), {}, (0, 0, 55, 55)),  # tiny -> scaled up to min_pixels: 84x56
        ((900, 30), {}, (0, 0, 895, 27)),  # a long strip -> 896x28
    ],
)
def test_qwen25_to_internvl_and_back_is_exact_table(tmp_path: Path, size, opts, box):
    assert qwen25_round_trip(tmp_path, size, [box], **opts) == [box]


sizes = st.tuples(st.integers(28, 6000), st.integers(28, 6000)).filter(lambda s: max(s) / min(s) <= 200)
max_pixels_choice = st.sampled_from([TRANSFORMERS_MAX_PIXELS, 451_584, 200_704, 50_176])


@given(sizes, max_pixels_choice, st.data())
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None, max_examples=40)
def test_qwen25_to_internvl_and_back_is_exact_property(size, max_pixels, data):
    w2, h2 = resized_size(*size, max_pixels=max_pixels)
    assume(max(w2, h2) < 1000)  # else 0-1000 has fewer steps than the resized side: see the tests below
    xs = st.integers(0, w2 - 1)
    ys = st.integers(0, h2 - 1)
    corners = data.draw(st.lists(st.tuples(xs, ys, xs, ys), min_size=1, max_size=3))
    # proper boxes only (x1 < x2, y1 < y2): convert refuses reversed and empty ones (VD201)
    boxes = [(min(a, c), min(b, d), max(a, c), max(b, d)) for a, b, c, d in corners if a != c and b != d]
    assume(boxes)
    with tempfile.TemporaryDirectory() as tmp:
        assert qwen25_round_trip(Path(tmp), size, boxes, max_pixels=max_pixels) == boxes


@given(sizes, st.sampled_from([QWEN2_MAX_PIXELS, TRANSFORMERS_MAX_PIXELS, 200_704]), st.data())
def test_qwen25_through_norm1000_frame_arithmetic(size, max_pixels, data):
    """Exact while both resized sides are under 1000 px; beyond, 0-1000 cannot name every pixel and
    the round trip is off by at most W'/2000 + 0.5 px (e.g. 1 px on a 1288 px wide resized image)."""
    resized = resized_size(*size, max_pixels=max_pixels)
    v = (data.draw(st.integers(0, resized[0] - 1)), data.draw(st.integers(0, resized[1] - 1)))
    box = Box(v[0], v[1], None, None, Frame.PIXEL_RESIZED, resized)
    norm, clamped = convert_box(box, Frame.NORM1000, lambda: size)
    back, clamped_back = convert_box(norm, Frame.PIXEL_RESIZED, lambda: size, resized=resized)
    assert clamped == 0
    if max(resized) < 1000:
        assert clamped_back == 0
    for got, want, side in zip(back.coords(), v, resized, strict=True):
        if side < 1000:
            assert got == want
        else:
            assert abs(got - want) <= side / 2000 + 0.5


def test_qwen25_large_resized_side_is_not_exact_through_norm1000(tmp_path: Path):
    # 4000x3000 under the default max_pixels is 4004x2996 resized: 4 resized pixels per 0-1000 step,
    # so pixel 1 becomes 0-1000 value 0 and comes back as 0 (the documented limit of the round trip)
    fake_png(tmp_path / "img" / "a.png", 4000, 3000)
    src = write_json(tmp_path / "q.json", [record("<|box_start|>(1,1),(4003,2995)<|box_end|>")])
    common = {"root": str(tmp_path / "img"), "qwen_model": "qwen2.5-vl"}
    vlmdata.convert(str(src), str(tmp_path / "i.jsonl"), to="internvl", from_format="qwen", **common)
    vlmdata.convert(str(tmp_path / "i.jsonl"), str(tmp_path / "b.json"), to="qwen", **common)
    back = next(vlmdata.read(str(tmp_path / "b.json"), format="qwen", **common))
    assert back.messages[1].parts[0].boxes[0].coords() == (0, 0, 4003, 2995)


def test_qwen25_missing_image_rejected_naming_it(tmp_path: Path):
    rows = [record("<|box_start|>(1,2),(3,4)<|box_end|>", image="gone.png"), record("no boxes", image="gone.png")]
    src = write_json(tmp_path / "in.json", rows)
    report = vlmdata.convert(
        str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="qwen", qwen_model="qwen2.5-vl", sizes=False
    )
    assert (report.written, report.rejected) == (1, 1)  # a record without boxes needs no size
    assert "image 'gone.png'" in report.rejections[0].error and "smart-resized" in report.rejections[0].error
    no_image = write_json(
        tmp_path / "n.json", [record("<|box_start|>(1,2),(3,4)<|box_end|>", image=None, question="q")]
    )
    report = vlmdata.convert(
        str(no_image), str(tmp_path / "o.jsonl"), to="internvl", from_format="qwen", qwen_model="qwen2.5-vl"
    )
    assert report.rejected == 1 and "boxes but no image" in report.rejections[0].error


def test_qwen25_aspect_ratio_over_200_rejected_naming_the_image(tmp_path: Path):
    fake_png(tmp_path / "strip.png", 201 * 28, 28)
    src = write_json(tmp_path / "in.json", [record("<|box_start|>(1,2),(3,4)<|box_end|>", image="strip.png")])
    report = vlmdata.convert(
        str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="qwen", qwen_model="qwen2.5-vl"
    )
    assert report.rejected == 1
    assert "image 'strip.png' is 5628x28: absolute aspect ratio must be smaller than 200" in report.rejections[0].error


def test_bad_qwen_options_are_usage_errors(tmp_path: Path):
    sample = Sample([Message("user", [Text("q")]), Message("assistant", [Text("a")])])
    with pytest.raises(VlmdataError, match="--qwen-model must be one of"):
        vlmdata.write([sample], str(tmp_path / "o.json"), "qwen", qwen_model="qwen2.5")
    with pytest.raises(VlmdataError, match="--qwen-boxes must be one of"):
        vlmdata.write([sample], str(tmp_path / "o.json"), "qwen", qwen_boxes="xml")


def test_report_notes_name_the_resized_frames(tmp_path: Path):
    fake_png(tmp_path / "a.png", 640, 428)
    fake_png(tmp_path / "b.png", 1000, 1000)
    rows = [
        record("<|box_start|>(1,2),(3,4)<|box_end|><|box_start|>(5,6),(7,8)<|box_end|>"),
        record("<|box_start|>(1,2),(3,4)<|box_end|>", image="b.png"),
    ]
    src = write_json(tmp_path / "in.json", rows)
    report = vlmdata.convert(
        str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="qwen", qwen_model="qwen2.5-vl", workers=2
    )
    assert report.ok
    assert report.to_dict()["frames"] == {"pixel_resized 644x420 (read)": 2, "pixel_resized 1008x1008 (read)": 1}
    note = next(n for n in report.notes() if n.startswith("boxes per frame"))
    assert "pixel_resized 644x420 (read): 2; pixel_resized 1008x1008 (read): 1" in note


def test_cli_qwen_options(tmp_path: Path):
    fake_png(tmp_path / "a.png", 640, 428)
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {
                "image": "a.png",
                "conversations": [
                    {"from": "human", "value": "<image>\nq"},
                    {"from": "gpt", "value": "<ref>bowl of carrots</ref><box>[[228, 320, 961, 970]]</box>"},
                ],
            }
        ],
    )
    out = tmp_path / "q.json"
    args = [
        "convert",
        str(src),
        "--from",
        "internvl",
        "--to",
        "qwen",
        "-o",
        str(out),
        "--qwen-model",
        "qwen2.5-vl",
        "--qwen-boxes",
        "json",
        "--max-pixels",
        str(TRANSFORMERS_MAX_PIXELS),
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "pixel_resized 644x420 (written): 1" in res.output
    value = json.loads(out.read_text())[0]["conversations"][1]["value"]
    assert value == '```json\n[\n\t{"bbox_2d": [147, 134, 619, 407], "label": "bowl of carrots"}\n]\n```'
    res = CliRunner().invoke(main, [*args[:-1], "1000", "--min-pixels", "5000"])
    assert res.exit_code == 2 and "--max-pixels (1000) must be at least --min-pixels (5000)" in res.output
