"""VD6 visual heuristics (opt-in): blank images, letterboxed images, one picture twice in a sample."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import write_jsonl
from vlmdata.media.phash import padding_fraction
from vlmdata.media.synthetic import base_image
from vlmdata.validators import RULES, validate
from vlmdata.validators.registry import load_rules, selected


def conv(n: int) -> list[dict[str, str]]:
    return [{"from": "human", "value": "<image>\n" * n + "What is this?"}, {"from": "gpt", "value": "A test."}]


def row(rid: str, image: str | list[str]) -> dict:
    return {"id": rid, "image": image, "conversations": conv(len(image) if isinstance(image, list) else 1)}


@pytest.fixture
def img(tmp_path: Path) -> Path:
    d = tmp_path / "img"
    d.mkdir()
    base_image(1).save(d / "scene.png")
    base_image(2).save(d / "other.png")
    base_image(1).resize((200, 150)).save(d / "scene_small.jpg", quality=80)
    Image.new("RGB", (300, 200), (12, 12, 12)).save(d / "black.jpg", quality=90)
    # a 320x120 scene in the middle of a 320x320 black square: 200 of 320 rows are padding
    canvas = Image.new("RGB", (320, 320), (0, 0, 0))
    canvas.paste(base_image(3, (320, 120)), (0, 100))
    canvas.save(d / "letterbox.png")
    return d


def run(tmp_path: Path, rows: list[dict], select: list[str]) -> list:
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    report = validate(str(data), from_format="internvl", root=str(tmp_path / "img"), select=select,
                      cache_dir=str(tmp_path / "cache"))  # fmt: skip
    return [f for f in report.findings if f.code.startswith("VD6")]


def test_rules_registered_with_docs_and_opt_in():
    load_rules()
    vd6 = {c: r for c, r in RULES.items() if c.startswith("VD6")}
    assert set(vd6) == {"VD601", "VD602", "VD603"}
    for r in vd6.values():
        assert r.severity == "warning" and r.scope == "media" and r.what and r.why and r.example and r.fix
    assert not [r for r in selected(None, None) if r.code.startswith("VD6")]
    assert not [r for r in selected(["VD"], None) if r.code.startswith("VD6")]
    assert [r.code for r in selected(["VD6"], None)] == ["VD601", "VD602", "VD603"]
    assert [r.code for r in selected(["VD3", "VD602"], None) if r.code.startswith("VD6")] == ["VD602"]


def test_vd601_blank_image(tmp_path: Path, img: Path):
    found = run(tmp_path, [row("ok", "scene.png"), row("blank", "black.jpg")], ["VD601"])
    assert [(f.code, f.line, f.id) for f in found] == [("VD601", 2, "blank")]
    assert "'black.jpg' is blank" in found[0].message and "drop the record" in found[0].message
    assert f"{tmp_path / 'train.jsonl'}:2 (id=blank)" == found[0].where()


def test_vd602_letterbox_share(tmp_path: Path, img: Path):
    found = run(tmp_path, [row("ok", "scene.png"), row("lb", "letterbox.png"), row("blank", "black.jpg")], ["VD602"])
    assert [(f.line, f.id) for f in found] == [(2, "lb")]  # the blank image is VD601's, not a letterbox
    share = int(re.match(r"(\d+)%", found[0].message).group(1))
    assert abs(share - 100 * 200 / 320) <= 3  # 200 of 320 rows are black bands
    # the measure itself on a thumbnail: 10 black rows top and bottom of a 40-row image = half of it
    im = Image.new("L", (40, 40), 0)
    content = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((40, 20))
    im.paste(content.point(lambda v: 60 + v * 195 // 255), (0, 10))  # every row and column spans 60-255
    assert padding_fraction(im) == 0.5


def test_vd603_duplicate_image_in_sample(tmp_path: Path, img: Path):
    rows = [
        row("same-file", ["scene.png", "scene.png"]),
        row("copy", ["scene.png", "other.png", "scene_small.jpg"]),
        row("distinct", ["scene.png", "other.png"]),
        row("single", "scene.png"),
    ]
    found = run(tmp_path, rows, ["VD603"])
    assert [(f.line, f.id) for f in found] == [(1, "same-file"), (2, "copy")]
    assert "image 1 ('scene.png') of this record is the same file as image 0" in found[0].message
    assert "image 2 ('scene_small.jpg') of this record is a near-duplicate" in found[1].message
    assert "of image 0 ('scene.png')" in found[1].message


def test_the_visual_hash_cache_is_closed_with_the_run(tmp_path: Path, img: Path, monkeypatch):
    from vlmdata.media import phash

    closed = []
    real = phash.ImageHasher.close
    monkeypatch.setattr(phash.ImageHasher, "close", lambda self: closed.append(1) or real(self))
    run(tmp_path, [row("ok", "scene.png"), row("blank", "black.jpg")], ["VD601"])
    assert closed == [1]
    run(tmp_path, [row("ok", "scene.png")], ["VD1"])  # no VD6 rule: no hasher made, none closed
    assert closed == [1]
