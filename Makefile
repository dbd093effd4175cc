# gluon-tricks: `make demo` and `make test` set up .venv when it is missing (or when the pins change).
# VENV=DIR uses an environment installed elsewhere as it is, without setting anything up: the
# Docker image sets VENV=/opt/venv, so the two commands run there as they are.
VENV    ?= .venv
PY      := $(VENV)/bin/python
PYTEST_ARGS ?=
# Lint: the Dockerfile (hadolint), every shell script (shellcheck), the Python code (ruff.toml).
SHELL_SCRIPTS := $(wildcard scripts/*.sh scripts/lib/*.sh) .ci/run

ifeq ($(VENV),.venv)
READY := $(VENV)/.installed
else
READY := external-venv
endif

.PHONY: demo numbers test lint lint-docker lint-shell lint-python pytest venv clean external-venv

$(VENV)/.installed: requirements.txt setup.py scripts/install_env.sh
	bash scripts/install_env.sh $(VENV)
	@touch $@

external-venv:
	@test -x $(PY) || { echo "VENV=$(VENV) has no bin/python (unset VENV to set up .venv)" >&2; exit 2; }

venv: $(READY)

demo: $(READY)
	$(PY) -m gluon_tricks demo

# Every measured number the docs quote, from the code as committed (scripts/reproduce_numbers.sh;
# about 1.5 hours on 2 cores; SECTIONS="demo bench" for some only).
numbers: $(READY)
	PYTHON=$(PY) bash scripts/reproduce_numbers.sh $(SECTIONS)

lint: lint-docker lint-shell lint-python

lint-docker: $(READY)
	$(VENV)/bin/hadolint Dockerfile

lint-shell: $(READY)
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)

lint-python: $(READY)
	$(VENV)/bin/ruff check --no-cache .

# Every lint step, then the tests, each whatever the others found (--keep-going); fails if any
# failed.
MAKEFLAGS += --keep-going
test: lint pytest

pytest: $(READY)
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

clean:
	rm -rf .venv build *.egg-info .pytest_cache
