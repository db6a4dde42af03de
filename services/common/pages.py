"""Keyset pages over (time, id): stable while rows are added, no OFFSET scans.

The page token (see :mod:`services.runtime.paging`) holds the last row's time and id; the next
page continues strictly after it in the listing's order.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_

from services.common.timestamps import as_utc
from services.runtime import FieldViolation, InvalidArgument, decode_page_token, encode_page_token

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select

__all__ = ["after_position", "position_token"]


def position_token(time: datetime, row_id: str) -> str:
    """The token for the page after the row at (``time``, ``row_id``)."""
    return encode_page_token({"t": as_utc(time).isoformat(), "id": row_id})


def after_position(
    query: Select[Any],
    token: str,
    time_column: ColumnElement[Any],
    id_column: ColumnElement[Any],
    *,
    newest_first: bool,
) -> Select[Any]:
    """``query`` ordered by (time, id) and restricted to rows after ``token``'s position."""
    if newest_first:
        query = query.order_by(time_column.desc(), id_column.desc())
    else:
        query = query.order_by(time_column.asc(), id_column.asc())
    position = decode_page_token(token)
    if position is None:
        return query
    try:
        time = datetime.fromisoformat(str(position["t"]))
        row_id = str(position["id"])
    except (KeyError, ValueError):
        violation = FieldViolation("page_token", "is not a token this service issued", "page_token")
        raise InvalidArgument([violation]) from None
    if newest_first:
        after = or_(time_column < time, and_(time_column == time, id_column < row_id))
    else:
        after = or_(time_column > time, and_(time_column == time, id_column > row_id))
    return query.where(after)
