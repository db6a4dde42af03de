"""The operators' DeadLetterService: list and replay a consumer group's dead letters over gRPC
(and so over REST through the gateway: ``GET /v1/admin/dlq/{group}``)."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from google.protobuf import json_format, struct_pb2

from broker import ERROR_HEADERS, DecodeError, dead_letters
from broker.transport import SubscriptionSpec
from services.audit.domain import jsonable, trace_id_of
from services.runtime import NotFound
from services.topology import consumer_patterns
from shop.audit.v1 import audit_pb2, audit_pb2_grpc

if TYPE_CHECKING:
    from collections.abc import Callable

    from broker import Broker
    from broker.transport import Delivery

__all__ = ["DeadLetterServicer"]

DEFAULT_PAGE = 100


class DeadLetterServicer(audit_pb2_grpc.DeadLetterServiceServicer):
    """Reads dead-letter queues through the service's own broker connection."""

    def __init__(
        self,
        broker: Broker,
        *,
        patterns: Callable[[str], tuple[str, ...]] = consumer_patterns,
        idle: float = 0.5,
    ) -> None:
        """``patterns`` gives a group's topic patterns (default: services/topology.py)."""
        self._broker = broker
        self._patterns = patterns
        self._idle = idle

    def _spec(self, group: str, limit: int) -> SubscriptionSpec:
        try:
            patterns = self._patterns(group)
        except KeyError:
            raise NotFound("consumer group", group) from None
        if not patterns:
            raise NotFound("consumer group", group)
        return SubscriptionSpec(group=group, topics=patterns, prefetch=limit)

    async def ListDeadLetters(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ListDeadLettersRequest, _context: Any
    ) -> audit_pb2.ListDeadLettersResponse:
        spec = self._spec(request.group, request.page_size or DEFAULT_PAGE)
        letters = await dead_letters.collect(self._broker.transport, spec, idle=self._idle)
        try:
            return audit_pb2.ListDeadLettersResponse(
                dead_letters=[self._describe(letter) for letter in letters]
            )
        finally:
            for letter in letters:
                await letter.release()

    async def ReplayDeadLetters(  # noqa: N802 - gRPC method name
        self, request: audit_pb2.ReplayDeadLettersRequest, _context: Any
    ) -> audit_pb2.ReplayDeadLettersResponse:
        wanted = set(request.event_ids)
        limit = max(DEFAULT_PAGE, len(wanted)) if not request.all else 500
        letters = await dead_letters.collect(
            self._broker.transport, self._spec(request.group, limit), idle=self._idle
        )
        replayed = 0
        for letter in letters:
            if request.all or letter.attributes.get("id") in wanted:
                await dead_letters.replay(letter)
                replayed += 1
            else:
                await letter.release()
        return audit_pb2.ReplayDeadLettersResponse(
            replayed=replayed, remaining=len(letters) - replayed
        )

    def _describe(self, letter: Delivery) -> audit_pb2.DeadLetter:
        headers = letter.headers
        attempts = headers.get("x-attempts", "0")
        result = audit_pb2.DeadLetter(
            event_id=letter.attributes.get("id", ""),
            type=letter.attributes.get("type", letter.topic),
            subject=letter.attributes.get("subject", ""),
            trace_id=trace_id_of(headers.get("traceparent")),
            error_type=headers.get("x-error-type", ""),
            error_message=headers.get("x-error-message", ""),
            attempts=int(attempts) if attempts.isdigit() else 0,
        )
        failed = headers.get("x-failed-at")
        if failed:
            with contextlib.suppress(ValueError):
                result.failed_time.FromDatetime(datetime.fromisoformat(failed))
        with contextlib.suppress(DecodeError):
            _writer, record = self._broker.codec.decode(letter.body)
            data = struct_pb2.Struct()
            json_format.ParseDict(cast("dict[str, Any]", jsonable(record)), data)
            result.data.CopyFrom(data)
        return result


# ERROR_HEADERS documents which headers _describe reads.
assert {"x-error-type", "x-error-message", "x-attempts", "x-failed-at"} <= set(ERROR_HEADERS)
