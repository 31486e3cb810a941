# Common jobs. `make demo` and `make test` work on a fresh machine: they create .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test test-fast lint format proto bench clean install cluster

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY) on PATH"; exit 1; }
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade --quiet pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

# PostgreSQL, three replicas, haproxy and Prometheus on 127.0.0.1 under faults (.ci/cluster-deps.sh).
cluster: $(STAMP)
	$(BIN)/python -m pytest -q -s tests/cluster

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

proto: $(STAMP)
	$(BIN)/python -m serving.proto_gen

demo: $(STAMP)
	$(BIN)/python -m fairshelf.demo --dir $(DEMO_DIR)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(if $(DATA),--data $(DATA))

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
