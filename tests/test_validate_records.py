"""Record rules (VD1) and grounding rules (VD2) of `vlmdata validate`.

Every rule has a record that fires it and one that does not (CASES, checked to cover every VD1/VD2
code); the media-tag counting of each target is tested against docs/consumers.md#media-tags in one test per
consumer; the safe fixers rewrite the file so that a second run is clean; real data from
../shared/realdata behaves as its case.json says.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import read_jsonl, write_jsonl
from vlmdata.validators import RULES, validate
from vlmdata.validators.registry import load_rules


def run(tmp_path: Path, rows: list[dict[str, Any]], target: str, select: list[str] | None = None, **kw: Any):
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    return validate(str(path), target=target, select=select or ["VD1", "VD2"], **kw)


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


def hits(report, code: str):
    return [f for f in report.findings if f.code == code]


def human(text: str) -> dict[str, str]:
    return {"from": "human", "value": text}


def gpt(text: str) -> dict[str, str]:
    return {"from": "gpt", "value": text}


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def assistant(content: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content}


def system(content: str) -> dict[str, Any]:
    return {"role": "system", "content": content}


def ivl(image: Any, *turns: dict[str, str], id: Any = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {} if id is None else {"id": id}
    if image is not None:
        row["image"] = image
    row.update(extra)
    row["conversations"] = list(turns)
    return row


def swift(*messages: dict[str, Any], images: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": list(messages)}
    if images is not None:
        row["images"] = images
    row.update(extra)
    return row


def blocks(*items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items:
        if item == "<image>":
            out.append({"type": "image"})
        elif isinstance(item, dict):
            out.append(item)
        else:
            out.append({"type": "text", "text": item})
    return out


OK_IVL = ivl("a.jpg", human("<image>\nWhat is it?"), gpt("A cat."))
OK_SWIFT = swift(user("<image>What is it?"), assistant("A cat."), images=["a.jpg"])


# (code, target, record that fires it, record that does not)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    # VD101: counts the target rejects or trains without
    (
        "VD101",
        "internvl",
        ivl(["a.jpg", "b.jpg"], human("<image>\nCompare."), gpt("Same.")),
        ivl(["a.jpg", "b.jpg"], human("<image>\n<image>\nCompare."), gpt("Same.")),
    ),
    (
        "VD101",
        "internvl",
        ivl(None, human("<video>What happens?"), gpt("Rain."), video="v.mp4"),
        ivl(None, human("<video>\nWhat happens?"), gpt("Rain."), video="v.mp4"),
    ),
    ("VD101", "internvl", ivl("a.jpg", human("<image>\nHi"), gpt("Hi"), video="v.mp4"), OK_IVL),
    ("VD101", "llamafactory", swift(user("Describe it."), assistant("A cat."), images=["a.jpg"]), OK_SWIFT),
    ("VD101", "llava", ivl("a.jpg", human("What is it?"), gpt("A cat.")), OK_IVL),
    ("VD101", "llava", ivl(["a.jpg", "b.jpg"], human("<image>\n<image>\nHi"), gpt("Hi")), OK_IVL),
    ("VD101", "llava", ivl("a.jpg", human("<image>\nHi"), gpt("Hi"), human("<image>\nAnd?"), gpt("Cat.")), OK_IVL),
    (
        "VD101",
        "qwen",
        ivl(["a.jpg", "b.jpg"], human("<image>\nCompare."), gpt("Same.")),
        ivl(["a.jpg", "b.jpg"], human("<image><image>\nCompare."), gpt("Same.")),
    ),
    (
        "VD101",
        "hf",
        {"messages": [user(blocks("<image>", "<image>", "Compare.")), assistant(blocks("Same."))], "images": ["a.jpg"]},
        {"messages": [user(blocks("<image>", "Describe.")), assistant(blocks("A cat."))], "images": ["a.jpg"]},
    ),
    (
        "VD101",
        "swift",
        swift(user(blocks("Hi")), assistant("Hi"), images=["a.jpg"]),
        swift(user(blocks("<image>", "Hi")), assistant("Hi"), images=["a.jpg"]),
    ),
    # VD102: surplus tags kept as literal text, or collapsed (LLaVA)
    ("VD102", "swift", swift(user("<image><image>Compare."), assistant("Same."), images=["a.jpg"]), OK_SWIFT),
    (
        "VD102",
        "internvl",
        ivl(["a.jpg"], human("<image>\n<image>\nHi"), gpt("Hi")),
        ivl(["a.jpg"], human("<image>\nHi"), gpt("Hi")),
    ),
    ("VD102", "llava", ivl("a.jpg", human("<image> left <image> right"), gpt("Two views.")), OK_IVL),
    # VD103: the target inserts every tag
    ("VD103", "swift", swift(user("What is it?"), assistant("A cat."), images=["a.jpg"]), OK_SWIFT),
    (
        "VD103",
        "hf",
        {"messages": [user("What is it?"), assistant("A cat.")], "images": ["a.jpg"]},
        {"messages": [user(blocks("<image>", "What is it?")), assistant(blocks("A cat."))], "images": ["a.jpg"]},
    ),
    # VD104: ms-swift, some tags but fewer than images
    (
        "VD104",
        "swift",
        swift(user("Image-1: <image> and?"), assistant("Two."), images=["a.jpg", "b.jpg"]),
        swift(user("Image-1: <image> Image-2: <image>"), assistant("Two."), images=["a.jpg", "b.jpg"]),
    ),
    # VD105: tags in turns the target does not read
    ("VD105", "internvl", ivl("a.jpg", human("What is it?"), gpt("<image> a cat")), OK_IVL),
    (
        "VD105",
        "qwen",
        ivl(["a.jpg"], human("<image>\nHi"), gpt("see <image>")),
        ivl(["a.jpg"], human("<image>\nHi"), gpt("Hi")),
    ),
    (
        "VD105",
        "llamafactory",
        swift(system("<image> is a tag"), user("<image>Hi"), assistant("Hi"), images=["a.jpg"]),
        OK_SWIFT,
    ),
    (
        "VD105",
        "hf",
        {"messages": [user(blocks("<image>", "<image> what?")), assistant(blocks("A cat."))], "images": ["a.jpg"]},
        {"messages": [user(blocks("<image>", "What?")), assistant(blocks("A cat."))], "images": ["a.jpg"]},
    ),
    # VD106 / VD107: InternVL single-image insertion looks at conversations[0] only
    (
        "VD106",
        "internvl",
        ivl("a.jpg", human("Hi"), gpt("Hi"), human("<image>\nWhat is it?"), gpt("A cat.")),
        ivl(["a.jpg"], human("Hi"), gpt("Hi"), human("<image>\nWhat is it?"), gpt("A cat.")),
    ),
    (
        "VD107",
        "internvl",
        ivl("a.jpg", {"from": "system", "value": "Be brief."}, human("<image>\nWhat?"), gpt("Cat.")),
        ivl(["a.jpg"], {"from": "system", "value": "Be brief."}, human("<image>\nWhat?"), gpt("Cat.")),
    ),
    # VD11x: roles and turns
    (
        "VD110",
        "swift",
        swift(user("Hi"), system("Be brief."), assistant("Hi")),
        swift(system("Be."), user("Hi"), assistant("Hi")),
    ),
    (
        "VD110",
        "llamafactory",
        swift(user("Hi"), assistant("Hi"), system("x"), user("Hi"), assistant("Hi")),
        swift(system("x"), user("Hi"), assistant("Hi")),
    ),
    (
        "VD110",
        "internvl",
        ivl(None, human("Hi"), {"from": "system", "value": "x"}, gpt("Hi")),
        ivl(None, {"from": "system", "value": "x"}, human("Hi"), gpt("Hi")),
    ),
    ("VD111", "llava", ivl("a.jpg", {"from": "system", "value": "x"}, human("<image>\nHi"), gpt("Hi")), OK_IVL),
    ("VD111", "qwen", ivl("a.jpg", {"from": "system", "value": "x"}, human("<image>\nHi"), gpt("Hi")), OK_IVL),
    ("VD112", "llamafactory", swift(user("Hi"), user("<image>And?"), assistant("Cat."), images=["a.jpg"]), OK_SWIFT),
    ("VD112", "llamafactory", swift(user("<image>Hi"), assistant("Hi"), user("And?"), images=["a.jpg"]), OK_SWIFT),
    ("VD112", "llava", ivl("a.jpg", human("<image>\nHi"), human("And?"), gpt("Cat.")), OK_IVL),
    ("VD113", "swift", swift(user("Hi"), user("<image>What?"), assistant("Cat."), images=["a.jpg"]), OK_SWIFT),
    (
        "VD113",
        "swift",
        swift(assistant("Hello."), user("<image>What?"), assistant("Cat."), images=["a.jpg"]),
        swift(assistant("<image>is a puppy"), images=["a.jpg"]),
    ),  # assistant-only: ms-swift pretraining
    ("VD113", "llava", ivl("a.jpg", gpt("Hello."), human("<image>\nWhat?"), gpt("Cat.")), OK_IVL),
    ("VD114", "swift", swift(user("<image>What is it?"), assistant("  "), images=["a.jpg"]), OK_SWIFT),
    ("VD114", "internvl", ivl("a.jpg", human("<image>\nHi"), gpt("")), OK_IVL),
    ("VD115", "swift", swift(user("<image>What is it?"), images=["a.jpg"]), OK_SWIFT),
    ("VD115", "internvl", ivl("a.jpg", human("<image>\nHi"), gpt("Hi"), human("More?")), OK_IVL),
    ("VD116", "internvl", ivl("a.jpg", {"from": "user", "value": "<image>\nHi"}, gpt("Hi")), OK_IVL),
    (
        "VD116",
        "hf",
        {"messages": [{"role": "human", "content": "Hi"}, assistant("Hi")]},
        {"messages": [user("Hi"), assistant("Hi")]},
    ),
    (
        "VD116",
        "swift",
        swift({"role": "narrator", "content": "Hi"}, assistant("Hi")),
        swift({"role": "human", "content": "Hi"}, {"role": "gpt", "content": "Hi"}),
    ),
    # VD12x: keys
    (
        "VD121",
        "swift",
        swift(user("Hi"), {"role": "assistant", "content": "Hi", "reasoning_content": "..."}),
        swift(user("Hi"), {"role": "assistant", "content": "Hi", "loss": False}),
    ),
    ("VD121", "internvl", dict(OK_IVL, objects={"ref": ["cat"], "bbox": [[1, 2, 3, 4]]}), OK_IVL),
    ("VD121", "swift", dict(OK_SWIFT, width=10, height=10), dict(OK_SWIFT, id="x", objects={"ref": [], "bbox": []})),
    ("VD122", "internvl", ivl("a.jpg", human("<image>\nHi"), {"from": "gpt", "text": "Hi"}), OK_IVL),
    ("VD122", "swift", swift(user("Hi"), {"role": "assistant", "text": "Hi"}), swift(user("Hi"), assistant("Hi"))),
    # VD2: grounding
    (
        "VD201",
        "internvl",
        ivl("a.jpg", human("<image>\nWhere?"), gpt("<ref>cat</ref><box>[[900, 4, 850, 6]]</box>")),
        ivl("a.jpg", human("<image>\nWhere?"), gpt("<ref>cat</ref><box>[[100, 4, 850, 6]]</box>")),
    ),
    (
        "VD202",
        "internvl",
        ivl("a.jpg", human("<image>\nWhere?"), gpt("<ref>cat</ref><box>[[10, 4, 1250, 6]]</box>")),
        ivl("a.jpg", human("<image>\nWhere?"), gpt("<ref>cat</ref><box>[[10, 4, 1000, 6]]</box>")),
    ),
    (
        "VD202",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[12, 30, 200, 180]], "bbox_type": "norm1"},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[0.1, 0.3, 0.5, 0.8]], "bbox_type": "norm1"},
        ),
    ),
    (
        "VD203",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            width_list=[320],
            height_list=[240],
            objects={"ref": ["cat"], "bbox": [[200, 100, 400, 200]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            width_list=[320],
            height_list=[240],
            objects={"ref": ["cat"], "bbox": [[200, 100, 320, 200]]},
        ),
    ),
    (
        "VD203",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[-5, 10, 40, 60]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[5, 10, 40, 60]]},
        ),
    ),
    (
        "VD204",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[100, 200, 500, 800]], "bbox_type": "norm_1000"},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[0.1, 0.2, 0.5, 0.8]], "bbox_type": "norm1"},
        ),
    ),
    (
        "VD204",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[0.1, 0.2, 0.5, 0.8]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[0, 1, 1, 1]]},
        ),
    ),  # integers: tiny pixel boxes are possible
    (
        "VD205",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            width_list=[640],
            height_list=[480],
            objects={"ref": ["cat"], "bbox": [[120, 80, 60, 40]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            width_list=[640],
            height_list=[480],
            objects={"ref": ["cat"], "bbox": [[500, 400, 300, 100]]},
        ),
    ),
    (
        "VD206",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox><bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[10, 20, 110, 220]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox><bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[10, 20, 110, 220], [200, 20, 300, 220]]},
        ),
    ),
    ("VD206", "swift", swift(user("<image>Find the <ref-object>"), assistant("<bbox>"), images=["a.jpg"]), OK_SWIFT),
    (
        "VD207",
        "swift",
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[10, 20, 110, 220], [200, 20, 300, 220]]},
        ),
        swift(
            user("<image>Find the <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects={"ref": ["cat"], "bbox": [[10, 20, 110, 220]]},
        ),
    ),
    (
        "VD207",
        "swift",
        swift(
            user("<image> Find <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects='[{"caption": "a", "bbox": [1, 2, 3, 4]}, {"caption": "b","bbox": [5, 6, 7, 9]}]',
        ),
        swift(
            user("<image> Find <ref-object>"),
            assistant("<bbox>"),
            images=["a.jpg"],
            objects='[{"caption": "a", "bbox": [1, 2, 3, 4]}]',
        ),
    ),
]


CASES.append(
    (
        "VD108",
        "internvl",  # ms-swift prose quoting InternVL markup: text to ms-swift, a ref to InternVL
        swift(user("<image>Why do the docs write <ref>cat</ref>?"), assistant("To mark a phrase."), images=["a.jpg"]),
        swift(user("<image>Why do the docs write ref tags?"), assistant("To mark a phrase."), images=["a.jpg"]),
    )
)
CASES.append(
    (
        "VD109",
        "internvl",
        ivl("https://example.com/a.jpg", human("<image>\nWhat is it?"), gpt("A cat.")),
        ivl("a.jpg", human("<image>\nWhat is it?"), gpt("A cat.")),
    )
)


def _case_id(case: tuple[str, str, dict[str, Any], dict[str, Any]]) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_rule_fires_and_does_not(tmp_path: Path, case: tuple[str, str, dict[str, Any], dict[str, Any]]):
    code, target, bad, good = case
    fired = hits(run(tmp_path / "bad", [bad], target, [code]), code)
    assert fired, f"{code} did not fire for {target}: {bad}"
    assert all(f.message and not re.search(r"\{[a-z_]+\}", f.message) for f in fired)  # the template was filled
    clean = run(tmp_path / "good", [good], target, [code])
    assert not hits(clean, code), [f.message for f in clean.findings]


def test_every_record_and_grounding_rule_has_a_case_and_docs():
    load_rules()
    family = {"VD10": ".rules.media_tags", "VD11": ".rules.roles", "VD12": ".rules.keys", "VD2": ".rules.grounding"}
    mine = {code for code, r in RULES.items() if r.check.__module__.endswith(tuple(family.values()))}
    covered = {c[0] for c in CASES} | {"VD120"}  # VD120 needs two records: test_duplicate_id
    assert mine == covered
    assert mine >= {f"VD10{i}" for i in range(1, 8)} | {"VD201", "VD206"}
    for code in mine:
        r = RULES[code]
        assert r.what and r.why and r.example and r.fix, code
        assert r.doc().startswith(f"# {r.name} ({code})")
        # one module per family: the code's family names the module that holds the rule
        module = r.check.__module__.removeprefix("vlmdata.validators")
        assert [m for prefix, m in family.items() if code.startswith(prefix)] == [module], code
    assert RULES["VD106"].fixer is not None and RULES["VD107"].fixer is not None
    assert RULES["VD122"].fixer is not None


def test_duplicate_id(tmp_path: Path):
    rows = [dict(OK_IVL, id="a"), dict(OK_IVL, id="b"), dict(OK_IVL, id="a"), dict(OK_IVL, id=7), dict(OK_IVL, id="7")]
    found = hits(run(tmp_path, rows, "internvl", ["VD120"]), "VD120")
    assert [f.line for f in found] == [3]
    assert "line 1" in found[0].message and "'a'" in found[0].message
    # a new file starts a new id space
    other = write_jsonl(tmp_path / "other.jsonl", [dict(OK_IVL, id="a")])
    report = validate([str(tmp_path / "data.jsonl"), str(other)], target="internvl", select=["VD120"])
    assert [f.file for f in hits(report, "VD120")] == [str(tmp_path / "data.jsonl")]


def test_unknown_keys_are_reported_once_per_file(tmp_path: Path):
    row = swift(user("Hi"), {"role": "assistant", "content": "Hi", "name": "bot"}, width=3)
    found = hits(run(tmp_path, [row, row, row], "swift", ["VD121"]), "VD121")
    assert len(found) == 2 and all(f.line == 1 for f in found)
    assert {f.severity for f in found} == {"info"}
    assert any("'width'" in f.message for f in found) and any("'name'" in f.message for f in found)


# --------------------------------------------------------------------------- docs/consumers.md#media-tags, per consumer


def verdicts(tmp_path: Path, target: str, rows: list[dict[str, Any]]) -> list[set[str]]:
    """The VD10x codes each record gets."""
    report = run(tmp_path, rows, target, ["VD10"])
    out: list[set[str]] = [set() for _ in rows]
    for f in report.findings:
        out[f.index].add(f.code)  # type: ignore[index]
    return out


def test_internvl_counting(tmp_path: Path):
    """Human turns only; a single image/video without tag is inserted into conversations[0] (and only
    conversations[0] is looked at); several images need one tag each; extras stay literal
    (docs/consumers.md#media-tags)."""
    rows = [
        ivl("a.jpg", human("What is it?"), gpt("A cat.")),  # single, no tag: inserted, fine
        ivl("a.jpg", human("Hi"), gpt("Hi"), human("<image>\nWhat?"), gpt("Cat.")),  # turn 3: a second tag added
        ivl("a.jpg", human("What?"), gpt("<image>")),  # assistant tag is literal, human tag inserted
        ivl(["a.jpg", "b.jpg"], human("Compare."), gpt("Same.")),  # multi-image: no insertion
        ivl(["a.jpg"], human("<image>\nHi <image>"), gpt("Hi")),  # surplus: literal
        ivl("a.jpg", {"from": "system", "value": "Be brief."}, human("What?"), gpt("Cat.")),  # into the system turn
        ivl(None, human("What happens?"), gpt("Rain."), video="clip.mp4"),  # single video: inserted
        ivl(["a.jpg", "b.jpg"], human("<image>\n<image>\nCompare."), gpt("<image> same")),
    ]
    assert verdicts(tmp_path, "internvl", rows) == [
        set(),
        {"VD106"},
        {"VD105"},
        {"VD101"},
        {"VD102"},
        {"VD107"},
        set(),
        {"VD105"},
    ]


def test_llamafactory_counting(tmp_path: Path):
    """Every message counts (assistant included), exact equality both ways, nothing inserted
    (docs/consumers.md#media-tags)."""
    rows = [
        swift(user("<image>What?"), assistant("Cat."), images=["a.jpg"]),
        swift(user("Draw a cat."), assistant("<image>"), images=["a.jpg"]),  # assistant tag counts
        swift(user("What?"), assistant("Cat."), images=["a.jpg"]),  # no insertion: the run aborts
        swift(user("<image><image>What?"), assistant("Cat."), images=["a.jpg"]),  # surplus raises too
        swift(user("<video>What?"), assistant("Rain."), videos=["v.mp4"]),
        swift(user("What?"), assistant("Rain."), videos=["v.mp4"]),
    ]
    assert verdicts(tmp_path, "llamafactory", rows) == [set(), set(), {"VD101"}, {"VD101"}, set(), {"VD101"}]


def test_swift_counting(tmp_path: Path):
    """All messages count; fewer tags: prepended to the first non-system message; more: a warning and
    literal text (docs/consumers.md#media-tags)."""
    rows = [
        swift(system("x"), user("Draw a cat."), assistant("<image>"), images=["a.jpg"]),  # text-to-image
        swift(system("x"), user("What?"), assistant("Cat."), images=["a.jpg"]),  # inserted
        swift(user("Image-1: <image> Image-2?"), assistant("Two."), images=["a.jpg", "b.jpg"]),  # partial
        swift(user("<image><image>What?"), assistant("Cat."), images=["a.jpg"]),  # surplus
        swift(user(blocks({"type": "image", "image": "a.jpg"}, "What?")), assistant("Cat.")),  # block with payload
        swift(user(blocks("What?")), assistant("Cat."), images=["a.jpg"]),  # block content: no insertion
    ]
    report = run(tmp_path, rows[1:2], "swift", ["VD103"])
    assert "in front of messages[1]" in report.findings[0].message
    assert verdicts(tmp_path, "swift", rows) == [set(), {"VD103"}, {"VD104"}, {"VD102"}, set(), {"VD101"}]


def test_llava_counting(tmp_path: Path):
    """One image, never inserted (unused without a tag); the tags of a turn collapse into one at its
    start; a tag at the end of the turn is fine (LLaVA moves it) (docs/consumers.md#media-tags)."""
    rows = [
        ivl("a.jpg", human("<image>\nWhat?"), gpt("Cat.")),
        ivl("a.jpg", human("What is in the image?\n<image>"), gpt("Cat.")),  # moved to the start: fine
        ivl("a.jpg", human("What?"), gpt("Cat.")),  # unused image
        ivl("a.jpg", human("<image> and <image>?"), gpt("Cat.")),  # collapsed
        ivl(["a.jpg"], human("<image>\nWhat?"), gpt("Cat.")),  # a list breaks os.path.join
        ivl(None, human("<image> is a tag"), gpt("Yes.")),  # no image: plain text
    ]
    assert verdicts(tmp_path, "llava", rows) == [set(), set(), {"VD101"}, {"VD102"}, {"VD101"}, {"VD102"}]


def test_qwen_counting(tmp_path: Path):
    """Human turns only; exact equality both ways raises; assistant tags stay text (docs/consumers.md#media-tags,
    docs/formats.md#qwen)."""
    rows = [
        ivl(["a.jpg", "b.jpg"], human("<image>\n<image>\nCompare."), gpt("Same.")),
        ivl("a.jpg", human("What?"), gpt("Cat.")),  # '1 image(s) remain unused'
        ivl("a.jpg", human("<image><image>What?"), gpt("Cat.")),  # 'exceeds the number of provided images'
        ivl("a.jpg", human("What?"), gpt("<image>")),  # the assistant tag is not counted
        ivl(None, human("<video>\nWhat?"), gpt("Rain."), video=["v.mp4"]),
    ]
    assert verdicts(tmp_path, "qwen", rows) == [set(), {"VD101"}, {"VD101"}, {"VD101", "VD105"}, set()]
    messages = [f.message for f in run(tmp_path, rows[1:3], "qwen", ["VD101"]).findings]
    assert "remain unused" in messages[0] and "exceeds the number of provided images" in messages[1]


def test_hf_counting(tmp_path: Path):
    """TRL: a string first user message gets every image in front of it; {"type": "image"} blocks are
    counted exactly against the images column; '<image>' in text is just text (docs/consumers.md#media-tags)."""
    rows = [
        {"messages": [user(blocks("<image>", "What?")), assistant(blocks("Cat."))], "images": ["a.jpg"]},
        {"messages": [user("What?"), assistant("Cat.")], "images": ["a.jpg", "b.jpg"]},  # both put before
        {"messages": [user(blocks("What?")), assistant(blocks("Cat."))], "images": ["a.jpg"]},  # raises
        {"messages": [user("<image>What?"), assistant("Cat.")], "images": ["a.jpg"]},  # inserted + literal text
        {"messages": [user(blocks({"type": "image", "image": "a.jpg"}, "What?")), assistant("Cat.")]},  # payload
        {"prompt": [user(blocks("<image>", "What?"))], "completion": [assistant("Cat.")], "images": ["a.jpg"]},
    ]
    assert verdicts(tmp_path, "hf", rows) == [set(), {"VD103"}, {"VD101"}, {"VD103", "VD105"}, set(), set()]


# --------------------------------------------------------------------------- fixers


def test_fix_text_key(tmp_path: Path, realdata: Path):
    path = tmp_path / "faq.jsonl"
    shutil.copy(realdata / "internvl-faq-text-key" / "faq_multi_image_example.jsonl", path)
    report = validate(str(path), target="internvl", select=["VD122"], fix=True)
    assert [(f.code, f.fixed) for f in report.findings] == [("VD122", True)]
    (record,) = read_jsonl(path)
    assert [sorted(t) for t in record["conversations"]] == [["from", "value"]] * 4
    assert record["conversations"][1]["value"] == "assistant output"
    assert not validate(str(path), target="internvl", select=["VD1"]).findings  # the record is clean now
    assert not validate(str(path), target="internvl", select=["VD0"]).findings  # and readable


def test_fix_text_key_in_role_content_messages(tmp_path: Path):
    path = write_jsonl(tmp_path / "d.jsonl", [swift(user("Hi"), {"role": "assistant", "text": "Hi"}), OK_SWIFT])
    before = path.read_text().splitlines()[1]
    validate(str(path), target="swift", select=["VD122"], fix=True)
    rows = read_jsonl(path)
    assert rows[0]["messages"][1] == {"role": "assistant", "content": "Hi"}
    assert path.read_text().splitlines()[1] == before  # other records keep their bytes
    assert not validate(str(path), target="swift", select=["VD122"]).findings


def test_fix_single_image_tag_not_in_first_turn(tmp_path: Path):
    turns = [human("Hi"), gpt("Hi"), human("<image>\nWhat is it?"), gpt("A cat.")]
    row = ivl("a.jpg", *turns, id=1, width=320, height=240)
    path = write_jsonl(tmp_path / "d.jsonl", [row])
    report = validate(str(path), target="internvl", select=["VD106"], fix=True)
    assert report.findings[0].fixable and report.findings[0].fixed and report.fixed == 1
    (fixed,) = read_jsonl(path)
    assert list(fixed) == ["id", "image", "width_list", "height_list", "conversations"]
    assert fixed["image"] == ["a.jpg"] and fixed["width_list"] == [320] and fixed["height_list"] == [240]
    assert fixed["conversations"] == row["conversations"]
    assert not validate(str(path), target="internvl", select=["VD1", "VD002"]).findings


def test_fix_internvl_first_turn_not_human(tmp_path: Path):
    sys_turn = {"from": "system", "value": "Be brief."}
    rows = [
        ivl("a.jpg", sys_turn, human("What is it?"), gpt("A cat.")),  # no tag: one is put in the human turn
        ivl("a.jpg", sys_turn, human("Look: <image>"), gpt("A cat.")),  # the tag is kept where it is
        ivl(None, sys_turn, human("What happens?"), gpt("Rain."), video="v.mp4"),  # a video: no safe fix
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    report = validate(str(path), target="internvl", select=["VD107"], fix=True)
    assert [(f.index, f.fixable, f.fixed) for f in report.findings] == [
        (0, True, True),
        (1, True, True),
        (2, False, False),
    ]
    fixed = read_jsonl(path)
    assert fixed[0]["image"] == ["a.jpg"] and fixed[0]["conversations"][1]["value"] == "<image>\nWhat is it?"
    assert fixed[1]["image"] == ["a.jpg"] and fixed[1]["conversations"][1]["value"] == "Look: <image>"
    assert fixed[2] == rows[2]
    again = validate(str(path), target="internvl", select=["VD1"])
    assert [(f.index, f.code) for f in again.findings] == [(2, "VD107")]


def test_fixes_chain_on_one_record(tmp_path: Path):
    row = ivl("a.jpg", human("Hi"), {"from": "gpt", "text": "Hi"}, human("<image>\nWhat?"), gpt("Cat."))
    path = write_jsonl(tmp_path / "d.jsonl", [row])
    validate(str(path), target="internvl", select=["VD106", "VD122"], fix=True)
    (fixed,) = read_jsonl(path)
    assert fixed["image"] == ["a.jpg"] and fixed["conversations"][1] == {"from": "gpt", "value": "Hi"}
    assert not validate(str(path), target="internvl", select=["VD1"]).findings


def test_fix_in_a_json_list(tmp_path: Path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([OK_IVL, ivl("a.jpg", human("<image>\nHi"), {"from": "gpt", "text": "Hi"})], indent=1))
    validate(str(path), target="llava", select=["VD122"], fix=True)
    data = json.loads(path.read_text())
    assert data[1]["conversations"][1] == {"from": "gpt", "value": "Hi"} and data[0] == OK_IVL


# --------------------------------------------------------------------------- messages and edge cases


def test_messages_say_what_and_how_to_fix(tmp_path: Path):
    rows = [ivl("a.jpg", human("Hi"), gpt("Hi"), human("<image>\nWhat?"), gpt("Cat."))]
    (f,) = run(tmp_path, rows, "internvl", ["VD106"]).findings
    assert "conversations[2]" in f.message and "one-element list" in f.message and f.severity == "error"
    (f,) = run(
        tmp_path, [swift(user("What?"), assistant("Cat."), images=["a.jpg"])], "llamafactory", ["VD101"]
    ).findings
    assert "LLaMA-Factory" in f.message and "write exactly one <image>" in f.message


ODD_RECORDS: dict[str, list[dict[str, Any]]] = {  # every row breaks its own format's schema
    "internvl": [
        {"conversations": ["not a dict", 3, None]},  # turns that are not objects
        {"conversations": [], "image": {"weird": True}, "video": 5},  # an image that is no path, video a number
        {"id": [1, 2], "conversations": [{"from": "human"}, {"from": "gpt", "value": ""}]},  # a turn without value
    ],
    "swift": [
        {"messages": [{"role": None, "content": None}, {"content": [1, {"type": "image"}, {"x": 1}]}]},  # no roles
        {"messages": "nope", "images": [{"bytes": None}]},  # messages not a list
        {"messages": [user("<image>")], "objects": {"ref": "cat", "bbox": "oops", "bbox_type": 3}},  # bbox a string
    ],
    "swift-legacy": [{"query": "", "response": "", "history": "[['a', 'b']]", "objects": "not json"}],  # history text
    "hf": [{"prompt": "hi", "completion": 5}],  # a completion that is a number
}


@pytest.mark.parametrize("fmt", list(ODD_RECORDS))
def test_odd_records_are_each_refused_by_their_reader(tmp_path: Path, fmt: str):
    """Records that break their format's shape reach every target's rules without an exception, and
    each one gets VD002 (its reader refuses it) at its own index."""
    rows = ODD_RECORDS[fmt]
    for target in ("internvl", "llamafactory", "swift", "llava", "qwen", "hf"):
        report = run(tmp_path / target, rows, target, ["VD0", "VD1", "VD2"], from_format=fmt)
        assert report.records == len(rows)
        assert sorted(f.index for f in hits(report, "VD002")) == list(range(len(rows))), target


def test_box_rules_skip_records_the_reader_rejects(tmp_path: Path):
    # 1 image but 2 tags in a multi-image InternVL record: VD002, no sample, no box checks
    row = ivl(["a.jpg"], human("<image><image>"), gpt("<box>[[900, 400, 850, 600]]</box>"))
    report = run(tmp_path, [row], "internvl", ["VD002", "VD2"])
    assert codes(report) == ["VD002"]


def test_points_and_native_box_syntaxes(tmp_path: Path):
    # a point out of range (InternVL 0-1000)
    report = run(
        tmp_path / "a", [ivl("a.jpg", human("<image>\nClick it."), gpt("<box>[[1200, 30]]</box>"))], "internvl", ["VD2"]
    )
    assert codes(report) == ["VD202"] and "[1200, 30]" in report.findings[0].message
    # Qwen2-VL tokens in ms-swift text, 0-1000: a reversed one and a fine one
    rows = [
        swift(user("<image>Where?"), assistant("<|box_start|>(10,20),(300,400)<|box_end|>"), images=["a.jpg"]),
        swift(
            user("<image>Where?"),
            assistant("<|object_ref_start|>cat<|object_ref_end|><|box_start|>(900,20),(800,400)<|box_end|>"),
            images=["a.jpg"],
        ),
    ]
    # ms-swift itself reads such markup as text: no boxes unless the rows hold the model's own syntax
    assert codes(run(tmp_path / "b0", rows, "swift", ["VD2"])) == []
    report = run(tmp_path / "b", rows, "swift", ["VD2"], native_grounding="qwen")
    assert [(f.index, f.code) for f in report.findings] == [(1, "VD201")]
    assert "('cat') in messages[1]" in report.findings[0].message
    # legacy ms-swift norm_1000 is 0-999
    legacy = {
        "query": "<image>Find <ref-object>",
        "response": "<bbox>",
        "images": ["a.jpg"],
        "objects": json.dumps([{"caption": "cat", "bbox": [10, 20, 1000, 300], "bbox_type": "norm_1000"}]),
    }
    report = run(tmp_path / "c", [legacy], "swift", ["VD2"])
    assert codes(report) == ["VD202"] and "0-999" in report.findings[0].message


# --------------------------------------------------------------------------- real data


def test_realdata_faq_text_key(realdata: Path):
    case = realdata / "internvl-faq-text-key"
    for name in ("faq_multi_image_example.jsonl", "faq_multi_image_example.json"):
        report = validate(str(case / name), target="internvl", select=["VD1"])
        assert codes(report) == ["VD122"], name
        assert "conversations[1], conversations[3]" in report.findings[0].message


def test_realdata_florence2_rows_have_no_image_tags(realdata: Path):
    path = realdata / "lf-tfid-florence2-grounding" / "TF-ID-arxiv-papers_example.json"
    report = validate(str(path), target="llamafactory", select=["VD1"])
    assert [(f.code, f.index) for f in report.findings] == [("VD101", 0), ("VD101", 1)]
    assert all("0 <image> tags in the messages but 1 image" in f.message for f in report.findings)
    # ms-swift would insert the tag instead: info only
    report = validate(str(path), target="swift", select=["VD1"])
    assert {f.code for f in report.findings} == {"VD103"}


def test_realdata_llava_instruct_is_clean(realdata: Path):
    path = realdata / "llava-instruct-100" / "llava_instruct_100.json"
    report = validate(str(path), target="llava", select=["VD1", "VD2"])
    assert report.records == 100 and not report.findings


def test_realdata_swift_grounding_docs_are_clean(realdata: Path):
    case = realdata / "swift-docs-grounding"
    for name in ("grounding_objects.jsonl", "grounding_objects_qwenvl_new.jsonl", "grounding_native_qwen2vl.jsonl"):
        report = validate(str(case / name), target="swift", select=["VD1", "VD2"])
        assert not report.findings, (name, [f.message for f in report.findings])


def test_realdata_lf_v1_blocks_count_their_own_media(realdata: Path):
    path = realdata / "lf-v1-typed-blocks" / "data" / "v1_multimodal_demo.jsonl"
    for target in ("swift", "llamafactory", "hf"):
        report = validate(str(path), target=target, select=["VD1", "VD2"])
        assert report.records == 24 and not report.findings, target


def test_sample_data_has_no_record_errors():
    root = Path(__file__).resolve().parents[1] / "sample_data"
    for name in ("swift/train.jsonl", "internvl/meta.json", "llava/train.json", "swift-legacy/train.jsonl"):
        report = validate(str(root / name), select=["VD1", "VD2"])
        assert not report.findings, (name, [f.message for f in report.findings])
