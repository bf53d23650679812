"""Validating a certificate against a CA: chain, validity period, purpose, host name, CRL.

Each check gives a reason a person understands; cryptography's verifier is the authority
on the chain itself (signatures, CA constraints, name constraints, path lengths).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

from .errors import MinicaError
from .formats import serial_hex
from .names import parse_dns
from .usages import reason_name

PURPOSES: dict[str, tuple[str, x509.ObjectIdentifier]] = {
    "server": ("server authentication", ExtendedKeyUsageOID.SERVER_AUTH),
    "client": ("client authentication", ExtendedKeyUsageOID.CLIENT_AUTH),
    "code-signing": ("code signing", ExtendedKeyUsageOID.CODE_SIGNING),
    "email": ("email protection", ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "timestamping": ("time stamping", ExtendedKeyUsageOID.TIME_STAMPING),
    "ocsp-signing": ("OCSP signing", ExtendedKeyUsageOID.OCSP_SIGNING),
}
_PURPOSE_NAMES = {oid: name for name, oid in PURPOSES.values()}
_PURPOSE_NAMES[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE] = "any purpose (anyExtendedKeyUsage)"


class VerificationFailed(MinicaError):
    """The certificate is not valid for what was asked; the message says why."""


def verify(
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    *,
    now: datetime,
    purpose: str | None = None,
    hostname: str | None = None,
    crl: x509.CertificateRevocationList | None = None,
) -> None:
    """Check ``certificate`` against the CA whose chain (CA first, root last) is ``chain``.

    Raises VerificationFailed with the first reason it is not valid, else returns None.
    """
    _check_issuer(certificate, chain[0])
    _check_time(certificate, now)
    _check_chain(certificate, chain, now)
    if purpose is not None:
        _check_purpose(certificate, purpose)
    if hostname is not None:
        _check_hostname(certificate, hostname)
    if crl is not None:
        _check_revocation(certificate, crl, chain[0], now)


def _check_issuer(certificate: x509.Certificate, ca: x509.Certificate) -> None:
    if certificate.issuer != ca.subject:
        raise VerificationFailed(
            f"not issued by this CA: its issuer is "
            f"{certificate.issuer.rfc4514_string()}, this CA is "
            f"{ca.subject.rfc4514_string()}"
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise VerificationFailed(
            f"not issued by this CA: it names {ca.subject.rfc4514_string()}"
            " as issuer, but this CA's key did not sign it"
        ) from None


def _check_time(certificate: x509.Certificate, now: datetime) -> None:
    if now > certificate.not_valid_after_utc:
        raise VerificationFailed(f"expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if now < certificate.not_valid_before_utc:
        raise VerificationFailed(
            f"not valid until {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _check_chain(
    certificate: x509.Certificate, chain: list[x509.Certificate], now: datetime
) -> None:
    # The end-entity policy permits any extensions: purpose and name are checked above and
    # below with clearer messages, and for every purpose, not only TLS.
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([chain[-1]]))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    try:
        verifier.verify(certificate, chain[:-1])
    except verification.VerificationError as error:
        raise VerificationFailed(
            f"the chain to this CA's root does not validate: {error}"
        ) from None


def _check_purpose(certificate: x509.Certificate, purpose: str) -> None:
    wanted, oid = PURPOSES[purpose]
    try:
        usages = list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return  # RFC 5280 4.2.1.12: without the extension, the key serves any purpose
    if oid not in usages:
        has = " and ".join(_PURPOSE_NAMES.get(usage, usage.dotted_string) for usage in usages)
        raise VerificationFailed(f"certificate is for {has}, not {wanted}")


def _check_hostname(certificate: x509.Certificate, hostname: str) -> None:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    dns_names = san.get_values_for_type(x509.DNSName)
    addresses = san.get_values_for_type(x509.IPAddress)
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        wanted = _as_ascii(hostname.rstrip("."))
        matched = any(_dns_matches(pattern, wanted) for pattern in dns_names)
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


def _check_revocation(
    certificate: x509.Certificate,
    crl: x509.CertificateRevocationList,
    ca: x509.Certificate,
    now: datetime,
) -> None:
    if crl.issuer != ca.subject or not crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
        raise VerificationFailed("the CRL was not signed by this CA")
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        raise VerificationFailed(
            f"the CRL is out of date since {crl.next_update_utc:%Y-%m-%d}"
            " (run `minica crl` to publish a new one)"
        )
    entry = crl.get_revoked_certificate_by_serial_number(certificate.serial_number)
    if entry is None:
        return
    try:
        reason = reason_name(entry.extensions.get_extension_for_class(x509.CRLReason).value.reason)
    except x509.ExtensionNotFound:
        reason = "unspecified"
    raise VerificationFailed(
        f"certificate {serial_hex(certificate.serial_number)} was revoked "
        f"on {entry.revocation_date_utc:%Y-%m-%d} ({reason})"
    )
