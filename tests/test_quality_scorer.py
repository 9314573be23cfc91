"""Model-scored filtering: thresholds with a stub judge, the cache and resume, the plumbing with tiny
random models (a text causal LM and a VLM, built here offline)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import read_jsonl, write_jsonl
from vlmdata.media.synthetic import base_image
from vlmdata.tools.scorer import ScoreCache, ScoreStage, parse_repetition, parse_score
from vlmdata.tools.stream import run_stream
from vlmdata.tools.transform_cli import filter_


def rows(scores: list[str]) -> list[dict]:
    """One record per score; the answer carries the score the stub judge will give."""
    return [
        {"id": f"s{k}", "messages": [{"role": "user", "content": f"Question {k}?"},
                                      {"role": "assistant", "content": f"answer {k} grade={v}"}]}
        for k, v in enumerate(scores)
    ]  # fmt: skip


class StubJudge:
    """Replies ``Score: <grade>`` from the grade written in the sample; counts the prompts it saw."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.calls = 0
        self.prompts = 0
        self.fail_on_call = fail_on_call

    def __call__(self, inputs):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise RuntimeError("interrupted")
        self.prompts += len(inputs)
        out = []
        for x in inputs:
            grade = re.search(r"grade=(\S+)", x.prompt).group(1)
            out.append("I cannot tell." if grade == "x" else f"Score: {grade}\nReason: graded {grade}")
        return out


def test_parse_replies():
    assert parse_score("Score: 7\nReason: fine") == (7.0, "fine")
    assert parse_score("**Score:** 10/10. Reason: perfect") == (10.0, "perfect")
    assert parse_score("score = 6.5")[0] == 6.5
    assert parse_score("8")[0] == 8.0
    assert parse_score("no idea")[0] is None
    assert parse_score("Score: 12")[0] is None  # not 0-10
    assert parse_repetition("Repetitive: yes\nReason: loops") == (True, "loops")
    assert parse_repetition("Repetitive: No")[0] is False
    assert parse_repetition("maybe")[0] is None


def test_threshold_and_rejects(tmp_path: Path):
    grades = ["3", "7", "9", "6.5", "x", "7.0"]
    src = write_jsonl(tmp_path / "in.jsonl", rows(grades))
    out, rej = tmp_path / "out.jsonl", tmp_path / "rej.jsonl"
    stage = ScoreStage(StubJudge(), judge_name="stub", min_score=7, batch_size=4, cache=ScoreCache(None))
    report = run_stream(str(src), str(out), transforms=[stage], rejects=str(rej))
    # kept: >= 7 and the unparsed one ("x"); dropped: 3 and 6.5
    assert [r["id"] for r in read_jsonl(out)] == ["s1", "s2", "s4", "s5"]
    dropped = read_jsonl(rej)
    assert [(d["id"], d["filter"], d["score"], d["judge_reason"]) for d in dropped] == [
        ("s0", "llm-score", 3.0, "graded 3"),
        ("s3", "llm-score", 6.5, "graded 6.5"),
    ]
    assert report.records_in == 6 == report.written + report.dropped_total and report.balanced
    assert (stage.judged, stage.cached, stage.unparsed) == (6, 0, 1)


def test_cache_and_resume_after_interruption(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", rows(["1", "2", "8", "9", "10"]))
    cache = tmp_path / "scores.jsonl"
    failing = StubJudge(fail_on_call=2)  # batch 1 (2 samples) is judged, then the run dies
    stage = ScoreStage(failing, judge_name="stub", min_score=5, batch_size=2, cache=ScoreCache(str(cache)))
    with pytest.raises(RuntimeError):
        run_stream(str(src), str(tmp_path / "out.jsonl"), transforms=[stage])
    assert not (tmp_path / "out.jsonl").exists() and len(read_jsonl(cache)) == 2
    again = StubJudge()
    stage = ScoreStage(again, judge_name="stub", min_score=5, batch_size=2, cache=ScoreCache(str(cache)))
    report = run_stream(str(src), str(tmp_path / "out.jsonl"), transforms=[stage])
    assert again.prompts == 3 and (stage.judged, stage.cached) == (3, 2)  # only what was left
    assert report.written == 3 and report.dropped["llm-score"] == 2
    third = StubJudge()
    stage = ScoreStage(third, judge_name="stub", min_score=5, batch_size=2, cache=ScoreCache(str(cache)))
    run_stream(str(src), str(tmp_path / "out.jsonl"), transforms=[stage])
    assert third.calls == 0 and stage.cached == 5
    # another prompt is another question: nothing reused
    other = StubJudge()
    stage = ScoreStage(
        other, judge_name="stub", min_score=5, template="Grade {conversation}", cache=ScoreCache(str(cache))
    )
    run_stream(str(src), str(tmp_path / "out.jsonl"), transforms=[stage])
    assert other.prompts == 5


def test_flag_repetition_with_a_stub(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", rows(["a", "b", "c"]))
    seen = []

    def judge(inputs):
        seen.extend(x.prompt for x in inputs)
        return ["Repetitive: yes\nReason: loops" if "answer 1" in x.prompt else "Repetitive: no" for x in inputs]

    stage = ScoreStage(judge, judge_name="stub", repetition=True, cache=ScoreCache(None))
    report = run_stream(str(src), str(tmp_path / "o.jsonl"), transforms=[stage])
    assert [r["id"] for r in read_jsonl(tmp_path / "o.jsonl")] == ["s0", "s2"]
    assert report.dropped == {"llm-repetition": 1}
    assert all("repetitive patterns" in p for p in seen)


# --------------------------------------------------------------------------- tiny random models


@pytest.fixture(scope="module")
def judges(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    pytest.importorskip("transformers")
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vlmdata.train.tiny import build_tiny, save_tiny

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("judges")
    vlm = save_tiny("qwen2_vl", str(base / "vlm"))
    _, processor = build_tiny("qwen2_vl")
    tok = processor.tokenizer
    cfg = Qwen2Config(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=4096, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    Qwen2ForCausalLM(cfg).save_pretrained(base / "text")
    tok.save_pretrained(base / "text")
    return {"text": str(base / "text"), "vlm": vlm}


@pytest.mark.parametrize("kind", ["text", "vlm"])
def test_scorer_cli_with_a_tiny_random_model(judges: dict[str, str], tmp_path: Path, kind: str):
    """A random model's replies do not parse: every sample is kept and counted; the verdicts are cached
    and a second run asks the model nothing."""
    img = tmp_path / "a.jpg"
    base_image(1).save(img)
    data = rows(["1", "2", "3"])
    data[0]["images"] = [str(img)]
    data[0]["messages"][0]["content"] = "<image>" + data[0]["messages"][0]["content"]
    src = write_jsonl(tmp_path / "in.jsonl", data)
    out = tmp_path / "out.jsonl"
    args = [str(src), "-o", str(out), "--scorer", judges[kind], "--min-score", "7", "--batch-size", "2",
            "--max-new-tokens", "4", "--json"]  # fmt: skip
    r = CliRunner().invoke(filter_, args)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["records_in"] == 3 and report["written"] + sum(report["dropped"].values()) == 3
    cache = read_jsonl(Path(str(out) + ".scores.jsonl"))
    assert len(cache) == 3 and all("reply" in e for e in cache)
    assert "3 sample(s) judged, 0 from the cache" in r.stderr
    r = CliRunner().invoke(filter_, args)
    assert r.exit_code == 0 and "0 sample(s) judged, 3 from the cache" in r.stderr


def test_scorer_cli_errors(tmp_path: Path):
    src = write_jsonl(tmp_path / "in.jsonl", rows(["1"]))
    r = CliRunner().invoke(filter_, [str(src), "-o", str(tmp_path / "o.jsonl"), "--flag-repetition"])
    assert r.exit_code == 2 and "--scorer" in r.stderr
    r = CliRunner().invoke(filter_, [str(src), "-o", str(tmp_path / "o.jsonl"), "--scorer", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a folder" in r.stderr
