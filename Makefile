# Everything a user or CI runs. `make setup` is implied by the others.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
FANOUT ?= queued
CHAT_APP ?= relay
CHAT_DATABASE_URL ?=
# App mode: the serve targets migrate CHAT_DATABASE_URL first (default: chat.sqlite3 here).
APP_ENV = CHAT_APP=$(CHAT_APP) CHAT_DATABASE_URL='$(CHAT_DATABASE_URL)'
MIGRATE = if [ "$(CHAT_APP)" = full ]; then $(APP_ENV) $(PY) manage.py migrate -v 0; fi

.PHONY: setup test lint serve-django serve-fastapi bench bench-quick bench-full bench-harness ui clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	@touch $@

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy  # what it checks: pyproject.toml [tool.mypy]

serve-django: setup
	@$(MIGRATE)
	$(APP_ENV) $(PY) -m django_chat.serve --host $(HOST) --port $(PORT)

serve-fastapi: setup
	@$(MIGRATE)
	$(APP_ENV) CHAT_FANOUT=$(FANOUT) $(PY) -m fastapi_chat.serve --host $(HOST) --port $(PORT)

bench: setup
	$(PY) -m bench

bench-quick: setup
	$(PY) -m bench --quick

bench-full: setup
	$(PY) -m bench --full

bench-harness: setup
	$(PY) -m bench.harness

ui: setup
	$(PY) -m bench.run.ui

clean:
	rm -rf $(VENV) reports
