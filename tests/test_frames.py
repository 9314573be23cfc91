"""Box frame conversions against the numbers in docs/frames.md and the upstream oracles."""

from __future__ import annotations

import pytest

from vlmdata.convert.frames import convert_box
from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Frame


def px(*v: float) -> Box:
    return Box(*v, Frame.PIXEL) if len(v) == 4 else Box(v[0], v[1], None, None, Frame.PIXEL)


def test_qwen_notebook_oracle_pixel_to_norm1000():
    # qwen-bbox-notebook case: [146,137,615,415] on 640x428 -> [228, 320, 961, 970]
    out, clamped = convert_box(px(146, 137, 615, 415), Frame.NORM1000, lambda: (640, 428))
    assert out.coords() == (228, 320, 961, 970)
    assert clamped == 0


def test_qwen25_resized_frame_oracle():
    # same notebook: smart_resize(428, 640) = (420, 644) -> [147, 134, 619, 407]
    out, _ = convert_box(px(146, 137, 615, 415), Frame.PIXEL_RESIZED, lambda: (640, 428), resized=(644, 420))
    assert out.coords() == (147, 134, 619, 407)
    assert out.resized == (644, 420)


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [  # ms-swift Custom-dataset.md objects rows vs their Qwen2-VL native rows (swift-docs-grounding case)
        ((331.5, 761.4, 853.5, 1594.8), (1500, 1800), (221, 423, 569, 886)),
        ((676.5, 685.8, 1099.5, 1427.4), (1500, 1800), (451, 381, 733, 793)),
        ((90.9, 160.8, 135, 212.8), (900, 800), (101, 201, 150, 266)),
        ((360.9, 480.8, 495, 532.8), (900, 800), (401, 601, 550, 666)),
        ((615, 226), (2500, 2000), (246, 113)),
    ],
)
def test_swift_docs_objects_equal_native(box, size, expected):
    out, _ = convert_box(px(*box), Frame.NORM1000, lambda: size)
    assert out.coords() == expected


def test_python_round_half_to_even():
    # 0.5 * 1000 / 1000 edge: 1.0005 * 1000 -> use exact halves: 5/8000*1000 = 0.625 -> not half
    # x/W*1000 == 2.5 -> round() gives 2 (banker's), half-up would give 3 (docs/frames.md#rounding)
    out, _ = convert_box(px(1, 3, 2, 7), Frame.NORM1000, lambda: (400, 400))
    assert out.coords() == (2, 8, 5, 18)  # 2.5 -> 2, 7.5 -> 8, 5.0, 17.5 -> 18


def test_legacy_x999_floor():
    # legacy ms-swift: int(coord / dim * 999) (docs/formats.md#swift-legacy-objects)
    out, _ = convert_box(px(138, 136, 235, 359), Frame.NORM999, lambda: (640, 480))
    assert out.coords() == (int(138 / 640 * 999), int(136 / 480 * 999), int(235 / 640 * 999), int(359 / 480 * 999))
    back, _ = convert_box(Box(999, 999, 999, 999, Frame.NORM999), Frame.NORM1000, lambda: (1, 1))
    assert back.coords() == (1000, 1000, 1000, 1000)


def test_scale_free_conversions_need_no_size():
    def no_size() -> tuple[int, int]:
        raise AssertionError("size must not be needed")

    out, _ = convert_box(Box(0.243, 0.469, 0.558, 0.746, Frame.NORM1), Frame.NORM1000, no_size)
    assert out.coords() == (243, 469, 558, 746)
    out, _ = convert_box(Box(243, 469, 558, 746, Frame.NORM1000), Frame.NORM1, no_size)
    assert out.coords() == pytest.approx((0.243, 0.469, 0.558, 0.746))


def test_clamping_is_counted():
    out, clamped = convert_box(px(-10, 5, 700, 500), Frame.NORM1000, lambda: (640, 480))
    assert out.coords() == (0, 10, 1000, 1000)
    assert clamped == 3


def test_padded_square_llava_frame():
    # 600x400 image padded to 600x600: pad_y = 100. Pixel y=100 -> (100+100)/600
    out, _ = convert_box(px(0, 100, 300, 400), Frame.NORM1_SQUARE, lambda: (600, 400))
    assert out.coords() == pytest.approx((0.0, 200 / 600, 0.5, 500 / 600))
    back, _ = convert_box(out, Frame.PIXEL, lambda: (600, 400))
    assert back.coords() == pytest.approx((0, 100, 300, 400))


def test_size_lookup_error_propagates():
    def missing() -> tuple[int, int]:
        raise RecordError("image 'a.jpg' not found")

    with pytest.raises(RecordError, match=r"a\.jpg"):
        convert_box(px(1, 2, 3, 4), Frame.NORM1000, missing)
