"""Tiny randomly initialised VLMs built from configs, saved as ordinary model folders.

For tests, the benchmark and trying the training stage without a download: each family gets a
byte-level BPE tokenizer trained in-process with the family's special tokens, its PIL image
processor, its processor with vlmdata's chat template, and a model config whose ids and
geometry agree (the traps are listed in docs/training.md#pitfalls, P3-P5).
The folder loads with ``AutoModelForImageTextToText`` / ``AutoProcessor`` like a real checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlmdata.train import templates
from vlmdata.train.compat import setup_environment

TINY_FAMILIES = ("internvl", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava")

_CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Describe the image in one sentence. What colour is the shape in the picture?",
    "The picture shows a red circle on a blue background. There is a green square.",
    "Find the cat and the dog. The cat is at the left, the dog at the right.",
    "user assistant system You are a helpful assistant. USER: ASSISTANT: Answer briefly.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 [ ] ( ) , . : ' \" { } bbox_2d label json",
    "Please provide the bounding box coordinates of the region this sentence describes:",
]


@dataclass(frozen=True)
class TextSize:
    """Text-model geometry; ``head_dim`` = hidden / heads must be even (Qwen mrope splits it)."""

    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    vocab_size: int = 512


def _tokenizer(family: str, vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if family == "internvl":
        # Names as in the InternVL3-*-hf tokenizer_config.json (the processor reads these attributes).
        named = {
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        }
        base = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values()]
    elif family.startswith("qwen"):
        named = {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_start_token": "<|vision_start|>",
            "vision_end_token": "<|vision_end|>",
        }
        base = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}
        grounding = ["<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>"]
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *named.values(), *grounding]
    elif family == "llava":
        named = {"image_token": "<image>"}
        base = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
        specials = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    else:
        raise ValueError(family)
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(_CORPUS * 4, trainer=trainer)
    if family == "internvl":
        raw.add_tokens(["<ref>", "</ref>", "<box>", "</box>"])  # InternVL's grounding tags are added tokens
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        extra_special_tokens=named,
        padding_side="left" if family == "internvl" else "right",
        **base,
    )


def build_tiny(family: str, text: TextSize | None = None, vision_width: int = 32, vision_layers: int = 1) -> tuple:
    """(model, processor) of ``family`` with random weights."""
    setup_environment()
    text = text or TextSize()
    tok = _tokenizer(family, text.vocab_size)
    dims = {
        "hidden_size": text.hidden_size,
        "intermediate_size": text.intermediate_size,
        "num_hidden_layers": text.num_hidden_layers,
        "num_attention_heads": text.num_attention_heads,
        "num_key_value_heads": text.num_key_value_heads,
        "max_position_embeddings": 32768,
        "vocab_size": len(tok),
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
        "pad_token_id": tok.pad_token_id,
    }
    if family == "internvl":
        return _internvl(tok, dims, vision_width, vision_layers)
    if family == "qwen3_vl":
        return _qwen3(tok, dims, text, vision_width, vision_layers)
    if family.startswith("qwen"):
        return _qwen(family, tok, dims, text, vision_width, vision_layers)
    return _llava(tok, dims, vision_width, vision_layers)


def _internvl(tok: Any, dims: dict[str, Any], width: int, layers: int) -> tuple:
    from transformers import (
        GotOcr2ImageProcessorPil,
        InternVLConfig,
        InternVLForConditionalGeneration,
        InternVLProcessor,
    )

    tile, patch, ratio = 32, 8, 0.5
    seq = int((tile // patch) ** 2 * ratio**2)  # the processor's image_seq_length must equal this (P4)
    cfg = InternVLConfig(
        vision_config={
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_hidden_layers": layers,
            "num_attention_heads": 2,
            "image_size": [tile, tile],
            "patch_size": [patch, patch],
        },
        text_config={"model_type": "qwen2", "tie_word_embeddings": True, **dims},
        image_token_id=tok.context_image_token_id,
        image_seq_length=seq,
        downsample_ratio=ratio,
        vision_feature_layer=-1,
    )
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": tile, "width": tile}, crop_to_patches=True, min_patches=1, max_patches=4
    )
    processor = InternVLProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        image_seq_length=seq,
        chat_template=templates.chatml("<IMG_CONTEXT>\n", None),
    )
    return InternVLForConditionalGeneration(cfg), processor


def _qwen_token_ids(tok: Any) -> dict[str, int]:
    return {
        "image_token_id": tok.image_token_id,
        "video_token_id": tok.video_token_id,
        "vision_start_token_id": tok.vision_start_token_id,
        "vision_end_token_id": tok.vision_end_token_id,
    }


def _qwen_image_processor(patch: int, merge: int, temporal: int) -> Any:
    """4-16 image tokens per image: resized sides are multiples of patch * merge."""
    from transformers import Qwen2VLImageProcessorPil

    unit = patch * merge
    return Qwen2VLImageProcessorPil(
        size={"shortest_edge": 4 * unit * unit, "longest_edge": 16 * unit * unit},
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=temporal,
    )


def _qwen(family: str, tok: Any, dims: dict[str, Any], text: TextSize, width: int, layers: int) -> tuple:
    head_dim = text.hidden_size // text.num_attention_heads
    half = head_dim // 2  # sum(mrope_section) must be head_dim / 2 (P5)
    section = [half - 2 * (half // 3), half // 3, half // 3]
    text_cfg = {**dims, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section}}
    patch, merge, temporal = 14, 2, 2
    if family == "qwen2_vl":
        from transformers import Qwen2VLConfig as Config
        from transformers import Qwen2VLForConditionalGeneration as Model
        from transformers import Qwen2VLProcessor as Processor

        vision = {
            "depth": layers,
            "embed_dim": width,
            "hidden_size": text.hidden_size,  # the merger's output = text hidden size (P4)
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": temporal,
        }
    else:
        from transformers import Qwen2_5_VLConfig as Config
        from transformers import Qwen2_5_VLForConditionalGeneration as Model
        from transformers import Qwen2_5_VLProcessor as Processor

        vision = {
            "depth": max(layers, 2),
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_heads": 2,
            "out_hidden_size": text.hidden_size,
            "window_size": 56,
            "fullatt_block_indexes": [max(layers, 2) - 1],
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": temporal,
        }
    cfg = Config(
        text_config=text_cfg,
        vision_config=vision,
        **_qwen_token_ids(tok),
    )
    image_processor = _qwen_image_processor(patch, merge, temporal)
    template = templates.chatml("<|vision_start|><|image_pad|><|vision_end|>", templates.QWEN_DEFAULT_SYSTEM)
    return Model(cfg), Processor(image_processor=image_processor, tokenizer=tok, chat_template=template)


def _qwen3(tok: Any, dims: dict[str, Any], text: TextSize, width: int, layers: int) -> tuple:
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    head_dim = text.hidden_size // text.num_attention_heads
    half = head_dim // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    text_cfg = {
        **dims,
        "head_dim": head_dim,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "mrope_section": section,
            "mrope_interleaved": True,
        },
    }
    patch, merge, temporal = 16, 2, 2  # Qwen3-VL: patch 16, so resized sides are multiples of 32
    depth = max(layers, 2)
    cfg = Qwen3VLConfig(
        text_config=text_cfg,
        vision_config={
            "depth": depth,
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_heads": 2,
            "out_hidden_size": text.hidden_size,
            "patch_size": patch,
            "spatial_merge_size": merge,
            "temporal_patch_size": temporal,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [0],
        },
        **_qwen_token_ids(tok),
    )
    image_processor = _qwen_image_processor(patch, merge, temporal)
    template = templates.chatml("<|vision_start|><|image_pad|><|vision_end|>", None)
    processor = Qwen3VLProcessor(image_processor=image_processor, tokenizer=tok, chat_template=template)
    return Qwen3VLForConditionalGeneration(cfg), processor


def _llava(tok: Any, dims: dict[str, Any], width: int, layers: int) -> tuple:
    from transformers import CLIPImageProcessorPil, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    size, patch = 32, 8
    cfg = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": width,
            "intermediate_size": width * 2,
            "num_hidden_layers": max(layers, 2),
            "num_attention_heads": 2,
            "image_size": size,
            "patch_size": patch,
            "projection_dim": width,
        },
        text_config={"model_type": "llama", **dims},
        image_token_id=tok.image_token_id,
        image_seq_length=(size // patch) ** 2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=patch,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token
        chat_template=templates.llava(),
    )
    return LlavaForConditionalGeneration(cfg), processor


def save_tiny(family: str, folder: str, seed: int = 0, **size: Any) -> str:
    """Build a tiny ``family`` model and save model + processor into ``folder``."""
    import torch

    torch.manual_seed(seed)
    model, processor = build_tiny(family, **size)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
