"""Moving boxes between coordinate frames (docs/frames.md#frames-at-a-glance,
docs/frames.md#converting-by-hand-summary).

Rounding follows the sources: ``round(v / size * 1000)`` with Python's half-to-even ``round``
for 0-1000 (InternVL docs, ms-swift ``normalize_bbox``, Qwen's process_bbox notebook), ``int()``
truncation with x999 for legacy ms-swift (docs/frames.md#norm999), ``round(v * W' / W)`` for Qwen2.5-VL resized
pixels. Values outside the target frame's range are clamped, and the caller counts every clamp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from vlmdata.errors import RecordError
from vlmdata.schemas.sample import Box, Boxes, Frame, Points, Sample, map_boxes, whole

if TYPE_CHECKING:  # codec.py imports this module
    from vlmdata.convert.codec import WriteContext

Size = tuple[int, int]
SizeLookup = Callable[[], Size]

_SCALE_FREE = {Frame.NORM1: 1.0, Frame.NORM1000: 1000.0, Frame.NORM999: 999.0}


def _round_pixel(v: float) -> float:
    return whole(round(v, 2))


def _to_pixel(v: float, axis_size: int, other: int, frame: Frame, resized: int | None) -> float:
    """One coordinate of ``frame`` in pixels of the original image (``other`` = the other side)."""
    if frame is Frame.PIXEL:
        return v
    if frame is Frame.NORM1000:
        return v / 1000 * axis_size
    if frame is Frame.NORM999:
        return v / 999 * axis_size
    if frame is Frame.NORM1:
        return v * axis_size
    if frame is Frame.NORM1_SQUARE:
        side = max(axis_size, other)
        return v * side - (side - axis_size) / 2
    if frame is Frame.PIXEL_RESIZED:
        if not resized:
            raise RecordError("a Qwen2.5-VL box has no resized image size (W', H')")
        return v * axis_size / resized
    raise ValueError(frame)


def _from_pixel(v: float, axis_size: int, other: int, frame: Frame, resized: int | None) -> tuple[float, bool]:
    """One pixel coordinate expressed in ``frame``; also says whether it had to be clamped."""
    if frame is Frame.PIXEL:
        out, hi = _round_pixel(v), axis_size
    elif frame is Frame.NORM1000:
        out, hi = round(v / axis_size * 1000), 1000
    elif frame is Frame.NORM999:
        out, hi = int(v / axis_size * 999), 999
    elif frame is Frame.NORM1:
        out, hi = v / axis_size, 1
    elif frame is Frame.NORM1_SQUARE:
        side = max(axis_size, other)
        out, hi = (v + (side - axis_size) / 2) / side, 1
    elif frame is Frame.PIXEL_RESIZED:
        assert resized is not None
        out, hi = round(v * resized / axis_size), resized - 1
    else:
        raise ValueError(frame)
    return _clamp(out, hi)


def _clamp(v: float, hi: float) -> tuple[float, bool]:
    if v < 0:
        return (0 if isinstance(v, int) else 0.0), True
    if v > hi:
        return hi, True
    return v, False


def _scale_free(v: float, src: Frame, dst: Frame) -> tuple[float, bool]:
    """norm1 / norm1000 / norm999 need no image size between themselves."""
    frac = v / _SCALE_FREE[src]
    if dst is Frame.NORM1000:
        out: float = round(frac * 1000)
    elif dst is Frame.NORM999:
        out = int(frac * 999)
    else:
        out = frac
    return _clamp(out, _SCALE_FREE[dst])


def convert_box(box: Box, dst: Frame, size: SizeLookup, resized: Size | None = None) -> tuple[Box, int]:
    """``box`` in frame ``dst``; returns the box and how many coordinates were clamped.

    ``size`` is only called when the frames need the image size (it raises a RecordError that
    names the image when the size cannot be had).
    """
    src = box.frame
    if src is Frame.PIXEL and dst is Frame.NORM1000 and box.x2 is not None:
        return _pixel_to_norm1000(box, size())
    coords = box.coords()
    if src is dst and (dst is not Frame.PIXEL_RESIZED or box.resized == resized):
        if dst is Frame.PIXEL or dst is Frame.PIXEL_RESIZED or dst is Frame.NORM1_SQUARE:
            return box, 0
        pairs = [_clamp(v, _SCALE_FREE[dst]) for v in coords]
    elif src in _SCALE_FREE and dst in _SCALE_FREE:
        pairs = [_scale_free(v, src, dst) for v in coords]
    else:
        w, h = size()
        src_r = box.resized or (None, None)
        dst_r = resized or (None, None)
        if dst is Frame.PIXEL_RESIZED and resized is None:
            raise RecordError("converting to Qwen2.5-VL pixels needs the resized size (W', H')")
        pairs = []
        for i, v in enumerate(coords):
            horizontal = i % 2 == 0
            axis, other = (w, h) if horizontal else (h, w)
            px = _to_pixel(v, axis, other, src, src_r[0] if horizontal else src_r[1])
            pairs.append(_from_pixel(px, axis, other, dst, dst_r[0] if horizontal else dst_r[1]))
    values = [p[0] for p in pairs]
    clamped = sum(1 for p in pairs if p[1])
    if len(values) == 2:
        out = Box(values[0], values[1], None, None, dst, resized if dst is Frame.PIXEL_RESIZED else None)
    else:
        out = Box(*values, dst, resized if dst is Frame.PIXEL_RESIZED else None)
    return out, clamped


def _pixel_to_norm1000(box: Box, size: Size) -> tuple[Box, int]:
    """The common case of convert_box (pixel boxes to InternVL/Qwen 0-1000), without the
    per-coordinate frame dispatch; same arithmetic: round(v / size * 1000), clamped to [0, 1000]."""
    (x1, y1, x2, y2), clamped = pixel_corners_to_norm1000(box.x1, box.y1, box.x2, box.y2, size)  # type: ignore[arg-type]
    return Box(x1, y1, x2, y2, Frame.NORM1000), clamped


def pixel_corners_to_norm1000(
    x1: float, y1: float, x2: float, y2: float, size: Size
) -> tuple[tuple[int, int, int, int], int]:
    """A pixel box's corners on 0-1000 (``round(v / size * 1000)``, clamped), and how many were
    clamped: the one statement of this rule (convert_box and convert/fastpath.py use it)."""
    w, h = size
    a1 = round(x1 / w * 1000)
    b1 = round(y1 / h * 1000)
    a2 = round(x2 / w * 1000)
    b2 = round(y2 / h * 1000)
    if 0 <= a1 <= 1000 and 0 <= b1 <= 1000 and 0 <= a2 <= 1000 and 0 <= b2 <= 1000:
        return (a1, b1, a2, b2), 0
    values = [a1, b1, a2, b2]
    clamped = 0
    for i, v in enumerate(values):
        if v < 0:
            values[i] = 0
            clamped += 1
        elif v > 1000:
            values[i] = 1000
            clamped += 1
    return (values[0], values[1], values[2], values[3]), clamped


def part_in_frame(part: Boxes | Points, sample: Sample, ctx: WriteContext, frame: Frame) -> Boxes | Points:
    """A Boxes/Points part of ``sample`` moved into ``frame`` by the writer's context (sizes from
    the record or the image header, clamps counted, boxes noted for the write-time check)."""
    index = part.image_index
    return map_boxes(part, lambda b: ctx.box(sample, b, index, frame))
