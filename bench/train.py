"""Training throughput of ``vlmdata train`` against a plain ``Trainer`` padding every batch to the longest record.

    python bench/train.py [--size tiny|small|0.5b|internvl-tiny|internvl-0.1b] [--steps N] [--batch-size B]
                          [--records N] [--device auto|cpu|cuda] [--workdir DIR] [--seed 0] [--json] [--verbose]

Both runs train the same randomly initialised Qwen2-VL-style (or InternVL-style) model (one folder built with
``vlmdata.train.tiny``, so both load the same weights) on the same generated ms-swift JSONL for
the same steps and batch size, with the same optimiser settings:

* ``vlmdata``: ``vlmdata.train.runner.train(TrainConfig(...))``, the path of ``vlmdata train``
  (validation on, batches grouped by the exact measured lengths, padded to the longest in the
  batch);
* ``naive``: a plain ``transformers.Trainer`` with random sampling and the same ``Collator`` but
  with ``pad_to`` = the longest record of the data set (what ``padding="max_length"`` with the data's
  max length does).

Data: ``--records`` deterministic ms-swift ``messages`` rows over images of 9 sizes (112x112 to
1024x768), a mix like real SFT data: short questions, grounding with ``<ref-object>``/``<bbox>``
and ``objects``, multi-turn, multi-image, medium descriptions and a few long ones; the spread of
lengths is what padding wastes. Sizes (text model; the vision tower is small in all of them):

* ``tiny``: hidden 64, 2 layers (the CPU default); ``small``: hidden 256, 4 layers;
* ``0.5b``: the Qwen2-0.5B text geometry (hidden 896, intermediate 4864, 24 layers, 14 heads, 2 KV
  heads) with its embedding padded to Qwen2's 151,936 rows and tied to the LM head, as in the real
  checkpoint (the tiny tokenizer has about 500 tokens; the unused rows cost what they cost in real
  training: the LM head over 151,936 columns), images up to 256 tokens. The GPU default.
* ``internvl-tiny`` / ``internvl-0.1b``: InternVL-style (Qwen2 text of hidden 64 x 2 layers / 512 x 12
  layers, the tiny 32-pixel-tile vision tower), the embedding padded to 1,024 / 151,936 rows and tied;
  ``bench/gpu_check.py`` trains them next to the Qwen2-VL-style ones.

Each variant runs in its own Python process so that its peak memory is its own
(``torch.cuda.max_memory_allocated`` on a GPU, the process peak RSS on CPU, which includes the
imports and the data preparation). Timing covers the training loop only, from the Trainer's
``on_train_begin`` to the end of the last step (synchronised on a GPU), so the checkpoint that
``vlmdata train`` writes at the end is not counted. Real tokens are ``attention_mask == 1``; fed
tokens are the padded batch size the model computed on. On a GPU both runs use bf16.

The runs draw different samples (random order against length-grouped megabatches of 50 batches,
longest first), so compare real tokens/s; samples/s is only comparable when ``--steps`` covers
whole megabatches (a multiple of 50, as the defaults are) and the records are sampled evenly.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import ANSWERS, FOLLOW_A, FOLLOW_Q, OBJECTS, QUESTIONS

QWEN2_VOCAB = 151_936  # rows of Qwen2's embedding (the tokenizer has 151,646 tokens)
IMAGE_SIZES = [(112, 112), (224, 224), (320, 240), (240, 320), (448, 336), (336, 448), (640, 480), (800, 600)]
IMAGE_SIZES += [(1024, 768)]
VARIANTS = ("naive", "vlmdata")

DESCRIPTION = [
    "The scene is lit from the left and the shadows fall towards the lower right corner.",
    "In the background there is a row of trees and a low brick wall with a wooden gate.",
    "A person in a blue shirt walks past a parked red car while holding a cup of coffee.",
    "The table in the foreground holds a laptop, a notebook, two pens and a small plant.",
    "Several bicycles lean against the railing next to the entrance of the building.",
    "The colours are muted, mostly grey and brown, with a bright yellow sign near the top.",
    "A traffic light at the corner shows red, and a few pedestrians wait at the crossing.",
    "The dog sits on the grass and looks at the camera; the cat sleeps on the bench behind it.",
    "Text on the poster is partly hidden by a reflection, but the word OPEN can be read.",
    "The photograph seems to be taken in the late afternoon, judging by the long shadows.",
]


@dataclass(frozen=True)
class Preset:
    """A model size: text geometry, vision tower, embedding rows, image token budget, learning rate."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vision_width: int
    vision_layers: int
    vocab: int | None  # pad the embedding to this many rows (None: the tokenizer's size)
    max_pixels: int | None  # Qwen image processor max pixels (None: the tiny processor's 16 tokens)
    lr: float
    family: str = "qwen2_vl"
    lora_lr: float = 2e-4  # LoRA moves little at a full fine-tune's rate


UNIT = 28 * 28  # pixels per Qwen2-VL image token (14 px patches, 2x2 merge)
PRESETS = {
    "tiny": Preset(64, 128, 2, 4, 2, 32, 1, None, None, 1e-3, lora_lr=5e-3),
    "small": Preset(256, 1024, 4, 4, 2, 64, 2, None, 64 * UNIT, 5e-4),
    "0.5b": Preset(896, 4864, 24, 14, 2, 512, 8, QWEN2_VOCAB, 256 * UNIT, 1e-5),
    # InternVL-style (Qwen2 text, the tiny InternViT geometry: 32 px tiles, 4 tokens each); the embedding
    # is padded and tied in both, as in InternVL3's Qwen2.5 text model.
    "internvl-tiny": Preset(64, 128, 2, 4, 2, 32, 1, 1024, None, 1e-3, "internvl", 5e-3),
    "internvl-0.1b": Preset(512, 2816, 12, 8, 2, 256, 4, QWEN2_VOCAB, None, 2e-5, "internvl"),
}


# --------------------------------------------------------------------------- data


def write_images(folder: str, seed: int) -> list[tuple[str, int, int]]:
    """Two images per size (shapes on a plain background), as (relative path, width, height)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    out = []
    for k, (w, h) in enumerate(IMAGE_SIZES * 2):
        rel = f"images/{k:02d}_{w}x{h}.png"
        img = Image.new("RGB", (w, h), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        draw = ImageDraw.Draw(img)
        for _ in range(3):
            x1, y1 = rng.randrange(w // 2), rng.randrange(h // 2)
            draw.rectangle([x1, y1, x1 + w // 4, y1 + h // 4], fill=(rng.randrange(256), 0, rng.randrange(256)))
        img.save(os.path.join(folder, rel))
        out.append((rel, w, h))
    return out


def _sentences(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(DESCRIPTION + ANSWERS + FOLLOW_A) for _ in range(n))


def _box(rng: random.Random, w: int, h: int) -> list[int]:
    x1, y1 = rng.randrange(w - 20), rng.randrange(h - 20)
    return [x1, y1, rng.randint(x1 + 10, w), rng.randint(y1 + 10, h)]


def make_record(i: int, rng: random.Random, images: list[tuple[str, int, int]]) -> dict[str, Any]:
    """One ms-swift row; the kind (and so the length) is drawn with fixed weights."""
    rel, w, h = rng.choice(images)
    row: dict[str, Any] = {"id": f"bench-{i:06d}", "images": [rel]}
    kind = rng.choices(
        ["short", "grounding", "multi_turn", "multi_image", "description", "long"], [35, 20, 15, 5, 20, 5]
    )[0]
    if kind == "short":
        msgs = [("user", f"<image>{rng.choice(QUESTIONS)}"), ("assistant", rng.choice(ANSWERS))]
    elif kind == "grounding":
        refs = rng.sample(OBJECTS, rng.randint(1, 3))
        question = " and ".join(f"the {r}" for r in refs)
        answer = ", ".join("<ref-object> at <bbox>" for _ in refs)
        msgs = [("user", f"<image>Where are {question}?"), ("assistant", f"{answer}.")]
        row["objects"] = {"ref": refs, "bbox": [_box(rng, w, h) for _ in refs]}
    elif kind == "multi_turn":
        msgs = [("user", f"<image>{rng.choice(QUESTIONS)}"), ("assistant", rng.choice(ANSWERS))]
        for _ in range(rng.randint(1, 3)):
            msgs += [("user", rng.choice(FOLLOW_Q)), ("assistant", _sentences(rng, rng.randint(1, 2)))]
    elif kind == "multi_image":
        second = rng.choice(images)[0]
        row["images"] = [rel, second]
        msgs = [
            ("user", "Image-1: <image>\nImage-2: <image>\nWhat differs between the two images?"),
            ("assistant", _sentences(rng, rng.randint(2, 5))),
        ]
    elif kind == "description":
        msgs = [("user", "<image>Describe the image in detail."), ("assistant", _sentences(rng, rng.randint(3, 8)))]
    else:
        msgs = [
            ("user", "<image>Write a thorough description of everything in the image."),
            ("assistant", _sentences(rng, rng.randint(15, 40))),
        ]
    row["messages"] = [{"role": r, "content": c} for r, c in msgs]
    return row


def write_data(workdir: str, records: int, seed: int) -> str:
    """The JSONL (paths relative to ``workdir``, the media root) and its images."""
    images = write_images(workdir, seed)
    rng = random.Random(seed)
    path = os.path.join(workdir, f"train-{records}-s{seed}.jsonl")
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(records):
            fh.write(json.dumps(make_record(i, rng, images)) + "\n")
    return path


# --------------------------------------------------------------------------- model


def build_model(preset: Preset, folder: str, seed: int) -> int:
    """Save the model folder both runs load; returns its parameter count."""
    import torch

    from vlmdata.train.tiny import TextSize, build_tiny

    torch.manual_seed(seed)
    text = TextSize(preset.hidden, preset.intermediate, preset.layers, preset.heads, preset.kv_heads)
    model, processor = build_tiny(
        preset.family, text=text, vision_width=preset.vision_width, vision_layers=preset.vision_layers
    )
    if preset.vocab is not None:
        model.config.tie_word_embeddings = True
        model.config.get_text_config().tie_word_embeddings = True
        model.resize_token_embeddings(preset.vocab, mean_resizing=False)
        model.tie_weights()
    params = sum(p.numel() for p in model.parameters())  # tied weights are counted once
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return params


# --------------------------------------------------------------------------- child: one variant


@dataclass
class Counts:
    """What the model was fed during training (filled by ``instrument``)."""

    real: int = 0
    fed: int = 0
    samples: int = 0
    steps: int = 0
    longest: int = 0
    start: float = 0.0
    end: float = 0.0
    losses: list[float] = field(default_factory=list)  # the Trainer's logged training losses, in order


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def instrument(trainer: Any, counts: Counts, count_real: bool) -> None:
    """Count fed tokens per training step and time the loop (first step begin to last step end).

    Shapes are free; the real-token count syncs a GPU, so it is done here only for the plain
    ``Trainer``: ``vlmdata``'s Trainer already counts them (one sync per step in both runs).
    """
    from transformers import TrainerCallback

    original = trainer.compute_loss

    def compute_loss(model: Any, inputs: dict[str, Any], *a: Any, **kw: Any) -> Any:
        if model.training:
            mask = inputs["attention_mask"]
            counts.fed += mask.numel()
            counts.samples += mask.shape[0]
            counts.longest = max(counts.longest, mask.shape[1])
            if count_real:
                counts.real += int(mask.sum())
        return original(model, inputs, *a, **kw)

    class Clock(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            _sync()
            counts.start = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.global_step >= state.max_steps:
                _sync()
                counts.end = time.perf_counter()
            counts.steps = state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                counts.losses.append(float(logs["loss"]))

    trainer.compute_loss = compute_loss
    trainer.add_callback(Clock())


def make_config(args: argparse.Namespace, output: str, **options: Any) -> Any:
    """The run's options (``options`` win: the GPU check's LoRA variant and logging interval)."""
    import torch

    from vlmdata.train.config import TrainConfig

    preset = PRESETS[args.size]
    values: dict[str, Any] = dict(
        model=args.model,
        data=[args.data],
        root=args.workdir,
        output=output,
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=preset.lr,
        max_pixels=preset.max_pixels,
        save_steps=args.steps + 1,
        save_total_limit=1,
        validate_data=True,
        progress=False,
        bf16=torch.cuda.is_available(),
        seed=args.seed,
    )
    return TrainConfig(**{**values, **options})


def run_vlmdata(args: argparse.Namespace, output: str, **options: Any) -> dict[str, Any]:
    """``vlmdata train`` as the CLI runs it, with the Trainer instrumented after it is built."""
    from vlmdata.train import runner

    counts = Counts()
    made: list[Any] = []
    make_trainer = runner.make_trainer

    def instrumented(*a: Any, **kw: Any) -> Any:
        trainer = make_trainer(*a, **kw)
        instrument(trainer, counts, count_real=False)
        made.append(trainer)
        return trainer

    runner.make_trainer = instrumented
    say = print if args.verbose else (lambda _msg: None)
    try:
        summary = runner.train(make_config(args, output, **options), say=say)
    finally:
        runner.make_trainer = make_trainer  # a second run in this process instruments only its own Trainer
    counts.real = made[0].tokens
    if counts.real != summary.tokens:
        raise AssertionError(f"token counts disagree: {counts.real} != {summary.tokens}")
    return {
        "train_loss": summary.train_loss,
        "peak_memory_mb": summary.peak_memory_mb,
        "peak_memory_kind": summary.peak_memory_kind,
        "parameters": summary.total_parameters,
        "summary_tokens_per_second": summary.tokens_per_second,  # includes the final checkpoint
        **_rates(counts),
    }


def run_naive(args: argparse.Namespace, output: str, **options: Any) -> dict[str, Any]:
    """A plain ``Trainer``: random order, every batch padded to the data set's longest record."""
    from transformers import Trainer

    from vlmdata.train.collate import Collator
    from vlmdata.train.compat import setup_environment
    from vlmdata.train.families import detect_family
    from vlmdata.train.model import load_model, load_processor
    from vlmdata.train.render import Renderer
    from vlmdata.train.runner import peak_memory, prepare_data, training_arguments

    setup_environment()  # offline, and the processor patch for a machine without torchvision
    config = make_config(args, output, **options)
    family = detect_family(config.model)
    processor, _ = load_processor(config, family)  # the same processor settings and chat template
    renderer = Renderer(family, processor)
    prepared = prepare_data(config, renderer, processor)
    pad_to = max(prepared.train.lengths)
    model = load_model(config)  # the same weights in the same dtype as the vlmdata run
    # The run's own optimiser settings; only what makes it the plain baseline differs.
    targs = training_arguments(
        config,
        evaluate=False,
        output_dir=output,
        save_strategy="no",
        train_sampling_strategy="random",
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=prepared.train.samples,
        data_collator=Collator(renderer, processor, pad_to=pad_to),
    )
    counts = Counts()
    instrument(trainer, counts, count_real=True)
    result = trainer.train()
    if counts.longest != pad_to:
        raise AssertionError(f"batches were {counts.longest} long, expected pad_to {pad_to}")
    memory, kind = peak_memory()
    return {
        "train_loss": result.training_loss,
        "peak_memory_mb": round(memory, 1),
        "peak_memory_kind": kind,
        "parameters": sum(p.numel() for p in model.parameters()),
        "pad_to": pad_to,
        **_rates(counts),
    }


def _rates(counts: Counts) -> dict[str, Any]:
    seconds = counts.end - counts.start
    return {
        "steps": counts.steps,
        "samples": counts.samples,
        "real_tokens": counts.real,
        "fed_tokens": counts.fed,
        "longest_batch": counts.longest,
        "seconds": round(seconds, 3),
        "samples_per_second": round(counts.samples / seconds, 3),
        "real_tokens_per_second": round(counts.real / seconds, 1),
        "fed_tokens_per_second": round(counts.fed / seconds, 1),
        "pad_fraction": round(1 - counts.real / counts.fed, 4),
        "loss_start": counts.losses[0] if counts.losses else None,
        "loss_end": counts.losses[-1] if counts.losses else None,
    }


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({torch.get_num_threads()} threads)"


def child(args: argparse.Namespace) -> None:
    """Run one variant and write its numbers to ``--result``."""
    output = tempfile.mkdtemp(prefix=f"run-{args.variant}-", dir=args.workdir)
    try:
        run = run_vlmdata if args.variant == "vlmdata" else run_naive
        out = {"variant": args.variant, "device": device_name(), **run(args, output)}
    finally:
        shutil.rmtree(output, ignore_errors=True)
    with open(args.result, "w", encoding="utf-8") as fh:
        json.dump(out, fh)


# --------------------------------------------------------------------------- parent


def resolve_device(choice: str) -> bool:
    """True to use CUDA."""
    import torch

    available = torch.cuda.is_available()
    if choice == "cuda" and not available:
        sys.exit("--device cuda: no CUDA device is visible")
    return available and choice != "cpu"


def print_table(rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    print(
        f"device: {rows[0]['device']}; model: {PRESETS[meta['size']].family} {meta['size']}, "
        f"{meta['parameters']:,} parameters; "
        f"{meta['records']} records, batch {meta['batch_size']}, {meta['steps']} steps; "
        f"vlmdata: validate on, length-grouped batches; naive: random order, padded to {meta['pad_to']} tokens"
    )
    head = ("variant", "steps", "samples/s", "real tok/s", "fed tok/s", "pad frac", "peak MB", "loop s", "loss")
    print("{:<8} {:>5} {:>10} {:>11} {:>11} {:>8} {:>9} {:>8} {:>7}".format(*head))
    for r in rows:
        print(
            f"{r['variant']:<8} {r['steps']:>5} {r['samples_per_second']:>10.2f} {r['real_tokens_per_second']:>11,.0f} "
            f"{r['fed_tokens_per_second']:>11,.0f} {r['pad_fraction']:>8.1%} {r['peak_memory_mb']:>9,.0f} "
            f"{r['seconds']:>8.1f} {r['train_loss']:>7.3f}"
        )
    print(
        f"vlmdata/naive: {meta['speedup_tokens']:.2f}x real tokens/s, {meta['speedup_samples']:.2f}x samples/s, "
        f"{meta['memory_ratio']:.2f}x peak memory ({rows[0]['peak_memory_kind']})"
    )


def parent(args: argparse.Namespace) -> int:
    cuda = resolve_device(args.device)
    args.size = args.size or ("0.5b" if cuda else "tiny")
    args.steps = args.steps or (300 if cuda else 50)
    args.batch_size = args.batch_size or (8 if cuda else 4)
    workdir = args.workdir or tempfile.mkdtemp(prefix="vlmdata-bench-train-")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ)
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    try:
        data = write_data(workdir, args.records, args.seed)
        model = os.path.join(workdir, f"model-{args.size}")
        params = build_model(PRESETS[args.size], model, args.seed)
        print(f"model: {PRESETS[args.size].family} {args.size}, {params:,} parameters; data: {data}", file=sys.stderr)
        rows = []
        for variant in VARIANTS:
            result = os.path.join(workdir, f"{variant}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--variant", variant, "--result", result]
            cmd += ["--workdir", workdir, "--model", model, "--data", data, "--size", args.size]
            cmd += ["--steps", str(args.steps), "--batch-size", str(args.batch_size), "--seed", str(args.seed)]
            cmd += ["--verbose"] if args.verbose else []
            started = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=not args.verbose, text=True)
            if proc.returncode != 0:
                print((proc.stdout or "")[-3000:], (proc.stderr or "")[-6000:], sep="\n", file=sys.stderr)
                print(f"{variant}: exit status {proc.returncode}", file=sys.stderr)
                return 1
            with open(result, encoding="utf-8") as fh:
                rows.append(json.load(fh))
            print(f"{variant}: process wall {time.perf_counter() - started:.1f} s", file=sys.stderr)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    by = {r["variant"]: r for r in rows}
    meta = {
        "size": args.size,
        "parameters": params,
        "records": args.records,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "pad_to": by["naive"]["pad_to"],
        "speedup_tokens": by["vlmdata"]["real_tokens_per_second"] / by["naive"]["real_tokens_per_second"],
        "speedup_samples": by["vlmdata"]["samples_per_second"] / by["naive"]["samples_per_second"],
        "memory_ratio": by["vlmdata"]["peak_memory_mb"] / by["naive"]["peak_memory_mb"],
    }
    print_table(rows, meta)
    if args.json:
        print(json.dumps({**meta, "rows": rows}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=sorted(PRESETS), help="model size (default: 0.5b on a GPU, tiny on CPU)")
    ap.add_argument("--steps", type=int, help="optimiser steps per run (default: 300 on a GPU, 50 on CPU)")
    ap.add_argument("--batch-size", type=int, help="per-device batch size (default: 8 on a GPU, 4 on CPU)")
    ap.add_argument("--records", type=int, default=1000, help="generated training records")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--workdir", help="keep data, model and results here (default: a temporary folder, removed)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    ap.add_argument("--verbose", action="store_true", help="show the runs' own output")
    # child side (set by the parent)
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.variant:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
