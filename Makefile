# leadflow's entry points. `make demo` runs the main job, `make test` the whole test suite;
# both set everything up first (virtualenv from PyPI, Kafka's jars from Maven Central,
# PostgreSQL from Debian's packages when missing).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
LEADFLOW := $(BIN)/leadflow

.PHONY: setup browser demo test unit integration lint typecheck docs bench stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed
	$(LEADFLOW) broker fetch

# Headless Chromium renders the HTML report in the e2e tests (Debian's package).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(LEADFLOW) demo

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The documentation site (README.md as its home page, then docs/) into site/ (git-ignored);
# strict, so a broken link or anchor fails the build. `$(BIN)/mkdocs serve` serves it live.
docs: $(VENV)/.installed
	$(BIN)/mkdocs build --strict --site-dir site

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit -q

integration: setup browser
	$(BIN)/pytest tests/integration tests/e2e -q

test: setup browser lint typecheck docs
	$(BIN)/pytest -q

bench: setup
	$(LEADFLOW) bench

stop: $(VENV)/.installed
	-$(LEADFLOW) broker stop
	-$(LEADFLOW) postgres stop

clean: stop
	rm -rf .leadflow site
