"""The pre-commit hook, run the way a dataset repo runs it (`pre-commit try-repo`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def try_repo(cwd: Path, home: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PRE_COMMIT_HOME=str(home), PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(
        [str(PRE_COMMIT), "try-repo", str(REPO), "vlmdata-validate", "--verbose", "--files", *files],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not PRE_COMMIT.exists() or shutil.which("git") is None:
        pytest.skip("pre-commit (dev extra) or git is not installed")
    return tmp_path_factory.mktemp("pre-commit-home")


def test_hook_passes_on_the_sample_data(home: Path):
    files = ["sample_data/swift/train.jsonl", "sample_data/internvl/meta.json", "sample_data/llava/train.json"]
    proc = try_repo(REPO, home, *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_hook_fails_on_bad_data_in_a_dataset_repo(home: Path, tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    row = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "text": "a"}]}
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    proc = try_repo(tmp_path, home, "train.jsonl")
    assert proc.returncode != 0
    assert "Failed" in proc.stdout and "train.jsonl:1:" in proc.stdout and "VD0" in proc.stdout
