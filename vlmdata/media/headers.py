"""JPEG, PNG and GIF headers read without Pillow: size, mode, EXIF orientation, where the image data
starts. The one header parser; ``media.probe`` (sizes for box conversion) and ``media.inspect``
(what validation needs) both use it.

Sizes are the raw stored frame, as Pillow reports them and as every loader sees them (none of them
applies EXIF orientation, docs/consumers.md#exif-orientation). Anything unusual gives None, and
the caller lets Pillow open the file: the parser never decides that a file is broken.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

# Pillow's defaults, as the trainers' processes have them (not this process's, which a caller may change):
# Image.open warns above BOMB_WARN_PIXELS and raises DecompressionBombError above BOMB_PIXELS.
BOMB_WARN_PIXELS = 1024 * 1024 * 1024 // 4 // 3  # 89,478,485 (Image.MAX_IMAGE_PIXELS)
BOMB_PIXELS = 2 * BOMB_WARN_PIXELS  # 178,956,970

HEAD = 4096  # first read; holds the whole header of nearly every JPEG/PNG
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
JPEG_SOI = b"\xff\xd8"
_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))
_PNG_MODES = {(0, 1): "1", (0, 16): "I;16", (2, 8): "RGB", (2, 16): "RGB", (4, 8): "LA", (6, 8): "RGBA"}
_PNG_MODES_BY_TYPE = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}


class Reader(Protocol):
    """An unbuffered binary file: ``read(n)`` from the current position, ``seek(pos)`` from the start."""

    def read(self, n: int, /) -> bytes: ...

    def seek(self, pos: int, /) -> object: ...


@dataclass(slots=True)
class Header:
    format: str  # Pillow's format name: "JPEG", "PNG", "GIF"
    width: int
    height: int
    mode: str | None = None  # Pillow's mode as opened (best effort)
    orientation: int | None = None  # EXIF tag 0x0112 as stored (1 = upright), None without one
    scan: int = 0  # file offset of the image data (JPEG: after the SOS header, PNG: the first IDAT); 0 unknown


def read_header(f: Reader, head: bytes, *, full: bool = True, gif: bool = False) -> Header | None:
    """The header of the file ``f`` whose first bytes are ``head`` (``f`` is positioned after them).

    ``full=False`` stops at the size (JPEG: the first SOFn, PNG: IHDR), for callers that want
    only that; ``full=True`` reads on to the image data for the mode, the EXIF orientation and
    ``scan``. GIF is parsed only with ``gif=True`` (its size alone; the mode and EXIF of a GIF are
    Pillow's to say). None for any other format and for anything unusual."""
    if head[:2] == JPEG_SOI:
        return jpeg_header(f, head, full=full)
    if head[:8] == PNG_SIGNATURE:
        return png_header(f, head, full=full)
    if gif and head[:6] in GIF_SIGNATURES and len(head) >= 10:
        w, h = struct.unpack("<HH", head[6:10])  # the logical screen, which Pillow reports as the size
        return Header("GIF", w, h)
    return None


def jpeg_header(f: Reader, data: bytes, *, full: bool = True) -> Header | None:
    """Walk the JPEG markers: size and components from the first SOFn; with ``full``, on to the
    first SOS, with the orientation from APP1 Exif."""
    pos, found, exif = 2, None, None
    n = len(data)
    while True:
        while pos + 4 > n:
            more = f.read(65536)
            if not more:
                return None
            data += more
            n = len(data)
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:  # end of image before any scan
            return None
        end = pos + 2 + ((data[pos + 2] << 8) | data[pos + 3])
        while end > n:
            more = f.read(max(65536, end - n))
            if not more:
                return None
            data += more
            n = len(data)
        if marker == 0xDA:  # start of scan
            if found is None:
                return None
            if exif is not None:
                found.orientation = exif_orientation(exif)
            found.scan = end
            return found
        if marker in _SOF and found is None:
            if end - pos < 10:
                return None
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            found = Header("JPEG", w, h, _JPEG_MODES.get(data[pos + 9]))
            if not full:
                return found
        elif marker == 0xE1 and exif is None and data[pos + 4 : pos + 10] == b"Exif\x00\x00":
            exif = data[pos + 10 : end]
        pos = end


def png_header(f: Reader, data: bytes, *, full: bool = True) -> Header | None:
    """IHDR; with ``full``, the chunks before the first IDAT too (an eXIf there is what Pillow reads
    lazily)."""
    if data[12:16] != b"IHDR" or len(data) < (33 if full else 24):
        return None
    if not full:
        w, h = struct.unpack(">II", data[16:24])
        return Header("PNG", w, h)
    w, h, depth, color = struct.unpack(">IIBB", data[16:26])
    found = Header("PNG", w, h, _PNG_MODES.get((color, depth)) or _PNG_MODES_BY_TYPE.get(color))
    base, pos = 0, 33  # data[0] is at file offset ``base``
    while True:
        if pos + 8 > len(data):
            f.seek(base + pos)
            data, base, pos = f.read(65536), base + pos, 0
            if len(data) < 8:
                return None
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind in (b"IDAT", b"IEND"):
            found.scan = base + pos
            return found
        end = pos + 12 + length
        if kind == b"eXIf":
            if end > len(data):
                f.seek(base + pos)
                data, base, pos, end = f.read(12 + length), base + pos, 0, 12 + length
                if len(data) < end:
                    return None
            found.orientation = exif_orientation(data[pos + 8 : end - 4])
        pos = end


def exif_orientation(block: bytes) -> int | None:
    """Tag 0x0112 of IFD0 in a TIFF-structured EXIF block (with or without the ``Exif\\0\\0``
    prefix); None when there is none or the block is malformed."""
    if block[:6] == b"Exif\x00\x00":
        block = block[6:]
    order = {b"II": "<", b"MM": ">"}.get(block[:2])
    if order is None or len(block) < 8:
        return None
    try:
        (ifd,) = struct.unpack(order + "I", block[4:8])
        (count,) = struct.unpack(order + "H", block[ifd : ifd + 2])
        for i in range(count):
            entry = block[ifd + 2 + 12 * i : ifd + 14 + 12 * i]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112:
                if kind == 3:  # SHORT
                    return struct.unpack(order + "H", entry[8:10])[0]
                if kind == 4:  # LONG
                    return struct.unpack(order + "I", entry[8:12])[0]
                return None
    except struct.error:
        return None
    return None
