# Entry points for a fresh machine with Python 3.11:
#   make demo        runtime-only venv (no torch), flies the shipped model in the simulator
#   make test        full dev venv (CPU torch pinned), ruff + the test suite
#   make test-arm64  the Raspberry Pi install on an emulated arm64 Bookworm userland (qemu-user;
#                    first run needs root and the network, then cached outside the repo)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU wheel; a looser spec pulls a multi-GB CUDA build.
TORCH  := torch==2.13.0

.PHONY: demo test test-arm64 lint setup-runtime setup-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.runtime: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[train,mavlink,tune,dev]"
	touch $@ $(VENV)/.runtime

setup-runtime: $(VENV)/.runtime
setup-dev: $(VENV)/.dev

demo: $(VENV)/.runtime
	$(BIN)/edgeliquid demo

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Only pip from the venv (to resolve the aarch64 wheels); the checks run on arm64.
test-arm64: $(BIN)/python
	PYTHON=$(BIN)/python scripts/arm64_smoke.sh

clean:
	rm -rf $(VENV) demo_out .pytest_cache .ruff_cache
