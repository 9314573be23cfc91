"""Real files from the upstream repos (../shared/realdata): read them and reproduce case.json.

The expectations are read from each case.json (computed there from the stored files), so these
tests do not restate numbers by hand; they skip cleanly when ../shared is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import vlmdata
from vlmdata.convert.frames import convert_box
from vlmdata.convert.placeholders import count_slots
from vlmdata.schemas.sample import Boxes, Frame, Points, Ref, Sample


def case(realdata: Path, name: str) -> tuple[Path, dict]:
    folder = realdata / name
    return folder, json.loads((folder / "case.json").read_text())


def grounding(sample: Sample) -> list[tuple[str | None, list[tuple[float, ...]]]]:
    """(ref before the boxes, boxes) pairs of the answer turns, in order."""
    out = []
    for m in sample.messages:
        if m.role != "assistant":
            continue
        last_ref = None
        for p in m.parts:
            if isinstance(p, Ref):
                last_ref = p.text
            elif isinstance(p, Boxes | Points):
                items = p.boxes if isinstance(p, Boxes) else p.points
                out.append((last_ref, [b.coords() for b in items]))
                last_ref = None
    return out


def test_internvl_doc_examples(realdata: Path):
    folder, c = case(realdata, "internvl-doc-examples")
    exp = c["expected"]
    samples = list(vlmdata.read(str(folder / c["data_files"][0]), allow_outside_root=True))
    assert len(samples) == exp["records"]
    assert [len(s.images) for s in samples] == exp["images_per_record"]
    assert [count_slots(s.messages, "image") for s in samples] == exp["image_placeholders_per_record"]
    assert [count_slots(s.messages, "video") for s in samples] == exp["video_placeholders_per_record"]
    for s, rec in zip(samples, exp["per_record"], strict=True):
        assert [m.path for m in s.images + s.videos] == rec["media_paths"]
        assert s.origin.line == rec["line"]
        if "boxes" in rec:
            want = [(b["ref"], [tuple(x) for x in b["boxes"]]) for b in rec["boxes"]]
            assert grounding(s) == want
            assert sum(len(b) for _, b in grounding(s)) == rec["box_count"]
        if "width" in rec:
            assert (s.images[0].width, s.images[0].height) == (rec["width"], rec["height"])


def test_internvl_doc_examples_convert_to_every_format_that_can_hold_them(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "internvl-doc-examples")
    src = str(folder / c["data_files"][0])
    back = vlmdata.convert(src, str(tmp_path / "s.jsonl"), to="swift")
    assert (back.records_in, back.written) == (6, 6)
    again = vlmdata.convert(str(tmp_path / "s.jsonl"), str(tmp_path / "i.jsonl"), to="internvl", root=str(folder))
    assert again.ok
    original = [grounding(s) for s in vlmdata.read(src)]
    assert [grounding(s) for s in vlmdata.read(str(tmp_path / "i.jsonl"))] == original


def test_swift_docs_grounding_objects_equal_native_rows(realdata: Path):
    folder, c = case(realdata, "swift-docs-grounding")
    per_file = c["expected"]["per_file"]
    # the rows hold the trained model's own (Qwen2-VL) markup, which ms-swift passes on as text
    native = list(vlmdata.read(str(folder / "grounding_native_qwen2vl.jsonl"), native_grounding="qwen"))
    for s, rec in zip(native, per_file["grounding_native_qwen2vl.jsonl"]["per_record"], strict=True):
        boxes = [b for _, bs in grounding(s) for b in bs]
        assert boxes == [tuple(b) for b in rec["qwen2vl"]["boxes"]]
    objects = list(vlmdata.read(str(folder / "grounding_objects.jsonl")))
    for s, check in zip(objects, c["expected"]["objects_vs_native_consistency"], strict=True):
        size = (check["W"], check["H"])
        pixel = [b for _, bs in grounding(s) for b in bs]
        assert pixel == [tuple(b) for b in check["objects_bbox_real"]]
        norm = [
            convert_box(b, Frame.NORM1000, lambda size=size: size)[0].coords()
            for p in s.messages[-1].parts
            if isinstance(p, Boxes | Points)
            for b in (p.boxes if isinstance(p, Boxes) else p.points)
        ]
        assert norm == [tuple(b) for b in check["native_qwen2vl_boxes"]]


@pytest.mark.parametrize("name", ["grounding_objects_qwenvl_new.jsonl", "grounding_objects_v3.0.0.jsonl"])
def test_swift_docs_grounding_object_files(realdata: Path, name: str):
    folder, c = case(realdata, "swift-docs-grounding")
    rec_exp = c["expected"]["per_file"][name]
    samples = list(vlmdata.read(str(folder / name)))
    assert len(samples) == rec_exp["records"]
    for s, rec in zip(samples, rec_exp["per_record"], strict=True):
        assert [m.role for m in s.messages] == rec["roles"]
        assert len(s.images) == rec["images"]


def test_swift_docs_multimodal_counts(realdata: Path):
    folder, c = case(realdata, "swift-docs-multimodal")
    for name, fexp in c["expected"]["per_file"].items():
        samples = list(vlmdata.read(str(folder / name), format="swift"))
        assert len(samples) == fexp["records"], name
        for s, rec in zip(samples, fexp["per_record"], strict=True):
            if "roles" in rec:
                assert [m.role for m in s.messages] == [{"tool": "tool_response"}.get(r, r) for r in rec["roles"]], name
            for kind in ("image", "video", "audio"):
                if f"{kind}s" in rec and "openai" not in name:
                    assert len(getattr(s, f"{kind}s")) == rec[f"{kind}s"], (name, kind)
                    assert count_slots(s.messages, kind) == rec[f"{kind}s"], (name, kind)


def test_swift_legacy_docs_and_tests(realdata: Path):
    for name in ("swift-legacy-docs-v2", "swift-legacy-tests"):
        folder, c = case(realdata, name)
        for fname, fexp in c["expected"]["per_file"].items():
            samples = list(vlmdata.read(str(folder / fname), format="swift-legacy"))
            assert len(samples) == fexp["records"], fname
            for s, rec in zip(samples, fexp["per_record"], strict=True):
                n_images = rec["images"] + len(rec.get("img_tag_paths", []))
                assert len(s.images) == n_images, (fname, rec["index"])
                # tags are explicit after reading: ms-swift's prepend rule made visible
                assert count_slots(s.messages, "image") == n_images
                rounds = sum(1 for m in s.messages if m.role == "user")
                assert rounds == rec["rounds_total"]


def test_swift_multi_json_equals_jsonl(realdata: Path):
    folder = realdata / "swift-legacy-tests"
    a = [s.messages for s in vlmdata.read(str(folder / "swift_multi.json"))]
    b = [s.messages for s in vlmdata.read(str(folder / "swift_multi.jsonl"))]
    assert a == b and len(a) == 3


def test_llava_instruct_100(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "llava-instruct-100")
    exp = c["expected"]
    samples = list(vlmdata.read(str(folder / c["data_files"][0])))
    assert len(samples) == exp["records"]
    assert len({s.id for s in samples}) == exp["unique_ids"]
    assert samples[0].id == exp["first_record"]["id"] and samples[0].images[0].path == exp["first_record"]["image"]
    turns: dict[str, int] = {}
    for s in samples:
        turns[str(len(s.messages))] = turns.get(str(len(s.messages)), 0) + 1
        assert count_slots(s.messages, "image") == 1 == len(s.images)
    assert turns == exp["turns_histogram"]
    at_end = [i for i, s in enumerate(samples) if s.messages[0].parts[-1].type == "image"]
    assert at_end == exp["records_with_placeholder_at_end"]  # the tag stays where the data put it
    report = vlmdata.convert(str(folder / c["data_files"][0]), str(tmp_path / "o.jsonl"), to="internvl")
    assert (report.written, report.rejected, report.tally.inserted_tags) == (100, 0, 0)


def test_invalid_json_list_before_any_record_is_unreadable(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "llava-doc-example-invalid-json")
    err = c["expected"]["json_error"]
    with pytest.raises(vlmdata.VlmdataError) as exc:
        vlmdata.convert(str(folder / c["data_files"][0]), str(tmp_path / "o.jsonl"), to="swift", from_format="llava")
    assert f":{err['line']}:{err['column']}: JSON syntax error" in str(exc.value)


def test_trailing_comma_after_last_record_keeps_the_records(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "qwen-finetune-demo-trailing-comma")
    err = c["expected"]["json_error"]
    report = vlmdata.convert(
        str(folder / c["data_files"][0]),
        str(tmp_path / "o.jsonl"),
        to="swift",
        from_format="llava",
        root=str(folder / "demo"),
    )
    assert report.written == c["expected"]["records_if_comma_removed"]
    assert report.rejected == 1
    assert f"line {err['line']} column {err['column']}" in report.rejections[0].error


def test_jsonl_line_with_trailing_comma(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "swift-legacy-img-tag-trailing-comma")
    report = vlmdata.convert(
        str(folder / c["data_files"][0]), str(tmp_path / "o.jsonl"), to="swift", from_format="swift-legacy"
    )
    assert (report.records_in, report.rejected) == (1, 1)
    rej = report.rejections[0]
    assert rej.line == c["expected"]["json_error"]["line"]
    assert f"column {c['expected']['json_error']['column']}" in rej.error


def test_internvl_faq_text_key_defect(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "internvl-faq-text-key")
    report = vlmdata.convert(str(folder / "faq_multi_image_example.jsonl"), str(tmp_path / "o.jsonl"), to="swift")
    assert report.rejected == 1
    bad_turns = c["expected"]["record"]["turns_without_value_key"]
    assert (
        f"conversations[{bad_turns[0]}] (from=gpt) has no 'value' key (it has ['text'])" in report.rejections[0].error
    )


def test_invalid_meta_file_is_a_clear_error(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "internvl-meta-trailing-comma")
    meta = tmp_path / "meta.json"
    meta.write_bytes((folder / c["data_files"][0]).read_bytes())
    src = tmp_path / "a.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}))
    with pytest.raises(vlmdata.VlmdataError, match=f"line {c['expected']['json_error']['line']}"):
        vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", meta=str(meta))
    assert meta.read_bytes() == (folder / c["data_files"][0]).read_bytes()
