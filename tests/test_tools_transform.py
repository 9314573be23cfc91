"""vlmdata transform / filter: the transforms, the filters, the stream engine and the commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_image, read_jsonl, write_jsonl
from vlmdata.errors import VlmdataError
from vlmdata.schemas.sample import Box, Boxes, Frame, ImageSlot, MediaRef, Message, Origin, Ref, Sample, Text
from vlmdata.tools import filters as F
from vlmdata.tools import transforms as T
from vlmdata.tools.stream import Drop, Events, run_stream
from vlmdata.tools.transform_cli import TRANSFORM_COMMANDS, filter_, transform

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
SWIFT = str(SAMPLE_DATA / "swift" / "train.jsonl")
IMAGES = str(SAMPLE_DATA / "images")


class Recorder(Events):
    def __init__(self) -> None:
        self.drops: list[tuple[object, Drop]] = []
        self.merges = 0
        self.splits: list[int] = []

    def drop(self, sample, drop):
        self.drops.append((sample.id, drop))

    def merged(self, sample, into):
        self.merges += 1

    def split(self, sample, parts):
        self.splits.append(parts)


def qa(q: str, a: str, image: str | None = "/img/a.jpg", sid: object = None, system: str | None = None) -> Sample:
    msgs = []
    if system is not None:
        msgs.append(Message("system", [Text(system)]))
    user = [ImageSlot(0), Text("\n" + q)] if image else [Text(q)]
    msgs += [Message("user", user), Message("assistant", [Text(a)])]
    images = [MediaRef(image, image)] if image else []
    return Sample(msgs, images, id=sid, origin=Origin("x.jsonl", 1, 0, sid))


def turns(n: int, images: int = 1) -> Sample:
    msgs = []
    for k in range(n):
        parts = [ImageSlot(k)] if k < images else []
        msgs.append(Message("user", [*parts, Text(f"q{k}")]))
        msgs.append(Message("assistant", [Text(f"a{k}")]))
    return Sample(msgs, [MediaRef(f"/i{k}.jpg", f"/i{k}.jpg") for k in range(images)], id="s")


# --- transforms ------------------------------------------------------------------------------


def test_merge_consecutive_keeps_first_id_and_one_tag():
    ev = Recorder()
    out = list(T.merge_by_image([qa("q1", "a1", sid=1), qa("q2", "a2", sid=2), qa("q3", "a3", "/img/b.jpg", 3)], ev))
    assert [s.id for s in out] == [1, 3]
    first = out[0]
    assert [m.role for m in first.messages] == ["user", "assistant", "user", "assistant"]
    assert first.messages[2].parts == [Text("q2")]  # tag and its newline gone from the later turn
    assert sum(isinstance(p, ImageSlot) for m in first.messages for p in m.parts) == 1
    assert isinstance(first.messages[0].parts[0], ImageSlot)
    assert ev.merges == 1


def test_merge_consecutive_only_neighbours_all_merges_across():
    data = lambda: [qa("q1", "a1", sid=1), qa("x", "y", "/img/b.jpg", 2), qa("q3", "a3", sid=3)]  # noqa: E731
    assert [s.id for s in T.merge_by_image(data())] == [1, 2, 3]
    out = list(T.merge_by_image(data(), scope="all"))
    assert [s.id for s in out] == [1, 2]
    assert len(out[0].messages) == 4


def test_merge_needs_equal_system_and_images():
    out = list(T.merge_by_image([qa("q", "a", sid=1), qa("q", "a", sid=2, system="be brief")], scope="all"))
    assert len(out) == 2
    no_image = [qa("q", "a", None, 1), qa("q", "a", None, 2)]
    assert len(list(T.merge_by_image(no_image))) == 2
    with pytest.raises(ValueError):
        list(T.merge_by_image([], scope="some"))


def test_split_turns_ids_and_carried_image_tag():
    ev = Recorder()
    out = list(T.split_turns([turns(5)], ev, max_turns=2))
    assert [s.id for s in out] == ["s-1", "s-2", "s-3"]
    assert ev.splits == [3]
    for s in out:
        assert isinstance(s.messages[0].parts[0], ImageSlot)
        assert len(s.images) == 1
    assert [m.text() for m in out[1].messages] == ["<image>q2", "a2", "q3", "a3"]
    short = turns(2)
    assert list(T.split_turns([short], max_turns=2)) == [short]


def test_split_turns_renumbers_media_and_keeps_system():
    s = turns(4, images=4)
    s.messages.insert(0, Message("system", [Text("sys")]))
    s.messages[-1].parts.append(Boxes((Box(1, 2, 3, 4, Frame.PIXEL),), image_index=3))
    out = list(T.split_turns([s], max_turns=2))
    assert all(p.messages[0].role == "system" for p in out)
    assert [m.path for m in out[0].images] == ["/i0.jpg", "/i1.jpg"]
    second = out[1]
    # images 0 and 1 are carried (tags at the start of the first user turn), 2 and 3 follow
    assert [m.path for m in second.images] == ["/i0.jpg", "/i1.jpg", "/i2.jpg", "/i3.jpg"]
    first_user = second.messages[1]
    assert [p.index for p in first_user.parts if isinstance(p, ImageSlot)] == [0, 1, 2]
    assert second.messages[-1].parts[-1].image_index == 3
    with pytest.raises(ValueError):
        list(T.split_turns([s], max_turns=0))


def test_split_drops_media_not_used_in_part():
    s = turns(4, images=1)
    s.images.append(MediaRef("/late.jpg", "/late.jpg"))
    s.messages[6].parts.insert(0, ImageSlot(1))  # second image first shown in round 4
    out = list(T.split_turns([s], max_turns=2))
    assert [m.path for m in out[0].images] == ["/i0.jpg"]
    assert [m.path for m in out[1].images] == ["/i0.jpg", "/late.jpg"]


def test_dedup_exact_uses_media_bytes(tmp_path):
    a = make_image(tmp_path / "a.png", (8, 8))
    b = tmp_path / "b.png"
    b.write_bytes(a.read_bytes())  # same bytes, other name
    c = make_image(tmp_path / "c.jpg", (9, 9))
    ev = Recorder()
    data = [qa("q", "a", str(a), 1), qa("q", "a", str(b), 2), qa("q", "a", str(c), 3), qa("Q", "a", str(a), 4)]
    out = list(T.dedup_exact(data, ev))
    assert [s.id for s in out] == [1, 3, 4]
    assert ev.drops[0][0] == 2 and ev.drops[0][1].filter == "dedup" and "x.jsonl" in ev.drops[0][1].reason


def test_dedup_near_normalises_text():
    data = [qa("What is it?", "A cat.", sid=1), qa("what  is it", "a CAT", sid=2), qa("what is it", "a dog", sid=3)]
    ev = Recorder()
    assert [s.id for s in T.dedup_near(data, ev)] == [1, 3]
    assert ev.drops[0][1].filter == "near-dedup"
    assert T.normalize_text("Ｈello,  World!") == "hello world"


def test_media_hasher_caches_and_hashes_missing_by_path(tmp_path):
    h = T.MediaHasher()
    img = make_image(tmp_path / "a.png", (4, 4))
    d1 = h(MediaRef("a.png", str(img)))
    img.write_bytes(b"changed")
    assert h(MediaRef("a.png", str(img))) == d1  # cached per path
    assert h(MediaRef("http://x/y.jpg")) == "path:http://x/y.jpg"


def test_reroot_relative_absolute_and_resolved():
    s = Sample(
        [Message("user", [ImageSlot(0), ImageSlot(1), Text("q")]), Message("assistant", [Text("a")])],
        [MediaRef("old/a.jpg", "/data/old/a.jpg"), MediaRef("/abs/old/b.jpg", "/abs/old/b.jpg")],
    )
    (out,) = T.reroot([s], rules=[T.parse_reroot("old/=new/"), T.parse_reroot("/abs/old=/mnt/new")])
    assert (out.images[0].path, out.images[0].resolved) == ("new/a.jpg", "/data/new/a.jpg")
    assert (out.images[1].path, out.images[1].resolved) == ("/mnt/new/b.jpg", "/mnt/new/b.jpg")
    s2 = Sample([], [MediaRef("a.jpg", "/data/a.jpg")])
    (out2,) = T.reroot([s2], rules=[("/data", "/srv")])  # matches the resolved path only
    assert (out2.images[0].path, out2.images[0].resolved) == ("a.jpg", "/srv/a.jpg")
    with pytest.raises(ValueError):
        T.parse_reroot("nothing")


def test_drop_system_never_reorders():
    s = qa("q", "a", system="sys")
    (out,) = T.drop_system([s])
    assert [m.role for m in out.messages] == ["user", "assistant"]


# --- filters ---------------------------------------------------------------------------------


def test_repetition_filter():
    looped = "The cat sat on the mat. " * 10
    check = F.repetition(0.3)
    drop = check(qa("q", looped))
    assert drop is not None and drop.filter == "repetition" and drop.score > 0.8
    assert check(qa("q", "A yellow circle above a purple bar on a dark grey background, next to a square.")) is None
    assert check(qa("q", "yes yes yes")) is None  # too short to judge
    lines = "\n".join(["- item one", "- item one", "- item one", "- item two"])
    assert F.repetition_score(lines) == pytest.approx(0.5)
    assert F.repetition_score("猫" * 30) > 0.9  # CJK characters are words


def test_repetition_ignores_refs_as_boxes():
    parts = []
    for k in range(20):
        parts += [Ref("car"), Boxes((Box(k, k, k + 1, k + 1, Frame.PIXEL),))]
    s = Sample([Message("user", [Text("find cars")]), Message("assistant", parts)])
    # refs are text ("carcarcar..." is one word), coordinates are not
    assert F.repetition(0.3)(s) is None


def test_length_filter():
    check = F.length(min_chars=3, max_chars=10)
    assert check(qa("q", "abcdef")) is None
    long = check(qa("q", "x" * 11))
    assert long is not None and long.filter == "max-chars" and long.score == 11
    short = check(qa("q", "ab"))
    assert short is not None and short.filter == "min-chars"


def test_empty_filter():
    check = F.empty()
    assert check(qa("q", "fine")) is None
    for answer in ["", "  ", "N/A", "<image>", "none.", "..."]:
        drop = check(qa("q", answer))
        assert drop is not None and drop.filter == "empty", answer
    no_answer = Sample([Message("user", [Text("q")])])
    assert check(no_answer).score == 1.0
    boxes_only = Sample([Message("user", [Text("q")]), Message("assistant", [Boxes((Box(1, 2, 3, 4, Frame.PIXEL),))])])
    assert check(boxes_only) is None


def test_garbage_filter():
    check = F.garbage(0.1)
    assert check(qa("q", "clean text\nwith lines\t")) is None
    drop = check(qa("q", "\ufffd\ufffd\x00\x01abc"))
    assert drop is not None and drop.filter == "garbage" and drop.score == pytest.approx(4 / 16)
    assert F.garbage_score("") == 0.0


# --- the engine ------------------------------------------------------------------------------


def _images(tmp_path: Path) -> Path:
    make_image(tmp_path / "img" / "a.png", (16, 16))
    make_image(tmp_path / "img" / "b.jpg", (20, 10))
    return tmp_path / "img"


def _row(q: str, a: str, image: str = "a.png", sid: str | None = None, system: str | None = None) -> dict:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": "user", "content": "<image>" + q}, {"role": "assistant", "content": a}]
    row: dict = {"messages": msgs, "images": [image]}
    if sid:
        row["id"] = sid
    return row


def test_engine_counts_add_up_with_bad_records(tmp_path):
    root = _images(tmp_path)
    src = tmp_path / "in.jsonl"
    rows = [_row("q1", "a1", sid="1"), _row("q2", "a2", sid="2"), _row("q1", "a1", sid="3"), _row("q", "b", "b.jpg")]
    src.write_text(
        "\n".join(json.dumps(r) for r in rows[:2])
        + '\n{"messages": []}\nnot json\n'
        + "\n".join(json.dumps(r) for r in rows[2:])
        + "\n"
    )
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    report = run_stream(
        str(src),
        str(out),
        transforms=[T.dedup_exact, T.merge_by_image],
        filters=[F.length(max_chars=1)],
        rejects=str(rej),
        root=str(root),
        from_format="swift",
    )
    assert report.records_in == 6 and report.rejected == 2
    assert report.dropped == {"dedup": 1, "max-chars": 1} and report.merged == 1
    assert report.balanced and report.written == 1
    entries = read_jsonl(rej)
    assert len(entries) == 4
    by_filter = {e.get("filter"): e for e in entries}
    assert by_filter["dedup"]["record"]["id"] == "3"  # the original record, as read
    assert by_filter["max-chars"]["score"] == 4
    assert by_filter["max-chars"]["record"]["id"] == "1"
    assert "__vlmdata_raw__" not in out.read_text()
    assert all("error" in e and "line" in e for e in entries)
    written = read_jsonl(out)
    assert written[0]["images"] == ["b.jpg"]  # relative paths stay relative in the same format


def test_engine_to_other_format_and_json_layout(tmp_path):
    root = _images(tmp_path)
    src = write_jsonl(tmp_path / "in.jsonl", [_row("q1", "a1", sid="1"), _row("q2", "a2", sid="2")])
    out = tmp_path / "out.jsonl"
    report = run_stream(str(src), str(out), to="internvl", transforms=[T.merge_by_image], root=str(root))
    assert report.written == 1 and report.output_format == "internvl" and report.balanced
    row = read_jsonl(out)[0]
    assert row["image"] == "a.png" and len(row["conversations"]) == 4
    assert row["conversations"][2]["value"] == "q2"


def test_engine_errors(tmp_path):
    with pytest.raises(VlmdataError, match="no such file"):
        run_stream(str(tmp_path / "missing.jsonl"), str(tmp_path / "o.jsonl"))
    src = write_jsonl(tmp_path / "in.jsonl", [_row("q", "a")])
    with pytest.raises(VlmdataError, match="overwrite the input"):
        run_stream(str(src), str(src))
    with pytest.raises(VlmdataError, match="same file"):
        run_stream(str(src), str(tmp_path / "o.jsonl"), rejects=str(tmp_path / "o.jsonl"))
    broken = tmp_path / "broken.json"
    broken.write_text('[{"messages": [}')
    with pytest.raises(VlmdataError, match="JSON syntax error"):
        run_stream(str(broken), str(tmp_path / "o.jsonl"), from_format="swift")
    assert not (tmp_path / "o.jsonl").exists()


def test_engine_on_sample_data(tmp_path):
    out = tmp_path / "out.jsonl"
    report = run_stream(
        SWIFT,
        str(out),
        transforms=[T.dedup_exact, T.dedup_near, _split1],
        root=IMAGES,
    )
    assert report.records_in == 5 and report.split_added == 1 and report.written == 6 and report.balanced
    ids = [r["id"] for r in read_jsonl(out)]
    assert "multi-turn-0004-1" in ids and "multi-turn-0004-2" in ids
    assert read_jsonl(out)[3]["messages"][0]["content"].startswith("<image>")


def _split1(samples, events):
    return T.split_turns(samples, events, max_turns=1)


# --- the commands ----------------------------------------------------------------------------


def test_commands_exported():
    assert [c.name for c in TRANSFORM_COMMANDS] == ["transform", "filter"]


def test_cli_transform_sample_data(tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        transform,
        [
            SWIFT,
            "--root",
            IMAGES,
            "-o",
            str(out),
            "--merge-by-image",
            "--merge-scope",
            "all",
            "--max-turns",
            "10",
            "--dedup",
            "--near-dedup",
            "--drop-system",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records_in"] == 5 and report["merged"] == 1 and report["written"] == 4
    rows = read_jsonl(out)
    assert rows[0]["id"] == "caption-0001" and len(rows[0]["messages"]) == 4  # system-0005 merged once dropped
    assert "5 in = 4 written + 0 rejected + 1 merged" in result.stderr


def test_cli_transform_reroot(tmp_path):
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        transform, [SWIFT, "--root", IMAGES, "-o", str(out), "--reroot", "shapes_=pics/shapes_"]
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(out)[0]["images"] == ["pics/shapes_256x256.jpg"]
    # box frames need the image: a rerooted path that does not exist here is rejected with its reason
    result = CliRunner().invoke(
        transform, [SWIFT, "--root", IMAGES, "-o", str(out), "--to", "internvl", "--reroot", "shapes_=pics/shapes_"]
    )
    assert result.exit_code == 1 and "not found" in result.stderr
    assert "5 in = 3 written + 2 rejected" in result.stderr
    bad = CliRunner().invoke(transform, [SWIFT, "-o", str(out), "--reroot", "nonsense"])
    assert bad.exit_code == 2 and "OLD=NEW" in bad.stderr


def test_cli_filter_rejects_file(tmp_path):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            _row("q", "fine answer", sid="ok"),
            _row("q", "la la la la " * 20, sid="loop"),
            _row("q", "N/A", sid="na"),
            _row("q", "x" * 100, sid="long"),
        ],
    )
    _images(tmp_path)
    kept, dropped = tmp_path / "kept.jsonl", tmp_path / "dropped.jsonl"
    result = CliRunner().invoke(
        filter_,
        [
            str(src),
            "--root",
            str(tmp_path / "img"),
            "-o",
            str(kept),
            "--rejects",
            str(dropped),
            "--repetition",
            "0.3",
            "--max-chars",
            "60",
            "--garbage",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(kept)] == ["ok"]
    entries = {e["id"]: e for e in read_jsonl(dropped)}
    assert entries["loop"]["filter"] == "max-chars"  # length runs before repetition
    assert entries["na"]["filter"] == "empty" and entries["long"]["score"] == 100
    assert entries["na"]["record"]["messages"][1]["content"] == "N/A"
    assert "4 in = 1 written + 0 rejected + 1 dropped by empty + 2 dropped by max-chars" in result.stderr


def test_cli_filter_repetition_only(tmp_path):
    _images(tmp_path)
    src = write_jsonl(tmp_path / "in.jsonl", [_row("q", "la la la la " * 20, sid="loop"), _row("q", "ok", sid="ok")])
    kept = tmp_path / "kept.jsonl"
    result = CliRunner().invoke(
        filter_, [str(src), "--root", str(tmp_path / "img"), "-o", str(kept), "--repetition", "0.3"]
    )
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in read_jsonl(kept)] == ["ok"]
    assert "dropped by repetition" in result.stderr


def test_cli_bad_input(tmp_path):
    missing = CliRunner().invoke(filter_, [str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr and "Traceback" not in missing.output
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
        '{"messages": "oops"}\n'
    )
    out, rej = tmp_path / "o.jsonl", tmp_path / "r.jsonl"
    result = CliRunner().invoke(filter_, [str(src), "--from", "swift", "-o", str(out), "--rejects", str(rej)])
    assert result.exit_code == 1, result.output
    assert "rejected" in result.stderr and "2 in = 1 written + 1 rejected" in result.stderr
    (entry,) = read_jsonl(rej)
    assert entry["line"] == 2 and entry["record"] == {"messages": "oops"} and "filter" not in entry
    assert os.path.exists(out)
