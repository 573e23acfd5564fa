# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench migration compose-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-test.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	touch $(STAMP)

## run: migrate every service's database, then run all services and the gateway in the foreground
run: $(STAMP)
	$(PY) -m clinic.supervisor

## test: the whole suite (unit, integration, end to end) on real RabbitMQ, SQLite and PostgreSQL
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

## bench: every benchmark under bench/ (each prints its goals beside its figures); fails if any goal was missed
bench: $(STAMP)
	status=0; for b in bench/[a-z]*.py; do $(PY) $$b || status=1; done; exit $$status

## migration: a new alembic revision for SERVICE from its models, e.g. make migration SERVICE=booking MESSAGE="add rooms"
migration: $(STAMP)
	$(PY) -c "from alembic import command; from clinic.migrate import alembic_config; \
	from clinic.settings import Settings; import sys; s='$(SERVICE)'; \
	command.upgrade(alembic_config(s, Settings.from_env().database_url(s)), 'head'); \
	command.revision(alembic_config(s, Settings.from_env().database_url(s)), message='$(MESSAGE)', autogenerate=True)"

compose-check:
	docker-compose config -q

clean:
	rm -rf $(VENV) var
