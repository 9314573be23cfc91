"""The Ray engine (``--engine ray``) on a local Ray instance: the same records, rejections, findings
and statistics as the local engine, parts in input order, nothing published when a task fails.

Expected values come from the local (serial) engine run on each input separately, and from the
inputs themselves (line numbers of the bad records are counted here)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray")

import vlmdata  # noqa: E402
from vlmdata.cli import main  # noqa: E402
from vlmdata.convert.io import plan_ranges  # noqa: E402
from vlmdata.errors import VlmdataError  # noqa: E402
from vlmdata.tools import ray_engine  # noqa: E402
from vlmdata.tools.stats import compute_stats  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
IMAGES = str(SAMPLE / "images")


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    """a: good records; b: good ones with blank lines and two bad records; c: a LLaVA JSON list."""
    good = (SAMPLE / "swift" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    a = tmp_path / "a.jsonl"
    a.write_text("\n".join(good) + "\n", encoding="utf-8")
    b_lines = [good[0], "", good[1], '{"id": "bad-1", "messages": 5}', "", *good[2:], '{"id": "bad-2"}', good[0]]
    b = tmp_path / "b.jsonl"
    b.write_text("\n".join(b_lines) + "\n", encoding="utf-8")
    c = tmp_path / "c.json"
    shutil.copy(SAMPLE / "llava" / "train.json", c)
    return [str(a), str(b), str(c)]


def serial(src: str, dst: Path, to: str, rejects: Path | None = None) -> vlmdata.ConvertReport:
    return vlmdata.convert(src, str(dst), to=to, root=IMAGES, rejects=str(rejects) if rejects else None)


def small_shards(monkeypatch: pytest.MonkeyPatch, size: int = 300) -> None:
    """Cut JSONL inputs into ~``size``-byte ranges (the real minimum is 1 MiB), so one input is several tasks."""
    monkeypatch.setattr(ray_engine, "plan_shards", lambda src, workers: plan_ranges(src, size))


def test_convert_matches_the_serial_run_byte_for_byte(inputs, tmp_path, monkeypatch):
    small_shards(monkeypatch)
    out = tmp_path / "out"
    report = vlmdata.convert(
        inputs, str(out), to="internvl", root=IMAGES, rejects=str(tmp_path / "rejects.jsonl"), engine="ray"
    )
    parts = sorted(os.listdir(out))
    assert parts == [f"part-{n:05d}.jsonl" for n in range(len(parts))]
    assert len(parts) > len(inputs)  # the JSONL inputs were cut into several shards

    expected = b""
    expected_rejects = b""
    ins = written = 0
    expected_rejections = []
    for k, src in enumerate(inputs):
        r = serial(src, tmp_path / f"serial{k}.jsonl", "internvl", tmp_path / f"rejects{k}.jsonl")
        expected += (tmp_path / f"serial{k}.jsonl").read_bytes()
        expected_rejects += (tmp_path / f"rejects{k}.jsonl").read_bytes()
        ins += r.records_in
        written += r.written
        expected_rejections += [(x.file, x.line, x.index, x.id, x.error) for x in r.rejections]
    assert b"".join((out / p).read_bytes() for p in parts) == expected
    assert (tmp_path / "rejects.jsonl").read_bytes() == expected_rejects
    assert [(x.file, x.line, x.index, x.id, x.error) for x in report.rejections] == expected_rejections
    assert (report.records_in, report.written, report.rejected) == (ins, written, 2)
    assert report.records_in == report.written + report.rejected
    # the bad records' positions in b.jsonl, counted from the file itself
    lines = Path(inputs[1]).read_text(encoding="utf-8").splitlines()
    bad = [n + 1 for n, line in enumerate(lines) if '"bad-' in line]
    assert [(x.file, x.line, x.id) for x in report.rejections] == [
        (inputs[1], bad[0], "bad-1"),
        (inputs[1], bad[1], "bad-2"),
    ]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]


def test_json_layout_parts_are_whole_json_lists(inputs, tmp_path, monkeypatch):
    small_shards(monkeypatch)
    out = tmp_path / "out"
    report = vlmdata.convert(inputs[:2], str(out), to="llava", root=IMAGES, engine="ray")
    parts = sorted(os.listdir(out))
    assert parts[0] == "part-00000.json" and len(parts) > 2
    records = [rec for p in parts for rec in json.loads((out / p).read_bytes())]
    expected = []
    for k, src in enumerate(inputs[:2]):
        serial(src, tmp_path / f"serial{k}.json", "llava")
        expected += json.loads((tmp_path / f"serial{k}.json").read_bytes())
    assert records == expected
    assert report.written == len(expected)


def test_a_failing_task_publishes_nothing(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    old = out / "part-00000.jsonl"
    old.write_bytes(b"an earlier run\n")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": 1,, }]', encoding="utf-8")  # unreadable from its first record
    with pytest.raises(VlmdataError, match="JSON syntax error"):
        vlmdata.convert(
            [inputs[0], str(broken)],
            str(out),
            to="internvl",
            from_format="llava",
            root=IMAGES,
            rejects=str(tmp_path / "rejects.jsonl"),
            engine="ray",
        )
    assert sorted(os.listdir(out)) == ["part-00000.jsonl"]  # no new part, no temp file
    assert old.read_bytes() == b"an earlier run\n"
    assert not (tmp_path / "rejects.jsonl").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_output_folder_publishes_nothing(inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(OSError):
            vlmdata.convert(inputs, str(out), to="internvl", root=IMAGES, engine="ray")
        assert os.listdir(out) == []
    finally:
        out.chmod(0o755)


def test_a_second_run_replaces_the_parts_of_the_first(inputs, tmp_path):
    out = tmp_path / "out"
    vlmdata.convert(inputs, str(out), to="internvl", root=IMAGES, engine="ray")
    assert len(os.listdir(out)) == 3
    vlmdata.convert(inputs[:1], str(out), to="internvl", root=IMAGES, engine="ray")
    assert os.listdir(out) == ["part-00000.jsonl"]
    serial(inputs[0], tmp_path / "serial.jsonl", "internvl")
    assert (out / "part-00000.jsonl").read_bytes() == (tmp_path / "serial.jsonl").read_bytes()


def test_cli_convert_validate_and_stats(inputs, tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    res = runner.invoke(
        main, ["convert", *inputs, "--to", "internvl", "-o", str(out), "--root", IMAGES, "--engine", "ray"]
    )
    assert res.exit_code == 1, res.output  # two records rejected
    assert "2 rejected" in res.output
    assert len(os.listdir(out)) == 3
    res = runner.invoke(main, ["convert", *inputs[:2], "--to", "internvl", "-o", str(out)])
    assert res.exit_code == 2 and "--engine ray" in res.output
    res = runner.invoke(
        main, ["convert", inputs[0], "--to", "internvl", "-o", str(tmp_path / "x.jsonl"), "--engine", "ray"]
    )
    assert res.exit_code == 2 and "folder" in res.output

    local = runner.invoke(main, ["validate", *inputs, "--root", IMAGES, "--output-format", "json"])
    remote = runner.invoke(main, ["validate", *inputs, "--root", IMAGES, "--output-format", "json", "--engine", "ray"])
    assert remote.exit_code == local.exit_code
    assert json.loads(remote.stdout) == json.loads(local.stdout)

    local = runner.invoke(main, ["stats", *inputs, "--root", IMAGES, "--json"])
    remote = runner.invoke(main, ["stats", *inputs, "--root", IMAGES, "--json", "--engine", "ray"])
    assert remote.exit_code == local.exit_code == 0
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_validate_and_stats_merge_as_the_local_engine(inputs, tmp_path):
    dup = tmp_path / "dup.jsonl"  # a cross-record rule (duplicate ids) needs the whole file in one task
    line = (SAMPLE / "swift" / "train.jsonl").read_text(encoding="utf-8").splitlines()[0]
    dup.write_text(f"{line}\n{line}\n", encoding="utf-8")
    paths = [*inputs, str(dup)]
    local = vlmdata.validate(paths, root=IMAGES)
    remote = vlmdata.validate(paths, root=IMAGES, engine="ray")
    assert remote.to_dict() == local.to_dict()
    assert any(f.file == str(dup) for f in remote.findings)
    local_stats = compute_stats(paths, root=IMAGES, cache_dir="off")
    remote_stats = compute_stats(paths, root=IMAGES, cache_dir="off", engine="ray")
    assert remote_stats.to_dict() == local_stats.to_dict()
    assert remote_stats.samples == local_stats.samples > 0 and remote_stats.unreadable_records == 2
    with pytest.raises(VlmdataError, match="--fix"):
        vlmdata.validate(paths, root=IMAGES, fix=True, engine="ray")


def test_without_ray_the_message_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(VlmdataError, match=r"vlmdata\[ray\]"):
        ray_engine.require_ray()
