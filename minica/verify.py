"""Validating a certificate against a CA: chain, validity period, purpose, host name, CRL.

Each check gives a reason a person understands, and the verdicts are those of the real
clients: `openssl verify` for the chain (see chains.py) and, for each purpose, the checks
of OpenSSL's matching `-purpose`, made stricter where the programs that use the
certificate are (each case says which, and why).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import CRLEntryExtensionOID, ExtendedKeyUsageOID, ExtensionOID

from .chains import VerificationFailed, build_path, check_path, describe, extension
from .errors import MinicaError, RequestError, StoreError
from .formats import serial_hex
from .names import parse_dns
from .requests import load_certificate
from .usages import KEY_USAGES, reason_name

if TYPE_CHECKING:
    from .ca import CertificateAuthority

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
# OpenSSL's TLS and S/MIME purposes also hold every CA's EKU, where it has one, to the
# purpose (xku_reject in check_ssl_ca, purpose_smime); its others only ask for a CA.
_CA_EKU_PURPOSES = ("server", "client", "email")
# Without an EKU a certificate serves any purpose (RFC 5280 4.2.1.12), except where the
# program that checks the purpose insists on seeing it named:
_EKU_REQUIRED = {
    "code-signing": "OpenSSL's codesign purpose (3.2 and later)",
    "timestamping": "RFC 3161 2.3, as OpenSSL's timestampsign purpose",
    "ocsp-signing": "RFC 6960 4.2.2.2, as `openssl ocsp` checks a delegated responder",
}
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
        _check_purpose(certificate, purpose)
        _check_ca_purpose(path[1:], purpose)
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
    subject; the registry is read once, when a path first needs it."""

    @functools.cache
    def by_subject() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        if authority.store is not None:
            for record in authority.records():
                found.setdefault(record.subject, []).append(record.serial)
        return found

    def find(name: x509.Name) -> list[x509.Certificate]:
        certificates = []
        for serial in by_subject().get(name.rfc4514_string(), []):
            try:
                certificate = authority.certificate_by_serial(serial)
            except StoreError:
                continue  # a missing certs/ file is `minica doctor`'s to report
            constraints = extension(certificate, x509.BasicConstraints)
            if constraints is not None and constraints.ca:
                certificates.append(certificate)
        return certificates

    return find


# --- purposes ------------------------------------------------------------------------------


def _check_purpose(certificate: x509.Certificate, purpose: str) -> None:
    wanted, oid = PURPOSES[purpose]
    eku = extension(certificate, x509.ExtendedKeyUsage)
    if eku is None:
        if purpose in _EKU_REQUIRED:
            raise VerificationFailed(
                f"certificate has no Extended Key Usage; for {wanted} it must name "
                f"{_eku_names([oid])} ({_EKU_REQUIRED[purpose]})"
            )
    elif oid not in list(eku):
        raise VerificationFailed(f"certificate is for {_eku_names(eku)}, not {wanted}")
    if purpose == "timestamping":
        _check_timestamping_eku(certificate)
    if purpose == "code-signing":
        _check_code_signing_eku(eku)
    problem = _KEY_USAGE_RULES[purpose](certificate, extension(certificate, x509.KeyUsage))
    if problem:
        raise VerificationFailed(problem)


def _check_ca_purpose(cas: list[x509.Certificate], purpose: str) -> None:
    if purpose not in _CA_EKU_PURPOSES:
        return
    wanted, oid = PURPOSES[purpose]
    for ca in cas:
        eku = extension(ca, x509.ExtendedKeyUsage)
        if eku is not None and oid not in list(eku):
            raise VerificationFailed(
                f"CA certificate {describe(ca)} is limited to {_eku_names(eku)} by its "
                f"Extended Key Usage, not {wanted}"
            )


def _check_timestamping_eku(certificate: x509.Certificate) -> None:
    # RFC 3161 2.3: timeStamping the only EKU, critical. OpenSSL ignores EKU OIDs it does
    # not know when it checks "only"; minica follows the RFC's wording and refuses them too.
    found = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    others = [usage for usage in found.value if usage != ExtendedKeyUsageOID.TIME_STAMPING]
    if others:
        raise VerificationFailed(
            "a time-stamping certificate must have timeStamping as its only Extended Key "
            f"Usage (RFC 3161 2.3); this one is also for {_eku_names(others)}"
        )
    if not found.critical:
        raise VerificationFailed(
            "the Extended Key Usage of a time-stamping certificate must be critical "
            "(RFC 3161 2.3); this one is not"
        )


def _check_code_signing_eku(eku: x509.ExtendedKeyUsage | None) -> None:
    # CA/Browser Forum code signing requirements 7.1.2.3, as OpenSSL's codesign checks them
    barred = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]
    also = [usage for usage in eku or [] if usage in barred]
    if also:
        raise VerificationFailed(
            f"a code signing certificate must not also be for {_eku_names(also)} "
            "(CA/Browser Forum code signing requirements 7.1.2.3)"
        )


def _eku_names(usages: Iterable[x509.ObjectIdentifier]) -> str:
    return " and ".join(_PURPOSE_NAMES.get(usage, usage.dotted_string) for usage in usages)


# Each purpose's key usage rule: a problem to report, or None. A certificate without a key
# usage extension may use its key for anything (RFC 5280 4.2.1.3) unless a rule says not.
KeyUsageRule = Callable[[x509.Certificate, x509.KeyUsage | None], str | None]


def _server_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's sslserver takes any of digital_signature, key_encipherment, key_agreement.
    # A TLS server signs its handshake (TLS 1.3, and every ECDHE suite of 1.2), or, with an
    # RSA key under TLS 1.2, may have the key exchange encrypted to it: so an EC or Ed25519
    # key needs digital_signature (Python ssl and curl refuse such a server under TLS 1.2:
    # "bad ecc cert"), an RSA key digital_signature or key_encipherment. minica follows
    # the clients, not `openssl verify`.
    if usage is None or usage.digital_signature:
        return None
    if isinstance(certificate.public_key(), rsa.RSAPublicKey):
        if usage.key_encipherment:
            return None
        return _lacks(usage, "digital_signature or key_encipherment", "a TLS server's RSA key")
    return _lacks(usage, "digital_signature", "a TLS server's key, which signs the handshake")


def _client_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's sslclient (and so nginx and Python ssl as servers) also takes key_agreement
    # alone, for the fixed-(EC)DH client certificates of TLS 1.2 that OpenSSL never
    # implemented. Every TLS client OpenSSL speaks to signs CertificateVerify, which is
    # what digital_signature allows (RFC 5280 4.2.1.3): minica asks for it.
    if usage is None or usage.digital_signature:
        return None
    return _lacks(usage, "digital_signature", "a TLS client's key, which signs the handshake")


def _email_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's smimesign, as `openssl cms -verify` applies it (RFC 8550 4.4.2)
    if usage is None or usage.digital_signature or usage.content_commitment:
        return None
    return _lacks(usage, "digital_signature or content_commitment", "signing mail (S/MIME)")


def _timestamping_key_usage(
    certificate: x509.Certificate, usage: x509.KeyUsage | None
) -> str | None:
    # OpenSSL's timestampsign: digital_signature and/or content_commitment, nothing else
    if usage is None:
        return None
    if not (usage.digital_signature or usage.content_commitment):
        return _lacks(usage, "digital_signature or content_commitment", "a time-stamping key")
    extra = [name for name in _key_usages(usage) if name not in _SIGNING]
    if extra:
        return (
            f"a time-stamping certificate's key usage may only hold digital_signature and "
            f"content_commitment; this one also has {', '.join(extra)}"
        )
    return None


def _code_signing_key_usage(
    certificate: x509.Certificate, usage: x509.KeyUsage | None
) -> str | None:
    # OpenSSL's codesign (3.2 and later), after the CA/Browser Forum code signing
    # requirements 7.1.2.3: present, critical, digital_signature, no CA usages.
    if usage is None:
        return "a code signing certificate needs a key usage extension (digital_signature)"
    if not usage.digital_signature:
        return _lacks(usage, "digital_signature", "a code signing key")
    if usage.key_cert_sign or usage.crl_sign:
        return "a code signing certificate's key usage must not allow signing certificates or CRLs"
    if not certificate.extensions.get_extension_for_class(x509.KeyUsage).critical:
        return "the key usage of a code signing certificate must be critical"
    return None


def _ocsp_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # `openssl ocsp` checks only the responder's EKU. A responder signs its responses,
    # which digital_signature is for (RFC 5280 4.2.1.3, RFC 6960 4.2.2.2): minica asks
    # for it, as pkilint does of minica's own ocsp-signing profile.
    if usage is None or usage.digital_signature:
        return None
    return _lacks(usage, "digital_signature", "an OCSP responder, which signs its responses")


_SIGNING = ("digital_signature", "content_commitment")
_KEY_USAGE_RULES: dict[str, KeyUsageRule] = {
    "server": _server_key_usage,
    "client": _client_key_usage,
    "email": _email_key_usage,
    "timestamping": _timestamping_key_usage,
    "code-signing": _code_signing_key_usage,
    "ocsp-signing": _ocsp_key_usage,
}


def _lacks(usage: x509.KeyUsage, needed: str, who: str) -> str:
    has = ", ".join(_key_usages(usage)) or "nothing"
    return f"key usage ({has}) lacks {needed}, which {who} needs"


def _key_usages(usage: x509.KeyUsage) -> list[str]:
    names = []
    for name in KEY_USAGES:
        try:
            if getattr(usage, name):
                names.append(name)
        except ValueError:  # encipher_only and decipher_only exist only with key_agreement
            continue
    return names


# --- host names ----------------------------------------------------------------------------


def _check_hostname(certificate: x509.Certificate, hostname: str) -> None:
    # Only the subject alternative names count, as for Python ssl (hostname_checks_common_name
    # is off) and browsers; `openssl verify -verify_hostname` falls back to the common name
    # of a certificate without DNS names.
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
                hint=f"check the revocation with --ca on the folder of {describe(issuer)}",
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
                f"{getattr(item.oid, '_name', item.oid.dotted_string)} (RFC 5280 5.2)"
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
                f"not handle: {getattr(item.oid, '_name', item.oid.dotted_string)}"
            )
        if isinstance(item.value, x509.CRLReason):
            return reason_name(item.value.reason)
    return "unspecified"
