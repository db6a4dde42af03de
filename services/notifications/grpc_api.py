"""The NotificationService gRPC adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.common.pages import position_token
from services.common.timestamps import to_timestamp
from services.runtime import page_size
from shop.notifications.v1 import notifications_pb2, notifications_pb2_grpc

if TYPE_CHECKING:
    from services.notifications.store import Notification, NotificationStore

__all__ = ["NotificationServicer", "notification_message"]

_CHANNELS = {"EMAIL": notifications_pb2.CHANNEL_EMAIL, "SMS": notifications_pb2.CHANNEL_SMS}


def notification_message(item: Notification) -> Any:
    return notifications_pb2.Notification(
        notification_id=item.notification_id,
        order_id=item.order_id,
        customer_id=item.customer_id,
        channel=_CHANNELS[item.channel],
        event_type=item.event_type,
        event_id=item.event_id,
        recipient=item.recipient,
        subject=item.subject,
        body=item.body,
        send_time=to_timestamp(item.sent_at),
    )


class NotificationServicer(notifications_pb2_grpc.NotificationServiceServicer):
    def __init__(self, store: NotificationStore) -> None:
        self._store = store

    async def ListNotifications(self, request: Any, _context: Any) -> Any:  # noqa: N802
        size = page_size(request.page_size)
        found = await self._store.list(
            order_id=request.order_id,
            customer_id=request.customer_id,
            page_token=request.page_token,
            limit=size + 1,
        )
        page = found[:size]
        token = ""
        if len(found) > size:
            token = position_token(page[-1].sent_at, page[-1].notification_id)
        return notifications_pb2.ListNotificationsResponse(
            notifications=[notification_message(n) for n in page], next_page_token=token
        )
