# One target runs every check a commit must pass, with the tools of the README's
# virtual environment (.venv) when it is there, else those on PATH.
.PHONY: check lint test

BIN := $(if $(wildcard .venv/bin/python),.venv/bin/,)
PYTHON := $(if $(BIN),$(BIN)python,python3)

check: lint test

lint:
	$(BIN)ruff check src tests bench
	$(BIN)ruff format --check src tests bench
	$(BIN)mypy

test:
	$(PYTHON) -m pytest -n 2
