# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint fuzz bench bench-train clean

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

# The fuzz suite's long profile: random examples for FUZZ_MINUTES minutes (or FUZZ_EXAMPLES examples).
FUZZ_MINUTES ?= 20
FUZZ_EXAMPLES ?=
fuzz: $(STAMP)
	VLMDATA_FUZZ=long FUZZ_MINUTES=$(FUZZ_MINUTES) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py -q

lint: $(STAMP)
	$(BIN)/ruff check vlmdata tests bench sample_data

bench: $(STAMP)
	$(BIN)/python bench/convert.py

bench-train: $(STAMP)
	$(BIN)/python bench/train.py

clean:
	rm -rf $(VENV) build *.egg-info
