#!/usr/bin/env bash
# Start the local RabbitMQ (Debian package, no systemd) with the plugins the tests use.
#   rabbitmq.sh start     start if not running; enable AMQP 1.0 and STOMP plugins
#   rabbitmq.sh status
set -euo pipefail
cmd=${1:-start}
running() { rabbitmqctl -q status >/dev/null 2>&1; }
case "$cmd" in
  start)
    if ! running; then
      echo "starting RabbitMQ"
      rabbitmq-server -detached
      for _ in $(seq 1 60); do running && break; sleep 1; done
    fi
    rabbitmqctl -q await_startup >/dev/null
    # AMQP 1.0 plugin: the AMQP 1.0 transport's conformance broker (enabling needs no restart).
    rabbitmq-plugins -q enable rabbitmq_amqp1_0 >/dev/null
    echo "RabbitMQ ready on 127.0.0.1:5672 (AMQP 0-9-1 and AMQP 1.0)"
    ;;
  status) running && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: $0 start|status" >&2; exit 2 ;;
esac
