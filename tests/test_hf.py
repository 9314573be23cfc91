"""HF / TRL messages (docs/formats.md#hf): typed blocks, TRL's placeholder rule, parquet in and out."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

import vlmdata
from vlmdata.cli import main
from vlmdata.convert.frames import convert_box
from vlmdata.convert.placeholders import count_slots
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Boxes, Frame, ImageSlot, Points, Ref, Sample, Text

from .conftest import make_image, read_jsonl, write_jsonl
from .test_matrix import SIZE, canonical
from .test_matrix import summary as pixel_summary

REPO = Path(__file__).resolve().parents[1]
SWIFT = REPO / "sample_data" / "swift" / "train.jsonl"
IMAGES = REPO / "sample_data" / "images"


def content(sample: Sample) -> list[tuple[str, str, list[tuple[float, ...]]]]:
    """Role, visible text (slots as <image>) and pixel boxes per message, sizes read from the files."""
    sizes = [Image.open(m.resolved).size for m in sample.images]
    out = []
    for m in sample.messages:
        text, boxes = [], []
        for p in m.parts:
            if isinstance(p, Text | Ref):
                text.append(p.text)
            elif isinstance(p, ImageSlot):
                text.append("<image>")
            elif isinstance(p, Boxes | Points):
                items = p.boxes if isinstance(p, Boxes) else p.points
                boxes += [convert_box(b, Frame.PIXEL, lambda i=p.image_index: sizes[i])[0].coords() for b in items]
        out.append((m.role, "".join(text), boxes))
    return out


def assert_same(got: list[Sample], want: list[Sample], tol: float = 0.5) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.id == w.id
        assert [m.resolved for m in g.images] == [m.resolved for m in w.images]
        for (gr, gt, gb), (wr, wt, wb) in zip(content(g), content(w), strict=True):
            assert (gr, gt) == (wr, wt)
            assert len(gb) == len(wb)
            for x, y in zip(gb, wb, strict=True):
                assert x == pytest.approx(y, abs=tol)  # 0-1000 keeps a box within half a pixel on <=1000 px


def load_hf(files: list[str], tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf-cache"))
    image = datasets.features.Image
    assert ds.features["images"].feature == image()  # datasets sees an Image column (decoded on access)
    seq = getattr(datasets, "List", None) or datasets.Sequence
    return ds.cast_column("images", seq(image(decode=False)))


def without_nulls(messages: list[dict]) -> list[dict]:
    """Arrow gives every block every block key; drop the Nones to compare with JSONL rows."""
    return [{**m, "content": [{k: v for k, v in b.items() if v is not None} for b in m["content"]]} for m in messages]


# --- real files ---------------------------------------------------------------------------------


def test_lf_hf_parquet_2024(realdata: Path):
    pytest.importorskip("pyarrow")
    folder = realdata / "lf-hf-parquet-2024"
    case = json.loads((folder / "case.json").read_text())
    exp = case["expected"]
    src = folder / case["data_files"][0]
    samples = list(vlmdata.read(str(src), root=str(folder)))  # case root "." = the repository root
    assert len(samples) == exp["records"]
    assert [len(s.images) for s in samples] == exp["images_per_record"]
    assert [count_slots(s.messages, "image") for s in samples] == exp["image_blocks_per_record"]
    sizes = {m["path"]: (m["image"]["width"], m["image"]["height"]) for m in exp["media"]}
    for s, rec in zip(samples, exp["per_record"], strict=True):
        assert [m.role for m in s.messages] == rec["roles"]
        kinds = [["image" if isinstance(p, ImageSlot) else "text" for p in m.parts] for m in s.messages]
        assert kinds == rec["block_types_per_message"]  # text first, then the image
        assert [m.path for m in s.images] == [i["path"] for i in rec["images_struct"]]
        assert s.origin.index == rec["index"]
        for m in s.images:
            assert Image.open(m.resolved).size == sizes[m.path]
    # the folder holds both splits (byte-identical files): read as one stream, in file order
    both = list(vlmdata.read(str(src.parent), root=str(folder)))
    assert len(both) == 2 * exp["records"]
    assert [s.origin.index for s in both] == list(range(6))


def test_lf_hf_parquet_2024_converts_to_swift_and_back(realdata: Path, tmp_path: Path):
    pytest.importorskip("pyarrow")
    folder = realdata / "lf-hf-parquet-2024"
    src = folder / "data" / "mllm_example_dataset" / "data" / "train-0.parquet"
    report = vlmdata.convert(str(src), str(tmp_path / "s.jsonl"), to="swift", root=str(folder))
    assert (report.input_format, report.records_in, report.written) == ("hf", 3, 3)
    rows = read_jsonl(tmp_path / "s.jsonl")
    assert rows[0]["messages"][0]["content"] == "Who are they?<image>"
    back = vlmdata.convert(str(tmp_path / "s.jsonl"), str(tmp_path / "h.parquet"), to="hf", root=str(folder))
    assert back.ok
    assert_same(
        list(vlmdata.read(str(tmp_path / "h.parquet"), root=str(folder))),
        list(vlmdata.read(str(src), root=str(folder))),
    )


def test_lf_v1_typed_blocks(realdata: Path, tmp_path: Path):
    folder = realdata / "lf-v1-typed-blocks"
    case = json.loads((folder / "case.json").read_text())
    exp = case["expected"]
    src = folder / case["data_files"][0]
    samples = list(vlmdata.read(str(src), root=str(folder)))  # detected as hf: {type, value} blocks
    assert len(samples) == exp["records"]  # the trailing blank line is not a record
    assert [count_slots(s.messages, "image") for s in samples] == exp["image_blocks_per_record"]
    for s, rec in zip(samples, exp["per_record"], strict=True):
        assert s.origin.line == rec["line"]
        assert [m.path for m in s.images] == rec["image_paths"]
        kinds = [["image_url" if isinstance(p, ImageSlot) else "text" for p in m.parts] for m in s.messages]
        assert kinds == rec["block_types_per_message"]
        assert all(Path(m.resolved).is_file() for m in s.images)
        assert "<image>" not in "".join(p.text for m in s.messages for p in m.parts if isinstance(p, Text))
    report = vlmdata.convert(str(src), str(tmp_path / "s.jsonl"), to="swift", root=str(folder))
    assert (report.input_format, report.written) == ("hf", 24)


# --- reading rules (docs/formats.md#hf) -----------------------------------------------------------


def test_string_content_gets_every_image_before_the_first_user_text(tmp_path: Path):
    make_image(tmp_path / "a.png", (10, 10))
    make_image(tmp_path / "b.png", (10, 10))
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Compare them."},
            {"role": "assistant", "content": "Same."},
            {"role": "user", "content": "Sure?"},
        ],
        "images": ["a.png", {"bytes": None, "path": "b.png"}],
    }
    write_jsonl(tmp_path / "in.jsonl", [row])
    (sample,) = vlmdata.read(str(tmp_path / "in.jsonl"), format="hf", root=str(tmp_path))
    assert [type(p) for p in sample.messages[1].parts] == [ImageSlot, ImageSlot, Text]
    assert [p.index for p in sample.messages[1].parts[:2]] == [0, 1]
    assert [m.path for m in sample.images] == ["a.png", "b.png"]
    assert count_slots(sample.messages, "image", ("system", "assistant")) == 0
    report = vlmdata.convert(
        str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl"), to="hf", from_format="hf", root=str(tmp_path)
    )
    assert report.tally.inserted_tags == 2
    out = read_jsonl(tmp_path / "o.jsonl")[0]
    assert out["messages"][1]["content"] == [
        {"type": "image"},
        {"type": "image"},
        {"type": "text", "text": "Compare them."},
    ]
    assert out["messages"][0]["content"] == [{"type": "text", "text": "Be brief."}]
    assert out["images"] == [str(tmp_path / "a.png"), str(tmp_path / "b.png")]  # absolute (see the module doc)


def test_placeholders_fill_in_order_and_inline_payloads_keep_their_place(tmp_path: Path):
    for name in ("a.png", "b.png", "c.png"):
        make_image(tmp_path / name, (10, 10))
    row = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image"}, {"type": "image", "path": "c.png"}, {"type": "text", "text": "q"}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
            {"role": "user", "content": [{"type": "text", "text": "and"}, {"type": "image"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "b"}]},
        ],
        "images": ["a.png", "b.png"],
    }
    write_jsonl(tmp_path / "in.jsonl", [row])
    (sample,) = vlmdata.read(str(tmp_path / "in.jsonl"), root=str(tmp_path))
    assert [m.path for m in sample.images] == ["a.png", "c.png", "b.png"]


def test_placeholder_count_mismatch_is_trl_error(tmp_path: Path):
    make_image(tmp_path / "a.png", (10, 10))
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "image"}]}], "images": ["a.png"]},
        {"messages": [{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}], "images": ["a.png"]},
    ]
    write_jsonl(tmp_path / "in.jsonl", rows)
    report = vlmdata.convert(
        str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl"), to="swift", from_format="hf", root=str(tmp_path)
    )
    assert report.rejected == 2
    first, second = report.rejections
    assert "Number of images provided (1) does not match number of image placeholders (2)" in first.error
    assert "Invalid role in message: robot" in second.error


def test_literal_image_tag_in_text_is_text_and_grounding_is_parsed(tmp_path: Path):
    make_image(tmp_path / "a.png", (200, 100))
    text = (
        "<|object_ref_start|>cat<|object_ref_end|><|box_start|>(100,100),(500,600)<|box_end|>"
        " or <ref>dog</ref><box>[[0, 0, 1000, 1000]]</box>"
    )
    row = {
        "messages": [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Say <image> literally"}]},
            {"role": "assistant", "content": [{"type": "text", "text": text}]},
        ],
        "images": ["a.png"],
    }
    write_jsonl(tmp_path / "in.jsonl", [row])
    (sample,) = vlmdata.read(str(tmp_path / "in.jsonl"), root=str(tmp_path))
    assert sample.messages[0].parts[1:] == [Text("Say <image> literally")]
    assert count_slots(sample.messages, "image") == 1
    refs = [p.text for p in sample.messages[1].parts if isinstance(p, Ref)]
    boxes = [b.coords() for p in sample.messages[1].parts if isinstance(p, Boxes) for b in p.boxes]
    assert refs == ["cat", "dog"]
    assert boxes == [(100, 100, 500, 600), (0, 0, 1000, 1000)]


def test_prompt_completion_rows_read_and_write(tmp_path: Path):
    make_image(tmp_path / "a.png", (10, 10))
    row = {
        "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]}],
        "completion": [{"role": "assistant", "content": [{"type": "text", "text": "A square."}]}],
        "images": ["a.png"],
        "source": "synthetic",
    }
    write_jsonl(tmp_path / "in.jsonl", [row])
    (sample,) = vlmdata.read(str(tmp_path / "in.jsonl"), root=str(tmp_path))
    assert [m.role for m in sample.messages] == ["user", "assistant"]
    assert sample.extra == {"source": "synthetic"}
    vlmdata.convert(str(tmp_path / "in.jsonl"), str(tmp_path / "m.jsonl"), to="hf", root=str(tmp_path))
    assert "messages" in read_jsonl(tmp_path / "m.jsonl")[0]
    vlmdata.convert(
        str(tmp_path / "m.jsonl"),
        str(tmp_path / "pc.jsonl"),
        to="hf",
        root=str(tmp_path),
        hf_layout="prompt-completion",
    )
    # written paths are absolute: datasets' Image, like the reader, resolves relative ones against the working dir
    assert read_jsonl(tmp_path / "pc.jsonl") == [dict(row, images=[str(tmp_path / "a.png")])]


# --- writing ------------------------------------------------------------------------------------


def test_boxes_are_qwen_tokens_on_0_1000_or_internvl_tags(tmp_path: Path):
    make_image(tmp_path / "img" / "a.png", SIZE)
    root = str(tmp_path / "img")
    vlmdata.write(canonical(tmp_path / "img"), str(tmp_path / "c.jsonl"), "hf", root=root)
    answer = read_jsonl(tmp_path / "c.jsonl")[1]["messages"][1]["content"]
    assert answer == [
        {
            "type": "text",
            "text": "<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(100,100),(500,600)<|box_end|>",
        }
    ]
    vlmdata.write(canonical(tmp_path / "img"), str(tmp_path / "i.jsonl"), "hf", root=root, hf_boxes="internvl")
    answer = read_jsonl(tmp_path / "i.jsonl")[1]["messages"][1]["content"]
    assert answer == [{"type": "text", "text": "<ref>the cat</ref><box>[[100, 100, 500, 600]]</box>"}]


@pytest.mark.parametrize("other", ["swift", "swift-legacy", "internvl", "llava"])
def test_hf_and_other_formats_keep_text_images_boxes(tmp_path: Path, other: str):
    make_image(tmp_path / "img" / "a.png", SIZE)
    root = str(tmp_path / "img")
    ext = ".json" if other == "llava" else ".jsonl"
    src = tmp_path / "src.jsonl"
    vlmdata.write(canonical(tmp_path / "img"), str(src), "hf", root=root)
    expected = [pixel_summary(s) for s in canonical(tmp_path / "img")]
    there = vlmdata.convert(str(src), str(tmp_path / f"o{ext}"), to=other, root=root)
    assert (there.input_format, there.written, there.rejected) == ("hf", 3, 0), there.to_dict()
    back = vlmdata.convert(str(tmp_path / f"o{ext}"), str(tmp_path / "b.jsonl"), to="hf", from_format=other, root=root)
    assert (back.written, back.rejected) == (3, 0), back.to_dict()
    for path, fmt in ((tmp_path / f"o{ext}", other), (tmp_path / "b.jsonl", "hf")):
        got = list(vlmdata.read(str(path), format=fmt, root=root))
        assert [s.images[0].resolved for s in got] == [str(tmp_path / "img" / "a.png")] * 3
        for g, e in zip(got, expected, strict=True):
            for (gr, gt, gb), (er, et, eb) in zip(pixel_summary(g), e, strict=True):
                assert (gr, gt) == (er, et)
                assert [pytest.approx(b, abs=1.0) for b in eb] == gb  # LLaVA keeps 2 decimals


def test_tool_call_turns_and_audio_are_refused(tmp_path: Path):
    row = {
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "tool_call", "content": '{"name": "w"}'},
            {"role": "tool_response", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    write_jsonl(tmp_path / "in.jsonl", [row])
    report = vlmdata.convert(str(tmp_path / "in.jsonl"), str(tmp_path / "o.jsonl"), to="hf", from_format="swift")
    assert report.rejected == 1 and "tool_call" in report.rejections[0].error


# --- parquet ------------------------------------------------------------------------------------


@pytest.mark.parametrize("embed", [False, True])
def test_swift_to_parquet_shards_and_back(tmp_path: Path, embed: bool):
    pytest.importorskip("pyarrow")
    dst = tmp_path / "out" / "train.parquet"
    report = vlmdata.convert(str(SWIFT), str(dst), to="hf", root=str(IMAGES), shard_size=2, embed_images=embed)
    assert (report.records_in, report.written, report.rejected) == (5, 5, 0)
    files = sorted(str(p) for p in (tmp_path / "out").iterdir())
    assert [Path(f).name for f in files] == [f"train-0000{k}-of-00003.parquet" for k in range(3)]  # no temp files
    # the same rows as the JSONL writer gives, through datasets
    vlmdata.convert(str(SWIFT), str(tmp_path / "train.jsonl"), to="hf", root=str(IMAGES))
    jsonl = read_jsonl(tmp_path / "train.jsonl")
    ds = load_hf(files, tmp_path)
    assert len(ds) == 5
    for row, want in zip(ds, jsonl, strict=True):
        assert row["id"] == want["id"]
        assert without_nulls(row["messages"]) == want["messages"]
        for image, path in zip(row["images"], want["images"], strict=True):
            if embed:
                assert image["path"] == os.path.basename(path)  # the embedded image is named by its file name
                assert image["bytes"] == (IMAGES / path).read_bytes()
            else:
                assert image == {"bytes": None, "path": path}
    # back to swift: the same samples (boxes through 0-1000 within half a pixel)
    extract = {"extract_images": str(tmp_path / "extracted")} if embed else {}
    back = vlmdata.convert(str(tmp_path / "out"), str(tmp_path / "back.jsonl"), to="swift", root=str(IMAGES), **extract)
    assert (back.input_format, back.written, back.rejected) == ("hf", 5, 0), back.to_dict()
    original = list(vlmdata.read(str(SWIFT), root=str(IMAGES)))
    again = list(vlmdata.read(str(tmp_path / "back.jsonl")))
    if embed:
        assert all(m.resolved.startswith(str(tmp_path / "extracted")) for s in again for m in s.images)
        for a, o in zip(again, original, strict=True):
            assert [Path(m.resolved).read_bytes() for m in a.images] == [
                Path(m.resolved).read_bytes() for m in o.images
            ]
            for m, om in zip(a.images, o.images, strict=True):
                m.resolved = om.resolved  # same bytes: compare the rest as if the paths were the same
    assert_same(again, original)


def test_embedded_bytes_without_a_file_are_rejected_with_the_fix(tmp_path: Path):
    pytest.importorskip("pyarrow")
    dst = tmp_path / "e.parquet"
    vlmdata.convert(str(SWIFT), str(dst), to="hf", root=str(IMAGES), embed_images=True)
    report = vlmdata.convert(str(dst), str(tmp_path / "s.jsonl"), to="swift", rejects=str(tmp_path / "rej.jsonl"))
    assert report.rejected == 5
    assert "--extract-images" in report.rejections[0].fix
    rejected = read_jsonl(tmp_path / "rej.jsonl")[0]["record"]
    assert rejected["images"][0]["bytes"].endswith("bytes>")  # bytes noted, not dumped
    ok = vlmdata.convert(str(dst), str(tmp_path / "s.jsonl"), to="swift", root=str(IMAGES))
    assert ok.written == 5  # the basename names a file under --root


def test_parquet_rewrite_replaces_older_shards_and_abort_leaves_nothing(tmp_path: Path):
    pytest.importorskip("pyarrow")
    dst = tmp_path / "out" / "train.parquet"
    vlmdata.convert(str(SWIFT), str(dst), to="hf", root=str(IMAGES), shard_size=2)
    vlmdata.convert(str(SWIFT), str(dst), to="hf", root=str(IMAGES))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["train.parquet"]
    assert len(list(vlmdata.read(str(tmp_path / "out"), root=str(IMAGES)))) == 5


@pytest.mark.parametrize(("rows", "late"), [(2500, 2400), (3500, 2100)])  # fails in commit / in write_many
def test_parquet_key_after_the_first_chunk_stops_the_run_and_leaves_nothing(tmp_path: Path, rows: int, late: int):
    pytest.importorskip("pyarrow")
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    data = [row] * rows
    data[late] = {**row, "late": 1}  # the first 2,000 records (one pipeline chunk) fixed the columns
    write_jsonl(tmp_path / "in.jsonl", data)
    with pytest.raises(VlmdataError, match=rf"row {late} has new key\(s\) \['late'\]"):
        vlmdata.convert(str(tmp_path / "in.jsonl"), str(tmp_path / "bad" / "x.parquet"), to="hf", shard_size=500)
    assert list((tmp_path / "bad").iterdir()) == []


def test_parquet_needs_pyarrow_but_the_core_does_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    report = vlmdata.convert(str(SWIFT), str(tmp_path / "o.jsonl"), to="hf", root=str(IMAGES))
    assert report.written == 5
    with pytest.raises(VlmdataError, match=r"pip install 'vlmdata\[hf\]'"):
        vlmdata.convert(str(SWIFT), str(tmp_path / "o.parquet"), to="hf", root=str(IMAGES))
    assert not (tmp_path / "o.parquet").exists()


def test_cli_parquet_options(tmp_path: Path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "o.parquet"
    args = ["convert", str(SWIFT), "--to", "hf", "-o", str(out), "--root", str(IMAGES)]
    res = CliRunner().invoke(main, [*args, "--embed-images", "--shard-size", "4"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o-00000-of-00002.parquet", "o-00001-of-00002.parquet"]
    res = CliRunner().invoke(
        main, ["convert", str(SWIFT), "--to", "swift", "-o", str(tmp_path / "s.jsonl"), "--embed-images"]
    )
    assert res.exit_code == 2 and "--embed-images" in res.output
    res = CliRunner().invoke(
        main, ["convert", str(SWIFT), "--to", "hf", "-o", str(tmp_path / "h.jsonl"), "--embed-images"]
    )
    assert res.exit_code == 2 and ".parquet" in res.output
    with pytest.raises(RecordError):
        list(vlmdata.read(str(tmp_path / "o-00000-of-00002.parquet")))  # embedded, no file at cwd, no --extract
    assert len(list(vlmdata.read(str(out), root=str(IMAGES)))) == 5  # o.parquet reads its shards


def test_library_write_to_parquet(tmp_path: Path):
    pytest.importorskip("pyarrow")
    make_image(tmp_path / "img" / "a.png", SIZE)
    samples = canonical(tmp_path / "img")
    assert vlmdata.write(samples, str(tmp_path / "c.parquet"), "hf", root=str(tmp_path / "img")) == 3
    again = list(vlmdata.read(str(tmp_path / "c.parquet"), root=str(tmp_path / "img")))
    assert [pixel_summary(s) for s in again] == [pixel_summary(s) for s in samples]
