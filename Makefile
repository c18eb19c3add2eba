# Two commands set everything up on a fresh machine:
#   make run   - dashboard over the shipped sample traces, on the default embedded DuckDB store
#   make test  - lint, Python 3.6 check of runner/, and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint setup bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/layerjoule import sample_traces/*/
	$(VENV)/bin/layerjoule app --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin -q --no-tips --violations -t=3.6- runner

test: lint
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/attribution.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
