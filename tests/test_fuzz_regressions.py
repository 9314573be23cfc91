"""The crash classes the fuzz suite (test_fuzz.py) found, each pinned by its minimal input.

Every case checks the exit status, that the rejection or finding names file:line (id) and says
what is wrong, and that records in = written + rejected.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from vlmdata.cli import main
from vlmdata.convert.meta import load_meta
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Box, Frame

from .conftest import make_image, read_jsonl


def run(*args: str):
    res = CliRunner().invoke(main, list(args))
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    assert "Traceback" not in res.output
    return res


def swift_box(rid: str, box_json: str) -> str:
    """A swift record with one pixel box, its first number written as ``box_json`` (raw JSON text)."""
    return (
        f'{{"id": "{rid}", "messages": [{{"role": "user", "content": "<image>Where?"}}, '
        f'{{"role": "assistant", "content": "<ref-object><bbox>"}}], "images": ["a.png"], '
        f'"objects": {{"ref": ["cat"], "bbox": [[{box_json}, 10, 100, 60]], "bbox_type": "real"}}}}'
    )


@pytest.fixture
def boxes_file(tmp_path: Path) -> Path:
    make_image(tmp_path / "a.png", (200, 100))
    lines = [swift_box("ok", "20")] + [
        swift_box(rid, text)
        for rid, text in [
            ("big", "1e308"),
            ("inf", "Infinity"),
            ("nan", "NaN"),
            ("huge", str(2**70)),
            ("neg", "-1e308"),
        ]
    ]
    src = tmp_path / "boxes.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src


BAD_BOXES = {2: ("big", "1e+308"), 3: ("inf", "inf"), 4: ("nan", "nan"), 5: ("huge", str(2**70)), 6: ("neg", "-1e+308")}


@pytest.mark.parametrize("target", ["swift", "internvl", "qwen", "llava", "hf"])
def test_non_finite_and_overflowing_box_coordinates_are_rejected(boxes_file: Path, target: str):
    root = boxes_file.parent
    out = root / ("out.json" if target in ("qwen", "llava") else "out.jsonl")
    res = run("convert", str(boxes_file), "--to", target, "-o", str(out), "--root", str(root), "--json")
    assert res.exit_code == 1
    for line, (rid, shown) in BAD_BOXES.items():
        assert f"{boxes_file}:{line} (id={rid}): box coordinate {shown} is not a finite number" in res.stderr
    report = json.loads(res.stdout[res.stdout.index("{") : res.stdout.rindex("}") + 1])
    assert (report["records_in"], report["written"], report["rejected"]) == (6, 1, 5)
    text = out.read_text(encoding="utf-8")
    assert "null" not in text and "Infinity" not in text and "NaN" not in text


def test_swift_to_swift_writes_no_null_box(boxes_file: Path):
    root = boxes_file.parent
    res = run("convert", str(boxes_file), "--to", "swift", "-o", str(root / "o.jsonl"), "--root", str(root))
    assert res.exit_code == 1 and "6 in = 1 written + 5 rejected" in res.output
    (row,) = read_jsonl(root / "o.jsonl")
    assert row["id"] == "ok" and row["objects"]["bbox"] == [[20, 10, 100, 60]]


@pytest.mark.parametrize(
    "args",
    [
        ("stats",),
        ("show", "-o", "{root}/g.html"),
        ("transform", "-o", "{root}/t.jsonl"),
        ("filter", "-o", "{root}/f.jsonl"),
    ],
)
def test_bad_box_coordinates_do_not_crash_the_tools(boxes_file: Path, args: tuple[str, ...]):
    root = boxes_file.parent
    res = run(args[0], str(boxes_file), *(a.format(root=root) for a in args[1:]), "--root", str(root))
    assert res.exit_code in (0, 1)
    if args[0] in ("transform", "filter"):
        assert res.exit_code == 1 and "6 in = 1 written + 5 rejected" in res.output
        assert f"{boxes_file}:3 (id=inf): box coordinate inf is not a finite number" in res.output


def test_show_png_of_a_bad_box_is_a_usage_error(boxes_file: Path):
    root = boxes_file.parent
    res = run("show", str(boxes_file), "-o", str(root / "s.png"), "--index", "1", "--root", str(root))
    assert res.exit_code == 2
    assert f"{boxes_file}:2: record 1 cannot be read: box coordinate 1e+308 is not a finite number" in res.output


def test_validate_reports_bad_box_coordinates(boxes_file: Path):
    root = boxes_file.parent
    res = run("validate", str(boxes_file), "--root", str(root), "--output-format", "text")
    assert res.exit_code == 1
    assert (
        f"{boxes_file}:2: (id=big) VD002 [error] the record cannot be read as swift: box coordinate 1e+308"
        in res.output
    )
    assert f"{boxes_file}:5: (id=huge) VD002 [error]" in res.output
    # validate's reader takes NaN/Infinity lines for invalid JSON (convert's reads them, then rejects the box)
    assert f"{boxes_file}:3: VD002 [error]" in res.output and f"{boxes_file}:4: VD002 [error]" in res.output
    assert "5 error(s)" in res.output


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e308, 2**70, True, "1"])
def test_box_refuses_coordinates_no_frame_can_hold(value):
    with pytest.raises(RecordError):
        Box(value, 0, 10, 10, Frame.PIXEL)
    with pytest.raises(RecordError):
        Box(0, value, None, None, Frame.NORM1000)  # a point


def test_box_keeps_ordinary_coordinates():
    assert Box(-5, 0.5, 1e9, 999, Frame.PIXEL).coords() == (-5, 0.5, 1e9, 999)


def test_qwen_json_answer_with_huge_box_is_rejected(tmp_path: Path):
    make_image(tmp_path / "a.png", (200, 100))
    answer = '```json\n[{"bbox_2d": [1e308, 2, 3, 4], "label": "x"}]\n```'
    rec = {"id": "q", "image": "a.png", "conversations": [{"from": "human", "value": "<image>Where?"},
                                                          {"from": "gpt", "value": answer}]}  # fmt: skip
    src = tmp_path / "q.json"
    src.write_text(json.dumps([rec]), encoding="utf-8")
    res = run("convert", str(src), "--from", "qwen", "--to", "internvl", "-o", str(tmp_path / "o.jsonl"),
              "--root", str(tmp_path))  # fmt: skip
    assert res.exit_code == 1 and "1 in = 0 written + 1 rejected" in res.output
    assert f"{src}:1 (id=q): box coordinate 1e+308 is not a finite number" in res.output


# --------------------------------------------------------------------------- media paths


def llava_file(tmp_path: Path, image_json: str) -> Path:
    """A JSON list (whose reader keeps lone surrogates) with one bad and one good record."""
    make_image(tmp_path / "a.png", (200, 100))
    conv = '[{"from": "human", "value": "<image>\\nhi"}, {"from": "gpt", "value": "a"}]'
    src = tmp_path / "l.json"
    src.write_text(
        f'[\n{{"id": "bad", "image": {image_json}, "conversations": {conv}}},\n'
        f'{{"id": "ok", "image": "a.png", "conversations": {conv}}}\n]\n',
        encoding="utf-8",
    )
    return src


@pytest.mark.parametrize(
    ("image_json", "says"),
    [('"a\\u0000.png"', "contains a NUL byte"), ('"a\\ud800.png"', "contains a lone surrogate")],
)
def test_media_path_with_nul_or_lone_surrogate(tmp_path: Path, image_json: str, says: str):
    src = llava_file(tmp_path, image_json)
    res = run("validate", str(src), "--root", str(tmp_path), "--output-format", "text")
    assert res.exit_code == 1
    assert f"{src}:2: (id=bad) VD302 [error] media path" in res.output and says in res.output
    res = run("convert", str(src), "--to", "swift", "-o", str(tmp_path / "o.jsonl"), "--root", str(tmp_path))
    assert res.exit_code == 1 and "2 in = 1 written + 1 rejected" in res.output
    assert f"{src}:2 (id=bad): media path" in res.output and says in res.output
    assert [r["id"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["ok"]
    res = run("stats", str(src), "--root", str(tmp_path))
    assert res.exit_code in (0, 1) and says in res.output


def test_nul_media_path_in_jsonl(tmp_path: Path):
    make_image(tmp_path / "a.png", (200, 100))
    row = {"id": "n", "messages": [{"role": "user", "content": "<image>hi"}, {"role": "assistant", "content": "a"}],
           "images": ["a\x00.png"]}  # fmt: skip
    src = tmp_path / "n.jsonl"
    src.write_text(json.dumps(row) + "\n", encoding="utf-8")
    res = run("validate", str(src), "--root", str(tmp_path), "--output-format", "text", "--target", "internvl")
    assert res.exit_code == 1 and f"{src}:1: (id=n) VD302 [error]" in res.output and "NUL byte" in res.output


# --------------------------------------------------------------------------- wrong types


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("bad_type", [["text"], {"a": 1}])
def test_validate_content_block_whose_type_is_not_a_string(tmp_path: Path, bad_type):
    make_image(tmp_path / "a.png", (200, 100))
    row = {
        "id": "t",
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": bad_type, "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
        ],
        "images": ["a.png"],
    }
    src = write_rows(tmp_path / "t.jsonl", [row])
    for target in ("hf", "swift", "internvl", "llamafactory", "llava", "qwen"):
        res = run("validate", str(src), "--root", str(tmp_path), "--target", target, "--output-format", "text")
        assert res.exit_code == 1, target
        assert f"{src}:1: (id=t) VD002 [error]" in res.output and f"block type {bad_type!r}" in res.output


def test_swift_block_whose_type_is_a_list_is_rejected(tmp_path: Path):
    row = {"id": "b", "messages": [{"role": "user", "content": [{"type": ["image"]}, {"type": "text", "text": "q"}]},
                                   {"role": "assistant", "content": "a"}]}  # fmt: skip
    src = write_rows(tmp_path / "b.jsonl", [row])
    res = run("convert", str(src), "--from", "swift", "--to", "internvl", "-o", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 1 and "1 in = 0 written + 1 rejected" in res.output
    assert f"{src}:1 (id=b): messages[0].content[0] has unknown block type ['image']" in res.output


@pytest.mark.parametrize(("image_id", "shown"), [("x", "'x'"), (-1, "-1"), (True, "True"), (1.5, "1.5")])
def test_objects_image_id_must_be_an_index(tmp_path: Path, image_id, shown: str):
    make_image(tmp_path / "a.png", (200, 100))
    row = {
        "id": "o",
        "messages": [{"role": "user", "content": "<image>Where?"}, {"role": "assistant", "content": "<bbox>"}],
        "images": ["a.png"],
        "objects": {"bbox": [[1, 2, 30, 40]], "bbox_type": "real", "image_id": [image_id]},
    }
    src = write_rows(tmp_path / "o.jsonl", [row])
    res = run("convert", str(src), "--to", "internvl", "-o", str(tmp_path / "out.jsonl"), "--root", str(tmp_path))
    assert res.exit_code == 1 and "1 in = 0 written + 1 rejected" in res.output
    assert f"{src}:1 (id=o): objects.image_id[0] must be a non-negative image index, got {shown}" in res.output
    res = run("validate", str(src), "--root", str(tmp_path), "--output-format", "text")
    assert res.exit_code == 1 and f"{src}:1: (id=o) VD002 [error]" in res.output


def test_show_draws_a_reversed_box(tmp_path: Path):
    make_image(tmp_path / "a.png", (200, 100))
    row = {
        "id": "r",
        "messages": [{"role": "user", "content": "<image>Where?"}, {"role": "assistant", "content": "<bbox>"}],
        "images": ["a.png"],
        "objects": {"bbox": [[150, 80, 10, 5]], "bbox_type": "real"},
    }
    src = write_rows(tmp_path / "r.jsonl", [row])
    res = run("show", str(src), "-o", str(tmp_path / "r.png"), "--root", str(tmp_path))
    assert res.exit_code == 0 and (tmp_path / "r.png").stat().st_size > 0


def test_rejection_of_a_nan_line_names_its_id(tmp_path: Path):
    """JSONL lines with NaN/Infinity are read (as pydantic reads them); their rejection keeps the id."""
    make_image(tmp_path / "a.png", (200, 100))
    src = tmp_path / "n.jsonl"
    src.write_text(swift_box("nanid", "NaN") + "\n", encoding="utf-8")
    res = run(
        "convert",
        str(src),
        "--from",
        "swift",
        "--to",
        "swift",
        "-o",
        str(tmp_path / "o.jsonl"),
        "--root",
        str(tmp_path),
    )
    assert res.exit_code == 1 and f"{src}:1 (id=nanid): box coordinate nan" in res.output


# --------------------------------------------------------------------------- HF parquet


def test_parquet_output_with_an_int_beyond_int64_is_a_file_error(tmp_path: Path):
    rows = [{"id": 2**63, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    src = write_rows(tmp_path / "p.jsonl", rows)
    out = tmp_path / "o.parquet"
    res = run("convert", str(src), "--from", "swift", "--to", "hf", "-o", str(out))
    assert res.exit_code == 2 and "do not fit one parquet schema" in res.output
    assert not out.exists()


def test_parquet_output_with_an_empty_object_column_is_a_file_error(tmp_path: Path):
    rows = [
        {"id": "e", "tags": {}, "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    ]
    src = write_rows(tmp_path / "p.jsonl", rows)
    out = tmp_path / "o.parquet"
    res = run("convert", str(src), "--from", "swift", "--to", "hf", "-o", str(out))
    assert res.exit_code == 2 and "cannot be written as parquet" in res.output
    assert not out.exists()


# --------------------------------------------------------------------------- ms-swift objects


def swift_objects_row(objects) -> dict:
    return {
        "id": "w",
        "messages": [
            {"role": "user", "content": "<image>Where?"},
            {"role": "assistant", "content": "<ref-object><bbox>"},
        ],
        "images": ["a.png"],
        "objects": objects,
    }


@pytest.mark.parametrize(
    ("objects", "says"),
    [
        ({"ref": {"a": 1}, "bbox": [[1, 2, 3, 4]]}, "objects.ref must be a list of strings, got dict"),
        ({"ref": ["x"], "bbox": {"0": [1, 2, 3, 4]}}, "objects.bbox must be a list of boxes, got dict"),
        ({"ref": ["x"], "bbox": [[1, 2, 3, 4]], "bbox_type": {"a": 1}}, "objects.bbox_type {'a': 1} is not 'real'"),
        (
            '[{"caption": "x", "bbox": [1, 2, 3, 4], "bbox_type": ["real"]}]',
            "objects[0].bbox_type ['real'] is not real",
        ),
        (
            '[{"caption": "x", "bbox": {"a": 1}, "bbox_type": "real"}]',
            "objects[0].bbox must be ",
        ),  # then [x1, y1, x2, y2]
    ],
)
def test_swift_objects_of_the_wrong_type_are_rejected_with_a_reason(tmp_path: Path, objects, says: str):
    make_image(tmp_path / "a.png", (200, 100))
    src = write_rows(tmp_path / "w.jsonl", [swift_objects_row(objects)])
    res = run("convert", str(src), "--from", "swift", "--to", "internvl", "-o", str(tmp_path / "o.jsonl"),
              "--root", str(tmp_path))  # fmt: skip
    assert res.exit_code == 1 and "1 in = 0 written + 1 rejected" in res.output
    assert f"{src}:1 (id=w): {says}" in res.output
    assert "unexpected record shape" not in res.output


def test_an_int_beyond_64_bits_is_rejected_as_unwritable(tmp_path: Path):
    rows = [
        {
            "id": "big",
            "n": 2**64,
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        },
        {"id": "ok", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    src = write_rows(tmp_path / "b.jsonl", rows)
    res = run("convert", str(src), "--from", "swift", "--to", "swift", "-o", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 1 and "2 in = 1 written + 1 rejected" in res.output
    assert f"{src}:1 (id=big): the record cannot be written as JSON" in res.output
    assert [r["id"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["ok"]


def test_validate_fix_leaves_a_file_with_nan_alone(tmp_path: Path):
    """--fix would have to rewrite NaN (which the readers take) as something else: it refuses."""
    conv = '[{"from": "gpt", "text": "hi"}, {"from": "human", "value": "q"}]'
    src = tmp_path / "n.json"
    src.write_text(f'[{{"id": "n", "score": NaN, "conversations": {conv}}}]\n', encoding="utf-8")
    before = src.read_bytes()
    res = run("validate", str(src), "--from", "sharegpt", "--target", "llamafactory", "--fix", "--select", "VD122")
    assert res.exit_code == 2 and "--fix cannot rewrite this file" in res.output
    assert src.read_bytes() == before


# --------------------------------------------------------------------------- deep nesting (stdlib json)


def test_meta_file_nested_too_deeply(tmp_path: Path):
    rows = [{"id": "a", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}]
    data = write_rows(tmp_path / "d.jsonl", rows)
    deep = "[" * 1500 + "]" * 1500
    meta = tmp_path / "meta.json"
    meta.write_text(
        f'{{"d": {{"root": {deep}, "annotation": "{data}", "data_augment": false, "repeat_time": 1}}}}',
        encoding="utf-8",
    )
    res = run("validate", str(meta), "--output-format", "text")
    assert res.exit_code in (1, 2) and "nested too deeply" in res.output
    with pytest.raises(VlmdataError, match="nested too deeply to read"):
        load_meta(str(meta))
    res = run("stats", str(meta))
    assert res.exit_code == 2 and f"{meta}: reads like an InternVL meta file but is not valid JSON" in res.output


def test_qwen_json_answer_nested_too_deeply_stays_text(tmp_path: Path):
    answer = "```json\n" + "[" * 1500 + "]" * 1500 + "\n```"
    rec = {"id": "q", "conversations": [{"from": "human", "value": "Where?"}, {"from": "gpt", "value": answer}]}
    src = tmp_path / "q.json"
    src.write_text(json.dumps([rec]), encoding="utf-8")
    res = run("convert", str(src), "--from", "qwen", "--to", "swift", "-o", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 0 and "1 in = 1 written + 0 rejected" in res.output
    (row,) = read_jsonl(tmp_path / "o.jsonl")
    assert row["messages"][1]["content"] == answer


@pytest.mark.parametrize("root", ["\x00", "a\x00b", "\ud800"])
def test_a_meta_root_that_is_no_path_is_an_error_not_a_crash(tmp_path: Path, root: str):
    """Found by the long fuzz run: realpath() raised ValueError on a NUL in an InternVL meta root."""
    row = {"id": "a", "image": "a.png", "conversations": [{"from": "human", "value": "<image>\nhi"}]}
    (tmp_path / "d.jsonl").write_text(json.dumps(row) + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"ds": {"annotation": str(tmp_path / "d.jsonl"), "root": root, "length": 1}}))
    res = run("validate", str(meta), "--target", "internvl", "--output-format", "json")
    assert res.exit_code == 1
    findings = json.loads(res.output)["findings"]
    if "\x00" in root:  # (a lone surrogate escape makes the meta file itself unreadable JSON: another finding)
        assert any("is not a usable path" in f["message"] for f in findings)
        res = run("stats", str(meta))
        assert res.exit_code == 2 and "media root" in res.output and "is not a usable path" in res.output
    res = run("convert", str(tmp_path / "d.jsonl"), "--to", "swift", "-o", str(tmp_path / "o.jsonl"), "--root", root)
    assert res.exit_code == 2 and "is not a usable path" in res.output
