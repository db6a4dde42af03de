"""`python -m gateway` as a real process: serves the web console at /, its own endpoints, and
Status JSON for API paths; a bad setting stops it with one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.ports import free_port


@pytest.fixture
def gateway(tmp_path):
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>console</title>")
    (web / "app.js").write_text("export const x = 1;")
    port = free_port()
    env = dict(
        os.environ,
        GATEWAY_PORT=str(port),
        GATEWAY_HOST="127.0.0.1",
        GATEWAY_STATIC_DIR=str(web),
        OTEL_SDK_DISABLED="true",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{base}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(process.communicate()[0].decode()[-2000:])
    yield base
    process.terminate()
    process.wait(timeout=20)


def test_web_console_and_api_share_one_origin(gateway):
    """/ serves index.html and static assets; /v1/... is always the API (Status JSON)."""
    index = httpx.get(f"{gateway}/")
    assert index.status_code == 200
    assert "console" in index.text
    assert httpx.get(f"{gateway}/app.js").text == "export const x = 1;"
    api = httpx.get(f"{gateway}/v1/nothing-here")
    assert api.status_code == 404
    assert api.json()["code"] == 5
    assert httpx.get(f"{gateway}/openapi.json").json()["openapi"].startswith("3.1")


def test_static_files_cannot_escape_their_directory(gateway):
    """Path traversal does not reach files outside the web directory."""
    response = httpx.get(f"{gateway}/..%2f..%2fetc%2fpasswd")
    assert response.status_code == 404
    assert "root:" not in response.text


def test_bad_setting_exits_with_one_line(tmp_path):
    """A static directory that does not exist is refused at start-up, in one line."""
    env = dict(os.environ, GATEWAY_STATIC_DIR=str(tmp_path / "missing"))
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "GATEWAY_STATIC_DIR" in result.stderr
