"""Deterministic synthetic ms-swift ``messages`` JSONL with real images, for the benchmarks.

    python bench/generate.py WORKDIR [--rows 200000] [--seed 0] [--images 200] [--grounding 0.3] [--unique-images]

Writes into WORKDIR:

* ``images/NNNNNN.jpg``: ``--images`` real 640x480 JPEGs (Pillow), so that path checks and image
  size probes find real files;
* ``swift-<rows>-s<seed>.jsonl``: one row per line, ``{"messages": [...], "images": ["images/..."]}``,
  1 or 2 user/assistant rounds, ``<image>`` at the start of the first user message; a fraction
  ``--grounding`` of the rows (about 30%) is a grounding task with 1 or 2 referents:
  ``<ref-object>``/``<bbox>`` placeholders in the text and ``objects: {"ref": [...], "bbox": [[x1, y1,
  x2, y2], ...]}`` in real pixels (``bbox_type`` left out, i.e. ``real``).

With ``--unique-images`` row ``i`` names its own file, ``images/u/NNNNNNN.jpg``, a hard link to one
of the JPEGs: what real data looks like to per-path caches (path resolution, image size probes).

The rows follow the peers' synthetic generator (docs/performance.md#benchmark-data) (same texts, same image size) so
that numbers compare with the peers' performance anchor. A file that already exists for the same
rows/seed/images/grounding is reused (the name and a ``.done`` stamp say which).
"""

from __future__ import annotations

import argparse
import json
import os
import random

OBJECTS = ["cat", "dog", "red car", "person in a blue shirt", "traffic light", "bicycle", "cup", "laptop"]
QUESTIONS = [
    "What is shown in this image?",
    "Describe the picture in one sentence.",
    "How many objects can you see?",
    "What colour is the largest object?",
    "Is there a person in the image?",
    "What is the weather like?",
]
ANSWERS = [
    "A small cat sleeping on a sofa next to a window.",
    "Two dogs playing in a park on a sunny day.",
    "There are three objects: a cup, a laptop and a phone.",
    "The largest object is red.",
    "Yes, a person is standing near the door.",
    "It looks cloudy with some light rain.",
]
FOLLOW_Q = ["Can you tell me more?", "What else is there?", "Where was this taken?"]
FOLLOW_A = [
    "It appears to be indoors, in a living room.",
    "There is also a plant in the corner.",
    "Probably in a city street during the afternoon.",
]
W, H = 640, 480  # every image is written at this size
IMAGES_DIR = "images"


def image_name(k: int) -> str:
    return f"{IMAGES_DIR}/{k:06d}.jpg"


def _box(rng: random.Random) -> list[int]:
    x1, y1 = rng.randint(0, W - 60), rng.randint(0, H - 60)
    return [x1, y1, rng.randint(x1 + 10, W), rng.randint(y1 + 10, H)]


def unique_name(i: int) -> str:
    return f"{IMAGES_DIR}/u/{i:07d}.jpg"


def make_row(i: int, rng: random.Random, grounding: float, n_images: int, unique: bool = False) -> dict:
    """One ms-swift row; ``objects`` only on grounding rows."""
    row: dict = {}
    if rng.random() < grounding:
        n = 1 if rng.random() < 0.8 else 2
        refs = rng.sample(OBJECTS, n)
        if n == 1:
            msgs = [
                {"role": "user", "content": "<image>Find the <ref-object> in the image."},
                {"role": "assistant", "content": "<bbox>"},
            ]
        else:
            msgs = [
                {"role": "user", "content": "<image>Where are the <ref-object> and the <ref-object>?"},
                {"role": "assistant", "content": "The first is at <bbox>, the second at <bbox>."},
            ]
        row["objects"] = {"ref": refs, "bbox": [_box(rng) for _ in range(n)]}
    else:
        msgs = [
            {"role": "user", "content": f"<image>{rng.choice(QUESTIONS)}"},
            {"role": "assistant", "content": rng.choice(ANSWERS)},
        ]
    if rng.random() < 0.5:
        msgs += [
            {"role": "user", "content": rng.choice(FOLLOW_Q)},
            {"role": "assistant", "content": rng.choice(FOLLOW_A)},
        ]
    out = {"messages": msgs, "images": [unique_name(i) if unique else image_name(i % n_images)]}
    out.update(row)
    return out


def write_images(workdir: str, n_images: int) -> str:
    """``n_images`` small JPEGs under ``workdir/images`` (kept when already there)."""
    from PIL import Image

    folder = os.path.join(workdir, IMAGES_DIR)
    os.makedirs(folder, exist_ok=True)
    for k in range(n_images):
        path = os.path.join(workdir, image_name(k))
        if not os.path.exists(path):
            colour = ((k * 37) % 256, (k * 91) % 256, (k * 13) % 256)
            Image.new("RGB", (W, H), colour).save(path, quality=70)
    return folder


def link_unique(workdir: str, rows: int, n_images: int) -> None:
    """Hard links ``images/u/NNNNNNN.jpg`` -> ``images/{i % n_images}.jpg`` for rows 0..rows-1."""
    os.makedirs(os.path.join(workdir, IMAGES_DIR, "u"), exist_ok=True)
    for i in range(rows):
        path = os.path.join(workdir, unique_name(i))
        if not os.path.exists(path):
            os.link(os.path.join(workdir, image_name(i % n_images)), path)


def generate(
    workdir: str,
    rows: int = 200_000,
    seed: int = 0,
    n_images: int = 200,
    grounding: float = 0.3,
    unique_images: bool = False,
) -> tuple[str, dict]:
    """(path of the JSONL, stats); the media root for the file's relative paths is ``workdir``."""
    os.makedirs(workdir, exist_ok=True)
    write_images(workdir, n_images)
    if unique_images:
        link_unique(workdir, rows, n_images)
    name = f"swift-{rows}-s{seed}-i{n_images}-g{grounding:g}{'-u' if unique_images else ''}.jsonl"
    path = os.path.join(workdir, name)
    stamp = path + ".done"
    if os.path.exists(path) and os.path.exists(stamp):
        with open(stamp, encoding="utf-8") as f:
            return path, json.load(f)
    rng = random.Random(seed)
    grounding_rows = boxes = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for i in range(rows):
            row = make_row(i, rng, grounding, n_images, unique_images)
            if "objects" in row:
                grounding_rows += 1
                boxes += len(row["objects"]["bbox"])
            f.write(dumps(row))
            f.write("\n")
    os.replace(path + ".tmp", path)
    stats = {"rows": rows, "grounding_rows": grounding_rows, "boxes": boxes, "bytes": os.path.getsize(path)}
    with open(stamp, "w", encoding="utf-8") as f:
        json.dump(stats, f)
    return path, stats


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workdir")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--grounding", type=float, default=0.3)
    ap.add_argument("--unique-images", action="store_true", help="one image file (hard link) per row")
    args = ap.parse_args(argv)
    path, stats = generate(args.workdir, args.rows, args.seed, args.images, args.grounding, args.unique_images)
    print(json.dumps({"path": path, **stats}))


if __name__ == "__main__":
    main()
