"""The GPU check of ``vlmdata train``: bf16 throughput, padding, peak memory and loss of two model
families against the plain-Trainer baseline, and a LoRA run merged by ``vlmdata export`` and
reloaded on the device. Run it through ``bench/gpu_check.sh``, which installs the carried wheels.

    python bench/gpu_check.py [--cpu] [--tiny] [--out DIR] [--steps N] [--batch-size B] [--records N]
                              [--workdir DIR] [--seed 0]

Models (``bench/train.py`` presets, random weights, embedding padded to Qwen2's 151,936 rows and
tied): ``0.5b`` (Qwen2-VL-style, the Qwen2-0.5B text geometry, images up to 256 tokens) and
``internvl-0.1b`` (InternVL-style, Qwen2 text of hidden 512 x 12 layers, the tiny 32-px-tile vision
tower). ``--tiny`` takes ``tiny`` and ``internvl-tiny`` instead: seconds on a CPU.

Data: ``bench/train.py``'s generated ms-swift rows (short answers, grounding with ``objects``,
multi-turn, multi-image, descriptions) over 18 images of 9 sizes; the same file for every run.

Per model one process builds the model folder and trains, in turn, each from that folder, in bf16
(CPU autocast with ``--cpu``), for ``--steps`` optimiser steps:

* ``vlmdata``: ``vlmdata train`` (validation on, length-grouped batches), full fine-tune;
* ``naive``: ``bench/train.py``'s plain ``Trainer``, random order, every batch padded to the
  longest record;
* ``lora``: ``vlmdata train --lora --gradient-checkpointing --freeze-vision`` (the vision tower
  frozen and checkpointed, its inputs carrying no gradient); its adapter is then
  merged by ``vlmdata export --merge-lora`` and the folder reloaded on the device: in bf16 (a
  forward pass with the collator's float32 ``pixel_values``) and in float32, where its logits must
  equal the peft model's (base + adapter) on one batch.

``vlmdata`` runs first in its process, so it pays the one-time CUDA warm-up (kernel loading,
cuBLAS handles) inside its timed loop: the comparison errs against it. Before each variant the
previous one's objects are freed and the CUDA peak counters reset (``memory_left_mb`` says what was
still allocated); the table's peak is ``torch.cuda.max_memory_allocated``, the JSON also has the
allocator's reserved peak. On a CPU the peak is the process's RSS so far, so it only grows.

Output: one table on stdout and ``<out>/gpu_check.json`` (rewritten after each model, so a run
stopped at a time limit keeps what finished); each model's own output is in ``<out>/<size>.log``.
Exit status 1 when a model's process failed or an export check did not pass.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import PRESETS, build_model, run_naive, run_vlmdata, write_data

VARIANTS = ("vlmdata", "naive", "lora")
MODELS = {False: ("0.5b", "internvl-0.1b"), True: ("tiny", "internvl-tiny")}  # by --tiny
DEFAULTS = {False: {"steps": 150, "batch_size": 8, "records": 600}, True: {"steps": 4, "batch_size": 2, "records": 16}}
LOGIT_TOLERANCE = 1e-3  # merged against base + adapter, both float32 on one device
RESULT = "gpu_check.json"


# --------------------------------------------------------------------------- child: one model


def fresh_memory() -> float:
    """Free what the last variant left and reset the CUDA peak; MB still allocated (0 on a CPU)."""
    import torch

    gc.collect()
    if not torch.cuda.is_available():
        return 0.0
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return round(torch.cuda.memory_allocated() / 2**20, 1)


def vocab_rows(model: str) -> int:
    with open(os.path.join(model, "config.json"), encoding="utf-8") as fh:
        return json.load(fh)["text_config"]["vocab_size"]


def run_variant(variant: str, ns: argparse.Namespace, output: str) -> dict[str, Any]:
    preset = PRESETS[ns.size]
    options: dict[str, Any] = {"bf16": True, "logging_steps": max(1, ns.steps // 15)}
    if variant == "naive":
        return run_naive(ns, output, **options)
    if variant == "lora":
        options.update(lora=True, gradient_checkpointing=True, freeze_vision=True, lr=preset.lora_lr)
    return run_vlmdata(ns, output, **options)


def first_batch(ns: argparse.Namespace, model: str) -> dict[str, Any]:
    """The collator's batch of the data's first records, rendered for ``model``."""
    from train import make_config

    from vlmdata.train.collate import Collator
    from vlmdata.train.data import load, sources_of
    from vlmdata.train.families import detect_family
    from vlmdata.train.model import load_processor
    from vlmdata.train.render import Renderer

    config = make_config(ns, os.path.join(ns.workdir, "unused"), model=model)
    family = detect_family(model)
    processor, _ = load_processor(config, family)
    samples = load(sources_of([ns.data], ns.workdir, None)).samples[: max(2, ns.batch_size)]
    return Collator(Renderer(family, processor), processor)(samples)


def check_export(ns: argparse.Namespace, run: str, device: str) -> dict[str, Any]:
    """``vlmdata export --merge-lora`` of ``run``, reloaded on ``device`` in bf16 and float32."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from vlmdata.cli import main

    merged = os.path.join(ns.workdir, f"merged-{ns.size}")
    shutil.rmtree(merged, ignore_errors=True)
    started = time.perf_counter()
    main.main(["export", run, "-o", merged, "--merge-lora"], standalone_mode=False)
    export_seconds = time.perf_counter() - started
    batch = first_batch(ns, merged)
    inputs = {k: v.to(device) for k, v in batch.items()}

    def forward(model: Any) -> tuple[Any, float]:
        with torch.no_grad():
            out = model(**inputs)
        return out.logits.float(), float(out.loss)

    def reload(path: str, dtype: Any) -> Any:
        return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype, device_map=device).eval()

    half = reload(merged, torch.bfloat16)
    on = str(next(half.parameters()).device)
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in half.parameters()})
    logits_bf16, loss_bf16 = forward(half)
    del half
    full = reload(merged, torch.float32)
    lora_left = sum("lora" in n for n, _ in full.named_parameters())
    logits, loss_merged = forward(full)
    del full
    peft = PeftModel.from_pretrained(reload(ns.model, torch.float32), os.path.join(run, "final")).eval()
    want, loss_peft = forward(peft)
    with peft.disable_adapter():
        base, loss_base = forward(peft)
    result = {
        "export_seconds": round(export_seconds, 2),
        "reloaded_on": on,
        "bf16_dtypes": dtypes,
        "lora_parameters_left": lora_left,
        "logits_max_diff": float((logits - want).abs().max()),
        "adapter_effect": float((want - base).abs().max()),  # what the merge had to reproduce
        "bf16_logits_max_diff": float((logits_bf16 - logits).abs().max()),
        "loss_base": loss_base,
        "loss_peft": loss_peft,
        "loss_merged": loss_merged,
        "loss_merged_bf16": loss_bf16,
    }
    result["ok"] = bool(
        on.startswith(device)
        and dtypes == ["bfloat16"]
        and lora_left == 0
        and result["logits_max_diff"] < LOGIT_TOLERANCE < result["adapter_effect"]
        and all(math.isfinite(result[k]) for k in ("loss_base", "loss_merged", "loss_merged_bf16"))
    )
    return result


def child(args: argparse.Namespace) -> int:
    """Build one model, train the variants, check the export; results into ``--result``."""
    import accelerate
    import huggingface_hub
    import peft
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu:
        print("no CUDA device is visible; pass --cpu to run the check on the CPU", file=sys.stderr)
        return 2
    device = "cuda" if cuda else "cpu"
    preset = PRESETS[args.size]
    model = os.path.join(args.workdir, f"model-{args.size}")
    started = time.perf_counter()
    parameters = build_model(preset, model, args.seed)
    log(f"{args.size}: built {preset.family}, {parameters:,} parameters ({time.perf_counter() - started:.1f} s)")
    ns = argparse.Namespace(
        model=model, data=args.data, workdir=args.workdir, size=args.size, steps=args.steps,
        batch_size=args.batch_size, seed=args.seed, verbose=True,
    )  # fmt: skip
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "versions": {m.__name__: m.__version__ for m in (transformers, huggingface_hub, peft, accelerate)},
        "transformers_from": os.path.dirname(transformers.__file__),  # the carried wheel or the image's own
        "parameters": parameters,
        "vocab_rows": vocab_rows(model),  # a random model's first loss is about log(rows)
        "rows": [],
        "export": None,
    }
    for variant in VARIANTS:
        output = os.path.join(args.workdir, f"run-{args.size}-{variant}")
        left = fresh_memory()
        started = time.perf_counter()
        row = run_variant(variant, ns, output)
        wall = time.perf_counter() - started
        row.update(
            model=f"{preset.family} {args.size}",
            family=preset.family,
            size=args.size,
            variant=variant,
            memory_left_mb=left,
            # what the caching allocator held at most: what has to fit, beside the allocated peak
            peak_reserved_mb=round(torch.cuda.max_memory_reserved() / 2**20, 1) if cuda else None,
            step_seconds=round(row["seconds"] / max(1, row["steps"]), 4),
            wall_seconds=round(wall, 1),
        )
        out["rows"].append(row)
        log(f"{args.size} {variant}: {row['real_tokens_per_second']:,.0f} real tokens/s, wall {wall:.1f} s")
        if variant != "lora":
            shutil.rmtree(output, ignore_errors=True)  # a full fine-tune's final model: 2 GB at 0.5b
    fresh_memory()
    out["export"] = check_export(ns, os.path.join(args.workdir, f"run-{args.size}-lora"), device)
    log(f"{args.size} export: {'ok' if out['export']['ok'] else 'FAILED'} {out['export']}")
    with open(args.result, "w", encoding="utf-8") as fh:
        json.dump(out, fh)
    return 0


# --------------------------------------------------------------------------- parent


def log(msg: str) -> None:
    print(f"[gpu_check] {msg}", file=sys.stderr, flush=True)


def _num(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"device: {meta.get('device', '?')}; torch {meta.get('torch', '?')}, "
        f"{', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items())}; "
        f"bf16; {meta['records']} records, batch {meta['batch_size']}, "
        f"{meta['steps']} steps; peak memory: {meta.get('peak_memory_kind', '?')}",
        f"{'model':<22} {'variant':<8} {'real tok/s':>11} {'pad frac':>8} {'peak MB':>9} {'step ms':>8} "
        f"{'loss start':>10} {'loss end':>9} {'export':>6}",
    ]
    exports = {e["model"]: e for e in report["exports"]}
    for r in report["rows"]:
        export = "-"
        if r["variant"] == "lora" and r["model"] in exports:
            export = "ok" if exports[r["model"]]["ok"] else "FAILED"
        lines.append(
            f"{r['model']:<22} {r['variant']:<8} {r['real_tokens_per_second']:>11,.0f} {r['pad_fraction']:>8.1%} "
            f"{r['peak_memory_mb']:>9,.0f} {r['step_seconds'] * 1000:>8.1f} {_num(r['loss_start'], '>10.3f')} "
            f"{_num(r['loss_end'], '>9.3f')} {export:>6}"
        )
    for e in report["exports"]:
        lines.append(
            f"export {e['model']}: merged in {e['export_seconds']} s, reloaded on {e['reloaded_on']} "
            f"({'/'.join(e['bf16_dtypes'])}); max |logit diff| vs peft {e['logits_max_diff']:.2e} "
            f"(adapter moves them {e['adapter_effect']:.2e}); loss base {e['loss_base']:.4f}, merged "
            f"{e['loss_merged']:.4f}, merged bf16 {e['loss_merged_bf16']:.4f}: {'ok' if e['ok'] else 'FAILED'}"
        )
    for f in report["failures"]:
        lines.append(f"FAILED {f['size']}: exit status {f['status']}; see {f['log']}")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out: str) -> None:
    path = os.path.join(out, RESULT)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1)
    os.replace(path + ".tmp", path)


def parent(args: argparse.Namespace) -> int:
    for key, value in DEFAULTS[args.tiny].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    workdir = args.workdir or tempfile.mkdtemp(prefix="vlmdata-gpu-check-")
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ)
    if args.cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    if args.cpu and args.tiny:  # tiny matrices gain nothing from threads that spin-wait on a shared CPU
        env.setdefault("OMP_NUM_THREADS", "1")
    meta = {k: getattr(args, k) for k in ("steps", "batch_size", "records", "seed", "cpu", "tiny")}
    report: dict[str, Any] = {"meta": {**meta, "python": platform.python_version()}, "rows": []}
    report.update(exports=[], failures=[])
    began = time.perf_counter()
    try:
        data = write_data(workdir, args.records, args.seed)
        for size in MODELS[args.tiny]:
            result, child_log = os.path.join(workdir, f"{size}.json"), os.path.join(out, f"{size}.log")
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--size", size, "--result", result]
            cmd += ["--workdir", workdir, "--data", data, "--steps", str(args.steps)]
            cmd += ["--batch-size", str(args.batch_size), "--seed", str(args.seed)] + (["--cpu"] if args.cpu else [])
            started = time.perf_counter()
            with open(child_log, "w", encoding="utf-8") as fh:
                status = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode
            took, total = time.perf_counter() - started, time.perf_counter() - began
            log(f"{size}: exit status {status}, {took:.1f} s (total {total:.1f} s)")
            if status != 0:
                with open(child_log, encoding="utf-8", errors="replace") as fh:
                    print(fh.read()[-6000:], file=sys.stderr)
                report["failures"].append({"size": size, "status": status, "log": child_log})
            else:
                with open(result, encoding="utf-8") as fh:
                    done = json.load(fh)
                rows = done.pop("rows")
                export = {"model": rows[0]["model"], **done.pop("export")}
                keys = ("device", "torch", "cuda", "transformers", "versions", "transformers_from")
                report["meta"].update({k: done[k] for k in keys})
                report["meta"]["peak_memory_kind"] = rows[0]["peak_memory_kind"]
                shared = {"parameters": done["parameters"], "vocab_rows": done["vocab_rows"]}
                report["rows"] += [{**r, **shared} for r in rows]
                report["exports"].append(export)
            report["meta"]["seconds"] = round(time.perf_counter() - began, 1)
            write_report(report, out)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    print(format_table(report))
    return 1 if report["failures"] or not all(e["ok"] for e in report["exports"]) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu", action="store_true", help="run on the CPU (bf16 autocast there)")
    ap.add_argument("--tiny", action="store_true", help="tiny models and few steps (seconds)")
    ap.add_argument("--out", default=os.environ.get("OUT") or "out/gpu-check", help="folder for the JSON and logs")
    ap.add_argument("--steps", type=int, help="optimiser steps per run (default: 150, 4 with --tiny)")
    ap.add_argument("--batch-size", type=int, help="per-device batch size (default: 8, 2 with --tiny)")
    ap.add_argument("--records", type=int, help="generated training records (default: 600, 16 with --tiny)")
    ap.add_argument("--workdir", help="keep data, models and runs here (default: a temporary folder, removed)")
    ap.add_argument("--seed", type=int, default=0)
    # child side (set by the parent)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=sorted(PRESETS), help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
