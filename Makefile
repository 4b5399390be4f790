# sorna-sdk developer commands. Everything runs inside .venv, created on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_DEV := $(VENV)/.installed-dev
STAMP_LOCAL := $(VENV)/.installed-local

.PHONY: test lint typecheck pytest docs demo bench interop interop-backendai interop-backendai-client clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(STAMP_DEV) $(STAMP_LOCAL)

$(STAMP_LOCAL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $(STAMP_LOCAL)

## make test: ruff, ruff format --check, mypy --strict, pyright strict, the whole pytest suite
test: lint typecheck pytest

lint: $(STAMP_DEV)
	$(BIN)/ruff check sorna_sdk tests bench tools
	$(BIN)/ruff format --check sorna_sdk tests bench tools

typecheck: $(STAMP_DEV)
	$(BIN)/mypy --strict sorna_sdk tools bench
	$(BIN)/mypy --strict tests
	$(BIN)/pyright
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH pyright --verifytypes sorna_sdk \
		--ignoreexternal --outputjson > $(VENV)/verifytypes.json; \
	$(BIN)/python -c "import json, sys; \
	s = json.load(open('$(VENV)/verifytypes.json'))['typeCompleteness']['completenessScore']; \
	print(f'pyright --verifytypes: {s:.1%} (at least 98% needed)'); sys.exit(s < 0.98)"

pytest: $(STAMP_DEV)
	$(BIN)/python -m pytest

## make docs: the mkdocs-material site, warnings are errors
docs: $(STAMP_DEV)
	$(BIN)/mkdocs build --strict

## make demo: start the embedded gateway, run the original README's examples, stop it
demo: $(STAMP_LOCAL)
	$(BIN)/python tools/demo.py

## make bench: benchmarks with their baselines, printed as ratios
bench: $(STAMP_LOCAL)
	$(BIN)/python bench/run.py

## make interop: the unmodified 2017 client (sorna-client 0.9.8, Python 3.6) against the gateway
interop: $(STAMP_LOCAL)
	bash tests/interop/run-2017-client.sh

## make interop-backendai: the public API against a real Backend.AI 26.9.6 manager and Docker agent
interop-backendai: $(STAMP_LOCAL)
	bash tests/interop/run-backendai.sh

## make interop-backendai-client: the unmodified backend.ai-client 26.9.6 against the gateway
interop-backendai-client: $(STAMP_LOCAL)
	bash tests/interop/run-backendai-client.sh

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache
