# Entry points. `make demo` and `make test` are the README's two commands.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test ring-test lint typecheck unit proto install dev-up dev-down clean build compose compose-down

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## the main job on the embedded default: no servers needed
demo: $(STAMP)
	$(BIN)/pulse demo

## lint, types, and the whole test suite (starts Kafka and Cassandra itself if none is configured)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

## the real failure test on a 3-node Cassandra ring alone (`make test` runs it too)
ring-test: $(STAMP)
	$(BIN)/pytest -m ring

unit: $(STAMP)
	$(BIN)/pytest tests/unit

proto: $(STAMP)
	$(BIN)/python -m devtools.protogen

dev-up: $(STAMP)
	$(BIN)/pulse dev up

dev-down: $(STAMP)
	$(BIN)/pulse dev down

clean:
	rm -rf .pulse-data .mypy_cache .ruff_cache .pytest_cache

## Docker: ScyllaDB, Kafka (KRaft), Kafka UI and every service (docker-compose.yml)
DOCKER ?= docker
# Fails fast when no engine answers (the docker client alone is not enough).
NEED_DOCKER = @$(DOCKER) info >/dev/null 2>&1 || { echo 'make $@ needs a running Docker engine; without Docker use `pulse dev up` (see README)' >&2; exit 1; }

build:
	$(NEED_DOCKER)
	$(DOCKER) compose build

compose:
	$(NEED_DOCKER)
	$(DOCKER) compose up -d
	@echo "Kafka UI  http://localhost:8080"
	@echo "API       http://localhost:8000/docs"
	@echo "gRPC      localhost:50051"

compose-down:
	$(NEED_DOCKER)
	$(DOCKER) compose down -v
