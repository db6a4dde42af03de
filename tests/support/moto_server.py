"""A real ``moto_server`` HTTP process on a free loopback port, for the boto3 integrations.

moto's server speaks the AWS APIs over HTTP like the real endpoints do, so botocore signs,
serialises and parses real requests; only the AWS side is simulated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from tests.support.ports import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

REGION = "eu-west-1"
#: dummy credentials: moto accepts any, and nothing real must ever be used by a test
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _executable() -> str:
    # The virtualenv's own moto_server first (moto[server] is a dev dependency).
    beside = Path(sys.executable).with_name("moto_server")
    return str(beside) if beside.exists() else (shutil.which("moto_server") or "moto_server")


@contextmanager
def moto_server(timeout: float = 30.0) -> Iterator[str]:
    """Run ``moto_server`` on 127.0.0.1 and yield its endpoint URL; terminated at exit."""
    port = free_port()
    env = {**os.environ, **{k.upper(): v for k, v in CREDENTIALS.items()}}
    process = subprocess.Popen(
        [_executable(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {url}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def session() -> boto3.Session:
    """A boto3 session with dummy credentials in the test region."""
    return boto3.Session(region_name=REGION, **CREDENTIALS)
