# Everything bootstraps a local virtualenv (.venv) from nothing; no system-wide pip needed
# (works on PEP 668 "externally managed" systems such as Debian 12 and Ubuntu 24.04).
#
#   make demo | test | unit | inproc | e2e | compat | lint | bench   development (in ./.venv)
#   make bytecode                                             .pyc for src (start-up, memory: before measuring)
#   make coverage                                             line coverage (unit + inproc + e2e)
#   make cycles                                               import cycles across folders
#   make fuzz [FUZZ_SECONDS=60] | fuzz-smoke                  fuzz the parsers (long / a few s each)
#   make soak [SOAK_ARGS='--conns 10000 --duration 600']      10,000 tunnelled streams + churn, 10 min
#   make install [PREFIX=~/.local]                            frps/frpc/frp into $(PREFIX)/bin
#   make uninstall [PREFIX=~/.local]
#   make clean                                                remove .venv and build leftovers
#   PYTHON=python3.12 make ...                                the interpreter to use (>= 3.11)
PYTHON ?= python3
# pytest-xdist workers for `make test` (TEST_WORKERS=0: one process)
TEST_WORKERS ?= 4
VENV   := .venv
PY     := $(VENV)/bin/python
# Two stamps: the runtime (enough for `make demo`) and the test tools on top of it.
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP    := $(VENV)/.test-installed

PREFIX ?= $(HOME)/.local
BINDIR ?= $(PREFIX)/bin
# `make install` puts a private virtualenv here and links its commands into $(BINDIR)
LIBDIR ?= $(PREFIX)/lib/aiofrp
COMMANDS := frps frpc frp

.PHONY: all venv bytecode test unit inproc e2e compat coverage demo bench bench-udp bench-http lint cycles fuzz fuzz-smoke soak clean install uninstall check-python

all: test

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "aiofrp needs Python >= 3.11; '$(PYTHON)' is $$($(PYTHON) -V 2>&1 || echo missing)." >&2; \
	  echo "Choose another interpreter: make PYTHON=python3.11 ..." >&2; exit 1; }

$(PY): | check-python
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "'$(PYTHON) -m venv' failed. On Debian/Ubuntu: sudo apt install python3-venv" >&2; exit 1; }
	$(PY) -m pip install -q --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	$(MAKE) --no-print-directory bytecode
	touch $@

# Byte-compile the source tree. pip compiles what it installs, but not an editable install's
# sources, and with PYTHONDONTWRITEBYTECODE=1 Python never writes the .pyc itself: then every frps
# or frpc start compiles ~50 modules from source (~90 ms and ~1.5 MB of RSS each). compileall
# writes them regardless. Run it again after editing sources, before measuring start-up or memory.
bytecode: | $(PY)
	$(PY) -m compileall -q src

$(TEST_STAMP): pyproject.toml $(RUNTIME_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

venv: $(TEST_STAMP)

# lint first: CI (.ci/run -> make test) fails on a ruff or mypy error as on a failing test
test: lint
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile tests

unit: $(TEST_STAMP)
	$(PY) -m pytest -q tests/unit

inproc: $(TEST_STAMP)
	$(PY) -m pytest -q tests/inproc

e2e: $(TEST_STAMP)
	$(PY) -m pytest -q tests/e2e

compat: $(TEST_STAMP)
	$(PY) -m pytest -q tests/compat

# Line coverage of src/aiofrp; the frps/frpc processes of the e2e tier are measured too
# ([tool.coverage.run] in pyproject.toml). Reports even when a test fails, then exits with its status.
# The README's shell examples are left out: they wait with fixed sleeps (as a user would), which
# the slower start-up of measured processes outruns.
COVERAGE_TESTS ?= tests/unit tests/inproc tests/e2e --ignore=tests/e2e/test_readme_examples.py
coverage: $(TEST_STAMP)
	@rm -f .coverage .coverage.*
	@status=0; COVERAGE_FILE=$(CURDIR)/.coverage $(PY) -m coverage run -m pytest -q $(COVERAGE_TESTS) || status=$$?; \
	$(PY) -m coverage combine -q && \
	$(PY) tests/support/covsummary.py && \
	echo "per file: $(VENV)/bin/coverage report -m (or html)"; exit $$status

demo: $(RUNTIME_STAMP)
	$(PY) -m aiofrp.demo

bench: $(RUNTIME_STAMP)
	$(PY) bench/throughput.py

bench-udp: $(RUNTIME_STAMP)
	$(PY) bench/udp.py

bench-http: $(RUNTIME_STAMP)
	$(PY) bench/http_load.py

# ruff (pyflakes, import order, bugbear, ...) and mypy (settings in pyproject.toml)
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench tools
	$(VENV)/bin/mypy

# The parsers under a fuzzer: every target FUZZ_SECONDS in its own memory-capped process, with
# atheris (coverage-guided) from the [fuzz] extra; findings go to fuzz-findings/ (exit 1).
# make test runs the short seeded smoke (tests/fuzz) and replays tests/fuzz/corpus/.
FUZZ_SECONDS ?= 60
FUZZ_STAMP := $(VENV)/.fuzz-installed
$(FUZZ_STAMP): pyproject.toml $(TEST_STAMP)
	$(PY) -m pip install -q -e '.[test,fuzz]' || echo "atheris did not install: the seeded mutation fuzzer runs instead" >&2
	touch $@
fuzz: $(FUZZ_STAMP)
	$(PY) tools/fuzzer.py --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)
fuzz-smoke: $(TEST_STAMP)
	$(PY) -m pytest -q tests/fuzz

# 10,000 long-lived tunnelled streams (echoed, SHA-256 checked) plus connection churn through our
# frps and frpc for 10 min, after a 1 min warm-up; README "Reliability / Soak". make test runs a
# 30 s version with 500 streams (tests/e2e/test_soak.py).
SOAK_ARGS ?=
soak: $(RUNTIME_STAMP)
	$(PY) bench/soak.py $(SOAK_ARGS)

# import cycles between modules of different folders (exit 1 while there are any)
cycles: $(PY)
	$(PY) tools/import_cycles.py

# A virtualenv of its own under $(LIBDIR) (never the system's site-packages), then symlinks.
install: check-python
	@$(PYTHON) -m venv --clear $(LIBDIR)/venv || { \
	  echo "'$(PYTHON) -m venv' failed. On Debian/Ubuntu: sudo apt install python3-venv" >&2; exit 1; }
	$(LIBDIR)/venv/bin/python -m pip install -q --disable-pip-version-check .
	@mkdir -p $(BINDIR)
	@for c in $(COMMANDS); do ln -sfn $(LIBDIR)/venv/bin/$$c $(BINDIR)/$$c; done
	@echo "installed $(COMMANDS) into $(BINDIR) ($$($(BINDIR)/frps --version))"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; *) \
	  echo "note: $(BINDIR) is not on your PATH; add it, e.g. export PATH=\"$(BINDIR):\$$PATH\"";; esac

# Removes only links that point into $(LIBDIR), then $(LIBDIR).
uninstall:
	@for c in $(COMMANDS); do \
	  if [ "$$(readlink $(BINDIR)/$$c)" = "$(LIBDIR)/venv/bin/$$c" ]; then rm -f $(BINDIR)/$$c; fi; done
	rm -rf $(LIBDIR)

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info
