# The front door: `make run` serves on 8006, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8006
export DJANGO_DEBUG ?= true

.PHONY: run test migrate demo bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate

run: migrate
	PORT=$(PORT) $(VENV)/bin/gunicorn -c python:analytics_site.gunicorn_conf analytics_site.wsgi

# The suite uses its own temporary data directory and test databases, so it runs while
# `make run` serves. DJANGO_DEBUG is off there: tests see production behaviour.
test: $(VENV)/.installed-dev
	DJANGO_DEBUG=false $(PY) -m pytest $(PYTEST_ARGS)

demo: migrate
	$(PY) manage.py generate_events --events 1000000 --days 30

clean:
	rm -rf $(VENV) var .pytest_cache
