"""Shared test helpers: tiny real images, JSONL writing, and the shared real-data corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "cases"


def make_image(path: Path, size: tuple[int, int], fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, format=fmt)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not present in this checkout")
    return REALDATA


@pytest.fixture(autouse=True, scope="session")
def _probe_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory):
    """Header-probe caches of the tests go to a temporary folder, never to ~/.cache."""
    import os

    old = os.environ.get("VLMDATA_CACHE_DIR")
    os.environ["VLMDATA_CACHE_DIR"] = str(tmp_path_factory.mktemp("probe-cache"))
    yield
    if old is None:
        os.environ.pop("VLMDATA_CACHE_DIR", None)
    else:
        os.environ["VLMDATA_CACHE_DIR"] = old


def pytest_terminal_summary(terminalreporter) -> None:
    """How many examples the fuzz suite ran (tests/test_fuzz.py), when it ran."""
    import sys

    fuzz = sys.modules.get("tests.test_fuzz")
    if fuzz is not None and fuzz.COUNTS:
        counts = ", ".join(f"{k} {v}" for k, v in fuzz.COUNTS.items())
        line = f"fuzz ({'long' if fuzz.LONG else 'bounded'}): {sum(fuzz.COUNTS.values())} examples ({counts})"
        terminalreporter.write_line(line)
