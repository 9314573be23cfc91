"""``bench/gpu_check.sh --cpu --tiny``: the GPU check's CPU mode, run as ``make gpu-check-cpu`` runs it.

The script runs once per module (about 30 s: two model processes, three training runs each, one
export); the tests read its JSON table and its files. Expected values come from outside the check's
own arithmetic where they can: the model folders' vocabulary sizes, steps x batch size, the naive
baseline's padding rule.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

for _module in ("torch", "transformers", "peft", "accelerate"):  # the train extra
    pytest.importorskip(_module)

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH, RECORDS = 4, 2, 16  # the --tiny defaults
MODELS = {"qwen2_vl": "tiny", "internvl": "internvl-tiny"}
VARIANTS = ("vlmdata", "naive", "lora")


@pytest.fixture(scope="module")
def check(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("gpu-check")
    out, work = base / "out", base / "work"
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(base / "env-out")}  # --out wins over $OUT
    cmd = ["bash", str(REPO / "bench" / "gpu_check.sh"), "--cpu", "--tiny", "--no-wheels"]
    cmd += ["--out", str(out), "--workdir", str(work)]
    proc = subprocess.run(cmd, cwd=base, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    report = json.loads((out / "gpu_check.json").read_text())
    rows = {(r["family"], r["variant"]): r for r in report["rows"]}
    exports = {e["model"].split()[0]: e for e in report["exports"]}
    return {"base": base, "out": out, "work": work, "stdout": proc.stdout, "report": report, "rows": rows, **exports}


def vocab_rows(work: Path, size: str) -> int:
    config = json.loads((work / f"model-{size}" / "config.json").read_text())
    return config["text_config"]["vocab_size"]


def test_every_model_and_variant_is_in_the_table(check):
    report = check["report"]
    assert set(check["rows"]) == {(f, v) for f in MODELS for v in VARIANTS}
    assert len(report["rows"]) == 6 and report["failures"] == []
    meta = report["meta"]
    assert (meta["steps"], meta["batch_size"], meta["records"]) == (STEPS, BATCH, RECORDS)
    assert meta["cpu"] is True and meta["tiny"] is True and meta["device"].startswith("cpu") and meta["transformers"]
    table = check["stdout"]
    assert "real tok/s" in table and "pad frac" in table and "loss start" in table
    for r in report["rows"]:
        line = next(x for x in table.splitlines() if x.startswith(r["model"]) and f" {r['variant']} " in x)
        assert f"{r['real_tokens_per_second']:,.0f}" in line and f"{r['loss_end']:.3f}" in line
    assert (check["out"] / "gpu_check.log").read_text().count("real tok/s") == 1  # the table, teed
    written = {p.name for p in check["out"].iterdir()}
    assert written == {"gpu_check.json", "gpu_check.log", "tiny.log", "internvl-tiny.log"}
    assert not (check["base"] / "env-out").exists()


@pytest.mark.parametrize("family", MODELS)
def test_each_run_trained_its_steps_in_bf16_from_a_random_start(check, family: str):
    rows = check["rows"]
    rows_n = vocab_rows(check["work"], MODELS[family])
    for variant in VARIANTS:
        r = rows[family, variant]
        assert r["steps"] == STEPS and r["samples"] == STEPS * BATCH, variant
        assert r["real_tokens_per_second"] > 0 and r["seconds"] > 0 and r["step_seconds"] > 0
        assert 0 < r["real_tokens"] <= r["fed_tokens"]
        assert r["peak_memory_mb"] > 0 and r["peak_memory_kind"] == "process peak RSS"
        assert math.isfinite(r["loss_start"]) and math.isfinite(r["loss_end"])
        # random weights: the first loss is the uniform distribution's over the (padded) embedding rows
        assert abs(r["loss_start"] - math.log(rows_n)) < 0.5, (variant, r["loss_start"], rows_n)
        assert r["loss_end"] < r["loss_start"], variant
    if family == "internvl":  # padded to 1024 rows and tied, as the GPU presets are
        assert rows_n == 1024


@pytest.mark.parametrize("family", MODELS)
def test_vlmdata_pads_less_than_the_naive_baseline(check, family: str):
    rows = check["rows"]
    naive, ours, lora = rows[family, "naive"], rows[family, "vlmdata"], rows[family, "lora"]
    # the baseline pads every batch to the longest record: fed = steps x batch x that length
    assert naive["longest_batch"] == naive["pad_to"]
    assert naive["fed_tokens"] == STEPS * BATCH * naive["pad_to"]
    assert ours["pad_fraction"] < naive["pad_fraction"]
    assert ours["fed_tokens"] < naive["fed_tokens"]
    assert ours["longest_batch"] <= naive["pad_to"]
    # the LoRA run samples the same length-grouped batches (same sampler and seed)
    assert (lora["real_tokens"], lora["fed_tokens"]) == (ours["real_tokens"], ours["fed_tokens"])


@pytest.mark.parametrize("family", MODELS)
def test_the_merged_lora_export_reloads_and_matches_peft(check, family: str):
    e = check[family]
    assert e["ok"] is True
    assert e["reloaded_on"] == "cpu" and e["bf16_dtypes"] == ["bfloat16"] and e["lora_parameters_left"] == 0
    assert e["logits_max_diff"] < 1e-4 < 1e-2 < e["adapter_effect"]
    assert e["loss_merged"] == pytest.approx(e["loss_peft"], rel=1e-5)
    assert e["loss_merged"] < e["loss_base"]  # the adapter learned something the merge kept
    assert e["loss_merged_bf16"] == pytest.approx(e["loss_merged"], abs=0.05)
    merged = check["work"] / f"merged-{MODELS[family]}"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
