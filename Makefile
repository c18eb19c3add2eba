# Two commands set everything up on a fresh machine:
#   make run   - dashboard over the shipped sample traces, on the default embedded DuckDB store
#   make test  - lint, Python 3.6 check of runner/, real pycaffe (built once, cached), and the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test lint setup browser postgres board-python pycaffe proto bench clean
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The board's Python (3.6, as on JetPack 4.6) with numpy 1.19.5, where this machine has one (pyenv ships it here):
# the tests then run `python3 -m runner` under it for real, beside vermin's static check.
PYTHON36 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.6*/bin/python3.6) $(shell command -v python3.6))
board-python:
ifneq ($(PYTHON36),)
	@[ -x .venv36/bin/python ] || { $(PYTHON36) -m venv .venv36 && cd / && $(CURDIR)/.venv36/bin/python -m pip install --quiet numpy==1.19.5; }
else
	@echo "no python3.6 here: runner/ is checked by vermin only"
endif

# The sample runs; one of them comes with a Streamline capture, reports and a tegrastats log (sample_traces/README.md).
MATCHED_RUN := sample_traces/squeezenet_v1.1-network/
SAMPLE_RUNS := $(filter-out $(MATCHED_RUN),$(dir $(wildcard sample_traces/*/manifest.json)))
MATCHED_EXTRAS := $(wildcard sample_traces/extras/*.apc.zip sample_traces/extras/*.tegrastats.log) \
	$(addprefix streamline-report:,$(wildcard sample_traces/extras/*.streamline-*.csv))

run: setup
	$(VENV)/bin/layerjoule import $(SAMPLE_RUNS)
	$(VENV)/bin/layerjoule import $(MATCHED_RUN) $(MATCHED_EXTRAS)
	$(VENV)/bin/layerjoule app --port $(PORT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/vermin -q --no-tips --violations -t=3.6- runner

# Browser tests drive Debian's Chromium (headless) through Playwright; install it once if missing.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# The team store's tests start a throwaway PostgreSQL server (tests/pg.py): install Debian's where it is missing.
postgres:
	@command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# Real pycaffe (BVLC Caffe, CPU-only) for the caffe engine's tests: built once (6 to 12 minutes) into
# ~/.cache/layerjoule/pycaffe/, outside the clone, and reused (docs/pycaffe.md). `make run` does not need it.
pycaffe: setup
	bash tools/build_pycaffe.sh $(PY)

# The tests find pycaffe through PYCAFFE_PATH (the cache folder: the script's last line, instant once built).
test: lint browser postgres board-python pycaffe
	dir="$$(bash tools/build_pycaffe.sh $(PY) | tail -n 1)" && [ -d "$$dir/caffe" ] && PYCAFFE_PATH="$$dir" $(PY) -m pytest -q

# Regenerate the protobuf module from importer/model/caffe.proto (the generated file is committed).
proto: setup
	$(PY) -m pip install --quiet -c constraints.txt -e '.[proto]'
	$(PY) -m grpc_tools.protoc -I. --python_out=. importer/model/caffe.proto

bench: setup
	$(PY) bench/attribution.py
	$(PY) bench/scale.py
	$(PY) bench/model_cost.py
	$(PY) bench/runner_overhead.py
	$(PY) bench/runner_annotations.py
	$(PY) bench/runner_sampler.py
	$(PY) bench/dashboard.py

clean:
	rm -rf $(VENV) .venv36 .pytest_cache .ruff_cache
