"""One real TLS connection between two Python ssl contexts on loopback, and what each
side saw: the judge of fixtures, profiles and chains alike.

The server says hello, the client says ping, the server echoes. The client reads before
it writes: under TLS 1.3 the server's refusal of the client certificate reaches the
client only with its first read, after its own handshake has finished.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

TIMEOUT = 5.0  # seconds, for every socket operation and thread join


@dataclass
class Handshake:
    """What each side of one TLS connection saw."""

    client_got: bytes = b""
    server_got: bytes = b""
    client_peer: str | None = None  # the CN of the certificate the other side presented
    server_peer: str | None = None
    client_error: BaseException | None = None
    server_error: BaseException | None = None
    version: str | None = None  # the TLS version the client negotiated

    @property
    def succeeded(self) -> bool:
        return (
            self.client_error is None
            and self.server_error is None
            and self.server_got == b"ping"
            and self.client_got == b"hellopong:ping"
        )


def common_name(peer: dict[str, Any] | None) -> str | None:
    """The CN of a getpeercert() answer; None when the peer sent no certificate."""
    if not peer:
        return None
    return str(next(value for rdn in peer["subject"] for key, value in rdn if key == "commonName"))


def handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, hostname: str = "localhost"
) -> Handshake:
    """One connection on 127.0.0.1 from ``client`` (asking for ``hostname``) to ``server``."""
    outcome = Handshake()

    def serve(listener: socket.socket) -> None:
        try:
            connection, _ = listener.accept()
            connection.settimeout(TIMEOUT)
            with server.wrap_socket(connection, server_side=True) as tls:
                outcome.server_peer = common_name(tls.getpeercert())
                tls.sendall(b"hello")
                outcome.server_got = tls.recv(64)
                tls.sendall(b"pong:" + outcome.server_got)
        except OSError as error:  # ssl.SSLError included
            outcome.server_error = error

    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)  # the server gives up if no client ever comes
        thread = threading.Thread(target=serve, args=(listener,), daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw,
                client.wrap_socket(raw, server_hostname=hostname) as tls,
            ):
                outcome.client_peer = common_name(tls.getpeercert())
                outcome.version = tls.version()
                outcome.client_got = tls.recv(64)
                tls.sendall(b"ping")
                outcome.client_got += tls.recv(64)
        except OSError as error:
            outcome.client_error = error
        finally:
            thread.join(2 * TIMEOUT)
    assert not thread.is_alive(), "the server thread hung"
    return outcome


def assert_verify_failed(error: BaseException | None, message: str) -> None:
    """``error`` is a certificate verification failure, for ``message``."""
    assert isinstance(error, ssl.SSLCertVerificationError), repr(error)
    assert error.reason == "CERTIFICATE_VERIFY_FAILED"
    assert error.verify_message == message, error.verify_message


def assert_client_refused(outcome: Handshake, message: str) -> None:
    """The client refused the server's certificate, for ``message``; no data went through."""
    assert_verify_failed(outcome.client_error, message)
    assert outcome.server_error is not None  # the client hung up mid-handshake
    assert (outcome.client_got, outcome.server_got) == (b"", b"")


def assert_server_refused(outcome: Handshake, message: str, alert: str) -> None:
    """The server refused the client's certificate, for ``message``; the client learns it
    from the TLS ``alert``, and no data went through."""
    assert_verify_failed(outcome.server_error, message)
    assert isinstance(outcome.client_error, ssl.SSLError), repr(outcome.client_error)
    assert outcome.client_error.reason == alert
    assert outcome.server_got == b""
    assert b"pong" not in outcome.client_got
