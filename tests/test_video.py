"""Videos through Sample: files, InternVL frame folders, ms-swift frame lists, Frame-i images."""

from __future__ import annotations

from pathlib import Path

import vlmdata

from .conftest import make_image, read_jsonl, write_jsonl


def frames(folder: Path, names: list[str]) -> list[Path]:
    return [make_image(folder / n, (8, 8)) for n in names]


def test_internvl_frame_folder_to_swift_frame_list_in_natural_order(tmp_path: Path):
    frames(tmp_path / "clip", ["f1.jpg", "f10.jpg", "f2.jpg"])
    rows = [
        {
            "video": "clip/",
            "conversations": [{"from": "human", "value": "<video>\nWhat happens?"}, {"from": "gpt", "value": "a"}],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = vlmdata.convert(str(src), str(tmp_path / "s.jsonl"), to="swift", root=str(tmp_path))
    assert report.ok
    rec = read_jsonl(tmp_path / "s.jsonl")[0]
    assert rec["videos"] == [[str(tmp_path / "clip" / n) for n in ("f1.jpg", "f2.jpg", "f10.jpg")]]
    assert rec["messages"][0]["content"] == "<video>\nWhat happens?"
    # and back: the frame list is exactly the folder, so InternVL gets the folder again
    report = vlmdata.convert(str(tmp_path / "s.jsonl"), str(tmp_path / "i.jsonl"), to="internvl", root=str(tmp_path))
    assert report.ok
    assert read_jsonl(tmp_path / "i.jsonl")[0]["video"] == "clip/"


def test_partial_frame_list_needs_frame_images(tmp_path: Path):
    paths = frames(tmp_path / "clip", ["a.jpg", "b.jpg", "c.jpg"])
    rows = [
        {
            "messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "x"}],
            "videos": [[str(paths[0]), str(paths[2])]],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", root=str(tmp_path))
    assert report.rejected == 1 and "--internvl-video images" in report.rejections[0].fix
    report = vlmdata.convert(
        str(src), str(tmp_path / "o.jsonl"), to="internvl", root=str(tmp_path), internvl_video="images"
    )
    rec = read_jsonl(tmp_path / "o.jsonl")[0]
    assert report.ok
    assert rec["image"] == ["clip/a.jpg", "clip/c.jpg"]
    # InternVL's own expansion of '<video>\n' (Frame-1 with a hyphen, docs/consumers.md#media-tags)
    assert rec["conversations"][0]["value"] == "Frame-1: <image>\nFrame-2: <image>\nWhat happens?"


def test_frame_folder_as_images_consumes_the_tag_newline(tmp_path: Path):
    frames(tmp_path / "clip", ["0.png", "1.png"])
    rows = [
        {
            "video": "clip/",
            "conversations": [{"from": "human", "value": "<video>\nDescribe."}, {"from": "gpt", "value": "a"}],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="internvl", root=str(tmp_path), internvl_video="images")
    rec = read_jsonl(tmp_path / "o.jsonl")[0]
    assert rec["conversations"][0]["value"] == "Frame-1: <image>\nFrame-2: <image>\nDescribe."
    assert (rec["width_list"], rec["height_list"]) == ([8, 8], [8, 8])


def test_missing_frame_folder_is_a_clear_rejection(tmp_path: Path):
    rows = [
        {
            "video": "nowhere/",
            "conversations": [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}],
        }
    ]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = vlmdata.convert(str(src), str(tmp_path / "o.jsonl"), to="swift", root=str(tmp_path))
    assert report.rejected == 1 and "frame folder 'nowhere/' cannot be listed" in report.rejections[0].error


def test_internvl_doc_video_record_keeps_its_tag(realdata: Path, tmp_path: Path):
    src = realdata / "internvl-doc-examples" / "chat_data_format_examples.jsonl"
    vlmdata.convert(str(src), str(tmp_path / "s.jsonl"), to="swift", root=str(tmp_path))
    rec = read_jsonl(tmp_path / "s.jsonl")[5]
    assert rec["videos"] == [str(tmp_path / "000001_000050" / "1066682446.mp4")]
    assert rec["messages"][0]["content"].startswith("<video>\nWrite an exhaustive depiction")
