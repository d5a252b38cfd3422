# mos-fairseq: `make demo` runs the whole pipeline on the built-in example; `make test` runs the lint and
# type checks (`make lint`: ruff check, ruff format --check, mypy), then the suite.
# Both create .venv (Python 3.11, torch 2.13.0 CPU, fairseq from ve-fairseq) when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mos-fairseq-installed
DEMO_DIR ?= demo_out
PYTEST_ARGS ?= --durations=15
LINT_PATHS := mos_fairseq tests benchmarks scripts
# test processes: one per core, at most 4; each runs torch (and the fairseq it launches) on one
# thread, and a test file stays in one process (its module fixtures are built once)
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: setup lint test demo bench clean

setup: $(STAMP)

$(STAMP): setup.py requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q --no-deps ve-fairseq==0.12.3
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import torch, fairseq, mos_fairseq; print('torch', torch.__version__, '| fairseq', fairseq.__version__)"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy mos_fairseq

test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh $(DEMO_DIR)

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .ruff_cache .mypy_cache
