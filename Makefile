# SealFlow — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export AWS_REQUEST_CHECKSUM_CALCULATION ?= when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION ?= when_required

.PHONY: install demo test lint ui stack-up stack-down bench-crypto bench-docs bench-pipeline bench-archive bench-filing clean

$(BIN)/sealflow: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/sealflow

install: $(BIN)/sealflow

demo: install
	$(BIN)/sealflow demo

test: install
	$(BIN)/ruff check --no-cache .  # a stale cache hid import-order errors that a fresh clone reports
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

ui: install
	$(BIN)/sealflow stack up --ui

stack-up: install
	$(BIN)/sealflow stack up

stack-down: install
	$(BIN)/sealflow stack down

bench-crypto: install
	$(BIN)/python benchmarks/bench_crypto.py

bench-docs: install
	$(BIN)/python benchmarks/bench_docs.py

bench-pipeline: install
	$(BIN)/python benchmarks/bench_pipeline.py

bench-archive: install
	$(BIN)/python benchmarks/bench_archive.py

bench-filing: install
	$(BIN)/python benchmarks/bench_filing.py

clean:
	-$(BIN)/sealflow stack down
	rm -rf var
