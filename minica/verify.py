"""Validating a certificate against a CA: chain, validity period, purpose, host name, CRL.

Each check gives a reason a person understands, and the verdicts are those of the real
clients: `openssl verify` for the chain (chains.py), OpenSSL's `-purpose` checks made
stricter where the programs that use the certificate are (purposes.py), host names as
browsers match them, and `openssl verify -crl_check` for revocation.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.x509.oid import CRLEntryExtensionOID, ExtensionOID

from .chains import VerificationFailed as VerificationFailed  # raised by verify
from .chains import build_path, check_path, describe, extension, oid_name
from .errors import MinicaError, NotFoundError, RequestError, StorageError
from .formats import serial_hex
from .loading import UNREADABLE
from .names import parse_dns
from .purposes import PURPOSES as PURPOSES  # the purposes' names, for the CLI
from .purposes import check_ca_purpose, check_purpose
from .requests import load_certificate
from .usages import reason_name

if TYPE_CHECKING:
    from .ca import CertificateAuthority

# The CRL and CRL entry extensions minica understands; a critical one beyond them makes
# the CRL unusable (RFC 5280 5.2, 5.3), as for OpenSSL.
_CRL_EXTENSIONS = frozenset(
    {
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
    }
)
_ENTRY_EXTENSIONS = frozenset(
    {CRLEntryExtensionOID.CRL_REASON, CRLEntryExtensionOID.INVALIDITY_DATE}
)

Intermediates = Callable[[x509.Name], Iterable[x509.Certificate]]


def verify(
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    *,
    now: datetime,
    purpose: str | None = None,
    hostname: str | None = None,
    crl: x509.CertificateRevocationList | None = None,
    intermediates: Iterable[x509.Certificate] = (),
    find_intermediates: Intermediates | None = None,
) -> list[x509.Certificate]:
    """Check ``certificate`` against the CA whose chain (CA first, root last) is ``chain``:
    issued by that CA or by a CA under it, valid at ``now``, fit for ``purpose`` and
    ``hostname``, not revoked by ``crl`` (the CRL of the certificate's issuer).

    ``intermediates`` (e.g. the rest of a full-chain file) and ``find_intermediates`` (CA
    certificates by subject, e.g. from this CA's registry) are the CAs that may stand
    between the certificate and this CA; trust comes from ``chain`` alone.

    Returns the path, leaf first; raises VerificationFailed with the first reason the
    certificate is not valid.
    """
    given = list(intermediates)

    def candidates(name: x509.Name) -> list[x509.Certificate]:
        found = [c for c in given if c.subject == name]
        return found + list(find_intermediates(name)) if find_intermediates else found

    path = build_path(certificate, chain, candidates)
    check_path(path, now)
    if purpose is not None:
        check_purpose(certificate, purpose)
        check_ca_purpose(path[1:], purpose)
    if hostname is not None:
        _check_hostname(certificate, hostname)
    if crl is not None:
        _check_revocation(certificate, crl, path[1] if len(path) > 1 else path[0], chain[0], now)
    return path


def verify_file(
    authority: CertificateAuthority,
    data: bytes,
    source: str,
    *,
    now: datetime,
    purpose: str | None = None,
    hostname: str | None = None,
    check_revocation: bool = False,
) -> list[x509.Certificate]:
    """`minica verify`: the first certificate of ``data`` (PEM or DER; a PEM file may go on
    with its intermediates, as `--chain-out` writes it) checked against ``authority``, with
    the CA certificates it issued as further intermediates and, with ``check_revocation``,
    its latest CRL. Returns the path; raises MinicaError (VerificationFailed) saying why not.
    """
    certificates = load_chain(data, source)
    crl = authority.latest_crl() if check_revocation else None
    try:
        return verify(
            certificates[0],
            authority.chain,
            now=now,
            purpose=purpose,
            hostname=hostname,
            crl=crl,
            intermediates=certificates[1:],
            find_intermediates=_issued_cas(authority),
        )
    except UNREADABLE as error:  # cryptography parses names and extensions when read
        if isinstance(error, MinicaError):
            raise
        raise RequestError(f"{source}: a part of it cannot be read: {error}") from None


def load_chain(data: bytes, source: str) -> list[x509.Certificate]:
    """Every certificate of a PEM file in order, or the one of a DER file; RequestError
    naming ``source`` if one of them is unreadable."""
    if b"-----BEGIN" not in data:
        return [load_certificate(data, source)]
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        load_certificate(data, source)  # says so if the first one is not readable
        raise RequestError(f"{source}: a certificate after the first is not readable") from None


def _issued_cas(authority: CertificateAuthority) -> Intermediates:
    """The CA certificates ``authority`` issued (as `init --parent` records them), by
    subject; the registry is read once, and only when a path needs it."""

    @functools.cache
    def by_subject() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for record in authority.records():
            found.setdefault(record.subject, []).append(record.serial)
        return found

    @functools.cache
    def find(subject: str) -> list[x509.Certificate]:
        certificates = []
        for serial in by_subject().get(subject, []):
            try:
                certificate = authority.certificate_by_serial(serial)
                constraints = extension(certificate, x509.BasicConstraints)
            except (StorageError, NotFoundError, VerificationFailed):
                continue  # a missing or damaged certs/ file is `minica doctor`'s to report
            if constraints is not None and constraints.ca:
                certificates.append(certificate)
        return certificates

    return lambda name: find(name.rfc4514_string())


# --- host names ----------------------------------------------------------------------------


def _check_hostname(certificate: x509.Certificate, hostname: str) -> None:
    # Only the subject alternative names count, as for browsers and Go, and in RFC 9525.
    # `openssl verify -verify_hostname`, and Python ssl by default (its
    # hostname_checks_common_name), fall back to the common name of a certificate without
    # DNS names: minica does not, since such a certificate fails in every browser.
    san = extension(certificate, x509.SubjectAlternativeName) or x509.SubjectAlternativeName([])
    dns_names = san.get_values_for_type(x509.DNSName)
    addresses = san.get_values_for_type(x509.IPAddress)
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        wanted = _as_ascii(hostname.rstrip("."))
        matched = any(_dns_matches(pattern.lower(), wanted) for pattern in dns_names)
    else:
        matched = address in addresses
    if not matched:
        names = ", ".join([*dns_names, *map(str, addresses)]) or "no host names"
        raise VerificationFailed(f"certificate is for {names}, not {hostname}")


def _as_ascii(hostname: str) -> str:
    """The host name as certificates carry it: lower case, IDNA A-labels."""
    try:
        return parse_dns(hostname)
    except MinicaError:
        return hostname.lower()


def _dns_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125: a wildcard stands for exactly one whole leftmost label."""
    if pattern.startswith("*."):
        label, _, rest = hostname.partition(".")
        return bool(label) and rest == pattern[2:]
    return pattern == hostname


# --- revocation ----------------------------------------------------------------------------


def _check_revocation(
    certificate: x509.Certificate,
    crl: x509.CertificateRevocationList,
    issuer: x509.Certificate,
    ca: x509.Certificate,
    now: datetime,
) -> None:
    """Check ``certificate`` against ``crl``, which must be its ``issuer``'s: as
    `openssl verify -crl_check`, only the certificate itself is looked up. Nothing here
    needs a CRL number, a reason code or even a next update: CRLs without them are read."""
    _check_crl_issuer(crl, issuer, ca)
    _check_crl_extensions(crl)
    if crl.last_update_utc > now:
        raise VerificationFailed(
            f"the CRL is not valid until {crl.last_update_utc:%Y-%m-%d %H:%M} UTC"
        )
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        raise VerificationFailed(
            f"the CRL is out of date since {crl.next_update_utc:%Y-%m-%d}"
            " (run `minica crl` to publish a new one)"
        )
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is None:
        return
    raise VerificationFailed(
        f"certificate {serial_hex(certificate.serial_number)} was revoked "
        f"on {entry.revocation_date_utc:%Y-%m-%d} ({_reason(entry)})"
    )


def _check_crl_issuer(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, ca: x509.Certificate
) -> None:
    if crl.issuer != issuer.subject:
        if crl.issuer == ca.subject:  # this folder's CRL, but an intermediate issued it
            raise VerificationFailed(
                f"the CRL is {describe(ca)}'s, but {describe(issuer)} issued the "
                "certificate, and only its CRL can say whether it is revoked",
                hint=f"check the revocation against the CA folder of {describe(issuer)}",
            )
        raise VerificationFailed("the CRL was not signed by this CA")
    try:
        signed = crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        signed = False
    if not signed:
        raise VerificationFailed("the CRL was not signed by this CA")
    usage = extension(issuer, x509.KeyUsage)
    if usage is not None and not usage.crl_sign:
        raise VerificationFailed(
            f"the key usage of {describe(issuer)} does not allow signing CRLs (crl_sign)"
        )


def _check_crl_extensions(crl: x509.CertificateRevocationList) -> None:
    try:
        extensions = list(crl.extensions)
    except ValueError as error:
        raise VerificationFailed(f"the CRL has extensions that cannot be read: {error}") from None
    for item in extensions:
        if item.critical and item.oid not in _CRL_EXTENSIONS:
            raise VerificationFailed(
                f"the CRL has a critical extension minica does not handle: "
                f"{oid_name(item.oid)} (RFC 5280 5.2)"
            )


def _reason(entry: x509.RevokedCertificate) -> str:
    try:
        extensions = list(entry.extensions)
    except ValueError:
        return "unspecified"  # the reason is unreadable; that it was revoked is not
    for item in extensions:
        if item.critical and item.oid not in _ENTRY_EXTENSIONS:
            raise VerificationFailed(
                "the CRL's entry for this certificate has a critical extension minica does "
                f"not handle: {oid_name(item.oid)}"
            )
        if isinstance(item.value, x509.CRLReason):
            return reason_name(item.value.reason)
    return "unspecified"
