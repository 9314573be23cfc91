"""What differs between the model families: detection, grounding syntax and frame, modules.

Grounding is rendered in the model's own syntax and frame (docs/frames.md#frames-at-a-glance): InternVL
``<ref>/<box>`` on 0-1000, Qwen2-VL ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on 0-1000,
Qwen2.5-VL absolute pixels of the image *as its processor resizes it* (docs/frames.md#pixel_resized), with the
``{"bbox_2d": ..}`` JSON answers it was trained on, Qwen3-VL the same JSON on 0-1000, LLaVA
fractions of the image.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from vlmdata.errors import VlmdataError
from vlmdata.schemas.sample import Frame

# Modules by the transformers (v5) names: vision tower, projector, language model.
_VISION = r"(?:^|\.)(?:vision_tower|visual)\.(?!merger|deepstack_merger_list)"
_PROJECTOR = r"(?:^|\.)(?:multi_modal_projector|visual\.merger|visual\.deepstack_merger_list)\."
_LANGUAGE = r"(?:^|\.)(?:language_model\.|lm_head)"

# LoRA by default: every projection of the language model's attention and MLP, never the vision
# tower (a bare ["q_proj", ...] list would also wrap CLIP's and InternViT's: notes, pitfall P7).
DEFAULT_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass(frozen=True)
class Family:
    name: str
    model_types: tuple[str, ...]
    box_syntax: str  # internvl | qwen | json | llava (vlmdata/convert/grounding.py names)
    box_frame: Frame

    def part_of(self, parameter: str) -> str:
        """``vision``, ``projector``, ``language`` or ``other`` for a parameter name."""
        if re.search(_PROJECTOR, parameter):
            return "projector"
        if re.search(_VISION, parameter):
            return "vision"
        if re.search(_LANGUAGE, parameter):
            return "language"
        return "other"


FAMILIES = {
    f.name: f
    for f in (
        Family("internvl", ("internvl",), "internvl", Frame.NORM1000),
        Family("qwen2_vl", ("qwen2_vl",), "qwen", Frame.NORM1000),
        Family("qwen2_5_vl", ("qwen2_5_vl",), "json", Frame.PIXEL_RESIZED),
        Family("qwen3_vl", ("qwen3_vl", "qwen3_vl_moe"), "json", Frame.NORM1000),
        Family("llava", ("llava",), "llava", Frame.NORM1),
    )
}
BOX_SYNTAXES = ("internvl", "qwen", "tokens", "json", "llava")  # "tokens": the alias of "qwen" (grounding.py)


def detect_family(model_dir: str) -> Family:
    """The family of a local model folder, from its ``config.json`` ``model_type``."""
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise VlmdataError(
            f"{model_dir}: no config.json; --model must be a local model folder "
            "(a transformers checkpoint saved with save_pretrained)"
        )
    try:
        with open(config_path, encoding="utf-8") as fh:
            model_type = json.load(fh).get("model_type")
    except (OSError, ValueError) as exc:
        raise VlmdataError(f"{config_path}: cannot read it ({exc})") from None
    for family in FAMILIES.values():
        if model_type in family.model_types:
            return family
    known = ", ".join(t for f in FAMILIES.values() for t in f.model_types)
    hint = " (InternVL needs the -hf transformers checkpoints)" if model_type == "internvl_chat" else ""
    raise VlmdataError(f"{config_path}: model_type {model_type!r} is not supported{hint}; supported: {known}")
