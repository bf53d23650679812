"""The listening sockets of `minica serve` (runner.bind) give every connection they accept
Nagle's algorithm off (TCP_NODELAY), as asyncio means to: it sets TCP_NODELAY only on a
socket whose proto is IPPROTO_TCP, and an accepted socket takes the listener's proto.
With Nagle on, a response written as headers and then body waited for the client's
delayed ACK, 40 ms on every request of a kept-alive connection (an ACME order took 340 ms
instead of 60; tests/benchmarks/bench_acme.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from minica.serve.runner import bind

ACCEPT_TIMEOUT = 10.0  # seconds for the loopback connection to be accepted


async def nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of the connection an asyncio server on LISTENER accepts, as Uvicorn
    serves on it (loop.create_server with sock=)."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[int] = loop.create_future()

    class Record(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    server = await loop.create_server(Record, sock=listener)
    try:
        host, port = listener.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        try:
            return await asyncio.wait_for(accepted, ACCEPT_TIMEOUT)
        finally:
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connections_have_nagle_off(host: str) -> None:
    try:
        listener = bind(host, 0)
    except OSError:
        pytest.skip(f"no {host} on this machine")
    assert listener.proto == socket.IPPROTO_TCP
    assert asyncio.run(nodelay_of_accepted(listener)) != 0
