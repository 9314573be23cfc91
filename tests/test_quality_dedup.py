"""``transform --dedup-images`` (one sample per image cluster) and ``--near-dedup`` (MinHash LSH)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import read_jsonl, write_jsonl
from vlmdata.media import phash as P
from vlmdata.media.synthetic import base_image, edit
from vlmdata.schemas.sample import ImageSlot, MediaRef, Message, Origin, Sample, Text
from vlmdata.tools import transforms as T
from vlmdata.tools.dedup import shingles
from vlmdata.tools.stream import Events
from vlmdata.tools.transform_cli import transform

pytest.importorskip("numpy")
pytest.importorskip("datasketch")


def row(rid: str, images: list[str] | None, q: str = "What is this?", a: str = "A picture.") -> dict:
    tags = "<image>\n" * len(images or [])
    out: dict = {"id": rid, "conversations": [{"from": "human", "value": tags + q}, {"from": "gpt", "value": a}]}
    if images:
        out["image"] = images if len(images) > 1 else images[0]
    return out


@pytest.fixture
def images(tmp_path: Path) -> Path:
    img = tmp_path / "img"
    img.mkdir()
    rng = random.Random(5)
    for name, seed in (("A", 1), ("B", 2), ("C", 3)):
        base_image(seed).save(img / f"{name}.jpg", quality=92)
    edit(base_image(1), "resize", rng).save(img / "A_small.jpg", quality=92)
    base_image(1).save(img / "A_q60.jpg", quality=60)
    edit(base_image(2), "jitter", rng).save(img / "B_jit.jpg", quality=92)
    return img


def test_one_sample_per_image_cluster(tmp_path: Path, images: Path):
    rows = [
        row("s0", ["A.jpg"]),
        row("s1", ["B.jpg"]),
        row("s2", ["A_small.jpg"], a="Other answer."),  # a resized copy of s0's image: dropped
        row("s3", ["A_q60.jpg"]),  # re-encoded copy of s0's image: dropped
        row("s4", ["C.jpg"]),
        row("s5", None, q="Text only."),  # no image: kept
        row("s6", ["A.jpg", "B.jpg"]),  # two images: its own cluster
        row("s7", ["A_small.jpg", "B_jit.jpg"]),  # copies of s6's pair: dropped
        row("s8", ["A.jpg", "C.jpg"]),  # the second image differs: kept
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    args = [str(src), "--from", "internvl", "--root", str(images), "-o", str(out), "--rejects", str(rej)]
    r = CliRunner().invoke(transform, [*args, "--dedup-images", "--image-distance", "8"])
    assert r.exit_code == 0, r.output
    assert [x["id"] for x in read_jsonl(out)] == ["s0", "s1", "s4", "s5", "s6", "s8"]
    dropped = read_jsonl(rej)
    assert [(d["id"], d["filter"], d["line"]) for d in dropped] == [
        ("s2", "dedup-images", 3),
        ("s3", "dedup-images", 4),
        ("s7", "dedup-images", 8),
    ]
    assert dropped[0]["cluster"] == f"{src}:1 (id=s0)" and dropped[0]["cluster_id"] == "s0"
    assert dropped[2]["cluster"] == f"{src}:7 (id=s6)"
    assert "9 in = 6 written + 0 rejected + 3 dropped by dedup-images" in r.stderr


def test_image_distance_threshold(tmp_path: Path, images: Path):
    d = P.hamming(P.compute_visual(str(images / "A.jpg")).phash, P.compute_visual(str(images / "A_small.jpg")).phash)
    src = write_jsonl(tmp_path / "in.jsonl", [row("s0", ["A.jpg"]), row("s1", ["A_small.jpg"])])
    for t, expect in ((d, ["s0"]), (d - 1, ["s0", "s1"])):
        if t < 0:
            continue
        out = tmp_path / f"out{t}.jsonl"
        r = CliRunner().invoke(
            transform,
            [str(src), "--from", "internvl", "--root", str(images), "-o", str(out), "--dedup-images",
             "--image-distance", str(t)],
        )  # fmt: skip
        assert r.exit_code == 0, r.output
        assert [x["id"] for x in read_jsonl(out)] == expect


def qa(q: str, a: str, sid: int, image: str | None = None) -> Sample:
    msgs = [Message("user", [ImageSlot(0), Text(q)] if image else [Text(q)]), Message("assistant", [Text(a)])]
    imgs = [MediaRef(image, image)] if image else []
    return Sample(msgs, imgs, id=sid, origin=Origin("x.jsonl", sid, sid - 1, sid))


class Recorder(Events):
    def __init__(self) -> None:
        self.drops: list = []

    def drop(self, sample, drop):
        self.drops.append((sample.id, drop))


def test_near_dedup_threshold_against_hand_computed_jaccard():
    a = "the red square sits left of the blue circle and above a small green triangle on white paper"
    b = a.removesuffix("paper") + "cardboard"  # the last word changed
    c = "a completely different answer about a dog running across a sunny field near the river bank"
    norm = [T.normalize_text(T.sample_text(qa("Describe it.", t, 1))) for t in (a, b)]
    sa, sb = shingles(norm[0]), shingles(norm[1])
    jaccard = len(sa & sb) / len(sa | sb)  # 3-gram sets of the normalised texts
    assert 0.8 < jaccard < 0.95
    data = [qa("Describe it.", a, 1), qa("Describe it.", b, 2), qa("Describe it.", c, 3)]
    ev = Recorder()
    assert [s.id for s in T.dedup_near(list(data), ev, threshold=0.7)] == [1, 3]
    [(sid, drop)] = ev.drops
    assert sid == 2 and drop.filter == "near-dedup" and abs(drop.score - jaccard) < 0.15
    assert drop.detail == {"cluster": "x.jsonl:1 (id=1)"}
    assert [s.id for s in T.dedup_near(list(data), Recorder(), threshold=0.99)] == [1, 2, 3]


def test_near_dedup_needs_the_same_media(tmp_path: Path):
    a = tmp_path / "a.png"
    base_image(1).save(a)
    b = tmp_path / "b.png"
    base_image(2).save(b)
    data = [qa("Q", "the same answer text here", 1, str(a)), qa("q", "The same answer text, here!", 2, str(b))]
    assert [s.id for s in T.dedup_near(data, Recorder())] == [1, 2]


def test_missing_extras_are_clean_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = write_jsonl(tmp_path / "in.jsonl", [row("s0", None)])
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "datasketch" else real(name, *a))
    r = CliRunner().invoke(transform, [str(src), "-o", str(tmp_path / "o.jsonl"), "--near-dedup"])
    assert r.exit_code == 2 and "datasketch" in r.stderr and "vlmdata[quality]" in r.stderr
    monkeypatch.setattr(P, "have_hashing", lambda: False)
    r = CliRunner().invoke(transform, [str(src), "-o", str(tmp_path / "o.jsonl"), "--dedup-images"])
    assert r.exit_code == 2 and "numpy" in r.stderr and "vlmdata[quality]" in r.stderr
    assert not (tmp_path / "o.jsonl").exists()
