"""``vlmdata train`` / ``vlmdata export`` end to end on CPU with tiny random models.

The tiny model folders are built once per session; training runs in-process (``runner.train`` or
the click command through ``CliRunner``) so torch/transformers are imported once. Only the
two-process run goes through a subprocess (torchrun). Loss curves are read from the
``trainer_state.json`` the Trainer saves with each checkpoint.
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
from click.testing import CliRunner

from vlmdata.cli import main

from .conftest import read_jsonl, write_jsonl

for _module in ("torch", "transformers", "peft", "accelerate"):  # the train extra
    pytest.importorskip(_module)
yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[1]
SWIFT = REPO / "sample_data" / "swift" / "train.jsonl"
IMAGES = REPO / "sample_data" / "images"
META = REPO / "sample_data" / "internvl" / "meta.json"
FAMILIES = ("internvl", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava")
LR = {False: 1e-3, True: 5e-3}  # full fine-tune / LoRA rates that move the tiny models in 20 steps


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True, scope="module")
def _one_thread_and_environ():
    """One torch thread (intra-op threads that spin-wait make these tiny runs 10-30x slower when another
    process shares the 2 cores); and the HF offline variables the training stage sets stay here."""
    import torch

    saved, threads = dict(os.environ), torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from vlmdata.train.tiny import save_tiny

    base = tmp_path_factory.mktemp("tiny")
    return {family: save_tiny(family, str(base / family)) for family in FAMILIES}


def make_config(model: str, output: Path, **options: Any) -> Any:
    from vlmdata.train.config import TrainConfig

    values: dict[str, Any] = {
        "model": model,
        "data": [str(SWIFT)],
        "root": str(IMAGES),
        "output": str(output),
        "batch_size": 2,
        "logging_steps": 1,
        "save_steps": 1000,
        "progress": False,
    }
    values.update(options)
    return TrainConfig(**values)


def run_train(model: str, output: Path, **options: Any) -> Any:
    from vlmdata.train.runner import train

    return train(make_config(model, output, **options), say=lambda _msg: None)


@pytest.fixture(scope="session")
def trained(tiny: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """``trained(family, lora)``: (run folder, summary) of a 20-step run, trained once per session."""
    cache: dict[tuple[str, bool], tuple[Path, Any]] = {}
    base = tmp_path_factory.mktemp("runs")

    def get(family: str, lora: bool) -> tuple[Path, Any]:
        if (family, lora) not in cache:
            out = base / f"{family}-{'lora' if lora else 'full'}"
            summary = run_train(tiny[family], out, lora=lora, lr=LR[lora], max_steps=20, save_steps=20)
            cache[family, lora] = (out, summary)
        return cache[family, lora]

    return get


def cli(*args: Any):
    return CliRunner().invoke(main, [str(a) for a in args])


def train_args(model: str, output: Path, options: str = "", data: Path = SWIFT, root: Path | None = IMAGES) -> list:
    """``vlmdata train`` arguments; ``options`` is the rest of the command line, space-separated."""
    args = ["train", "--model", model, "--data", data, "--output", output, "--no-progress"]
    return args + (["--root", root] if root else []) + options.split()


def pipeline(model: str) -> tuple[Any, Any, Any]:
    """(family, processor, renderer) as the runner builds them for ``model``."""
    from vlmdata.train.families import detect_family
    from vlmdata.train.model import load_processor
    from vlmdata.train.render import Renderer

    family = detect_family(model)
    processor, _ = load_processor(make_config(model, Path("unused")), family)
    return family, processor, Renderer(family, processor, None)


def samples_of(data: Path = SWIFT, root: Path = IMAGES) -> list:
    from vlmdata.train.data import load, sources_of

    return load(sources_of([str(data)], str(root), None)).samples


def lengths_by_id(model: str) -> dict[str, int]:
    """Each sample's sequence length as the collator builds it (batch of one: no padding)."""
    from vlmdata.train.collate import Collator

    _, processor, renderer = pipeline(model)
    collate = Collator(renderer, processor)
    return {s.id: int(collate([s])["input_ids"].shape[1]) for s in samples_of()}


def load_model(path: str | Path) -> Any:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(str(path)).eval()


def log_history(checkpoint: Path) -> list[dict]:
    return json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]


def read_summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ---------------------------------------------------------------- 1. the loss goes down


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("family", FAMILIES)
def test_twenty_steps_lower_the_loss(tiny, trained, family: str, lora: bool):
    from transformers import AutoConfig

    run, summary = trained(family, lora)
    steps = [e for e in log_history(run / "checkpoint-20") if "loss" in e]
    assert [e["step"] for e in steps] == list(range(1, 21))
    losses = [e["loss"] for e in steps]
    assert all(math.isfinite(v) for v in losses)
    vocab = AutoConfig.from_pretrained(tiny[family]).get_text_config().vocab_size
    # a random model starts near the uniform distribution's loss: real labels, averaged correctly
    assert abs(losses[0] - math.log(vocab)) < 0.5, losses[0]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.2, f"{family} {'lora' if lora else 'full'}: {losses}"
    assert summary.steps == 20 and summary.train_loss is not None and summary.train_loss < losses[0]
    assert summary.records_in == 5 and summary.trained_records + summary.left_out == 5
    assert (run / "final" / ("adapter_model.safetensors" if lora else "model.safetensors")).is_file()
    assert (run / "final" / "processor_config.json").is_file()


# ---------------------------------------------------------------- 2. LoRA sits in the language model


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_wraps_language_model_projections_only(tiny, trained, family: str):
    from safetensors import safe_open

    run, summary = trained(family, True)
    with safe_open(str(run / "final" / "adapter_model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    wrapped = {k.removeprefix("base_model.model.").split(".lora_")[0] for k in keys}

    fam, _, _ = pipeline(tiny[family])
    base = load_model(tiny[family])
    projections = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    named = {n for n, _ in base.named_modules() if n.rsplit(".", 1)[-1] in projections}
    language = {n for n in named if fam.part_of(n + ".weight") == "language"}
    outside = named - language
    if family in ("internvl", "llava", "qwen2_5_vl"):  # their vision towers have *_proj modules too
        assert outside, "the test needs vision modules with the same names to be meaningful"
    assert wrapped == language  # every language projection, nothing else
    assert not wrapped & outside
    assert summary.trainable_by_part == {"language": summary.trainable_parameters}
    assert 0 < summary.trainable_parameters < summary.total_parameters


# ---------------------------------------------------------------- 3. freezing


@pytest.mark.parametrize(
    ("family", "frozen"),
    [
        ("llava", ("vision", "projector")),
        ("qwen2_5_vl", ("language",)),
        ("internvl", ("vision",)),
        ("qwen2_vl", ("projector",)),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, tuple) else v,
)
def test_frozen_parts_stay_bit_identical(tiny, tmp_path: Path, family: str, frozen: tuple[str, ...]):
    import torch

    flags = {"vision": "freeze_vision", "projector": "freeze_projector", "language": "freeze_llm"}
    summary = run_train(tiny[family], tmp_path / "run", lr=1e-3, max_steps=3, **{flags[p]: True for p in frozen})
    assert set(summary.trainable_by_part) == {"vision", "projector", "language"} - set(frozen)

    fam, _, _ = pipeline(tiny[family])
    before = dict(load_model(tiny[family]).named_parameters())
    after = dict(load_model(tmp_path / "run" / "final").named_parameters())
    assert before.keys() == after.keys()
    changed: dict[str, list[bool]] = {}
    for name, param in before.items():
        changed.setdefault(fam.part_of(name), []).append(not torch.equal(param, after[name]))
    assert set(changed) == {"vision", "projector", "language"}
    for part, flags_changed in changed.items():
        if part in frozen:
            assert not any(flags_changed), f"{part} was frozen but changed"
        else:
            assert any(flags_changed), f"{part} was not frozen but did not change"


# ---------------------------------------------------------------- 4. save, resume, export


def test_resume_continues_from_the_last_checkpoint(tiny, tmp_path: Path):
    run = tmp_path / "run"
    first = run_train(tiny["llava"], run, batch_size=1, lr=1e-3, max_steps=4, save_steps=2)
    assert first.steps == 4
    for step in (2, 4):
        state = json.loads((run / f"checkpoint-{step}" / "trainer_state.json").read_text())
        assert state["global_step"] == step
    before = log_history(run / "checkpoint-4")

    options = "--batch-size 1 --lr 1e-3 --max-steps 6 --save-steps 2 --logging-steps 1 --resume"
    res = cli(*train_args(tiny["llava"], run, options))
    assert res.exit_code == 0, res.output
    second = read_summary(run)
    assert second["steps"] == 6
    state = json.loads((run / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    after = [e for e in state["log_history"] if "loss" in e]
    assert [e["step"] for e in after] == [1, 2, 3, 4, 5, 6]
    # steps 1-4 are the first run's records (loss and learning rate of its schedule), not retrained
    assert after[:4] == [e for e in before if "loss" in e]
    # this process trained 2 steps (one sample each), the first 4: far fewer tokens than 4 steps
    assert 0 < second["tokens"] < first.tokens


def test_an_earlier_run_is_not_trained_over_silently(tiny, tmp_path: Path):
    run = tmp_path / "run"
    run_train(tiny["llava"], run, batch_size=1, lr=1e-3, max_steps=2, save_steps=2)
    first = (run / "final" / "model.safetensors").read_bytes()
    again = cli(*train_args(tiny["llava"], run, "--batch-size 1 --max-steps 2"))
    assert again.exit_code == 2
    assert "earlier run" in again.output and "--resume" in again.output and "--overwrite-output" in again.output
    assert (run / "final" / "model.safetensors").read_bytes() == first  # untouched
    over = cli(*train_args(tiny["llava"], run, "--batch-size 1 --max-steps 2 --lr 5e-3 --overwrite-output"))
    assert over.exit_code == 0, over.output
    assert (run / "final" / "model.safetensors").read_bytes() != first


def test_resume_without_checkpoint_is_refused(tiny, tmp_path: Path):
    res = cli(*train_args(tiny["llava"], tmp_path / "none", "--max-steps 2 --resume"))
    assert res.exit_code == 2
    assert "no checkpoint" in res.output


@pytest.mark.parametrize("family", ["internvl", "qwen2_5_vl"])
def test_export_merge_lora_matches_peft_logits(tiny, trained, tmp_path: Path, family: str):
    import torch
    from peft import PeftModel
    from transformers import AutoProcessor

    from vlmdata.train.collate import Collator
    from vlmdata.train.model import choose_template
    from vlmdata.train.render import Renderer

    run, _ = trained(family, True)
    out = tmp_path / "merged"
    res = cli("export", run, "-o", out, "--merge-lora")
    assert res.exit_code == 0, res.output
    assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").is_file()

    merged = load_model(out)
    assert not isinstance(merged, PeftModel)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    processor = AutoProcessor.from_pretrained(str(out))
    fam, _, _ = pipeline(tiny[family])
    choose_template(processor, fam, "auto")
    batch = Collator(Renderer(fam, processor, None), processor)(samples_of()[:3])
    batch.pop("labels")

    peft = PeftModel.from_pretrained(load_model(tiny[family]), str(run / "final")).eval()
    with torch.no_grad():
        want = peft(**batch).logits
        got = merged(**batch).logits
        base = load_model(tiny[family])(**batch).logits
    assert got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-4, rtol=0), (got - want).abs().max()
    assert (base - want).abs().max() > 1e-3, "the adapter must change the logits for the check to mean something"


def test_export_lora_without_merge_is_refused(trained, tmp_path: Path):
    run, _ = trained("llava", True)
    res = cli("export", run, "-o", tmp_path / "out")
    assert res.exit_code == 2
    assert "--merge-lora" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


def test_export_full_finetune(trained, tmp_path: Path):
    import torch
    from transformers import AutoProcessor

    run, _ = trained("llava", False)
    out = tmp_path / "full"
    res = cli("export", run, "-o", out)
    assert res.exit_code == 0, res.output
    exported = dict(load_model(out).named_parameters())
    final = dict(load_model(run / "final").named_parameters())
    assert exported.keys() == final.keys()
    assert all(torch.equal(exported[k], final[k]) for k in final)
    assert AutoProcessor.from_pretrained(str(out)).chat_template
    # a second export into the now non-empty folder is refused
    again = cli("export", run, "-o", out)
    assert again.exit_code == 2 and "not empty" in again.output


def save_bf16(family: str, folder: Path) -> Path:
    """A tiny model saved in bf16, as the released checkpoints are."""
    import torch

    from vlmdata.train.tiny import build_tiny

    torch.manual_seed(0)
    model, processor = build_tiny(family)
    model.to(torch.bfloat16).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_full_finetune_of_a_bf16_checkpoint_trains_float32_master_weights(tmp_path: Path):
    """transformers v5 loads a checkpoint in its saved dtype. Adam's first steps move a weight by about
    the learning rate; at 1e-5 that is below half a bf16 ulp of a norm weight of 1.0 (2^-9), so weights
    held in bf16 would not move at all; mixed precision (--bf16) computes in bf16 from float32 weights."""
    import torch

    folder = save_bf16("qwen2_vl", tmp_path / "bf16")
    run_train(str(folder), tmp_path / "run", lr=1e-5, max_steps=3, bf16=True)
    before = {n: p.detach() for n, p in load_model(folder).named_parameters()}
    after = {n: p.detach() for n, p in load_model(tmp_path / "run" / "final").named_parameters()}
    assert {p.dtype for p in before.values()} == {torch.bfloat16}
    norms = [n for n in before if "language_model" in n and n.endswith("norm.weight")]
    assert norms and all(bool((before[n] == 1).all()) for n in norms)
    moved = [n for n in norms if not torch.equal(after[n].float(), before[n].float())]
    assert moved == norms
    assert max(float((after[n].float() - 1).abs().max()) for n in norms) < 1e-4  # lr-sized steps, not bf16 ulps


def test_lora_on_a_bf16_checkpoint_keeps_the_base_in_bf16_and_trains(tmp_path: Path):
    """Under LoRA the base only runs forward: it keeps its dtype (half the memory of float32)."""
    import torch
    from safetensors.torch import load_file

    from vlmdata.train.families import detect_family
    from vlmdata.train.model import load_model as load_for_training
    from vlmdata.train.model import prepare

    folder = save_bf16("internvl", tmp_path / "bf16")
    config = make_config(str(folder), tmp_path / "run", lora=True)
    trainable = prepare(load_for_training(config), detect_family(str(folder)), config)
    dtypes = {(p.requires_grad, p.dtype) for p in trainable.model.parameters()}
    assert dtypes == {(False, torch.bfloat16), (True, torch.float32)}
    # and it trains: float32 pixel_values into the bf16 vision tower, with and without --bf16 autocast
    for bf16 in (False, True):
        out = tmp_path / f"run-{bf16}"
        summary = run_train(str(folder), out, lora=True, lr=5e-3, max_steps=3, bf16=bf16, gradient_checkpointing=True)
        assert summary.train_loss is not None and math.isfinite(summary.train_loss)
        adapter = load_file(str(out / "final" / "adapter_model.safetensors"))
        assert any(bool(v.any()) for k, v in adapter.items() if ".lora_B." in k)  # B starts at zero


# ---------------------------------------------------------------- 5. refusals and left-out records


def test_missing_image_refused_then_left_out_with_no_validate(tiny, tmp_path: Path):
    rows = read_jsonl(SWIFT)[:2]
    rows.append(
        {
            "id": "missing-9",
            "messages": [{"role": "user", "content": "<image>Describe."}, {"role": "assistant", "content": "Nothing."}],
            "images": ["nope.jpg"],
        }
    )
    data = write_jsonl(tmp_path / "bad.jsonl", rows)
    out = tmp_path / "run"
    args = train_args(tiny["llava"], out, "--max-steps 2", data=data)

    refused = cli(*args)
    assert refused.exit_code == 2
    assert f"{data}:3" in refused.output and "missing-9" in refused.output and "nope.jpg" in refused.output
    assert "--no-validate" in refused.output
    assert not out.exists()  # refused before anything was written

    res = cli(*args, "--no-validate")
    assert res.exit_code == 0, res.output
    left = read_jsonl(out / "left_out.jsonl")
    assert len(left) == 1
    assert left[0]["id"] == "missing-9" and left[0]["line"] == 3 and left[0]["reason"] == "unusable"
    assert "nope.jpg" in left[0]["error"]
    summary = read_summary(out)
    assert summary["records_in"] == 3 and summary["trained_records"] == 2 and summary["left_out"] == 1


def test_meta_file_from_the_wrong_directory(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    args = train_args(tiny["internvl"], tmp_path / "run", "--max-steps 2", data=META, root=None)
    monkeypatch.chdir(tmp_path)  # the meta file's annotation path is relative to the repository root
    refused = cli(*args)
    assert refused.exit_code == 2
    assert f"{META}:" in refused.output and "working directory" in refused.output
    unvalidated = cli(*args, "--no-validate")
    assert unvalidated.exit_code == 2
    assert "not found" in unvalidated.output and "working directory" in unvalidated.output
    assert "Traceback" not in refused.output + unvalidated.output

    monkeypatch.chdir(REPO)
    res = cli(*args)
    assert res.exit_code == 0, res.output
    assert read_summary(tmp_path / "run")["trained_records"] == 5


def test_max_length_strict_refuses_and_default_leaves_out(tiny, tmp_path: Path):
    lengths = lengths_by_id(tiny["llava"])
    limit = sorted(lengths.values())[2]  # the two longest records are over it
    over = {i for i, n in lengths.items() if n > limit}
    assert len(over) == 2
    out = tmp_path / "run"
    args = train_args(tiny["llava"], out, f"--max-length {limit} --max-steps 2")

    refused = cli(*args, "--strict")
    assert refused.exit_code == 2
    assert "--strict" in refused.output and f"--max-length {limit}" in refused.output
    assert all(f"id={i}" in refused.output for i in over)
    assert not any(f"id={i}" in refused.output for i in set(lengths) - over)
    assert not out.exists()

    res = cli(*args)
    assert res.exit_code == 0, res.output
    left = read_jsonl(out / "left_out.jsonl")
    assert {r["id"] for r in left} == over
    assert all(r["reason"] == "too_long" and r["tokens"] == lengths[r["id"]] for r in left)
    summary = read_summary(out)
    assert summary["too_long"] == 2 and summary["left_out"] == 2
    assert summary["records_in"] == summary["trained_records"] + summary["left_out"] == 5


# ---------------------------------------------------------------- 6. config file


def test_config_file_cli_override_and_resolved_copy(tiny, tmp_path: Path):
    from vlmdata.train.config import TrainConfig

    out = tmp_path / "run"
    config = {
        "model": tiny["qwen2_vl"],
        "data": str(SWIFT),
        "root": str(IMAGES),
        "output": str(out),
        "batch-size": 2,  # dashed keys are the long options
        "max_steps": 4,
        "lr": 1e-3,
        "logging_steps": 1,
        "lora": True,
        "lora_r": 4,
        "progress": False,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    res = cli("train", "--config", path, "--max-steps", 2)
    assert res.exit_code == 0, res.output
    summary = read_summary(out)
    assert summary["steps"] == 2  # the command line wins over the file
    assert summary["samples_seen"] == 4  # batch size 2 from the file
    assert set(summary["trainable_by_part"]) == {"language"}  # lora from the file
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved == TrainConfig(**saved).model_dump(mode="json")  # complete: every option resolved
    assert saved["max_steps"] == 2 and saved["batch_size"] == 2 and saved["lora_r"] == 4 and saved["lora"] is True
    assert saved["data"] == [str(SWIFT)] and saved["lr"] == 1e-3
    assert saved["logging_steps"] == 1 and saved["save_steps"] == TrainConfig.model_fields["save_steps"].default
    adapter = json.loads((out / "final" / "adapter_config.json").read_text())
    assert adapter["r"] == 4


def test_config_file_unknown_key_is_named(tiny, tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text(
        yaml.safe_dump({"model": tiny["llava"], "data": str(SWIFT), "output": str(tmp_path / "r"), "learning_rate": 1})
    )
    res = cli("train", "--config", path)
    assert res.exit_code == 2
    assert "learning_rate" in res.output and str(path) in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- 7. two processes (gloo)


@pytest.mark.parametrize("sharding", [{}, {"fsdp": True}], ids=["ddp", "fsdp"])
def test_two_process_run_shards_the_data(tiny, tmp_path: Path, sharding: dict[str, Any]):
    out = tmp_path / "ddp"
    config = {
        **sharding,
        "model": tiny["qwen2_vl"],
        "data": [str(SWIFT)],
        "root": str(IMAGES),
        "output": str(out),
        "batch_size": 1,
        "max_steps": 3,  # one epoch of 5 records over 2 ranks (the last batch wraps around to fill rank 1)
        "lr": 1e-3,
        "logging_steps": 1,
        "progress": False,
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launch = "-m torch.distributed.run --standalone --nproc_per_node 2 -m vlmdata.train --config"
    cmd = [sys.executable, *launch.split(), str(path)]
    try:
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as exc:  # a hung rank: show what the ranks printed
        pytest.fail(f"the 2-process run hung:\n{exc.stdout!s:.3000}\n{exc.stderr!s:.3000}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "final" / "model.safetensors").is_file()
    if sharding:  # the saved model is whole (gathered from the shards), not rank 0's shard
        from safetensors.torch import load_file

        saved, base = (
            load_file(out / "final" / "model.safetensors"),
            load_file(Path(tiny["qwen2_vl"]) / "model.safetensors"),
        )
        assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in base.items()}
    assert proc.stdout.count("done:") == 1  # only rank 0 reports (and writes summary.json)
    summary = read_summary(out)
    assert summary["steps"] == 3
    assert summary["samples_seen"] == summary["steps"] * 1 * 1 * 2
    # tokens are summed over both ranks; every record was seen once, plus one repeated to fill the last step
    lengths = lengths_by_id(tiny["qwen2_vl"])
    extra = summary["tokens"] - sum(lengths.values())
    assert extra in lengths.values(), (summary["tokens"], lengths)


def test_dry_run_reports_the_data_and_loads_no_model(tiny, tmp_path: Path):
    run = tmp_path / "run"
    res = cli(*train_args(tiny["qwen2_vl"], run, "--dry-run --batch-size 2 --grad-accum 2"))
    assert res.exit_code == 0, res.output
    lengths = sorted(lengths_by_id(tiny["qwen2_vl"]).values())
    assert f"min {lengths[0]}, median {lengths[2]}" in res.output and f"max {lengths[-1]}" in res.output
    assert f"{sum(lengths):,} tokens in all; 2 optimiser steps per epoch (4 records per step)" in res.output
    assert "dry run" in res.output and "parameters:" not in res.output
    assert sorted(p.name for p in run.iterdir()) == ["left_out.jsonl", "train_config.yaml"]
    real = cli(*train_args(tiny["qwen2_vl"], run, "--batch-size 2 --max-steps 1"))  # the folder is still usable
    assert real.exit_code == 0, real.output


def test_boxes_clamped_into_the_frame_are_reported(tiny, tmp_path: Path):
    row = {
        "id": "wide-box",
        "messages": [
            {"role": "user", "content": "<image>Where is the square?"},
            {"role": "assistant", "content": "<ref-object><bbox>"},
        ],
        "images": ["shapes_320x240.png"],
        "objects": {"ref": ["square"], "bbox": [[-10, 20, 400, 100]]},  # x1 < 0 and x2 > 320: two clamps
    }
    data = tmp_path / "wide.jsonl"
    write_jsonl(data, [row])
    res = cli(*train_args(tiny["internvl"], tmp_path / "run", "--dry-run --no-validate", data=data))
    assert res.exit_code == 0, res.output
    assert "2 box coordinate(s) outside their image clamped" in res.output
