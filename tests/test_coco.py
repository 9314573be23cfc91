"""COCO instances JSON input (--from coco): x,y,w,h -> corner boxes (docs/frames.md#coco-xywh), InternVL
detection / RefCOCO conversations (docs/formats.md#internvl-grounding), and a report that counts everything left out.

Every expected number below is worked out by hand in the comments.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import vlmdata
from vlmdata.cli import main
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, Ref, Text

from .conftest import make_image, read_jsonl

PROMPT = "<image>\nPlease detect and label all objects in the following image and mark their positions."
LEAD = "Sure, I will detect and label all objects in the image and mark their positions.\n\n"
REFER = "Please provide the bounding box coordinate of the region this sentence describes: "


def instances() -> dict:
    return {
        "info": {"description": "test"},
        "licenses": [],
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480, "license": 3, "coco_url": "http://x/a.jpg"},
            {"id": 2, "file_name": "sub/b.png", "width": 300, "height": 200},
            {"id": 3, "file_name": "c.jpg", "width": 100, "height": 100},  # no annotations at all
        ],
        "annotations": [
            # image 1 (640x480)
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0, "area": 1200.0,
             "segmentation": [[10, 20, 40, 20, 40, 60]]},
            {"id": 12, "image_id": 1, "category_id": 3, "bbox": [320, 240, 320, 240], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [100.5, 200.25, 50, 60.5], "iscrowd": 0},
            {"id": 13, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1,
             "segmentation": {"counts": "abc", "size": [480, 640]}},
            # image 2 (300x200)
            {"id": 20, "image_id": 2, "category_id": 18, "bbox": [30, 20, 150, 100], "iscrowd": 0},
            {"id": 21, "image_id": 2, "category_id": 1, "bbox": [5, 5, 0, 10], "iscrowd": 0},  # zero width
            # no such image
            {"id": 30, "image_id": 99, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 0},
        ],
        "categories": [
            {"id": 1, "name": "person", "supercategory": "person"},
            {"id": 3, "name": "dog", "supercategory": "animal"},
            {"id": 18, "name": "cat", "supercategory": "animal"},
        ],
    }  # fmt: skip


def dataset(tmp_path: Path, data: dict | None = None, *, indent: int | None = None) -> tuple[Path, Path]:
    images = tmp_path / "images"
    make_image(images / "a.jpg", (640, 480))
    make_image(images / "sub" / "b.png", (300, 200))
    make_image(images / "c.jpg", (100, 100))
    src = tmp_path / "annotations" / "instances.json"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(json.dumps(instances() if data is None else data, indent=indent), encoding="utf-8")
    return src, images


def convert(tmp_path: Path, to: str = "internvl", data: dict | None = None, **kw):
    src, images = dataset(tmp_path, data)
    out = tmp_path / "out.jsonl"
    report = vlmdata.convert(str(src), str(out), to=to, from_format="coco", root=str(images), **kw)
    return report, (read_jsonl(out) if out.exists() else [])


# --- detection (default) -----------------------------------------------------------------------


def test_coco_to_internvl_exact_numbers(tmp_path: Path):
    report, recs = convert(tmp_path)
    assert [r["id"] for r in recs] == [1, 2, 3]  # one sample per image, in images order
    a, b, c = recs
    assert (a["image"], a["width"], a["height"]) == ("a.jpg", 640, 480)  # sizes from the COCO entry
    assert a["conversations"][0] == {"from": "human", "value": PROMPT}
    # person, ann 10: [10, 20, 30, 40] -> corners [10, 20, 40, 60] on 640x480
    #   round(10/640*1000)=round(15.625)=16, round(20/480*1000)=round(41.67)=42,
    #   round(40/640*1000)=round(62.5)=62 (half-to-even), round(60/480*1000)=125
    # person, ann 13: iscrowd=1 -> left out by default
    # dog, ann 11 (listed after 12 in the file, but boxes go in annotation id order):
    #   [100.5, 200.25, 50, 60.5] -> [100.5, 200.25, 150.5, 260.75]
    #   100.5/640*1000=157.03 -> 157, 200.25/480*1000=417.19 -> 417,
    #   150.5/640*1000=235.16 -> 235, 260.75/480*1000=543.23 -> 543
    # dog, ann 12: [320, 240, 320, 240] -> [320, 240, 640, 480] -> [500, 500, 1000, 1000]
    # categories in the order of `categories`: person (1) before dog (3)
    assert a["conversations"][1] == {
        "from": "gpt",
        "value": LEAD + "<ref>person</ref><box>[[16, 42, 62, 125]]</box>\n"
        "<ref>dog</ref><box>[[157, 417, 235, 543], [500, 500, 1000, 1000]]</box>\n",
    }
    # cat, ann 20 on 300x200: [30, 20, 150, 100] -> [30, 20, 180, 120]
    #   30/300*1000=100, 20/200*1000=100, 180/300*1000=600, 120/200*1000=600
    # person, ann 21: width 0 -> left out
    assert (b["image"], b["width"], b["height"]) == ("sub/b.png", 300, 200)
    assert b["conversations"][1]["value"] == LEAD + "<ref>cat</ref><box>[[100, 100, 600, 600]]</box>\n"
    # image 3 has no annotation: kept, answered that there is nothing to detect
    assert (c["image"], c["width"], c["height"]) == ("c.jpg", 100, 100)
    assert c["conversations"] == [
        {"from": "human", "value": PROMPT},
        {"from": "gpt", "value": "There are no objects to detect."},
    ]
    # standard COCO image keys (license, coco_url) are not carried into the records
    assert "license" not in a and "coco_url" not in a
    # records in = images; every skipped box and the annotation of image 99 are counted
    assert (report.records_in, report.written, report.rejected) == (3, 3, 0)
    t = report.tally
    assert (t.crowd_skipped, t.empty_boxes_skipped, t.unmatched_annotations, t.clamped) == (1, 1, 1, 0)
    notes = "\n".join(report.notes())
    assert "1 COCO crowd box(es) (iscrowd=1) were left out" in notes
    assert "1 COCO box(es) with zero or negative width/height were left out" in notes
    assert "1 COCO annotation(s) name an image_id that is not in images" in notes
    d = report.to_dict()
    assert (d["crowd_skipped"], d["empty_boxes_skipped"], d["unmatched_annotations"]) == (1, 1, 1)


def test_coco_to_swift_pixel_corners(tmp_path: Path):
    report, recs = convert(tmp_path, "swift")
    a, b, c = recs
    images = tmp_path / "images"
    assert a["images"] == [str(images / "a.jpg")]  # ms-swift: absolute paths
    assert a["messages"][0] == {"role": "user", "content": PROMPT}
    assert a["messages"][1]["content"] == LEAD + "<ref-object><bbox>\n<ref-object><bbox><bbox>\n"
    # pixels of the original image (bbox_type real, the default, so not written): x, y, x+w, y+h
    assert a["objects"] == {
        "ref": ["person", "dog"],
        "bbox": [[10, 20, 40, 60], [100.5, 200.25, 150.5, 260.75], [320, 240, 640, 480]],
    }
    assert b["objects"] == {"ref": ["cat"], "bbox": [[30, 20, 180, 120]]}
    assert b["images"] == [str(images / "sub" / "b.png")]
    assert "objects" not in c and c["messages"][1]["content"] == "There are no objects to detect."
    assert (report.records_in, report.written, report.rejected) == (3, 3, 0)
    assert report.tally.crowd_skipped == 1


def test_coco_crowd_include_keeps_crowd_boxes(tmp_path: Path):
    report, recs = convert(tmp_path, coco_crowd="include")
    # ann 13 (crowd) [0, 0, 100, 100] on 640x480 -> [0, 0, 100, 100]
    #   100/640*1000=156.25 -> 156, 100/480*1000=208.33 -> 208; after ann 10 (id order)
    assert recs[0]["conversations"][1]["value"].startswith(
        LEAD + "<ref>person</ref><box>[[16, 42, 62, 125], [0, 0, 156, 208]]</box>\n"
    )
    assert report.tally.crowd_skipped == 0 and report.written == 3


def test_coco_prompt_answer_and_empty_answer_options(tmp_path: Path):
    _, recs = convert(tmp_path, coco_prompt="Find everything.", coco_answer="", coco_empty_answer="Nothing here.")
    assert recs[1]["conversations"] == [
        {"from": "human", "value": "<image>\nFind everything."},
        {"from": "gpt", "value": "<ref>cat</ref><box>[[100, 100, 600, 600]]</box>\n"},  # no lead line
    ]
    assert recs[2]["conversations"][1]["value"] == "Nothing here."


def test_coco_float_boxes_have_no_float_noise(tmp_path: Path):
    data = instances()
    # a real COCO box: 473.07 + 38.65 is 511.71999999999997 in binary floats, 395.93 + 28.67 is 424.6
    data["annotations"] = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [473.07, 395.93, 38.65, 28.67]}]
    _, recs = convert(tmp_path, "swift", data)
    assert recs[0]["objects"]["bbox"] == [[473.07, 395.93, 511.72, 424.6]]


def test_coco_category_order_is_the_categories_list_and_unknown_image_keys_are_carried(tmp_path: Path):
    data = instances()
    data["categories"].reverse()  # cat (18), dog (3), person (1): the file's order decides, not the id
    data["images"][0]["source_dataset"] = "objects365"  # not a COCO key: carried like any unknown key
    _, recs = convert(tmp_path, data=data)
    assert recs[0]["conversations"][1]["value"] == (
        LEAD + "<ref>dog</ref><box>[[157, 417, 235, 543], [500, 500, 1000, 1000]]</box>\n"
        "<ref>person</ref><box>[[16, 42, 62, 125]]</box>\n"
    )
    assert recs[0]["source_dataset"] == "objects365" and "source_dataset" not in recs[1]


def test_coco_read_gives_pixel_corner_boxes_and_sizes(tmp_path: Path):
    src, images = dataset(tmp_path)
    samples = list(vlmdata.read(str(src), format="coco", root=str(images)))
    assert [s.id for s in samples] == [1, 2, 3]
    media = samples[0].images[0]
    assert (media.path, media.resolved, media.width, media.height) == ("a.jpg", str(images / "a.jpg"), 640, 480)
    user, answer = samples[0].messages
    assert user.parts == [ImageSlot(0), Text(PROMPT.removeprefix("<image>"))]
    assert answer.parts[1:3] == [Ref("person"), Boxes((Box(10, 20, 40, 60, Frame.PIXEL),))]
    assert samples[0].origin is not None and samples[0].origin.where().endswith("instances.json[0] (id=1)")


def test_coco_workers_give_the_same_output_and_counts(tmp_path: Path):
    serial, recs = convert(tmp_path)
    parallel, recs2 = convert(tmp_path, workers=2)
    assert recs2 == recs
    assert (parallel.tally.crowd_skipped, parallel.tally.empty_boxes_skipped) == (1, 1)
    assert parallel.tally.unmatched_annotations == serial.tally.unmatched_annotations == 1


# --- referring questions -----------------------------------------------------------------------


def test_coco_refer_one_turn_per_category(tmp_path: Path):
    report, recs = convert(tmp_path, coco_task="refer")
    assert [r["id"] for r in recs] == [1, 2]
    # same numbers as in test_coco_to_internvl_exact_numbers, RefCOCO layout (docs/formats.md#internvl-grounding)
    assert recs[0]["conversations"] == [
        {"from": "human", "value": "<image>\n" + REFER + "<ref>person</ref>"},
        {"from": "gpt", "value": "<ref>person</ref><box>[[16, 42, 62, 125]]</box>"},
        {"from": "human", "value": REFER + "<ref>dog</ref>"},
        {"from": "gpt", "value": "<ref>dog</ref><box>[[157, 417, 235, 543], [500, 500, 1000, 1000]]</box>"},
    ]
    # image 3 has nothing to ask about: rejected with a reason, never dropped silently
    assert (report.records_in, report.written, report.rejected) == (3, 2, 1)
    rejection = report.rejections[0]
    assert rejection.index == 2 and rejection.id == 3
    assert "nothing to ask about" in rejection.error and "--coco-task detect" in rejection.fix


def test_coco_refer_prompt_template(tmp_path: Path):
    _, recs = convert(tmp_path, coco_task="refer", coco_prompt="Where is the {category}?")
    assert recs[1]["conversations"][0]["value"] == "<image>\nWhere is the <ref>cat</ref>?"
    _, recs = convert(tmp_path, coco_task="refer", coco_prompt="Locate:")  # no {category}: the ref goes last
    assert recs[1]["conversations"][0]["value"] == "<image>\nLocate: <ref>cat</ref>"


def test_coco_refer_to_swift_refs_in_questions_and_answers(tmp_path: Path):
    _, recs = convert(tmp_path, "swift", coco_task="refer")
    assert recs[1]["messages"] == [
        {"role": "user", "content": "<image>\n" + REFER + "<ref-object>"},
        {"role": "assistant", "content": "<ref-object><bbox>"},
    ]
    assert recs[1]["objects"] == {"ref": ["cat", "cat"], "bbox": [[30, 20, 180, 120]]}


# --- bad data: counted, rejected with a reason, or a usage error -------------------------------


def test_coco_unknown_category_rejects_its_image(tmp_path: Path):
    data = instances()
    data["annotations"].append({"id": 40, "image_id": 2, "category_id": 77, "bbox": [1, 1, 5, 5]})
    report, recs = convert(tmp_path, data=data)
    assert [r["id"] for r in recs] == [1, 3] and report.rejected == 1
    assert "annotation id=40 has category_id 77, which is not in categories" in report.rejections[0].error


def test_coco_image_whose_boxes_were_all_left_out_is_rejected(tmp_path: Path):
    data = instances()
    data["annotations"] = [{"id": 1, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 50], "iscrowd": 1}]
    report, recs = convert(tmp_path, data=data)
    # images 1 and 2 have no annotation left in this file: answered 'no objects'; image 3's only
    # object is a crowd region: saying it has no objects would be false
    assert [r["id"] for r in recs] == [1, 2] and report.rejected == 1
    assert "1 crowd region(s)" in report.rejections[0].error and "--coco-crowd include" in report.rejections[0].fix
    assert report.tally.crowd_skipped == 0  # counted only on written samples
    report, recs = convert(tmp_path, data=data, coco_crowd="include")
    # [0, 0, 50, 50] on 100x100 -> [0, 0, 500, 500]
    assert report.ok
    assert recs[2]["conversations"][1]["value"] == LEAD + "<ref>person</ref><box>[[0, 0, 500, 500]]</box>\n"


def test_coco_bad_shapes_and_duplicate_ids_are_rejected_by_image(tmp_path: Path):
    data = instances()
    del data["images"][1]["width"]
    data["images"].append({"id": 1, "file_name": "again.jpg", "width": 10, "height": 10})
    data["annotations"].append({"id": 50, "image_id": 3, "category_id": 1, "bbox": [1, 2, 3]})
    report, recs = convert(tmp_path, data=data)
    assert [r["id"] for r in recs] == [1] and report.records_in == 4 and report.rejected == 3
    errors = {r.index: r.error for r in report.rejections}
    assert "image.width: Field required" in errors[1]
    assert "annotations.0.bbox" in errors[2] and "(annotation id=50)" in errors[2]
    assert "image id 1 was already given by images[0]" in errors[3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "not a list"),
        ("{not json", "invalid JSON"),
        (json.dumps({"images": [{"id": 1}], "categories": []}), "needs a 'annotations' list and this one has none"),
        (json.dumps({"images": [], "annotations": [{}], "categories": []}), "images is empty"),
        (json.dumps({"images": [{"id": 1}], "annotations": [], "categories": []}), "annotations is empty"),
        (
            json.dumps(
                {"images": [{}], "annotations": [{}], "categories": [{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]}
            ),
            "category id 1 is both 'a' and 'b'",
        ),
        (json.dumps({"images": [{}], "annotations": [{}], "categories": [{"id": 1}]}), "categories.0.name"),
    ],
)
def test_coco_whole_file_problems_are_usage_errors(tmp_path: Path, content: str, message: str):
    src = tmp_path / "instances.json"
    src.write_text(content)
    with pytest.raises(VlmdataError, match=re.escape(message)):
        vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="coco")


def test_coco_is_input_only(tmp_path: Path):
    with pytest.raises(VlmdataError, match="COCO is an input format; convert from it with --from coco"):
        vlmdata.convert(str(tmp_path / "x.jsonl"), str(tmp_path / "o.json"), to="coco")
    sample = next(vlmdata.read(str(dataset(tmp_path)[0]), format="coco"))
    with pytest.raises(RecordError, match="COCO is an input format"):
        vlmdata.write([sample], str(tmp_path / "o.json"), "coco")


@pytest.mark.parametrize("indent", [None, 2])
def test_coco_file_without_from_says_pass_from_coco(tmp_path: Path, indent: int | None):
    src, _ = dataset(tmp_path, indent=indent)  # one line (read as JSONL) or pretty-printed (one value)
    with pytest.raises(VlmdataError, match=r"looks like a COCO instances file.*pass --from coco"):
        vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl")


# --- CLI ---------------------------------------------------------------------------------------


def test_coco_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src, _ = dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "instances.json").write_text(src.read_text())
    args = ["convert", "instances.json", "--from", "coco", "--to", "internvl", "-o", "out.jsonl", "--root", "images/"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "3 in = 3 written + 0 rejected" in res.output
    assert "1 COCO crowd box(es) (iscrowd=1) were left out" in res.output
    recs = read_jsonl(tmp_path / "out.jsonl")
    assert [r["image"] for r in recs] == ["a.jpg", "sub/b.png", "c.jpg"]
    assert recs[0]["conversations"][1]["value"].startswith(LEAD + "<ref>person</ref><box>[[16, 42, 62, 125]]</box>")

    refer = ["--coco-task", "refer", "--coco-crowd", "include", "--coco-prompt", "Find {category}."]
    res = CliRunner().invoke(main, [*args[:5], "swift", "-o", "refer.jsonl", "--root", "images/", *refer])
    assert res.exit_code == 1  # image 3 rejected in refer mode
    rec = read_jsonl(tmp_path / "refer.jsonl")[0]
    assert rec["messages"][0]["content"] == "<image>\nFind <ref-object>."
    assert rec["objects"]["bbox"][:2] == [[10, 20, 40, 60], [0, 0, 100, 100]]

    res = CliRunner().invoke(main, ["convert", "out.jsonl", "--to", "coco", "-o", "back.json"])
    assert res.exit_code == 2 and "COCO is an input format; convert from it with --from coco" in res.output
    res = CliRunner().invoke(main, ["convert", "instances.json", "--to", "internvl", "-o", "x.jsonl"])
    assert res.exit_code == 2 and "pass --from coco" in res.output


def test_coco_without_root_is_a_usage_error(tmp_path: Path):
    """COCO names images by file name only: without --root the paths would resolve anywhere."""
    import json

    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "x"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    with pytest.raises(vlmdata.VlmdataError, match="pass --root"):
        vlmdata.convert(str(tmp_path / "instances.json"), str(tmp_path / "o.jsonl"), to="swift", from_format="coco")
