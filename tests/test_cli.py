"""The vlmdata command: exit codes, messages, stdin/stdout, formats table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from vlmdata.cli import main

from .conftest import read_jsonl, write_jsonl

GOOD = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}


def run(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin)


def test_convert_ok_exit_0_and_summary(tmp_path: Path):
    src = write_jsonl(tmp_path / "a.jsonl", [GOOD, GOOD])
    res = run("convert", str(src), "--to", "internvl", "-o", str(tmp_path / "out") + "/")
    assert res.exit_code == 0, res.output
    assert "2 in = 2 written + 0 rejected" in res.output
    assert len(read_jsonl(tmp_path / "out" / "a.jsonl")) == 2


def test_rejections_exit_1_with_rejects_file(tmp_path: Path):
    src = write_jsonl(tmp_path / "a.jsonl", [GOOD, {"id": "bad", "messages": [{"role": "robot", "content": "x"}]}])
    res = run(
        "convert", str(src), "--to", "swift", "-o", str(tmp_path / "o.jsonl"), "--rejects", str(tmp_path / "r.jsonl")
    )
    assert res.exit_code == 1
    assert f"{src}:2 (id=bad): messages[0] has role 'robot'" in res.output
    assert "2 in = 1 written + 1 rejected" in res.output
    assert read_jsonl(tmp_path / "r.jsonl")[0]["id"] == "bad"


def test_usage_errors_exit_2_without_traceback(tmp_path: Path):
    (tmp_path / "e.jsonl").write_text("")
    res = run("convert", str(tmp_path), "--to", "swift", "-o", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 2 and "is a directory" in res.output
    res = run("convert", str(tmp_path / "e.jsonl"), "--to", "nope", "-o", "x")
    assert res.exit_code == 2


def test_invalid_json_list_exit_2_names_line(realdata: Path, tmp_path: Path):
    src = realdata / "llava-doc-example-invalid-json" / "Finetune_Custom_Data.example.json"
    res = run("convert", str(src), "--to", "swift", "-o", str(tmp_path / "o.jsonl"))
    assert res.exit_code == 2
    assert f"{src}:14:5: JSON syntax error" in res.output


def test_stdin_to_stdout_as_a_process(tmp_path: Path):
    rows = [
        {
            "messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}],
            "images": [str(tmp_path / "a.png")],
            "id": "r1",
        }
    ]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vlmdata.cli",
            "convert",
            "-",
            "--from",
            "swift",
            "--to",
            "llava",
            "-o",
            "-",
            "--root",
            str(tmp_path),
        ],
        input="".join(json.dumps(r) + "\n" for r in rows),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out == [
        {
            "id": "r1",
            "image": "a.png",
            "conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "a"}],
        }
    ]
    assert "1 in = 1 written + 0 rejected" in proc.stderr


def test_json_report(tmp_path: Path):
    src = write_jsonl(tmp_path / "a.jsonl", [GOOD])
    res = CliRunner().invoke(main, ["convert", str(src), "--to", "swift", "-o", str(tmp_path / "o.jsonl"), "--json"])
    report = json.loads(res.stdout[: res.stdout.rindex("}") + 1])
    assert report["records_in"] == 1 and report["written"] == 1 and report["rejected"] == 0


def test_formats_table_lists_every_format_with_boxes():
    res = run("formats")
    assert res.exit_code == 0
    for name in ("swift", "swift-legacy", "internvl", "llava"):
        assert name in res.output
    assert "0-1000" in res.output and "norm_1000" in res.output


def test_json_report_goes_to_stderr_when_data_is_on_stdout(tmp_path: Path):
    src = write_jsonl(tmp_path / "a.jsonl", [GOOD])
    proc = subprocess.run(
        [sys.executable, "-m", "vlmdata.cli", "convert", str(src), "--to", "swift", "-o", "-", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert [json.loads(line) for line in proc.stdout.splitlines()] == [GOOD]
    assert '"written": 1' in proc.stderr and "-> <stdout> (swift)" in proc.stderr


def test_readme_rules_section_is_generated_from_the_registry():
    from vlmdata.validators.registry import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- rules:start -->\n", 1)[1].split("<!-- rules:end -->", 1)[0]
    assert section == markdown_table(), "regenerate with: vlmdata rule --markdown"


def test_rule_command_prints_docs():
    res = run("rule", "VD101")
    assert res.exit_code == 0 and "## What it does" in res.output and "## Why is this bad?" in res.output
    assert run("rule", "VD999").exit_code == 2


def test_validate_reads_tool_vlmdata_of_the_data_repo_only(tmp_path: Path, monkeypatch):
    repo = tmp_path / "ds"
    (repo / "images").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.vlmdata]\nroot = "images"\nignore = ["VD103"]\n')
    from PIL import Image

    Image.new("RGB", (8, 8)).save(repo / "images" / "a.png")
    rows = [
        {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "images": ["a.png"]}
    ]
    src = write_jsonl(repo / "train.jsonl", rows)
    res = run("validate", str(src), "--output-format", "text")
    assert res.exit_code == 0, res.output  # root from the data repo's pyproject; VD103 ignored there
    assert "VD103" not in res.output
    other = write_jsonl(tmp_path / "elsewhere" / "train.jsonl", rows)
    monkeypatch.chdir(repo)  # the working directory's pyproject must not apply to other files
    res = run("validate", str(other), "--output-format", "text")
    assert res.exit_code == 1 and "VD301" in res.output and "VD103" in res.output
