# SealFlow — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export AWS_REQUEST_CHECKSUM_CALCULATION ?= when_required
export AWS_RESPONSE_CHECKSUM_VALIDATION ?= when_required

.PHONY: install demo test lint ui stack-up cluster stack-down drill bench-crypto bench-docs bench-pipeline bench-archive bench-filing bench-e2e bench-scale clean

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
	$(BIN)/pytest -q --durations=40  # the slowest tests named in every CI log: where the time goes

lint: install
	$(BIN)/ruff check .

ui: install
	$(BIN)/sealflow stack up --ui

stack-up: install
	$(BIN)/sealflow stack up

# The production layout on this machine: Celery workers, PostgreSQL, Redis, a SeaweedFS cluster (docs/distributed.md).
cluster: install
	$(BIN)/sealflow stack up --distributed

stack-down: install
	$(BIN)/sealflow stack down

bench-crypto: install
	$(BIN)/python benchmarks/bench_crypto.py

bench-docs: install
	$(BIN)/python benchmarks/bench_docs.py

# BENCH_ARGS passes options, e.g. `make bench-pipeline BENCH_ARGS="1000 --background-load 2"`.
bench-pipeline: install
	$(BIN)/python benchmarks/bench_pipeline.py $(BENCH_ARGS)

bench-archive: install
	$(BIN)/python benchmarks/bench_archive.py

bench-filing: install
	$(BIN)/python benchmarks/bench_filing.py

# inbox → stamp_inbox → approval → stamped+verified → archived → filed; BENCH_E2E_DOCS=10000 for the full size.
bench-e2e: install
	$(BIN)/python benchmarks/bench_e2e.py $(BENCH_ARGS)

# One worker against two on the distributed stack (PostgreSQL and Redis of this machine); one JSON line.
# BENCH_SCALE_DOCS=1000 for a short run, BENCH_ARGS="--workers-only 2" for one phase (docs/distributed.md).
bench-scale: install
	$(BIN)/python benchmarks/bench_scale.py $(BENCH_ARGS)

# The disaster-recovery drill (docs/backup.md) on a throw-away stack; its last line is one JSON object.
# DRILL_ARGS passes options, e.g. `make drill DRILL_ARGS="--pg postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"`.
drill: install
	$(BIN)/sealflow backup drill $(DRILL_ARGS)

clean:
	-$(BIN)/sealflow stack down
	rm -rf var
