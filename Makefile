# One target runs every check a commit must pass.
.PHONY: check lint test

check: lint test

lint:
	ruff check src tests bench
	ruff format --check src tests bench
	mypy

test:
	python3 -m pytest -n 2
