"""The issuer, read back field by field through cryptography's public API, with time pinned."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from minica import CertificateAuthority, ManualClock, Names, Subject, Urls
from minica.errors import PolicyError
from minica.profiles import Profile
from minica.validity import BACKDATE

NOW = datetime(2030, 5, 17, 12, 0, tzinfo=timezone.utc)
E = TypeVar("E", bound=x509.ExtensionType)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    clock = ManualClock(NOW - timedelta(days=1))  # the CA was made a day before NOW
    authority = CertificateAuthority.in_memory(
        subject=Subject(common_name="issuer test root"),
        key_type="ec-p256",
        clock=clock,
        urls=Urls(
            crl="http://ca.test/crl.pem", ocsp="http://ocsp.ca.test", issuer="http://ca.test/ca.crt"
        ),
    )
    clock.advance(timedelta(days=1))
    return authority


def extension(certificate: x509.Certificate, kind: type[E]) -> x509.Extension[E]:
    return certificate.extensions.get_extension_for_class(kind)


def test_server_certificate_fields(ca: CertificateAuthority) -> None:
    issued, key = ca.issue(
        ca.profile("server"),
        Subject(common_name="www.lab.test", organization="Lab"),
        Names.parse(dns=["api.lab.test"], ip=["192.0.2.7"]),
        key_type="rsa-2048",
    )
    cert = issued.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.lab.test"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Lab"
    assert cert.issuer == ca.certificate.subject
    assert cert.not_valid_before_utc == NOW - BACKDATE
    assert cert.not_valid_after_utc == NOW + timedelta(days=90)
    assert cert.public_key() == key.public_key()
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)

    constraints = extension(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca is False
    usage = extension(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.key_encipherment  # RSA key
    assert not usage.value.key_cert_sign and not usage.value.crl_sign
    eku = extension(cert, x509.ExtendedKeyUsage)
    assert list(eku.value) == [ExtendedKeyUsageOID.SERVER_AUTH] and not eku.critical
    san = extension(cert, x509.SubjectAlternativeName).value
    # the CN comes first (copy_cn), then the names asked for
    assert san.get_values_for_type(x509.DNSName) == ["www.lab.test", "api.lab.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert extension(cert, x509.SubjectKeyIdentifier).value == (
        x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    )
    assert extension(cert, x509.AuthorityKeyIdentifier).value.key_identifier == (
        extension(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    )


def test_ca_urls_go_into_every_certificate(ca: CertificateAuthority) -> None:
    issued, _ = ca.issue(ca.profile("client"), Subject(common_name="alice"))
    points = extension(issued.certificate, x509.CRLDistributionPoints).value
    assert [name.value for name in points[0].full_name] == ["http://ca.test/crl.pem"]
    access = {
        d.access_method: d.access_location.value
        for d in extension(issued.certificate, x509.AuthorityInformationAccess).value
    }
    assert access == {
        AuthorityInformationAccessOID.OCSP: "http://ocsp.ca.test",
        AuthorityInformationAccessOID.CA_ISSUERS: "http://ca.test/ca.crt",
    }


@pytest.mark.parametrize(
    ("profile", "eku"),
    [
        ("server", [ExtendedKeyUsageOID.SERVER_AUTH]),
        ("client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("code-signing", [ExtendedKeyUsageOID.CODE_SIGNING]),
        ("server-client", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
    ],
)
def test_each_profile_sets_its_purpose_and_only_it(
    ca: CertificateAuthority, profile: str, eku: list[x509.ObjectIdentifier]
) -> None:
    issued, _ = ca.issue(ca.profile(profile), Subject(common_name="host.lab.test"))
    assert list(extension(issued.certificate, x509.ExtendedKeyUsage).value) == eku
    usage = extension(issued.certificate, x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_encipherment  # EC key: no key transport


def test_code_signing_keeps_the_contact_email_out_of_the_certificate(
    ca: CertificateAuthority,
) -> None:
    issued, _ = ca.issue(
        ca.profile("code-signing"),
        Subject(common_name="Release signing", email="release@lab.test"),
        Names.parse(email=["release@lab.test"]),
    )
    assert issued.contact == "release@lab.test"
    assert not issued.certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    with pytest.raises(x509.ExtensionNotFound):
        extension(issued.certificate, x509.SubjectAlternativeName)


def test_client_certificate_carries_an_email_name(ca: CertificateAuthority) -> None:
    issued, _ = ca.issue(
        ca.profile("client"),
        Subject(common_name="Alice"),
        Names.parse(email=["alice@lab.test"]),
    )
    san = extension(issued.certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@lab.test"]
    assert issued.contact == "alice@lab.test"


def test_serials_are_random_positive_and_at_least_128_bits(ca: CertificateAuthority) -> None:
    serials = {
        ca.issue(ca.profile("client"), Subject(common_name="s"))[0].certificate.serial_number
        for _ in range(20)
    }
    assert len(serials) == 20
    assert all(128 <= serial.bit_length() <= 159 for serial in serials)


def test_days_replace_the_profile_validity(ca: CertificateAuthority) -> None:
    issued, _ = ca.issue(ca.profile("server"), Subject(common_name="a.lab.test"), days=7)
    assert issued.certificate.not_valid_after_utc == NOW + timedelta(days=7)
    assert issued.warnings == ()


def test_days_beyond_the_issuer_are_refused_naming_its_expiry(ca: CertificateAuthority) -> None:
    expiry = f"{ca.certificate.not_valid_after_utc:%Y-%m-%d}"
    with pytest.raises(PolicyError, match=f"issuer's own expiry \\({expiry}"):
        ca.issue(ca.profile("server"), Subject(common_name="a.lab.test"), days=4000)


def test_profile_validity_beyond_the_issuer_is_cut_with_a_warning() -> None:
    short_lived = CertificateAuthority.in_memory(days=30, clock=lambda: NOW)
    issued, _ = short_lived.issue(short_lived.profile("server"), Subject(common_name="a.test"))
    assert issued.certificate.not_valid_after_utc == short_lived.certificate.not_valid_after_utc
    assert len(issued.warnings) == 1 and "cut to the issuer's own expiry" in issued.warnings[0]


def test_not_before_never_precedes_the_issuer() -> None:
    fresh = CertificateAuthority.in_memory(clock=lambda: NOW)
    issued, _ = fresh.issue(fresh.profile("server"), Subject(common_name="a.test"))
    assert issued.certificate.not_valid_before_utc == fresh.certificate.not_valid_before_utc


@pytest.mark.parametrize("days", [0, -1])
def test_zero_or_negative_days_are_refused(ca: CertificateAuthority, days: int) -> None:
    with pytest.raises(PolicyError, match="not possible"):
        ca.issue(ca.profile("server"), Subject(common_name="a.lab.test"), days=days)


def test_a_ca_with_path_length_zero_signs_no_ca() -> None:
    leaf_only = CertificateAuthority.in_memory(path_length=0, clock=lambda: NOW)
    sub_ca = Profile(
        name="sub-ca",
        description="sub CA",
        source="test",
        ca=True,
        path_length=0,
        key_usage=("key_cert_sign", "crl_sign"),
    )
    with pytest.raises(PolicyError, match="path length 0"):
        leaf_only.issue(sub_ca, Subject(common_name="sub"))


def test_allowed_domains_limit_dns_and_email_names(ca: CertificateAuthority) -> None:
    base = ca.profile("server")
    narrow = Profile(
        **{
            **base.__dict__,
            "names": type(base.names)(
                required=("dns_or_ip",),
                allowed=("dns", "ip", "email"),
                copy_cn=True,
                allowed_domains=("lab.test",),
            ),
        }
    )
    ok, _ = ca.issue(
        narrow,
        Subject(common_name="lab.test"),
        Names.parse(dns=["*.lab.test", "x.y.lab.test"]),
    )
    assert "*.lab.test" in extension(
        ok.certificate, x509.SubjectAlternativeName
    ).value.get_values_for_type(x509.DNSName)
    for names in (
        Names.parse(dns=["evil.test"]),
        Names.parse(dns=["notlab.test"]),
        Names.parse(email=["a@other.test"]),
    ):
        with pytest.raises(PolicyError, match="outside the domains"):
            ca.issue(narrow, Subject(common_name="lab.test"), names)


def test_key_types_not_allowed_by_the_profile_are_refused(ca: CertificateAuthority) -> None:
    with pytest.raises(PolicyError, match="ed25519 is not allowed by profile code-signing"):
        ca.issue(ca.profile("code-signing"), Subject(common_name="x"), key_type="ed25519")


def test_the_root_is_a_self_signed_ca(ca: CertificateAuthority) -> None:
    root = ca.certificate
    assert root.issuer == root.subject
    root.verify_directly_issued_by(root)
    assert extension(root, x509.BasicConstraints).value.ca is True
    usage = extension(root, x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert ca.chain == [root] and ca.intermediates == []


@pytest.mark.parametrize(
    ("key_type", "encipherment", "agreement"),
    [
        ("rsa-2048", True, False),
        ("ec-p256", False, True),
    ],
)
def test_email_keys_get_the_usage_their_algorithm_encrypts_with(
    ca: CertificateAuthority, key_type: str, encipherment: bool, agreement: bool
) -> None:
    issued, _ = ca.issue(
        ca.profile("email"),
        Subject(common_name="Alice"),
        Names.parse(email=["alice@lab.test"]),
        key_type=key_type,
    )
    usage = extension(issued.certificate, x509.KeyUsage).value
    assert usage.digital_signature
    assert (usage.key_encipherment, usage.key_agreement) == (encipherment, agreement)
