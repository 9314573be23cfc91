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
