"""VD3 media rules (each fires on one record and not on another) and the header probe cache."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import make_image, write_jsonl
from vlmdata.media import inspect as inspect_mod
from vlmdata.media.cache import PROBE_VERSION, cache_location
from vlmdata.media.headers import exif_orientation
from vlmdata.media.inspect import MediaInspector, inspect_path
from vlmdata.validators import RULES, validate
from vlmdata.validators.registry import load_rules


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may touch the user's ~/.cache."""
    monkeypatch.setenv("VLMDATA_CACHE_DIR", str(tmp_path / "default-cache"))


def conv(n: int = 1) -> list[dict[str, str]]:
    return [{"from": "human", "value": "<image>\n" * n + "What is this?"}, {"from": "gpt", "value": "A test."}]


def row(image: Any = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"id": "r", "conversations": conv(len(image) if isinstance(image, list) else 1)}
    if image is not None:
        out["image"] = image
    out.update(extra)
    return out


def findings(tmp_path: Path, rows: list[dict], **kw: Any) -> list[Any]:
    data = write_jsonl(tmp_path / "data" / "train.jsonl", rows)
    kw.setdefault("root", str(tmp_path / "img"))
    kw.setdefault("cache_dir", str(tmp_path / "cache"))
    report = validate(str(data), from_format="internvl", select=["VD3"], **kw)
    return report.findings


def codes(tmp_path: Path, rows: list[dict], **kw: Any) -> list[str]:
    return [f.code for f in findings(tmp_path, rows, **kw)]


def img(tmp_path: Path, name: str, size: tuple[int, int] = (64, 48), **save: Any) -> str:
    path = tmp_path / "img" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 30, 200)).save(path, **save)
    return name


def exif(orientation: int) -> Image.Exif:
    e = Image.Exif()
    e[0x0112] = orientation
    return e


# --------------------------------------------------------------------------- registry


def test_every_vd3_rule_is_registered_with_docs():
    load_rules()
    vd3 = {c: r for c, r in RULES.items() if c.startswith("VD3")}
    assert set(vd3) == {f"VD3{i:02d}" for i in range(1, 14)}
    for r in vd3.values():
        assert r.scope == "media" and r.what and r.why and r.example and r.fix
        assert "# " + r.name in r.doc()


# --------------------------------------------------------------------------- one test per rule


def test_vd301_missing_image_and_video(tmp_path: Path):
    good = img(tmp_path, "a.jpg")
    assert codes(tmp_path, [row(good)]) == []
    hits = findings(tmp_path, [row("nope.jpg"), {"video": "clips/x.mp4", "conversations": conv()}])
    assert [f.code for f in hits] == ["VD301", "VD301"]
    assert "image 'nope.jpg' not found" in hits[0].message and "--root" in hits[0].message
    assert hits[0].line == 1 and hits[1].message.startswith("video 'clips/x.mp4' not found")
    (tmp_path / "img" / "clips").mkdir()
    (tmp_path / "img" / "clips" / "x.mp4").write_bytes(b"\x00" * 16)
    assert codes(tmp_path, [{"video": "clips/x.mp4", "conversations": conv()}]) == []


def test_vd302_path_escaping_the_root_and_symlink_out_of_it(tmp_path: Path):
    make_image(tmp_path / "outside.jpg", (10, 10))
    (tmp_path / "img").mkdir()
    os.symlink(tmp_path / "outside.jpg", tmp_path / "img" / "link.jpg")
    img(tmp_path, "inside.jpg", (40, 40))
    os.symlink(tmp_path / "img" / "inside.jpg", tmp_path / "img" / "link_in.jpg")
    hits = findings(tmp_path, [row("../outside.jpg"), row("link.jpg")])
    assert [f.code for f in hits] == ["VD302", "VD302"]
    assert "outside the media root" in hits[0].message and "symlink" in hits[1].message
    assert codes(tmp_path, [row("link_in.jpg"), row("inside.jpg")]) == []
    assert codes(tmp_path, [row("../outside.jpg")], allow_outside_root=True) == ["VD312"]  # 10x10: checked


def test_vd303_remote_media_is_noted_not_checked(tmp_path: Path):
    hits = findings(tmp_path, [row("https://example.com/cat.jpg")])
    assert [(f.code, f.severity) for f in hits] == [("VD303", "info")]
    assert codes(tmp_path, [row(img(tmp_path, "a.png", format="PNG"))]) == []


def test_vd304_empty_frame_folder(tmp_path: Path):
    (tmp_path / "img" / "empty").mkdir(parents=True)
    make_image(tmp_path / "img" / "full" / "0001.jpg", (32, 32))
    rows = [{"video": "empty/", "conversations": conv()}, {"video": "full/", "conversations": conv()}]
    hits = findings(tmp_path, rows)
    assert [(f.code, f.line) for f in hits] == [("VD304", 1)]


def test_vd305_unreadable_image(tmp_path: Path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "page.jpg").write_bytes(b"<html><body>404</body></html>")
    (tmp_path / "img" / "empty.png").write_bytes(b"")
    (tmp_path / "img" / "folder.jpg").mkdir()
    hits = findings(tmp_path, [row("page.jpg"), row("empty.png"), row("folder.jpg")])
    assert [f.code for f in hits] == ["VD305"] * 3
    assert "not an image" in hits[0].message and "empty" in hits[1].message and "folder" in hits[2].message
    assert codes(tmp_path, [row(img(tmp_path, "ok.jpg"))]) == []


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_vd306_truncated_image(tmp_path: Path, fmt: str):
    noise = Image.effect_noise((200, 150), 60).convert("RGB")
    path = tmp_path / "img" / f"full.{fmt.lower()}"
    path.parent.mkdir(parents=True)
    noise.save(path, format=fmt)
    data = path.read_bytes()
    (tmp_path / "img" / f"cut.{fmt.lower()}").write_bytes(data[: len(data) * 2 // 3])
    hits = findings(tmp_path, [row(f"cut.{fmt.lower()}")])
    assert [f.code for f in hits] == ["VD306"]
    assert "truncated" in hits[0].message
    assert codes(tmp_path, [row(f"full.{fmt.lower()}")]) == []


def test_vd306_trailing_bytes_after_the_end_marker_are_fine(tmp_path: Path):
    name = img(tmp_path, "motion.jpg", (80, 60))
    path = tmp_path / "img" / name
    path.write_bytes(path.read_bytes() + b"ftypmp42" + os.urandom(30000))  # a motion photo's appended video
    assert codes(tmp_path, [row(name)]) == []


def test_vd307_decompression_bomb(tmp_path: Path):
    bomb = tmp_path / "img" / "bomb.png"
    bomb.parent.mkdir(parents=True)
    Image.new("1", (30000, 30000)).save(bomb, optimize=True)
    assert bomb.stat().st_size < 1_000_000  # small file, 900 megapixels
    hits = findings(tmp_path, [row("bomb.png")])
    assert [f.code for f in hits] == ["VD307"]
    assert "30000x30000" in hits[0].message and "DecompressionBombError" in hits[0].message
    assert codes(tmp_path, [row(img(tmp_path, "ok.png", (3000, 2000), format="PNG"))]) == []


def test_vd308_huge_image_is_a_warning(tmp_path: Path):
    Image.new("1", (10000, 10000)).save(tmp_path / "big.png", optimize=True)
    (tmp_path / "img").mkdir()
    os.replace(tmp_path / "big.png", tmp_path / "img" / "big.png")
    hits = findings(tmp_path, [row("big.png")])
    assert [(f.code, f.severity) for f in hits] == [("VD308", "warning")]
    assert "100,000,000 pixels" in hits[0].message


def test_vd309_declared_size_differs_from_the_file(tmp_path: Path):
    name = img(tmp_path, "a.jpg", (640, 480))
    hits = findings(tmp_path, [row(name, width=600, height=480)])
    assert [(f.code, f.severity) for f in hits] == [("VD309", "error")]
    assert "declares width/height = 600x480 but the file is 640x480" in hits[0].message
    assert codes(tmp_path, [row(name, width=640, height=480)]) == []
    multi = findings(tmp_path, [row([name, name], width_list=[640, 480], height_list=[480, 640])])
    assert [f.code for f in multi] == ["VD309"]
    assert "width_list/height_list[1]" in multi[0].message and "swapped" in multi[0].message


def test_vd309_names_the_exif_rotated_view(tmp_path: Path):
    name = img(tmp_path, "phone.jpg", (400, 300), exif=exif(6))
    hits = findings(tmp_path, [row(name, width=300, height=400)])
    assert [f.code for f in hits] == ["VD309", "VD310"]
    assert "EXIF-rotated view" in hits[0].message


def test_vd310_exif_orientation(tmp_path: Path):
    rotated = img(tmp_path, "r.jpg", (400, 300), exif=exif(6))
    flipped = img(tmp_path, "f.png", (400, 300), format="PNG", exif=exif(3))
    upright = img(tmp_path, "u.jpg", (400, 300), exif=exif(1))
    plain = img(tmp_path, "p.jpg", (400, 300))
    hits = findings(tmp_path, [row(rotated), row(flipped), row(upright), row(plain)])
    assert [(f.code, f.severity, f.line) for f in hits] == [("VD310", "warning", 1), ("VD310", "warning", 2)]
    assert "orientation 6" in hits[0].message and "rotated 90° clockwise (300x400)" in hits[0].message
    assert "stored 400x300 frame" in hits[0].message and "rotated 180" in hits[1].message


def test_vd311_qwen_refuses_tiny_sides_and_extreme_ratios(tmp_path: Path):
    strip = img(tmp_path, "strip.png", (8, 2000), format="PNG")  # ratio 250
    small = img(tmp_path, "small.png", (20, 300), format="PNG")
    tiny = img(tmp_path, "tiny.png", (5, 40), format="PNG")
    ok = img(tmp_path, "ok.png", (28, 28), format="PNG")
    hits = findings(tmp_path, [row(strip), row(small), row(tiny), row(ok)], model="qwen2.5-vl")
    assert [(f.code, f.line) for f in hits] == [("VD311", 1), ("VD311", 2), ("VD311", 3)]
    assert "absolute aspect ratio must be smaller than 200" in hits[0].message
    assert "must be larger than factor:28" in hits[1].message and "recent transformers" in hits[1].message
    assert "every version" in hits[2].message
    # ms-swift (qwen-vl-utils) rounds tiny sides up but refuses the ratio; LLaMA-Factory fixes both first
    swift = findings(tmp_path, [row(strip), row(small)], model="qwen2-vl", target="swift")
    assert [f.code for f in swift] == ["VD311", "VD312"]
    lf = findings(tmp_path, [row(strip), row(small)], model="qwen2-vl", target="llamafactory")
    assert [f.code for f in lf] == ["VD312", "VD313", "VD312"]
    assert "180:1" in lf[1].message
    assert codes(tmp_path, [row(strip)], target="internvl") == ["VD312", "VD313"]  # not a Qwen run


def test_vd311_qwen3_vl_refuses_sides_under_its_factor_of_32(tmp_path: Path):
    """Qwen3-VL: patch 16 x merge 2, so smart_resize's factor is 32; a 30 px side passes Qwen2-VL's 28."""
    side30 = img(tmp_path, "side30.png", (30, 300), format="PNG")
    hits = findings(tmp_path, [row(side30)], model="qwen3-vl")
    assert [f.code for f in hits] == ["VD311"] and "must be larger than factor:32" in hits[0].message
    assert findings(tmp_path, [row(side30)], model="qwen2-vl") == []


def test_vd312_tiny_image(tmp_path: Path):
    tiny = img(tmp_path, "pixel.gif", (1, 1), format="GIF")
    hits = findings(tmp_path, [row(tiny), row(img(tmp_path, "ok.png", (28, 40), format="PNG"))])
    assert [(f.code, f.severity, f.line) for f in hits] == [("VD312", "warning", 1)]
    assert "1x1" in hits[0].message and "InternVL upsamples" in hits[0].message


def test_vd313_extreme_aspect_ratio_per_model(tmp_path: Path):
    strip = img(tmp_path, "strip.png", (30, 3000), format="PNG")  # 100:1
    tall = img(tmp_path, "tall.png", (30, 1350), format="PNG")  # 45:1, under InternVL's 48:1
    wide = img(tmp_path, "wide.png", (1200, 200), format="PNG")  # 6:1
    hits = findings(tmp_path, [row(strip), row(tall), row(wide)])  # InternVL format -> InternVL target
    assert [(f.code, f.line) for f in hits] == [("VD313", 1)]
    assert "1x12 grid" in hits[0].message and "distorting its aspect 8x" in hits[0].message
    # two images share the 12 tiles: 6 each, so 45:1 is now over 4 x 6
    assert [(f.code, f.line) for f in findings(tmp_path, [row([tall, wide])])] == [("VD313", 1)]
    llava = findings(tmp_path, [row(wide), row(img(tmp_path, "four.png", (800, 200), format="PNG"))], model="llava-1.5")
    assert [(f.code, f.line) for f in llava] == [("VD313", 1)]
    assert "padding" in llava[0].message
    assert codes(tmp_path, [row(strip)], model="qwen2-vl") == []  # Qwen handles 100:1 natively


# --------------------------------------------------------------------------- header probing


@pytest.mark.parametrize(
    ("fmt", "mode", "save"),
    [
        ("JPEG", "RGB", {"exif": exif(8)}),
        ("JPEG", "L", {"progressive": True}),
        ("JPEG", "CMYK", {}),
        ("PNG", "RGBA", {"exif": exif(5)}),
        ("PNG", "P", {}),
        ("PNG", "L", {}),
        ("GIF", "P", {}),
        ("WEBP", "RGB", {"exif": exif(6)}),
        ("BMP", "RGB", {}),
        ("TIFF", "RGB", {}),
    ],
)
def test_probe_agrees_with_pillow(tmp_path: Path, fmt: str, mode: str, save: dict):
    path = tmp_path / f"a.{fmt.lower()}"
    Image.new(mode, (123, 45)).save(path, format=fmt, **save)
    info = inspect_path(str(path))
    with Image.open(path) as im:
        want = (im.size, im.format, im.mode, Image.Image.getexif(im).get(0x0112))
    assert ((info.width, info.height), info.format, info.mode, info.exif_orientation) == want
    assert info.error is None and info.size_bytes == path.stat().st_size


def test_probe_never_decodes_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    paths = [make_image(tmp_path / f"a{i}.{ext}", (50, 40)) for i, ext in enumerate(["jpg", "png", "gif", "webp"])]

    def no_load(self: Any) -> None:
        raise AssertionError("pixels decoded")

    monkeypatch.setattr(Image.Image, "load", no_load)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_load)
    for p in paths:
        assert inspect_path(str(p)).width == 50


def test_exif_orientation_parser_handles_both_byte_orders_and_garbage():
    little = Image.Exif()
    little[0x0112] = 7
    block = little.tobytes()
    assert exif_orientation(block) == 7
    big = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x03\x00\x00"
    assert exif_orientation(big) == 3
    assert exif_orientation(b"Exif\x00\x00" + big) == 3
    assert exif_orientation(b"II*\x00\xff\xff\xff\xff") is None
    assert exif_orientation(b"") is None


# --------------------------------------------------------------------------- the on-disk cache


def images(tmp_path: Path, n: int = 6) -> list[str]:
    return [str(make_image(tmp_path / "img" / f"{i}.png", (20 + i, 30))) for i in range(n)]


def test_second_run_uses_the_cache(tmp_path: Path):
    paths = images(tmp_path)
    with MediaInspector(cache_dir=str(tmp_path / "c")) as first:
        cold = first.inspect_many(paths)
    assert (first.probed, first.cache_hits) == (6, 0)
    with MediaInspector(cache_dir=str(tmp_path / "c")) as second:
        warm = second.inspect_many(paths)
    assert (second.probed, second.cache_hits) == (0, 6)
    assert {p: i.to_dict() for p, i in warm.items()} == {p: i.to_dict() for p, i in cold.items()}


def test_validate_second_run_never_probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    rows = [row(img(tmp_path, f"{i}.jpg", (30 + i, 40))) for i in range(5)]
    assert codes(tmp_path, rows) == []
    calls = []

    def broken(path: str, size: int) -> Any:
        calls.append(path)
        raise RuntimeError("probe called")

    monkeypatch.setattr(inspect_mod, "probe_file", broken)
    assert codes(tmp_path, rows) == []  # every image came from the cache
    assert calls == []
    assert codes(tmp_path, rows, cache_dir="off") == ["VD305"] * 5  # without the cache the probe runs (and fails)
    assert len(calls) == 5


def test_changed_files_are_probed_again(tmp_path: Path):
    paths = images(tmp_path, 3)
    cache = str(tmp_path / "c")
    with MediaInspector(cache_dir=cache) as ins:
        ins.inspect_many(paths)
    st = os.stat(paths[0])
    make_image(Path(paths[0]), (200, 100))  # new size on disk
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched only
    with MediaInspector(cache_dir=cache) as ins:
        infos = ins.inspect_many(paths)
    assert (ins.probed, ins.cache_hits) == (2, 1)
    assert (infos[paths[0]].width, infos[paths[0]].height) == (200, 100)
    with MediaInspector(cache_dir=cache) as ins:
        ins.inspect_many(paths)
    assert (ins.probed, ins.cache_hits) == (0, 3)


def test_unreadable_files_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = images(tmp_path, 1)[0]

    def denied(*args: Any, **kw: Any) -> int:
        raise PermissionError(13, "Permission denied")

    with monkeypatch.context() as m:  # a chmod 000 file (root would read it anyway); chmod keeps the mtime
        m.setattr(inspect_mod.os, "open", denied)
        with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
            assert ins.inspect_many([path])[path].error == "cannot be read: Permission denied"
    with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
        assert ins.inspect_many([path])[path].error is None


def test_probe_failures_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    paths = images(tmp_path, 2)

    def crash(path: str, size: int) -> Any:
        raise ValueError("bug")

    with monkeypatch.context() as m:
        m.setattr(inspect_mod, "probe_file", crash)
        with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
            assert all("ValueError: bug" in (i.error or "") for i in ins.inspect_many(paths).values())
    with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
        assert all(i.error is None for i in ins.inspect_many(paths).values())
    assert ins.probed == 2


def test_missing_files_are_not_cached(tmp_path: Path):
    path = str(tmp_path / "img" / "late.png")
    with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
        assert not ins.inspect_many([path])[path].exists
    make_image(Path(path), (40, 30))
    with MediaInspector(cache_dir=str(tmp_path / "c")) as ins:
        assert ins.inspect_many([path])[path].width == 40


def test_cache_location_and_switching_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VLMDATA_CACHE_DIR", str(tmp_path / "env"))
    assert cache_location() == str(tmp_path / "env" / f"probe-v{PROBE_VERSION}.sqlite3")
    assert cache_location(str(tmp_path / "arg")).startswith(str(tmp_path / "arg"))
    monkeypatch.delenv("VLMDATA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_location().startswith(str(tmp_path / "xdg" / "vlmdata"))
    for off in ("off", "0", "none", ""):
        monkeypatch.setenv("VLMDATA_CACHE_DIR", off)
        assert cache_location() is None
    paths = images(tmp_path, 2)
    with MediaInspector(cache=False) as ins:
        ins.inspect_many(paths)
    with MediaInspector() as ins:  # VLMDATA_CACHE_DIR="" : off
        ins.inspect_many(paths)
        assert ins.probed == 2 and ins.cache is None
    assert not (tmp_path / "xdg").exists()


def test_a_broken_cache_file_is_ignored(tmp_path: Path):
    cache = tmp_path / "c"
    cache.mkdir()
    Path(cache_location(str(cache))).write_bytes(b"this is not a database" * 100)
    paths = images(tmp_path, 2)
    with MediaInspector(cache_dir=str(cache)) as ins:
        infos = ins.inspect_many(paths)
        assert ins.cache_error and "disabled" in ins.cache_error
    assert all(i.width for i in infos.values())


def _share(cache: str, paths: list[str]) -> str | None:
    for _ in range(3):
        with MediaInspector(cache_dir=cache, threads=2) as ins:
            infos = ins.inspect_many(paths)
            if ins.cache_error or not all(i.width for i in infos.values()):
                return ins.cache_error or "a probe failed"
    return None


@pytest.mark.parametrize("kind", ["probe", "visual"])
def test_rows_unused_for_prune_days_are_deleted_at_most_once_a_day(tmp_path: Path, kind: str):
    """Both tables of the cache file follow one policy (media.cache): a row is pruned when it was not
    *used* for PRUNE_DAYS days (however long ago it was written), and a table is pruned once a day."""
    from vlmdata.media.cache import PRUNE_DAYS, today
    from vlmdata.media.inspect import MediaInfo, ProbeCache
    from vlmdata.media.phash import Visual, VisualCache

    cls, table, value = {
        "probe": (ProbeCache, "probe", MediaInfo(True, width=3, height=4, format="PNG")),
        "visual": (VisualCache, "visual_hashes", Visual(phash=5, std=1.0, pad=0.0)),
    }[kind]
    file = str(tmp_path / "cache.sqlite3")

    def age(day: int, *paths: str) -> None:  # what the rows would look like after that many days
        db = sqlite3.connect(file)
        db.executemany(f"UPDATE {table} SET day = ? WHERE path = ?", [(day, p) for p in paths])
        db.commit()
        db.close()

    def stored(*paths: str) -> set[str]:
        cache = cls(file)
        try:
            return set(cache.get_many([(p, 10, 20) for p in paths]))
        finally:
            cache.close()

    cache = cls(file)
    cache.put_many([("/a", 10, 20, value), ("/b", 10, 20, value), ("/c", 10, 20, value)])
    cache.close()  # the first close of the day prunes (nothing is old yet)
    old = today() - PRUNE_DAYS - 1
    age(old, "/a", "/b", "/c")
    db = sqlite3.connect(file)
    db.execute("DELETE FROM meta")  # as if the last prune was yesterday
    db.commit()
    db.close()
    assert stored("/a") == {"/a"}  # written long ago, used today: kept; /b and /c unused: pruned by this close
    assert stored("/a", "/b", "/c") == {"/a"}
    cache = cls(file)
    cache.put_many([("/d", 10, 20, value)])
    cache.close()
    age(old, "/d")
    cls(file).close()  # the table was pruned today already: the aged, unused row waits for tomorrow
    db = sqlite3.connect(file)
    assert db.execute(f"SELECT path FROM {table}").fetchall() == [("/a",), ("/d",)]
    db.close()


def test_two_processes_share_the_cache(tmp_path: Path):
    paths = images(tmp_path, 40)
    cache = str(tmp_path / "c")
    parts = [paths[0::2] + paths[:10], paths[1::2] + paths[:10]]  # overlapping: both write the same rows
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert list(pool.map(_share, [cache, cache], parts)) == [None, None]
    with sqlite3.connect(cache_location(cache)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT count(*) FROM probe").fetchone()[0] == 40
    with MediaInspector(cache_dir=cache) as ins:
        ins.inspect_many(paths)
    assert (ins.probed, ins.cache_hits) == (0, 40)


def test_threads_give_the_same_answers(tmp_path: Path):
    paths = [*images(tmp_path, 50), str(tmp_path / "missing.png"), "https://example.com/x.jpg"]
    with MediaInspector(cache=False, threads=1) as one, MediaInspector(cache=False, threads=8) as many:
        many.IO_BOUND_RATIO = 0  # always the pool (page-cached files would stay in this thread)
        a, b = one.inspect_many(paths), many.inspect_many(paths)
        assert many.pooled == 2 and one.pooled == 0  # stats, then probes
    assert list(a) == list(b) == paths
    assert {p: i.to_dict() for p, i in a.items()} == {p: i.to_dict() for p, i in b.items()}
    assert not a[paths[-2]].exists and a[paths[-1]].remote
