"""Private ActiveMQ instances for tests that stop and start the broker, via the project's own
deploy/local/activemq.sh (the shared instance on 61613 is never restarted)."""

from __future__ import annotations

import asyncio
import os
import signal
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.support.tls import TestCA

SCRIPT = Path(__file__).resolve().parents[2] / "deploy/local/activemq.sh"


@dataclass
class ActiveMQInstance:
    base: Path
    stomp_port: int = field(default_factory=free_port)
    openwire_port: int = field(default_factory=free_port)
    tls: TestCA | None = None
    ssl_port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"stomp://127.0.0.1:{self.stomp_port}"

    @property
    def tls_url(self) -> str:
        assert self.tls is not None, "instance started without TLS"
        return f"stomp+ssl://localhost:{self.ssl_port}?cafile={self.tls.cafile}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "ACTIVEMQ_BASE": str(self.base),
                "ACTIVEMQ_STOMP_PORT": str(self.stomp_port),
                "ACTIVEMQ_OPENWIRE_PORT": str(self.openwire_port),
            }
        )
        if self.tls is not None:
            env["ACTIVEMQ_STOMP_SSL_PORT"] = str(self.ssl_port)
            env["ACTIVEMQ_KEYSTORE"] = str(self.tls.keystore)
        return env

    async def _script(self, command: str) -> None:
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(SCRIPT),
            command,
            env=self._env(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 120)
        if process.returncode != 0:
            raise RuntimeError(f"activemq.sh {command}: {output.decode()[-800:]}")

    async def start(self) -> None:
        await self._script("start")

    async def stop(self) -> None:
        await self._script("stop")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The broker process stopped (SIGSTOP) for the block: its sockets stay open, nothing
        answers; resumed (SIGCONT) after."""
        pid = int((self.base / "data" / "activemq.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)


@asynccontextmanager
async def private_activemq(
    base: Path, *, tls: TestCA | None = None
) -> AsyncIterator[ActiveMQInstance]:
    """A running private ActiveMQ under ``base``; stopped at exit (its store stays on disk)."""
    instance = ActiveMQInstance(base=base, tls=tls)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()
