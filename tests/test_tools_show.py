"""vlmdata stats / vlmdata show: numbers on sample_data, pixels of a drawn box, the gallery in Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.conftest import write_jsonl
from vlmdata.tools.show import PALETTE, gallery_html, pick_first, pick_sample, save_png
from vlmdata.tools.show_cli import SHOW_COMMANDS
from vlmdata.tools.stats import bar, compute_stats
from vlmdata.tools.stats import iter_items as items_of

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "sample_data"
IMAGES = DATA / "images"
SWIFT = DATA / "swift" / "train.jsonl"
RED = (220, 30, 30)
BLUE = (30, 60, 220)


def cli(*args: str):
    group = click.Group("vlmdata", commands=SHOW_COMMANDS)
    return CliRunner().invoke(group, list(args), catch_exceptions=False)


# --------------------------------------------------------------------------- stats


def test_stats_swift_by_hand():
    # sample_data/README.md: caption 256x256; ground 320x240 (3 boxes); multi-image 240x320 + 400x300;
    # multi-turn 400x300 (2 rounds, 1 box); system 256x256
    d = compute_stats(str(SWIFT), root=str(IMAGES)).to_dict()
    assert d["samples"] == 5 and d["unreadable_records"] == 0
    assert d["image_refs"] == 6 and d["unique_images"] == 4 and d["missing_images"] == 0
    assert d["images_per_sample"]["histogram"] == {"edges": [1, 2, 3], "counts": [4, 1]}
    assert d["turns"]["total"] == 6 and d["turns"]["max"] == 2
    assert d["image_width"]["total"] == 256 + 320 + 240 + 400 + 400 + 256
    assert d["image_height"]["total"] == 256 + 240 + 320 + 300 + 300 + 256
    assert (d["image_width"]["min"], d["image_width"]["max"]) == (240, 400)
    assert d["aspect_ratio"]["min"] == 0.75 and d["aspect_ratio"]["max"] == round(4 / 3, 3)
    assert d["boxes"] == 4 and d["box_frames"] == {"pixel": 4}
    assert d["boxes_per_sample"]["histogram"] == {"edges": [0, 1, 2, 3, 4], "counts": [3, 1, 0, 1]}
    # red squares 64x64 (twice), blue circle 88x88, orange circle 96x96
    assert d["box_width"]["total"] == 64 + 64 + 88 + 96 and d["box_height"]["total"] == 64 + 64 + 88 + 96
    assert (d["box_width"]["min"], d["box_width"]["max"]) == (64, 96)
    assert d["boxes_outside_image"] == 0
    assert d["text_chars"]["count"] == 5 and d["text_chars"]["min"] > 0


def test_stats_meta_file_boxes_back_in_pixels(monkeypatch):
    monkeypatch.chdir(REPO)  # the meta file's root and annotation are relative to the repository root
    d = compute_stats("sample_data/internvl/meta.json").to_dict()
    assert d["files"] == ["sample_data/internvl/train.jsonl"]
    assert d["samples"] == 5 and d["missing_images"] == 0 and d["box_frames"] == {"norm1000": 4}
    # 0-1000 boxes converted to pixels measure the objects (within the 0-1000 rounding)
    assert d["box_width"]["min"] == pytest.approx(64, abs=0.5) and d["box_width"]["max"] == pytest.approx(96, abs=0.5)


def test_stats_folder_counts_each_file_once(monkeypatch):
    monkeypatch.chdir(REPO)
    d = compute_stats("sample_data", root="sample_data/images").to_dict()
    # internvl (via meta.json, not twice) 5 + llava 3 + swift-legacy 5 + swift 5
    assert d["samples"] == 18 and len(d["files"]) == 4


def test_stats_cli_json_and_table(monkeypatch):
    monkeypatch.chdir(REPO)
    r = cli("stats", "sample_data/swift/train.jsonl", "--root", "sample_data/images", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["samples"] == 5
    r = cli("stats", "sample_data/swift/train.jsonl", "--root", "sample_data/images")
    assert r.exit_code == 0 and "image width" in r.output and "boxes / sample" in r.output


def test_stats_bad_input(tmp_path):
    r = cli("stats", str(tmp_path / "nope.jsonl"))
    assert r.exit_code == 2 and "no such file" in r.output and "Traceback" not in r.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    r = cli("stats", str(bad))
    assert r.exit_code == 2 and "invalid JSON" in r.output and "Traceback" not in r.output


def test_bar():
    assert bar([0, 1, 8]) == " ▁█"
    assert bar([]) == ""


# --------------------------------------------------------------------------- PNG


def test_png_box_outline_pixels(tmp_path):
    out = tmp_path / "ground.png"
    r = cli("show", str(SWIFT), "--root", str(IMAGES), "--index", "1", "-o", str(out))
    assert r.exit_code == 0, r.output
    im = Image.open(out).convert("RGB")
    assert im.size == (320, 240)
    ref0 = PALETTE[0]  # "red square" is the sample's first ref
    # red square [37, 52, 101, 116] (x2, y2 exclusive): outline just outside, inside untouched
    assert im.getpixel((36, 84)) == ref0 and im.getpixel((101, 84)) == ref0
    assert im.getpixel((69, 51)) == ref0 and im.getpixel((69, 116)) == ref0
    assert im.getpixel((37, 84)) == RED and im.getpixel((100, 84)) == RED and im.getpixel((69, 84)) == RED
    # the second red square [205, 31, 269, 95], same colour
    assert im.getpixel((204, 63)) == ref0 and im.getpixel((237, 63)) == RED
    # blue circle [118, 128, 206, 216], the second ref's colour
    assert im.getpixel((117, 200)) == PALETTE[1] and im.getpixel((162, 172)) == BLUE


def test_png_wrong_frame_lands_in_the_corner(tmp_path):
    # a small pixel box near the origin (what a 0-1000 box read as pixels looks like on a big image)
    row = {
        "messages": [
            {"role": "user", "content": "<image>Find it."},
            {"role": "assistant", "content": "<ref-object><bbox>"},
        ],
        "images": [str(IMAGES / "shapes_320x240.png")],
        "objects": {"ref": ["red square"], "bbox": [[10, 10, 30, 30]]},
    }
    data = write_jsonl(tmp_path / "d.jsonl", [row])
    item = next(items_of([str(data)]))
    out = tmp_path / "corner.png"
    save_png(item.sample, str(out))
    im = Image.open(out).convert("RGB")
    assert im.getpixel((9, 28)) == PALETTE[0] and im.getpixel((30, 28)) == PALETTE[0]
    assert im.getpixel((20, 28)) == (255, 255, 255)


def test_png_multi_image_side_by_side(tmp_path):
    out = tmp_path / "multi.png"
    r = cli("show", str(SWIFT), "--root", str(IMAGES), "--index", "2", "-o", str(out))
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (240 + 8 + 400, 320)


def test_show_bad_input(tmp_path):
    out = str(tmp_path / "x.png")
    r = cli("show", str(tmp_path / "missing.jsonl"), "--index", "0", "-o", out)
    assert r.exit_code == 2 and "no such file" in r.output
    r = cli("show", str(SWIFT), "--root", str(IMAGES), "--index", "5", "-o", out)
    assert r.exit_code == 2 and "out of range" in r.output and "5 record" in r.output
    r = cli("show", str(SWIFT), "--index", "0", "-o", out)  # no --root: the image is not found
    assert r.exit_code == 2 and "shapes_256x256.jpg" in r.output and "no such file" in r.output
    r = cli("show", str(SWIFT), "--sample", "2", "-o", out)
    assert r.exit_code == 2 and "--index" in r.output
    r = cli("show", str(SWIFT), "--index", "0", "-o", str(tmp_path / "x.gif"))
    assert r.exit_code == 2 and ".png" in r.output
    assert not os.path.exists(out)


# --------------------------------------------------------------------------- HTML


def _gallery_rows(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in SWIFT.read_text().splitlines()]
    for r in rows:
        r["images"] = [str(IMAGES / p) for p in r["images"]]
    rows.append(
        {
            "id": "tricky",
            "messages": [
                {"role": "user", "content": "<image>What is <ref>this</ref> & <script>alert(1)</script>?"},
                {"role": "assistant", "content": "</pre></section><b>not bold</b> <ref>x</ref> &amp;"},
            ],
            "images": [str(tmp_path / "gone.png")],
        }
    )
    # unreadable record (two <image> tags, one image): shown with its reason
    rows.append({"id": "bad", "messages": [{"role": "user", "content": "<image><image>"}], "images": ["a.png"]})
    return write_jsonl(tmp_path / "g.jsonl", rows)


def test_gallery_html_escapes_and_placeholders(tmp_path):
    data = _gallery_rows(tmp_path)
    page = gallery_html(pick_first([str(data)], 10))
    assert page.count('<section class="sample"') == 7
    assert "<script" not in page and "<b>not bold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "gone.png: no such file" in page and "record cannot be read" in page
    assert "&lt;/pre&gt;&lt;/section&gt;&lt;b&gt;not bold" in page and "&amp;amp;" in page
    assert "http://" not in page and "https://" not in page  # nothing external
    assert page.count("data:image/") == 7  # 6 images + 1 placeholder
    picked = pick_sample([str(data)], 3, seed=1)
    assert [k for k, _ in picked] == sorted(k for k, _ in picked) and len(picked) == 3
    assert pick_sample([str(data)], 3, seed=1) == picked


def _chromium() -> str:
    """The browser `make browser` installed (tests install nothing themselves)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip("chromium is not installed: `make browser` installs it (make test runs it first)")
    return found


def test_gallery_in_headless_chromium(tmp_path):
    chromium = _chromium()
    data = _gallery_rows(tmp_path)
    out = tmp_path / "report.html"
    r = cli("show", str(data), "--sample", "4", "--seed", "3", "-o", str(out))
    assert r.exit_code == 0, r.output
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        out.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, timeout=90)
    dom = done.stdout.decode("utf-8", "replace")
    log = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, log[-3000:]
    # the page was parsed and laid out by the browser: the DOM it dumps holds every sample
    assert "</html>" in dom and 'data-samples="4"' in dom
    assert len(re.findall(r'<section class="sample"', dom)) == 4
    assert len(re.findall(r"<img ", dom)) >= 4
    assert "<script" not in dom  # escaped text stayed text
    # console errors are logged as "CONSOLE" lines with --enable-logging; a failed resource load
    # as net::ERR; there must be none (the page has no script and no external resource)
    bad = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line or "net::ERR" in line]
    assert not bad, bad


def test_stats_of_a_meta_file_apply_repeat_time(tmp_path: Path):
    import json

    from vlmdata.tools.stats import compute_stats

    meta = {
        "twice": {
            "root": str(REPO / "sample_data" / "images"),
            "annotation": str(REPO / "sample_data" / "internvl" / "train.jsonl"),
            "data_augment": False,
            "repeat_time": 2,
        },
        "head": {
            "root": str(REPO / "sample_data" / "images"),
            "annotation": str(tmp_path / "copy.jsonl"),
            "data_augment": False,
            "repeat_time": 0.5,
        },
    }
    (tmp_path / "copy.jsonl").write_bytes((REPO / "sample_data" / "internvl" / "train.jsonl").read_bytes())
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    stats = compute_stats(str(tmp_path / "meta.json"))
    assert stats.samples == 10
    assert stats.trained_samples == 5 * 2 + int(5 * 0.5)  # repeats the list twice; keeps the head 2 lines
