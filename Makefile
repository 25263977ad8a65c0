# Every target creates .venv, installs the pinned requirements and migrates
# when needed; running one twice does no work the second time.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
PORT ?= 8002

.PHONY: demo test lint migrate run worker beat fake-tts clean bench bench-quick bench-scale

$(STAMP): requirements.txt requirements-dev.txt
	@# Debian's python3 has no ensurepip without python3-venv: then create the
	@# virtualenv without pip and install pip from PyPI.
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  rm -rf $(VENV) && $(PYTHON) -m venv --without-pip $(VENV); }
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) scripts/bootstrap_pip.py $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

migrate: $(STAMP)
	$(PY) manage.py migrate --noinput -v 0

demo: $(STAMP)
	$(PY) test_workflow.py

test: $(STAMP)
	$(VENV)/bin/pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

run: migrate
	$(PY) manage.py runserver

worker: migrate
	$(VENV)/bin/celery -A workflow_api worker --loglevel=INFO

beat: migrate
	$(VENV)/bin/celery -A workflow_api beat --loglevel=INFO

# make fake-tts PORT=8003 serves it on another port.
fake-tts: $(STAMP)
	$(PY) -m fake_tts --port $(PORT)

# Benchmarks on the local PostgreSQL and Redis (see README, Performance).
# `timeout` is the outer bound; the harness stops its own processes well before.
# BENCH_ARGS=--private-redis runs a Redis of its own when the shared one gets restarted.
bench: $(STAMP)
	timeout --kill-after=15 600 $(PY) -m bench.run $(BENCH_ARGS)

bench-quick: $(STAMP)
	timeout --kill-after=15 150 $(PY) -m bench.run --quick $(BENCH_ARGS)

# Read endpoints at 10,000 and 1,000,000 tasks (seeding 1,000,000 takes about 3 minutes).
bench-scale: $(STAMP)
	timeout --kill-after=15 1500 $(PY) -m bench.run --scale $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache
