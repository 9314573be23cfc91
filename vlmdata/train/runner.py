"""``vlmdata train``: validate, load, measure, train with transformers ``Trainer``, save, summarise.

The data is validated first and the run refuses to start on error-level findings (unless
``validate_data`` is off); records that cannot be trained on are counted and listed in
``left_out.jsonl`` in the run folder before the first step. Under ``accelerate launch`` /
``torchrun`` every rank builds the same dataset and the ``Trainer`` shards the batches; only
rank 0 prints and writes.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vlmdata.convert.report import Rejection
from vlmdata.errors import VlmdataError
from vlmdata.outputs import atomic_write_bytes
from vlmdata.train.collate import Collator
from vlmdata.train.compat import setup_environment
from vlmdata.train.config import TrainConfig, save_config
from vlmdata.train.data import LengthCounter, Loaded, Measured, measure, sources_of, stream
from vlmdata.train.families import detect_family
from vlmdata.train.model import load_model, load_processor, prepare
from vlmdata.train.render import Renderer
from vlmdata.train.store import SampleStore

FINAL = "final"
LEFT_OUT = "left_out.jsonl"
SUMMARY = "summary.json"


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Prepared:
    """What the run trains on, and what it left out (with reasons)."""

    records_in: int
    train: Measured
    val: Measured | None
    unreadable: list[Rejection]
    warnings: list[str] = field(default_factory=list)
    clamped: int = 0  # box coordinates clamped into the model's frame (outside their image)

    @property
    def left_out(self) -> int:
        return len(self.unreadable) + len(self.train.unusable) + len(self.train.too_long)


@dataclass
class Summary:
    family: str
    template: str
    records_in: int
    trained_records: int
    left_out: int
    too_long: int
    dropped_in_training: int
    steps: int
    samples_seen: int
    tokens: int
    supervised_tokens: int
    seconds: float
    tokens_per_second: float
    samples_per_second: float
    peak_memory_mb: float
    peak_memory_kind: str
    train_loss: float | None
    eval_loss: float | None
    trainable_parameters: int
    total_parameters: int
    trainable_by_part: dict[str, int]
    output: str


def check_data(config: TrainConfig, say: Callable[[str], None]) -> None:
    """Run the validator on the data; error-level findings stop the run before any model loads."""
    from vlmdata.validators.engine import validate

    report = validate(
        config.data + config.val,
        root=config.root,
        from_format=config.format,
        allow_outside_root=config.allow_outside_root,
    )
    errors = [f for f in report.findings if f.severity == "error"]
    if errors:
        shown = "\n".join(f"  {f.where()}: {f.code} {f.message}" for f in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise VlmdataError(
            f"refusing to train: vlmdata validate found {len(errors)} error(s) in the data:\n{shown}{more}\n"
            "fix them (vlmdata validate --fix fixes the safe ones) or pass --no-validate"
        )
    warnings = report.count("warning")
    say(f"validate: no errors, {warnings} warning(s) ({report.seconds:.2f} s)")


def prepare_data(config: TrainConfig, renderer: Renderer, processor: Any) -> Prepared:
    """Read, measure and spill the samples to disk in one pass (memory holds offsets, not samples)."""
    counter = LengthCounter(renderer, processor)

    def split(paths: list[str], root: str | None) -> tuple[Measured, Loaded]:
        loaded = Loaded()
        sources = sources_of(paths, root, config.format)
        samples = stream(sources, loaded, config.allow_outside_root)
        return measure(samples, counter, config.max_length, store=SampleStore()), loaded

    train, loaded = split(config.data, config.root)
    unreadable, warnings = list(loaded.rejected), list(loaded.warnings)
    val = None
    if config.val:
        val, loaded_val = split(config.val, config.val_root or config.root)
        unreadable += loaded_val.rejected
    return Prepared(loaded.records_in, train, val, unreadable, warnings, counter.clamped)


def write_left_out(prepared: Prepared, folder: str, dropped: list[Rejection] = ()) -> str:  # type: ignore[assignment]
    rows = [{"reason": "unreadable", **asdict(r)} for r in prepared.unreadable]
    rows += [{"reason": "undecodable", "split": "train", **asdict(r)} for r in dropped]
    for split, measured in (("train", prepared.train), ("val", prepared.val)):
        if measured is None:
            continue
        rows += [{"reason": "unusable", "split": split, **asdict(r)} for r in measured.unusable]
        rows += [{"reason": "too_long", "split": split, "tokens": n, **asdict(r)} for r, n in measured.too_long]
    path = os.path.join(folder, LEFT_OUT)
    atomic_write_bytes(path, b"".join(json.dumps(r, default=str).encode() + b"\n" for r in rows))
    return path


def training_arguments(config: TrainConfig, evaluate: bool, **overrides: Any) -> Any:
    """transformers ``TrainingArguments`` for ``config`` (``overrides`` win; the benchmark's plain
    baseline takes the same optimiser settings from here)."""
    import torch
    from transformers import TrainingArguments

    cpu = not torch.cuda.is_available()
    fields = TrainingArguments.__dataclass_fields__
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    values: dict[str, Any] = {
        "output_dir": config.output,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.lr,
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "warmup_steps": config.warmup_ratio,
        "lr_scheduler_type": config.lr_scheduler,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "bf16": config.bf16,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": config.eval_steps or config.save_steps,
        "seed": config.seed,
        "remove_unused_columns": False,
        "dataloader_num_workers": config.num_workers,
        "report_to": config.report_to,
        "disable_tqdm": not config.progress,
        "use_cpu": cpu,
        "ddp_backend": "gloo" if cpu and world_size() > 1 else None,
        "deepspeed": config.deepspeed,
        "train_sampling_strategy": "group_by_length" if config.group_by_length else "random",
        "label_names": ["labels"],
        checkpointing: config.gradient_checkpointing,
    }
    if config.fsdp:
        values.update(fsdp=True, fsdp_config=config.fsdp_config)
    values.update(overrides)
    return TrainingArguments(**values)


def make_trainer(config: TrainConfig, model: Any, prepared: Prepared, collator: Collator, callbacks: list) -> Any:
    import torch
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    args = training_arguments(config, evaluate=prepared.val is not None)
    lengths = prepared.train.lengths

    class VlmTrainer(Trainer):
        """Trainer with the measured lengths for length grouping and token counting."""

        tokens = 0
        supervised = 0
        samples = 0

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.args.train_sampling_strategy == "group_by_length":
                return LengthGroupedSampler(
                    self.args.train_batch_size * self.args.gradient_accumulation_steps, lengths=lengths
                )
            return super()._get_train_sampler(train_dataset)

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            return torch.utils.data.SequentialSampler(eval_dataset)  # order does not matter for a mean loss

        def compute_loss(self, model: Any, inputs: dict[str, Any], *a: Any, **kw: Any) -> Any:
            if model.training:
                self.tokens += int(inputs["attention_mask"].sum())
                self.supervised += int((inputs["labels"] != -100).sum())
                self.samples += int(inputs["input_ids"].shape[0])
            return super().compute_loss(model, inputs, *a, **kw)

    return VlmTrainer(
        model=model,
        args=args,
        train_dataset=prepared.train.samples,  # a SampleStore: len() and [i], all a map-style dataset needs
        eval_dataset=prepared.val.samples if prepared.val is not None else None,
        data_collator=collator,
        callbacks=callbacks,
    )


def loop_timer() -> Any:
    """A callback timing the first to the end of the last optimiser step: throughput excludes model
    loading and the final checkpoint the Trainer writes after the last step."""
    from transformers import TrainerCallback

    class LoopTimer(TrainerCallback):
        began: float | None = None
        ended: float | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.began = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.ended = time.perf_counter()

        @property
        def seconds(self) -> float:
            return (self.ended - self.began) if self.began and self.ended else 0.0

    return LoopTimer()


def check_output(config: TrainConfig) -> None:
    """An earlier run's checkpoints in the run folder are never mixed with a new run's silently."""
    if config.resume is not False or config.overwrite_output or not os.path.isdir(config.output):
        return
    earlier = [n for n in os.listdir(config.output) if n.startswith("checkpoint-") or n in (FINAL, SUMMARY)]
    if earlier:
        raise VlmdataError(
            f"{config.output} holds an earlier run ({', '.join(sorted(earlier)[:3])}); pass --resume to continue it, "
            "--overwrite-output to train over it, or choose another --output"
        )


def resume_point(config: TrainConfig) -> str | None:
    if config.resume is False:
        return None
    if config.resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(config.output) if os.path.isdir(config.output) else None
        if last is None:
            raise VlmdataError(f"--resume: no checkpoint-* folder in {config.output} to resume from")
        return last
    if not os.path.isdir(config.resume):
        raise VlmdataError(f"--resume {config.resume}: no such checkpoint folder")
    return config.resume


def peak_memory() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "cuda max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def _reduce(trainer: Any, value: int) -> int:
    if world_size() == 1:
        return value
    import torch

    tensor = torch.tensor([value], device=trainer.args.device)
    return int(trainer.accelerator.reduce(tensor, reduction="sum").item())


def length_report(lengths: Any, config: TrainConfig) -> str:
    """Token counts of the kept records and the optimiser steps one epoch makes."""
    ordered = sorted(lengths)
    n = len(ordered)
    per_step = config.batch_size * config.grad_accum * world_size()
    return (
        f"tokens per record: min {ordered[0]}, median {ordered[n // 2]}, p95 {ordered[min(n - 1, n * 95 // 100)]}, "
        f"max {ordered[-1]}; {sum(ordered):,} tokens in all; {-(-n // per_step)} optimiser steps per epoch "
        f"({per_step} records per step)"
    )


def train(config: TrainConfig, say: Callable[[str], None] = print) -> Summary | None:
    """Run a training job; returns its summary (also written to ``<output>/summary.json``), or None
    for a dry run."""
    setup_environment()
    main = rank() == 0
    say = say if main else (lambda _msg: None)
    family = detect_family(config.model)
    check_output(config)
    resume_from = resume_point(config)
    if config.validate_data:
        check_data(config, say)
    processor, template = load_processor(config, family)
    renderer = Renderer(family, processor, config.box_syntax)
    say(
        f"model: {config.model} ({family.name}); chat template: {template}; "
        f"boxes: {renderer.box_syntax} in {renderer.frame.value}"
    )
    prepared = prepare_data(config, renderer, processor)
    for warning in prepared.warnings:
        say(f"warning: {warning}")
    too_long = prepared.train.too_long
    if config.strict and too_long:
        listed = "\n".join(f"  {r.message()}" for r, _ in too_long[:20])
        raise VlmdataError(f"--strict: {len(too_long)} record(s) over --max-length {config.max_length}:\n{listed}")
    if not prepared.train.samples:
        raise VlmdataError("no trainable record left; see the reasons above")
    if main:
        os.makedirs(config.output, exist_ok=True)
        save_config(config, config.output)
        left_out_path = write_left_out(prepared, config.output)
    kept = len(prepared.train.samples)
    say(
        f"data: {prepared.records_in} records in, {kept} to train on, {prepared.left_out} left out "
        f"({len(prepared.unreadable)} unreadable, {len(prepared.train.unusable)} unusable, "
        f"{len(too_long)} over --max-length)"
        + (f"; {prepared.clamped} box coordinate(s) outside their image clamped" if prepared.clamped else "")
    )
    if prepared.left_out and main:
        say(f"left-out records and reasons: {left_out_path}")
        for r in prepared.unreadable[:5] + prepared.train.unusable[:5] + [r for r, _ in too_long[:5]]:
            say(f"  {r.message()}")
    say(length_report(prepared.train.lengths, config))
    if config.dry_run:
        say(f"dry run: stopping before the model loads (options in {config.output}/train_config.yaml)")
        return None

    model = load_model(config)
    trainable = prepare(model, family, config)
    say(
        f"parameters: {trainable.trainable:,} trainable of {trainable.total:,} "
        f"({', '.join(f'{k} {v:,}' for k, v in sorted(trainable.by_part.items()))})"
        + (f"; LoRA on {len(trainable.lora_modules)} modules" if config.lora else "")
    )
    collator = Collator(renderer, processor)
    timer = loop_timer()
    trainer = make_trainer(config, trainable.model, prepared, collator, [timer])
    result = trainer.train(resume_from_checkpoint=resume_from)
    seconds = timer.seconds
    final = os.path.join(config.output, FINAL)
    trainer.save_model(final)
    if main:
        processor.save_pretrained(final)
    eval_loss = None
    if prepared.val is not None and prepared.val.samples:
        eval_loss = float(trainer.evaluate()["eval_loss"])
    tokens = _reduce(trainer, trainer.tokens)
    supervised = _reduce(trainer, trainer.supervised)
    samples_seen = _reduce(trainer, trainer.samples)
    dropped = _reduce(trainer, len(collator.dropped))
    memory, memory_kind = peak_memory()
    state = trainer.state
    summary = Summary(
        family=family.name,
        template=template,
        records_in=prepared.records_in,
        trained_records=kept,
        left_out=prepared.left_out,
        too_long=len(too_long),
        dropped_in_training=dropped,
        steps=state.global_step,
        samples_seen=samples_seen,
        tokens=tokens,
        supervised_tokens=supervised,
        seconds=round(seconds, 2),
        tokens_per_second=round(tokens / seconds, 1) if seconds else 0.0,
        samples_per_second=round(samples_seen / seconds, 3) if seconds else 0.0,
        peak_memory_mb=round(memory, 1),
        peak_memory_kind=memory_kind,
        train_loss=result.training_loss,
        eval_loss=eval_loss,
        trainable_parameters=trainable.trainable,
        total_parameters=trainable.total,
        trainable_by_part=trainable.by_part,
        output=final,
    )
    if main:
        if collator.dropped:
            write_left_out(prepared, config.output, collator.dropped)
        atomic_write_bytes(os.path.join(config.output, SUMMARY), json.dumps(asdict(summary), indent=2).encode())
        say(
            f"done: {summary.steps} steps, {summary.samples_seen} samples, {summary.tokens:,} tokens "
            f"({summary.supervised_tokens:,} supervised) in {summary.seconds} s = {summary.tokens_per_second:,} "
            f"tokens/s; peak memory {summary.peak_memory_mb:,.0f} MB ({memory_kind}); "
            f"train loss {summary.train_loss:.4f}"
            + (f", eval loss {eval_loss:.4f}" if eval_loss is not None else "")
            + f"; model in {final}"
        )
    model = trainable.model = None  # FSDP keeps the group in the parameters' device mesh
    finish_distributed(trainer)
    return summary


def finish_distributed(trainer: Any) -> None:
    """Tear the process group down in the one order that neither aborts nor deadlocks.

    A rank that exits with gloo's worker threads alive aborts ("terminate called without an active
    exception") and takes the launch down; and if the DDP wrapper's Reducer holds the last reference
    to the group when it is freed, the group's destructor joins a worker thread that waits for the
    GIL the destructor holds (pytorch/pytorch#56297). So: free the wrapped model while the group is
    still registered, wait for every rank, then destroy the group.
    """
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    trainer.accelerator.free_memory()  # drops the DDP/FSDP wrappers the accelerator holds
    trainer.model_wrapped = trainer.model = trainer.optimizer = trainer.lr_scheduler = None
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
