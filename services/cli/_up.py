"""``shopmq up``: the whole system on this machine — broker, five services, gateway.

Processes start in dependency order, each waits for its health check, and their JSON logs go
to ``var/log/<name>.log``. Ctrl-C (or SIGTERM) stops them in reverse order, each given time to
drain; a second Ctrl-C kills what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

if TYPE_CHECKING:
    import argparse

__all__ = ["PROCESSES", "register"]

ROOT = Path(__file__).resolve().parents[2]
ENGINES = {
    "activemq": ("activemq.sh", "stomp://127.0.0.1:61613"),
    "rabbitmq": ("rabbitmq.sh", "amqp://guest:guest@127.0.0.1:5672/"),
}


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    port: int
    metrics_port: int
    http: bool = False
    env: dict[str, str] = field(default_factory=dict)


PROCESSES = (
    Process("inventory", "services.inventory", 50052, 9462),
    Process("payments", "services.payments", 50053, 9463),
    Process("notifications", "services.notifications", 50054, 9464),
    Process("audit", "services.audit", 50055, 9465),
    Process("orders", "services.orders", 50051, 9461),
    Process("gateway", "gateway", 8080, 9460, http=True),
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "up",
        help="run the broker, the five services and the gateway here (Ctrl-C stops all)",
        description=(
            "Start a local broker (ActiveMQ by default), the five services (SQLite files under "
            "var/data) and the REST gateway on :8080; wait until each is healthy; print where "
            "everything answers. Logs: var/log/<name>.log."
        ),
    )
    parser.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default="activemq",
        help="broker engine to start locally (default: activemq, over STOMP)",
    )
    parser.add_argument(
        "--broker", metavar="URL", help="use this broker instead of starting one (e.g. amqps://...)"
    )
    parser.add_argument("--var", type=Path, default=ROOT / "var", help="state directory")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each process to become healthy",
    )
    parser.set_defaults(handler=_up)


def environment(process: Process, broker_url: str, var: Path) -> dict[str, str]:
    """The twelve-factor settings one process gets (see services/runtime/settings.py)."""
    env = dict(os.environ)
    env.update(
        {
            "SERVICE_NAME": process.name,
            "GRPC_PORT": str(process.port),
            "METRICS_PORT": str(process.metrics_port),
            "BROKER_URL": broker_url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{var / 'data' / (process.name + '.db')}",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    upstreams = []
    for other in PROCESSES:
        if not other.http:
            env[f"{other.name.upper()}_ADDR"] = f"127.0.0.1:{other.port}"
            upstreams.append(f"{other.name}=127.0.0.1:{other.port}")
    if process.http:
        env.setdefault("GATEWAY_HOST", "127.0.0.1")
        env["GATEWAY_PORT"] = str(process.port)
        env["GATEWAY_UPSTREAMS"] = ",".join(upstreams)
        if (ROOT / "web" / "index.html").is_file():
            env.setdefault("GATEWAY_STATIC_DIR", str(ROOT / "web"))
    env.update(process.env)
    return env


async def wait_healthy(process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _healthy(process):
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(
        f"{process.name} not healthy after {timeout:.0f}s (see var/log/{process.name}.log)"
    )


async def _healthy(process: Process) -> bool:
    if process.http:
        try:
            async with httpx.AsyncClient(timeout=1.0) as client:
                response = await client.get(f"http://127.0.0.1:{process.port}/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == httpx.codes.OK
    async with grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _up(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    var: Path = args.var
    (var / "data").mkdir(parents=True, exist_ok=True)
    (var / "log").mkdir(parents=True, exist_ok=True)
    broker_url = args.broker
    if broker_url is None:
        script, broker_url = ENGINES[args.engine]
        _step(f"starting {args.engine}")
        starter = await asyncio.create_subprocess_exec(
            "bash", str(ROOT / "deploy/local" / script), "start", stdout=subprocess.DEVNULL
        )
        if await starter.wait() != 0:
            raise RuntimeError(f"could not start {args.engine} (deploy/local/{script})")
    children: list[tuple[Process, asyncio.subprocess.Process]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for process in PROCESSES:
            started = time.monotonic()
            _step(f"starting {process.name:<14}", end="")
            log = (var / "log" / f"{process.name}.log").open("ab")
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                process.module,
                env=environment(process, broker_url, var),
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            children.append((process, child))
            waiting = asyncio.create_task(wait_healthy(process, args.timeout))
            exited = asyncio.create_task(child.wait())
            done, _ = await asyncio.wait({waiting, exited}, return_when=asyncio.FIRST_COMPLETED)
            if exited in done:
                waiting.cancel()
                raise RuntimeError(
                    f"{process.name} exited with status {child.returncode} "
                    f"(see var/log/{process.name}.log)"
                )
            exited.cancel()
            waiting.result()
            print(f" ready in {time.monotonic() - started:.1f}s", flush=True)
        _summary(broker_url, var)
        watchers = [asyncio.create_task(c.wait()) for _, c in children]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({stopper, *watchers}, return_when=asyncio.FIRST_COMPLETED)
        if stopper not in done:
            dead = [p.name for (p, c) in children if c.returncode is not None]
            print(f"shopmq: error: {', '.join(dead)} exited; stopping everything", file=sys.stderr)
            return 1
        return 0
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await _shutdown(children)


async def _shutdown(children: list[tuple[Process, asyncio.subprocess.Process]]) -> None:
    """Reverse start order: the gateway stops taking requests before the services it calls."""
    if not children:
        return
    _step("stopping (Ctrl-C again to kill)")
    force = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, force.set)
    try:
        for process, child in reversed(children):
            if child.returncode is not None:
                continue
            child.send_signal(signal.SIGTERM)
            waiting = asyncio.create_task(child.wait())
            forced = asyncio.create_task(force.wait())
            await asyncio.wait({waiting, forced}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
            forced.cancel()
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
            print(f"  stopped {process.name}", flush=True)
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _summary(broker_url: str, var: Path) -> None:
    print(flush=True)
    print("shop is up:")
    print("  REST gateway   http://localhost:8080   (OpenAPI: /openapi.json, docs: /docs)")
    for process in PROCESSES:
        if not process.http:
            print(
                f"  {process.name:<14} grpc://127.0.0.1:{process.port}   "
                f"metrics http://127.0.0.1:{process.metrics_port}/metrics"
            )
    print(f"  broker         {broker_url}")
    print(f"  logs           {var}/log/<name>.log   events: shopmq events tail")
    print("Ctrl-C stops everything.", flush=True)


def _step(text: str, end: str = "\n") -> None:
    print(f"==> {text}", end=end, flush=True)
