"""The http-01 challenge (RFC 8555 §8.3): the key authorization fetched from
http://NAME:PORT/.well-known/acme-challenge/TOKEN, following redirects as Let's Encrypt
does.

Redirects: at most 10 (Let's Encrypt's limit), only to http or https, and only to port
80, 443 or the http-01 port itself. 80 and 443 are the RFC's and Let's Encrypt's rule;
the http-01 port is added because a lab serving challenges on another port (5002, say)
redirects within itself, and a relative Location keeps that port. An https target's
certificate is not checked (Let's Encrypt does not either: the key authorization is
what proves control). A redirect's host, name or IP address, is resolved like the
identifier's.

The Host header is the target's host, with the port when it is not the scheme's
default (RFC 9110 §7.2; Pebble sends the same), an IPv6 address in brackets.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import urllib.parse
from dataclasses import dataclass

from ..formats import printable
from ..names import shorten
from .lookup import Lookup
from .probe import connect, failure, peer_of, shown
from .problems import Problem

MAX_REDIRECTS = 10  # Let's Encrypt's limit (RFC 8555 leaves it to the server)
MAX_BODY = 4096  # bytes read: a key authorization is about 87; more cannot be one
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
# A host in a redirect: an ASCII name (A-labels) or an IP address, nothing to escape
HOST = re.compile(r"[A-Za-z0-9_.:-]+")
# Percent-encode what a Location may hold raw but a request line must not (spaces, non-ASCII)
PATH_SAFE = "/%:@!$&'()*+,;=-._~?"


@dataclass(frozen=True)
class Url:
    """Where one request goes."""

    scheme: str
    host: str
    port: int
    path: str  # with the query, already percent-encoded

    def authority(self) -> str:
        """Host, and port unless it is the scheme's default: the Host header."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.authority()}{self.path}"


@dataclass(frozen=True)
class Response:
    """What one request got back, and from where."""

    peer: str
    status: int
    location: str | None
    body: bytes


def check_http01(
    lookup: Lookup, name: str, port: int, token: str, key_authorization: str, timeout: float
) -> None:
    """Return if http://NAME:PORT/.well-known/acme-challenge/TOKEN answers 200 with
    ``key_authorization`` (trailing whitespace aside), after at most 10 redirects.
    ``name``: the identifier's host, a DNS name or an IP address. Raises Problem "dns",
    "connection", "tls" (an https redirect's handshake) or "incorrectResponse"."""
    path = "/.well-known/acme-challenge/" + urllib.parse.quote(token, safe="")
    url = Url("http", name.lower(), port, path)
    allowed = {80, 443, port}
    for _ in range(MAX_REDIRECTS + 1):
        response = fetch(lookup, url, timeout, name)
        if response.status not in REDIRECTS:
            judge(response, url, name, key_authorization)
            return
        url = redirect_target(response, url, allowed, name)
    raise Problem(
        "incorrectResponse",
        f"the http-01 request for {name} was redirected more than {MAX_REDIRECTS} times "
        f"(the last time to {printable(str(url))})",
    )


def judge(response: Response, url: Url, name: str, key_authorization: str) -> None:
    """Return if ``response`` is 200 with the key authorization; else Problem
    "incorrectResponse" saying what came back."""
    origin = f"the http-01 response from {response.peer} for {name}"
    if response.status != 200:
        raise Problem("incorrectResponse", f"{origin} was {response.status} (GET {url})")
    if len(response.body) > MAX_BODY:
        raise Problem(
            "incorrectResponse",
            f"{origin} was longer than {MAX_BODY} bytes, not the key authorization",
        )
    if response.body.rstrip() != key_authorization.encode():
        raise Problem(
            "incorrectResponse",
            f"{origin} was {shown(response.body.rstrip())}, not the key authorization "
            f'"{key_authorization}" (GET {url})',
        )


def fetch(lookup: Lookup, url: Url, timeout: float, name: str) -> Response:
    """GET ``url`` from the first of its host's addresses that accepts a connection."""
    addresses = lookup.addresses(url.host)
    what = f"cannot reach {url.authority()} for the http-01 challenge of {name}"
    raw = connect(addresses, url.port, timeout, what)
    peer = peer_of(raw)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=timeout)
    try:
        connection.sock = secured(raw, url) if url.scheme == "https" else raw
        connection.request("GET", url.path, headers=headers(url))
        answer = connection.getresponse()
        body = answer.read(MAX_BODY + 1)
        return Response(peer, answer.status, answer.getheader("Location"), body)
    except ssl.SSLError as error:
        reason = printable(error.reason or str(error))
        raise Problem("tls", f"the TLS handshake with {peer} ({url}) failed: {reason}") from None
    except http.client.RemoteDisconnected:  # before OSError: it is a ConnectionResetError
        raise Problem(
            "connection",
            f"{peer} ({url}) closed the connection without answering the http-01 request",
        ) from None
    except OSError as error:
        raise Problem(
            "connection", f"{peer} ({url}) {failure(error, timeout)} to the http-01 request"
        ) from None
    except http.client.HTTPException as error:
        said = shorten(printable(str(error) or type(error).__name__))
        raise Problem(
            "connection", f"{peer} ({url}) did not answer the http-01 request in HTTP: {said}"
        ) from None
    finally:
        connection.close()
        raw.close()


def headers(url: Url) -> dict[str, str]:
    return {
        "Host": url.authority(),
        "User-Agent": "minica ACME validator",
        "Accept": "*/*",
        "Connection": "close",
    }


def secured(raw: socket.socket, url: Url) -> ssl.SSLSocket:
    """``raw`` under TLS for an https redirect target, its certificate unchecked."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context.wrap_socket(raw, server_hostname=None if is_ip(url.host) else url.host)


def redirect_target(response: Response, current: Url, allowed: set[int], name: str) -> Url:
    """The Url a redirect points to; Problem "incorrectResponse" if it may not be followed."""
    origin = f"the http-01 response from {response.peer} for {name}"
    if not response.location:
        raise Problem("incorrectResponse", f"{origin} was {response.status} with no Location")
    location = shown(response.location)
    try:
        parts = urllib.parse.urlsplit(urllib.parse.urljoin(str(current), response.location))
        scheme, host, port = parts.scheme, parts.hostname or "", parts.port
    except ValueError:
        raise Problem("incorrectResponse", f"{origin} redirects to {location}, not a URL") from None
    if scheme not in DEFAULT_PORTS:
        raise Problem(
            "incorrectResponse",
            f"{origin} redirects to {location}: only http and https are followed",
        )
    if not HOST.fullmatch(host):
        raise Problem("incorrectResponse", f"{origin} redirects to {location}: no usable host")
    port = port or DEFAULT_PORTS[scheme]
    if port not in allowed:
        ports = ", ".join(str(each) for each in sorted(allowed))
        raise Problem(
            "incorrectResponse",
            f"{origin} redirects to {location}: only ports {ports} are followed",
        )
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Url(scheme, host, port, urllib.parse.quote(path, safe=PATH_SAFE))


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
