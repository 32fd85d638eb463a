# stockcast: two commands for a fresh machine (see README.md)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-dev run backtest test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

## the installs are stamped: a later `make run` / `make test` skips them (6 s measured) until
## pyproject.toml changes (the package is installed editable: code changes need no reinstall)
install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.installed

## the main job on the bundled Stallion data: train -> evaluate -> optimize -> backtest,
## ending with "== the answer ==" (the model against its best baseline, the plan, the backtest);
## one process (pipeline.py) runs the four steps as `python train.py $(ARGS)` ... would
run: install
	$(BIN)/python pipeline.py $(ARGS)

## replay the champion's decisions against actual demand (after make run)
backtest: install
	$(BIN)/python backtest.py $(ARGS)

## the test suite (what CI runs)
## (-n 2: one pytest worker per core; tests of one file stay on one worker and share its fixtures;
## the files with slow tests go first, see tests/conftest.py)
test: install-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks *.py

clean:
	rm -rf outputs multirun
