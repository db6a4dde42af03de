"""Transports, one module per protocol, imported only when a URL asks for one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from broker.errors import ConfigurationError

if TYPE_CHECKING:
    from broker.transport import Transport

__all__ = ["load"]

_MODULES = {
    "amqp091": "broker.transports.amqp091",
    "stomp": "broker.transports.stomp",
    "amqp10": "broker.transports.amqp10",
}


def load(name: str) -> type[Transport]:
    """The transport class registered under ``name`` (as :data:`broker.url.SCHEMES` names it)."""
    try:
        module = importlib.import_module(_MODULES[name])
    except KeyError:
        raise ConfigurationError(f"no transport named {name!r}") from None
    transport: type[Transport] = module.TRANSPORT
    return transport
