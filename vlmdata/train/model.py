"""Model and processor of a run: loading, chat template choice, freezing and LoRA."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vlmdata.errors import VlmdataError
from vlmdata.train import templates
from vlmdata.train.compat import setup_environment
from vlmdata.train.config import TrainConfig
from vlmdata.train.families import Family

QWEN_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"


def builtin_template(family: Family) -> str:
    if family.name == "internvl":
        return templates.chatml("<IMG_CONTEXT>\n", None)
    if family.name in ("qwen2_vl", "qwen2_5_vl"):
        return templates.chatml(QWEN_PLACEHOLDER, templates.QWEN_DEFAULT_SYSTEM)
    if family.name == "qwen3_vl":
        return templates.chatml(QWEN_PLACEHOLDER, None)
    return templates.llava()


def choose_template(processor: Any, family: Family, policy: str) -> str:
    """Set the processor's chat template; returns which one (``builtin`` or ``model``).

    ``builtin`` (the default) renders the family's released template text with a
    ``{% generation %}`` block around each reply and its end-of-turn token; ``model`` keeps the
    checkpoint's own template, which must carry a generation block for the label mask.
    """
    if policy == "model":
        own = processor.chat_template or ""
        if "generation" not in own or "endgeneration" not in own:
            raise VlmdataError(
                "--chat-template model: the model's chat template has no {% generation %} block, so no "
                "assistant token could be labelled; use --chat-template builtin"
            )
        return "model"
    processor.chat_template = builtin_template(family)
    return "builtin"


def load_processor(config: TrainConfig, family: Family) -> tuple[Any, str]:
    from transformers import AutoProcessor

    setup_environment()  # the processors need the no-torchvision patch before they load

    processor = AutoProcessor.from_pretrained(config.model)
    if config.min_pixels or config.max_pixels:
        ip = processor.image_processor
        if not hasattr(ip, "merge_size"):
            raise VlmdataError("--min-pixels/--max-pixels apply to Qwen models only")
        size = dict(ip.size)
        if config.min_pixels:
            size["shortest_edge"] = config.min_pixels
        if config.max_pixels:
            size["longest_edge"] = config.max_pixels
        ip.size = size
    return processor, choose_template(processor, family, config.chat_template)


def load_model(config: TrainConfig) -> Any:
    """The model to train. transformers v5 loads a checkpoint in its saved dtype (bf16 for released VLMs);
    a full fine-tune loads float32 instead, the master weights mixed precision (``--bf16``) computes from:
    an Adam step at a fine-tuning rate is below half a bf16 ulp of most weights, so held in bf16 they would
    barely move. Under LoRA the base only runs forward and keeps its dtype; peft's adapters are float32."""
    import torch
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(config.model, dtype="auto" if config.lora else torch.float32)


@dataclass
class Trainable:
    model: Any
    total: int
    trainable: int
    by_part: dict[str, int]  # trainable parameters per part (vision, projector, language, other)
    lora_modules: list[str]


def freeze(model: Any, family: Family, config: TrainConfig) -> None:
    frozen = {
        part
        for part, on in (
            ("vision", config.freeze_vision),
            ("projector", config.freeze_projector),
            ("language", config.freeze_llm),
        )
        if on
    }
    if not frozen:
        return
    for name, param in model.named_parameters():
        if family.part_of(name) in frozen:
            param.requires_grad_(False)


def apply_lora(model: Any, config: TrainConfig) -> tuple[Any, list[str]]:
    from peft import LoraConfig, get_peft_model

    try:
        pattern = re.compile(config.lora_targets)
    except re.error as exc:
        raise VlmdataError(f"--lora-targets is not a valid regular expression: {exc}") from None
    hits = [n for n, _ in model.named_modules() if pattern.fullmatch(n)]
    if not hits:
        raise VlmdataError(f"--lora-targets {config.lora_targets!r} matches no module of this model")
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), hits


def prepare(model: Any, family: Family, config: TrainConfig) -> Trainable:
    """Freeze what the config says, wrap LoRA adapters, count what trains."""
    hits: list[str] = []
    if config.lora:
        model, hits = apply_lora(model, config)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need a grad-carrying input
    freeze(model, family, config)
    by_part: dict[str, int] = {}
    total = trainable = 0
    for name, param in model.named_parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            part = family.part_of(name)
            by_part[part] = by_part.get(part, 0) + param.numel()
    if trainable == 0:
        raise VlmdataError("nothing to train: every parameter is frozen (check --freeze-* and --lora)")
    return Trainable(model, total, trainable, by_part, hits)
