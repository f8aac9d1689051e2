# The two commands of the README. Both set up the environment first (idempotent).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test test-all
setup:
	@HEISD_VENV=$(abspath $(VENV)) scripts/setup.sh

demo: setup
	$(VENV)/bin/heisd demo

test: setup
	$(PY) -m pytest -m "not slow"

test-all: setup
	$(PY) -m pytest
