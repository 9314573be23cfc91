"""Format-specific reading and writing rules (docs/ sections cited per test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vlmdata
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Boxes, Frame, ImageSlot, Points, Ref, Text

from .conftest import make_image, read_jsonl, write_jsonl


def convert(tmp_path: Path, rows, to: str, src_fmt: str | None = None, name: str = "in.jsonl", **kw):
    src = write_jsonl(tmp_path / name, rows) if isinstance(rows, list) and name.endswith("l") else rows
    if name.endswith(".json"):
        src = tmp_path / name
        src.write_text(json.dumps(rows))
    out = tmp_path / ("out.json" if to == "llava" else "out.jsonl")
    report = vlmdata.convert(str(src), str(out), to=to, from_format=src_fmt, **kw)
    return report, out


# --- ms-swift current (docs/formats.md#swift-objects) ---------------------------------------------


def test_swift_objects_to_internvl_exact_numbers(tmp_path: Path):
    make_image(tmp_path / "img" / "x.jpg", (900, 800))
    row = {  # ms-swift Custom-dataset.md grounding row 2 (sheep), image size 900x800
        "messages": [
            {"role": "user", "content": "<image>Find the <ref-object> in the image"},
            {"role": "assistant", "content": "<bbox><bbox>"},
        ],
        "images": ["x.jpg"],
        "objects": {"ref": ["sheep"], "bbox": [[90.9, 160.8, 135, 212.8], [360.9, 480.8, 495, 532.8]]},
    }
    report, out = convert(tmp_path, [row], "internvl", root=str(tmp_path / "img"))
    assert report.ok
    rec = read_jsonl(out)[0]
    assert rec["image"] == "x.jpg" and (rec["width"], rec["height"]) == (900, 800)
    assert rec["conversations"][0]["value"] == "<image>Find the <ref>sheep</ref> in the image"
    # adjacent <bbox><bbox> = one referent's boxes: InternVL puts them in one <box>
    # (docs/formats.md#internvl-grounding, docs/formats.md#grounding-syntaxes)
    assert rec["conversations"][1]["value"] == "<box>[[101, 201, 150, 266], [401, 601, 550, 666]]</box>"


def test_swift_bbox_type_other_than_norm1_is_refused(tmp_path: Path):
    row = {
        "messages": [{"role": "user", "content": "<image><bbox>"}, {"role": "assistant", "content": "ok"}],
        "images": ["/abs/x.jpg"],
        "objects": {"ref": [], "bbox": [[1, 2, 3, 4]], "bbox_type": "norm_1000"},
    }
    report, _ = convert(tmp_path, [row], "internvl")
    assert report.rejected == 1
    assert "silently read these boxes as pixels" in report.rejections[0].error


def test_swift_missing_tag_is_prepended_to_first_non_system_message(tmp_path: Path):
    rows = [
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
            ],
            "images": ["/a.jpg", "/b.jpg"],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    sample = next(vlmdata.read(str(src)))
    user = sample.messages[1]
    assert [type(p) for p in user.parts] == [ImageSlot, ImageSlot, Text]
    assert [p.index for p in user.parts[:2]] == [0, 1]


def test_swift_surplus_tags_rejected_with_counts(tmp_path: Path):
    rows = [
        {
            "messages": [{"role": "user", "content": "<image><image>x"}, {"role": "assistant", "content": "y"}],
            "images": ["/a.jpg"],
        }
    ]
    report, _ = convert(tmp_path, rows, "swift")
    assert report.rejected == 1 and "2 <image> tag(s) but 1 image(s)" in report.rejections[0].error
    assert "pairs no image with the extra tag(s): remove them" in report.rejections[0].fix


def test_swift_role_aliases_and_message_extras_kept(tmp_path: Path):
    rows = [
        {"messages": [{"from": "human", "value": "q"}, {"role": "gpt", "content": "a", "loss": False}], "custom": 7}
    ]
    report, out = convert(tmp_path, rows, "swift", src_fmt="swift")
    rec = read_jsonl(out)[0]
    assert rec["messages"] == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "loss": False}]
    assert rec["custom"] == 7 and report.ok


def test_swift_openai_blocks_become_tags(realdata: Path):
    sample = next(vlmdata.read(str(realdata / "swift-docs-multimodal" / "openai_multimodal.jsonl")))
    assert [m.path for m in sample.images] == [
        "data:image/png;base64,{base64_encoded}",
        "https://example.com/input.png",
    ]
    assert [type(p) for p in sample.messages[0].parts] == [Text, ImageSlot, ImageSlot]


def test_swift_output_paths_absolute_by_default_relative_on_request(tmp_path: Path):
    make_image(tmp_path / "img" / "a.png", (10, 10))
    rows = [
        {"image": "a.png", "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}
    ]
    _, out = convert(tmp_path, rows, "swift", src_fmt="internvl", root=str(tmp_path / "img"))
    assert read_jsonl(out)[0]["images"] == [str(tmp_path / "img" / "a.png")]
    _, out = convert(tmp_path, rows, "swift", src_fmt="internvl", root=str(tmp_path / "img"), relative_paths=True)
    assert read_jsonl(out)[0]["images"] == ["a.png"]


def test_swift_writes_norm1_for_normalised_boxes_without_probing(tmp_path: Path):
    rows = [
        {
            "image": "missing.png",
            "conversations": [
                {"from": "human", "value": "<image>\nfind"},
                {"from": "gpt", "value": "<ref>cat</ref><box>[[250, 500, 750, 1000]]</box>"},
            ],
        }
    ]
    report, out = convert(tmp_path, rows, "swift", src_fmt="internvl")
    rec = read_jsonl(out)[0]
    assert report.ok
    assert rec["objects"] == {"ref": ["cat"], "bbox": [[0.25, 0.5, 0.75, 1.0]], "bbox_type": "norm1"}
    assert rec["messages"][1]["content"] == "<ref-object><bbox>"


# --- ms-swift legacy (docs/formats.md#swift-legacy) -----------------------------------------------


def test_legacy_objects_json_string_paired_by_index(tmp_path: Path):
    make_image(tmp_path / "img" / "c.jpg", (640, 480))
    row = {
        "query": "Find <ref-object>",
        "response": "<bbox>",
        "images": ["c.jpg"],
        "objects": json.dumps(
            [{"caption": "guy in red", "bbox": [[138, 136, 235, 359], [1, 2, 3, 4]], "bbox_type": "real", "image": 0}]
        ),
    }
    report, out = convert(tmp_path, [row], "internvl", root=str(tmp_path / "img"))
    assert report.ok and report.tally.inserted_tags == 1
    conv = read_jsonl(out)[0]["conversations"]
    assert conv[0]["value"] == "<image>Find <ref>guy in red</ref>"
    expected = [
        [round(138 / 640 * 1000), round(136 / 480 * 1000), round(235 / 640 * 1000), round(359 / 480 * 1000)],
        [round(1 / 640 * 1000), round(2 / 480 * 1000), round(3 / 640 * 1000), round(4 / 480 * 1000)],
    ]
    assert conv[1]["value"] == f"<box>{expected}</box>"


def test_legacy_norm_1000_is_the_x999_scale(tmp_path: Path):
    row = {
        "query": "<image>Find <bbox>",
        "response": "<ref-object>",
        "images": ["/nowhere.jpg"],
        "objects": [{"caption": "c", "bbox": [499, 0, 999, 999], "bbox_type": "norm_1000", "image": 0}],
    }
    src = write_jsonl(tmp_path / "in.jsonl", [row])
    box = next(vlmdata.read(str(src))).messages[0].parts[2].boxes[0]
    assert box.frame is Frame.NORM999
    _report, out = convert(tmp_path, [row], "internvl")
    assert "[[499, 0, 1000, 1000]]" in read_jsonl(out)[0]["conversations"][0]["value"]  # 499/999*1000 = 499.5 -> 499


def test_legacy_history_string_and_system(tmp_path: Path):
    row = {"system": "be nice", "query": "q2", "response": "r2", "history": "[['q1', 'r1']]"}
    src = write_jsonl(tmp_path / "in.jsonl", [row])
    sample = next(vlmdata.read(str(src)))
    assert [(m.role, m.text()) for m in sample.messages] == [
        ("system", "be nice"),
        ("user", "q1"),
        ("assistant", "r1"),
        ("user", "q2"),
        ("assistant", "r2"),
    ]
    _report, out = convert(tmp_path, [row], "swift-legacy")
    assert read_jsonl(out)[0] == {"system": "be nice", "query": "q2", "response": "r2", "history": [["q1", "r1"]]}


def test_legacy_img_tags_become_images(realdata: Path):
    sample = list(vlmdata.read(str(realdata / "swift-legacy-tests" / "multi_modal_1.jsonl"), format="swift-legacy"))[1]
    assert len(sample.images) == 2 and sample.images[0].path.startswith("https://")
    assert sample.messages[2].parts[:2] == [ImageSlot(0), ImageSlot(1)]


def test_legacy_writer_refuses_tool_turns(tmp_path: Path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "tool_call", "content": "{}"},
                {"role": "assistant", "content": "a"},
            ]
        }
    ]
    report, _ = convert(tmp_path, rows, "swift-legacy")
    assert report.rejected == 1 and "query/response rounds" in report.rejections[0].fix


# --- InternVL (docs/formats.md#internvl) ----------------------------------------------------------


def test_internvl_single_image_without_tag_gets_image_newline_in_first_human_turn(tmp_path: Path):
    rows = [
        {
            "image": "a.jpg",
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "q"},
                {"from": "gpt", "value": "a"},
            ],
        }
    ]
    report, out = convert(tmp_path, rows, "internvl")
    conv = read_jsonl(out)[0]["conversations"]
    # never into the system turn (docs/consumers.md#media-tags, peers fixture 10)
    assert conv[0] == {"from": "system", "value": "S"}
    assert conv[1]["value"] == "<image>\nq"
    assert report.tally.inserted_tags == 1


def test_internvl_multi_image_count_mismatch_rejected(tmp_path: Path):
    rows = [
        {
            "image": ["a.jpg", "b.jpg"],
            "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}],
        }
    ]
    report, _ = convert(tmp_path, rows, "internvl")
    assert report.rejected == 1 and "1 <image> tag(s) but 2 image(s)" in report.rejections[0].error
    assert "inserts no tag here: add a <image> tag where each image belongs" in report.rejections[0].fix


def test_internvl_writer_rejects_json_extension(tmp_path: Path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(vlmdata.VlmdataError, match=r"asserts that annotations end in \.jsonl"):
        vlmdata.convert(str(src), str(tmp_path / "out.json"), to="internvl")


def test_internvl_refcoco_doc_example(realdata: Path):
    # docs/formats.md#internvl-grounding: RefCOCO example on a 427x640 image
    samples = list(vlmdata.read(str(realdata / "internvl-doc-examples" / "chat_data_format_examples.jsonl")))
    refcoco = samples[2]
    assert (refcoco.images[0].width, refcoco.images[0].height) == (427, 640)
    answer = refcoco.messages[1].parts
    assert answer[0] == Ref("the lady with the blue shirt")
    assert isinstance(answer[1], Boxes) and answer[1].boxes[0].coords() == (243, 469, 558, 746)


def test_internvl_meta_written_and_updated(tmp_path: Path):
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}] * 3
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    meta = tmp_path / "meta.json"
    meta.write_text(
        json.dumps(
            {"other": {"root": "r", "annotation": "o.jsonl", "data_augment": True, "repeat_time": 2, "length": 9}}
        )
    )
    report = vlmdata.convert(str(src), str(tmp_path / "train.jsonl"), to="internvl", meta=str(meta), root=str(tmp_path))
    data = json.loads(meta.read_text())
    assert data["other"]["repeat_time"] == 2  # other entries kept
    assert data["train"] == {
        "root": str(tmp_path),
        "annotation": str(tmp_path / "train.jsonl"),
        "data_augment": False,
        "repeat_time": 1,
        "length": 3,
    }
    assert report.meta == str(meta)


# --- LLaVA (docs/formats.md#llava) ----------------------------------------------------------------


def test_llava_boxes_two_decimals_and_system_policy(tmp_path: Path):
    make_image(tmp_path / "img" / "a.png", (427, 640))
    rows = [
        {
            "image": "a.png",
            "width": 427,
            "height": 640,
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "<image>\nwhere?"},
                {"from": "gpt", "value": "<ref>lady</ref><box>[[243, 469, 558, 746]]</box>"},
            ],
        }
    ]
    report, _ = convert(tmp_path, rows, "llava", src_fmt="internvl")
    assert report.rejected == 1 and "--system drop" in report.rejections[0].fix
    report, out = convert(tmp_path, rows, "llava", src_fmt="internvl", system="drop")
    rec = json.loads(out.read_text())[0]
    assert report.tally.systems_dropped == 1
    assert rec["conversations"][1]["value"] == "lady [0.24, 0.47, 0.56, 0.75]"  # a space between ref and box
    assert rec["id"] == "in.jsonl-0"  # LLaVA wants an id; made from the origin


def test_llava_padded_square_option(tmp_path: Path):
    make_image(tmp_path / "a.png", (600, 400))
    rows = [
        {
            "id": "1",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nq"},
                {"from": "gpt", "value": "[0.0, 0.33, 0.5, 0.83]"},
            ],
        }
    ]
    (tmp_path / "in.json").write_text(json.dumps(rows))
    sample = next(vlmdata.read(str(tmp_path / "in.json"), llava_padded=True))
    box = sample.messages[1].parts[0].boxes[0]
    assert box.frame is Frame.NORM1_SQUARE
    _report, out = convert(tmp_path, rows, "internvl", name="in.json", llava_padded=True)
    # y: 0.33*600-100 = 98 -> 98/400*1000 = 245; 0.83*600-100 = 398 -> 995
    assert read_jsonl(out)[0]["conversations"][1]["value"] == "<box>[[0, 245, 500, 995]]</box>"


def test_llava_writer_refuses_multi_image(tmp_path: Path):
    rows = [
        {
            "messages": [{"role": "user", "content": "<image><image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["/a.png", "/b.png"],
        }
    ]
    report, _ = convert(tmp_path, rows, "llava")
    assert report.rejected == 1 and "one image per record" in report.rejections[0].fix


def test_points_survive_internvl(tmp_path: Path):
    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>click"},
                {"role": "assistant", "content": "<|box_start|>(246,113)<|box_end|>"},
            ],
            "images": ["/a.png"],
        }
    ]
    _report, out = convert(tmp_path, rows, "internvl", native_grounding="qwen")
    assert read_jsonl(out)[0]["conversations"][1]["value"] == "<box>[[246, 113]]</box>"
    sample = next(vlmdata.read(str(out)))
    assert isinstance(sample.messages[1].parts[0], Points)


def test_unknown_keys_carried_or_reported(tmp_path: Path):
    rows = [
        {
            "id": 5,
            "image": "a.png",
            "source": "web",
            "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}],
        }
    ]
    report, out = convert(tmp_path, rows, "swift", src_fmt="internvl")
    assert read_jsonl(out)[0]["source"] == "web" and read_jsonl(out)[0]["id"] == 5
    rows[0]["messages"] = "clash"  # a key the ms-swift writer owns: it cannot be written back
    report, out = convert(tmp_path, rows, "swift", src_fmt="internvl")
    assert report.tally.dropped_keys == {"messages": 1}
    assert any("'messages' could not be written for 1 record" in n for n in report.notes())


def test_write_api_raises_with_origin(tmp_path: Path):
    rows = [
        {
            "messages": [{"role": "user", "content": "<image><image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["/a.png", "/b.png"],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(RecordError, match=r"in\.jsonl:1: 2 images"):
        vlmdata.write(vlmdata.read(str(src)), str(tmp_path / "o.json"), "llava")
    assert not (tmp_path / "o.json").exists()


def test_internvl_writes_sizes_from_headers_unless_told_not_to(tmp_path: Path):
    make_image(tmp_path / "img" / "a.png", (64, 48))
    make_image(tmp_path / "img" / "b.png", (30, 20))
    rows = [
        {
            "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["a.png"],
        },
        {
            "messages": [{"role": "user", "content": "<image><image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["a.png", "b.png"],
        },
        {
            "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["missing.png"],
        },
    ]
    report, out = convert(tmp_path, rows, "internvl", root=str(tmp_path / "img"))
    recs = read_jsonl(out)
    assert report.ok
    assert (recs[0]["width"], recs[0]["height"]) == (64, 48)
    assert (recs[1]["width_list"], recs[1]["height_list"]) == ([64, 30], [48, 20])
    assert "width" not in recs[2]  # unknown size: omitted, not invented (validate reports missing files)
    _, out = convert(tmp_path, rows, "internvl", root=str(tmp_path / "img"), sizes=False)
    assert "width" not in read_jsonl(out)[0]


def test_convert_is_callable_and_a_package():
    import vlmdata.convert.frames as frames

    assert callable(vlmdata.convert) and frames.convert_box


def test_internvl_single_image_outside_the_first_turn_is_written_as_a_list(tmp_path: Path):
    # InternVL's single-image path would prepend '<image>\n' to conversations[0] (the system
    # prompt here) and leave the real tag literal (peers check, docs/consumers.md#media-tags)
    rows = [
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "<image>q"},
                {"role": "assistant", "content": "a"},
            ],
            "images": ["/a.png"],
        },
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"},
                {"role": "user", "content": "<image>q"},
                {"role": "assistant", "content": "a"},
            ],
            "images": ["/a.png"],
        },
        {
            "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["/a.png"],
        },
    ]
    report, out = convert(tmp_path, rows, "internvl")
    assert report.ok
    assert [r["image"] for r in read_jsonl(out)] == [["/a.png"], ["/a.png"], "/a.png"]


def test_internvl_video_tag_first_turn_with_newline(tmp_path: Path):
    rows = [
        {
            "messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "a"}],
            "videos": ["/v.mp4"],
        },
        {
            "messages": [{"role": "user", "content": "What happens here?"}, {"role": "assistant", "content": "a"}],
            "videos": ["/v.mp4"],
        },
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "<video>\nq"},
                {"role": "assistant", "content": "a"},
            ],
            "videos": ["/v.mp4"],
        },
    ]
    report, out = convert(tmp_path, rows, "internvl")
    recs = read_jsonl(out)
    assert [r["conversations"][0]["value"] for r in recs] == ["<video>\nWhat happens?", "<video>\nWhat happens here?"]
    assert report.rejected == 1 and "first turn only" in report.rejections[0].error


def test_legacy_several_normalised_boxes_are_written_in_pixels(tmp_path: Path):
    # ms-swift <=3.0 handles a list of boxes only for bbox_type real (its norm_1 branch crashes)
    make_image(tmp_path / "img" / "a.png", (200, 100))
    rows = [
        {
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nfind"},
                {"from": "gpt", "value": "<ref>car</ref><box>[[100, 200, 500, 500], [600, 100, 900, 900]]</box>"},
            ],
        },
        {
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nfind"},
                {"from": "gpt", "value": "<ref>car</ref><box>[[100, 200, 500, 500]]</box>"},
            ],
        },
    ]
    report, out = convert(tmp_path, rows, "swift-legacy", src_fmt="internvl", root=str(tmp_path / "img"))
    objs = [json.loads(r["objects"])[0] for r in read_jsonl(out)]
    assert objs[0]["bbox_type"] == "real" and objs[0]["bbox"] == [[20, 20, 100, 50], [120, 10, 180, 90]]
    assert objs[1]["bbox_type"] == "norm_1" and objs[1]["bbox"] == [0.1, 0.2, 0.5, 0.5]
    assert report.tally.legacy_objects == 2 and any("ms-swift <= 3.0" in n for n in report.notes())
