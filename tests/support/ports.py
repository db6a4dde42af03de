"""Free loopback ports for servers the tests start, never the same one twice in a run.

Binding port 0 and closing the socket can hand back a port given out moments before, and
two servers told the same port do not always fail: gRPC binds with SO_REUSEPORT, so both
would listen and split the connections between them.
"""

from __future__ import annotations

import socket

__all__ = ["free_port"]

_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on now, not returned before by this process."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
