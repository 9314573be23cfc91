"""One place per fact: options, counters and record locations are declared once and every user
(the CLI, the library, reports) follows the declaration."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click
import pytest

import vlmdata
from vlmdata.cli import convert as convert_command
from vlmdata.convert.codec import COUNTERS, OPTION_FIELDS, Options, Tally, option_choices
from vlmdata.convert.registry import FORMATS
from vlmdata.convert.report import ConvertReport, Rejection
from vlmdata.errors import VlmdataError
from vlmdata.schemas.sample import Origin
from vlmdata.validators.registry import Finding


def cli_options() -> dict[str, click.Option]:
    return {p.name: p for p in convert_command.params if isinstance(p, click.Option)}


def test_every_option_on_the_command_line_comes_from_its_declaration():
    params = cli_options()
    declared = [f for f in dataclasses.fields(Options) if f.metadata["cli"]]
    assert {f.name for f in declared} <= set(params)
    for f in declared:
        param = params[f.name]
        assert param.default == f.default, f.name
        choices = option_choices(f.name)
        if choices is not None:
            assert list(param.type.choices) == [str(c) for c in choices], f.name
    # spot checks written by hand from the formats' documentation
    assert params["meta_name"].opts == ["--name"]
    assert params["sizes"].opts == ["--no-sizes"] and params["sizes"].default is True
    assert list(params["qwen_model"].type.choices) == ["qwen2-vl", "qwen2.5-vl", "qwen3-vl"]
    assert params["max_pixels"].default == 12_845_056  # qwen-vl-utils MAX_PIXELS = 16384 * 28 * 28


def test_an_options_help_names_the_formats_that_declare_it():
    params = cli_options()
    assert params["meta"].help.endswith("[writing internvl]")
    assert params["coco_crowd"].help.endswith("[reading coco]")
    assert "[reading sharegpt; writing sharegpt]" in params["dataset_info"].help
    for name in OPTION_FIELDS:  # every codec-owned option is declared by at least one codec
        if name in ("root", "allow_outside_root", "fix_boxes", "read_dataset_info", "read_dataset_name"):
            continue
        assert any(name in c.read_options | c.write_options for c in FORMATS.values()), name


def test_library_values_outside_the_choices_are_refused(tmp_path: Path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}))
    with pytest.raises(VlmdataError, match="--hf-layout must be one of messages, prompt-completion, not 'chat'"):
        vlmdata.convert(str(src), str(tmp_path / "o.parquet"), to="hf", hf_layout="chat")
    with pytest.raises(VlmdataError, match=r"--meta is used writing InternVL.*use it with --to internvl"):
        vlmdata.convert(str(src), str(tmp_path / "o.json"), to="llava", meta=str(tmp_path / "m.json"))


def test_a_counter_is_merged_printed_and_reported_from_its_declaration():
    assert len(COUNTERS) >= 11
    a, b = Tally(), Tally()
    for k, name in enumerate(COUNTERS):
        setattr(a, name, k + 1)
        setattr(b, name, 10)
    a.merge(b)
    report = ConvertReport("in", "out", "swift", "internvl", tally=a)
    data = report.to_dict()
    notes = report.notes()
    for k, (name, meta) in enumerate(COUNTERS.items()):
        assert getattr(a, name) == k + 11
        assert data[meta["key"] or name] == k + 11
        assert meta["note"].format(n=k + 11) in notes
    assert data["clamped_coordinates"] == 11  # the JSON name kept from before the declarations


def test_one_location_format_for_every_message():
    expected = ["a.jsonl:3 (id=x)", "a.json[4]", "a.jsonl:3"]
    assert [Origin("a.jsonl", 3, 2, "x").where(), Origin("a.json", None, 4).where(), Origin("a.jsonl", 3).where()] == (
        expected
    )
    assert Rejection("a.jsonl", 3, 2, "x", "bad", "").where() == expected[0]
    assert Rejection("a.json", None, 4, None, "bad", "").where() == expected[1]
    assert Finding("VD1", "n", "error", "m", "a.jsonl", 3, 2, "x").where() == expected[0]


def test_validate_offers_every_budget_model_including_qwen3():
    from vlmdata.cli import validate as validate_command

    (model,) = [p for p in validate_command.params if p.name == "model"]
    assert "qwen3-vl" in model.type.choices and "llava-1.5" in model.type.choices


def test_the_qwen_token_syntax_has_one_name_and_its_alias(tmp_path: Path):
    """--qwen-boxes tokens and --qwen-boxes qwen write the same <|box_start|> tokens (qwen is the
    grounding module's name, tokens the flag's older value); train's box syntax maps the same way."""
    from vlmdata.convert.grounding import RENDER_BOXES, syntax_name
    from vlmdata.train.families import FAMILIES

    assert syntax_name("tokens") == syntax_name("qwen") == "qwen" and "qwen" in RENDER_BOXES
    assert FAMILIES["qwen2_vl"].box_syntax == "qwen"
    row = {
        "id": "a",
        "messages": [
            {"role": "user", "content": "<image>where?"},
            {"role": "assistant", "content": "<ref-object><bbox>"},
        ],
        "images": ["a.png"],
        "objects": {"ref": ["cat"], "bbox": [[20, 10, 100, 60]]},
    }
    from .conftest import make_image

    make_image(tmp_path / "a.png", (200, 100))
    (tmp_path / "in.jsonl").write_text(json.dumps(row) + "\n")
    outs = []
    for name in ("tokens", "qwen"):
        out = tmp_path / f"{name}.json"
        vlmdata.convert(str(tmp_path / "in.jsonl"), str(out), to="qwen", root=str(tmp_path), qwen_boxes=name)
        outs.append(json.loads(out.read_text()))
    assert outs[0] == outs[1]
    assert "<|box_start|>(100,100),(500,600)<|box_end|>" in outs[0][0]["conversations"][1]["value"]
