"""Notifications' database: the messages sent, one per (order, event type)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, UniqueConstraint, select

from services.common.pages import after_position
from services.common.store import insert_ignore
from services.common.timestamps import as_utc, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

    from services.notifications.domain import Message

__all__ = ["Notification", "NotificationStore", "metadata", "record"]

metadata = MetaData()

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("order_id", String(36), nullable=False),
    Column("customer_id", String(64), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("event_type", String(255), nullable=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("recipient", String(320), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("body", String(2000), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    # One message per order and kind, even if an event were re-published under a new id.
    UniqueConstraint("order_id", "event_type"),
    Index("ix_notifications_sent", "sent_at", "notification_id"),
)


@dataclass(frozen=True, slots=True)
class Notification:
    notification_id: str
    order_id: str
    customer_id: str
    channel: str
    event_type: str
    event_id: str
    recipient: str
    subject: str
    body: str
    sent_at: datetime


def _notification(m: RowMapping) -> Notification:
    values = dict(m)
    values["sent_at"] = as_utc(values["sent_at"])
    return Notification(**values)


async def record(
    conn: AsyncConnection,
    *,
    order_id: str,
    customer_id: str,
    event_type: str,
    event_id: str,
    message: Message,
) -> bool:
    """Store the message sent; False if this order already had one of this kind."""
    return await insert_ignore(
        conn,
        notifications,
        {
            "notification_id": str(uuid.uuid4()),
            "order_id": order_id,
            "customer_id": customer_id,
            "channel": message.channel,
            "event_type": event_type,
            "event_id": event_id,
            "recipient": message.recipient,
            "subject": message.subject,
            "body": message.body,
            "sent_at": utcnow(),
        },
    )


class NotificationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def list(
        self, *, order_id: str, customer_id: str, page_token: str, limit: int
    ) -> list[Notification]:
        """Newest first, filtered, after ``page_token``'s position."""
        query: Any = select(notifications).limit(limit)
        if order_id:
            query = query.where(notifications.c.order_id == order_id)
        if customer_id:
            query = query.where(notifications.c.customer_id == customer_id)
        query = after_position(
            query,
            page_token,
            notifications.c.sent_at,
            notifications.c.notification_id,
            newest_first=True,
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_notification(row) for row in rows]
