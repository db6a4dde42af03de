"""Audit's wiring: every event of the ``shop.#`` consumer group appended to the trail, and the
operators' DeadLetterService."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.audit.dead_letters import DeadLetterServicer
from services.audit.domain import record_of
from services.audit.grpc_api import AuditServicer
from services.audit.store import AuditStore, metadata
from services.common.bootstrap import Blueprint, Wiring
from services.runtime import get_logger
from shop.audit.v1 import audit_pb2, audit_pb2_grpc

if TYPE_CHECKING:
    from broker.event import Event
    from services.common.bootstrap import Context

__all__ = ["BLUEPRINT"]

_log = get_logger("services.audit.app")


async def wire(context: Context) -> Wiring:
    store = AuditStore(context.engine)

    async def handle(event: Event) -> None:
        # The event id is the trail's primary key: the trail is its own inbox.
        if not await store.append(record_of(event)):
            _log.debug("audit.duplicate", event_id=event.id)

    trail = (
        audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
        AuditServicer(store),
        audit_pb2_grpc.add_AuditServiceServicer_to_server,
    )
    # Operators' access to every group's dead-letter queue, through audit's broker connection.
    dead_letters = (
        audit_pb2.DESCRIPTOR.services_by_name["DeadLetterService"],
        DeadLetterServicer(context.broker),
        audit_pb2_grpc.add_DeadLetterServiceServicer_to_server,
    )
    return Wiring(services=[trail, dead_letters], handler=handle)


BLUEPRINT = Blueprint(name="audit", grpc_port=50055, metadata=metadata, wire=wire, concurrency=16)
