# Each target creates the virtualenv and installs what it needs on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_CONTACTS ?= 20000
export LEADFLOW_DATA_DIR ?= $(CURDIR)/leadflow-data

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	@if [ ! -f "$(LEADFLOW_DATA_DIR)/leadflow.db" ]; then \
		$(VENV)/bin/leadflow demo --contacts $(DEMO_CONTACTS) --seed 7; fi
	$(VENV)/bin/leadflow funnel
	@echo "Log in as marketing@leadflow.demo (marketer), fanny@leadflow.demo (sales rep)" \
		"or admin@leadflow.demo (admin), password leadflow-demo." \
		"API tokens: leadflow users token EMAIL"
	$(VENV)/bin/leadflow serve

# Whole files per worker: a file's module fixtures (an imported data set) are built once.
test: install
	$(PY) -m pytest -q -n auto --dist loadfile

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/rescore.py
	$(PY) bench/work_queue.py
	$(PY) bench/web_contacts.py

clean:
	rm -rf $(VENV) leadflow-data
