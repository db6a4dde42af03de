"""Trace context crosses the broker: the CONSUMER span is a child of, and links to, the
PRODUCER span, with messaging attributes."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conformance._support import Inbox, eventually, ping


async def test_consumer_span_is_child_of_producer_span(make_broker, target, namespace, uid):
    """One trace spans publish and process; handler spans nest under the CONSUMER span."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    broker = make_broker(tracer_provider=provider)
    await broker.start()
    inbox = Inbox()

    async def handler(event):
        with tracer.start_as_current_span("handler work"):
            await inbox(event)

    group = f"g{uid}"
    await broker.subscribe(group, [f"{namespace}.Ping"], handler)
    with tracer.start_as_current_span("request") as request_span:
        sent = await broker.publish(f"{namespace}.Ping", ping(1))
    await eventually(lambda: len(inbox.events) == 1)
    await eventually(lambda: any(s.name == "handler work" for s in exporter.get_finished_spans()))
    await eventually(
        lambda: any(s.kind == SpanKind.CONSUMER for s in exporter.get_finished_spans())
    )

    spans = {s.name: s for s in exporter.get_finished_spans()}
    producer = spans[f"send {namespace}.Ping"]
    consumer = spans[f"process {namespace}.Ping"]
    work = spans["handler work"]
    trace_id = request_span.get_span_context().trace_id
    assert {producer.context.trace_id, consumer.context.trace_id, work.context.trace_id} == {
        trace_id
    }
    assert producer.kind == SpanKind.PRODUCER
    assert producer.parent.span_id == request_span.get_span_context().span_id
    assert consumer.kind == SpanKind.CONSUMER
    assert consumer.parent.span_id == producer.context.span_id
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert work.parent.span_id == consumer.context.span_id
    assert producer.attributes["messaging.destination.name"] == f"{namespace}.Ping"
    assert producer.attributes["messaging.message.id"] == sent.id
    assert producer.attributes["messaging.operation.type"] == "send"
    assert consumer.attributes["messaging.consumer.group.name"] == group
    assert consumer.attributes["messaging.operation.type"] == "process"
    assert consumer.attributes["messaging.message.id"] == sent.id
    assert producer.attributes["messaging.system"] in {"rabbitmq", "activemq"}
    assert inbox.events[0].extensions["traceparent"].split("-")[1] == f"{trace_id:032x}"
