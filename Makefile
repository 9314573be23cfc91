# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo test lint bench bench-train bench-dedup gpu-check-cpu browser fuzz clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on this machine's disk (an unpinned resolve may pull CUDA builds).
	$(BIN)/python -m pip install --quiet '$(TORCH_SPEC)'
	$(BIN)/python -m pip install --quiet -e '.[dev,hf,train,quality,ray]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python sample_data/demo.py

# The gallery and stats pages are checked in headless Chromium. Installing it is a visible step of
# its own (Debian's package, as root); tests never install anything. Elsewhere those tests skip.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium || command -v chromium-browser)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's chromium for the page tests (apt-get)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else \
		echo "chromium is not installed and cannot be installed here: the page tests will skip"; \
	fi

test: $(STAMP) browser
	$(BIN)/ruff check vlmdata tests bench sample_data scripts
	$(BIN)/python -m pytest

# The fuzz suite's long profile: random examples for FUZZ_MINUTES minutes (or FUZZ_EXAMPLES examples).
FUZZ_MINUTES ?= 20
FUZZ_EXAMPLES ?=
fuzz: $(STAMP)
	VLMDATA_FUZZ=long FUZZ_MINUTES=$(FUZZ_MINUTES) FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_fuzz.py -q

lint: $(STAMP)
	$(BIN)/ruff check vlmdata tests bench sample_data scripts

bench: $(STAMP)
	$(BIN)/python bench/convert.py

bench-train: $(STAMP)
	$(BIN)/python bench/train.py

bench-dedup: $(STAMP)
	$(BIN)/python bench/dedup.py

# The GPU check's CPU mode (seconds; also run by the tests). On a GPU box: bash bench/gpu_check.sh (README).
gpu-check-cpu: $(STAMP)
	PYTHON=$(abspath $(BIN))/python bash bench/gpu_check.sh --cpu --tiny --no-wheels

clean:
	rm -rf $(VENV) build *.egg-info
