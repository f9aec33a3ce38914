# DermLabel: `make run` starts everything (embedded PostgreSQL under .data/), `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python

.PHONY: run stop test reliability bench migrate info validate seed clean-data

$(VENV)/.app: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test: $(VENV)/.app
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.app
	$(PY) -m app run

stop: $(VENV)/.app
	$(PY) -m app cluster stop

test: $(VENV)/.test
	bash scripts/test.sh

reliability: $(VENV)/.test
	bash scripts/reliability.sh

migrate info validate: $(VENV)/.app
	$(PY) -m app $@

clean-data: stop
	rm -rf .data

bench: $(VENV)/.test
	bash scripts/bench.sh
