# Two commands a user needs: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export DAGSTER_HOME := $(CURDIR)/.dagster
export NUMBA_CACHE_DIR := $(CURDIR)/.cache/numba

.PHONY: setup demo dev test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "setup: installing fal-assets and its dependencies into $(VENV) (first time: 1-2 minutes)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)
	@echo "setup: done"

demo: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m dagster_project.demo

dev: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(VENV)/bin/dagster dev -w workspace.yaml

test: $(STAMP)
	mkdir -p $(DAGSTER_HOME)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/fanout_bench.py
	$(PY) bench/cutout_bench.py
	$(PY) bench/partitions_bench.py

clean:
	rm -rf output .dagster .cache
