"""The ms-swift -> InternVL fast path (vlmdata/convert/fastpath.py) against the full path.

Property: for any record, the fast path either declines (returns None and changes no counter) or
returns exactly the bytes the full path writes, with the same counters. The full path's verdicts
are taken from one run over the whole corpus first, and the fast path is handed every structure
that run passed (the write-time check's ``clean`` set), so that records whose structure is clean
but whose boxes or content are bad are put to it too.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlmdata.convert.codec import Options, Tally
from vlmdata.convert.engine import decode_item
from vlmdata.convert.fastpath import SwiftToInternVL, fast_converter
from vlmdata.convert.io import Raw
from vlmdata.convert.shards import ConvertJob, ConvertWork
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Sample
from vlmdata.validators.check import RecordChecker, plain_boxes

from . import fuzz_corpus as fc
from .conftest import REALDATA, make_image

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def _counts(t: Tally) -> tuple[Any, ...]:
    return (
        t.clamped,
        t.inserted_tags,
        t.unused_objects,
        t.systems_dropped,
        t.systems_merged,
        t.swapped_boxes,
        t.dropped_turns,
        len(t.record_notes),
        dict(t.dropped_keys),
        dict(t.frames),
    )


def _work(root: Path, **options: Any) -> ConvertWork:
    job = ConvertJob("in.jsonl", "in.jsonl", "swift", "internvl", str(root), Options(root=str(root), **options))
    return ConvertWork(job)


def full_results(payloads: list[bytes], root: Path, **options: Any) -> tuple[list[Any], set[Any]]:
    """(per record: (written bytes or None, counter delta), the structures the checker passed)."""
    work = _work(root, **options)
    results = []
    for k, payload in enumerate(payloads):
        before = _counts(work.tally)
        out, _rejected = work.run([decode_item(Raw(payload, k + 1, k), work.decoder)])  # decoded: the full path
        results.append((out[0] if out else None, _delta(before, _counts(work.tally))))
    return results, set(work.checker.clean)


def _delta(before: tuple[Any, ...], after: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        a - b if isinstance(a, int) else {k: v - b.get(k, 0) for k, v in a.items() if v != b.get(k, 0)}
        for a, b in zip(after, before, strict=True)
    )


def check_fast_path(payloads: list[bytes], root: Path, **options: Any) -> int:
    """Asserts the property over ``payloads``; returns how many records the fast path took."""
    results, clean = full_results(payloads, root, **options)
    work = _work(root, **options)
    work.checker.clean.update(clean)
    fast = fast_converter("swift", "internvl", work.decoder.ctx, work.wctx, work.checker)
    assert fast is not None
    taken = 0
    for k, (payload, (expected, counts)) in enumerate(zip(payloads, results, strict=True)):
        before = _counts(work.tally)
        got = fast(payload)
        delta = _delta(before, _counts(work.tally))
        if got is None:
            assert delta == _delta(before, before), f"record {k}: declined but changed counters"
            continue
        taken += 1
        assert expected is not None, f"record {k}: the full path rejects it, the fast path wrote {got!r}"
        assert got == expected, f"record {k}:\n fast {got!r}\n full {expected!r}"
        assert delta == counts, f"record {k}: counters {delta} != {counts}"
    return taken


def lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fast-media")
    for name, size in fc.IMAGES.items():
        make_image(root / name, size)
    make_image(root / "sub" / "d.png", (100, 50))
    (root / "empty.png").write_bytes(b"")
    return root


def test_sample_data() -> None:
    payloads = lines(SAMPLE_DATA / "swift" / "train.jsonl")
    assert check_fast_path(payloads, SAMPLE_DATA / "images") >= 3
    assert check_fast_path(payloads, SAMPLE_DATA / "images", sizes=False) >= 3


def test_bench_rows(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(SAMPLE_DATA.parent / "bench"))
    try:
        from generate import generate
    finally:
        sys.path.pop(0)
    src, _ = generate(str(tmp_path), rows=400, seed=1, n_images=5)
    payloads = lines(Path(src))
    assert check_fast_path(payloads, tmp_path) >= 390


def test_realdata() -> None:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is not present in this checkout")
    taken = 0
    for path in sorted(REALDATA.rglob("*.jsonl")):
        taken += check_fast_path(lines(path), path.parent)
    assert taken >= 0  # real files are mostly other formats or use URLs: the property is what counts


def test_seeds_and_simple_declines(media: Path) -> None:
    seeds = [json.dumps(r).encode() for r in fc._swift()]
    extra = [
        b'{"messages": [{"role": "user", "content": "<image>hi"}], "images": ["a.png"], "zz": 1}',
        b'{"messages": [{"role": "user", "content": "<image><image>"}], "images": ["a.png"]}',
        b'{"messages": [{"role": "user", "content": "hi"}], "images": ["a.png"]}',
        b'{"messages": [{"role": "assistant", "content": "<image>"}], "images": ["a.png"]}',
        b'{"messages": [{"role": "user", "content": "<image>", "loss": 1}], "images": ["a.png"]}',
        b'{"messages": [{"role": "user", "content": "<image><ref-object><bbox>"}], "images": ["a.png"],'
        b' "objects": {"ref": ["<b>"], "bbox": [[1, 2, 3, 4]]}}',
        b'{"messages": [{"role": "user", "content": "<image><bbox>"}], "images": ["missing.png"],'
        b' "objects": {"ref": [], "bbox": [[1, 2, 3, 4]]}}',
        b'{"messages": [{"role": "user", "content": "<image><bbox>"}], "images": ["a.png"],'
        b' "objects": {"ref": [], "bbox": [[300, 2, 3, 4]]}}',
        b'{"messages": [{"role": "user", "content": "<image>x"}], "images": ["../a.png"]}',
        b'{"messages": [{"role": "user", "content": "<image>x"}], "images": ["a.png"], "id": 1.5}',
        b'{"messages": [{"role": "user", "content": "<image>\\ud800"}], "images": ["a.png"]}',
        b'{"messages": [], "images": ["a.png"]}',
        b"[1, 2]",
        b"{",
    ]
    check_fast_path(seeds + extra, media)


WORDS = st.text(alphabet="ab \n\t.", max_size=6)
NEAR_MISS_TEXT = st.sampled_from(
    ["<video>", "<ref>", "</box>", "<img>a.png</img>", "<b>", "<", ">", "<|box_start|>", "<image", "<IMG_CONTEXT>"]
)
GROUNDING_TEXT = st.lists(
    st.one_of(WORDS, st.sampled_from(["<ref-object>", "<bbox>", "<bbox><bbox>", "<ref-object><bbox>", "\n"])),
    max_size=5,
).map("".join)
EXTRA_VALUES = st.one_of(
    st.sampled_from([1, 1.5, 0.1, -0.0, 2**63, "x", "", " ", "<b>", "<image>", None, True, [1, "a"], {"a": "<ref>"}]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
COORD = st.one_of(st.integers(-20, 420), st.floats(-20, 420, allow_nan=False))
BAD_COORD = st.sampled_from([True, 1e300, 2**70, "1", None, 1e10])


@st.composite
def boxes(draw: st.DrawFn) -> list[Any]:
    out = []
    for _ in range(draw(st.integers(0, 5))):
        x1, y1 = draw(COORD), draw(COORD)
        if draw(st.integers(0, 4)):
            box: list[Any] = [x1, y1, x1 + draw(st.integers(1, 200)), y1 + draw(st.floats(0.5, 200))]
        else:
            box = [x1, y1, draw(COORD), draw(COORD)]  # reversed, empty or clamped ones too
        if draw(st.integers(0, 14)) == 0:
            box = draw(st.sampled_from([box[:2], [*box, 1], [box[0], draw(BAD_COORD), *box[2:]], "x"]))
        out.append(box)
    return out


@st.composite
def records(draw: st.DrawFn) -> Any:
    """ms-swift rows, mostly of the fast path's shapes, each with a few near misses drawn in."""
    miss = lambda: draw(st.integers(0, 24)) == 0  # noqa: E731 - one near miss in ~25 choices
    n = draw(st.integers(1, 4))
    messages = []
    n_tags = 0
    for k in range(n):
        role = "user" if k % 2 == 0 else "assistant"
        if k == 0 and draw(st.integers(0, 5)) == 0:
            role = "system"
        if miss():
            role = draw(st.sampled_from(["human", "gpt", "bot", "tool", "function_call", "USER", "system"]))
        text = draw(GROUNDING_TEXT)
        if role == "user" and draw(st.booleans()):
            tags = draw(st.integers(1, 2))
            n_tags += tags
            text = draw(st.sampled_from(["<image>", "<image>\n"])) * tags + text
        if miss():
            text += draw(NEAR_MISS_TEXT) + draw(st.sampled_from(["", "\n", "x"]))
        if miss():
            text = "<image>" + text
        message: dict[str, Any] = {"role": role, "content": text}
        if draw(st.integers(0, 5)) == 0:
            message[draw(st.sampled_from(["loss", "weight", "name"]))] = draw(EXTRA_VALUES)
        if miss():
            message[draw(st.sampled_from(["loss", "from", "value", "name"]))] = draw(fc.hostile_values())
        messages.append(message)
    row: dict[str, Any] = {"messages": messages}
    names = ["a.png", "b.jpg", "c.png", "sub/d.png"]
    if miss():
        names += ["missing.png", "empty.png", "../x.png", "sub/", "", "http://x/y.png"]
    if n_tags or draw(st.booleans()):
        row["images"] = [draw(st.sampled_from(names)) for _ in range(n_tags + (1 if miss() else 0))]
    if draw(st.booleans()):
        refs = st.lists(st.text(alphabet="ab \n<>" if miss() else "ab \n", max_size=4), max_size=4)
        objects: dict[str, Any] = {"ref": draw(refs), "bbox": draw(boxes())}
        if miss():
            objects["bbox_type"] = draw(st.sampled_from(["real", "norm1", "norm_1000", None, ""]))
        if miss():
            objects["image_id"] = draw(st.lists(st.integers(0, 2), max_size=3))
        if miss():
            del objects[draw(st.sampled_from(["ref", "bbox"]))]
        if miss():
            objects["ref"] = draw(fc.hostile_values())
        row["objects"] = draw(fc.hostile_values()) if miss() else objects
    if draw(st.booleans()):
        row["id"] = draw(st.one_of(st.integers(), st.text(alphabet="ab <>\n", max_size=4), st.floats(), st.none()))
    if draw(st.integers(0, 3)) == 0:  # unknown keys: carried, or dropped when InternVL owns the name
        keys = ["source", "meta", "width", "conversations", "height_list", "system", "tools"]
        row[draw(st.sampled_from(keys))] = draw(EXTRA_VALUES)
    if miss():
        row[draw(st.sampled_from(fc.NAMED_KEYS))] = draw(fc.hostile_values())
    return row


FAST_SETTINGS = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@FAST_SETTINGS
@given(rows=st.lists(records(), min_size=1, max_size=12))
def test_generated_records(media: Path, rows: list[Any]) -> None:
    payloads = [fc.dump_value(r).encode("utf-8", "surrogatepass") for r in rows]
    check_fast_path(payloads, media)
    check_fast_path(payloads, media, sizes=False)


@FAST_SETTINGS
@given(data=st.data())
def test_mutated_seeds(media: Path, data: st.DataObject) -> None:
    seeds = fc._swift()
    rows = [data.draw(fc.mutated(seeds[data.draw(st.integers(0, len(seeds) - 1))])) for _ in range(6)]
    payloads = [fc.dump_value(r).encode("utf-8", "surrogatepass") for r in rows]
    check_fast_path(payloads + [json.dumps(s).encode() for s in seeds], media)


def test_generated_records_reach_the_fast_path(media: Path) -> None:
    """The generator is not all near misses: a fixed batch of it is mostly taken."""
    rows = [
        {
            "id": k,
            "messages": [
                {"role": "user", "content": f"<image>find <ref-object> {k}"},
                {"role": "assistant", "content": "<bbox><bbox> there" if k % 2 else "<bbox>"},
            ],
            "images": ["a.png" if k % 3 else "b.jpg"],
            "objects": {"ref": [f"thing {k}"], "bbox": [[k, 2, 300.5, 200], [0, 0, 9, 9.5]]},
        }
        for k in range(1, 40)
    ]
    payloads = [json.dumps(r).encode() for r in rows]
    assert check_fast_path(payloads, media) == len(rows)


def test_no_fast_path_for_other_pairs_and_options(media: Path) -> None:
    work = _work(media)
    args = (work.decoder.ctx, work.wctx, work.checker)
    assert fast_converter("internvl", "swift", *args) is None
    assert fast_converter("swift", "llava", *args) is None
    assert isinstance(fast_converter("swift", "internvl", *args).__self__, SwiftToInternVL)  # type: ignore[union-attr]
    for options in ({"native_grounding": "qwen"}, {"fix_boxes": "swap"}, {"internvl_video": "images"}):
        other = _work(media, **options)
        assert fast_converter("swift", "internvl", other.decoder.ctx, other.wctx, other.checker) is None


@FAST_SETTINGS
@given(
    coords=st.lists(
        st.tuples(st.integers(-5, 1005), st.integers(-5, 1005), st.one_of(st.none(), st.integers(-5, 1005))),
        min_size=1,
        max_size=4,
    ),
    frame=st.sampled_from([Frame.NORM1000, Frame.NORM1, Frame.PIXEL]),
)
def test_plain_boxes_says_true_only_where_the_box_rules_find_nothing(coords: list[Any], frame: Frame) -> None:
    """The write-time check's shortcut for bounded-frame boxes agrees with the box rules it skips."""
    boxes = [Box(a, b, None, None, frame) if c is None else Box(a, b, c, c + 1, frame) for a, b, c in coords]
    sample = Sample([Message("user", [ImageSlot(0)]), Message("assistant", [Boxes(tuple(boxes))])], [MediaRef("a.png")])
    record = {"image": "a.png", "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "x"}]}
    checker = RecordChecker("internvl", "t", "/", Options())
    assert checker.quick_boxes
    if plain_boxes(record, sample, boxes):
        assert checker._boxes_only(record, Raw(record, 1, 0), sample, boxes)  # raises on a finding
    else:
        with contextlib.suppress(RecordError):
            checker._boxes_only(record, Raw(record, 1, 0), sample, boxes)
