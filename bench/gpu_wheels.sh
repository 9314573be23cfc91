#!/usr/bin/env bash
# Download the wheels bench/gpu_check.sh installs on the GPU machine into .whl/ (git-ignored; carry it there).
#
#     bash bench/gpu_wheels.sh [DEST]        # default DEST: .whl
#
# The device image (Python 3.12; torch + CUDA, transformers 5.17, peft, accelerate, pyarrow, pillow, click,
# rich) lacks vlmdata's own dependencies (pydantic and its parts, orjson, pyyaml) and has an older transformers
# than the one `vlmdata train` is tested with. So these are the exact versions of the tested environment, for
# CPython 3.12 on x86-64 Linux, without dependencies (~22 MB):
# * vlmdata's: pydantic, pydantic-core, annotated-types, typing-inspection, typing-extensions (pydantic needs
#   >= 4.16, newer than torch asks for), orjson, pyyaml;
# * the Hugging Face set: transformers, tokenizers, safetensors, peft, accelerate, and huggingface-hub 1.33 (the
#   newest 1.x: transformers 5.24 needs >= 1.31; 1.x uses httpx, which the image's own hub 1.x already needs,
#   where 2.x would need httpx2, which the image does not have).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
dest=${1:-.whl}
wheels=(
    pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5 typing_extensions==4.16.0
    orjson==3.13.0 pyyaml==6.0.4
    transformers==5.24.0 tokenizers==0.23.3 huggingface_hub==1.33.0 safetensors==0.8.0 peft==0.21.2 accelerate==1.16.0
)
mkdir -p "$dest"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest" "${wheels[@]}"
ls -l "$dest"
