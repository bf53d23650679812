"""The ACME challenge validator: whether an identifier's owner answered an http-01,
dns-01 or tls-alpn-01 challenge, judged over the network. It blocks (run it in a worker
thread) and never raises anything but a Problem with the RFC's type and a detail saying
what to fix; text that came from the network is escaped and shortened.

The pieces: lookup.py (DNS), probe.py (connections), http01.py, tls_alpn01.py; dns-01,
a single TXT lookup, is here.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass

import dns.exception
from cryptography import x509

from .. import errors
from ..formats import printable
from ..names import shorten
from .http01 import check_http01
from .lookup import Lookup
from .model import Identifier
from .probe import shown
from .problems import Problem
from .tls_alpn01 import check_tls_alpn01

CHALLENGES = ("http-01", "dns-01", "tls-alpn-01")
SHOWN_RECORDS = 3  # TXT records a detail quotes; a name may hold many stale ones
# The shape of a dns identifier the validator will put on the wire (SNI, Host, a query):
# ASCII labels (IDNA A-labels), an optional leading "*." wildcard. Order checks own the
# finer rules; this keeps a header or query from carrying what it must not (CR, LF, NUL).
DNS_NAME = re.compile(r"(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


@dataclass(frozen=True)
class Validator:
    """How challenges are checked: the ports to reach, the DNS resolver to ask (None:
    the system's, see lookup.py), and the seconds each lookup, connection and read may
    take. Raises errors.InputError for a port, resolver or timeout out of range."""

    http_port: int = 80  # --http-01-port
    tls_alpn_port: int = 443  # --tls-alpn-01-port
    resolver: tuple[str, int] | None = None  # --dns-resolver HOST:PORT; None: the system's
    timeout: float = 10.0  # per attempt, seconds

    def __post_init__(self) -> None:
        check_port("http-01 port", self.http_port)
        check_port("tls-alpn-01 port", self.tls_alpn_port)
        if not self.timeout > 0:
            raise errors.InputError(f"the validation timeout must be positive, not {self.timeout}")
        if self.resolver is not None:
            host, port = self.resolver
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise errors.InputError(
                    f"the DNS resolver must be an IP address, not {printable(repr(host))}"
                ) from None
            check_port("DNS resolver port", port)

    def validate(
        self, challenge: str, identifier: Identifier, token: str, key_authorization: str
    ) -> None:
        """challenge: "http-01", "dns-01" or "tls-alpn-01". Returns if valid; else raises
        minica.acme.problems.Problem with the RFC's type and a detail saying what to fix."""
        check_identifier(challenge, identifier)
        lookup = Lookup(self.resolver, self.timeout)
        try:
            if challenge == "dns-01":
                check_dns01(lookup, identifier.value, key_authorization)
            elif challenge == "http-01":
                host = host_of(identifier)
                check_http01(lookup, host, self.http_port, token, key_authorization, self.timeout)
            else:
                addresses = lookup.addresses(host_of(identifier))
                sni, name = tls_alpn_names(identifier)
                check_tls_alpn01(
                    addresses, self.tls_alpn_port, sni, name, key_authorization, self.timeout
                )
        # The checks turn every failure they foresee into a precise Problem; this keeps
        # the promise (a Problem, never a traceback) for one they did not foresee.
        except dns.exception.DNSException as error:
            raise Problem(
                "dns", f"{challenge} for {identifier.value}: {unforeseen(error)}"
            ) from None
        except OSError as error:
            raise Problem(
                "connection", f"{challenge} for {identifier.value}: {unforeseen(error)}"
            ) from None


def check_port(label: str, port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise errors.InputError(f"the {label} must be from 1 to 65535, not {port!r}")


def check_identifier(challenge: str, identifier: Identifier) -> None:
    """Problem "malformed" or "unsupportedIdentifier" for a pair no challenge can check:
    the server should never offer them, so this guards the lead's code, not the client."""
    if challenge not in CHALLENGES:
        raise Problem("malformed", f"unknown challenge type {shown(challenge)}")
    if identifier.type not in ("dns", "ip"):
        raise Problem("unsupportedIdentifier", f"unknown identifier type {shown(identifier.type)}")
    if identifier.type == "ip":
        try:
            ipaddress.ip_address(identifier.value)
        except ValueError:
            raise Problem("malformed", f"{shown(identifier.value)} is not an IP address") from None
        if challenge == "dns-01":  # RFC 8738 §7
            raise Problem("malformed", "dns-01 cannot validate an ip identifier")
    elif not DNS_NAME.fullmatch(identifier.value):
        raise Problem("malformed", f"{shown(identifier.value)} is not a DNS name")
    elif identifier.value.startswith("*.") and challenge != "dns-01":  # RFC 8555 §7.1.3
        raise Problem("malformed", f"{challenge} cannot validate the wildcard {identifier.value}")


def host_of(identifier: Identifier) -> str:
    """The host to resolve and connect to: the name, or the address in its short form."""
    if identifier.type == "ip":
        return ipaddress.ip_address(identifier.value).compressed
    return identifier.value


def tls_alpn_names(identifier: Identifier) -> tuple[str, x509.DNSName | x509.IPAddress]:
    """The SNI to send and the one name the certificate must hold. An ip identifier's
    SNI is its reverse-DNS name (RFC 8738 §6: 5.0.0.10.in-addr.arpa)."""
    if identifier.type == "ip":
        address = ipaddress.ip_address(identifier.value)
        return address.reverse_pointer, x509.IPAddress(address)
    return identifier.value, x509.DNSName(identifier.value)


def check_dns01(lookup: Lookup, name: str, key_authorization: str) -> None:
    """Return if a TXT record at _acme-challenge.NAME (a wildcard's base name) holds
    base64url(SHA-256(key authorization)), unpadded (RFC 8555 §8.4). Raises Problem
    "dns" when there is none or no answer, "incorrectResponse" when all differ."""
    record = "_acme-challenge." + name.removeprefix("*.")
    expected = dns01_value(key_authorization)
    values = lookup.txt(record)
    if not values:
        raise Problem("dns", f"no TXT record at {record} ({lookup.describe()})")
    if expected.encode() in values:
        return
    found = ", ".join(shown(value) for value in values[:SHOWN_RECORDS])
    more = f" and {len(values) - SHOWN_RECORDS} more" if len(values) > SHOWN_RECORDS else ""
    raise Problem(
        "incorrectResponse",
        f"the TXT records at {record} ({lookup.describe()}) are {found}{more}, "
        f'not "{expected}" (the base64url SHA-256 of the key authorization)',
    )


def dns01_value(key_authorization: str) -> str:
    """The TXT value dns-01 expects for ``key_authorization``."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def unforeseen(error: Exception) -> str:
    return shorten(printable(f"{type(error).__name__}: {error}"))
