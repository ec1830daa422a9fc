# The front door: `make run` serves on 8006, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8006
export DJANGO_DEBUG ?= true

.PHONY: run test lint migrate demo bench clean test-tools

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
test: lint test-tools
	DJANGO_DEBUG=false $(PY) -m pytest $(PYTEST_ARGS)

# ruff (pyproject.toml): pyflakes, pycodestyle, isort, bugbear, pyupgrade. Part of `make test`,
# so CI fails on a lint error.
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

# Debian tools some tests use: headless Chromium for the browser tests, docker-compose to
# validate docker-compose.yml (no engine needed). Installed where apt-get runs as root;
# elsewhere those tests skip and say why, everything else still runs.
TOOLS := chromium chromedriver docker-compose
test-tools:
	@missing=""; for t in $(TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing test tools from Debian:$$missing ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver docker-compose >/dev/null) \
		|| echo "Could not install:$$missing; the tests that need them will skip."; \
	else echo "Not installed:$$missing (no root apt-get); the tests that need them will skip."; fi

demo: migrate
	$(PY) manage.py generate_events --events 1000000 --days 30

# Benchmarks (bench/, docs/performance.md): ingestion and query speed as ratios to the engine's
# floor; prints a table, writes bench/results.json. Not a test: never run by CI, never fails on
# a missed target. BENCH_ARGS=--quick for 1M events only (~5 min); the full run takes ~15.
bench: $(VENV)/.installed-dev
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
