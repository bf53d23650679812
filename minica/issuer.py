"""Turning a request, a profile and an issuer into a certificate: the one place
certificates are built, after every check of policy.py.

Pure functions: time and serial come in as arguments, nothing is read or written.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from . import constraints, policy
from .constraints import NameConstraints
from .errors import PolicyError
from .formats import iso, serial_hex
from .keys import PrivateKey, PublicKey, key_name, signature_hash
from .names import (
    Names,
    Subject,
)
from .profiles import Profile
from .requests import Request
from .usages import KEY_USAGES, usages_for
from .validity import Window, explicit_window, lifetime


def random_serial() -> int:
    """A random positive serial of exactly 159 bits: at least 128 random bits as CA/B
    Forum and RFC 5280 expect, and at most 20 octets when DER-encoded."""
    return (1 << 158) | secrets.randbits(158)


@dataclass(frozen=True)
class Urls:
    """Where relying parties find the CRL, the OCSP responder and the issuer certificate."""

    crl: str | None = None
    ocsp: str | None = None
    issuer: str | None = None


@dataclass(frozen=True)
class Signer:
    """The issuing CA: its certificate and private key, and the CAs above it."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()  # the issuers above ``certificate``, root last

    @functools.cached_property
    def path(self) -> tuple[x509.Certificate, ...]:
        """This CA's certificate and every issuer above it."""
        return (self.certificate, *self.chain)

    @functools.cached_property
    def constrained(self) -> bool:
        """Whether a CA on the path carries name constraints."""
        return any(constraints.NameConstraints.of(certificate) for certificate in self.path)

    @functools.cached_property
    def key_id(self) -> x509.SubjectKeyIdentifier:
        return _key_id(self.certificate)

    @functools.cached_property
    def name(self) -> x509.Name:
        return self.certificate.subject

    @functools.cached_property
    def validity(self) -> Window:
        return self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc


@dataclass(frozen=True)
class Issued:
    """A new certificate and what the issuer has to say about it."""

    certificate: x509.Certificate
    profile: str
    contact: str | None
    warnings: tuple[str, ...] = ()
    subject_text: str = ""  # the certificate's subject, RFC 4514, as the registry keeps it

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    @property
    def summary(self) -> str:
        """One line for people: serial, subject, profile, expiry; escaped for a terminal."""
        from .formats import printable

        certificate = self.certificate
        subject, profile = printable(certificate.subject.rfc4514_string()), printable(self.profile)
        return (
            f"{serial_hex(certificate.serial_number)} {subject} "
            f"profile {profile}, expires {iso(certificate.not_valid_after_utc)}"
        )


def certify(
    request: Request,
    profile: Profile,
    signer: Signer,
    *,
    serial: int,
    now: datetime,
    days: int | None = None,
    urls: Urls = Urls(),
    name_constraints: NameConstraints = NameConstraints(),
    window: tuple[datetime, datetime] | None = None,
) -> Issued:
    """The certificate ``signer`` issues for ``request`` under ``profile``.

    ``days`` replaces the profile's validity; a lifetime past the signer's expiry is
    refused when asked for, and cut (with a warning) when it is the profile's default.
    ``window`` (not_before, not_after) replaces both, for test fixtures that must be
    expired or not yet valid; it may start before the signer, never end after it.
    ``name_constraints`` go into a CA certificate, no wider than those above it.
    Raises PolicyError when the request or the lifetime breaks the profile or the CA.
    """
    policy.check_key(request, profile)
    policy.check_ca_may_sign(profile, signer.certificate)
    subject = policy.apply_subject_policy(request.subject, profile)
    names = policy.apply_name_policy(request.names, subject, profile, request.subject.email)
    subject = policy.common_name_as_named(subject, names)
    if signer.constrained:
        constraints.check_names(names, subject.email, signer.path, subject.common_name)
    if name_constraints and not profile.ca:
        raise PolicyError(f"name constraints go on CA certificates; {profile.name} is not a CA")
    if profile.ca:
        name_constraints = constraints.for_new_ca(name_constraints, signer.path)
    if window is not None:
        not_before, not_after, warnings = explicit_window(window, signer.validity)
    else:
        not_before, not_after, warnings = lifetime(
            now,
            profile.validity_days if days is None else days,
            explicit=days is not None,
            issuer=signer.validity,
        )
    certificate = _build(
        subject,
        names,
        request.public_key,
        profile,
        issuer=signer.name,
        issuer_key_id=signer.key_id,
        signing_key=signer.private_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        urls=urls,
        name_constraints=name_constraints,
    )
    return Issued(
        certificate, profile.name, request.contact, tuple(warnings), _subject_text(subject)
    )


def self_signed(
    subject: Subject,
    private_key: PrivateKey,
    profile: Profile,
    *,
    serial: int,
    now: datetime,
    days: int,
    name_constraints: NameConstraints = NameConstraints(),
    names: Names = Names(),
) -> x509.Certificate:
    """A certificate signed by its own key under ``profile``: a root CA, or a self-signed
    end-entity certificate for ``names`` (a test fixture)."""
    not_before, not_after, _ = lifetime(now, days, explicit=True, issuer=None)
    public_key: PublicKey = private_key.public_key()
    return _build(
        subject,
        names,
        public_key,
        profile,
        issuer=subject.to_x509(),
        issuer_key_id=x509.SubjectKeyIdentifier.from_public_key(public_key),
        signing_key=private_key,
        serial=serial,
        not_before=not_before,
        not_after=not_after,
        urls=Urls(),
        name_constraints=name_constraints,
    )


def _key_id(certificate: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:  # a CA made elsewhere may lack it
        return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())


def _build(
    subject: Subject,
    names: Names,
    public_key: PublicKey,
    profile: Profile,
    *,
    issuer: x509.Name,
    issuer_key_id: x509.SubjectKeyIdentifier,
    signing_key: PrivateKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    urls: Urls,
    name_constraints: NameConstraints,
) -> x509.Certificate:
    extensions = [
        _key_usage(profile, public_key),
        _extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False),
        _authority_key_id(issuer_key_id),
        *_profile_extensions(profile, urls),
    ]
    if names.kinds():
        # RFC 5280 4.2.1.6: the SAN is critical when the subject is empty
        extensions.append(_alternative_names(names, not subject.items()))
    if name_constraints:
        extensions.append(_extension(name_constraints.to_extension(), True))
    # One builder with everything, where the fluent calls would copy it once per field
    # and re-check every extension for duplicates: a tenth of a fixture's cost.
    builder = x509.CertificateBuilder(
        issuer_name=issuer,
        subject_name=_distinguished_name(subject),
        public_key=public_key,
        serial_number=serial,
        not_valid_before=_naive_utc(not_before),
        not_valid_after=_naive_utc(not_after),
        extensions=extensions,
    )
    return builder.sign(signing_key, signature_hash(signing_key))  # type: ignore[arg-type]


# Subjects and names are values: test suites and bulk issuance certify the same few over
# and over, and building their x509 forms is a tenth of a fixture's cost.
@functools.lru_cache(maxsize=1024)
def _distinguished_name(subject: Subject) -> x509.Name:
    return subject.to_x509()


@functools.lru_cache(maxsize=1024)
def _subject_text(subject: Subject) -> str:
    return _distinguished_name(subject).rfc4514_string()


@functools.lru_cache(maxsize=1024)
def _alternative_names(names: Names, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return _extension(x509.SubjectAlternativeName(names.to_x509()), critical)


def _extension(value: x509.ExtensionType, critical: bool) -> x509.Extension[x509.ExtensionType]:
    return x509.Extension(value.oid, critical, value)


def _naive_utc(when: datetime) -> datetime:
    """What CertificateBuilder's setters store: naive UTC, from 1950 (UTCTime's first year)."""
    if when.year < 1950:
        raise PolicyError(f"{when:%Y-%m-%d} is before 1950; certificate dates start there")
    return when.astimezone(timezone.utc).replace(tzinfo=None)


@functools.lru_cache(maxsize=64)  # one per issuer
def _authority_key_id(
    issuer_key_id: x509.SubjectKeyIdentifier,
) -> x509.Extension[x509.ExtensionType]:
    return _extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_key_id), False
    )


def _key_usage(profile: Profile, public_key: PublicKey) -> x509.Extension[x509.ExtensionType]:
    key_type = key_name(public_key)
    usage = _key_usage_for(profile, key_type)
    if usage is None:  # profiles.py refuses such a profile; one made in Python may not be
        raise PolicyError(f"profile {profile.name} leaves no key usage for a {key_type} key")
    return usage


@functools.lru_cache(maxsize=256)  # one answer per profile and kind of key
def _key_usage_for(profile: Profile, key_type: str) -> x509.Extension[x509.ExtensionType] | None:
    usages = usages_for(profile.key_usage, key_type)
    if not usages:
        return None
    return _extension(x509.KeyUsage(**{name: name in usages for name in KEY_USAGES}), True)


@functools.lru_cache(maxsize=256)  # the same for every certificate of a profile and CA
def _profile_extensions(
    profile: Profile, urls: Urls
) -> tuple[x509.Extension[x509.ExtensionType], ...]:
    """The extensions that depend on the profile and the CA's URLs alone."""
    constraints = x509.BasicConstraints(profile.ca, profile.path_length if profile.ca else None)
    extensions = [_extension(constraints, True)]
    if profile.extended_key_usage:
        usage = x509.ExtendedKeyUsage(list(profile.extended_key_usage))
        extensions.append(_extension(usage, profile.extended_key_usage_critical))
    if urls.crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(urls.crl)], None, None, None)
        extensions.append(_extension(x509.CRLDistributionPoints([point]), False))
    access = [
        x509.AccessDescription(method, x509.UniformResourceIdentifier(url))
        for method, url in (
            (AuthorityInformationAccessOID.OCSP, urls.ocsp),
            (AuthorityInformationAccessOID.CA_ISSUERS, urls.issuer),
        )
        if url
    ]
    if access:
        extensions.append(_extension(x509.AuthorityInformationAccess(access), False))
    if profile.policies:
        policies = [x509.PolicyInformation(oid, None) for oid in profile.policies]
        extensions.append(_extension(x509.CertificatePolicies(policies), False))
    if profile.ocsp_no_check:
        extensions.append(_extension(x509.OCSPNoCheck(), False))
    return tuple(extensions)
