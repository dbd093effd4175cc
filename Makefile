# gluon-tricks: `make demo` and `make test` set up .venv when it is missing (or when the pins change).
VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv clean

$(STAMP): requirements.txt setup.py scripts/install_env.sh
	bash scripts/install_env.sh $(VENV)
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m gluon_tricks demo

test: $(STAMP)
	$(PY) -m pytest -q tests $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
