"""Media paths stay under their root; decompression bombs and absurd images are refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

import vlmdata
from vlmdata.media.probe import probe_size

from .conftest import make_image, write_jsonl


def rows_with(path: str) -> list[dict]:
    return [{"image": path, "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]}]


def test_dotdot_escape_is_rejected_unless_allowed(tmp_path: Path):
    make_image(tmp_path / "secret.png", (4, 4))
    root = tmp_path / "root"
    root.mkdir()
    src = write_jsonl(tmp_path / "in.jsonl", rows_with("../secret.png"))
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", root=str(root))
    assert report.rejected == 1 and "outside the media root" in report.rejections[0].error
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", root=str(root), allow_outside_root=True)
    assert report.ok


def test_absolute_path_outside_an_explicit_root_is_rejected(tmp_path: Path):
    root = tmp_path / "root"
    root.mkdir()
    src = write_jsonl(tmp_path / "in.jsonl", rows_with("/etc/passwd"))
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", root=str(root))
    assert report.rejected == 1 and "outside the media root" in report.rejections[0].error


def test_symlink_out_of_root_is_rejected(tmp_path: Path):
    outside = make_image(tmp_path / "outside.png", (4, 4))
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "link.png")
    make_image(root / "inside.png", (4, 4))
    os.symlink(root / "inside.png", root / "ok_link.png")
    src = write_jsonl(tmp_path / "in.jsonl", rows_with("link.png") + rows_with("ok_link.png"))
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", root=str(root))
    assert (report.written, report.rejected) == (1, 1)
    assert "is a symlink to" in report.rejections[0].error


def test_decompression_bomb_refused_from_header(tmp_path: Path):
    # a PNG header claiming 30000 x 30000 pixels (900 MP) with almost no data
    bomb = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 2_000_000
    try:
        probe_size(str(bomb), "bomb.png")
    except vlmdata.RecordError as exc:
        assert "decompression bomb" in exc.what
    else:
        raise AssertionError("bomb accepted")


def test_bomb_in_a_grounding_record_is_a_rejection(tmp_path: Path):
    """Padded-square LLaVA boxes need the image size, so the bomb's header is probed and refused."""
    Image.new("1", (30000, 30000)).save(tmp_path / "bomb.png", optimize=True)
    rows = [
        {
            "id": "b",
            "image": "bomb.png",
            "conversations": [
                {"from": "human", "value": "<image>\nq"},
                {"from": "gpt", "value": "[0.1, 0.2, 0.3, 0.4]"},
            ],
        }
    ]
    (tmp_path / "in.json").write_text(json.dumps(rows))
    report = vlmdata.convert(
        str(tmp_path / "in.json"), str(tmp_path / "o.jsonl"), to="internvl", from_format="llava", llava_padded=True
    )
    assert report.rejected == 1 and "decompression bomb" in report.rejections[0].error
