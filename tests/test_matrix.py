"""Every pair of formats converts through Sample and keeps text, images and boxes."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

import vlmdata

from .conftest import make_image
from .samples import SIZE, canonical, summary

FORMATS = ["swift", "swift-legacy", "internvl", "llava", "sharegpt", "qwen", "hf"]
EXT = {
    "swift": ".jsonl",
    "swift-legacy": ".jsonl",
    "internvl": ".jsonl",
    "llava": ".json",
    "sharegpt": ".json",
    "qwen": ".json",
    "hf": ".jsonl",
    "hf-parquet": ".parquet",  # the hf format stored as parquet (needs the hf extra)
}
FORMATS.append("hf-parquet")


def codec_name(fmt: str) -> str:
    return "hf" if fmt == "hf-parquet" else fmt


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    make_image(tmp_path / "img" / "a.png", SIZE)
    out = {}
    for fmt in FORMATS:
        path = tmp_path / "src" / f"{fmt}{EXT[fmt]}"
        if fmt == "hf-parquet" and importlib.util.find_spec("pyarrow") is None:
            continue
        vlmdata.write(canonical(tmp_path / "img"), str(path), codec_name(fmt), root=str(tmp_path / "img"))
        out[fmt] = path
    return out


@pytest.mark.parametrize(("src_fmt", "dst_fmt"), list(itertools.product(FORMATS, FORMATS)))
def test_every_pair_converts_and_keeps_content(tmp_path: Path, sources, src_fmt: str, dst_fmt: str):
    if "hf-parquet" in (src_fmt, dst_fmt):
        pytest.importorskip("pyarrow")
    root = str(tmp_path / "img")
    dst = tmp_path / "out" / f"{dst_fmt}{EXT[dst_fmt]}"
    report = vlmdata.convert(
        str(sources[src_fmt]), str(dst), to=codec_name(dst_fmt), from_format=codec_name(src_fmt), root=root
    )
    assert (report.records_in, report.written, report.rejected) == (3, 3, 0), report.to_dict()
    got = list(vlmdata.read(str(dst), format=codec_name(dst_fmt), root=root))
    expected = canonical(tmp_path / "img")
    assert [s.images[0].resolved for s in got] == [str(tmp_path / "img" / "a.png")] * 3
    for g, e in zip(got, expected, strict=True):
        for (grole, gtext, gboxes), (erole, etext, eboxes) in zip(summary(g), summary(e), strict=True):
            assert (grole, gtext) == (erole, etext)
            assert len(gboxes) == len(eboxes)
            for gb, eb in zip(gboxes, eboxes, strict=True):
                # exact in every frame: (20, 10, 100, 60) on 200x100 is (100, 100, 500, 600) in 0-1000 and
                # (0.1, 0.1, 0.5, 0.6) in LLaVA's 2-decimal fractions, so no pair may move it at all
                assert tuple(gb) == tuple(eb)


def test_swift_legacy_internvl_swift_legacy_keeps_text_images_boxes(tmp_path: Path, sources):
    root = str(tmp_path / "img")
    mid = tmp_path / "mid.jsonl"
    back = tmp_path / "back.jsonl"
    vlmdata.convert(str(sources["swift-legacy"]), str(mid), to="internvl", root=root)
    vlmdata.convert(str(mid), str(back), to="swift-legacy", from_format="internvl", root=root)
    before = list(vlmdata.read(str(sources["swift-legacy"]), format="swift-legacy", root=root))
    after = list(vlmdata.read(str(back), format="swift-legacy", root=root))
    assert [s.images[0].resolved for s in after] == [s.images[0].resolved for s in before]
    for a, b in zip(after, before, strict=True):
        sa, sb = summary(a), summary(b)
        assert [(r, t) for r, t, _ in sa] == [(r, t) for r, t, _ in sb]
        # pixel -> 0-1000 -> pixel: within half a thousandth of the side (0.1 px at 200 px)
        for (_, _, ba), (_, _, bb) in zip(sa, sb, strict=True):
            for x, y in zip(ba, bb, strict=True):
                assert x == pytest.approx(y, abs=0.1)


@pytest.mark.parametrize("dst_fmt", FORMATS)
def test_coco_imports_into_every_format(tmp_path: Path, dst_fmt: str):
    """COCO is input-only: its x,y,w,h boxes reach every target as the same corner boxes."""
    if dst_fmt == "hf-parquet":
        pytest.importorskip("pyarrow")
    import json

    make_image(tmp_path / "img" / "a.png", SIZE)
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": SIZE[0], "height": SIZE[1]}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 3, "bbox": [20, 10, 80, 50], "iscrowd": 0}],
        "categories": [{"id": 3, "name": "cat"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    dst = tmp_path / "out" / f"{dst_fmt}{EXT[dst_fmt]}"
    root = str(tmp_path / "img")
    report = vlmdata.convert(
        str(tmp_path / "instances.json"), str(dst), to=codec_name(dst_fmt), from_format="coco", root=root
    )
    assert (report.records_in, report.written, report.rejected) == (1, 1, 0), report.to_dict()
    sample = next(iter(vlmdata.read(str(dst), format=codec_name(dst_fmt), root=root)))
    boxes = [b for _, _, bs in summary(sample) for b in bs]
    assert len(boxes) == 1
    assert boxes[0] == pytest.approx((20, 10, 100, 60), abs=1.0)  # x,y,w,h -> x1,y1,x2,y2 (docs/frames.md#coco-xywh)
