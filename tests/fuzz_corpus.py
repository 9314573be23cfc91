"""Seed records of every format and hostile mutations of them, for the structure-aware fuzz suite.

Every seed is a valid record of its format (the same content as sample_data/, images relative to
the media root). A mutation replaces the value at one place of a record (any key or list index,
at any depth) with a hostile value, or splices a hostile fragment into a string, or adds a key.
Files are written as their format's layout: JSONL lines, a JSON list, or one COCO object.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

IMAGES = {
    "a.png": (320, 240),
    "b.jpg": (240, 320),
    "c.png": (400, 300),
}

DEEP = 1500
# A placeholder string that ``dump_value`` replaces by 1,500-deep nesting after json.dumps (which
# cannot encode that depth itself).
DEEP_LIST = "\x00deep-list\x00"
DEEP_DICT = "\x00deep-dict\x00"
# Nesting that the JSON parsers take (under their ~1,000 limit) but that deep enough to hit
# orjson's 255-level limit on output, and Python recursion in anything that walks the value.
MID_LIST = "\x00mid-list\x00"
MID_DICT = "\x00mid-dict\x00"
MID = 300
NEAR = 900
NEAR_LIST = "\x00near-list\x00"


def _swift() -> list[dict]:
    return [
        {
            "id": "s0",
            "messages": [
                {"role": "user", "content": "<image>Describe the image."},
                {"role": "assistant", "content": "A yellow circle."},
            ],
            "images": ["a.png"],
        },
        {
            "id": "s1",
            "messages": [
                {"role": "user", "content": "<image>Locate the red squares and the blue circle."},
                {"role": "assistant", "content": "<ref-object><bbox><bbox> and <ref-object><bbox>"},
            ],
            "images": ["a.png"],
            "objects": {
                "ref": ["red square", "blue circle"],
                "bbox": [[37, 52, 101, 116], [205, 31, 269, 95], [118, 128, 206, 216]],
                "bbox_type": "real",
            },
        },
        {
            "id": "s2",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Image-1: <image>\nImage-2: <image>\nWhich one is green?"},
                {"role": "assistant", "content": "Image-2."},
                {"role": "user", "content": "Where is the circle?"},
                {"role": "assistant", "content": "<ref-object><bbox>"},
            ],
            "images": ["b.jpg", "c.png"],
            "objects": {"ref": ["circle"], "bbox": [[0.1, 0.2, 0.5, 0.6]], "bbox_type": "norm1", "image_id": [1]},
        },
    ]


def _swift_legacy() -> list[dict]:
    return [
        {"id": "l0", "query": "<image>Describe the image.", "response": "A yellow circle.", "images": ["a.png"]},
        {
            "id": "l1",
            "query": "<image>Locate the red squares.",
            "response": "<ref-object><bbox>",
            "images": ["a.png"],
            "objects": json.dumps(
                [{"caption": "red square", "bbox": [37, 52, 101, 116], "bbox_type": "real", "image": 0}]
            ),
        },
        {
            "id": "l2",
            "system": "Be brief.",
            "query": "And now?",
            "response": "Two.",
            "history": [["<image>How many shapes?", "Two shapes."]],
            "images": ["c.png"],
        },
    ]


def _internvl() -> list[dict]:
    return [
        {
            "id": "i0",
            "image": "a.png",
            "width": 320,
            "height": 240,
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe the image."},
                {"from": "gpt", "value": "A yellow circle."},
            ],
        },
        {
            "id": "i1",
            "image": "a.png",
            "width": 320,
            "height": 240,
            "conversations": [
                {"from": "human", "value": "<image>\nLocate the red squares."},
                {
                    "from": "gpt",
                    "value": "<ref>red square</ref><box>[[116, 217, 316, 483], [641, 129, 841, 396]]</box>",
                },
            ],
        },
        {
            "id": "i2",
            "image": ["b.jpg", "c.png"],
            "width_list": [240, 400],
            "height_list": [320, 300],
            "conversations": [
                {"from": "human", "value": "Image-1: <image>\nImage-2: <image>\nWhich one is green?"},
                {"from": "gpt", "value": "Image-2."},
            ],
        },
        {"id": "i3", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]},
    ]


def _llava() -> list[dict]:
    return [
        {
            "id": "v0",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nDescribe the image."},
                {"from": "gpt", "value": "A yellow circle."},
            ],
        },
        {
            "id": "v1",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhere is the red square?"},
                {"from": "gpt", "value": "red square [0.12, 0.22, 0.32, 0.48]"},
                {"from": "human", "value": "And the circle?"},
                {"from": "gpt", "value": "[0.37, 0.53, 0.64, 0.9]"},
            ],
        },
    ]


def _qwen() -> list[dict]:
    return [
        {
            "id": "q0",
            "image": "a.png",
            "conversations": [
                {"from": "human", "value": "<image>Describe the image."},
                {"from": "gpt", "value": "A yellow circle."},
            ],
        },
        {
            "id": "q1",
            "image": ["b.jpg", "c.png"],
            "conversations": [
                {"from": "human", "value": "<image><image>Locate the circle."},
                {
                    "from": "gpt",
                    "value": "<|object_ref_start|>circle<|object_ref_end|><|box_start|>(116,217),(316,483)<|box_end|>",
                },
            ],
        },
    ]


def _sharegpt() -> list[dict]:
    return [
        {
            "id": "g0",
            "conversations": [
                {"from": "human", "value": "<image>Describe the image."},
                {"from": "gpt", "value": "A yellow circle."},
            ],
            "images": ["a.png"],
        },
        {
            "id": "g1",
            "system": "Be brief.",
            "conversations": [
                {"from": "human", "value": "<image>Locate the circle."},
                {"from": "gpt", "value": '```json\n[{"bbox_2d": [37, 52, 101, 116], "label": "circle"}]\n```'},
            ],
            "images": ["a.png"],
        },
    ]


def _hf() -> list[dict]:
    return [
        {
            "id": "h0",
            "messages": [
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A yellow circle."}]},
            ],
            "images": ["a.png"],
        },
        {
            "id": "h1",
            "messages": [
                {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                {
                    "role": "user",
                    "content": [
                        {"type": "image"},
                        {"type": "image"},
                        {"type": "text", "text": "Locate the circle."},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "text",
                            "text": "<|object_ref_start|>circle<|object_ref_end|>"
                            "<|box_start|>(116,217),(316,483)<|box_end|>",
                        }
                    ],
                },
            ],
            "images": ["b.jpg", "c.png"],
        },
        {"id": "h2", "messages": [{"role": "user", "content": "plain"}, {"role": "assistant", "content": "text"}]},
    ]


def _coco() -> dict:
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 320, "height": 240},
            {"id": 2, "file_name": "c.png", "width": 400, "height": 300},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 2, "bbox": [100.5, 20.25, 50, 60.5], "iscrowd": 0},
            {"id": 20, "image_id": 2, "category_id": 1, "bbox": [30, 20, 150, 100], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "circle"}],
    }


SEEDS: dict[str, Any] = {
    "swift": _swift(),
    "swift-legacy": _swift_legacy(),
    "internvl": _internvl(),
    "llava": _llava(),
    "qwen": _qwen(),
    "sharegpt": _sharegpt(),
    "hf": _hf(),
    "coco": _coco(),
}

# The layout each seed file is written in; JSON-list formats are also fuzzed as JSONL where they read it.
LAYOUTS: dict[str, tuple[str, ...]] = {
    "swift": ("jsonl", "json"),
    "swift-legacy": ("jsonl",),
    "internvl": ("jsonl",),
    "llava": ("json",),
    "qwen": ("json", "jsonl"),
    "sharegpt": ("json", "jsonl"),
    "hf": ("jsonl", "json"),
    "coco": ("json",),
}

# Output names for every format `convert --to` can write (coco is input only).
TARGETS: list[tuple[str, str]] = [
    ("swift", "jsonl"),
    ("swift-legacy", "jsonl"),
    ("internvl", "jsonl"),
    ("llava", "json"),
    ("sharegpt", "json"),
    ("qwen", "json"),
    ("hf", "jsonl"),
    ("hf", "parquet"),
]
VALIDATE_TARGETS = ["internvl", "llamafactory", "swift", "llava", "qwen", "hf"]

HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**70,
    -(2**70),
    2**63,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    5e-324,
    -0.0,
    0.5,
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "\x00",
    "a\x00b.png",
    "[x1, y1, x2, y2]",
    "[red]",
    "[/]",
    "[bold red]x[/bold red]",
    "<ref>",
    "</ref>",
    "<box>[[1,2,3",
    "<box>[[1e308, 0, 1, 2]]</box>",
    "<box>[[0, 0, 1000, 1000]]</box>",
    "<ref>x</ref><box>[[NaN, 1, 2, 3]]</box>",
    "<|box_start|>",
    "<|box_start|>(1,2),(3,4)<|box_end|>",
    "<|box_start|>(99999999999999999999999,2),(3,4)<|box_end|>",
    "<|object_ref_start|>",
    "<image>",
    "<image>" * 40,
    "<video>",
    "<audio>",
    "<ref-object><bbox>",
    "<bbox>" * 5,
    "../../etc/passwd",
    "../a.png",
    "/etc/passwd",
    "http://example.com/a.png",
    "https://x/\ud800.png",
    "file:///etc/passwd",
    "a.png\x00.jpg",
    "\ud800.png",
    "C:\\x\\a.png",
    "~/a.png",
    "a.png/",
    ".",
    "..",
    "x" * 100_000,
    "\ufeff",
    "\u202e",
    '```json\n[{"bbox_2d": [1e308, 2, 3, 4], "label": "x"}]\n```',
    '```json\n[{"bbox_2d": "x"}]\n```',
    "{image}",
    "%s%n",
    "user",
    "assistant",
    "system",
    "human",
    "gpt",
    "tool",
    "norm1",
    "norm_1000",
    "real",
    "image",
    "text",
    "video",
    "image_url",
    DEEP_LIST,
    DEEP_DICT,
    MID_LIST,
    MID_DICT,
    NEAR_LIST,
]

HOSTILE_CONTAINERS: list[Any] = [
    [],
    {},
    [None],
    [[]],
    [{}],
    ["a.png"],
    [1e308, 1, 2, 3],
    [float("nan"), 0, 1, 1],
    [float("inf"), 0, 1, 1],
    [0, 0, 2**70, 1],
    [[1, 2, 3, 4, 5]],
    [[float("inf"), 0, 1, 1]],
    [[1e308, 0, -1e308, 1]],
    [[0, 0, 1, 1]] * 50,
    {"type": ["text"]},
    {"type": {"a": 1}},
    {"type": "text", "text": ["x"]},
    {"type": "image", "image": "\ud800.png"},
    {"type": "image", "image": "a\x00.png"},
    {"type": "image_url", "image_url": {"url": "http://x"}},
    {"role": "user", "content": None},
    {"role": ["user"], "content": "x"},
    {"from": "human", "value": ["x"]},
    {"from": {"a": 1}, "value": "x"},
    {"ref": ["x"], "bbox": [[1e308, 0, 1, 1]]},
    {"ref": "x", "bbox": "y"},
    {"bbox": [[1, 2, 3, 4]], "bbox_type": ["real"]},
    {"path": "a.png", "bytes": None},
    {"bytes": "not bytes", "path": None},
    [DEEP_LIST],
    [MID_LIST],
    {"type": MID_DICT},
]

HOSTILE_FRAGMENTS = [
    "\ud800",
    "\x00",
    "[red]",
    "[x1, y1, x2, y2]",
    "<image>",
    "<video>",
    "<ref>",
    "</ref>",
    "<box>[[1,2,3",
    "<box>[[1e308, 2, 3, 4]]</box>",
    "<box>[[Infinity, 2, 3, 4]]</box>",
    "<|box_start|>(1e308,2),(3,4)<|box_end|>",
    "<|box_start|>",
    "<|object_ref_start|>",
    "<ref-object>",
    "<bbox>",
    "../",
    "[0.1, 0.2, 1e308, 0.5]",
    "[0.1, 0.2, NaN, 0.5]",
    "\\",
    "\n",
    "\r",
    "\u2028",
]

NAMED_KEYS = [
    "id",
    "image",
    "images",
    "videos",
    "video",
    "audios",
    "messages",
    "conversations",
    "objects",
    "width",
    "height",
    "width_list",
    "height_list",
    "system",
    "query",
    "response",
    "history",
    "role",
    "content",
    "from",
    "value",
    "bbox",
    "bbox_type",
    "ref",
    "image_id",
    "type",
    "text",
    "tools",
]


def hostile_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.sampled_from(HOSTILE_SCALARS),
        st.integers(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=30),
    )
    return st.one_of(
        st.sampled_from(HOSTILE_SCALARS),
        st.sampled_from(HOSTILE_CONTAINERS),
        scalars,
        st.lists(scalars, max_size=5),
        st.dictionaries(st.sampled_from(NAMED_KEYS), scalars, max_size=3),
    )


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in ``value``: the paths of keys and list items, at any depth."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(paths(v, (*prefix, i)))
    return out


def get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def put(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    parent = get(value, path[:-1])
    parent[path[-1]] = new
    return value


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """``seed`` (a record or a list of records) with 1-3 hostile mutations."""
    value = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        places = paths(value)
        place = draw(st.sampled_from(places))
        old = get(value, place)
        kind = draw(st.sampled_from(["replace", "replace", "splice", "add-key", "wrap", "delete"]))
        if kind == "splice" and isinstance(old, str):
            pos = draw(st.integers(0, len(old)))
            frag = draw(st.sampled_from(HOSTILE_FRAGMENTS))
            value = put(value, place, old[:pos] + frag + old[pos:])
        elif kind == "add-key" and isinstance(old, dict):
            old[draw(st.sampled_from(NAMED_KEYS))] = copy.deepcopy(draw(hostile_values()))
        elif kind == "wrap":
            wrapped = draw(st.sampled_from([[old], {"value": old}, [old, old]]))
            value = put(value, place, copy.deepcopy(wrapped))
        elif kind == "delete" and place and isinstance(get(value, place[:-1]), dict | list):
            parent = get(value, place[:-1])
            del parent[place[-1]]
        else:
            value = put(value, place, copy.deepcopy(draw(hostile_values())))
    return value


def dump_value(value: Any) -> str:
    """JSON text of ``value``: NaN/Infinity as JSON5-style tokens (what Python's json writes), lone
    surrogates as escapes, the DEEP placeholders as 1,500-deep nesting."""
    text = json.dumps(value, allow_nan=True, ensure_ascii=True)
    deep_list = json.dumps(DEEP_LIST)
    deep_dict = json.dumps(DEEP_DICT)
    text = text.replace(deep_list, "[" * DEEP + "]" * DEEP)
    text = text.replace(json.dumps(MID_LIST), "[" * MID + "]" * MID)
    text = text.replace(json.dumps(NEAR_LIST), "[" * NEAR + "]" * NEAR)
    text = text.replace(json.dumps(MID_DICT), '{"a":' * MID + "1" + "}" * MID)
    return text.replace(deep_dict, '{"a":' * DEEP + "1" + "}" * DEEP)


def write_input(path: Path, records: Any, layout: str, line_noise: list[str] | None = None) -> Path:
    """Write ``records`` (a list, or one COCO object) in ``layout``; ``line_noise`` lines are added
    to JSONL files as raw text."""
    if layout == "jsonl":
        lines = [dump_value(r) for r in records] + list(line_noise or [])
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", errors="surrogatepass")
    elif isinstance(records, list):
        elements = [dump_value(r) for r in records] + [n for n in line_noise or [] if n.strip() and n != "{"]
        path.write_text("[\n" + ",\n".join(elements) + "\n]\n", encoding="utf-8")
    else:
        path.write_text(dump_value(records), encoding="utf-8")
    return path


LINE_NOISE = [
    "",
    "   ",
    "{",
    "[" * DEEP + "]" * DEEP,
    '{"a":' * DEEP + "1" + "}" * DEEP,
    "null",
    "1e999",
    "NaN",
    '"\\ud800"',
    "[1, 2, 3]",
    '{"messages": "\\u0000"}',
    "\ufeff{}",
    '{"id": 18446744073709551617}',
    '{"messages": ' + "[" * MID + "]" * MID + "}",
]


def meta_entry(annotation: str, root: str) -> dict[str, Any]:
    """An InternVL meta entry naming a fuzzed annotation file."""
    return {"root": root, "annotation": annotation, "data_augment": False, "repeat_time": 1, "length": 3}
