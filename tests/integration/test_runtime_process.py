"""A service process built on the runtime: `run(main)` exit codes, one-line config errors,
SIGTERM shutdown in order, and a second signal forcing the exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE = """
import asyncio, os
from services.runtime import ServiceServer, Settings, configure_logging, get_logger, run

async def main() -> None:
    settings = Settings.from_env("demo", grpc_port=0, needs_broker=False)
    configure_logging(settings.service_name, settings.log_level)
    server = ServiceServer.from_settings(settings, readiness=())

    async def close_database() -> None:
        await asyncio.sleep(float(os.environ.get("HOOK_SECONDS", "0")))
        get_logger("demo").info("database.closed")

    server.on_shutdown("database", close_database)
    async with server:
        await server.serve()

run(main)
"""


def _start(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "demo_service.py"
    script.write_text(SERVICE)
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "GRPC_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE": "5",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(script)],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_event(process: subprocess.Popen[str], event: str, timeout: float = 15) -> dict:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        record = json.loads(line)
        if record["event"] == event:
            return record
    process.kill()
    pytest.fail(f"no {event!r} log line; stderr: {process.stderr.read() if process.stderr else ''}")


def test_config_error_prints_one_line_and_exits_2(tmp_path):
    """A bad variable makes the process print one line naming it and exit with code 2."""
    process = _start(tmp_path, GRPC_PORT="not-a-port")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr == "configuration error: GRPC_PORT: 'not-a-port' is not an integer\n"


def test_taken_port_prints_one_line_and_exits_2(tmp_path):
    """A port another server already listens on is refused at start-up in one line."""
    first = _start(tmp_path)
    port = _wait_for_event(first, "server.started")["port"]
    try:
        second = _start(tmp_path, GRPC_PORT=str(port))
        _, stderr = second.communicate(timeout=30)
    finally:
        first.kill()
        first.communicate()
    assert second.returncode == 2
    assert stderr == (
        f"configuration error: GRPC_HOST/GRPC_PORT: cannot bind 127.0.0.1:{port}"
        ": in use by another process\n"
    )


def test_sigterm_stops_gracefully_and_exits_0(tmp_path):
    """SIGTERM runs the shutdown in order (stopping, hooks, stopped) and exits 0; every log
    line is JSON with the service name."""
    process = _start(tmp_path)
    started = _wait_for_event(process, "server.started")
    assert started["service"] == "demo"
    assert started["port"] > 0
    _wait_for_event(process, "server.awaiting_signal")
    process.send_signal(signal.SIGTERM)
    stdout, _ = process.communicate(timeout=30)
    events = [json.loads(line)["event"] for line in stdout.splitlines()]
    assert process.returncode == 0
    assert events == [
        "server.signal",
        "server.stopping",
        "database.closed",
        "server.shutdown_hook_done",
        "server.stopped",
    ]


def test_second_signal_forces_exit(tmp_path):
    """A second signal during a slow shutdown cancels it: the process exits 1 at once."""
    process = _start(tmp_path, HOOK_SECONDS="60")
    _wait_for_event(process, "server.awaiting_signal")
    process.send_signal(signal.SIGTERM)
    _wait_for_event(process, "server.stopping")
    began = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1
    assert time.monotonic() - began < 10
    assert "shutdown forced by a second signal" in stderr
