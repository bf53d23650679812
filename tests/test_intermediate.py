"""The intermediate-ca profile makes a CA that openssl accepts as an intermediate, and no more."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import OpenSSL, write_ca_certificate, write_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from minica import CertificateAuthority, Subject
from minica.errors import PolicyError
from minica.settings import Settings


@pytest.fixture(scope="module")
def root() -> CertificateAuthority:
    return CertificateAuthority.in_memory(subject=Subject(common_name="Lab Root"))


@pytest.fixture(scope="module")
def intermediate(root: CertificateAuthority) -> CertificateAuthority:
    issued, key = root.issue(root.profile("intermediate-ca"), Subject(common_name="Lab Issuing CA"))
    return CertificateAuthority(
        issued.certificate, [issued.certificate, root.certificate], Settings(), key
    )


def test_intermediate_is_a_ca_of_path_length_zero(intermediate: CertificateAuthority) -> None:
    extensions = intermediate.certificate.extensions
    constraints = extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca is True and constraints.value.path_length == 0
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    with pytest.raises(x509.ExtensionNotFound):
        extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_a_leaf_validates_through_the_intermediate(
    root: CertificateAuthority, intermediate: CertificateAuthority, tmp_path: Path, openssl: OpenSSL
) -> None:
    root_file = write_ca_certificate(root, tmp_path / "root.crt")
    chain_file = write_ca_certificate(intermediate, tmp_path / "intermediate.crt")
    leaf, _ = write_certificate(intermediate, "server", tmp_path, "leaf", "www.lab.test")

    verified = openssl(
        "verify", "-CAfile", root_file, "-untrusted", chain_file, "-purpose", "sslserver", leaf
    )
    assert verified.returncode == 0 and verified.stdout.strip() == f"{leaf}: OK", verified
    without_chain = openssl("verify", "-CAfile", root_file, leaf)
    assert without_chain.returncode != 0
    assert "unable to get local issuer certificate" in without_chain.stdout + without_chain.stderr


def test_path_length_zero_stops_minica_from_signing_a_ca(
    intermediate: CertificateAuthority,
) -> None:
    with pytest.raises(PolicyError, match="path length 0"):
        intermediate.issue(intermediate.profile("intermediate-ca"), Subject(common_name="Sub"))


def test_openssl_rejects_a_ca_forged_below_path_length_zero(
    root: CertificateAuthority, intermediate: CertificateAuthority, tmp_path: Path, openssl: OpenSSL
) -> None:
    """Signed with the intermediate's key outside minica: the verifier is the real guard."""
    now = datetime.now(timezone.utc)
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Forged CA")]))
        .issuer_name(intermediate.certificate.subject)
        .public_key(forged_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(intermediate.private_key, hashes.SHA256())
    )
    forged_ca = CertificateAuthority(forged, [forged], Settings(), forged_key)
    leaf, _ = write_certificate(forged_ca, "server", tmp_path, "leaf", "www.lab.test")
    untrusted = tmp_path / "untrusted.crt"
    untrusted.write_bytes(
        forged.public_bytes(Encoding.PEM) + intermediate.certificate.public_bytes(Encoding.PEM)
    )

    result = openssl(
        "verify",
        "-CAfile",
        write_ca_certificate(root, tmp_path / "root.crt"),
        "-untrusted",
        untrusted,
        leaf,
    )
    assert result.returncode != 0
    assert "path length constraint exceeded" in result.stdout + result.stderr


def test_intermediate_keeps_its_issuance_and_a_cut_lifetime_as_a_warning() -> None:
    parent = CertificateAuthority.in_memory(days=30)
    child = parent.intermediate()  # the profile's default outlives the parent: cut
    assert parent.issued is None  # a root was issued by no one
    assert child.issued is not None and child.issued.certificate == child.certificate
    assert child.issued.profile == "intermediate-ca"
    assert child.certificate.not_valid_after_utc == parent.certificate.not_valid_after_utc
    assert child.warnings == child.issued.warnings
    assert child.warnings and "lifetime cut" in child.warnings[0]
