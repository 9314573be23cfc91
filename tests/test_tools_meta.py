"""Meta builders (InternVL, LLaMA-Factory, ms-swift), meta files as input, and `vlmdata split`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import read_jsonl, write_jsonl
from vlmdata.errors import VlmdataError
from vlmdata.tools.meta import (
    build_dataset_info,
    build_internvl_meta,
    iter_meta_samples,
    meta_datasets,
    swift_args,
)
from vlmdata.tools.meta_cli import META_COMMANDS, meta, split
from vlmdata.tools.split import split as run_split

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
INTERNVL = SAMPLE / "internvl" / "train.jsonl"
IMAGES = SAMPLE / "images"


def _rows(n: int) -> list[dict]:
    return [
        {
            "id": f"r{i}",
            "image": "shapes_256x256.jpg",
            "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": f"answer {i}"}],
        }
        for i in range(n)
    ]


def test_build_meta_from_sample_data(tmp_path: Path) -> None:
    out = tmp_path / "meta.json"
    result = build_internvl_meta([str(INTERNVL)], str(out), str(IMAGES), repeat_time=2, max_dynamic_patch=6)
    data = json.loads(out.read_text())
    entry = data["train"]
    assert entry["annotation"] == str(INTERNVL)
    assert entry["root"] == str(IMAGES)
    assert entry["length"] == len(read_jsonl(INTERNVL))
    assert entry["repeat_time"] == 2 and isinstance(entry["repeat_time"], int)
    assert entry["max_dynamic_patch"] == 6 and entry["data_augment"] is False
    assert result.warnings == []
    [ds] = meta_datasets(str(out))
    assert tuple(ds) == ("train", str(INTERNVL), str(IMAGES), 2, entry["length"])


def test_merge_keeps_other_entries_and_refuses_same_name(tmp_path: Path) -> None:
    out = tmp_path / "meta.json"
    out.write_text(json.dumps({"other": {"root": "/x", "annotation": "/x/a.jsonl", "data_augment": True}}))
    a = write_jsonl(tmp_path / "a" / "train.jsonl", _rows(3))
    b = write_jsonl(tmp_path / "b" / "train.jsonl", _rows(4))
    result = build_internvl_meta([str(a), str(b)], str(out), str(IMAGES))
    data = json.loads(out.read_text())
    assert data["other"] == {"root": "/x", "annotation": "/x/a.jsonl", "data_augment": True}
    assert data["train"]["length"] == 3 and data["train_2"]["length"] == 4  # stems unique-ified
    assert result.kept == 1
    before = out.read_text()
    with pytest.raises(VlmdataError, match="already has entry 'train'"):
        build_internvl_meta([str(a)], str(out), str(IMAGES))
    assert out.read_text() == before  # nothing written
    # overwrite: new values, a user's own key kept, max_dynamic_patch kept when not given
    data["train"]["note"] = "mine"
    data["train"]["max_dynamic_patch"] = 4
    out.write_text(json.dumps(data))
    write_jsonl(a, _rows(5))
    build_internvl_meta([str(a)], str(out), str(IMAGES), overwrite=True)
    data = json.loads(out.read_text())
    assert data["train"]["length"] == 5 and data["train"]["note"] == "mine" and data["train"]["max_dynamic_patch"] == 4
    assert set(data) == {"other", "train", "train_2"}


def test_meta_bad_input(tmp_path: Path) -> None:
    out = str(tmp_path / "meta.json")
    with pytest.raises(VlmdataError, match="no such file"):
        build_internvl_meta([str(tmp_path / "missing.jsonl")], out, str(IMAGES))
    with pytest.raises(VlmdataError, match="not a whole number"):
        build_internvl_meta([str(INTERNVL)], out, str(IMAGES), repeat_time=1.5)
    with pytest.raises(VlmdataError, match="> 0"):
        build_internvl_meta([str(INTERNVL)], out, str(IMAGES), repeat_time=0)
    with pytest.raises(VlmdataError, match=r"must be \.jsonl.*vlmdata convert .* --to internvl"):
        build_internvl_meta([str(SAMPLE / "llava" / "train.json")], out, str(IMAGES))
    with pytest.raises(VlmdataError, match="root"):
        build_internvl_meta([str(INTERNVL)], out, str(tmp_path / "nope"))
    with pytest.raises(VlmdataError, match="one --name per file"):
        build_internvl_meta([str(INTERNVL)], out, str(IMAGES), names=["a", "b"])
    assert not Path(out).exists()


def test_repeat_time_semantics(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "d.jsonl", _rows(5))
    out = tmp_path / "meta.json"
    result = build_internvl_meta([str(data)], str(out), str(IMAGES), repeat_time=0.5)
    assert result.warnings and "FIRST" in result.warnings[0]
    warnings: list[str] = []
    ids = [s.id for s in iter_meta_samples(str(out), warn=warnings.append)]
    assert ids == ["r0", "r1"]  # head int(5 * 0.5) = 2, not a random subset
    assert len(warnings) == 1
    build_internvl_meta([str(data)], str(out), str(IMAGES), repeat_time=3, overwrite=True)
    ids = [s.id for s in iter_meta_samples(str(out))]
    assert ids == [f"r{i}" for i in range(5)] * 3


def test_meta_datasets_errors(tmp_path: Path) -> None:
    bad = tmp_path / "meta.json"
    bad.write_text(
        json.dumps({"x": {"root": "/r", "annotation": "/a.jsonl", "data_augment": False, "repeat_time": 2.5}})
    )
    with pytest.raises(VlmdataError, match=r"'x'.*whole number"):
        meta_datasets(str(bad))
    bad.write_text(json.dumps({"x": {"root": "/r"}}))
    with pytest.raises(VlmdataError, match="lacks annotation"):
        meta_datasets(str(bad))
    with pytest.raises(VlmdataError, match="no such file"):
        meta_datasets(str(tmp_path / "none.json"))


def test_dataset_info_entries(tmp_path: Path) -> None:
    info = tmp_path / "data" / "dataset_info.json"
    info.parent.mkdir()
    info.write_text(json.dumps({"keep": {"file_name": "k.json"}}))
    rows = [
        {"conversations": [{"from": "human", "value": "<image>hi"}, {"from": "gpt", "value": "x"}], "images": ["a.jpg"]}
    ]
    f = info.parent / "mine.json"
    f.write_text(json.dumps(rows))
    [(name, entry)] = build_dataset_info([str(f)], str(info))
    data = json.loads(info.read_text())
    assert name == "mine" and data["keep"] == {"file_name": "k.json"}
    assert entry["file_name"] == "mine.json" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations", "images": "images"}
    assert entry["tags"]["role_tag"] == "from"
    with pytest.raises(VlmdataError, match=r"name the file dataset_info\.json"):
        build_dataset_info([str(f)], str(tmp_path / "info.json"))
    with pytest.raises(VlmdataError, match="--to sharegpt"):
        build_dataset_info([str(INTERNVL)], str(info))


def test_swift_args(tmp_path: Path) -> None:
    args, hints = swift_args([str(SAMPLE / "swift" / "train.jsonl")], [str(INTERNVL)])
    assert args[0] == "--dataset" and args[2] == "--val_dataset"
    assert any("ROOT_IMAGE_DIR" in h for h in hints)
    with pytest.raises(VlmdataError, match="no such file"):
        swift_args([str(tmp_path / "x.jsonl")])


def test_split_deterministic_and_counts(tmp_path: Path) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", _rows(100))
    r1 = run_split(str(src), str(tmp_path / "a"), val=0.1, seed=7)
    run_split(str(src), str(tmp_path / "b"), val=0.1, seed=7)
    r3 = run_split(str(src), str(tmp_path / "c"), val=0.1, seed=8)
    assert (r1.records_in, r1.train, r1.val, r1.rejected) == (100, 90, 10, 0)
    assert (tmp_path / "a" / "val.jsonl").read_bytes() == (tmp_path / "b" / "val.jsonl").read_bytes()
    assert (tmp_path / "a" / "val.jsonl").read_bytes() != (tmp_path / "c" / "val.jsonl").read_bytes()
    train = read_jsonl(tmp_path / "a" / "train.jsonl")
    val = read_jsonl(tmp_path / "a" / "val.jsonl")
    assert sorted(r["id"] for r in train + val) == sorted(r["id"] for r in _rows(100))
    assert r3.val == 10


def test_split_rejects_and_minimum(tmp_path: Path) -> None:
    rows = _rows(3)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"id": "bad", "conversations": 5}\n')
    report = run_split(str(src), str(tmp_path / "o"), val=0.01)
    assert report.records_in == 4 == report.train + report.val + report.rejected
    assert report.rejected == 1 and report.rejections[0].id == "bad"
    assert report.val + report.train == 3


def test_split_to_other_format(tmp_path: Path) -> None:
    report = run_split(str(INTERNVL), str(tmp_path / "o"), val=0.2, to="swift", root=str(IMAGES))
    assert report.output_format == "swift" and report.rejected == 0
    rows = read_jsonl(tmp_path / "o" / "train.jsonl") + read_jsonl(tmp_path / "o" / "val.jsonl")
    assert len(rows) == len(read_jsonl(INTERNVL)) and all("messages" in r for r in rows)


@pytest.mark.parametrize("val", [0, 1, 1.5, -0.1])
def test_split_ratio_out_of_range(tmp_path: Path, val: float) -> None:
    with pytest.raises(VlmdataError, match="between 0 and 1"):
        run_split(str(INTERNVL), str(tmp_path / "o"), val=val)


def test_split_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VlmdataError, match="no such file"):
        run_split(str(tmp_path / "none.jsonl"), str(tmp_path / "o"))


def test_cli_meta_and_split(tmp_path: Path) -> None:
    assert [c.name for c in META_COMMANDS] == ["meta", "split"]
    runner = CliRunner()
    res = runner.invoke(split, [str(INTERNVL), "--val", "0.4", "--seed", "0", "-o", str(tmp_path / "data")])
    assert res.exit_code == 0, res.output
    assert "5 in = 3 train + 2 val + 0 rejected" in res.output
    files = [str(tmp_path / "data" / "train.jsonl"), str(tmp_path / "data" / "val.jsonl")]
    out = str(tmp_path / "meta.json")
    args = [*files, "--root", str(IMAGES), "-o", out, "--repeat-time", "2", "--max-dynamic-patch", "6"]
    res = runner.invoke(meta, args)
    assert res.exit_code == 0, res.output
    assert json.loads(Path(out).read_text())["val"]["length"] == 2
    res = runner.invoke(meta, args)
    assert res.exit_code == 2 and "already has entries" in res.output and "Traceback" not in res.output
    assert runner.invoke(meta, [*args, "--force"]).exit_code == 0
    res = runner.invoke(meta, [files[0], "--root", str(IMAGES), "-o", out, "--repeat-time", "1.5", "--force"])
    assert res.exit_code == 2 and "not a whole number" in res.output
    res = runner.invoke(split, [str(INTERNVL), "--val", "2", "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "between 0 and 1" in res.output
    res = runner.invoke(meta, [files[0], "--swift"])
    assert res.exit_code == 0 and "--dataset" in res.stdout
    res = runner.invoke(meta, [files[0]])
    assert res.exit_code == 2 and "choose one of" in res.output
