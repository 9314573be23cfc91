"""Issue 12: convert never writes a record its target consumer would abort on or read with another
meaning; the consumer facts live in vlmdata/consumers and both convert and validate ask them.

Expected values are computed here by hand from the consumers' documented behaviour (box arithmetic
in the comments), never taken from vlmdata's output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import vlmdata
from tests.conftest import make_image, read_jsonl, write_jsonl
from vlmdata.errors import VlmdataError

TAG_TARGETS = ["swift", "sharegpt", "internvl", "llava", "qwen"]


def out_name(to: str) -> str:
    return "out.json" if to in ("sharegpt", "llava", "qwen") else "out.jsonl"


def convert(tmp_path: Path, rows: list[dict[str, Any]], to: str, **kw: Any) -> tuple[Any, Path]:
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / out_name(to)
    report = vlmdata.convert(str(src), str(out), to=to, **kw)
    return report, out


def written(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return read_jsonl(out) if out.suffix == ".jsonl" else json.loads(out.read_text())


def codes_of(report: Any) -> list[str]:
    return [r.error.split(" ", 1)[0] for r in report.rejections]


def hf_row(text: str, kind: str = "image", path: str = "a.jpg") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": [{"type": kind, kind: path}, {"type": "text", "text": text}]},
            {"role": "assistant", "content": "It is markup."},
        ]
    }


# --------------------------------------------------------------------------- 1. literal media tags


@pytest.mark.parametrize("to", TAG_TARGETS)
def test_literal_image_tag_in_hf_text_is_rejected_for_tag_formats(tmp_path: Path, to: str):
    make_image(tmp_path / "a.jpg", (64, 48))
    report, out = convert(
        tmp_path, [hf_row("What does <image> mean in HTML?")], to, from_format="hf", root=str(tmp_path)
    )
    assert (report.written, report.rejected) == (0, 1)
    assert codes_of(report) == ["VD108"]
    assert "'<image>'" in report.rejections[0].error and report.rejections[0].line == 1
    assert written(out) == []


def test_literal_video_tag_in_hf_text_is_rejected(tmp_path: Path):
    (tmp_path / "v.mp4").write_bytes(b"\0" * 16)
    row = hf_row("Is <video> a tag?", kind="video", path="v.mp4")
    report, _ = convert(tmp_path, [row], "swift", from_format="hf", root=str(tmp_path))
    assert codes_of(report) == ["VD108"] and "'<video>'" in report.rejections[0].error


def test_literal_tag_stays_text_for_trl(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (64, 48))
    report, out = convert(tmp_path, [hf_row("What does <image> mean?")], "hf", from_format="hf", root=str(tmp_path))
    assert report.written == 1
    blocks = written(out)[0]["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["image", "text"] and blocks[1]["text"] == "What does <image> mean?"


# --------------------------------------------------------------------------- 2. markup in prose


def swift_row(user: str, answer: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": "<image>" + user}, {"role": "assistant", "content": answer}],
        "images": ["a.jpg"],
        **extra,
    }


def test_internvl_markup_in_swift_prose_is_kept_as_text_for_swift(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    report, out = convert(tmp_path, [swift_row("Why write <ref>cat</ref>?", "Style.")], "swift")
    assert report.written == 1
    (rec,) = written(out)
    assert rec["messages"][0]["content"] == "<image>Why write <ref>cat</ref>?"  # not <ref-object> + objects
    assert "objects" not in rec


def test_markup_in_swift_prose_is_rejected_where_the_target_reads_it(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    row = swift_row("Is <|box_start|>(1,2),(3,4)<|box_end|> a box?", "Yes.")
    report, _ = convert(tmp_path / "q", [row], "qwen")
    assert codes_of(report) == ["VD108"] and "<|box_start|>" in report.rejections[0].error
    report, _ = convert(tmp_path / "i", [swift_row("Why <ref>cat</ref>?", "Style.")], "internvl")
    assert codes_of(report) == ["VD108"]


def test_qwen_tokens_in_swift_prose_reach_llava_as_the_text_written(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    text = "Is <|box_start|>(1,2),(3,4)<|box_end|> a box?"
    report, out = convert(tmp_path, [swift_row(text, "Yes.")], "llava")
    assert report.written == 1
    value = written(out)[0]["conversations"][0]["value"]
    assert text in value and "[0.0" not in value


def test_native_grounding_opt_in_reads_the_models_markup(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    row = swift_row("Where?", "<|box_start|>(100,200),(300,400)<|box_end|>")
    report, out = convert(tmp_path, [row], "internvl", native_grounding="qwen")
    assert report.written == 1
    assert written(out)[0]["conversations"][1]["value"] == "<box>[[100, 200, 300, 400]]</box>"  # 0-1000 both


# --------------------------------------------------------------------------- 3. reversed and empty boxes


def objects_row(bbox: list[int], image: Path) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": "<image>Find <ref-object>"},
            {"role": "assistant", "content": "<bbox>"},
        ],
        "images": [str(image)],  # ms-swift resolves relative paths against the working directory
        "objects": {"ref": ["cat"], "bbox": [bbox], "bbox_type": "real"},
    }


@pytest.mark.parametrize("to", ["internvl", "llava", "qwen", "sharegpt", "swift", "hf"])
def test_reversed_box_is_rejected_with_vd201(tmp_path: Path, to: str):
    make_image(tmp_path / "a.jpg", (640, 480))
    report, out = convert(tmp_path, [objects_row([300, 250, 100, 50], tmp_path / "a.jpg")], to)
    assert (report.written, codes_of(report)) == (0, ["VD201"])
    assert written(out) == []


def test_fix_boxes_swap_writes_the_box_with_a_note(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    row = objects_row([300, 250, 100, 50], tmp_path / "a.jpg")
    report, out = convert(tmp_path, [row], "internvl", fix_boxes="swap")
    assert report.written == 1 and report.tally.swapped_boxes == 1
    # swapped: [100, 50, 300, 250] px on 640x480 -> round(100/640*1000)=156, round(50/480*1000)=104,
    # round(300/640*1000)=469 (468.75), round(250/480*1000)=521 (520.8)
    assert written(out)[0]["conversations"][1]["value"] == "<box>[[156, 104, 469, 521]]</box>"
    assert any("in.jsonl:1" in n and "swapped" in n for n in report.notes())


def test_empty_box_is_rejected_even_with_swap(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    report, _ = convert(tmp_path, [objects_row([100, 50, 100, 80], tmp_path / "a.jpg")], "internvl", fix_boxes="swap")
    assert codes_of(report) == ["VD201"]


# --------------------------------------------------------------------------- 4. sharegpt paths vs media_dir


def test_sharegpt_paths_resolve_from_the_dataset_info_folder(tmp_path: Path):
    make_image(tmp_path / "img" / "a.jpg", (64, 48))
    rows = [swift_row("Hi", "Hello", images=["a.jpg"])]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    info = tmp_path / "lf" / "dataset_info.json"
    info.parent.mkdir()
    report = vlmdata.convert(
        str(src), str(tmp_path / "lf" / "d.json"), to="sharegpt", root=str(tmp_path / "img"), dataset_info=str(info)
    )
    assert report.written == 1
    path = json.loads((tmp_path / "lf" / "d.json").read_text())[0]["images"][0]
    assert os.path.isfile(os.path.join(info.parent, path))  # LLaMA-Factory: os.path.join(media_dir, path)
    assert any("media_dir" in n for n in report.notes())


def test_media_dir_option_and_the_setting_it_needs(tmp_path: Path):
    make_image(tmp_path / "img" / "a.jpg", (64, 48))
    src = write_jsonl(tmp_path / "in.jsonl", [swift_row("Hi", "Hello", images=["a.jpg"])])
    info = tmp_path / "lf" / "dataset_info.json"
    info.parent.mkdir()
    report = vlmdata.convert(
        str(src),
        str(tmp_path / "lf" / "d.json"),
        to="sharegpt",
        root=str(tmp_path / "img"),
        dataset_info=str(info),
        media_dir=str(tmp_path / "img"),
    )
    assert json.loads((tmp_path / "lf" / "d.json").read_text())[0]["images"] == ["a.jpg"]
    assert any(f"media_dir: {tmp_path / 'img'}" in n for n in report.notes())


def test_sharegpt_without_dataset_info_writes_absolute_paths(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (64, 48))
    src = write_jsonl(tmp_path / "in.jsonl", [swift_row("Hi", "Hello", images=["a.jpg"])])
    vlmdata.convert(str(src), str(tmp_path / "d.json"), to="sharegpt", root=str(tmp_path))
    assert json.loads((tmp_path / "d.json").read_text())[0]["images"] == [str(tmp_path / "a.jpg")]


# --------------------------------------------------------------------------- 5. options that do not apply


def test_qwen_model_applies_to_sharegpt_boxes(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (640, 480))
    row = objects_row([10, 20, 300, 400], tmp_path / "a.jpg")
    report, out = convert(tmp_path, [row], "sharegpt", qwen_model="qwen2.5-vl")
    assert report.written == 1
    # smart_resize(480, 640, factor 28): 640/28=22.86 -> 23*28=644, 480/28=17.14 -> 17*28=476 (within the pixel
    # limits); boxes: round(10*644/640)=10, round(20*476/480)=20 (19.83), round(300*644/640)=302 (301.9),
    # round(400*476/480)=397 (396.7)
    assert written(out)[0]["conversations"][1]["value"] == "<|box_start|>(10,20),(302,397)<|box_end|>"


@pytest.mark.parametrize(
    ("to", "option"),
    [
        ("internvl", {"embed_images": True}),
        ("internvl", {"qwen_boxes": "json"}),
        ("swift", {"qwen_model": "qwen2.5-vl"}),
        ("llava", {"media_dir": "x"}),
        ("internvl", {"hf_layout": "prompt-completion"}),
        ("qwen", {"sizes": False}),
    ],
)
def test_an_option_the_target_does_not_use_is_a_usage_error(tmp_path: Path, to: str, option: dict[str, Any]):
    src = write_jsonl(tmp_path / "in.jsonl", [swift_row("Hi", "Hello")])
    with pytest.raises(VlmdataError, match=r"--[a-z-]+ "):
        vlmdata.convert(str(src), str(tmp_path / out_name(to)), to=to, **option)
    assert not (tmp_path / out_name(to)).exists()


def test_cli_reports_an_option_that_does_not_apply(tmp_path: Path):
    from click.testing import CliRunner

    from vlmdata.cli import main

    src = write_jsonl(tmp_path / "in.jsonl", [swift_row("Hi", "Hello")])
    result = CliRunner().invoke(
        main, ["convert", str(src), "--to", "internvl", "-o", str(tmp_path / "o.jsonl"), "--qwen-model", "qwen2.5-vl"]
    )
    assert result.exit_code == 2 and "--qwen-model" in result.output


# --------------------------------------------------------------------------- 6. URL media


@pytest.mark.parametrize(
    ("to", "keeps"),
    [("internvl", False), ("sharegpt", False), ("llava", False), ("qwen", False), ("swift", True), ("hf", True)],
)
def test_url_media_per_target(tmp_path: Path, to: str, keeps: bool):
    url = "https://example.com/cat.jpg"
    report, out = convert(tmp_path, [swift_row("What?", "A cat.", images=[url])], to)
    if keeps:
        assert report.written == 1 and url in json.dumps(written(out))
    else:
        assert codes_of(report) == ["VD109"] and url in report.rejections[0].error


# --------------------------------------------------------------------------- 7. turn order (LLaVA)


def test_llava_writer_refuses_two_human_turns_in_a_row(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (64, 48))
    row = {
        "messages": [
            {"role": "user", "content": "<image>Hi"},
            {"role": "user", "content": "What is it?"},
            {"role": "assistant", "content": "A cat."},
        ],
        "images": ["a.jpg"],
    }
    report, _ = convert(tmp_path, [row], "llava")
    assert codes_of(report) == ["VD112"]


def test_llava_reader_drops_a_leading_gpt_turn_as_llava_does(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (64, 48))
    rows = [
        {
            "id": "1",
            "image": "a.jpg",
            "conversations": [
                {"from": "gpt", "value": "Hello!"},
                {"from": "human", "value": "<image>\nWhat is it?"},
                {"from": "gpt", "value": "A cat."},
            ],
        }
    ]
    src = tmp_path / "l.json"
    src.write_text(json.dumps(rows))
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", from_format="llava")
    (rec,) = read_jsonl(tmp_path / "o.jsonl")
    assert [m["role"] for m in rec["messages"]] == ["user", "assistant"]
    assert report.tally.dropped_turns == 1


# --------------------------------------------------------------------------- 8. LLaMA-Factory's own demo


@pytest.fixture
def mllm_demo(realdata: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(realdata / "lf-mllm-demo", folder)
    return folder


def test_mllm_demo_is_read_as_its_dataset_info_entry(mllm_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from vlmdata.validators import validate

    monkeypatch.chdir(tmp_path)  # not the data folder: ms-swift's working-directory rule would miss every image
    report = validate(str(mllm_demo / "mllm_demo.json"))
    assert report.errors == 0 and report.media == 8  # images [2,1,1,2,1,1] -> 8 paths, all found
    samples = list(vlmdata.read(str(mllm_demo / "mllm_demo.json")))
    assert all(os.path.isfile(m.resolved) for s in samples for m in s.images)
    conv = vlmdata.convert(str(mllm_demo / "mllm_demo.json"), str(tmp_path / "o.jsonl"), to="internvl")
    assert (conv.input_format, conv.written) == ("sharegpt", 6)


def test_dataset_info_picks_the_entry_naming_the_file(mllm_demo: Path):
    # the real dataset_info.json has several sharegpt entries; the one whose file_name is the file is used
    samples = list(
        vlmdata.read(
            str(mllm_demo / "mllm_demo.json"), format="sharegpt", dataset_info=str(mllm_demo / "dataset_info.json")
        )
    )
    assert len(samples) == 6


# --------------------------------------------------------------------------- 9. media in typed blocks


@pytest.mark.parametrize(
    "block",
    [
        {"type": "image", "image": "missing.jpg"},
        {"type": "image_url", "image_url": {"url": "missing.jpg"}},
        {"type": "image_url", "value": "missing.jpg"},
    ],
)
def test_validate_checks_images_inside_typed_blocks(
    tmp_path: Path, block: dict[str, Any], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    row = {
        "messages": [
            {"role": "user", "content": [block, {"type": "text", "text": "What?"}]},
            {"role": "assistant", "content": "A cat."},
        ]
    }
    src = write_jsonl(tmp_path / "d.jsonl", [row])
    from vlmdata.validators import validate

    report = validate(str(src), from_format="hf")
    assert [f.code for f in report.findings if f.severity == "error"] == ["VD301"]


# --------------------------------------------------------------------------- 10. show draws what the model sees


def test_show_reads_qwen25_boxes_in_the_resized_frame(tmp_path: Path):
    from vlmdata.tools.show import frame_name, pick_index, plan

    make_image(tmp_path / "a.jpg", (640, 480))
    rows = [
        {
            "image": "a.jpg",
            "conversations": [
                {"from": "human", "value": "<image>\nWhere?"},
                {"from": "gpt", "value": "<|box_start|>(10,20),(302,397)<|box_end|>"},
            ],
        }
    ]
    src = tmp_path / "q.json"
    src.write_text(json.dumps(rows))
    item = pick_index([str(src)], 0, None, "qwen", {"qwen_model": "qwen2.5-vl"})
    shape = plan(item.sample).images[0].shapes[0]
    # resized 644x476: 10*640/644=9.94, 20*480/476=20.17, 302*640/644=300.12, 397*480/476=400.34
    assert shape.box.coords() == pytest.approx((9.94, 20.17, 300.12, 400.34), abs=0.01)
    assert frame_name(shape.source) == "pixels of the 644x476 resized image (Qwen2.5-VL)"
    plain = plan(pick_index([str(src)], 0, None, "qwen").sample).images[0].shapes[0]
    assert plain.box.coords() == pytest.approx((6.4, 9.6, 193.28, 190.56), abs=0.01)  # 0-1000 of 640x480


# --------------------------------------------------------------------------- public API and consumer registry


def test_validate_is_public_and_returns_the_json_findings(tmp_path: Path):
    src = write_jsonl(tmp_path / "d.jsonl", [swift_row("Hi", "Hello", images=["a.jpg", "b.jpg"])])
    report = vlmdata.validate(str(src), target="llamafactory", select=["VD1"])
    data = report.to_dict()
    assert data["errors"] == 1 and data["findings"][0]["code"] == "VD101"


def test_every_target_has_one_consumer_module():
    from vlmdata.consumers import CONSUMER_OF_FORMAT, TARGETS, get_consumer
    from vlmdata.validators.context import TARGETS as VALIDATE_TARGETS

    assert VALIDATE_TARGETS == TARGETS
    for name in TARGETS:
        c = get_consumer(name)
        assert c.name == name and c.raw_roles and c.role_effect and c.paths and c.grounding
    assert set(CONSUMER_OF_FORMAT.values()) == set(TARGETS)


# --------------------------------------------------------------------------- the write-time check stays exact when fast


def test_a_box_emptied_by_the_target_frame_is_rejected_after_a_clean_record_of_the_same_shape(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (4000, 3000))
    clean = objects_row([100, 100, 900, 300], tmp_path / "a.jpg")
    # 1 norm1000 step = 4 px here: x1 = 100 -> round(25.0) = 25 and x2 = 101 -> round(25.25) = 25, so the
    # box that is fine in pixels is empty in InternVL's 0-1000 frame
    emptied = objects_row([100, 100, 101, 300], tmp_path / "a.jpg")
    reversed_ = objects_row([900, 100, 100, 300], tmp_path / "a.jpg")
    report, out = convert(tmp_path, [clean, emptied, clean, reversed_], "internvl")
    assert [(r.line, r.error.split(" ", 1)[0]) for r in report.rejections] == [(2, "VD201"), (4, "VD201")]
    assert "[25, 33, 25, 100]" in report.rejections[0].error  # y: round(100/3000*1000)=33, round(300/3000*1000)=100
    assert len(written(out)) == 2


def test_a_record_of_a_passed_shape_is_still_refused_when_its_own_media_is_a_url(tmp_path: Path):
    make_image(tmp_path / "a.jpg", (64, 48))
    ok = swift_row("What?", "A cat.", images=[str(tmp_path / "a.jpg")])
    url = swift_row("What?", "A cat.", images=["https://example.com/cat.jpg"])
    report, _ = convert(tmp_path, [ok, ok, url], "internvl")
    assert [(r.line, r.error.split(" ", 1)[0]) for r in report.rejections] == [(3, "VD109")]


def test_validate_reads_qwen25_boxes_in_the_frame_convert_wrote(tmp_path: Path):
    from click.testing import CliRunner

    from vlmdata.cli import main

    make_image(tmp_path / "a.jpg", (2000, 1500))
    row = objects_row([1500, 100, 1900, 1400], tmp_path / "a.jpg")
    _report, out = convert(tmp_path, [row], "sharegpt", qwen_model="qwen2.5-vl")
    # smart_resize: 2000/28=71.4 -> 1988, 1500/28=53.6 -> 1512; round(1500*1988/2000)=1491, round(100*1512/1500)=101,
    # round(1900*1988/2000)=1889 (1888.6), round(1400*1512/1500)=1411 (1411.2)
    assert written(out)[0]["conversations"][1]["value"] == "<|box_start|>(1491,101),(1889,1411)<|box_end|>"
    as_0_1000 = vlmdata.validate(str(out), target="llamafactory", select=["VD2"])
    assert [f.code for f in as_0_1000.findings] == ["VD202"]  # 1491 read as 0-1000 is out of range
    assert vlmdata.validate(str(out), target="llamafactory", select=["VD2"], qwen_model="qwen2.5-vl").errors == 0
    cli = CliRunner().invoke(main, ["validate", str(out), "--select", "VD2", "--qwen-model", "qwen2.5-vl"])
    assert cli.exit_code == 0, cli.output


def test_the_python_write_api_refuses_what_the_consumer_would_misread(tmp_path: Path):
    from vlmdata.errors import RecordError
    from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Sample, Text

    make_image(tmp_path / "a.jpg", (640, 480))
    box = Boxes((Box(300, 250, 100, 50, Frame.PIXEL),))
    sample = Sample(
        [Message("user", [ImageSlot(0), Text("Where?")]), Message("assistant", [box])],
        [MediaRef("a.jpg", str(tmp_path / "a.jpg"))],
    )
    with pytest.raises(RecordError, match="VD201"):
        vlmdata.write([sample], str(tmp_path / "o.jsonl"), "internvl", root=str(tmp_path))
    assert not (tmp_path / "o.jsonl").exists()
