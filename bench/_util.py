"""Shared by the side-by-side benchmarks: alternating rounds, medians, a results table.

Numbers on a shared 2-core machine drift from run to run, so every figure is a ratio of two
sides measured in the same run: each round runs every side once, the order rotating from round
to round so drift (CPU heat, broker state) hits all sides alike, and medians are compared.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from broker import SchemaRegistry
from services.runtime.telemetry import Telemetry, TelemetryConfig, setup_telemetry

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping

__all__ = [
    "Discard",
    "Row",
    "alternate",
    "bench_data",
    "bench_registry",
    "machine",
    "median",
    "report",
    "sampling_environ",
    "sampling_note",
    "worktree",
]

ROOT = Path(__file__).resolve().parent.parent

PAD = 172
"""Padding that makes a bench event's Avro single-object body about 200 bytes."""


class Discard(SpanExporter):
    """A span exporter that drops everything: tracing runs, the collector is not measured."""

    def export(self, spans: Any) -> SpanExportResult:  # noqa: ARG002
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def bench_registry(directory: Path) -> tuple[SchemaRegistry, str]:
    """A registry holding one bench event type with a fresh namespace (its topic is unique)."""
    namespace = f"bench.t{uuid.uuid4().hex[:10]}.v1"
    schema = {
        "type": "record",
        "name": "Ping",
        "namespace": namespace,
        "fields": [
            {"name": "order_id", "type": "string"},
            {"name": "seq", "type": "long"},
            {"name": "text", "type": "string"},
        ],
    }
    (directory / "Ping").mkdir(parents=True, exist_ok=True)
    (directory / "Ping" / "v1.avsc").write_text(json.dumps(schema))
    return SchemaRegistry.from_directory(directory), f"{namespace}.Ping"


def bench_data(seq: int) -> dict[str, Any]:
    """One bench event's data (about 200 bytes encoded)."""
    return {"order_id": f"order-{seq:08d}", "seq": seq, "text": "x" * PAD}


async def alternate(
    rounds: int, sides: Mapping[str, Callable[[], Awaitable[float]]]
) -> dict[str, list[float]]:
    """Run every side once per round, rotating the order; return each side's figures."""
    results: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for index in range(rounds):
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        if index % 2:
            order.reverse()
        for name in order:
            results[name].append(await sides[name]())
        print(
            f"round {index + 1}: " + "  ".join(f"{n} {results[n][-1]:,.0f}" for n in names),
            flush=True,
        )
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass(frozen=True)
class Row:
    """One comparison: ours vs theirs, higher is better unless ``lower_is_better``."""

    what: str
    ours: float
    theirs: float
    target: float
    unit: str = "msg/s"
    theirs_name: str = "raw"
    lower_is_better: bool = False

    @property
    def ratio(self) -> float:
        return self.ours / self.theirs if self.theirs else 0.0

    @property
    def met(self) -> bool:
        if self.lower_is_better:
            return self.ratio <= self.target
        return self.ratio >= self.target


def sampling_environ() -> dict[str, str]:
    """``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` from this process's environment, for
    the benches' ``setup_telemetry(environ=...)``: every other setting stays the bench's own, so
    ``OTEL_TRACES_SAMPLER_ARG=0.1 .venv/bin/python bench/...`` measures head sampling alone."""
    names = ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG")
    return {name: os.environ[name] for name in names if name in os.environ}


def bench_telemetry(name: str, *, set_global: bool = False) -> Telemetry:
    """Providers as the services set them up (sampling from :func:`sampling_environ`), spans
    to :class:`Discard`, metrics served on a free port; made global only with ``set_global``
    (a server process of its own, as a service is)."""
    return setup_telemetry(
        name,
        environ=sampling_environ(),
        span_exporter=Discard(),
        metrics_port=0,
        set_global=set_global,
    )


def sampling_note() -> str:
    """How spans were sampled in this run, for the report's notes: what ``setup_telemetry``
    makes of :func:`sampling_environ`, defaults included."""
    config = TelemetryConfig.from_env("bench", sampling_environ())
    return (
        f"Traces sampled by {config.sampler} at {config.sampler_ratio} (OTEL_TRACES_SAMPLER_ARG)."
    )


def tracing_budget(
    raw_cpu: float,
    traced_cpu: float,
    target: float,
    rate_ratio: float,
    *,
    per: str = "message",
    raw: str = "the raw client",
) -> str:
    """The report's note on what tracing alone costs, against a target ratio to an untraced
    ``raw`` side: ``raw`` traced the stock way (the same SDK work as ours, nothing else) minus
    ``raw``, in CPU per ``per``, beside what the target leaves over ``raw``'s CPU for all the
    work ours adds (a CPU-bound side at ``target`` may use ``raw_cpu / target``)."""
    budget = raw_cpu * (1 / target - 1)
    return (
        f"Tracing alone: {raw} traced uses {traced_cpu - raw_cpu:.0f} us more CPU per {per} "
        f"than untraced and runs at {rate_ratio:.2f}x of it; the {target}x target leaves "
        f"{budget:.0f} us per {per} over {raw} for all the work ours adds."
    )


def client_notes(cpu: dict[str, list[float]], rates: dict[str, float], target: float) -> str:
    """The AMQP 0-9-1 reports' closing notes: each side's client CPU per message (median, the
    warm-up round's figure left out), what tracing alone costs the raw side against
    ``target`` (:func:`tracing_budget`) and how spans were sampled."""
    return (
        ", ".join(f"{k} {median(v[1:]):.0f} us" for k, v in cpu.items())
        + ". "
        + tracing_budget(
            median(cpu["raw"][1:]),
            median(cpu["raw+otel"][1:]),
            target,
            rates["raw+otel"] / rates["raw"],
        )
        + " "
        + sampling_note()
    )


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """``revision`` checked out in a temporary ``git worktree``, removed afterwards: run code
    from it with ``PYTHONPATH=<it>`` (ahead of the editable install) to compare a change with
    what came before it, side by side in one run."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(root), revision], cwd=ROOT, check=True
        )
        try:
            yield root
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(root)], cwd=ROOT, check=False
            )


def report(title: str, rows: list[Row], notes: str = "") -> None:
    """Print the comparison as a Markdown table (pasted into docs/benchmarks.md)."""
    print(f"\n### {title}\n")
    if notes:
        print(notes + "\n")
    print("| what | ours | theirs | ratio | target | met? |")
    print("|---|---:|---:|---:|---|---|")
    for row in rows:
        sign = "<=" if row.lower_is_better else ">="
        print(
            f"| {row.what} | {row.ours:,.0f} {row.unit} | {row.theirs:,.0f} {row.unit} "
            f"({row.theirs_name}) | {row.ratio:.2f}x | {sign} {row.target}x | "
            f"{'yes' if row.met else 'NO'} |"
        )
    print(f"\nmachine: {machine()}")


def machine() -> str:
    cpus = Path("/proc/cpuinfo").read_text().count("processor\t:")
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{cpus} x {model}, Python {platform.python_version()}, {platform.platform()}"
