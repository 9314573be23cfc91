"""sample_data/: shapes sit where the README says, every file converts to every other format with
the counts each format allows, and the boxes agree with the drawn shapes in every format.

The truth table below is written out by hand from sample_data/README.md, independently of
sample_data/make_sample_data.py, and the images themselves are checked against it pixel by pixel.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import vlmdata

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
IMAGES = SAMPLE / "images"
SOURCES = {
    "swift": SAMPLE / "swift" / "train.jsonl",
    "swift-legacy": SAMPLE / "swift-legacy" / "train.jsonl",
    "internvl": SAMPLE / "internvl" / "train.jsonl",
    "llava": SAMPLE / "llava" / "train.json",
}
EXT = {"swift": ".jsonl", "swift-legacy": ".jsonl", "internvl": ".jsonl", "llava": ".json"}

# image -> (format, (W, H))
IMAGE_FILES = {
    "shapes_320x240.png": ("PNG", (320, 240)),
    "shapes_240x320.jpg": ("JPEG", (240, 320)),
    "shapes_400x300.png": ("PNG", (400, 300)),
    "shapes_256x256.jpg": ("JPEG", (256, 256)),
}
# (image, shape, rgb, pixel box [x1, y1, x2, y2), x2/y2 exclusive)
SHAPES = [
    ("shapes_320x240.png", "red square", (220, 30, 30), (37, 52, 101, 116)),
    ("shapes_320x240.png", "red square", (220, 30, 30), (205, 31, 269, 95)),
    ("shapes_320x240.png", "blue circle", (30, 60, 220), (118, 128, 206, 216)),
    ("shapes_240x320.jpg", "magenta rectangle", (200, 20, 200), (30, 44, 150, 120)),
    ("shapes_240x320.jpg", "cyan circle", (20, 190, 210), (96, 190, 196, 290)),
    ("shapes_400x300.png", "green rectangle", (30, 160, 60), (48, 70, 212, 158)),
    ("shapes_400x300.png", "orange circle", (245, 140, 20), (253, 147, 349, 243)),
    ("shapes_256x256.jpg", "yellow circle", (240, 220, 40), (88, 24, 168, 104)),
    ("shapes_256x256.jpg", "purple bar", (130, 50, 180), (32, 176, 224, 208)),
]


def pixel_boxes(image: str, shape: str) -> list[tuple[int, int, int, int]]:
    return [box for img, name, _rgb, box in SHAPES if img == image and name == shape]


def norm1000(box: tuple[int, ...], image: str) -> list[int]:
    """InternVL's 0-1000 (docs/formats.md#internvl-grounding): round(v / size * 1000), Python's half-to-even round."""
    w, h = IMAGE_FILES[image][1]
    return [round(v / (w if i % 2 == 0 else h) * 1000) for i, v in enumerate(box)]


def fraction2(box: tuple[int, ...], image: str) -> tuple[float, ...]:
    """LLaVA-1.5 (docs/formats.md#llava-boxes): fractions of the unpadded image, two decimals."""
    w, h = IMAGE_FILES[image][1]
    return tuple(round(v / (w if i % 2 == 0 else h), 2) for i, v in enumerate(box))


# The grounding each sample holds: id -> (image, [referent]) in conversation order; a referent
# (the ref text, also the shape name) owns every box of that shape in SHAPES.
GROUNDING = {
    "ground-0002": ("shapes_320x240.png", ["red square", "blue circle"]),
    "multi-turn-0004": ("shapes_400x300.png", ["orange circle"]),
}
ALL_IDS = ["caption-0001", "ground-0002", "multi-image-0003", "multi-turn-0004", "system-0005"]
LLAVA_IDS = ["caption-0001", "ground-0002", "multi-turn-0004"]  # LLaVA cannot hold the other two
MULTI_IMAGE, SYSTEM = "multi-image-0003", "system-0005"

# (source, target) -> rejected ids. LLaVA-1.5 takes one image and no system prompt per record
# (docs/formats.md#llava, docs/consumers.md#roles-and-system), so MULTI_IMAGE and SYSTEM (default --system reject)
# cannot go to llava; ms-swift (both layouts) and InternVL hold system prompts, several rounds and several images.
# The llava file already lacks those two records, so nothing of it is rejected anywhere.
EXPECTED_REJECTED = {
    ("swift", "swift-legacy"): [],
    ("swift", "internvl"): [],
    ("swift", "llava"): [MULTI_IMAGE, SYSTEM],
    ("swift-legacy", "swift"): [],
    ("swift-legacy", "internvl"): [],
    ("swift-legacy", "llava"): [MULTI_IMAGE, SYSTEM],
    ("internvl", "swift"): [],
    ("internvl", "swift-legacy"): [],
    ("internvl", "llava"): [MULTI_IMAGE, SYSTEM],
    ("llava", "swift"): [],
    ("llava", "swift-legacy"): [],
    ("llava", "internvl"): [],
}


# ---- reading the four formats ------------------------------------------------------------------


def load(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def image_names(record: dict[str, Any], fmt: str) -> list[str]:
    value = record.get("image") if fmt in ("internvl", "llava") else record.get("images")
    paths = value if isinstance(value, list) else [value] if value else []
    return [Path(p).name for p in paths]


def size(image: str) -> tuple[int, int]:
    return IMAGE_FILES[image][1]


def texts(record: dict[str, Any], fmt: str) -> list[str]:
    if fmt == "swift":
        return [m["content"] for m in record["messages"]]
    if fmt == "swift-legacy":
        rounds = [*record.get("history", []), [record["query"], record["response"]]]
        return [text for pair in rounds for text in pair]
    return [turn["value"] for turn in record["conversations"]]


INTERNVL_GROUNDING = re.compile(r"<ref>(?P<ref>.*?)</ref>|<box>(?P<box>.*?)</box>")


def internvl_grounding(record: dict[str, Any]) -> list[tuple[str | None, list[list[int]]]]:
    """[(ref, boxes)] in order; boxes following one ref (in one or several <box>) belong to it."""
    out: list[tuple[str | None, list[list[int]]]] = []
    for text in texts(record, "internvl"):
        for m in INTERNVL_GROUNDING.finditer(text):
            if m["ref"] is not None:
                out.append((m["ref"], []))
            else:
                if not out:
                    out.append((None, []))
                out[-1][1].extend(json.loads(m["box"]))
    return out


LLAVA_BOX = re.compile(r"\[(\d*\.?\d+), ?(\d*\.?\d+), ?(\d*\.?\d+), ?(\d*\.?\d+)\]")


def boxes_in_pixels(record: dict[str, Any], fmt: str) -> list[tuple[float, ...]]:
    """Every box of ``record`` in order, as pixels of its image (from whatever frame ``fmt`` uses)."""
    images = image_names(record, fmt)

    def scale(values: list[float], factor: float, image_index: int = 0) -> tuple[float, ...]:
        w, h = size(images[image_index])
        return tuple(v * factor * (w if i % 2 == 0 else h) for i, v in enumerate(values))

    if fmt == "swift":
        objects = record.get("objects") or {"bbox": []}
        real = objects.get("bbox_type", "real") == "real"
        ids = objects.get("image_id") or [0] * len(objects["bbox"])
        return [tuple(b) if real else scale(b, 1.0, i) for b, i in zip(objects["bbox"], ids, strict=True)]
    if fmt == "swift-legacy":
        out = []
        for obj in json.loads(record.get("objects") or "[]"):
            boxes = obj["bbox"] if isinstance(obj["bbox"][0], list) else [obj["bbox"]]
            for b in boxes:
                kind = obj["bbox_type"]
                if kind == "real":
                    out.append(tuple(b))
                else:
                    out.append(scale(b, {"norm_1": 1.0, "norm_1000": 1 / 999}[kind], obj["image"]))
        return out
    if fmt == "internvl":
        return [scale(b, 1 / 1000) for _ref, boxes in internvl_grounding(record) for b in boxes]
    return [
        scale([float(v) for v in m.groups()], 1.0) for text in texts(record, "llava") for m in LLAVA_BOX.finditer(text)
    ]


def truth_boxes(record_id: str) -> list[tuple[int, int, int, int]]:
    if record_id not in GROUNDING:
        return []
    image, shapes = GROUNDING[record_id]
    return [b for shape in shapes for b in pixel_boxes(image, shape)]


# How far (in pixels of an axis of length ``side``) a coordinate can move when written in a
# format: half its step. Pixels are exact; 0-1000 integers and two-decimal fractions round.
def tolerance(fmt: str, side: int) -> float:
    return {"swift": 0.0, "swift-legacy": 0.0, "internvl": 0.5 / 1000 * side, "llava": 0.005 * side}[fmt] + 1e-6


def assert_near(got: tuple[float, ...], want: tuple[int, ...], image: str, fmts: tuple[str, ...], what: str) -> None:
    """Each coordinate within the summed tolerances of the formats the box passed through."""
    w, h = size(image)
    assert len(got) == len(want), what
    for i, (g, t) in enumerate(zip(got, want, strict=True)):
        side = w if i % 2 == 0 else h
        limit = sum(tolerance(f, side) for f in fmts)
        assert abs(g - t) <= limit, f"{what}: {got} vs true {want} (coordinate {i}, limit {limit:.3f} px)"


# ---- the images ----------------------------------------------------------------------------


def colour_box(image: Image.Image, rgb: tuple[int, int, int], near: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Bounding box (x2/y2 exclusive) of the pixels close to ``rgb`` within 8 px of ``near``."""
    px = image.load()
    w, h = image.size
    xs, ys = [], []
    x1, y1, x2, y2 = near
    for y in range(max(0, y1 - 8), min(h, y2 + 8)):
        for x in range(max(0, x1 - 8), min(w, x2 + 8)):
            if sum((a - b) ** 2 for a, b in zip(px[x, y], rgb, strict=True)) < 60**2:
                xs.append(x)
                ys.append(y)
    assert xs, f"no pixel of colour {rgb} near {near}"
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1


@pytest.mark.parametrize(("image", "shape", "rgb", "box"), SHAPES, ids=[f"{s[0]}-{s[3]}" for s in SHAPES])
def test_shapes_are_drawn_at_their_pixel_boxes(image: str, shape: str, rgb: tuple[int, int, int], box: tuple) -> None:
    with Image.open(IMAGES / image) as im:
        found = colour_box(im.convert("RGB"), rgb, box)
    assert found == box, f"{shape} in {image}"


@pytest.mark.parametrize("image", IMAGE_FILES)
def test_images_are_small_real_files_of_the_stated_size(image: str) -> None:
    fmt, (w, h) = IMAGE_FILES[image]
    path = IMAGES / image
    assert path.stat().st_size < 20_000
    with Image.open(path) as im:
        assert (im.format, im.size) == (fmt, (w, h))
    assert sorted(p.name for p in IMAGES.iterdir()) == sorted(IMAGE_FILES)


# ---- the data files -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", SOURCES)
def test_every_file_holds_the_true_boxes(fmt: str) -> None:
    rows = load(SOURCES[fmt])
    assert [r["id"] for r in rows] == (LLAVA_IDS if fmt == "llava" else ALL_IDS)
    for record in rows:
        got = boxes_in_pixels(record, fmt)
        want = truth_boxes(record["id"])
        assert len(got) == len(want), record["id"]
        for g, t in zip(got, want, strict=True):
            assert_near(g, t, image_names(record, fmt)[0], (fmt,), record["id"])


def test_swift_objects_are_the_pixel_boxes_exactly() -> None:
    rows = by_id(load(SOURCES["swift"]))
    ground = rows["ground-0002"]["objects"]
    assert ground == {
        "ref": ["red square", "blue circle"],
        "bbox": [[37, 52, 101, 116], [205, 31, 269, 95], [118, 128, 206, 216]],
    }
    assert rows["ground-0002"]["messages"][1]["content"] == "<ref-object><bbox><bbox> and <ref-object><bbox>"
    assert rows["multi-turn-0004"]["objects"] == {"ref": ["orange circle"], "bbox": [[253, 147, 349, 243]]}


def test_internvl_boxes_are_round_pixel_over_size_times_1000() -> None:
    rows = by_id(load(SOURCES["internvl"]))
    for record_id, (image, shapes) in GROUNDING.items():
        want = [(shape, [norm1000(b, image) for b in pixel_boxes(image, shape)]) for shape in shapes]
        assert internvl_grounding(rows[record_id]) == want, record_id
    # Python's round is half-to-even (docs/frames.md#rounding): 253/400 and 349/400 are exact halves.
    assert internvl_grounding(rows["multi-turn-0004"]) == [("orange circle", [[632, 490, 872, 810]])]
    assert internvl_grounding(rows["ground-0002"])[0] == ("red square", [[116, 217, 316, 483], [641, 129, 841, 396]])
    for record_id in set(ALL_IDS) - set(GROUNDING):
        assert internvl_grounding(rows[record_id]) == []


def test_internvl_records_carry_the_real_image_sizes() -> None:
    for record in load(SOURCES["internvl"]):
        images = image_names(record, "internvl")
        if isinstance(record["image"], list):
            sizes = list(zip(record["width_list"], record["height_list"], strict=True))
        else:
            sizes = [(record["width"], record["height"])]
        for image, stated in zip(images, sizes, strict=True):
            with Image.open(IMAGES / image) as im:
                assert im.size == stated


def test_llava_boxes_are_two_decimal_fractions() -> None:
    rows = by_id(load(SOURCES["llava"]))
    for record_id, (image, shapes) in GROUNDING.items():
        want = [fraction2(b, image) for shape in shapes for b in pixel_boxes(image, shape)]
        turns = texts(rows[record_id], "llava")
        got = [tuple(float(v) for v in m.groups()) for t in turns for m in LLAVA_BOX.finditer(t)]
        assert got == want, record_id


def test_meta_entry_points_at_the_internvl_file() -> None:
    meta = json.loads((SAMPLE / "internvl" / "meta.json").read_text(encoding="utf-8"))
    assert list(meta) == ["vlmdata_sample"]
    entry = meta["vlmdata_sample"]
    assert entry == {
        "root": "sample_data/images",
        "annotation": "sample_data/internvl/train.jsonl",
        "data_augment": False,
        "repeat_time": 1,
        "length": len(load(SOURCES["internvl"])),
    }
    for record in load(REPO / entry["annotation"]):
        for image in image_names(record, "internvl"):
            assert (REPO / entry["root"] / image).is_file()


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("path", [*SOURCES.values(), SAMPLE / "internvl" / "meta.json"], ids=lambda p: p.parent.name)
def test_no_absolute_paths_in_the_data(path: Path) -> None:
    rows = load(path) if path.name != "meta.json" else [json.loads(path.read_text(encoding="utf-8"))]
    for s in _strings(rows):
        assert not s.startswith("/") and str(REPO) not in s, s


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SAMPLE / "make_sample_data.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for committed in [*SOURCES.values(), SAMPLE / "internvl" / "meta.json"]:
        fresh = tmp_path / committed.relative_to(SAMPLE)
        assert fresh.read_bytes() == committed.read_bytes(), f"{committed}: rerun sample_data/make_sample_data.py"
    for image in IMAGE_FILES:
        with Image.open(tmp_path / "images" / image) as fresh, Image.open(IMAGES / image) as committed:
            assert fresh.size == committed.size
            if fresh.format == "PNG":
                assert fresh.convert("RGB").tobytes() == committed.convert("RGB").tobytes()


# ---- conversions ----------------------------------------------------------------------------


def run_convert(tmp_path: Path, source: str, target: str, **options: Any) -> tuple[vlmdata.ConvertReport, Path]:
    dst = tmp_path / f"{source}-to-{target}{EXT[target]}"
    report = vlmdata.convert(str(SOURCES[source]), str(dst), target, root=str(IMAGES), **options)
    return report, dst


@pytest.mark.parametrize(("source", "target"), list(EXPECTED_REJECTED))
def test_every_file_converts_to_every_other_format(tmp_path: Path, source: str, target: str) -> None:
    report, dst = run_convert(tmp_path, source, target)
    ids_in = LLAVA_IDS if source == "llava" else ALL_IDS
    rejected = EXPECTED_REJECTED[(source, target)]
    assert report.input_format == source  # detected, not passed
    assert (report.records_in, report.written, report.rejected) == (
        len(ids_in),
        len(ids_in) - len(rejected),
        len(rejected),
    )
    assert [r.id for r in report.rejections] == rejected
    written = load(dst)
    assert [r["id"] for r in written] == [i for i in ids_in if i not in rejected]
    assert report.tally.clamped == 0 and report.tally.unused_objects == 0


@pytest.mark.parametrize(("source", "target"), list(EXPECTED_REJECTED))
def test_boxes_survive_every_conversion(tmp_path: Path, source: str, target: str) -> None:
    """Within the precision of the coarser of the two formats, every box stays on its shape."""
    _report, dst = run_convert(tmp_path, source, target)
    for record in load(dst):
        want = truth_boxes(record["id"])
        got = boxes_in_pixels(record, target)
        assert len(got) == len(want), record["id"]
        for g, t in zip(got, want, strict=True):
            assert_near(g, t, image_names(record, target)[0], (source, target), record["id"])


def test_swift_to_internvl_reproduces_the_internvl_file_boxes(tmp_path: Path) -> None:
    _report, dst = run_convert(tmp_path, "swift", "internvl")
    converted = by_id(load(dst))
    reference = by_id(load(SOURCES["internvl"]))
    assert list(converted) == list(reference)
    for record_id, record in reference.items():
        assert internvl_grounding(converted[record_id]) == internvl_grounding(record), record_id
        assert converted[record_id]["image"] == record["image"]  # relative to the same root
    assert internvl_grounding(converted["ground-0002"]) != []


def test_system_prompt_policies_for_llava(tmp_path: Path) -> None:
    report, dst = run_convert(tmp_path, "swift", "llava", system="drop")
    assert (report.written, [r.id for r in report.rejections]) == (4, [MULTI_IMAGE])
    assert report.tally.systems_dropped == 1
    dropped = by_id(load(dst))[SYSTEM]["conversations"]
    assert [t["from"] for t in dropped] == ["human", "gpt"]
    assert "careful annotator" not in dropped[0]["value"]

    report, dst = run_convert(tmp_path, "internvl", "llava", system="merge")
    assert (report.written, [r.id for r in report.rejections]) == (4, [MULTI_IMAGE])
    merged = by_id(load(dst))[SYSTEM]["conversations"]
    assert [t["from"] for t in merged] == ["human", "gpt"]
    assert merged[0]["value"].count("<image>") == 1
    assert "You are a careful annotator." in merged[0]["value"]
    assert "What colour is the circle?" in merged[0]["value"]


def test_readme_counts_the_formats_of_the_registry() -> None:
    """The README says how many formats vlmdata converts and which of them are here (one folder each)."""
    from vlmdata.convert.registry import FORMATS

    words = {4: "four", 8: "eight"}
    readme = (Path(__file__).resolve().parents[1] / "sample_data" / "README.md").read_text(encoding="utf-8")
    folders = [p for p in (Path(__file__).resolve().parents[1] / "sample_data").iterdir() if p.name in FORMATS]
    assert len(FORMATS) == 8 and len(folders) == 4
    assert f"written in {words[len(folders)]} of the {words[len(FORMATS)]} formats `vlmdata` converts" in readme
