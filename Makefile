# markhouse: two commands for a fresh machine (see README.md).
#   make demo   install, start the embedded emulator, backfill the demo universe, print a summary
#   make test   install, lint, type-check and run the test suite (offline)
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_START ?= 2026-01
DEMO_END ?= 2026-05
DEV_PORT ?= 3000
# the instance home `markhouse` uses too (an exported DAGSTER_HOME wins)
DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test lint bench dev clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/markhouse backfill --start $(DEMO_START) --end $(DEMO_END) --report

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql

test: lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench
	$(BIN)/python -m bench.lake
	$(BIN)/python -m bench.runpath
	$(BIN)/python -m bench.marts_share
	$(BIN)/python -m bench.options

# The UI and the daemon (schedules) on the instance home the markhouse command uses, started in that
# home: Dagster warns about a dagster.yaml in the folder it starts in (the checkout's) otherwise.
dev: install
	mkdir -p $(DAGSTER_HOME)
	cd $(DAGSTER_HOME) && DAGSTER_HOME=$(DAGSTER_HOME) $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml --port $(DEV_PORT)

clean:
	rm -rf $(VENV) warehouse/*.duckdb* warehouse/.staging
	find .dagster_home -mindepth 1 -not -name dagster.yaml -delete
