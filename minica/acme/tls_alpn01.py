"""The tls-alpn-01 challenge (RFC 8737, and RFC 8738 §6 for ip identifiers): a TLS
handshake offering only ALPN "acme-tls/1", which the server must choose, presenting a
certificate for the identifier alone that carries SHA-256(key authorization) in a
critical id-pe-acmeIdentifier extension. The certificate is not verified: it is
self-signed by design, the digest is what proves control.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
from collections.abc import Sequence

from cryptography import x509

from ..formats import printable
from ..names import shorten
from .probe import connect, failure, peer_of
from .problems import Problem

ALPN = "acme-tls/1"
ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # RFC 8737 §6.1
OCTET_STRING_OF_32 = b"\x04\x20"  # DER tag and length before the 32-byte digest


def check_tls_alpn01(
    addresses: Sequence[str],
    port: int,
    sni: str,
    identifier: x509.DNSName | x509.IPAddress,
    key_authorization: str,
    timeout: float,
) -> None:
    """Return if the first of ``addresses`` that accepts a connection on ``port``
    negotiates acme-tls/1 for ``sni`` and presents a certificate naming ``identifier``
    alone with the key authorization's digest. Raises Problem "connection", "tls" or
    "incorrectResponse"."""
    name = str(identifier.value)
    raw = connect(addresses, port, timeout, f"cannot reach {name} for tls-alpn-01")
    peer = peer_of(raw)
    der, protocol = handshake(raw, sni, timeout, f"{peer} for {name}")
    origin = f"the tls-alpn-01 certificate from {peer} for {name}"
    if protocol != ALPN:
        chosen = f'"{printable(protocol)}"' if protocol else "no protocol"
        raise Problem("tls", f"{peer} did not negotiate {ALPN} for {name} (it chose {chosen})")
    try:
        certificate = x509.load_der_x509_certificate(der)
        extensions = certificate.extensions
    except ValueError as error:
        why = shorten(printable(str(error)))
        raise Problem("incorrectResponse", f"{origin} cannot be read: {why}") from None
    check_names(extensions, identifier, origin)
    check_digest(extensions, key_authorization, origin)


def handshake(raw: socket.socket, sni: str, timeout: float, who: str) -> tuple[bytes, str | None]:
    """The DER certificate and the ALPN protocol of a handshake on ``raw`` (closed after)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 8737 §3: TLS 1.2 or higher
    context.set_alpn_protocols([ALPN])
    try:
        with context.wrap_socket(raw, server_hostname=sni) as tls:
            der, protocol = tls.getpeercert(binary_form=True), tls.selected_alpn_protocol()
    except ssl.SSLError as error:
        reason = printable(error.reason or str(error))
        raise Problem("tls", f"the TLS handshake with {who} failed: {reason}") from None
    except OSError as error:
        raise Problem(
            "connection", f"{who} {failure(error, timeout)} in the TLS handshake"
        ) from None
    finally:
        raw.close()
    if der is None:
        raise Problem("tls", f"{who} presented no certificate")
    return der, protocol


def check_names(
    extensions: x509.Extensions, identifier: x509.DNSName | x509.IPAddress, origin: str
) -> None:
    """The subjectAltName must hold exactly one name, the identifier (RFC 8737 §3)."""
    try:
        names = list(extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        raise Problem("incorrectResponse", f"{origin} has no subjectAltName") from None
    if len(names) != 1 or not same_name(names[0], identifier):
        shown = ", ".join(printable(described(each)) for each in names[:4])
        more = f" and {len(names) - 4} more" if len(names) > 4 else ""
        raise Problem(
            "incorrectResponse",
            f"{origin} names {shorten(shown)}{more}; it must name {described(identifier)} alone",
        )


def check_digest(extensions: x509.Extensions, key_authorization: str, origin: str) -> None:
    """A critical acmeIdentifier extension whose value is the DER OCTET STRING of
    SHA-256(key authorization) (RFC 8737 §3)."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    try:
        extension = extensions.get_extension_for_oid(ACME_IDENTIFIER)
    except x509.ExtensionNotFound:
        raise Problem(
            "incorrectResponse",
            f"{origin} has no acmeIdentifier extension ({ACME_IDENTIFIER.dotted_string})",
        ) from None
    if not extension.critical:
        raise Problem("incorrectResponse", f"{origin} has an acmeIdentifier extension not critical")
    value = extension.value
    held = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    if held != OCTET_STRING_OF_32 + digest:
        found = (
            held[2:].hex()
            if held[:2] == OCTET_STRING_OF_32 and len(held) == 34
            else f"{len(held)} bytes that are not an OCTET STRING of 32"
        )
        raise Problem(
            "incorrectResponse",
            f"{origin} carries the digest {found}, not {digest.hex()} "
            "(the SHA-256 of the key authorization)",
        )


def same_name(name: x509.GeneralName, identifier: x509.DNSName | x509.IPAddress) -> bool:
    if isinstance(identifier, x509.DNSName):
        return isinstance(name, x509.DNSName) and name.value.lower() == identifier.value.lower()
    return isinstance(name, x509.IPAddress) and name.value == identifier.value


def described(name: x509.GeneralName) -> str:
    """A subjectAltName entry as a detail writes it: ``DNS:a.test``, ``IP:10.0.0.5``."""
    if isinstance(name, x509.DNSName):
        return f"DNS:{name.value}"
    if isinstance(name, x509.IPAddress):
        return f"IP:{name.value}"
    return f"{type(name).__name__}:{name.value}"
