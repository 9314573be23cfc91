"""Bad input gets a clear error and nothing is lost; streaming readers; atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import vlmdata
from vlmdata.convert.io import PeekReader, SyntaxErrorInFile, iter_json_values

from .conftest import read_jsonl, write_jsonl

GOOD = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def test_bad_lines_rejected_with_line_id_reason_and_counts(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        json.dumps(GOOD).encode()
        + b"\n"
        + b'{"id": "x1", "messages": [{"role": "user", "content": "q"}\n'  # malformed JSON
        + json.dumps({"id": "x2", "messages": [{"role": "user", "content": None}]}).encode()
        + b"\n"
        + json.dumps({"id": "x3", "messages": 5}).encode()
        + b"\n"
        + b'{"id": "x4", "messages": [{"role": "user", "content": "\xff"}]}\n'  # invalid UTF-8
        + b"\n"  # blank line: not a record
        + json.dumps(GOOD).encode()
        + b"\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    report = vlmdata.convert(
        str(src), str(tmp_path / "out.jsonl"), to="internvl", from_format="swift", rejects=str(rejects)
    )
    assert (report.records_in, report.written, report.rejected) == (6, 2, 4)
    msgs = [r.message() for r in report.rejections]
    assert msgs[0].startswith(f"{src}:2: invalid JSON")
    assert msgs[1].startswith(f"{src}:3 (id=x2): messages[0].content is missing or null")
    assert msgs[2].startswith(f"{src}:4 (id=x3): not a valid ms-swift messages record: messages")
    assert msgs[3].startswith(f"{src}:5: invalid JSON") and "unicode" in msgs[3]
    rows = read_jsonl(rejects)
    assert [r["line"] for r in rows] == [2, 3, 4, 5]
    assert rows[1]["record"]["id"] == "x2" and rows[1]["error"]
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 2


@pytest.mark.parametrize(("text", "to", "out", "expected"), [
    ("", "swift", "o.jsonl", b""),
    ("  \n\n", "internvl", "o.jsonl", b""),
    ("[]", "llava", "o.json", b"[\n]\n"),
])
def test_empty_input_is_zero_records_not_an_error(tmp_path: Path, text, to, out, expected):
    (tmp_path / "empty.jsonl").write_text(text)
    report = vlmdata.convert(str(tmp_path / "empty.jsonl"), str(tmp_path / out), to=to)
    assert (report.records_in, report.written, report.rejected) == (0, 0, 0)
    assert (tmp_path / out).read_bytes() == expected


def test_directory_and_missing_file_are_usage_errors(tmp_path: Path):
    with pytest.raises(vlmdata.VlmdataError, match="is a directory"):
        vlmdata.convert(str(tmp_path), str(tmp_path / "o.jsonl"), to="swift")
    with pytest.raises(vlmdata.VlmdataError, match="no such file"):
        vlmdata.convert(str(tmp_path / "nope.jsonl"), str(tmp_path / "o.jsonl"), to="swift")


def test_input_is_never_overwritten(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", [GOOD])
    before = src.read_bytes()
    with pytest.raises(vlmdata.VlmdataError, match="overwrite the input"):
        vlmdata.convert(str(src), str(src), to="swift")
    assert src.read_bytes() == before


def test_failed_run_leaves_no_partial_output(tmp_path: Path, monkeypatch):
    src = write_jsonl(tmp_path / "in.jsonl", [GOOD] * 5000)
    out = tmp_path / "out.jsonl"
    out.write_text("previous content\n")
    from vlmdata.convert import io

    calls = {"n": 0}
    original = io.RecordWriter.write_many

    def boom(self, encoded):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        original(self, encoded)

    monkeypatch.setattr(io.RecordWriter, "write_many", boom)
    with pytest.raises(KeyboardInterrupt):
        vlmdata.convert(str(src), str(out), to="swift")
    assert out.read_text() == "previous content\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_json_list_is_read_incrementally_with_lines(tmp_path: Path):
    rows = [
        {
            "id": i,
            "image": "a.png",
            "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "x" * 300}],
        }
        for i in range(50)
    ]
    src = tmp_path / "l.json"
    src.write_text("[\n" + ",\n".join(json.dumps(r) for r in rows) + "\n]\n")
    from vlmdata.convert import io

    io_chunk = io.CHUNK
    io.CHUNK = 1024  # force many refills: elements straddle chunk boundaries
    try:
        samples = list(vlmdata.read(str(src)))
    finally:
        io.CHUNK = io_chunk
    assert [s.id for s in samples] == list(range(50))
    assert [s.origin.line for s in samples] == list(range(2, 52))  # right across chunk refills


def test_trailing_comma_in_list_reported_at_its_line(tmp_path: Path):
    src = tmp_path / "l.json"
    src.write_text(
        '[\n{"id": 1, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},\n]\n'
    )
    with open(src, "rb") as f:
        it = iter_json_values(PeekReader(f), in_list=True)
        assert next(it).payload["id"] == 1
        with pytest.raises(SyntaxErrorInFile) as exc:
            next(it)
    assert exc.value.line == 3 and "trailing comma" in exc.value.message


def test_syntax_error_after_good_records_counts_the_rest_as_rejected(tmp_path: Path):
    good = {
        "id": 1,
        "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}],
    }
    src = tmp_path / "l.json"
    src.write_text("[\n" + json.dumps(good) + ",\n" + json.dumps(good) + ',\n{"id": 3, oops}\n]\n')
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", from_format="llava")
    assert (report.records_in, report.written, report.rejected) == (3, 2, 1)
    assert report.rejections[0].line == 4 and "rest of the file" in report.rejections[0].error


def test_pretty_printed_single_object_is_one_record(realdata: Path, tmp_path: Path):
    samples_path = realdata / "internvl-faq-text-key" / "faq_multi_image_example.json"
    report = vlmdata.convert(str(samples_path), str(tmp_path / "o.jsonl"), to="internvl", from_format="internvl")
    assert (report.records_in, report.rejected) == (1, 1)
    assert "conversations[1] (from=gpt) has no 'value' key" in report.rejections[0].error


def test_workers_give_the_same_output(tmp_path: Path):
    rows = [dict(GOOD, id=i) for i in range(4500)] + [{"id": "bad", "messages": []}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    serial = vlmdata.convert(str(src), str(tmp_path / "a.jsonl"), to="internvl")
    parallel = vlmdata.convert(str(src), str(tmp_path / "b.jsonl"), to="internvl", workers=2)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (
        (serial.records_in, serial.written, serial.rejected)
        == (parallel.records_in, parallel.written, parallel.rejected)
        == (4501, 4500, 1)
    )
    assert parallel.rejections[0].id == "bad"


def test_json_list_memory_is_bounded(tmp_path: Path):
    """Reading a JSON list holds about one chunk plus one element, never the file."""
    import tracemalloc

    from vlmdata.convert import io

    src = tmp_path / "big.json"
    row = json.dumps({"id": 1, "conversations": [{"from": "human", "value": "q" * 1000}]})
    with open(src, "w") as f:
        f.write("[" + ",".join([row] * 20000) + "]")
    assert os.path.getsize(src) > 20 * io.CHUNK
    tracemalloc.start()
    with open(src, "rb") as f:
        count = sum(1 for _ in iter_json_values(PeekReader(f), in_list=True))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 20000
    assert peak < 8 * io.CHUNK  # a few MB for a 20+ MB file
