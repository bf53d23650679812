"""The test-fixture API proven in real Python `ssl` handshakes on 127.0.0.1: `certify`, the
ssl contexts, `Credential`, and each certificate made to fail, refused for its own reason.

Every refusal asserts the OpenSSL verify message on the side that verifies, so that a
certificate made to fail for one reason cannot pass the test by failing for another.
"""

from __future__ import annotations

import ipaddress
import ssl
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import issuer_key
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID
from tls import assert_client_refused, assert_server_refused, handshake

from minica import CertificateAuthority, Credential, FixtureCA
from minica.errors import InputError, PolicyError

KEY_TYPES = ["rsa-2048", "ec-p256", "ed25519"]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> FixtureCA:
    return FixtureCA()


@pytest.fixture(scope="module")
def server_credential(ca: FixtureCA) -> Credential:
    return ca.certify("localhost")


@pytest.fixture(scope="module")
def client_credential(ca: FixtureCA) -> Credential:
    return ca.certify("alice", profile="client")


@pytest.fixture(scope="module")
def client(ca: FixtureCA, client_credential: Credential) -> ssl.SSLContext:
    """A good mTLS client: a refusal of the server can only come from the server's side."""
    return ca.client_context(client_credential)


@pytest.fixture(scope="module")
def server(ca: FixtureCA, server_credential: Credential) -> ssl.SSLContext:
    """A good mTLS server: a refusal of the client can only come from the client's side."""
    return ca.server_context(server_credential)


# --- the good case ------------------------------------------------------------------------


def test_three_line_mutual_tls_exchanges_bytes_and_each_side_sees_the_other() -> None:
    ca = FixtureCA()
    server = ca.server_context(ca.certify("localhost"))
    client = ca.client_context(ca.certify("alice", profile="client"))
    outcome = handshake(server, client)
    assert outcome.succeeded, outcome
    assert outcome.client_peer == "localhost"
    assert outcome.server_peer == "alice"


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_mutual_tls_succeeds_with_leaf_keys_of_each_type_in_tls_12_and_13(
    ca: FixtureCA, key_type: str
) -> None:
    server_credential = ca.certify("localhost", key_type=key_type)
    client_credential = ca.certify("bob", profile="client", key_type=key_type)
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        client = ca.client_context(client_credential)
        client.minimum_version = client.maximum_version = version
        outcome = handshake(ca.server_context(server_credential), client)
        assert outcome.succeeded, (version, outcome)
        assert outcome.version == version.name.replace("_", ".")
        assert (outcome.client_peer, outcome.server_peer) == ("localhost", "bob")


@pytest.mark.parametrize("key_type", ["rsa-2048", "ed25519"])
def test_mutual_tls_succeeds_under_a_ca_key_of_another_type(key_type: str) -> None:
    ca = FixtureCA(CertificateAuthority.in_memory(key_type=key_type))
    server = ca.server_context(ca.certify("localhost"))
    client = ca.client_context(ca.certify("alice", profile="client"), check_revocation=True)
    assert handshake(server, client).succeeded


def test_mutual_tls_succeeds_on_an_ip_address(ca: FixtureCA) -> None:
    server = ca.server_context(ca.certify("127.0.0.1"))
    outcome = handshake(
        server, ca.client_context(ca.certify("alice", profile="client")), "127.0.0.1"
    )
    assert outcome.succeeded, outcome


def test_server_without_client_certificates_serves_a_client_without_one(
    ca: FixtureCA, server_credential: Credential
) -> None:
    server = ca.server_context(server_credential, client_certificates=False)
    outcome = handshake(server, ca.client_context())
    assert outcome.succeeded, outcome
    assert outcome.server_peer is None


def test_mutual_tls_server_refuses_a_client_without_certificate(
    server: ssl.SSLContext, ca: FixtureCA
) -> None:
    outcome = handshake(server, ca.client_context())
    assert isinstance(outcome.server_error, ssl.SSLError), repr(outcome.server_error)
    assert outcome.server_error.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE"
    assert outcome.server_got == b""


# --- certificates made to fail, each refused for its own reason -----------------------------

REASONS = {
    "expired": "certificate has expired",
    "not_yet_valid": "certificate is not yet valid",
    "wrong_purpose": "unsuitable certificate purpose",
    "self_signed": "self-signed certificate",
    "untrusted": "unable to get local issuer certificate",
}
# Every kind with an EC key; the three the brief names with every key type.
FAILURES = [
    pytest.param(kind, key_type, id=f"{kind}-{key_type}")
    for kind in REASONS
    for key_type in KEY_TYPES
    if key_type == "ec-p256" or kind in ("expired", "wrong_purpose", "untrusted")
]


@pytest.mark.parametrize(("kind", "key_type"), FAILURES)
def test_client_refuses_server_certificate_made_to_fail_for_its_reason(
    ca: FixtureCA, client: ssl.SSLContext, kind: str, key_type: str
) -> None:
    bad: Credential = getattr(ca, kind)("localhost", key_type=key_type)
    outcome = handshake(ca.server_context(bad), client)
    assert_client_refused(outcome, REASONS[kind])


# The TLS alert a client receives when the server refuses its certificate for that reason.
ALERTS = {
    "expired": "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "not_yet_valid": "SSLV3_ALERT_BAD_CERTIFICATE",
    "wrong_purpose": "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "self_signed": "TLSV1_ALERT_UNKNOWN_CA",
    "untrusted": "TLSV1_ALERT_UNKNOWN_CA",
}


@pytest.mark.parametrize("kind", list(REASONS))
def test_server_refuses_client_certificate_made_to_fail_for_its_reason(
    ca: FixtureCA, server: ssl.SSLContext, kind: str
) -> None:
    bad: Credential = getattr(ca, kind)("alice", profile="client")
    outcome = handshake(server, ca.client_context(bad))
    assert_server_refused(outcome, REASONS[kind], ALERTS[kind])


def test_wrong_purpose_client_certificate_is_a_server_certificate(
    ca: FixtureCA,
) -> None:
    usage = ca.wrong_purpose("alice", profile="client").certificate.extensions
    eku = usage.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_wrong_purpose_server_certificate_is_a_client_certificate(
    ca: FixtureCA,
) -> None:
    usage = ca.wrong_purpose("localhost").certificate.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage
    )
    assert list(usage.value) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_client_refuses_server_certificate_for_another_host_name(
    ca: FixtureCA, client: ssl.SSLContext
) -> None:
    outcome = handshake(ca.server_context(ca.certify("other.test")), client)
    assert_client_refused(outcome, "Hostname mismatch, certificate is not valid for 'localhost'.")


@pytest.fixture(scope="module")
def revoked_server(ca: FixtureCA) -> ssl.SSLContext:
    return ca.server_context(ca.revoked("localhost"))


def test_client_checking_revocation_refuses_revoked_server_certificate(
    ca: FixtureCA, client_credential: Credential, revoked_server: ssl.SSLContext
) -> None:
    client = ca.client_context(client_credential, check_revocation=True)
    assert_client_refused(handshake(revoked_server, client), "certificate revoked")


def test_client_not_checking_revocation_accepts_the_same_revoked_certificate(
    client: ssl.SSLContext, revoked_server: ssl.SSLContext
) -> None:
    assert handshake(revoked_server, client).succeeded


def test_server_checking_revocation_refuses_revoked_client_certificate(
    ca: FixtureCA, server_credential: Credential
) -> None:
    revoked_client = ca.client_context(ca.revoked("alice", profile="client"))
    checking = ca.server_context(server_credential, check_revocation=True)
    outcome = handshake(checking, revoked_client)
    assert_server_refused(outcome, "certificate revoked", "SSLV3_ALERT_CERTIFICATE_REVOKED")
    assert handshake(ca.server_context(server_credential), revoked_client).succeeded


def test_context_checks_revocation_against_the_crl_of_its_making(
    ca: FixtureCA, client_credential: Credential
) -> None:
    """The CRL is loaded when the context is made: what is revoked later goes unseen."""
    credential = ca.certify("localhost")
    made_before = ca.client_context(client_credential, check_revocation=True)
    ca.revoke(credential, "superseded")
    made_after = ca.client_context(client_credential, check_revocation=True)
    assert handshake(ca.server_context(credential), made_before).succeeded
    assert_client_refused(
        handshake(ca.server_context(credential), made_after), "certificate revoked"
    )


def test_client_checking_revocation_accepts_a_certificate_that_is_not_revoked(
    ca: FixtureCA, server: ssl.SSLContext, client_credential: Credential
) -> None:
    ca.revoked("localhost")  # the CRL is not empty
    client = ca.client_context(client_credential, check_revocation=True)
    assert handshake(server, client).succeeded


def test_crl_pem_lists_revoked_certificates_by_serial(ca: FixtureCA) -> None:
    revoked = ca.revoked("localhost").certificate.serial_number
    crl = x509.load_pem_x509_crl(ca.crl_pem())
    assert crl.get_revoked_certificate_by_serial_number(revoked) is not None
    assert crl.is_signature_valid(issuer_key(ca.certificate))


# --- Credential ---------------------------------------------------------------------------


def public_der(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_credential_pem_parses_back_and_key_matches_certificate(
    ca: FixtureCA, key_type: str
) -> None:
    credential = ca.certify("localhost", key_type=key_type)
    certificate = x509.load_pem_x509_certificate(credential.certificate_pem)
    key = load_pem_private_key(credential.private_key_pem, password=None)
    assert certificate == credential.certificate
    assert public_der(key.public_key()) == public_der(certificate.public_key())
    assert certificate.issuer == ca.certificate.subject
    assert credential.chain_pem == credential.certificate_pem  # a root signed it: no intermediates


def test_credential_write_makes_certificate_private_key_0600_and_chain(
    ca: FixtureCA, tmp_path: Path
) -> None:
    credential = ca.certify("localhost")
    files = credential.write(tmp_path, "web")
    assert (files.certificate, files.private_key, files.chain) == (
        tmp_path / "web.crt",
        tmp_path / "web.key",
        tmp_path / "web-chain.crt",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web-chain.crt", "web.crt", "web.key"]
    assert files.certificate.read_bytes() == credential.certificate_pem
    assert files.private_key.read_bytes() == credential.private_key_pem
    assert files.chain.read_bytes() == credential.chain_pem
    assert files.private_key.stat().st_mode & 0o777 == 0o600


@pytest.fixture(scope="module")
def intermediate(ca: FixtureCA) -> FixtureCA:
    return ca.intermediate(key_type="ec-p256")


def test_intermediate_credential_chain_is_leaf_then_intermediate(
    intermediate: FixtureCA,
) -> None:
    credential = intermediate.certify("localhost")
    chain = x509.load_pem_x509_certificates(credential.chain_pem)
    assert chain == [credential.certificate, intermediate.certificate]
    assert credential.chain_pem.count(b"-----BEGIN CERTIFICATE-----") == 2


def test_intermediate_credential_handshakes_with_client_trusting_only_the_root(
    ca: FixtureCA, intermediate: FixtureCA
) -> None:
    root_only = ca.client_context(ca.certify("alice", profile="client"))
    root_der = ca.certificate.public_bytes(Encoding.DER)
    assert [c for c in root_only.get_ca_certs(binary_form=True)] == [root_der]
    outcome = handshake(intermediate.server_context(intermediate.certify("localhost")), root_only)
    assert outcome.succeeded, outcome


def test_intermediate_leaf_without_its_chain_is_refused_by_client_trusting_only_the_root(
    ca: FixtureCA, intermediate: FixtureCA, tmp_path: Path
) -> None:
    files = intermediate.certify("localhost").write(tmp_path)
    leaf_only = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf_only.load_cert_chain(files.certificate, files.private_key)
    outcome = handshake(leaf_only, ca.client_context())
    assert_client_refused(outcome, "unable to get local issuer certificate")


def test_intermediate_checking_revocation_refuses_its_revoked_certificate(
    intermediate: FixtureCA,
) -> None:
    server = intermediate.server_context(intermediate.revoked("localhost"))
    client = intermediate.client_context(
        intermediate.certify("alice", profile="client"), check_revocation=True
    )
    assert_client_refused(handshake(server, client), "certificate revoked")


# --- certify: validity and names ----------------------------------------------------------


def test_certify_sets_exactly_the_not_before_and_not_after_given(
    ca: FixtureCA,
) -> None:
    not_before = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    not_after = datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    certificate = ca.certify("localhost", not_before=not_before, not_after=not_after).certificate
    assert certificate.not_valid_before_utc == not_before
    assert certificate.not_valid_after_utc == not_after


def test_certify_reads_not_before_and_not_after_in_any_time_zone(
    ca: FixtureCA,
) -> None:
    plus_two = timezone(timedelta(hours=2))
    not_before = datetime(2026, 1, 2, 5, 0, tzinfo=plus_two)
    not_after = datetime(2026, 2, 3, 1, 30, tzinfo=plus_two)  # 2026-02-02 23:30 UTC
    certificate = ca.certify("localhost", not_before=not_before, not_after=not_after).certificate
    assert certificate.not_valid_before_utc == datetime(2026, 1, 2, 3, 0, tzinfo=timezone.utc)
    assert certificate.not_valid_after_utc == datetime(2026, 2, 2, 23, 30, tzinfo=timezone.utc)


def test_certify_refuses_dates_before_1950(ca: FixtureCA) -> None:
    with pytest.raises(PolicyError, match="1949-12-31 is before 1950"):
        ca.certify(
            "localhost",
            not_before=datetime(1949, 12, 31, tzinfo=timezone.utc),
            not_after=datetime(2026, 1, 1, tzinfo=timezone.utc),
        )


def test_certify_days_sets_not_after_that_many_days_from_now(ca: FixtureCA) -> None:
    before = datetime.now(timezone.utc).replace(microsecond=0)
    certificate = ca.certify("localhost", days=7).certificate
    after = datetime.now(timezone.utc)
    assert (
        before + timedelta(days=7) <= certificate.not_valid_after_utc <= after + timedelta(days=7)
    )
    assert certificate.not_valid_before_utc <= before  # valid from now (a little backdated)


@pytest.mark.parametrize("bound", ["not_before", "not_after"])
def test_certify_with_only_one_of_not_before_and_not_after_raises_value_error(
    ca: FixtureCA, bound: str
) -> None:
    now = datetime.now(timezone.utc)
    not_before, not_after = (now, None) if bound == "not_before" else (None, now)
    with pytest.raises(InputError, match="both not_before and not_after"):
        ca.certify("localhost", not_before=not_before, not_after=not_after)


def alternative_names(credential: Credential) -> x509.SubjectAlternativeName:
    return credential.certificate.extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value


def test_certify_classifies_host_names_and_ip_addresses(ca: FixtureCA) -> None:
    names = alternative_names(ca.certify("a.test", "10.0.0.1", "::1"))
    assert names.get_values_for_type(x509.DNSName) == ["a.test"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert len(list(names)) == 3


def test_certify_classifies_emails_and_uris_for_a_client(ca: FixtureCA) -> None:
    credential = ca.certify("x@y.test", "spiffe://lab/app", profile="client")
    names = alternative_names(credential)
    assert names.get_values_for_type(x509.RFC822Name) == ["x@y.test"]
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://lab/app"]
    assert len(list(names)) == 2


def test_certify_common_name_defaults_to_the_first_name(ca: FixtureCA) -> None:
    cn = x509.NameOID.COMMON_NAME
    default = ca.certify("a.test", "b.test").certificate.subject
    chosen = ca.certify("a.test", common_name="Web").certificate.subject
    assert default.get_attributes_for_oid(cn)[0].value == "a.test"
    assert chosen.get_attributes_for_oid(cn)[0].value == "Web"


# --- where a CA keeps what it issues --------------------------------------------------------


def test_in_memory_ca_writes_nothing_and_keeps_its_registry_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd, temporary = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    temporary.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    ca = FixtureCA()
    credential = ca.certify("localhost")
    ca.revoked("localhost")
    ca.crl_pem()
    ca.server_context(credential, check_revocation=True)
    ca.client_context(ca.certify("alice", profile="client"), check_revocation=True)
    assert ca.authority.folder is None
    assert ca.authority.record(credential.certificate).profile == "server"
    assert [r.revocation_reason for r in ca.authority.records("revoked")] == ["key-compromise"]
    assert list(cwd.iterdir()) == []
    assert list(temporary.iterdir()) == []  # nothing left behind by the ssl contexts


def test_ca_folder_records_what_certify_issues(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    ca = FixtureCA(CertificateAuthority.init(folder))
    credential = ca.certify("localhost")
    revoked = ca.revoked("alice", profile="client")
    record = CertificateAuthority.open(folder).record(credential.certificate)
    assert (record.profile, record.subject, record.revoked_at) == ("server", "CN=localhost", None)
    serial = format(credential.certificate.serial_number, "x")
    assert (folder / "certs" / f"{serial}.crt").read_bytes() == credential.certificate_pem
    revoked_record = CertificateAuthority.open(folder).record(revoked.certificate)
    assert (revoked_record.profile, revoked_record.revocation_reason) == (
        "client",
        "key-compromise",
    )
    assert [r.serial for r in ca.authority.records("revoked")] == [revoked_record.serial]
