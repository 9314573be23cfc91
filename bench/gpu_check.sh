#!/usr/bin/env bash
# The GPU check of `vlmdata train`: bf16 tokens/s, padding, peak GPU memory, step time and loss of a 0.5B
# Qwen2-VL-style and a small InternVL-style model (random weights, built from configs), each trained 150 steps
# with `vlmdata train`, with bench/train.py's plain-Trainer baseline and with LoRA + gradient checkpointing + a
# frozen vision tower, whose adapter `vlmdata export --merge-lora` merges and the GPU reloads. One table on
# stdout; the same as JSON in $OUT/gpu_check.json (OUT: the device machine's output folder; default
# out/gpu-check), the whole output in $OUT/gpu_check.log, each model's own in $OUT/<size>.log. What runs and
# how it is measured: bench/gpu_check.py's docstring.
#
#     bash bench/gpu_check.sh [--out DIR] [--wheels DIR | --no-wheels] [--cpu] [--tiny] [gpu_check.py options]
#     bash bench/gpu_check.sh --cpu --tiny --no-wheels      # the same check on a CPU in seconds (make gpu-check-cpu)
#
# Budget: one H200, under 8 minutes; about 5-6 estimated, not yet measured (CPU side timed here: each model built
# in about 15 s, a batch of 8 collated in about 0.12 s, so a 150-step run is bound near 20-60 s; plus loads and
# saves of the 2 GB checkpoint, one merge, three reloads and two processes' imports). The JSON is rewritten after
# each model, so a run cut short keeps what finished; lower --steps to fit a smaller budget.
#
# Wheels: with a .whl/ folder (or --wheels DIR; bench/gpu_wheels.sh fills it; carry it to the device), they are
# installed with pip --no-index --no-deps --target into a temporary folder put first on PYTHONPATH; vlmdata itself
# is imported from this checkout (PYTHONPATH), not installed.
#
# transformers: the image has 5.17, vlmdata pins >=5.23,<6. Nothing in vlmdata/train needs a name 5.17 lacks
# (checked against 5.17's wheel: every class imported, the TrainingArguments fields, apply_chat_template's
# processor_kwargs; behaviour between the versions was not compared), but the pin is the
# version the tests pass with and the one `pip install vlmdata[train]` installs, so a check on 5.17 would measure
# a stack no user gets. So the carried set includes transformers 5.24 with its tokenizers, safetensors, peft and
# accelerate and huggingface-hub 1.33 (~19 MB). Risk: the carried hub needs httpx, hf-xet, fsspec, filelock from
# the image (tested here with them present and absent); if the carried set does not import there, the script
# says so and falls back to the image's own transformers (the JSON's meta.versions and meta.transformers_from
# record which one ran).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py=${PYTHON:-python3}
out=${OUT:-out/gpu-check}
wheels=.whl
install=1
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --out=*) out=${1#--out=}; shift ;;
        --no-wheels) install=0; shift ;;
        --wheels) wheels=$2; shift 2 ;;
        *) args+=("$1"); shift ;;
    esac
done
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
probe='import pydantic, orjson, yaml, torch, transformers, peft, accelerate
from transformers import AutoModelForImageTextToText, Trainer
import vlmdata.train.runner'

if [ "$install" = 1 ] && compgen -G "$wheels/*.whl" >/dev/null; then
    site=$(mktemp -d "${TMPDIR:-/tmp}/vlmdata-site-XXXXXX")
    trap 'rm -rf "$site"' EXIT
    hf=() base=()
    for wheel in "$wheels"/*.whl; do
        case "$(basename "$wheel")" in
            transformers-* | tokenizers-* | huggingface_hub-* | safetensors-* | peft-* | accelerate-*) hf+=("$wheel") ;;
            *) base+=("$wheel") ;;
        esac
    done
    pip_install() { "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$@"; }
    if [ ${#base[@]} -gt 0 ]; then pip_install "$site/base" "${base[@]}"; fi
    if [ ${#hf[@]} -gt 0 ]; then pip_install "$site/hf" "${hf[@]}"; fi
    plain=$PYTHONPATH
    export PYTHONPATH="$site/hf:$site/base:$plain"
    if ! "$py" -c "$probe"; then
        echo "gpu_check: the carried transformers set does not import here; using the image's own" >&2
        export PYTHONPATH="$site/base:$plain"
    fi
fi
"$py" bench/gpu_check.py --out "$out" "${args[@]}" 2>&1 | tee "$out/gpu_check.log"
