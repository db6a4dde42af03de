"""A private RabbitMQ node for tests that stop and start the broker (the machine's shared node
on 5672 is never restarted: other tests use it)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.support.tls import TestCA

_BIN = "/usr/lib/rabbitmq/bin"


@dataclass
class RabbitNode:
    """A RabbitMQ node in its own directory, with its own ports, node name and cookie."""

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"rabbit-test-{uuid.uuid4().hex[:8]}@localhost")
    scheme: str = "amqp"
    tls: TestCA | None = None
    """With a CA, the node also listens for TLS on :attr:`tls_port`."""
    tls_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        if self.scheme == "amqp10":
            return f"amqp10://guest:guest@127.0.0.1:{self.port}?dialect=rabbitmq"
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def tls_url(self) -> str:
        assert self.tls is not None, "node started without TLS"
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}/?cafile={self.tls.cafile}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HOME": str(self.base),
                "RABBITMQ_NODENAME": self.name,
                "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.base / "log"),
                "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
                "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
                "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
                "ERL_EPMD_ADDRESS": "127.0.0.1",
            }
        )
        return env

    def prepare(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        cookie = self.base / ".erlang.cookie"
        cookie.write_text(uuid.uuid4().hex.upper())
        cookie.chmod(0o400)
        config = f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        if self.tls is not None:
            config += (
                f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                f"ssl_options.cacertfile = {self.tls.cafile}\n"
                f"ssl_options.certfile = {self.tls.certfile}\n"
                f"ssl_options.keyfile = {self.tls.keyfile}\n"
                "ssl_options.verify = verify_none\n"
                "ssl_options.fail_if_no_peer_cert = false\n"
            )
        (self.base / "rabbitmq.conf").write_text(config)
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "enabled_plugins").write_text("[rabbitmq_amqp1_0].\n")

    async def _ctl(self, *args: str, timeout: float = 60.0) -> None:
        process = await asyncio.create_subprocess_exec(
            f"{_BIN}/rabbitmqctl",
            "-n",
            self.name,
            *args,
            env=self._env(),
            cwd=self.base,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
        if process.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {output.decode()[-500:]}")

    async def boot(self, timeout: float = 90.0) -> None:
        self.prepare()
        process = await asyncio.create_subprocess_exec(
            f"{_BIN}/rabbitmq-server",
            "-detached",
            env=self._env(),
            cwd=self.base,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await process.wait()
        await self._await_startup(timeout)

    async def _await_startup(self, timeout: float) -> None:
        # await_startup fails at once while the node is not yet registered with epmd.
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                await self._ctl("await_startup", "--timeout", "30", timeout=45)
            except RuntimeError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
            else:
                return

    async def stop_app(self) -> None:
        """Stop the RabbitMQ application (the node keeps its data): clients are disconnected."""
        await self._ctl("stop_app")

    async def start_app(self) -> None:
        """Start the application again and wait until it accepts connections."""
        await self._ctl("start_app")
        await self._await_startup(60.0)

    async def restart(self) -> None:
        """``stop_app`` then ``start_app``: a broker restart as clients see it."""
        await self.stop_app()
        await self.start_app()

    # The conformance suite's PrivateBroker protocol names these stop/start.
    stop = stop_app
    start = start_app

    async def shutdown(self) -> None:
        """Stop the whole node (``rabbitmqctl stop``); kill it if that does not work."""
        try:
            await self._ctl("stop", timeout=60)
        except (RuntimeError, TimeoutError):
            pid_file = self.base / "node.pid"
            pid = pid_file.read_text().strip() if pid_file.exists() else ""
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)


@asynccontextmanager
async def private_rabbitmq(
    base: Path, *, scheme: str = "amqp", tls: TestCA | None = None
) -> AsyncIterator[RabbitNode]:
    """A running private node under ``base`` (about 6 s to boot on this machine); stopped and
    left on disk at exit, also when it failed to come up."""
    node = RabbitNode(base=base, scheme=scheme, tls=tls)
    try:
        await node.boot()
        yield node
    finally:
        await node.shutdown()
