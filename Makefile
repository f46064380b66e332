# descend: `make run` trains on the built-in data, `make test` runs the checks.
# Both install exact versions from the lock files in requirements/ (written by pip-tools'
# pip-compile, with hashes); `make lock` refreshes them to the newest releases.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet
LOCK_VENV := .lock-venv
PIP_TOOLS := pip-tools==7.7.0
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --upgrade \
              --no-emit-find-links --no-emit-index-url

.PHONY: run test test-slow bench lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# what `descend train` needs: the package and its plotting extra (no torch, no test tools)
$(VENV)/.run-installed: requirements/run.txt pyproject.toml | $(BIN)/python
	$(PIP) --require-hashes -r requirements/run.txt
	$(PIP) --no-deps -e .
	touch $@

# the locked test environment (a superset of the run lock: the same versions)
$(VENV)/.test-installed: requirements/test.txt pyproject.toml | $(BIN)/python
	$(PIP) --require-hashes -r requirements/test.txt
	$(PIP) --no-deps -e .
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/descend train
	@echo "Run descend yourself: $(BIN)/descend --help  (or: . $(BIN)/activate; descend --help)"

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 -m "not slow"

test-slow: $(VENV)/.test-installed
	$(BIN)/python -m pytest -q -n 2 -m slow

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .

# rewrite both lock files from pyproject.toml's ranges (the run lock follows the test lock)
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS)
	$(LOCK_VENV)/bin/pip-compile $(LOCK_FLAGS) --extra test --extra plot \
	    --output-file requirements/test.txt pyproject.toml
	$(LOCK_VENV)/bin/pip-compile $(LOCK_FLAGS) --extra plot --constraint requirements/test.txt \
	    --output-file requirements/run.txt pyproject.toml

$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(PIP) -e '.[bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LOCK_VENV) build src/*.egg-info .pytest_cache .ruff_cache .hypothesis
