"""Look at samples: boxes and refs drawn on their images, as a PNG or a self-contained HTML gallery.

Boxes are drawn **after** their conversion to pixels of the original image (``convert_box`` to
``Frame.PIXEL``, the same arithmetic the converters use), so a box in the wrong frame is visible at
a glance: a 0-1000 box read as pixels lands in the top-left corner, a pixel box read as 0-1000
spreads past the image. Each referent (``Ref``) gets its own colour and a text label; boxes with no
ref are labelled ``box``; points are drawn as small crossed circles.

The outline is drawn just *outside* the box (a box ``[x1, y1, x2, y2]`` with exclusive ``x2``,
``y2`` covers pixels ``x1..x2-1``; the outline takes the ``width`` pixels around them), so every
pixel inside the box stays as it is in the image.

* ``save_png``: one PNG per sample; a sample with several images has them **side by side** in one
  file, left to right in sample order, top-aligned, ``GAP`` white pixels apart, each at its
  original size (so pixel coordinates of the first image are unchanged in the PNG).
* ``gallery_html``: one HTML page, no external resource and no script: each sample's images as
  inline base64 thumbnails (PNG, JPEG for JPEG sources) with the boxes drawn, next to its
  conversation (all text escaped with ``html.escape``), with file:line and id. A sample whose image
  is missing or unreadable shows a placeholder and the reason; an unreadable record shows the reason.
"""

from __future__ import annotations

import base64
import colorsys
import html
import io
import itertools
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from vlmdata.errors import RecordError, VlmdataError
from vlmdata.media.paths import is_remote
from vlmdata.outputs import atomic_write_bytes
from vlmdata.schemas.sample import (
    AudioSlot,
    Box,
    Boxes,
    Frame,
    ImageSlot,
    Points,
    Ref,
    Sample,
    Text,
    VideoSlot,
    part_boxes,
)
from vlmdata.tools.stats import Item, box_groups, image_path, iter_items, to_pixels

GAP = 8
THUMB = 360  # longest side of a gallery image
PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 200, 255),
    (255, 0, 200),
    (0, 220, 0),
    (255, 150, 0),
    (150, 60, 255),
    (255, 230, 0),
    (0, 255, 190),
    (255, 70, 70),
    (70, 110, 255),
    (160, 255, 0),
)
NO_REF = "box"


def colour(k: int) -> tuple[int, int, int]:
    """The k-th ref colour: the palette, then evenly spread hues."""
    if k < len(PALETTE):
        return PALETTE[k]
    r, g, b = colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.9, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


FRAME_WORDS = {
    Frame.PIXEL: "pixels",
    Frame.NORM1000: "0-1000",
    Frame.NORM999: "0-999 (legacy ms-swift)",
    Frame.NORM1: "0-1",
    Frame.NORM1_SQUARE: "0-1 of the padded square",
}


@dataclass
class Shape:
    """One box or point to draw, in pixels of the original image."""

    label: str
    colour: tuple[int, int, int]
    box: Box  # Frame.PIXEL
    source: Box  # as written


@dataclass
class Annotated:
    """One image of a sample with what to draw on it, or why it cannot be shown."""

    path: str
    image: Image.Image | None
    shapes: list[Shape] = field(default_factory=list)
    problem: str | None = None
    format: str | None = None


@dataclass
class Plan:
    images: list[Annotated]
    legend: dict[str, tuple[int, int, int]]
    notes: list[str]


def load_image(path: str) -> tuple[Image.Image | None, str | None, str | None]:
    """(RGB image, format, None) or (None, None, reason)."""
    if is_remote(path):
        return None, None, f"{path}: remote image, not fetched"
    if not os.path.exists(path):
        return None, None, f"{path}: no such file"
    if os.path.isdir(path):
        return None, None, f"{path}: is a folder, not an image"
    try:
        with Image.open(path) as im:
            fmt = im.format
            im.load()
            rgb = im.convert("RGB")
    except Exception as exc:  # Pillow raises many types for bad files
        return None, None, f"{path}: cannot be opened ({type(exc).__name__}: {exc})"
    return rgb, fmt, None


def plan(sample: Sample) -> Plan:
    """Load the sample's images and place its boxes on them, in pixels."""
    images = []
    for i in range(len(sample.images)):
        path = image_path(sample, i)
        im, fmt, problem = load_image(path)
        images.append(Annotated(sample.images[i].path, im, problem=problem, format=fmt))
    legend: dict[str, tuple[int, int, int]] = {}
    notes: list[str] = []
    for _, ref, group in box_groups(sample):
        label = ref if ref is not None else NO_REF
        if label not in legend:
            legend[label] = colour(len(legend))
        if not 0 <= group.image_index < len(images):
            notes.append(f"boxes of {label!r} are on image {group.image_index + 1}, the sample has {len(images)}")
            continue
        target = images[group.image_index]
        items = part_boxes(group)
        for box in items:
            if target.image is None:
                continue
            try:
                px = to_pixels(box, target.image.size)
            except RecordError as exc:
                notes.append(f"{label!r}: {exc}")
                continue
            target.shapes.append(Shape(label, legend[label], px, box))
            if _outside(px, target.image.size):
                notes.append(
                    f"{label!r} {_coords(box)} ({box.frame.value}) is {_coords(px)} in pixels, "
                    f"outside the {target.image.size[0]}x{target.image.size[1]} image"
                )
    if sample.videos:
        notes.append(f"{len(sample.videos)} video(s) not shown")
    return Plan(images, legend, notes)


def _outside(px: Box, size: tuple[int, int]) -> bool:
    w, h = size
    if px.is_point:
        return not (0 <= px.x1 <= w and 0 <= px.y1 <= h)
    return px.x1 < 0 or px.y1 < 0 or px.x2 > w or px.y2 > h or px.x2 <= px.x1 or px.y2 <= px.y1  # type: ignore[operator]


def _coords(box: Box) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box.coords()) + "]"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw(target: Annotated, scale: float = 1.0) -> Image.Image:
    """The image (resized by ``scale``) with its shapes drawn just outside each box, and labels."""
    assert target.image is not None
    im = target.image
    if scale != 1.0:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    else:
        im = im.copy()
    d = ImageDraw.Draw(im)
    width = max(2, round(min(im.size) / 160))
    font = _font(max(11, min(im.size) // 22))
    labelled: set[tuple[str, int, int]] = set()
    for shape in target.shapes:
        b = shape.box
        if b.is_point:
            x, y = b.x1 * scale, b.y1 * scale
            r = width * 3
            d.ellipse((x - r, y - r, x + r, y + r), outline=shape.colour, width=width)
            d.line((x - r, y, x + r, y), fill=shape.colour, width=1)
            d.line((x, y - r, x, y + r), fill=shape.colour, width=1)
            lx, ly = x + r + 2, y - r
        else:
            # a reversed box (x2 < x1, which validate reports as VD201) is drawn over the same pixels
            x1, x2 = sorted((round(b.x1 * scale), round(b.x2 * scale)))  # type: ignore[operator]
            y1, y2 = sorted((round(b.y1 * scale), round(b.y2 * scale)))  # type: ignore[operator]
            # pixels x1..x2-1 are the box; the outline takes the `width` pixels around them
            d.rectangle((x1 - width, y1 - width, x2 - 1 + width, y2 - 1 + width), outline=shape.colour, width=width)
            lx, ly = x1 - width, y1 - width
        key = (shape.label, round(lx), round(ly))
        if key in labelled:
            continue
        labelled.add(key)
        _label(d, im.size, shape.label, shape.colour, font, lx, ly)
    if target.shapes:  # name the frame the boxes were read in, so a wrong one is visible
        caption = "boxes read as " + ", ".join(sorted({frame_name(s.source) for s in target.shapes}))
        _label(d, im.size, caption, (40, 40, 40), font, 2, im.height)
    return im


def frame_name(box: Box) -> str:
    """The frame of a box as written, in words (Qwen2.5-VL's names the resized size)."""
    if box.frame is Frame.PIXEL_RESIZED and box.resized:
        return f"pixels of the {box.resized[0]}x{box.resized[1]} resized image (Qwen2.5-VL)"
    return FRAME_WORDS.get(box.frame, box.frame.value)


def _label(d: ImageDraw.ImageDraw, size: tuple[int, int], text: str, fill: tuple[int, int, int], font, x, y) -> None:
    """The label on a filled tag above (x, y), or below it when there is no room above."""
    left, top, right, bottom = d.textbbox((0, 0), text, font=font)
    tw, th = right - left + 4, bottom - top + 4
    tx = min(max(0, x), max(0, size[0] - tw))
    ty = y - th if y - th >= 0 else y
    ty = min(max(0, ty), max(0, size[1] - th))
    d.rectangle((tx, ty, tx + tw - 1, ty + th - 1), fill=fill)
    ink = (0, 0, 0) if sum(fill) > 380 else (255, 255, 255)
    d.text((tx + 2 - left, ty + 2 - top), text, fill=ink, font=font)


def placeholder(reason: str, size: tuple[int, int] = (320, 200)) -> Image.Image:
    im = Image.new("RGB", size, (235, 235, 235))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=(200, 0, 0), width=3)
    d.line((0, 0, size[0] - 1, size[1] - 1), fill=(200, 0, 0), width=2)
    d.line((0, size[1] - 1, size[0] - 1, 0), fill=(200, 0, 0), width=2)
    d.text((10, 10), "image not available", fill=(120, 0, 0), font=_font(14))
    return im


# --------------------------------------------------------------------------- PNG


def side_by_side(images: list[Image.Image]) -> Image.Image:
    if len(images) == 1:
        return images[0]
    w = sum(im.width for im in images) + GAP * (len(images) - 1)
    h = max(im.height for im in images)
    out = Image.new("RGB", (w, h), (255, 255, 255))
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + GAP
    return out


def render_png(sample: Sample) -> tuple[Image.Image, Plan]:
    """The sample's images with boxes, side by side; a missing image is an error (VlmdataError)."""
    where = sample.origin.where() if sample.origin else "sample"
    if not sample.images:
        raise VlmdataError(f"{where}: the sample has no images to draw on")
    p = plan(sample)
    for a in p.images:
        if a.image is None:
            raise VlmdataError(f"{where}: image {a.path!r} cannot be shown: {a.problem}")
    return side_by_side([draw(a) for a in p.images]), p


def save_png(sample: Sample, out: str) -> Plan:
    im, p = render_png(sample)
    _parent(out)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return p


def _parent(out: str) -> None:
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise VlmdataError(f"{out}: folder {parent} does not exist")


# --------------------------------------------------------------------------- picking samples


def pick_index(
    paths: Iterable[str],
    index: int,
    root: str | None = None,
    fmt: str | None = None,
    frames: dict[str, Any] | None = None,
) -> Item:
    """Record ``index`` (0-based, over all files in order, unreadable records included)."""
    if index < 0:
        raise VlmdataError(f"--index must be 0 or more, not {index}")
    n = 0
    for item in iter_items(paths, root, fmt, frames):
        if n == index:
            if item.sample is None:
                raise VlmdataError(f"{item.where()}: record {index} cannot be read: {item.error}")
            return item
        n += 1
    names = ", ".join(paths) if not isinstance(paths, str) else paths
    raise VlmdataError(f"index {index} is out of range: {names} has {n} record(s) (0..{max(n - 1, 0)})")


def pick_sample(
    paths: Iterable[str],
    n: int,
    seed: int | None = 0,
    root: str | None = None,
    fmt: str | None = None,
    frames: dict[str, Any] | None = None,
) -> list[tuple[int, Item]]:
    """``n`` records chosen uniformly at random (reservoir sampling, seeded), in file order."""
    rng = random.Random(seed)
    chosen: list[tuple[int, Item]] = []
    for k, item in enumerate(iter_items(paths, root, fmt, frames)):
        if k < n:
            chosen.append((k, item))
        else:
            j = rng.randint(0, k)
            if j < n:
                chosen[j] = (k, item)
    return sorted(chosen, key=lambda x: x[0])


def pick_first(
    paths: Iterable[str], n: int, root: str | None = None, fmt: str | None = None, frames: dict[str, Any] | None = None
) -> list[tuple[int, Item]]:
    return list(itertools.islice(enumerate(iter_items(paths, root, fmt, frames)), n))


# --------------------------------------------------------------------------- HTML


CSS = """
body{font-family:system-ui,sans-serif;margin:16px;background:#fafafa;color:#222}
h1{font-size:20px}
.sample{display:flex;gap:16px;align-items:flex-start;background:#fff;border:1px solid #ddd;
 border-radius:6px;padding:12px;margin:12px 0}
.media{flex:0 0 auto;max-width:60%}
.media figure{display:inline-block;margin:0 8px 8px 0;vertical-align:top}
.media img{max-width:100%;border:1px solid #ccc}
figcaption{font-size:12px;color:#555;word-break:break-all}
.text{flex:1 1 auto;min-width:0}
.where{font-size:13px;color:#555;margin:0 0 8px 0;word-break:break-all}
.msg{margin:6px 0;padding:6px 8px;border-radius:4px;background:#f1f3f5}
.msg.user{background:#e8f0fe}.msg.assistant{background:#e9f7ef}.msg.system{background:#fff4e0}
.role{font-weight:bold;font-size:12px;text-transform:uppercase;color:#444}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0 0 0;font-family:ui-monospace,monospace;font-size:13px}
.ref{font-weight:bold;padding:0 2px;border-radius:2px}
.box{color:#666;font-size:12px}
.problem{color:#b00020}
.legend span{display:inline-block;margin-right:8px;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;margin-right:3px;border:1px solid #333}
"""


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _data_uri(im: Image.Image, fmt: str | None) -> str:
    buf = io.BytesIO()
    if fmt == "JPEG":
        im.save(buf, format="JPEG", quality=85)
        mime = "image/jpeg"
    else:
        im.save(buf, format="PNG", optimize=True)
        mime = "image/png"
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _rgb(c: tuple[int, int, int]) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def _message_html(sample: Sample, legend: dict[str, tuple[int, int, int]]) -> str:
    out = []
    for msg in sample.messages:
        pieces = []
        for part in msg.parts:
            if isinstance(part, Text):
                pieces.append(_esc(part.text))
            elif isinstance(part, Ref):
                c = legend.get(part.text)
                style = f' style="border-bottom:3px solid {_rgb(c)}"' if c else ""
                pieces.append(f'<span class="ref"{style}>{_esc(part.text)}</span>')
            elif isinstance(part, ImageSlot):
                pieces.append(_esc(f"<image {part.index + 1}>"))
            elif isinstance(part, VideoSlot):
                pieces.append(_esc(f"<video {part.index + 1}>"))
            elif isinstance(part, AudioSlot):
                pieces.append(_esc(f"<audio {part.index + 1}>"))
            elif isinstance(part, Boxes | Points):
                items = part_boxes(part)
                frame = items[0].frame.value if items else ""
                text = ", ".join(_coords(b) for b in items)
                pieces.append(f'<span class="box">{_esc(f"{text} ({frame}, image {part.image_index + 1})")}</span>')
        role = _esc(msg.role)
        out.append(f'<div class="msg {role}"><div class="role">{role}</div><pre>{"".join(pieces)}</pre></div>')
    return "\n".join(out)


def _sample_html(k: int, item: Item, thumb: int) -> str:
    head = f'<p class="where">#{k} &middot; {_esc(item.where())}</p>'
    if item.sample is None:
        return (
            f'<section class="sample" data-index="{k}"><div class="text">{head}'
            f'<p class="problem">record cannot be read: {_esc(item.error)}</p></div></section>'
        )
    sample = item.sample
    p = plan(sample)
    figures = []
    for i, a in enumerate(p.images):
        if a.image is None:
            im, fmt = placeholder(a.problem or ""), "PNG"
            caption = f'image {i + 1}: {_esc(a.path)}<br><span class="problem">{_esc(a.problem)}</span>'
        else:
            scale = min(1.0, thumb / max(a.image.size)) if max(a.image.size) > thumb else thumb / max(a.image.size)
            scale = min(scale, 3.0)
            im, fmt = draw(a, scale), a.format
            caption = f"image {i + 1}: {_esc(a.path)} ({a.image.width}x{a.image.height})"
        alt = _esc(f"image {i + 1} of sample {k}")
        figures.append(
            f'<figure><img src="{_data_uri(im, fmt)}" alt="{alt}"><figcaption>{caption}</figcaption></figure>'
        )
    if not p.images:
        figures.append('<p class="where">no images</p>')
    legend = "".join(
        f'<span><i class="sw" style="background:{_rgb(c)}"></i>{_esc(label)}</span>' for label, c in p.legend.items()
    )
    notes = "".join(f'<li class="problem">{_esc(n)}</li>' for n in p.notes)
    return (
        f'<section class="sample" data-index="{k}">'
        f'<div class="media">{"".join(figures)}<div class="legend">{legend}</div></div>'
        f'<div class="text">{head}{f"<ul>{notes}</ul>" if notes else ""}{_message_html(sample, p.legend)}</div>'
        "</section>"
    )


def gallery_html(items: list[tuple[int, Item]], title: str = "vlmdata show", thumb: int = THUMB) -> str:
    """A self-contained page: no external resource, no script."""
    body = "\n".join(_sample_html(k, item, thumb) for k, item in items)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>\n"
        f'<h1>{_esc(title)}</h1><p id="count" data-samples="{len(items)}">{len(items)} sample(s)</p>\n'
        f"{body}\n</body></html>\n"
    )


def save_gallery(items: list[tuple[int, Item]], out: str, title: str = "vlmdata show") -> None:
    _parent(out)
    atomic_write_bytes(out, gallery_html(items, title).encode("utf-8", "backslashreplace"))  # lone surrogates
