"""Certificate paths: finding one from a certificate up through a CA folder's chain to its
root, and checking it as RFC 5280 section 6.1 and `openssl verify` (OpenSSL 3) do.

cryptography's own verifier (x509.verification) is not used: it follows the Web PKI, which
allows no Ed25519 CA key, so it refuses every certificate an Ed25519 CA signed ("Forbidden
public key algorithm"), all of which OpenSSL accepts. The rules here are OpenSSL's, each
named where it is checked; verify.py adds purposes, host names and revocation on top.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509.oid import ExtensionOID, NameOID

from .errors import MinicaError

# Certificates between the leaf and this CA's own certificate that a path may pass through:
# OpenSSL allows 100, far more than any lab PKI; a bound keeps a crafted bundle of
# look-alike intermediates from making the search take long.
MAX_INTERMEDIATES = 16

# The critical extensions OpenSSL 3 understands (X509_supported_extension); it refuses a
# certificate with any other critical extension (RFC 5280 6.1.4 (o)), and so does minica.
# Policies are not processed, as with `openssl verify` without -policy_check. The Netscape
# certificate type, proxy certificates and RFC 3779 address blocks are left out on purpose:
# minica does not apply them, so when critical they are refused rather than ignored.
_HANDLED_CRITICAL = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.OCSP_NO_CHECK,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)
_LABELS = {"dns": "DNS name", "email": "email address", "ip": "IP address", "uri": "URI"}
_HOST_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?")

E = TypeVar("E", bound=x509.ExtensionType)
Issuers = Callable[[x509.Name], Iterable[x509.Certificate]]
Name = tuple[str, object]  # (kind, value) of one name a certificate carries


class VerificationFailed(MinicaError):
    """The certificate is not valid for what was asked; the message says why."""


def build_path(
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    intermediates: Issuers,
) -> list[x509.Certificate]:
    """The path from ``certificate`` to the root: the certificate, the intermediates that
    lead to this CA (``chain[0]``), then ``chain`` (this CA up to its root).

    ``intermediates`` gives the candidate CA certificates with a subject name; they are
    only material to build the path with: trust comes from ``chain`` alone. Each link is
    checked by name, Authority Key Identifier and signature. Raises VerificationFailed
    saying why no path leads to this CA.
    """
    _check_chain_links(chain)
    if certificate == chain[0]:
        return list(chain)
    between = _path_to(chain[0], certificate, intermediates, (certificate,), set())
    if between is None:
        raise VerificationFailed(*_no_path(certificate, chain, intermediates))
    return [certificate, *between, *chain[1:]]


def check_path(path: Sequence[x509.Certificate], now: datetime) -> None:
    """Check a path (leaf first, root last) as OpenSSL does once it has built one: no
    unhandled critical extension, every certificate within its validity period, every
    issuer a CA allowed to sign certificates, path lengths and name constraints kept.

    Raises VerificationFailed with the first problem found, from the leaf up.
    """
    for depth, certificate in enumerate(path):
        _check_critical_extensions(certificate, depth)
        _check_time(certificate, depth, now)
        if depth > 0:
            _check_ca(certificate, path[depth - 1])
            _check_path_length(certificate, path[1:depth])
    for depth, ca in enumerate(path[1:], start=1):
        constraints = extension(ca, x509.NameConstraints)
        if constraints is not None:
            for below, certificate in enumerate(path[:depth]):
                # RFC 5280 6.1.3 (b): self-issued intermediates are exempt; the leaf never
                if below == 0 or not _self_issued(certificate):
                    _check_names(certificate, below == 0, constraints, ca)


def who(certificate: x509.Certificate, depth: int) -> str:
    """How messages name a certificate of a path: the leaf is 'the certificate'."""
    return "the certificate" if depth == 0 else f"CA certificate {describe(certificate)}"


def describe(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string() or "(empty subject)"


def oid_name(oid: x509.ObjectIdentifier) -> str:
    """cryptography's name for an OID (as describe.py shows them), else its dotted form."""
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string


def extension(certificate: x509.Certificate, kind: type[E]) -> E | None:
    """The value of one extension of ``certificate``, None if it has none.

    Raises VerificationFailed if the certificate's extensions cannot be read (duplicates,
    bad encodings): OpenSSL refuses such a certificate as invalid.
    """
    try:
        return certificate.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
    except ValueError as error:
        raise VerificationFailed(
            f"{describe(certificate)} has extensions that cannot be read: {error}"
        ) from None


def _check_chain_links(chain: Sequence[x509.Certificate]) -> None:
    for certificate, issuer in itertools.pairwise(chain):
        if not _issued_by(certificate, issuer):
            raise VerificationFailed(
                f"this CA's chain (ca-chain.crt) is broken: {describe(certificate)} "
                f"was not signed by {describe(issuer)}"
            )


def _path_to(
    target: x509.Certificate,
    certificate: x509.Certificate,
    intermediates: Issuers,
    seen: tuple[x509.Certificate, ...],
    dead_ends: set[x509.Certificate],
) -> list[x509.Certificate] | None:
    """The intermediates from ``certificate`` up to and including ``target``, depth first
    (several CAs may share a name, e.g. an old and a renewed intermediate). A candidate
    that led nowhere once is not tried again: look-alike intermediates that sign each
    other would otherwise make the search try every order of them."""
    if _issued_by(certificate, target):
        return [target]
    if len(seen) > MAX_INTERMEDIATES:
        return None
    for candidate in intermediates(certificate.issuer):
        if candidate in seen or candidate in dead_ends or candidate == target:
            continue
        if not _issued_by(certificate, candidate):
            continue
        rest = _path_to(target, candidate, intermediates, (*seen, candidate), dead_ends)
        if rest is not None:
            return [candidate, *rest]
        dead_ends.add(candidate)
    return None


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``certificate``: names, key identifiers, signature."""
    if certificate.issuer != issuer.subject or not _key_ids_match(certificate, issuer):
        return False
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _key_ids_match(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """OpenSSL's X509_check_akid: an Authority Key Identifier, where there is one, must
    name the issuer's Subject Key Identifier and serial; else OpenSSL looks further."""
    try:
        authority = extension(certificate, x509.AuthorityKeyIdentifier)
        subject_key = extension(issuer, x509.SubjectKeyIdentifier)
    except VerificationFailed:
        return False
    if authority is None:
        return True
    key_id = authority.key_identifier
    if key_id is not None and subject_key is not None and key_id != subject_key.digest:
        return False
    serial = authority.authority_cert_serial_number
    return serial is None or serial == issuer.serial_number


def _no_path(
    certificate: x509.Certificate, chain: Sequence[x509.Certificate], intermediates: Issuers
) -> tuple[str, str | None]:
    """Why no path leads from ``certificate`` to this CA: a message and a hint."""
    ca, issuer = chain[0], certificate.issuer.rfc4514_string()
    if certificate.issuer == ca.subject:
        return (
            f"not issued by this CA: it names {describe(ca)} as issuer, but this CA's key "
            "did not sign it",
            None,
        )
    above = [c for c in chain[1:] if _issued_by(certificate, c)]
    if above:
        return (
            f"not issued by this CA: its issuer {issuer} is above this CA "
            f"({describe(ca)}), which vouches only for what it or a CA under it issued",
            f"verify it against the CA folder of {issuer}",
        )
    known = [c for c in intermediates(certificate.issuer) if _issued_by(certificate, c)]
    if known:
        return (
            f"not issued by this CA: its issuer {issuer} does not lead to this CA ({describe(ca)})",
            None,
        )
    return (
        f"not issued by this CA: its issuer is {issuer}, this CA is {describe(ca)}",
        "if an intermediate CA issued it, give the certificate followed by its "
        "intermediates (as `--chain-out` writes them)",
    )


def _check_critical_extensions(certificate: x509.Certificate, depth: int) -> None:
    try:
        extensions = list(certificate.extensions)
    except ValueError as error:
        raise VerificationFailed(
            f"{who(certificate, depth)} has extensions that cannot be read: {error}"
        ) from None
    for item in extensions:
        if item.critical and item.oid not in _HANDLED_CRITICAL:
            raise VerificationFailed(
                f"{who(certificate, depth)} has a critical extension minica does not "
                f"handle: {oid_name(item.oid)} (RFC 5280 says to refuse it)"
            )


def _check_time(certificate: x509.Certificate, depth: int, now: datetime) -> None:
    prefix = "" if depth == 0 else f"{who(certificate, depth)} "
    if now > certificate.not_valid_after_utc:
        raise VerificationFailed(
            f"{prefix}expired on {certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
        )
    if now < certificate.not_valid_before_utc:
        raise VerificationFailed(
            f"{prefix}not valid until {certificate.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
        )


def _check_ca(ca: x509.Certificate, child: x509.Certificate) -> None:
    """OpenSSL's check_ca for issuers: basic constraints CA:TRUE, and a key usage, if
    there is one, that allows signing certificates (keyCertSign)."""
    constraints = extension(ca, x509.BasicConstraints)
    if constraints is None or not constraints.ca:
        said = "no basic constraints" if constraints is None else "basic constraints CA:FALSE"
        raise VerificationFailed(
            f"{describe(ca)} issued {describe(child)} but is not a CA certificate ({said})"
        )
    usage = extension(ca, x509.KeyUsage)
    if usage is not None and not usage.key_cert_sign:
        raise VerificationFailed(
            f"the key usage of CA certificate {describe(ca)} does not allow signing "
            "certificates (key_cert_sign)"
        )


def _check_path_length(ca: x509.Certificate, below: Sequence[x509.Certificate]) -> None:
    """RFC 5280 4.2.1.9: the path length counts the CAs below, not the self-issued ones."""
    constraints = extension(ca, x509.BasicConstraints)
    limit = constraints.path_length if constraints is not None else None
    counted = sum(1 for certificate in below if not _self_issued(certificate))
    if limit is not None and counted > limit:
        raise VerificationFailed(
            f"CA certificate {describe(ca)} allows {limit} intermediate CA(s) below it "
            f"(path length {limit}); this chain has {counted}"
        )


def _self_issued(certificate: x509.Certificate) -> bool:
    return certificate.subject == certificate.issuer


# --- name constraints (RFC 5280 4.2.1.10, matched as OpenSSL's v3_ncons.c does) ----------


def _check_names(
    certificate: x509.Certificate,
    is_leaf: bool,
    constraints: x509.NameConstraints,
    ca: x509.Certificate,
) -> None:
    permitted = [_name(g) for g in constraints.permitted_subtrees or []]
    excluded = [_name(g) for g in constraints.excluded_subtrees or []]
    for kind, value in _names_of(certificate, is_leaf):
        allowed = [base for base_kind, base in permitted if base_kind == kind]
        barred = [base for base_kind, base in excluded if base_kind == kind]
        if not allowed and not barred:
            continue
        if kind not in _MATCHERS:
            raise VerificationFailed(
                f"the name constraints of {describe(ca)} restrict {kind} names, which "
                "minica cannot check"
            )
        matches = _MATCHERS[kind]
        label = f"{_LABELS.get(kind, 'subject')} {_show(kind, value)}"
        if allowed and not any(matches(value, base) for base in allowed):
            shown = ", ".join(_show(kind, base) for base in allowed)
            raise VerificationFailed(
                f"{label} is outside the name constraints of {describe(ca)} (permitted: {shown})"
            )
        if any(matches(value, base) for base in barred):
            raise VerificationFailed(
                f"{label} is excluded by the name constraints of {describe(ca)}"
            )


def _names_of(certificate: x509.Certificate, is_leaf: bool) -> list[Name]:
    """The names constraints apply to: the subject (as a directory name), its emailAddress
    attributes, the subject alternative names, and for the leaf without a DNS name, a
    common name that looks like a host name (OpenSSL 3.0 checks it against DNS constraints,
    since some clients still match host names to it)."""
    subject = certificate.subject
    names: list[Name] = [("dirname", subject)] if len(subject) else []
    names += [
        ("email", str(a.value)) for a in subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    ]
    alternative = extension(certificate, x509.SubjectAlternativeName)
    names += [_name(general) for general in alternative or []]
    if is_leaf and not any(kind == "dns" for kind, _ in names):
        for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            if _host_like(str(attribute.value)):
                names.append(("dns", str(attribute.value)))
    return names


def _name(general: x509.GeneralName) -> Name:
    kinds: dict[type, str] = {
        x509.DNSName: "dns",
        x509.RFC822Name: "email",
        x509.IPAddress: "ip",
        x509.UniformResourceIdentifier: "uri",
        x509.DirectoryName: "dirname",
    }
    return kinds.get(type(general), type(general).__name__), general.value


def _host_like(text: str) -> bool:
    labels = text.split(".")
    return len(labels) > 1 and all(_HOST_LABEL.fullmatch(label) for label in labels)


def _dns_within(name: object, base: object) -> bool:
    """'lab.test' permits lab.test and every name under it; '.lab.test' only those under."""
    name, base = str(name).lower(), str(base).lower()
    if not base or name == base:
        return True
    return name.endswith(base if base.startswith(".") else f".{base}")


def _email_within(name: object, base: object) -> bool:
    """'a@lab.test' is one mailbox; 'lab.test' any mailbox there; '.lab.test' under it."""
    local, at, domain = str(name).rpartition("@")
    base = str(base)
    if not at:
        return False
    if "@" in base:
        base_local, _, base_domain = base.rpartition("@")
        return local == base_local and domain.lower() == base_domain.lower()
    if base.startswith("."):
        return domain.lower().endswith(base.lower())
    return domain.lower() == base.lower()


def _ip_within(name: object, base: object) -> bool:
    return isinstance(base, (ipaddress.IPv4Network, ipaddress.IPv6Network)) and name in base


def _uri_within(name: object, base: object) -> bool:
    """The URI's host, as for DNS but without names under a base that lacks the dot."""
    _, separator, rest = str(name).partition("://")
    if not separator:
        return False
    host, base = re.split(r"[:/]", rest, maxsplit=1)[0].lower(), str(base).lower()
    return host.endswith(base) if base.startswith(".") else host == base


def _directory_within(name: object, base: object) -> bool:
    """The subject lies under the base: the base's RDNs begin it (compared as OpenSSL's
    canonical form does: case and runs of spaces do not count)."""
    assert isinstance(name, x509.Name) and isinstance(base, x509.Name)
    ours, theirs = _canonical(name), _canonical(base)
    return ours[: len(theirs)] == theirs


def _canonical(name: x509.Name) -> list[frozenset[tuple[str, str]]]:
    return [
        frozenset((a.oid.dotted_string, " ".join(str(a.value).casefold().split())) for a in rdn)
        for rdn in name.rdns
    ]


def _show(kind: str, value: object) -> str:
    return value.rfc4514_string() if isinstance(value, x509.Name) else str(value)


_MATCHERS: dict[str, Callable[[object, object], bool]] = {
    "dns": _dns_within,
    "email": _email_within,
    "ip": _ip_within,
    "uri": _uri_within,
    "dirname": _directory_within,
}
