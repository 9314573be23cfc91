"""(Re)create sample_data/: four tiny images with shapes at known pixel boxes, and the same five
samples written in each format vlmdata converts (ms-swift, ms-swift legacy, InternVL, LLaVA-1.5).

    python sample_data/make_sample_data.py            # rewrites sample_data/ in place
    python sample_data/make_sample_data.py --out DIR  # writes the same tree under DIR

Deterministic: Pillow only, no randomness, no timestamps, so a rerun gives identical files.

Boxes are ``[x1, y1, x2, y2]`` in pixels with ``x2``/``y2`` exclusive: a shape with box
``[37, 52, 101, 116]`` covers pixel columns 37..100 and rows 52..115 (Pillow is given the inclusive
corner ``x2 - 1, y2 - 1``). The other formats are computed from these pixel boxes:

* InternVL: ``round(v / size * 1000)`` (docs/formats.md#internvl-grounding),
* LLaVA-1.5: ``round(v / size, 2)`` fractions of the unpadded image (docs/formats.md#llava-boxes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent

Box = tuple[int, int, int, int]

# name -> (size, background, [(shape, kind, colour name, rgb, pixel box)])
IMAGES: dict[str, dict[str, Any]] = {
    "shapes_320x240.png": {
        "size": (320, 240),
        "background": (255, 255, 255),
        "shapes": [
            ("red square", "rectangle", (220, 30, 30), (37, 52, 101, 116)),
            ("red square", "rectangle", (220, 30, 30), (205, 31, 269, 95)),
            ("blue circle", "ellipse", (30, 60, 220), (118, 128, 206, 216)),
        ],
    },
    "shapes_240x320.jpg": {
        "size": (240, 320),
        "background": (235, 235, 235),
        "shapes": [
            ("magenta rectangle", "rectangle", (200, 20, 200), (30, 44, 150, 120)),
            ("cyan circle", "ellipse", (20, 190, 210), (96, 190, 196, 290)),
        ],
    },
    "shapes_400x300.png": {
        "size": (400, 300),
        "background": (255, 255, 255),
        "shapes": [
            ("green rectangle", "rectangle", (30, 160, 60), (48, 70, 212, 158)),
            ("orange circle", "ellipse", (245, 140, 20), (253, 147, 349, 243)),
        ],
    },
    "shapes_256x256.jpg": {
        "size": (256, 256),
        "background": (64, 64, 64),
        "shapes": [
            ("yellow circle", "ellipse", (240, 220, 40), (88, 24, 168, 104)),
            ("purple bar", "rectangle", (130, 50, 180), (32, 176, 224, 208)),
        ],
    },
}


def boxes_of(image: str, shape: str) -> list[Box]:
    return [box for name, _kind, _rgb, box in IMAGES[image]["shapes"] if name == shape]


def draw_image(name: str, spec: dict[str, Any], path: Path) -> None:
    im = Image.new("RGB", spec["size"], spec["background"])
    draw = ImageDraw.Draw(im)
    for _name, kind, rgb, (x1, y1, x2, y2) in spec["shapes"]:
        corners = (x1, y1, x2 - 1, y2 - 1)  # Pillow corners are inclusive; our boxes exclusive
        if kind == "rectangle":
            draw.rectangle(corners, fill=rgb)
        else:
            draw.ellipse(corners, fill=rgb)
    if name.endswith(".png"):
        im.save(path, format="PNG", optimize=True)
    else:  # 4:4:4 and high quality keep the colour edges on the box lines
        im.save(path, format="JPEG", quality=92, subsampling=0)


# ---------------------------------------------------------------------------------------------
# The five samples, format-neutral. A turn's text holds "<image>" tags; grounding answers are a
# list of (ref, image, shape) items rendered per format.

SYSTEM = "You are a careful annotator. Answer in one short sentence."
GROUND_IMAGE = "shapes_320x240.png"
TURN_IMAGE = "shapes_400x300.png"

SAMPLES: list[dict[str, Any]] = [
    {
        "id": "caption-0001",
        "images": ["shapes_256x256.jpg"],
        "turns": [
            ("<image>Describe the image.", "A yellow circle above a purple bar on a dark grey background."),
        ],
    },
    {
        "id": "ground-0002",
        "images": [GROUND_IMAGE],
        # one referent with two boxes, then one with a single box
        "turns": [
            (
                "<image>Locate the red squares and the blue circle.",
                [("red square", GROUND_IMAGE), " and ", ("blue circle", GROUND_IMAGE)],
            ),
        ],
    },
    {
        "id": "multi-image-0003",
        "images": ["shapes_240x320.jpg", "shapes_400x300.png"],
        "turns": [
            (
                "Image-1: <image>\nImage-2: <image>\nWhich image contains the green rectangle?",
                "Image-2 contains the green rectangle; Image-1 shows a magenta rectangle and a cyan circle.",
            ),
        ],
    },
    {
        "id": "multi-turn-0004",
        "images": [TURN_IMAGE],
        "turns": [
            ("<image>How many shapes are in the image?", "Two: a green rectangle and an orange circle."),
            ("Where is the orange circle?", [("orange circle", TURN_IMAGE)]),
        ],
    },
    {
        "id": "system-0005",
        "system": SYSTEM,
        "images": ["shapes_256x256.jpg"],
        "turns": [("<image>What colour is the circle?", "The circle is yellow.")],
    },
]
# LLaVA-1.5 has no per-sample system prompt and takes one image per record (docs/formats.md#llava,
# docs/consumers.md#roles-and-system).
LLAVA_LEFT_OUT = {"multi-image-0003", "system-0005"}


def size_of(image: str) -> tuple[int, int]:
    return IMAGES[image]["size"]


def norm1000(box: Box, image: str) -> list[int]:
    w, h = size_of(image)
    return [round(v / (w if i % 2 == 0 else h) * 1000) for i, v in enumerate(box)]


def frac2(box: Box, image: str) -> list[float]:
    w, h = size_of(image)
    return [round(v / (w if i % 2 == 0 else h), 2) for i, v in enumerate(box)]


def list_repr(values: list[Any]) -> str:
    return "[" + ", ".join(repr(v) for v in values) + "]"


# ---- ms-swift current: messages + objects {ref, bbox} in real pixels (docs/formats.md#swift-objects)


def to_swift(sample: dict[str, Any]) -> dict[str, Any]:
    refs: list[str] = []
    bboxes: list[list[int]] = []

    def answer(value: Any) -> str:
        if isinstance(value, str):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
                continue
            ref, image = item
            refs.append(ref)
            boxes = boxes_of(image, ref)
            bboxes.extend(list(b) for b in boxes)
            out.append("<ref-object>" + "<bbox>" * len(boxes))  # one <bbox> per box (docs/formats.md#swift-objects)
        return "".join(out)

    messages = [{"role": "system", "content": sample["system"]}] if "system" in sample else []
    for query, response in sample["turns"]:
        messages.append({"role": "user", "content": query})
        messages.append({"role": "assistant", "content": answer(response)})
    row: dict[str, Any] = {"id": sample["id"], "messages": messages, "images": sample["images"]}
    if bboxes:
        row["objects"] = {"ref": refs, "bbox": bboxes}
    return row


# ---- ms-swift legacy: query/response/history, objects as a JSON string paired by index
# (docs/formats.md#swift-legacy-objects)


def to_swift_legacy(sample: dict[str, Any]) -> dict[str, Any]:
    objects: list[dict[str, Any]] = []

    def answer(value: Any) -> str:
        if isinstance(value, str):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
                continue
            ref, image = item
            boxes = [list(b) for b in boxes_of(image, ref)]
            index = sample["images"].index(image)
            bbox: Any = boxes[0] if len(boxes) == 1 else boxes
            objects.append({"caption": ref, "bbox": bbox, "bbox_type": "real", "image": index})
            out.append("<ref-object><bbox>")
        return "".join(out)

    rounds = [[query, answer(response)] for query, response in sample["turns"]]
    row: dict[str, Any] = {"id": sample["id"]}
    if "system" in sample:
        row["system"] = sample["system"]
    row["query"], row["response"] = rounds[-1]
    if len(rounds) > 1:
        row["history"] = rounds[:-1]
    row["images"] = sample["images"]
    if objects:
        row["objects"] = json.dumps(objects, ensure_ascii=False)
    return row


# ---- InternVL: conversations, <image>\n in human turns, <ref>/<box> on 0-1000 (docs/formats.md#internvl-grounding)


def internvl_tags(text: str) -> str:
    """InternVL's own data puts ``<image>\\n`` at the start of a single-image turn."""
    if text.startswith("<image>") and not text.startswith("<image>\n"):
        return "<image>\n" + text[len("<image>") :]
    return text


def to_internvl(sample: dict[str, Any]) -> dict[str, Any]:
    def answer(value: Any) -> str:
        if isinstance(value, str):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
                continue
            ref, image = item
            boxes = ", ".join(list_repr(norm1000(b, image)) for b in boxes_of(image, ref))
            out.append(f"<ref>{ref}</ref><box>[{boxes}]</box>")
        return "".join(out)

    conversations = [{"from": "system", "value": sample["system"]}] if "system" in sample else []
    for query, response in sample["turns"]:
        conversations.append({"from": "human", "value": internvl_tags(query)})
        conversations.append({"from": "gpt", "value": answer(response)})
    images = sample["images"]
    row: dict[str, Any] = {"id": sample["id"]}
    # A single image goes in the list form when a system turn comes first: InternVL's single-image
    # path only looks at conversations[0] for the tag and would put '<image>\n' into the system
    # prompt (docs/consumers.md#media-tags); the list form takes the tags where they are.
    if len(images) == 1 and "system" not in sample:
        row["image"] = images[0]
        row["width"], row["height"] = size_of(images[0])
    else:
        row["image"] = images
        row["width_list"] = [size_of(i)[0] for i in images]
        row["height_list"] = [size_of(i)[1] for i in images]
    row["conversations"] = conversations
    return row


# ---- LLaVA-1.5: one JSON list, one image, boxes as 2-decimal fractions (docs/formats.md#llava-boxes)


def to_llava(sample: dict[str, Any]) -> dict[str, Any]:
    def answer(value: Any) -> str:
        if isinstance(value, str):
            return value
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
                continue
            ref, image = item
            out.append(ref + " " + ", ".join(list_repr(frac2(b, image)) for b in boxes_of(image, ref)))
        return "".join(out)

    (image,) = sample["images"]
    conversations = []
    for query, response in sample["turns"]:
        conversations.append({"from": "human", "value": internvl_tags(query)})
        conversations.append({"from": "gpt", "value": answer(response)})
    return {"id": sample["id"], "image": image, "conversations": conversations}


# ---------------------------------------------------------------------------------------------


def jsonl(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write (default: sample_data/)")
    out: Path = parser.parse_args(argv).out

    (out / "images").mkdir(parents=True, exist_ok=True)
    for name, spec in IMAGES.items():
        draw_image(name, spec, out / "images" / name)

    write(out / "swift" / "train.jsonl", jsonl([to_swift(s) for s in SAMPLES]))
    write(out / "swift-legacy" / "train.jsonl", jsonl([to_swift_legacy(s) for s in SAMPLES]))
    write(out / "internvl" / "train.jsonl", jsonl([to_internvl(s) for s in SAMPLES]))
    llava = [to_llava(s) for s in SAMPLES if s["id"] not in LLAVA_LEFT_OUT]
    write(out / "llava" / "train.json", json.dumps(llava, ensure_ascii=False, indent=2) + "\n")
    # InternVL meta (docs/formats.md#internvl-meta): paths relative to the repository root, where training runs.
    meta = {
        "vlmdata_sample": {
            "root": "sample_data/images",
            "annotation": "sample_data/internvl/train.jsonl",
            "data_augment": False,
            "repeat_time": 1,
            "length": len(SAMPLES),
        }
    }
    write(out / "internvl" / "meta.json", json.dumps(meta, indent=2) + "\n")
    print(f"wrote {len(IMAGES)} images and {len(SAMPLES)} samples x 4 formats under {out}")


if __name__ == "__main__":
    main()
