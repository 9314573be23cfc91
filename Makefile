# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint bench bench-train gpu-check-cpu clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on this machine's disk (an unpinned resolve may pull CUDA builds).
	$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[dev,hf,train]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python sample_data/demo.py

test: $(STAMP)
	$(BIN)/ruff check vlmdata tests bench sample_data
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check vlmdata tests bench sample_data

bench: $(STAMP)
	$(BIN)/python bench/convert.py

bench-train: $(STAMP)
	$(BIN)/python bench/train.py

# The GPU check's CPU mode (seconds; also run by the tests). On a GPU box: bash bench/gpu_check.sh (README).
gpu-check-cpu: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash bench/gpu_check.sh --cpu --tiny --no-wheels

clean:
	rm -rf $(VENV) build *.egg-info
