"""Grounding syntaxes: exact parses of the documented examples and round-trip properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vlmdata.convert.grounding import Counters, parse_text, render_parts
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, Points, Ref, Text


def parse(text: str, *syntaxes: str):
    return parse_text(text, syntaxes, Counters())


def test_internvl_several_boxes_in_one_box_tag():
    # docs/formats.md#internvl-grounding: several boxes of one referent share one <box>
    parts = parse("<ref>bomb</ref><box>[[473, 61, 552, 181], [569, 61, 648, 183]]</box>", "internvl")
    assert parts[0] == Ref("bomb")
    assert isinstance(parts[1], Boxes)
    assert [b.coords() for b in parts[1].boxes] == [(473, 61, 552, 181), (569, 61, 648, 183)]
    assert all(b.frame is Frame.NORM1000 for b in parts[1].boxes)


def test_internvl_legacy_spaces_inside_box_tag():
    # legacy ms-swift wrote <box> [[..]] </box> (docs/formats.md#swift-legacy-objects)
    parts = parse("<box> [[200, 200, 600, 600]] </box>", "internvl")
    assert render_parts(parts, "internvl") == "<box>[[200, 200, 600, 600]]</box>"


def test_qwen_tokens_and_point():
    text = (
        "<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(221,423),(569,886)<|box_end|> and "
        "click <|box_start|>(246,113)<|box_end|>"
    )
    parts = parse(text, "qwen")
    assert parts[0] == Ref("a dog")
    assert parts[1].boxes[0].coords() == (221, 423, 569, 886)
    assert isinstance(parts[3], Points) and parts[3].points[0].coords() == (246, 113)
    assert render_parts(parts, "qwen") == text


def test_qwen_consecutive_boxes_are_one_referent():
    parts = parse("<|box_start|>(101,201),(150,266)<|box_end|><|box_start|>(401,601),(550,666)<|box_end|>", "qwen")
    assert len(parts) == 1 and len(parts[0].boxes) == 2


def test_llava_floats_python_style():
    parts = parse("<image>\nregion: [0.21, 0.92, 0.36, 1.0].", "llava")
    assert isinstance(parts[0], ImageSlot)
    box = parts[2].boxes[0]
    assert box.coords() == (0.21, 0.92, 0.36, 1.0) and box.frame is Frame.NORM1
    assert render_parts(parts, "llava") == "<image>\nregion: [0.21, 0.92, 0.36, 1.0]."


def test_llava_pattern_ignores_non_box_lists():
    assert parse("the list [1, 2, 3, 4] and [0.5, 2.0, 0.1, 0.3]", "llava") == [
        Text("the list [1, 2, 3, 4] and [0.5, 2.0, 0.1, 0.3]")
    ]


def test_media_tags_numbered_in_order_across_messages():
    counters = Counters()
    first = parse_text("<image><image>x", (), counters)
    second = parse_text("<video> and <image>", (), counters)
    assert [p.index for p in first if isinstance(p, ImageSlot)] == [0, 1]
    assert [p.index for p in second if isinstance(p, ImageSlot)] == [2]
    assert counters.video == 1


def test_plain_text_fast_path_is_one_part():
    assert parse("no markup at all", "internvl", "qwen") == [Text("no markup at all")]
    assert parse("", "internvl") == []


# --- round trips: parse(render(parts)) == parts for every syntax -------------------------------

ints = st.integers(min_value=0, max_value=1000)
words = st.text(alphabet="abcdefgh xyz", min_size=1, max_size=12).filter(lambda s: s.strip() == s and s)


@st.composite
def norm1000_boxes(draw):
    return tuple(Box(*draw(st.tuples(ints, ints, ints, ints)), Frame.NORM1000) for _ in range(draw(st.integers(1, 3))))


@st.composite
def grounded(draw, box_strategy):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        parts.append(Text(draw(words)))
        parts.append(Ref(draw(words)))
        parts.append(Boxes(draw(box_strategy)))
    return parts


@given(grounded(norm1000_boxes()))
def test_internvl_round_trip(parts):
    assert parse(render_parts(parts, "internvl"), "internvl") == parts


@given(grounded(norm1000_boxes()))
def test_qwen_round_trip(parts):
    assert parse(render_parts(parts, "qwen"), "qwen") == parts


@given(st.lists(st.tuples(ints, ints), min_size=1, max_size=3))
def test_qwen_points_round_trip(points):
    part = Points(tuple(Box(x, y, None, None, Frame.NORM1000) for x, y in points))
    assert parse(render_parts([part], "qwen"), "qwen") == [part]


two_dp = st.integers(0, 100).map(lambda v: v / 100)


@given(st.lists(st.tuples(words, st.tuples(two_dp, two_dp, two_dp, two_dp)), min_size=1, max_size=3))
def test_llava_round_trip(items):
    parts = []
    for text, coords in items:
        parts.append(Text(text + " "))
        parts.append(Boxes((Box(*coords, Frame.NORM1),)))
    assert parse(render_parts(parts, "llava"), "llava") == parts


# --- ms-swift objects: encode to {messages, objects} and decode back -------------------------

pixel = st.integers(0, 4000)


@st.composite
def pixel_boxes(draw):
    return tuple(Box(*draw(st.tuples(pixel, pixel, pixel, pixel)), Frame.PIXEL) for _ in range(draw(st.integers(1, 3))))


def _swift_round_trip(codec_name: str, parts):
    from vlmdata.convert.codec import Options, ReadContext, Tally, WriteContext
    from vlmdata.convert.registry import get_codec
    from vlmdata.media.paths import PathResolver
    from vlmdata.schemas.sample import MediaRef, Message, Sample

    codec = get_codec(codec_name)
    resolver = PathResolver("/data", explicit_root=False)
    sample = Sample(
        [Message("user", [ImageSlot(0), Text("find")]), Message("assistant", list(parts))],
        [MediaRef("/data/a.png", "/data/a.png")],
    )
    record = codec.encode(sample, WriteContext(resolver, Options(), Tally()))
    back = codec.decode(codec.load(record), ReadContext(resolver, Options(), Tally()))
    return back.messages[1].parts


@given(grounded(pixel_boxes()))
def test_swift_objects_round_trip(parts):
    assert _swift_round_trip("swift", parts) == parts


@given(grounded(pixel_boxes()))
def test_swift_legacy_objects_round_trip(parts):
    assert _swift_round_trip("swift-legacy", parts) == parts
