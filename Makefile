# stockcast: two commands for a fresh machine (see README.md)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-dev run backtest test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e .

install-dev: $(BIN)/python
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"

## the main job on the bundled Stallion data: train -> evaluate -> optimize -> backtest
## (the backtest prints its KPI and matched-service tables; about 1 min on 2 CPU cores
## without the LightGBM+optimizer policy, whose per-review refits take ~2 more: `make backtest`)
run: install
	$(BIN)/python train.py $(ARGS)
	$(BIN)/python evaluate.py $(ARGS)
	$(BIN)/python optimize.py $(ARGS)
	$(BIN)/python backtest.py 'backtest.policies=[stockcast,classic,seasonal_naive_ss,oracle,true_distribution]' $(ARGS)

## replay the champion's decisions against actual demand (after make run)
backtest: install
	$(BIN)/python backtest.py $(ARGS)

## the test suite (what CI runs)
test: install-dev
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks train.py evaluate.py optimize.py

clean:
	rm -rf outputs multirun
