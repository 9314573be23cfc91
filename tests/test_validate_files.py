"""VD4 file rules: layout for the target, InternVL meta entries, dataset_info.json, encoding and lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vlmdata.validators import validate

from .conftest import make_image, write_jsonl

INTERNVL_ROW = {"id": "1", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
SWIFT_ROW = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def codes(report, prefix: str = "VD4") -> list[str]:
    return [f.code for f in report.findings if f.code.startswith(prefix)]


def findings(report, code: str) -> list:
    return [f for f in report.findings if f.code == code]


def write_json(path: Path, value) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
    return path


def make_meta(tmp_path: Path, rows: int = 2, name: str = "train.jsonl", **entry) -> Path:
    ann = write_jsonl(tmp_path / name, [{**INTERNVL_ROW, "id": str(i)} for i in range(rows)])
    base = {"root": str(tmp_path), "annotation": str(ann), "data_augment": False, "repeat_time": 1, "length": rows}
    base.update(entry)
    return write_json(tmp_path / "meta.json", {"ds": {k: v for k, v in base.items() if v is not ...}})


def test_each_vd4_family_has_its_own_module():
    """VD40x layout, VD41x InternVL meta, VD42x line hygiene, VD43x dataset_info.json: one module each."""
    from vlmdata.validators.registry import RULES, load_rules

    load_rules()
    family = {"VD40": "layout", "VD41": "meta", "VD42": "lines", "VD43": "dataset_info"}
    vd4 = {code: r.check.__module__ for code, r in RULES.items() if code.startswith("VD4")}
    assert sorted(vd4) == [
        *("VD401", "VD402"),
        *(f"VD41{i}" for i in range(7)),
        *("VD420", "VD421", "VD422"),
        *(f"VD43{i}" for i in range(5)),
    ]
    for code, module in vd4.items():
        assert module == "vlmdata.validators.rules." + family[code[:4]], code


# --- VD401 / VD402 layout for the target -----------------------------------------------------------


def test_vd401_internvl_needs_jsonl_name(tmp_path: Path):
    src = write_json(tmp_path / "train.json", [INTERNVL_ROW])
    report = validate(str(src), target="internvl", select=["VD4"])
    assert codes(report) == ["VD401"]
    assert "annotation must be jsonl, but got" in report.findings[0].message
    ok = write_jsonl(tmp_path / "train.jsonl", [INTERNVL_ROW])
    assert codes(validate(str(ok), target="internvl", select=["VD4"])) == []
    assert codes(validate(str(src), target="swift", select=["VD401"])) == []  # ms-swift reads both


def test_vd401_jsonl_named_file_holding_a_list(tmp_path: Path):
    src = write_json(tmp_path / "train.jsonl", [INTERNVL_ROW])
    report = validate(str(src), target="internvl", select=["VD401"])
    assert codes(report) == ["VD401"] and "a JSON list, not one JSON record per line" in report.findings[0].message


def test_vd401_meta_entry_annotation_reported_at_the_meta_file(tmp_path: Path):
    meta = make_meta(tmp_path)
    ann = write_json(tmp_path / "train.json", [INTERNVL_ROW])
    data = json.loads(meta.read_text())
    data["ds"]["annotation"] = str(ann)
    meta.write_text(json.dumps(data, indent=2))
    report = validate(str(meta), select=["VD401"])
    [f] = findings(report, "VD401")
    assert f.file == str(meta) and f.line == 2 and "meta entry 'ds'" in f.message


def test_vd402_llava_needs_one_json_list(tmp_path: Path):
    row = {"id": "1", "image": "a.jpg", "conversations": INTERNVL_ROW["conversations"]}
    src = write_jsonl(tmp_path / "train.jsonl", [row])
    report = validate(str(src), target="llava", select=["VD4"])
    assert codes(report) == ["VD402"] and "json.load" in report.findings[0].message
    ok = write_json(tmp_path / "train.json", [row])
    assert codes(validate(str(ok), target="llava", select=["VD4"])) == []


# --- VD41x InternVL meta entries -----------------------------------------------------------------------


def test_clean_meta_has_no_findings(tmp_path: Path):
    assert codes(validate(str(make_meta(tmp_path)), select=["VD4"])) == []


def test_vd410_trailing_comma_points_at_line_and_column(realdata: Path):
    src = realdata / "internvl-meta-trailing-comma" / "debug_mpo.json"
    report = validate(str(src))
    [f] = findings(report, "VD410")
    assert f.line == 16 and f.file == str(src) and f.severity == "error"
    assert "line 16 column 1" in f.message and "trailing comma at the end of line 15" in f.message
    assert not findings(report, "VD001")  # reported once
    # with the VD4 rules deselected the file is still not silent
    assert [f.code for f in validate(str(src), select=["VD1"]).findings] == ["VD001"]


def test_vd410_not_for_valid_meta_or_non_meta_json(tmp_path: Path):
    assert codes(validate(str(make_meta(tmp_path)), select=["VD410"])) == []
    broken = tmp_path / "other.json"
    broken.write_text('[{"id": 1},]')
    report = validate(str(broken), select=["VD4"])
    assert codes(report) == [] and [f.code for f in report.findings] == ["VD001"]


def test_vd411_missing_keys(tmp_path: Path):
    meta = make_meta(tmp_path, data_augment=..., root=...)
    report = validate(str(meta), select=["VD411"])
    [f] = findings(report, "VD411")
    assert "'root', 'data_augment'" in f.message and "KeyError: 'root'" in f.message
    assert f.file == str(meta) and f.line == 2


def test_vd411_missing_annotation_does_not_crash(tmp_path: Path):
    meta = write_json(tmp_path / "meta.json", {"ds": {"root": ".", "data_augment": False, "repeat_time": 1}})
    report = validate(str(meta), select=["VD4"])
    assert codes(report) == ["VD411"] and "'annotation'" in report.findings[0].message


def test_meta_entry_keys_checked_when_the_annotation_is_empty(tmp_path: Path):
    meta = make_meta(tmp_path, data_augment=..., repeat_time=0.5)
    (tmp_path / "train.jsonl").write_text("")  # no records: readable, and its length (0) differs from the meta's
    report = validate(str(meta))
    assert sorted(f.code for f in report.findings) == ["VD411", "VD413", "VD415"]
    assert "keeps the first 0 of its 0 records" in findings(report, "VD413")[0].message


@pytest.mark.parametrize(("value", "fires"), [(2.0, True), ("1", True), (-0.5, True), (2, False), (1, False)])
def test_vd412_repeat_time(tmp_path: Path, value, fires):
    report = validate(str(make_meta(tmp_path, repeat_time=value)), select=["VD412"])
    assert codes(report) == (["VD412"] if fires else [])
    if isinstance(value, float) and value > 1:
        assert "isinstance(repeat_time, int)" in report.findings[0].message


def test_vd413_repeat_time_below_one_keeps_the_head(tmp_path: Path):
    report = validate(str(make_meta(tmp_path, rows=4, repeat_time=0.5)), select=["VD41"])
    assert codes(report) == ["VD413"]
    assert "the first 2 of its 4 records" in report.findings[0].message and "HEAD" in report.findings[0].message
    assert report.findings[0].severity == "info"
    assert codes(validate(str(make_meta(tmp_path, repeat_time=1)), select=["VD413"])) == []


def test_vd414_missing_annotation_file(tmp_path: Path):
    meta = make_meta(tmp_path)
    data = json.loads(meta.read_text())
    data["ds"]["annotation"] = str(tmp_path / "nope.jsonl")
    meta.write_text(json.dumps(data))
    report = validate(str(meta))
    assert codes(report) == ["VD414"] and "does not exist" in report.findings[0].message
    assert codes(validate(str(make_meta(tmp_path)), select=["VD414"])) == []


def test_vd415_length_mismatch(tmp_path: Path):
    report = validate(str(make_meta(tmp_path, rows=2, length=5)), select=["VD4"])
    assert codes(report) == ["VD415"]
    assert "length 5" in report.findings[0].message and "has 2 records" in report.findings[0].message
    assert codes(validate(str(make_meta(tmp_path, rows=2, length=2)), select=["VD415"])) == []
    assert codes(validate(str(make_meta(tmp_path, rows=2, length=...)), select=["VD415"])) == []


def test_vd416_max_dynamic_patch(tmp_path: Path):
    report = validate(str(make_meta(tmp_path, max_dynamic_patch=6.0)), select=["VD4"])
    assert codes(report) == ["VD416"] and "TypeError" in report.findings[0].message
    assert codes(validate(str(make_meta(tmp_path, max_dynamic_patch=6)), select=["VD4"])) == []


def test_realdata_meta_finetune_custom_every_missing_annotation(realdata: Path):
    case = realdata / "internvl-meta-finetune-custom"
    report = validate(str(case / "internvl_1_2_finetune_custom.json"))
    report2 = validate(str(case / "coco_caption.json"))
    missing = findings(report, "VD414") + findings(report2, "VD414")
    assert len(missing) == 10
    metas = {str(case / "internvl_1_2_finetune_custom.json"), str(case / "coco_caption.json")}
    assert {f.file for f in missing} == metas
    assert all(f.line is not None for f in missing)
    assert "'geoqa+'" in " ".join(f.message for f in missing)
    # nothing else: the entries are complete and name .jsonl files
    assert {f.code for f in report.findings + report2.findings} == {"VD414"}


# --- VD42x encoding and line endings ---------------------------------------------------------------


def test_vd420_bom(tmp_path: Path):
    src = tmp_path / "b.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + json.dumps(SWIFT_ROW).encode() + b"\n")
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD420"] and "Unexpected UTF-8 BOM" in report.findings[0].message
    assert codes(validate(str(write_jsonl(tmp_path / "n.jsonl", [SWIFT_ROW])), select=["VD4"])) == []


def test_vd421_crlf(tmp_path: Path):
    src = tmp_path / "c.jsonl"
    src.write_bytes((json.dumps(SWIFT_ROW) + "\r\n").encode() * 3)
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD421"] and report.findings[0].message.startswith("3 line(s)")
    assert report.findings[0].line == 1 and report.findings[0].severity == "info"


def test_vd422_blank_lines(tmp_path: Path):
    src = tmp_path / "g.jsonl"
    line = json.dumps(SWIFT_ROW)
    src.write_text(f"{line}\n\n{line}\n   \n{line}\n")
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD422"]
    assert report.findings[0].line == 2 and "2 blank line(s)" in report.findings[0].message
    assert "readlines()" in report.findings[0].message
    one_newline = tmp_path / "ok.jsonl"
    one_newline.write_text(f"{line}\n{line}\n")
    assert codes(validate(str(one_newline), select=["VD422"])) == []


def test_invalid_utf8_is_not_reported_twice(tmp_path: Path):
    src = tmp_path / "u.jsonl"
    src.write_bytes(json.dumps(SWIFT_ROW).encode() + b"\n" + b'{"messages": "\xff\xfe"}\n')
    report = validate(str(src))
    assert codes(report) == []  # VD002 says it


# --- VD43x dataset_info.json --------------------------------------------------------------------------

LF_ROW = {"conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"}], "images": ["a.png"]}


def lf_dataset(tmp_path: Path, entry: dict | None, rows: list | None = None, name: str = "train.json") -> Path:
    make_image(tmp_path / "a.png", (32, 32))
    src = write_json(tmp_path / name, rows or [LF_ROW])
    if entry is not None:
        write_json(tmp_path / "dataset_info.json", {"other": {"file_name": "x.json"}, "mine": entry})
    return src


GOOD_ENTRY = {
    "file_name": "train.json",
    "formatting": "sharegpt",
    "columns": {"messages": "conversations", "images": "images"},
}


def test_dataset_info_good_entry_is_clean(tmp_path: Path, realdata: Path):
    assert codes(validate(str(lf_dataset(tmp_path, GOOD_ENTRY)), select=["VD4"])) == []
    demo = realdata / "lf-mllm-demo" / "mllm_demo.json"
    assert codes(validate(str(demo), select=["VD4"])) == []


def test_no_dataset_info_no_findings(tmp_path: Path):
    assert codes(validate(str(lf_dataset(tmp_path, None)), select=["VD4"])) == []


def test_vd430_no_entry_for_the_file(tmp_path: Path):
    src = lf_dataset(tmp_path, {**GOOD_ENTRY, "file_name": "old.json"})
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD430"] and "\"file_name\": 'train.json'" in report.findings[0].message


def test_vd431_entry_unusable(tmp_path: Path):
    src = lf_dataset(tmp_path, {"file_name": "train.json", "columns": GOOD_ENTRY["columns"]})
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD431"] and "default is alpaca" in report.findings[0].message
    assert report.findings[0].file == str(tmp_path / "dataset_info.json") and report.findings[0].line is not None
    src = lf_dataset(tmp_path, {**GOOD_ENTRY, "hf_hub_url": "someone/data"})
    assert "hf_hub_url" in findings(validate(str(src), select=["VD431"]), "VD431")[0].message
    src = lf_dataset(tmp_path, {**GOOD_ENTRY, "tags": {"user_tag": "human"}})
    assert "role_tag/content_tag" in findings(validate(str(src), select=["VD431"]), "VD431")[0].message
    (tmp_path / "dataset_info.json").write_text('{"mine": {},}')
    assert "not valid JSON" in findings(validate(str(src), select=["VD431"]), "VD431")[0].message


def test_vd432_column_missing(tmp_path: Path):
    src = lf_dataset(tmp_path, {**GOOD_ENTRY, "columns": {"messages": "messages", "images": "images"}})
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD432"]
    assert "KeyError: 'messages'" in report.findings[0].message and '"messages": "conversations"' in (
        report.findings[0].message
    )


def test_vd433_column_unmapped(tmp_path: Path):
    src = lf_dataset(tmp_path, {**GOOD_ENTRY, "columns": {"messages": "conversations"}})
    report = validate(str(src), select=["VD4"])
    assert codes(report) == ["VD433"]
    assert "'images'" in report.findings[0].message and "does not match" in report.findings[0].message


def test_vd434_tags_do_not_match_the_data(tmp_path: Path):
    role_rows = [
        {
            "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
            "images": ["a.png"],
        }
    ]
    entry = {**GOOD_ENTRY, "columns": {"messages": "messages", "images": "images"}}  # default tags: from/value
    report = validate(str(lf_dataset(tmp_path, entry, role_rows)), select=["VD4"])
    assert codes(report) == ["VD434", "VD434"]
    assert "no 'from' key" in report.findings[0].message and "KeyError" in report.findings[0].message
    good = {
        **entry,
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }
    assert codes(validate(str(lf_dataset(tmp_path, good, role_rows)), select=["VD4"])) == []
    odd = [{**LF_ROW, "conversations": [{"from": "human", "value": "<image>q"}, {"from": "bot", "value": "a"}]}]
    report = validate(str(lf_dataset(tmp_path, GOOD_ENTRY, [LF_ROW, *odd])), select=["VD434"])
    [f] = findings(report, "VD434")
    assert "role 'bot'" in f.message and "Invalid role tag" in f.message


def test_file_rules_have_docs():
    from vlmdata.validators import RULES

    for code, r in RULES.items():
        if code.startswith("VD4"):
            assert r.scope == "file" and r.what and r.why and r.example and r.fix
