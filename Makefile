# The two commands a newcomer needs:  `make up`  (whole system)  and  `make test`  (whole suite).
# Everything else here is a step of those two.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: up test check lint typecheck pytest install brokers bench gen clean

up: install brokers ## bring up broker, five services and the gateway on localhost:8080
	$(BIN)/shopmq up

test: install brokers check pytest ## lint, type-check and run every test against real brokers

check: lint typecheck

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	bash deploy/local/system-packages.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

bench: install brokers ## every comparison of docs/benchmarks.md, in short runs: the tables on stdout
	bash deploy/local/system-packages.sh wrk
	$(BIN)/python bench/amqp091_publish.py --rounds 3 --messages 4000
	$(BIN)/python bench/amqp091_consume.py --rounds 3 --messages 4000
	$(BIN)/python bench/stomp_vs_stomppy.py --rounds 3
	$(BIN)/python bench/amqp10_vs_proton.py --rounds 3
	$(BIN)/python bench/grpc_runtime.py --rounds 3
	$(BIN)/python bench/gateway_rest.py --rounds 3 --requests 1000 --seconds 4
	$(BIN)/python bench/e2e_orders.py
	$(BIN)/python bench/sqlite_transaction.py --rounds 3

brokers: ## install (Debian packages) and start RabbitMQ and ActiveMQ if they are not running
	bash deploy/local/rabbitmq.sh start
	bash deploy/local/activemq.sh start

gen: install ## regenerate protobuf code, OpenAPI and AsyncAPI documents from their sources
	bash protos/generate.sh
	$(BIN)/shopmq asyncapi -o asyncapi.yaml
	$(BIN)/shopmq openapi -o openapi.json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
