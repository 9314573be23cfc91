"""The one engine: every command reads through it and counts the same way; byte-range shards give
the serial run's bytes and positions; this process never decodes a record when shards run."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

import vlmdata
from vlmdata.convert import engine, shards
from vlmdata.convert.io import plan_ranges
from vlmdata.tools.split import split
from vlmdata.tools.stats import compute_stats
from vlmdata.tools.stream import run_stream

from .conftest import read_jsonl

IMAGE = "img.jpg"  # a 100x50 JPEG beside the data (ms-swift paths resolve from the working directory)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch):
    from PIL import Image

    Image.new("RGB", (100, 50)).save(tmp_path / IMAGE)
    monkeypatch.chdir(tmp_path)


def swift_row(k: int) -> dict:
    """A row with a pixel box on a 100x50 image."""
    return {
        "id": f"r{k}",
        "messages": [
            {"role": "user", "content": f"<image>where is <ref-object> {k}?"},
            {"role": "assistant", "content": "<bbox>"},
        ],
        "images": [IMAGE],
        "objects": {"ref": ["cat"], "bbox": [[10, 5, 50 + k % 40, 25]]},
    }


def mixed_file(path: Path, n: int = 400) -> Path:
    """Good rows with bad ones, blank lines and reversed boxes among them, and a BOM in front."""
    lines = []
    for k in range(n):
        if k % 37 == 5:
            lines.append(b'{"id": "broken", "messages": [')  # invalid JSON
        elif k % 53 == 7:
            lines.append(json.dumps({"id": f"bad{k}", "messages": 5}).encode())  # wrong shape
        elif k % 61 == 9:
            row = swift_row(k)
            row["objects"]["bbox"] = [[60, 25, 10, 5]]  # reversed corners (--fix-boxes swap)
            lines.append(json.dumps(row).encode())
        else:
            lines.append(json.dumps(swift_row(k)).encode())
        if k % 29 == 3:
            lines.append(b"   ")  # a blank line is not a record but moves the line numbers
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines) + b"\n")
    return path


def test_ranges_cover_the_file_and_cut_after_newlines(tmp_path: Path):
    data = b"".join(b"x" * (k % 7) + b"\n" for k in range(500)) + b"tail-without-newline"
    src = tmp_path / "f.jsonl"
    src.write_bytes(data)
    ranges = plan_ranges(str(src), 64)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # contiguous
    assert all(data[end - 1 : end] == b"\n" for _, end in ranges[:-1])  # every cut follows a newline
    assert len(ranges) > 10


@pytest.mark.parametrize("out_name", ["out.jsonl", "out.json"])
def test_shards_give_the_serial_bytes_rejections_and_notes(tmp_path: Path, monkeypatch, out_name: str):
    src = mixed_file(tmp_path / "in.jsonl")
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", 1500)  # many shards over a small file
    assert len(shards.plan_shards(str(src), 2)) > 10
    to = "internvl" if out_name.endswith("l") else "llava"
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / out_name
        rejects = tmp_path / f"w{workers}" / "rejects.jsonl"
        report = vlmdata.convert(
            str(src), str(out), to=to, from_format="swift", rejects=str(rejects), workers=workers, fix_boxes="swap"
        )
        runs[workers] = (report, out.read_bytes(), rejects.read_bytes())
    (serial, out1, rej1), (sharded, out2, rej2) = runs[1], runs[2]
    assert out1 == out2 and rej1 == rej2
    assert [r.message() for r in serial.rejections] == [r.message() for r in sharded.rejections]
    assert [str(n) for n in serial.tally.record_notes] == [str(n) for n in sharded.tally.record_notes]
    # the positions are the file's, counted by hand: line 1 is row 0; a blank line follows rows 3, 32, ...
    k = 5  # the first broken row: rows 0..5 are lines 1..6, plus the blank line after row 3
    assert serial.rejections[0].message().startswith(f"{src}:{k + 2}: invalid JSON")
    assert serial.rejections[0].index == k
    swapped = next(str(n) for n in sharded.tally.record_notes)
    assert swapped.startswith(f"{src}:{9 + 2} (id=r9): swapped")  # row 9: lines 1..10 plus one blank
    n = 400
    bad = sum(1 for k in range(n) if k % 37 == 5 or (k % 53 == 7 and k % 37 != 5))
    assert (sharded.records_in, sharded.written, sharded.rejected) == (n, n - bad, bad)


@pytest.mark.parametrize(("to", "side"), [("sharegpt", "dataset_info"), ("internvl", "meta")])
def test_shards_give_the_serial_side_files(tmp_path: Path, monkeypatch, to: str, side: str):
    """Writers that watch the records (sharegpt's columns, InternVL's meta length) see the shards' too."""
    src = mixed_file(tmp_path / "in.jsonl", 300)
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", 1500)
    files = {}
    for workers in (1, 2):
        folder = tmp_path / f"w{workers}"
        side_file = folder / ("dataset_info.json" if side == "dataset_info" else "meta.json")
        out = folder / ("data.json" if to == "sharegpt" else "data.jsonl")
        vlmdata.convert(str(src), str(out), to=to, from_format="swift", workers=workers, **{side: str(side_file)})
        info = json.loads(side_file.read_text())
        info["data"].pop("annotation", None)  # InternVL's meta names the output's own path
        files[workers] = (out.read_bytes(), info)
    assert files[1] == files[2]
    entry = files[2][1]["data"]
    if to == "sharegpt":
        assert entry["columns"] == {"messages": "conversations", "images": "images"}
    else:
        bad = sum(1 for k in range(300) if k % 37 == 5 or k % 53 == 7 or k % 61 == 9)  # reversed boxes too
        assert entry["length"] == 300 - bad


def test_the_main_process_decodes_nothing_when_shards_run(tmp_path: Path, monkeypatch):
    src = mixed_file(tmp_path / "in.jsonl", 200)
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", 2000)
    main = os.getpid()
    real = engine.Decoder.decode

    def guarded(self, raw):
        if os.getpid() == main:
            raise AssertionError("the main process decoded records")
        return real(self, raw)

    monkeypatch.setattr(engine.Decoder, "decode", guarded)
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="swift", workers=2)
    assert report.records_in == 200 and report.written == len(read_jsonl(tmp_path / "o.jsonl"))
    with pytest.raises(AssertionError, match="decoded records"):  # the guard works: a serial run trips it
        vlmdata.convert(str(src), str(tmp_path / "p.jsonl"), to="internvl", from_format="swift")


def test_every_command_counts_the_same_records(tmp_path: Path):
    """A syntax error mid-file (a JSON list that breaks) is one rejected record for every command."""
    good = [swift_row(k) for k in range(6)]
    text = "[\n" + ",\n".join(json.dumps(r) for r in good) + ",\n{\"id\": \"x\", \"messages\": [}\n]\n"
    src = tmp_path / "in.json"
    src.write_text(text)
    conv = vlmdata.convert(str(src), str(tmp_path / "c.jsonl"), to="internvl", from_format="swift")
    assert (conv.records_in, conv.written, conv.rejected) == (7, 6, 1)
    assert "JSON syntax error at line 8" in conv.rejections[0].message()
    stream = run_stream(str(src), str(tmp_path / "t.json"), from_format="swift")
    assert (stream.records_in, stream.written, stream.rejected) == (7, 6, 1)
    sp = split(str(src), str(tmp_path / "split"), val=0.2, from_format="swift")
    assert (sp.records_in, sp.train + sp.val, sp.rejected) == (7, 6, 1)
    stats = compute_stats(str(src), from_format="swift")
    assert stats.unreadable_records == 1 and "line 8" in stats.errors[0]
    found = vlmdata.validate(str(src), from_format="swift", select=["VD001"])
    assert [f.line for f in found.findings if f.code == "VD001"] == [8]
    assert found.records == 6


def test_the_engine_is_the_only_place_records_are_read():
    """No module but the engine (and the readers it drives) opens an input's records itself."""
    import ast

    readers = {"open_records", "read_raw", "RangeRecords", "iter_jsonl", "jsonl_records", "iter_json_values"}
    readers.add("open_input")
    package = Path(vlmdata.__file__).parent
    allowed = {package / "convert" / "engine.py", package / "convert" / "io.py"}
    found = []
    for path in sorted(package.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in readers:
                    found.append(f"{path.relative_to(package)}:{node.lineno} calls {name}")
    assert found == []


def test_workers_default_to_the_usable_cores_for_big_jsonl_inputs(tmp_path: Path, monkeypatch):
    from vlmdata.convert import pipeline

    src = mixed_file(tmp_path / "in.jsonl", 50)
    assert pipeline.usable_workers(str(src)) == 1  # a small file: a pool would cost more than it gains
    assert pipeline.usable_workers("-") == 1
    monkeypatch.setattr(pipeline, "AUTO_WORKERS_BYTES", 1)
    assert pipeline.usable_workers(str(src)) == len(os.sched_getaffinity(0))
    seen = []
    real = shards.start_pool
    monkeypatch.setattr(pipeline, "start_pool", lambda n, job: seen.append(n) or real(n, job))
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="swift", workers=None)
    assert report.records_in == 50
    assert seen == ([len(os.sched_getaffinity(0))] if len(os.sched_getaffinity(0)) > 1 else [])


@pytest.mark.parametrize("workers", [1, 2])
def test_convert_takes_the_fast_path_and_writes_the_same_bytes(tmp_path: Path, monkeypatch, workers: int):
    from vlmdata.convert import fastpath

    src = mixed_file(tmp_path / "in.jsonl", 300)
    monkeypatch.setattr(shards, "MIN_SHARD_BYTES", 4000)
    slow = tmp_path / "slow.jsonl"
    with monkeypatch.context() as m:
        m.setattr(fastpath, "fast_converter", lambda *a: None)
        vlmdata.convert(str(src), str(slow), to="internvl", from_format="swift", workers=workers)
    taken = tmp_path / "taken"
    real = fastpath.SwiftToInternVL.convert

    def counted(self, payload):
        data = real(self, payload)
        if data is not None:
            with open(taken, "a") as f:  # workers are other processes: count through a file
                f.write("x")
        return data

    monkeypatch.setattr(fastpath.SwiftToInternVL, "convert", counted)
    fast = tmp_path / "fast.jsonl"
    report = vlmdata.convert(str(src), str(fast), to="internvl", from_format="swift", workers=workers)
    assert fast.read_bytes() == slow.read_bytes()
    assert len(taken.read_text()) > report.written // 2  # most rows repeat a shape the checker passed
