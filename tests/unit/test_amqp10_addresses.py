"""AMQP 1.0 address building per dialect, and the CloudEvents AMQP binding of messages."""

from __future__ import annotations

import proton
import pytest

from broker import BrokerURL, ConfigurationError
from broker.transport import SubscriptionSpec, TransportOptions
from broker.transports import load
from broker.transports._amqp10_addresses import DELIVERY_DELAY, Addresses
from broker.transports._amqp10_messages import from_message, to_message

ACTIVEMQ = Addresses(dialect="activemq")
RABBITMQ = Addresses(dialect="rabbitmq")
SPEC = SubscriptionSpec(
    group="payments",
    topics=("shop.orders.v1.OrderPlaced", "shop.orders.v1.#"),
    retry_delays=(1.0, 5.0, 30.0),
)


def _transport(url: str):
    parsed = BrokerURL.parse(url)
    return load(parsed.transport)(parsed, parsed.endpoints[0], TransportOptions())


def test_dialect_defaults_to_activemq_and_follows_the_url_option():
    """amqp+ssl:// and amqp10:// speak ActiveMQ addresses unless ?dialect=rabbitmq says not."""
    assert _transport("amqp+ssl://u:p@b-1.mq.eu-west-1.amazonaws.com:5671").addresses == ACTIVEMQ
    assert _transport("amqp10://127.0.0.1").addresses.dialect == "activemq"
    assert _transport("amqp10://127.0.0.1?dialect=rabbitmq").addresses.dialect == "rabbitmq"
    assert _transport("amqp10://127.0.0.1?dialect=rabbitmq").system == "rabbitmq"
    assert _transport("amqp+ssl://127.0.0.1").system == "activemq"


def test_exchange_and_prefix_options_reach_rabbitmq_addresses():
    """URL options exchange= and prefix= rename the exchange and the group queues."""
    addresses = Addresses.from_options({"dialect": "rabbitmq", "exchange": "ev", "prefix": "p"})
    assert addresses.publish("a.b") == "/exchange/ev/a.b"
    assert addresses.group_sources(SPEC) == ["/amq/queue/p.payments"]


def test_unknown_dialect_is_a_configuration_error():
    """A dialect other than activemq/rabbitmq fails with one clear line."""
    with pytest.raises(ConfigurationError, match="dialect"):
        Addresses.from_options({"dialect": "artemis"})


def test_activemq_producers_send_to_the_virtual_topic():
    """ActiveMQ: a producer's target is topic://VirtualTopic.<event type>."""
    assert ACTIVEMQ.publish("shop.orders.v1.OrderPlaced") == (
        "topic://VirtualTopic.shop.orders.v1.OrderPlaced"
    )


def test_activemq_group_reads_a_consumer_queue_per_pattern_and_its_retry_queue():
    """ActiveMQ: each pattern is its own Consumer.<group>.VirtualTopic.<pattern> queue (`#`
    becoming `>`), and the group also reads its retry queue."""
    assert ACTIVEMQ.group_sources(SPEC) == [
        "queue://Consumer.payments.VirtualTopic.shop.orders.v1.OrderPlaced",
        "queue://Consumer.payments.VirtualTopic.shop.orders.v1.>",
        "queue://shop.payments.retry",
    ]


def test_activemq_retry_and_replay_go_to_the_group_retry_queue():
    """ActiveMQ: a retried copy goes to the group's retry queue (never to a wildcard consumer
    queue) delayed by the x-opt-delivery-delay annotation in ms; a replay goes there at once."""
    assert ACTIVEMQ.retry(SPEC, 2.5) == ("queue://shop.payments.retry", 2500)
    assert ACTIVEMQ.retry(SPEC, 0) == ("queue://shop.payments.retry", None)
    assert ACTIVEMQ.replay(SPEC) == "queue://shop.payments.retry"


def test_activemq_dead_letters_go_to_the_group_dlq():
    """ActiveMQ: dead letters of every pattern of a group share the queue shop.<group>.dlq."""
    assert ACTIVEMQ.dead_letter(SPEC) == "queue://shop.payments.dlq"


def test_activemq_tail_reads_the_virtual_topics_themselves():
    """ActiveMQ: a temporary subscription attaches to the topics, leaving no queue behind."""
    spec = SubscriptionSpec(group="tail", topics=("shop.#", "shop.#"), durable=False)
    assert ACTIVEMQ.tail_sources(spec) == ["topic://VirtualTopic.shop.>"]


def test_activemq_rejects_a_hash_that_is_not_last():
    """ActiveMQ's `>` only matches trailing words, so `#` in the middle cannot be translated."""
    with pytest.raises(ConfigurationError, match="last"):
        ACTIVEMQ.group_sources(SubscriptionSpec(group="g", topics=("shop.#.Placed",)))


def test_rabbitmq_addresses_use_the_plugin_forms():
    """RabbitMQ: publish to /exchange/<exchange>/<type>; one group queue, its DLQ and replay
    via /amq/queue/<name> (names from broker.naming, shared with the AMQP 0-9-1 transport)."""
    assert RABBITMQ.publish("shop.orders.v1.OrderPlaced") == (
        "/exchange/shop.events/shop.orders.v1.OrderPlaced"
    )
    assert RABBITMQ.group_sources(SPEC) == ["/amq/queue/shop.payments"]
    assert RABBITMQ.dead_letter(SPEC) == "/amq/queue/shop.payments.dlq"
    assert RABBITMQ.replay(SPEC) == "/amq/queue/shop.payments"


def test_rabbitmq_tail_reads_the_queue_declared_for_it():
    """RabbitMQ: a temporary subscription reads the queue declared (and bound) for it."""
    spec = SubscriptionSpec(group="tail", topics=("shop.#",), durable=False)
    assert RABBITMQ.tail_sources(spec, "shop.tail.x") == ["/amq/queue/shop.tail.x"]
    with pytest.raises(ConfigurationError):
        RABBITMQ.tail_sources(spec)


def test_rabbitmq_retry_picks_the_ttl_queue_of_the_nearest_declared_delay():
    """RabbitMQ: the smallest declared delay at least the one asked for (else the largest);
    no declared delays or no delay requeue to the group queue at once."""
    assert RABBITMQ.retry(SPEC, 3.0) == ("/amq/queue/shop.payments.retry.5000", None)
    assert RABBITMQ.retry(SPEC, 99.0) == ("/amq/queue/shop.payments.retry.30000", None)
    assert RABBITMQ.retry(SPEC, 0) == ("/amq/queue/shop.payments", None)
    no_delays = SubscriptionSpec(group="payments", topics=SPEC.topics)
    assert RABBITMQ.retry(no_delays, 3.0) == ("/amq/queue/shop.payments", None)


def test_copy_targets_are_watched_on_rabbitmq_only():
    """A RabbitMQ group watches its DLQ and every retry queue (the plugin silently drops
    messages sent to a missing queue); ActiveMQ creates queues on send, so nothing."""
    assert RABBITMQ.copy_targets(SPEC) == [
        "/amq/queue/shop.payments.dlq",
        "/amq/queue/shop.payments.retry.1000",
        "/amq/queue/shop.payments.retry.5000",
        "/amq/queue/shop.payments.retry.30000",
    ]
    assert ACTIVEMQ.copy_targets(SPEC) == []


def test_queue_names_for_operator_tools():
    """queue_names lists the broker-side queue(s) and dead-letter queue of a group, with the
    same keys the other transports use."""
    assert RABBITMQ.queue_names(SPEC) == {
        "exchange": "shop.events",
        "queue": "shop.payments",
        "dead_letter": "shop.payments.dlq",
    }
    assert ACTIVEMQ.queue_names(SPEC) == {
        "queue": "Consumer.payments.VirtualTopic.shop.orders.v1.OrderPlaced",
        "queue.1": "Consumer.payments.VirtualTopic.shop.orders.v1.>",
        "retry": "shop.payments.retry",
        "dead_letter": "shop.payments.dlq",
    }


def test_message_follows_the_cloudevents_amqp_binding():
    """Body as a Data section, content-type, message-id = event id, durable, attributes as
    cloudEvents:<attr> application-properties and other headers under their own names."""
    body = bytes(range(256))
    message = to_message(
        body=body,
        attributes={"id": "e-1", "type": "shop.a.v1.X", "specversion": "1.0"},
        headers={"traceparent": "00-abc-def-01", "x-attempt": "2"},
        content_type="application/avro",
        topic="shop.a.v1.X",
        annotations={DELIVERY_DELAY: 1500},
    )
    assert message.inferred
    assert message.durable
    assert message.id == "e-1"
    assert message.content_type == "application/avro"
    assert message.properties == {
        "cloudEvents:id": "e-1",
        "cloudEvents:type": "shop.a.v1.X",
        "cloudEvents:specversion": "1.0",
        "traceparent": "00-abc-def-01",
        "x-attempt": "2",
    }
    assert message.annotations == {proton.symbol(DELIVERY_DELAY): 1500}

    decoded = proton.Message()
    decoded.decode(message.encode())
    received = from_message(decoded)
    assert received.body == body
    assert received.attributes == {"id": "e-1", "type": "shop.a.v1.X", "specversion": "1.0"}
    assert received.headers == {"traceparent": "00-abc-def-01", "x-attempt": "2"}
    assert received.content_type == "application/avro"
    assert received.topic == "shop.a.v1.X"
    assert not received.redelivered


def test_encoded_body_is_a_data_section():
    """On the wire the body is an AMQP Data section (descriptor 0x75), not an amqp-value."""
    message = to_message(
        body=b"\xc3\x01avro", attributes={}, headers={}, content_type=None, topic="t"
    )
    # described type 0x00, smallulong 0x53 0x75 (data), vbin8 0xa0 with the length, the bytes
    assert bytes(message.encode()).endswith(b"\x00\x53\x75\xa0\x06\xc3\x01avro")


def test_foreign_messages_decode_leniently():
    """A message from another producer (amqp-value string body, non-string properties, no
    cloudEvents:id) still yields bytes, text headers and the message-id as event id."""
    foreign = proton.Message(body="plain text", id="m-9", properties={"n": 3, "s": "x"})
    decoded = proton.Message()
    decoded.decode(foreign.encode())
    received = from_message(decoded)
    assert received.body == b"plain text"
    assert received.headers == {"n": "3", "s": "x"}
    assert received.attributes == {"id": "m-9"}
