"""The network side the http-01 and tls-alpn-01 checks share: a TCP connection to the
first address that accepts one, and how an address, a port and text that came from the
network are written in a problem's detail.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from ..formats import printable
from ..names import shorten
from .problems import Problem

SHOWN = 60  # characters of network text a detail quotes: enough to recognise, not a dump


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[::1]:443``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def shown(data: bytes | str, limit: int = SHOWN) -> str:
    """Text from the network for a detail: in double quotes, cut at ``limit`` characters
    (marked "(shortened)"), every unsafe character escaped. Bytes are read as UTF-8, an
    undecodable byte as U+FFFD."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    if len(text) <= limit:
        return f'"{printable(text)}"'
    return f'"{printable(text[:limit])}..." (shortened)'


def connect(addresses: Sequence[str], port: int, timeout: float, what: str) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that accepts one on ``port``, each
    given ``timeout`` seconds; the socket keeps that timeout for every later operation.

    Only a failure to connect moves on to the next address: once one accepts, its answer
    decides (as Let's Encrypt falls back from IPv6 to IPv4). Raises Problem "connection"
    starting with ``what`` and naming each address:port and what happened there."""
    failures = []
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as error:
            failures.append(f"{host_port(address, port)} {failure(error, timeout)}")
    raise Problem("connection", f"{what}: {'; '.join(failures)}")


def failure(error: OSError, timeout: float) -> str:
    """What a socket error means, as the end of a sentence starting with the peer."""
    if isinstance(error, TimeoutError):
        return f"did not answer within {timeout:g}s"
    if isinstance(error, ConnectionRefusedError):
        return "refused the connection"
    if isinstance(error, ConnectionResetError):
        return "reset the connection"
    return f"failed: {shorten(printable(error.strerror or str(error)))}"


def peer_of(connection: socket.socket) -> str:
    """The address:port ``connection`` reached."""
    address = connection.getpeername()
    return host_port(str(address[0]), int(address[1]))
