# Everything bootstraps a local virtualenv (.venv) from nothing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv test unit e2e compat demo bench bench-udp bench-http lint clean

all: test

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q tests

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

compat: $(STAMP)
	$(PY) -m pytest -q tests/compat

demo: $(STAMP)
	$(PY) -m aiofrp.demo

bench: $(STAMP)
	$(PY) bench/throughput.py

bench-udp: $(STAMP)
	$(PY) bench/udp.py

bench-http: $(STAMP)
	$(PY) bench/http_load.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
