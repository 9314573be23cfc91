"""Perceptual hashes, the Hamming index, and ``vlmdata overlap`` (eval leaks, shared mixture images)."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from tests.conftest import write_jsonl
from vlmdata.media import phash as P
from vlmdata.media.synthetic import base_image, edit
from vlmdata.tools.near_dup import HammingIndex, brute_force
from vlmdata.tools.overlap import find_overlap
from vlmdata.tools.overlap_cli import overlap

pytest.importorskip("numpy")


def flip_bits(code: int, bits: list[int]) -> int:
    for b in bits:
        code ^= 1 << b
    return code


# --------------------------------------------------------------------------- the index


def test_index_equals_brute_force_and_skips_most_pairs():
    rng = random.Random(7)
    codes = [rng.getrandbits(64) for _ in range(3000)]
    queries = []
    for k in range(60):  # a planted neighbour at every distance 0..14 of some stored code
        base = codes[k * 40]
        queries.append(flip_bits(base, rng.sample(range(64), k % 15)))
    for radius in (0, 3, 6, 8, 10):
        index: HammingIndex[int] = HammingIndex(radius)
        for pos, c in enumerate(codes):
            index.add(c, pos)
        for q in queries:
            assert sorted(index.query(q)) == sorted(brute_force(codes, q, radius))
        # multi-index hashing compares far fewer codes than all pairs
        assert index.candidates < len(queries) * len(codes) / 10


@pytest.mark.parametrize("radius", [2, 6, 9])
def test_pair_at_distance_d_reported_iff_d_at_most_t(radius):
    rng = random.Random(radius)
    a = rng.getrandbits(64)
    for d in range(0, 16):
        b = flip_bits(a, rng.sample(range(64), d))
        assert (a ^ b).bit_count() == d
        index: HammingIndex[str] = HammingIndex(radius)
        index.add(a, "a")
        hits = index.query(b)
        assert (hits == [("a", d)]) if d <= radius else (hits == [])


def test_same_code_keeps_every_key_in_order():
    index: HammingIndex[int] = HammingIndex(4)
    for k in range(3):
        index.add(0xABC, k)
    assert index.query(0xABC) == [(0, 0), (1, 0), (2, 0)]
    assert len(index) == 3


# --------------------------------------------------------------------------- hashes


def _save(im: Image.Image, path: Path, quality: int = 92) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=quality)
    return str(path)


def test_copies_are_near_and_different_images_far(tmp_path: Path):
    rng = random.Random(3)
    originals, copies = [], []
    for seed in range(6):
        im = base_image(seed)
        originals.append(_save(im, tmp_path / f"o{seed}.jpg"))
        for kind in ("resize", "jpeg", "jitter"):
            copies.append((seed, kind, _save(edit(im, kind, rng), tmp_path / f"{kind}{seed}.jpg")))
    h = {p: P.compute_visual(p).phash for p in originals + [c for _, _, c in copies]}
    assert all(isinstance(v, int) and 0 <= v < 1 << 64 for v in h.values())
    for seed, _kind, path in copies:
        assert P.hamming(h[originals[seed]], h[path]) <= 4
    far = [P.hamming(h[a], h[b]) for i, a in enumerate(originals) for b in originals[i + 1 :]]
    assert min(far) > 12


def test_draft_decode_hash_matches_a_full_decode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The thumbnail path (JPEG draft, luminance only) changes the hash by a few bits at most against
    the same hash of the fully decoded image; without the zero band it is imagehash's phash."""
    imagehash = pytest.importorskip("imagehash")
    paths = [_save(base_image(seed, (1200, 900)), tmp_path / f"big{seed}.jpg") for seed in range(4)]
    for path in paths:
        with Image.open(path) as im:
            full = P.phash_of(im.convert("L"))
        assert P.hamming(full, P.compute_visual(path).phash) <= 4
    monkeypatch.setattr(P, "ZERO_BAND", 0.0)
    for path in paths:
        with Image.open(path) as im:
            reference = int(str(imagehash.phash(im.convert("L"))), 16)
        assert P.hamming(reference, P.compute_visual(path).phash) <= 4


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path: Path):
    paths = [_save(base_image(s), tmp_path / "img" / f"{s}.jpg") for s in range(3)]
    cache = str(tmp_path / "cache")
    with P.ImageHasher(cache_dir=cache, threads=1) as first:
        a = first.get_many(paths)
        assert (first.computed, first.cache_hits) == (3, 0)
    with P.ImageHasher(cache_dir=cache, threads=1) as second:
        b = second.get_many(paths)
        assert (second.computed, second.cache_hits) == (0, 3)
    assert a == b
    base_image(99).save(paths[0], quality=92)  # a new picture under the same name
    os.utime(paths[0], ns=(1, 1))
    with P.ImageHasher(cache_dir=cache, threads=1) as third:
        c = third.get_many(paths)
        assert (third.computed, third.cache_hits) == (1, 2)
    assert c[paths[0]].phash != a[paths[0]].phash


# --------------------------------------------------------------------------- overlap


def row(rid: str, image: str, q: str, a: str) -> dict:
    return {
        "id": rid,
        "image": image,
        "conversations": [{"from": "human", "value": f"<image>\n{q}"}, {"from": "gpt", "value": a}],
    }


@pytest.fixture
def leak_data(tmp_path: Path) -> Path:
    img = tmp_path / "images"
    for s in range(5):
        _save(base_image(s), img / f"t{s}.jpg")
    rng = random.Random(1)
    _save(edit(edit(base_image(2), "resize", rng), "jpeg", rng), img / "v0.jpg", quality=70)  # copy of t2
    _save(base_image(10), img / "v1.jpg")
    _save(base_image(11), img / "v2.jpg")
    train = [row(f"t{s}", f"t{s}.jpg", f"What is shape {s}?", f"Answer number {s}.") for s in range(5)]
    val = [
        row("v0", "v0.jpg", "Describe it.", "Something new."),
        row("v1", "v1.jpg", "what is SHAPE 4", "answer number 4"),  # the text of t4 (line 5), another image
        row("v2", "v2.jpg", "Another question.", "Another answer."),
    ]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "val.jsonl", val)
    return tmp_path


def test_planted_leaks_found_with_both_file_lines(leak_data: Path):
    train, val = str(leak_data / "train.jsonl"), str(leak_data / "val.jsonl")
    report = find_overlap([train], [val], root=str(leak_data / "images"), cache_dir="off")
    got = sorted((x.kind, x.eval.where(), x.train.where()) for x in report.leaks)
    assert got == [
        ("image", f"{val}:1 (id=v0)", f"{train}:3 (id=t2)"),
        ("text", f"{val}:2 (id=v1)", f"{train}:5 (id=t4)"),
    ]
    data = report.to_dict()
    assert data["eval_samples"] == 3 and data["leaked_eval_samples"] == 2 and data["clean_eval_samples"] == 1
    assert data["leaks_by_kind"] == {"image": 1, "text": 1, "both": 0}


def test_overlap_cli_exit_codes_and_json(leak_data: Path):
    train, val = str(leak_data / "train.jsonl"), str(leak_data / "val.jsonl")
    runner = CliRunner()
    r = runner.invoke(overlap, ["--train", train, "--eval", val, "--root", str(leak_data / "images"), "--json"])
    assert r.exit_code == 1, r.output
    data = json.loads(r.stdout)
    assert {(x["eval"]["line"], x["train"]["line"]) for x in data["leaks"]} == {(1, 3), (2, 5)}
    assert f"{val}:1 (id=v0)" in r.stderr and f"{train}:3 (id=t2)" in r.stderr
    # the clean eval sample alone does not leak: exit 0
    write_jsonl(leak_data / "clean.jsonl", [json.loads((leak_data / "val.jsonl").read_text().splitlines()[2])])
    r = runner.invoke(
        overlap, ["--train", train, "--eval", str(leak_data / "clean.jsonl"), "--root", str(leak_data / "images")]
    )
    assert r.exit_code == 0, r.output
    assert "1 eval samples = 1 clean + 0 leaking" in r.stderr
    # text only: the image leak is no longer seen
    r = runner.invoke(
        overlap, ["--train", train, "--eval", val, "--root", str(leak_data / "images"), "--no-images", "--json"]
    )
    assert r.exit_code == 1 and [x["eval"]["line"] for x in json.loads(r.stdout)["leaks"]] == [2]


def test_distance_threshold_decides(leak_data: Path):
    """The planted copy is d bits from t2 (computed here); it is reported at t = d, not at t = d - 1."""
    root = leak_data / "images"
    d = P.hamming(P.compute_visual(str(root / "v0.jpg")).phash, P.compute_visual(str(root / "t2.jpg")).phash)
    args = ([str(leak_data / "train.jsonl")], [str(leak_data / "val.jsonl")])
    at = find_overlap(*args, root=str(root), image_distance=d, text=False, cache_dir="off")
    assert [(x.eval.line, x.train.line, x.image_distance) for x in at.leaks] == [(1, 3, d)]
    if d > 0:
        below = find_overlap(*args, root=str(root), image_distance=d - 1, text=False, cache_dir="off")
        assert below.leaks == []


def test_missing_numpy_is_a_clean_error(leak_data: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(P, "have_hashing", lambda: False)
    r = CliRunner().invoke(overlap, ["--train", str(leak_data / "train.jsonl"), "--eval", str(leak_data / "val.jsonl")])
    assert r.exit_code == 2 and "vlmdata[quality]" in r.stderr


def test_mixture_shared_images_counted_with_repeat_time(tmp_path: Path):
    img = tmp_path / "images"
    for s in range(6):
        _save(base_image(20 + s), img / f"{s}.jpg")
    _save(base_image(21).resize((200, 150)), img / "copy1.jpg")  # a resized copy of image 1
    a = [row(f"a{s}", f"{s}.jpg", "q", f"a{s}") for s in range(4)]  # images 0-3
    b = [row("b0", "0.jpg", "q", "b0"), row("b1", "copy1.jpg", "q", "b1"), row("b2", "4.jpg", "q", "b2"),
         row("b3", "5.jpg", "q", "b3"), row("b4", "4.jpg", "q2", "b4")]  # fmt: skip
    write_jsonl(tmp_path / "a.jsonl", a)
    write_jsonl(tmp_path / "b.jsonl", b)
    meta = {
        "A": {"root": str(img), "annotation": str(tmp_path / "a.jsonl"), "repeat_time": 2, "length": 4},
        "B": {"root": str(img), "annotation": str(tmp_path / "b.jsonl"), "repeat_time": 1, "length": 5},
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    r = CliRunner().invoke(overlap, ["--train", str(tmp_path / "meta.json"), "--json", "--no-text"])
    assert r.exit_code == 0, r.output  # no eval: nothing leaks
    [shared] = json.loads(r.stdout)["shared_images"]
    # A's images 0 and 1 are in B (0 the same file, 1 resized): 2 of 4; B's 0.jpg and copy1.jpg: 2 of 4 distinct
    assert (shared["a"], shared["b"]) == ("A", "B")
    assert (shared["images_of_a_in_b"], shared["distinct_images_a"], shared["share_of_a"]) == (2, 4, 0.5)
    assert (shared["images_of_b_in_a"], shared["distinct_images_b"], shared["share_of_b"]) == (2, 4, 0.5)
    assert shared["times_seen_per_epoch"] == 3
    assert "each is trained 3 times per epoch" in r.stderr


def test_dataset_info_every_dataset(tmp_path: Path):
    img = tmp_path / "images"
    _save(base_image(30), img / "x.jpg")
    _save(base_image(31), img / "y.jpg")

    def sg(rid, image, q, a):
        return {
            "id": rid,
            "images": [image],
            "conversations": [{"from": "human", "value": f"<image>{q}"}, {"from": "gpt", "value": a}],
        }

    write_jsonl(tmp_path / "one.jsonl", [sg("o1", "images/x.jpg", "q1", "a1")])
    write_jsonl(tmp_path / "two.jsonl", [sg("w1", "images/y.jpg", "q2", "a2")])
    entry = {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "images"}}
    info = {"one": {"file_name": "one.jsonl", **entry}, "two": {"file_name": "two.jsonl", **entry}}
    (tmp_path / "dataset_info.json").write_text(json.dumps(info))
    write_jsonl(tmp_path / "val.jsonl", [row("v", str(img / "y.jpg"), "new q", "new a")])
    report = find_overlap([str(tmp_path / "dataset_info.json")], [str(tmp_path / "val.jsonl")], cache_dir="off")
    assert [d.name for d in report.train] == ["one", "two"] and [d.samples for d in report.train] == [1, 1]
    assert [(x.kind, x.train.dataset, x.train.id, x.image_distance) for x in report.leaks] == [
        ("image", "two", "w1", 0)
    ]


def test_flat_symmetric_drawing_copies_stay_near(tmp_path: Path):
    """A symmetric drawing on a flat background has many zero DCT coefficients and a zero median:
    resampling noise must not flip them (plain imagehash.phash put this resized copy 21 bits away)."""
    src = Path(__file__).resolve().parents[1] / "sample_data" / "images" / "shapes_256x256.jpg"
    original = P.compute_visual(str(src)).phash
    for factor in (0.4, 0.5, 0.6, 0.78, 1.3, 1.6, 2.0):
        with Image.open(src) as im:
            copy = im.convert("RGB").resize((round(256 * factor), round(256 * factor)))
        path = _save(copy, tmp_path / f"copy{factor}.jpg", quality=70)
        assert P.hamming(original, P.compute_visual(path).phash) <= 2


def test_folders_are_inputs(leak_data: Path):
    """A folder names every data file under it: the same leaks as naming the files."""
    (leak_data / "train_dir").mkdir()
    (leak_data / "train.jsonl").rename(leak_data / "train_dir" / "train.jsonl")
    (leak_data / "eval_dir").mkdir()
    (leak_data / "val.jsonl").rename(leak_data / "eval_dir" / "val.jsonl")
    report = find_overlap(
        [str(leak_data / "train_dir")], [str(leak_data / "eval_dir")], root=str(leak_data / "images"), cache_dir="off"
    )
    assert sorted((x.kind, x.eval.line, x.train.line) for x in report.leaks) == [("image", 1, 3), ("text", 2, 5)]


@pytest.mark.parametrize("text", ["[1, 2]", "{not json"])
def test_a_dataset_info_that_is_no_object_is_an_error_not_a_crash(tmp_path: Path, text: str):
    from vlmdata.cli import main

    info = tmp_path / "dataset_info.json"
    info.write_text(text)
    for args in (["overlap", "--train", str(info)], ["stats", "--html", str(tmp_path / "s.html"), str(info)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, r.output
        assert "dataset_info.json" in r.output and "Traceback" not in r.output
