"""Deterministic synthetic photos and their edited copies, for measuring near-duplicate detection.

``base_image(seed)`` draws a scene of random gradients, shapes and noise (no two seeds alike);
``edit(im, kind, rng)`` makes one of the copies a dataset pipeline produces: ``resize`` (0.4-1.6x,
aspect kept), ``jpeg`` (re-encoded at quality 60-100), ``crop1-3`` (1-3% off each side), ``crop``
(2-6% off each side) or ``jitter`` (brightness, contrast and saturation +-20%). Used by the tests
and ``bench/dedup.py``.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

EDITS = ("resize", "jpeg", "crop1-3", "crop", "jitter")


def base_image(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = random.Random(seed)
    w, h = size
    top = tuple(rng.randrange(256) for _ in range(3))
    bottom = tuple(rng.randrange(256) for _ in range(3))
    gradient = Image.linear_gradient("L").resize((w, h))
    im = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), gradient)  # type: ignore[arg-type]
    d = ImageDraw.Draw(im)
    for _ in range(rng.randint(6, 14)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = x0 + rng.randint(20, w // 2), y0 + rng.randint(20, h // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice(("rect", "ellipse", "line"))
        if shape == "rect":
            d.rectangle((x0, y0, x1, y1), fill=colour)  # type: ignore[arg-type]
        elif shape == "ellipse":
            d.ellipse((x0, y0, x1, y1), fill=colour)  # type: ignore[arg-type]
        else:
            d.line((x0, y0, x1, y1), fill=colour, width=rng.randint(3, 12))  # type: ignore[arg-type]
    noise = Image.effect_noise((w, h), 24).convert("RGB")
    return Image.blend(im, noise, 0.12).filter(ImageFilter.SMOOTH)


def edit(im: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    w, h = im.size
    if kind == "resize":
        f = rng.uniform(0.4, 1.6)
        return im.resize((max(8, round(w * f)), max(8, round(h * f))), Image.Resampling.BICUBIC)
    if kind == "jpeg":
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=rng.randint(60, 100))
        buf.seek(0)
        return Image.open(buf).convert("RGB")
    if kind in ("crop", "crop1-3"):
        lo, hi = (0.02, 0.06) if kind == "crop" else (0.01, 0.03)
        cut = [rng.uniform(lo, hi) for _ in range(4)]
        return im.crop((round(w * cut[0]), round(h * cut[1]), round(w * (1 - cut[2])), round(h * (1 - cut[3]))))
    if kind == "jitter":
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            im = enhancer(im).enhance(rng.uniform(0.8, 1.2))
        return im
    raise ValueError(f"unknown edit {kind!r}; one of {EDITS}")
