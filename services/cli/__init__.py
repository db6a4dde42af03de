"""``shopmq``: one command line for running, inspecting and operating the system.

Each sub-command lives in its own module and registers itself in :data:`COMMANDS`; errors the
user can act on are printed as one line (``shopmq: error: ...``) with a non-zero exit status,
never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

import structlog

from broker.errors import BrokerError
from services.cli import _demo, _dlq, _docs, _events, _schemas, _up

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

DESCRIPTION = """\
Run and operate the shop: five gRPC services behind a REST gateway, talking through Amazon MQ
(ActiveMQ or RabbitMQ) with Avro CloudEvents.

Start here:
  shopmq up                   everything on this machine; the gateway answers on :8080
  shopmq demo                 place sample orders through the gateway and watch the sagas
  shopmq schemas check        the event-schema compatibility gate
  shopmq events tail          print events as they are published, with trace ids
  shopmq dlq list payments    what a consumer group dead-lettered, and why
  shopmq asyncapi -o FILE     the AsyncAPI document of every channel and message

Results go to stdout, errors to stderr as one line. SHOPMQ_LOG_LEVEL=info (or warning, debug)
adds the toolkit's log lines (connections, reconnects) on stderr.
"""


class CommandError(Exception):
    """A failure to report as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shopmq",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (_up, _demo, _events, _dlq, _schemas, _docs):
        module.register(commands)
    return parser


def _quiet_logs() -> None:
    # stdout carries the command's output (``--json`` is one object per line) and a failure
    # is one line on stderr; the toolkit's own log lines (connecting, reconnecting) go to
    # stderr too, and only when SHOPMQ_LOG_LEVEL asks for them.
    level = os.environ.get("SHOPMQ_LOG_LEVEL", "error").upper()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level, logging.ERROR)
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_logs()
    try:
        status: int = args.handler(args)
    except (BrokerError, CommandError, OSError, RuntimeError, TimeoutError) as exc:
        print(f"shopmq: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return status
