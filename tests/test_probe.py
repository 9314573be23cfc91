"""Header-only image sizes: the fast reader agrees with Pillow, and falls back to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from vlmdata.media.probe import SizeCache, header_size, probe_size


@pytest.mark.parametrize(
    ("fmt", "kwargs"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("JPEG", {"exif": Image.Exif()}),
        ("GIF", {}),
    ],
)
def test_header_reader_agrees_with_pillow(tmp_path: Path, fmt: str, kwargs: dict):
    path = tmp_path / f"a.{fmt.lower()}"
    img = Image.new("RGB", (123, 45), (10, 200, 30))
    if "exif" in kwargs:
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: the stored frame is still 123x45 (docs/consumers.md#exif-orientation)
        kwargs = {"exif": exif}
    img.save(path, format=fmt, **kwargs)
    with Image.open(path) as im:
        assert header_size(str(path)) == im.size == (123, 45)
    assert probe_size(str(path), "a") == (123, 45)


def test_other_formats_fall_back_to_pillow(tmp_path: Path):
    path = tmp_path / "a.bmp"
    Image.new("RGB", (7, 9)).save(path)
    assert header_size(str(path)) is None
    assert probe_size(str(path), "a.bmp") == (7, 9)


def test_broken_and_missing_files_are_record_errors(tmp_path: Path):
    from vlmdata.errors import RecordError

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(RecordError, match="cannot be read"):
        probe_size(str(bad), "bad.jpg")
    with pytest.raises(RecordError, match="not found"):
        SizeCache().size(str(tmp_path / "nope.png"), "nope.png")
