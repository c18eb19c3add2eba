# Two commands set everything up on a fresh machine:
#   make run   - dashboard over the shipped sample traces, on the default embedded DuckDB store
#   make test  - lint, Python 3.6 check of runner/, and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint setup browser bench clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/layerjoule import $(dir $(wildcard sample_traces/*/manifest.json))
	$(VENV)/bin/layerjoule app --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin -q --no-tips --violations -t=3.6- runner

# Browser tests drive Debian's Chromium (headless) through Playwright; install it once if missing.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

test: lint browser
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/attribution.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
