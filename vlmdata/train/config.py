"""The options of a training run, from the command line and/or a YAML (or JSON) file.

One pydantic model holds them so that ``vlmdata train --config train.yaml``, ``vlmdata train
--model ... --data ...`` and ``accelerate launch -m vlmdata.train --config ...`` mean the same
run; the resolved options are saved into the run folder (``train_config.yaml``) so a run can be
repeated or exported from it.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vlmdata.errors import VlmdataError
from vlmdata.train.families import BOX_SYNTAXES, DEFAULT_LORA_TARGETS

CONFIG_NAME = "train_config.yaml"


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="local model folder (config.json + weights + processor)")
    data: list[str] = Field(description="training data files (any supported format) or InternVL meta JSON")
    output: str = Field(description="run folder: checkpoints, final model, logs")
    root: str | None = Field(None, description="media root for the data files (meta entries carry their own)")
    format: str | None = Field(None, description="input format (detected when omitted)")
    val: list[str] = Field(default_factory=list, description="evaluation data files")
    val_root: str | None = None
    allow_outside_root: bool = False
    # what is trained
    lora: bool = False
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_targets: str = Field(DEFAULT_LORA_TARGETS, description="regex on module names wrapped by LoRA")
    freeze_vision: bool = False
    freeze_projector: bool = False
    freeze_llm: bool = False
    # rendering
    max_length: int | None = Field(None, ge=16, description="records longer than this are left out (counted)")
    strict: bool = Field(False, description="refuse to start when any record is over --max-length")
    chat_template: Literal["builtin", "model"] = Field(
        "builtin", description="builtin: the family's template with generation spans; model: the checkpoint's own"
    )
    box_syntax: str | None = Field(None, description="grounding syntax: internvl, qwen (or tokens), json, llava")
    min_pixels: int | None = Field(None, ge=1, description="Qwen image processor min pixels")
    max_pixels: int | None = Field(None, ge=1, description="Qwen image processor max pixels")
    # optimisation
    batch_size: int = Field(1, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(1e-5, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many optimiser steps (-1: run the epochs)")
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    lr_scheduler: str = "cosine"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = 1.0
    bf16: bool = False
    gradient_checkpointing: bool = False
    group_by_length: bool = True
    seed: int = 42
    # bookkeeping
    save_steps: int = Field(500, ge=1)
    save_total_limit: int | None = 3
    eval_steps: int | None = Field(None, ge=1, description="evaluate every N steps (default: at save steps)")
    logging_steps: int = Field(10, ge=1)
    resume: bool | str = Field(False, description="true: the run folder's last checkpoint; or a checkpoint path")
    overwrite_output: bool = Field(False, description="train into a run folder that holds an earlier run's files")
    dry_run: bool = Field(False, description="validate, measure and report the data, then stop before the model loads")
    validate_data: bool = Field(True, description="run vlmdata validate first and refuse to start on errors")
    num_workers: int = Field(0, ge=0)
    deepspeed: str | None = Field(None, description="DeepSpeed config file (ZeRO-3 etc.)")
    fsdp: bool = Field(False, description="shard the model with FSDP (under accelerate launch / torchrun)")
    fsdp_config: str | None = Field(None, description="FSDP settings JSON file (transformers' fsdp_config)")
    report_to: str = "none"
    progress: bool = True

    @field_validator("box_syntax")
    @classmethod
    def _syntax(cls, value: str | None) -> str | None:
        if value is not None and value not in BOX_SYNTAXES:
            raise ValueError(f"box_syntax must be one of {', '.join(BOX_SYNTAXES)}")
        return value

    @field_validator("data", "val", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _pixels(self) -> TrainConfig:
        if self.min_pixels and self.max_pixels and self.min_pixels > self.max_pixels:
            raise ValueError(f"max_pixels ({self.max_pixels}) must be at least min_pixels ({self.min_pixels})")
        if not self.data:
            raise ValueError("data: give at least one training file")
        return self


def read_config_file(path: str) -> dict[str, Any]:
    """Options from a YAML or JSON file (keys as the long options, dashes or underscores)."""
    if not os.path.isfile(path):
        raise VlmdataError(f"{path}: no such config file")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    loads = json.loads if path.endswith(".json") else _yaml().safe_load
    try:
        data = loads(text)
    except Exception as exc:  # yaml/json parse errors carry the line in their text
        raise VlmdataError(f"{path}: cannot parse it ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise VlmdataError(f"{path}: the config must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _option(loc: tuple) -> str:
    """``batch_size (--batch-size)``: the name as the file and as the command line write it."""
    if not loc:
        return "config"
    name = str(loc[0])
    return f"{name} (--{name.replace('_', '-')})" + "".join(f"[{p}]" for p in loc[1:])


def build_config(values: dict[str, Any], source: str = "options") -> TrainConfig:
    """Validated options; an error names each bad option and why."""
    try:
        return TrainConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{_option(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))
        raise VlmdataError(f"{source}: {problems}") from None


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise VlmdataError("YAML config files need PyYAML: pip install 'vlmdata[train]' (or use .json)") from None
    return yaml


def save_config(config: TrainConfig, folder: str) -> str:
    from vlmdata.outputs import atomic_write_bytes

    yaml = _yaml()

    path = os.path.join(folder, CONFIG_NAME)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
