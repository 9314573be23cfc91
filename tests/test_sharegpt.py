"""LLaMA-Factory sharegpt datasets and dataset_info.json (docs/formats.md#sharegpt, docs/consumers.md#media-tags,
docs/consumers.md#roles-and-system)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import vlmdata
from vlmdata.cli import main
from vlmdata.convert.codec import Options
from vlmdata.convert.placeholders import count_slots
from vlmdata.convert.registry import get_codec
from vlmdata.convert.sharegpt import DEFAULT_TAGS
from vlmdata.errors import RecordError, VlmdataError
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Sample, Text

from .conftest import make_image, read_jsonl, write_jsonl
from .samples import SIZE, canonical, summary


def case(realdata: Path, name: str) -> tuple[Path, dict]:
    folder = realdata / name
    return folder, json.loads((folder / "case.json").read_text())


def write_json(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return path


def convo(*turns: tuple[str, str], **extra) -> dict:
    return {"conversations": [{"from": f, "value": v} for f, v in turns], **extra}


# --- real LLaMA-Factory data --------------------------------------------------------------------


def test_mllm_demo_read_with_its_dataset_info_entry(realdata: Path):
    folder, c = case(realdata, "lf-mllm-demo")
    exp = c["expected"]
    samples = list(
        vlmdata.read(
            str(folder / c["data_files"][0]),
            format="sharegpt",
            dataset_info=str(folder / "dataset_info.json"),
            dataset_name=c["dataset_info"]["key"],
        )
    )
    assert len(samples) == exp["records"] == 6
    assert [len(s.images) for s in samples] == exp["images_per_record"] == [2, 1, 1, 2, 1, 1]
    assert [count_slots(s.messages, "image") for s in samples] == exp["image_placeholders_per_record"]
    assert [[m.role for m in s.messages] for s in samples] == exp["roles_per_record"]
    for s, rec in zip(samples, exp["per_record"], strict=True):
        assert [count_slots([m], "image") for m in s.messages] == rec["image_placeholders_per_message"]
    # media_dir = the dataset_info folder (LLaMA-Factory's dataset_dir): every JPEG resolves
    resolved = {m.resolved for s in samples for m in s.images}
    assert resolved == {str(folder / p) for p in exp["distinct_image_paths"]}
    assert all(Path(p).is_file() for p in resolved)
    # record 0 uses one file twice: two slots, two images, not deduplicated
    assert [m.path for m in samples[0].images] == ["mllm_demo_data/1.jpg", "mllm_demo_data/1.jpg"]
    assert samples[0].messages[2].parts[-1] == ImageSlot(1)


def test_mllm_demo_without_dataset_info_detects_role_content_tags(realdata: Path):
    folder, c = case(realdata, "lf-mllm-demo")
    samples = list(vlmdata.read(str(folder / "mllm_demo.json"), format="sharegpt"))
    assert [len(s.images) for s in samples] == c["expected"]["images_per_record"]
    assert all(Path(m.resolved).is_file() for s in samples for m in s.images)


def test_mllm_video_demo(realdata: Path):
    folder, c = case(realdata, "lf-mllm-video-demo")
    exp = c["expected"]
    samples = list(
        vlmdata.read(
            str(folder / "mllm_video_demo.json"),
            format="sharegpt",
            dataset_info=str(folder / "dataset_info.json"),
            dataset_name="mllm_video_demo",
        )
    )
    assert len(samples) == exp["records"] == 3
    assert [len(s.videos) for s in samples] == exp["videos_per_record"] == [1, 1, 1]
    assert [count_slots(s.messages, "video") for s in samples] == exp["video_placeholders_per_record"]
    assert [len(s.images) for s in samples] == [0, 0, 0]
    assert [m.path for s in samples for m in s.videos] == [m["path"] for m in exp["media"]]
    assert all(Path(m.resolved).is_file() for s in samples for m in s.videos)


def test_florence_rows_without_image_tags_are_rejected_with_counts(realdata: Path, tmp_path: Path):
    folder, c = case(realdata, "lf-tfid-florence2-grounding")
    assert c["expected"]["image_placeholders_per_record"] == [0, 0]
    report = vlmdata.convert(
        str(folder / c["data_files"][0]),
        str(tmp_path / "out.jsonl"),
        to="swift",
        from_format="sharegpt",
        dataset_info=str(folder / "dataset_info.json"),
        dataset_name=c["dataset_info"]["key"],
    )
    # LLaMA-Factory's _validate_messages raises on these rows and aborts the training run
    assert (report.records_in, report.written, report.rejected) == (2, 0, 2)
    for r in report.rejections:
        assert "0 <image> tag(s) but 1 image(s)" in r.error
        assert "does not match the number of <image> tokens" in r.fix


def test_mllm_demo_to_sharegpt_twice_gives_identical_records(realdata: Path, tmp_path: Path):
    folder, _ = case(realdata, "lf-mllm-demo")
    shutil.copytree(folder, tmp_path / "ds" / "src")  # the source inside the new dataset_dir
    first = tmp_path / "ds" / "mllm.json"
    info = tmp_path / "ds" / "dataset_info.json"  # does not exist yet: only the writer's
    src = tmp_path / "ds" / "src" / "mllm_demo.json"
    report = vlmdata.convert(str(src), str(first), to="sharegpt", from_format="sharegpt", dataset_info=str(info))
    assert report.ok and report.written == 6
    rows = json.loads(first.read_text())
    assert rows[0]["conversations"][2] == {"from": "human", "value": "What are they doing?<image>"}
    assert rows[0]["images"] == ["src/mllm_demo_data/1.jpg", "src/mllm_demo_data/1.jpg"]  # relative to dataset_dir
    assert json.loads(info.read_text())["mllm"]["columns"] == {"messages": "conversations", "images": "images"}
    second = tmp_path / "ds" / "again.json"
    vlmdata.convert(str(first), str(second), to="sharegpt", from_format="sharegpt", dataset_info=str(info))
    assert json.loads(second.read_text()) == rows
    assert set(json.loads(info.read_text())) == {"mllm", "again"}


# --- reading rules ------------------------------------------------------------------------------


def test_placeholder_counts_must_match_exactly(tmp_path: Path):
    rows = [
        convo(("human", "<image><image>two tags"), ("gpt", "a"), images=["a.png"]),  # surplus tag
        convo(("human", "no tag"), ("gpt", "a"), images=["a.png"]),  # no auto-insertion
        convo(("human", "q"), ("gpt", "<video>"), videos=["v.mp4", "w.mp4"]),  # assistant tags count too
        convo(("human", "q<image>"), ("gpt", "a"), images="a.png"),  # a single value is wrapped
    ]
    report = vlmdata.convert(
        str(write_json(tmp_path / "d.json", rows)), str(tmp_path / "o.jsonl"), to="swift", from_format="sharegpt"
    )
    assert [r.error for r in report.rejections] == [
        "2 <image> tag(s) but 1 image(s) in the record",
        "0 <image> tag(s) but 1 image(s) in the record",
        "1 <video> tag(s) but 2 video(s) in the record",
    ]
    assert report.written == 1
    assert read_jsonl(tmp_path / "o.jsonl")[0]["images"] == [str(tmp_path / "a.png")]


def test_reader_rejects_rows_llamafactory_skips(tmp_path: Path):
    rows = [
        convo(("human", "a"), ("gpt", "b"), ("human", "c")),  # odd count
        convo(("gpt", "a"), ("human", "b")),  # answer first
        convo(("human", "a"), ("system", "s")),  # system not first
        convo(("user", "a"), ("gpt", "b")),  # not a tag of this layout
        convo(("system", "s"), ("human", "a"), ("function_call", "f"), ("observation", "o"), ("gpt", "b")),
    ]
    report = vlmdata.convert(
        str(write_json(tmp_path / "d.json", rows)), str(tmp_path / "o.jsonl"), to="swift", from_format="sharegpt"
    )
    assert report.rejected == 4 and report.written == 1
    errors = [r.error for r in report.rejections]
    assert "Invalid message count" in errors[0] and "ends with a 'user' turn" in errors[0]
    assert "Invalid role tag" in errors[1]
    assert "only allowed first" in errors[2]
    assert "from='user'" in errors[3]
    roles = [m["role"] for m in read_jsonl(tmp_path / "o.jsonl")[0]["messages"]]
    assert roles == ["system", "user", "tool_call", "tool_response", "assistant"]


def test_custom_columns_and_tags_from_dataset_info(tmp_path: Path):
    make_image(tmp_path / "ds" / "media" / "a.png", SIZE)
    rows = [
        {
            "dialog": [{"speaker": "U", "text": "<image>Where is the cat?"}, {"speaker": "A", "text": "There."}],
            "pics": ["media/a.png"],
            "sys": "Be brief.",
            "funcs": "[]",
            "source": "web",
        }
    ]
    data = write_json(tmp_path / "ds" / "sub" / "d.json", rows)  # media resolve under dataset_dir, not sub/
    info = tmp_path / "ds" / "dataset_info.json"
    entry = {
        "file_name": "sub/d.json",
        "formatting": "sharegpt",
        "columns": {"messages": "dialog", "images": "pics", "system": "sys", "tools": "funcs"},
        "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "U", "assistant_tag": "A"},
    }
    info.write_text(json.dumps({"mine": entry}))
    (s,) = vlmdata.read(str(data), format="sharegpt", dataset_info=str(info))  # the only sharegpt entry
    assert [m.role for m in s.messages] == ["system", "user", "assistant"]
    assert s.messages[0].text() == "Be brief."
    assert s.images[0].resolved == str(tmp_path / "ds" / "media" / "a.png")
    assert s.extra == {"source": "web", "tools": "[]"}
    # an entry's tags replace all defaults: its system_tag is unset, so a system message is invalid
    rows[0]["dialog"].insert(0, {"speaker": "system", "text": "S"})
    write_json(data, rows)
    with pytest.raises(RecordError, match="speaker='system'"):
        list(vlmdata.read(str(data), format="sharegpt", dataset_info=str(info), dataset_name="mine"))
    with pytest.raises(VlmdataError, match="no entry 'other'"):
        list(vlmdata.read(str(data), format="sharegpt", dataset_info=str(info), dataset_name="other"))


def test_grounding_read_from_qwen_and_internvl_written_as_qwen_0_1000(tmp_path: Path):
    make_image(tmp_path / "a.png", SIZE)
    rows = [
        convo(
            ("human", "<image>Find <ref>the cat</ref>"),
            ("gpt", "<ref>the cat</ref><box>[[100, 100, 500, 600]]</box>"),
            images=["a.png"],
        ),
        convo(
            ("human", "<image>Find it"),
            ("gpt", "<|object_ref_start|>it<|object_ref_end|><|box_start|>(100,100),(500,600)<|box_end|>"),
            images=["a.png"],
        ),
    ]
    src = write_json(tmp_path / "d.json", rows)
    samples = list(vlmdata.read(str(src), format="sharegpt"))
    for s in samples:
        box = s.messages[1].parts[1]
        assert isinstance(box, Boxes) and box.boxes[0] == Box(100, 100, 500, 600, Frame.NORM1000)
    out = tmp_path / "o.json"
    assert vlmdata.convert(str(src), str(out), to="sharegpt", from_format="sharegpt").ok
    answers = [r["conversations"][1]["value"] for r in json.loads(out.read_text())]
    assert answers == [
        "<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(100,100),(500,600)<|box_end|>",
        "<|object_ref_start|>it<|object_ref_end|><|box_start|>(100,100),(500,600)<|box_end|>",
    ]


def test_detected_as_sharegpt_by_its_plural_media_lists(tmp_path: Path):
    rows = [convo(("human", "<image>q"), ("gpt", "a"), images=["a.png"])]
    src = write_json(tmp_path / "d.json", rows)
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift")
    assert report.input_format == "sharegpt" and report.ok


# --- writing rules ------------------------------------------------------------------------------


def sample(*messages: Message, images: int = 0) -> Sample:
    return Sample(list(messages), [MediaRef(f"/d/{k}.png", f"/d/{k}.png") for k in range(images)])


def test_writer_refuses_rows_llamafactory_would_skip(tmp_path: Path):
    user = Message("user", [Text("q")])
    answer = Message("assistant", [Text("a")])
    # refused by the write-time check with LLaMA-Factory's role-order rule (VD112)
    with pytest.raises(RecordError, match=r"^VD112 3 turns .* an odd number.*'Invalid message count'.*skips the row"):
        vlmdata.write([sample(user, answer, Message("user", [Text("more")]))], str(tmp_path / "o.json"), "sharegpt")
    with pytest.raises(RecordError, match=r"^VD112 conversations\[0\] is an assistant turn.*'Invalid role tag'"):
        vlmdata.write([sample(answer, user)], str(tmp_path / "o.json"), "sharegpt")
    with pytest.raises(RecordError, match=r"^VD112 there is no user/assistant turn"):
        vlmdata.write([sample(Message("system", [Text("s")]))], str(tmp_path / "o.json"), "sharegpt")
    assert not (tmp_path / "o.json").exists()


def test_writer_refuses_media_tag_mismatch_and_tags_in_the_system_prompt(tmp_path: Path):
    user = Message("user", [Text("q")])
    answer = Message("assistant", [Text("a")])
    # refused by the write-time check, with a rule code (LLaMA-Factory's reader refuses it too: VD002)
    with pytest.raises(RecordError, match=r"^VD101 0 <image> tags in the messages but 1 image"):
        vlmdata.write([sample(user, answer, images=1)], str(tmp_path / "o.json"), "sharegpt")
    system = Message("system", [ImageSlot(0)])
    with pytest.raises(RecordError, match=r"^VD101 0 <image> tags in the messages but 1 image"):
        vlmdata.write([sample(system, user, answer, images=1)], str(tmp_path / "o.json"), "sharegpt")


def test_swift_tool_turns_system_and_tools_column(tmp_path: Path):
    row = {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "call f"},
            {"role": "tool_call", "content": '{"name": "f"}'},
            {"role": "tool_response", "content": "42"},
            {"role": "assistant", "content": "It is 42."},
        ],
        "tools": '[{"name": "f"}]',
    }
    src = write_jsonl(tmp_path / "s.jsonl", [row])
    out = tmp_path / "o.jsonl"  # .jsonl -> JSONL
    info = tmp_path / "dataset_info.json"
    assert vlmdata.convert(str(src), str(out), to="sharegpt", dataset_info=str(info)).ok
    (rec,) = read_jsonl(out)
    assert [t["from"] for t in rec["conversations"]] == ["system", "human", "function_call", "observation", "gpt"]
    assert rec["tools"] == row["tools"]
    assert json.loads(info.read_text())["o"]["columns"] == {"messages": "conversations", "tools": "tools"}
    back = tmp_path / "back.jsonl"
    assert vlmdata.convert(str(out), str(back), to="swift", from_format="sharegpt", dataset_info=str(info)).ok
    assert read_jsonl(back) == [row]


def test_dataset_info_written_and_updated_without_clobbering(tmp_path: Path):
    make_image(tmp_path / "ds" / "img" / "a.png", SIZE)
    other = {"file_name": "other.json", "formatting": "sharegpt", "columns": {"messages": "messages"}}
    stale = {"hf_hub_url": "someone/old", "formatting": "alpaca", "ranking": True, "num_samples": 100}
    info = tmp_path / "ds" / "dataset_info.json"
    info.write_text(json.dumps({"other": other, "train": stale, "after": {"file_name": "x.json"}}))
    pair = [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}]
    rows = [
        {"messages": pair, "images": ["a.png"]},
        {"messages": [{"role": "user", "content": "text only"}, {"role": "assistant", "content": "a"}]},
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "ds" / "train.json"
    report = vlmdata.convert(
        str(src), str(out), to="sharegpt", root=str(tmp_path / "ds" / "img"), dataset_info=str(info)
    )
    assert report.ok and report.side_files == [str(info)]
    data = json.loads(info.read_text())
    assert list(data) == ["other", "train", "after"]  # order and other entries kept
    assert data["other"] == other and data["after"] == {"file_name": "x.json"}
    assert data["train"] == {
        "num_samples": 100,  # a user's setting is kept; the hub url and ranking would misread the file
        "file_name": "train.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "images": "images"},
        "tags": DEFAULT_TAGS,
    }
    # relative to LLaMA-Factory's media_dir, which defaults to the dataset_info folder (not to --root)
    assert json.loads(out.read_text())[0]["images"] == ["img/a.png"]
    # a second output under another name, in a sub folder, JSONL: a new entry beside the others
    elsewhere = str(make_image(tmp_path / "elsewhere" / "b.png", SIZE))
    src2 = write_jsonl(tmp_path / "in2.jsonl", [{"messages": pair, "images": [elsewhere]}])
    val = tmp_path / "ds" / "sub" / "val.jsonl"
    vlmdata.convert(str(src2), str(val), to="sharegpt", dataset_info=str(info), dataset_name="v")
    data = json.loads(info.read_text())
    assert list(data) == ["other", "train", "after", "v"]
    assert data["v"]["file_name"] == "sub/val.jsonl"
    assert read_jsonl(val)[0]["images"] == [elsewhere]  # not under dataset_dir: absolute


def test_images_written_relative_to_the_dataset_info_folder_without_root(tmp_path: Path):
    make_image(tmp_path / "ds" / "img" / "a.png", SIZE)
    row = {"messages": [{"role": "user", "content": "<image>q"}, {"role": "assistant", "content": "a"}]}
    src = write_jsonl(tmp_path / "in.jsonl", [{**row, "images": [str(tmp_path / "ds" / "img" / "a.png")]}])
    out = tmp_path / "ds" / "t.json"
    vlmdata.convert(str(src), str(out), to="sharegpt", dataset_info=str(tmp_path / "ds" / "dataset_info.json"))
    assert json.loads(out.read_text())[0]["images"] == ["img/a.png"]


def test_check_options():
    codec = get_codec("sharegpt")
    with pytest.raises(VlmdataError, match="--meta"):
        codec.check_options(Options(meta="m.json"))
    with pytest.raises(VlmdataError, match="pass both"):
        codec.check_options(Options(dataset_name="x"))
    with pytest.raises(VlmdataError, match=r"name the file dataset_info\.json"):
        codec.check_options(Options(dataset_info="info.json"))
    codec.check_options(Options(dataset_info="/nonexistent/dataset_info.json", dataset_name="x"))


def test_broken_dataset_info_refused_before_any_work(tmp_path: Path):
    info = tmp_path / "dataset_info.json"
    info.write_text('{"a": {"file_name": "a.json"},}')
    src = write_jsonl(tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(VlmdataError, match="not valid JSON"):
        vlmdata.convert(str(src), str(tmp_path / "o.json"), to="sharegpt", dataset_info=str(info))
    assert not (tmp_path / "o.json").exists()


def test_cli_dataset_info(tmp_path: Path):
    src = write_jsonl(
        tmp_path / "in.jsonl", [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    )
    info = tmp_path / "data" / "dataset_info.json"
    out = f"{tmp_path / 'data'}/"
    args = ["convert", str(src), "--to", "sharegpt", "-o", out, "--dataset-info", str(info), "--dataset-name", "demo"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert json.loads(info.read_text())["demo"]["file_name"] == "in.json"
    rec = json.loads((tmp_path / "data" / "in.json").read_text())[0]
    assert rec["conversations"][1] == {"from": "gpt", "value": "a"}


# --- round trips --------------------------------------------------------------------------------


EXT = {"swift": ".jsonl", "internvl": ".jsonl", "llava": ".json"}


@pytest.mark.parametrize("fmt", ["swift", "internvl", "llava"])
def test_round_trips_keep_text_images_and_boxes(tmp_path: Path, fmt: str):
    root = tmp_path / "img"
    make_image(root / "a.png", SIZE)
    expected = [summary(s) for s in canonical(root)]
    start = tmp_path / "start.json"
    vlmdata.write(canonical(root), str(start), "sharegpt", root=str(root))
    # sharegpt -> fmt -> sharegpt
    mid = tmp_path / f"mid{EXT[fmt]}"
    back = tmp_path / "back.json"
    assert vlmdata.convert(str(start), str(mid), to=fmt, from_format="sharegpt", root=str(root)).ok
    assert vlmdata.convert(str(mid), str(back), to="sharegpt", from_format=fmt, root=str(root)).ok
    # fmt -> sharegpt
    own = tmp_path / f"own{EXT[fmt]}"
    vlmdata.write(canonical(root), str(own), fmt, root=str(root))
    direct = tmp_path / "direct.json"
    assert vlmdata.convert(str(own), str(direct), to="sharegpt", from_format=fmt, root=str(root)).ok
    for path, path_fmt in ((mid, fmt), (back, "sharegpt"), (direct, "sharegpt")):
        got = list(vlmdata.read(str(path), format=path_fmt, root=str(root)))
        assert [s.images[0].resolved for s in got] == [str(root / "a.png")] * 3
        for g, e in zip(got, expected, strict=True):
            gs = summary(g)
            assert [(r, t) for r, t, _ in gs] == [(r, t) for r, t, _ in e]
            for (_, _, gb), (_, _, eb) in zip(gs, e, strict=True):
                assert len(gb) == len(eb)
                for x, y in zip(gb, eb, strict=True):
                    assert x == pytest.approx(y, abs=0.1)
    # the sharegpt text itself: Qwen2-VL tokens in 0-1000 of the 200x100 image
    rows = json.loads(back.read_text())
    box = "<|box_start|>(100,100),(500,600)<|box_end|>"
    if fmt == "llava":  # LLaVA has no ref markup: the ref comes back as plain text
        assert rows[1]["conversations"][1]["value"] == "the cat " + box
    else:
        assert rows[1]["conversations"][1]["value"] == "<|object_ref_start|>the cat<|object_ref_end|>" + box
        assert rows == json.loads(start.read_text())


def test_converting_written_file_again_gives_identical_records(tmp_path: Path):
    root = tmp_path / "img"
    make_image(root / "a.png", SIZE)
    first = tmp_path / "first.json"
    vlmdata.write(canonical(root), str(first), "sharegpt", root=str(root))
    second = tmp_path / "second.json"
    third = tmp_path / "third.jsonl"
    assert vlmdata.convert(str(first), str(second), to="sharegpt", root=str(root)).ok  # detected
    assert vlmdata.convert(str(second), str(third), to="sharegpt", from_format="sharegpt", root=str(root)).ok
    assert json.loads(second.read_text()) == json.loads(first.read_text()) == read_jsonl(third)
    assert first.read_bytes() == second.read_bytes()


def test_system_column_and_frame_list_videos(tmp_path: Path):
    rows = [
        convo(("human", "<video>q"), ("gpt", "a"), system="Be brief.", videos=[["f/1.jpg", "f/2.jpg"]]),
        convo(("system", "S"), ("human", "q"), ("gpt", "a"), system="Other."),  # the message would win
    ]
    report = vlmdata.convert(
        str(write_json(tmp_path / "d.json", rows)), str(tmp_path / "o.json"), to="sharegpt", from_format="sharegpt"
    )
    assert report.written == 1 and "different 'system' column" in report.rejections[0].error
    (rec,) = json.loads((tmp_path / "o.json").read_text())
    assert rec["conversations"][0] == {"from": "system", "value": "Be brief."}
    # no dataset_info/--media-dir: LLaMA-Factory's media_dir is unknown, so the paths are absolute
    assert rec["videos"] == [[str(tmp_path / "f" / "1.jpg"), str(tmp_path / "f" / "2.jpg")]]
