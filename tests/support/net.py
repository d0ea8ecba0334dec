"""A loopback port nobody listens on, for a daemon's or test server's HTTP endpoint.

The kernel picks the port (bind to 0) and the probe socket is closed before the caller binds it, so
parallel test workers do not collide on a hand-picked number.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
