"""``http_bind``'s one syntax: ``HOST:PORT``, IPv6 in brackets, an empty host for every interface.

The configuration checks it when it is loaded and the HTTP server parses it when it starts;
both use :func:`parse_bind`, so a value the configuration accepts is one the server can bind
(they used to disagree: the configuration took port 99999 and refused a zoned IPv6 address).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["BindError", "is_loopback_bind", "parse_bind"]

_BIND = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.%\w]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d{1,5})")


class BindError(ValueError):
    """``http_bind`` is not ``HOST:PORT``."""


def parse_bind(bind: str) -> tuple[str | None, int]:
    """``"127.0.0.1:8765"``, ``"[::1]:0"``, ``":8765"`` (all interfaces) → (host, port)."""
    match = _BIND.fullmatch(bind.strip())
    if not match or int(match["port"]) > 65535:
        raise BindError(f"http_bind must be HOST:PORT (IPv6 as [::1]:PORT), got {bind!r}")
    host = match["v6"] or match["host"] or None
    return host, int(match["port"])


def is_loopback_bind(bind: str) -> bool:
    """True when ``bind`` listens on loopback only (then reads may go without a token)."""
    host, _ = parse_bind(bind)
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
