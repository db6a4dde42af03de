"""The gateway before and after a change, side by side in front of one upstream.

    .venv/bin/python bench/gateway_ab.py --before <git revision> [--rounds 8] [--seconds 4]
        [--requests 1500]

Checks ``--before`` out into a temporary ``git worktree`` and runs ``python -m gateway`` from
it and from the working tree at once, both in front of the same bare ``grpc.aio`` upstream
(``bench/grpc_runtime.py --serve bare``), configured as ``bench/gateway_rest.py`` does (auth
off, tracing on without an exporter, one JSON log line per request). Rounds alternate the
order of the two:

* throughput: ``wrk -t1 -c16`` for ``--seconds`` against each, with the gateway's CPU per
  request from ``/proc/<pid>/stat`` (which moves less than the rate on a shared machine);
* latency: ``--requests`` sequential GETs on one keep-alive connection (a blocking socket,
  the least client work there is), p50 and p99.

Reports the medians of each and after / before. Needs ``wrk`` (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _util import ROOT, worktree

REQUEST = b"GET /v1/products/SKU-1 HTTP/1.1\r\nHost: bench\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_gateway(root: Path, upstream: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_UPSTREAMS": f"inventory=127.0.0.1:{upstream}",
        "GATEWAY_AUTH": "off",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "info"),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            sequential(port, 1)
        except OSError:
            time.sleep(0.3)
        else:
            return process, port
    process.kill()
    raise RuntimeError(f"the gateway from {root} did not answer within 30 s")


def sequential(port: int, count: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``count`` GETs, one at a time, on one keep-alive connection."""
    latencies = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(REQUEST)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the gateway closed the connection")
                received += chunk
                head, sep, body = received.partition(b"\r\n\r\n")
                if sep:
                    found = re.search(rb"content-length: (\d+)", head.lower())
                    assert found is not None, head
                    if not head.startswith(b"HTTP/1.1 200"):
                        raise RuntimeError(head.decode())
                    if len(body) >= int(found[1]):
                        break
            latencies.append(time.perf_counter() - started)
    latencies.sort()
    return latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port: int, seconds: float) -> int:
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", f"http://127.0.0.1:{port}/v1/products/SKU-1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--requests", type=int, default=1500)
    args = parser.parse_args()

    with worktree(args.before) as before_root:
        upstream = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "grpc_runtime.py"), "--serve", "bare"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert upstream.stderr is not None
        processes = [upstream]
        try:
            port = int(upstream.stderr.readline())
            sides: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
            for name, root in (("before", before_root), ("after", ROOT)):
                sides[name] = start_gateway(root, port)
                processes.append(sides[name][0])  # type: ignore[arg-type]
            for _, gateway_port in sides.values():  # warm-up
                wrk(gateway_port, 1)
                sequential(gateway_port, 200)
            rates: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            latency: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
            for index in range(args.rounds):
                order = list(sides) if index % 2 == 0 else list(sides)[::-1]
                for name in order:
                    process, gateway_port = sides[name]
                    used, started = cpu_seconds(process.pid), time.perf_counter()
                    count = wrk(gateway_port, args.seconds)
                    elapsed = time.perf_counter() - started
                    cpu = (cpu_seconds(process.pid) - used) / count * 1e6
                    rates[name].append((count / elapsed, cpu))
                    latency[name].append(sequential(gateway_port, args.requests))
                print(
                    f"round {index + 1}: "
                    + "  ".join(
                        f"{n} {rates[n][-1][0]:,.0f} req/s {rates[n][-1][1]:.0f} us "
                        f"p50 {latency[n][-1][0]:.3f} ms"
                        for n in sides
                    ),
                    flush=True,
                )
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=20)

    def med(values: list[tuple[float, float]], at: int) -> float:
        return statistics.median(v[at] for v in values)

    print(f"\n### Gateway, {args.before} (before) vs the working tree (after)\n")
    print(
        f"{args.rounds} rounds: wrk -t1 -c16 {args.seconds:g} s, then {args.requests} "
        "sequential GETs; medians.\n"
    )
    print("| side | req/s (wrk) | gateway CPU per request | p50 | p99 |")
    print("|---|---:|---:|---:|---:|")
    for name in sides:
        print(
            f"| {name} | {med(rates[name], 0):,.0f} | {med(rates[name], 1):.0f} us | "
            f"{med(latency[name], 0):.3f} ms | {med(latency[name], 1):.3f} ms |"
        )
    print(
        f"\nafter / before: rate {med(rates['after'], 0) / med(rates['before'], 0):.2f}x, "
        f"CPU per request {med(rates['after'], 1) / med(rates['before'], 1):.2f}x, "
        f"p50 {med(latency['after'], 0) - med(latency['before'], 0):+.3f} ms"
    )


if __name__ == "__main__":
    main()
