"""Real clients judge minica's certificates: `openssl verify` and a Python `ssl` mutual-TLS
handshake accept each profile for its purpose and refuse it for the others.

Certificates are made the way a user makes them: `minica init`, `minica req`, `minica sign`.
Only the untrusted CAs, and the client certificates for the key-type handshakes, are made
through the Python API.
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import (
    Leaf,
    OpenSSL,
    Pki,
    run_minica,
    write_ca_certificate,
    write_certificate,
)
from tls import Handshake, assert_client_refused, assert_server_refused
from tls import handshake as tls_handshake

from minica import CertificateAuthority, Subject
from minica.keys import KEY_TYPES

ROOT_CN = "minica real-clients root"


def cli_leaf(ca: Path, folder: Path, name: str, profile: str, *options: str) -> Leaf:
    """`minica req` (new key) then `minica sign --profile`: a certificate as a user makes it."""
    csr = folder / f"{name}.csr"
    run_minica("req", "--out", csr, *options, check=True)
    cert = folder / f"{name}.crt"
    run_minica("sign", "--ca", ca, "--profile", profile, csr, "--out", cert, check=True)
    return Leaf(cert, csr.with_suffix(".key"))


# Every profile's certificate names localhost, so that a refusal in TLS can only come from
# the purpose (EKU), never from the hostname check.
PROFILE_OPTIONS = {
    "server": ("--cn", "localhost", "--dns", "localhost", "--ip", "127.0.0.1"),
    "client": ("--cn", "alice", "--dns", "localhost", "--email", "alice@example.test"),
    "server-client": ("--cn", "peer.example.test", "--dns", "localhost"),
    "code-signing": ("--cn", "minica code signer", "--org", "Lab"),
}


@pytest.fixture(scope="module")
def cli_ca(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA made by `minica init` with one CLI-signed certificate per built-in profile."""
    folder = tmp_path_factory.mktemp("real-clients")
    directory = folder / "ca"
    run_minica("init", "--ca", directory, "--cn", ROOT_CN, check=True)
    leaves = {
        profile: cli_leaf(directory, folder, profile, profile, *options)
        for profile, options in PROFILE_OPTIONS.items()
    }
    return Pki(directory / "ca.crt", leaves)


def make_foreign_ca(folder: Path, common_name: str) -> Pki:
    """A CA this test's clients do not trust, with a "server" and a "client" certificate."""
    ca = CertificateAuthority.in_memory(subject=Subject(common_name=common_name))
    dns, ip = ["localhost"], ["127.0.0.1"]
    leaves = {
        "server": write_certificate(ca, "server", folder, "server", "localhost", dns=dns, ip=ip),
        "client": write_certificate(ca, "client", folder, "client", "mallory", dns=dns, ip=ip),
    }
    return Pki(write_ca_certificate(ca, folder / "ca.crt"), leaves)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_foreign_ca(tmp_path_factory.mktemp("foreign"), "some other root")


@pytest.fixture(scope="module")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A different CA (other key) that bears exactly the trusted CA's name."""
    return make_foreign_ca(tmp_path_factory.mktemp("impostor"), ROOT_CN)


def verify(
    openssl: OpenSSL, ca_file: Path, cert: Path, purpose: str | None = None
) -> subprocess.CompletedProcess[str]:
    purpose_args = ("-purpose", purpose) if purpose else ()
    return openssl("verify", "-CAfile", ca_file, *purpose_args, cert)


# --- 1. openssl verify: each profile for its purpose, and not for the others ---------------

ACCEPTED = [
    ("server", "sslserver"),
    ("client", "sslclient"),
    ("server-client", "sslserver"),
    ("server-client", "sslclient"),
]
REFUSED = [
    ("server", "sslclient"),
    ("client", "sslserver"),
    ("code-signing", "sslserver"),
    ("code-signing", "sslclient"),
]


@pytest.mark.tools
@pytest.mark.parametrize(("profile", "purpose"), ACCEPTED)
def test_openssl_accepts_profile_for_its_purpose(
    openssl: OpenSSL, cli_ca: Pki, profile: str, purpose: str
) -> None:
    cert = cli_ca.leaves[profile].cert
    result = verify(openssl, cli_ca.ca_file, cert, purpose)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{cert}: OK\n"


@pytest.mark.tools
@pytest.mark.parametrize(("profile", "purpose"), REFUSED)
def test_openssl_refuses_profile_for_another_purpose(
    openssl: OpenSSL, cli_ca: Pki, profile: str, purpose: str
) -> None:
    cert = cli_ca.leaves[profile].cert
    result = verify(openssl, cli_ca.ca_file, cert, purpose)
    assert result.returncode != 0, result.stdout
    assert "unsuitable certificate purpose" in result.stderr
    assert "error 26 at 0 depth" in result.stderr  # X509_V_ERR_INVALID_PURPOSE, on the leaf
    # The chain itself is good: only the purpose is wrong.
    assert verify(openssl, cli_ca.ca_file, cert).returncode == 0


@pytest.mark.tools
@pytest.mark.parametrize(
    ("profile", "usages"),
    [
        ("server", "TLS Web Server Authentication"),
        ("client", "TLS Web Client Authentication"),
        ("server-client", "TLS Web Server Authentication, TLS Web Client Authentication"),
        ("code-signing", "Code Signing"),
    ],
)
def test_openssl_reads_back_profile_extended_key_usage(
    openssl: OpenSSL, cli_ca: Pki, profile: str, usages: str
) -> None:
    cert = cli_ca.leaves[profile].cert
    result = openssl("x509", "-in", cert, "-noout", "-ext", "extendedKeyUsage")
    assert result.returncode == 0, result.stderr
    header, *values = result.stdout.strip().splitlines()
    assert header.strip() == "X509v3 Extended Key Usage:"  # not critical
    assert [value.strip() for value in values] == [usages]


@pytest.mark.tools
@pytest.mark.parametrize("other", ["foreign", "impostor"])
def test_openssl_refuses_certificate_from_another_ca(
    openssl: OpenSSL, cli_ca: Pki, request: pytest.FixtureRequest, other: str
) -> None:
    stranger: Pki = request.getfixturevalue(other)
    server = stranger.leaves["server"].cert
    assert verify(openssl, stranger.ca_file, server, "sslserver").returncode == 0
    result = verify(openssl, cli_ca.ca_file, server, "sslserver")
    assert result.returncode != 0, result.stdout
    assert "unable to get local issuer certificate" in result.stderr


# --- 2. Python ssl: a real mutual-TLS handshake -------------------------------------------


def handshake(
    ca_file: Path,
    server: Leaf,
    client: Leaf,
    *,
    hostname: str = "localhost",
    version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
) -> Handshake:
    """One mutual-TLS connection (tls.handshake) between a server and a client presenting
    these certificate files, each trusting ``ca_file``, both held to ``version``."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.verify_mode = ssl.CERT_REQUIRED
    server_context.load_verify_locations(ca_file)
    server_context.load_cert_chain(server.cert, server.key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    client_context.load_verify_locations(ca_file)
    client_context.load_cert_chain(client.cert, client.key)
    for context in (server_context, client_context):
        context.minimum_version = context.maximum_version = version
    return tls_handshake(server_context, client_context, hostname)


@pytest.fixture(params=[ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls12", "tls13"])
def tls_version(request: pytest.FixtureRequest) -> ssl.TLSVersion:
    version: ssl.TLSVersion = request.param
    return version


@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_mtls_succeeds_with_server_and_client_profiles(
    cli_ca: Pki, tls_version: ssl.TLSVersion, hostname: str
) -> None:
    leaves = cli_ca.leaves
    outcome = handshake(
        cli_ca.ca_file, leaves["server"], leaves["client"], hostname=hostname, version=tls_version
    )
    assert outcome.client_error is None
    assert outcome.server_error is None
    assert outcome.server_got == b"ping"
    assert outcome.client_got == b"hellopong:ping"
    assert outcome.client_peer == "localhost"
    assert outcome.server_peer == "alice"


def test_mtls_succeeds_with_server_client_profile_on_both_sides(
    cli_ca: Pki, tls_version: ssl.TLSVersion
) -> None:
    peer = cli_ca.leaves["server-client"]
    outcome = handshake(cli_ca.ca_file, peer, peer, version=tls_version)
    assert (outcome.client_error, outcome.server_error) == (None, None)
    assert outcome.client_got == b"hellopong:ping"
    assert outcome.client_peer == outcome.server_peer == "peer.example.test"


def test_mtls_server_refuses_server_profile_as_client_certificate(
    cli_ca: Pki, tls_version: ssl.TLSVersion
) -> None:
    leaves = cli_ca.leaves
    outcome = handshake(cli_ca.ca_file, leaves["server"], leaves["server"], version=tls_version)
    assert_server_refused(
        outcome, "unsuitable certificate purpose", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE"
    )


def test_mtls_server_refuses_client_certificate_from_another_ca(
    cli_ca: Pki, foreign: Pki, tls_version: ssl.TLSVersion
) -> None:
    outcome = handshake(
        cli_ca.ca_file, cli_ca.leaves["server"], foreign.leaves["client"], version=tls_version
    )
    assert_server_refused(
        outcome, "unable to get local issuer certificate", "TLSV1_ALERT_UNKNOWN_CA"
    )


def test_mtls_client_refuses_client_profile_as_server_certificate(
    cli_ca: Pki, tls_version: ssl.TLSVersion
) -> None:
    leaves = cli_ca.leaves
    outcome = handshake(cli_ca.ca_file, leaves["client"], leaves["client"], version=tls_version)
    assert_client_refused(outcome, "unsuitable certificate purpose")


def test_mtls_client_refuses_server_certificate_for_another_hostname(
    cli_ca: Pki, tls_version: ssl.TLSVersion
) -> None:
    leaves = cli_ca.leaves
    outcome = handshake(
        cli_ca.ca_file,
        leaves["server"],
        leaves["client"],
        hostname="wrong.example.test",
        version=tls_version,
    )
    assert_client_refused(
        outcome, "Hostname mismatch, certificate is not valid for 'wrong.example.test'."
    )


# --- 3. every key type, for the CA key and for the leaf ----------------------------------

# What `openssl x509 -text` says about a public key of each type.
KEY_TEXT = {
    "ec-p256": ("id-ecPublicKey", "NIST CURVE: P-256"),
    "ec-p384": ("id-ecPublicKey", "NIST CURVE: P-384"),
    "ec-p521": ("id-ecPublicKey", "NIST CURVE: P-521"),
    "rsa-2048": ("rsaEncryption", "Public-Key: (2048 bit)"),
    "rsa-3072": ("rsaEncryption", "Public-Key: (3072 bit)"),
    "rsa-4096": ("rsaEncryption", "Public-Key: (4096 bit)"),
    "ed25519": ("ED25519", "ED25519 Public-Key:"),
}


@dataclass(frozen=True)
class KeyTypeChain:
    key_type: str
    directory: Path
    server: Leaf

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"


@pytest.fixture(scope="module", params=KEY_TYPES)
def chain(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyTypeChain:
    """Per key type T, once per module: `minica init --key-type T`, then a T server leaf."""
    key_type: str = request.param
    folder = tmp_path_factory.mktemp(key_type)
    directory = folder / "ca"
    run_minica(
        *("init", "--ca", directory, "--cn", f"minica {key_type} root", "--key-type", key_type),
        check=True,
    )
    server = cli_leaf(
        directory, folder, "server", "server", *PROFILE_OPTIONS["server"], "--key-type", key_type
    )
    return KeyTypeChain(key_type, directory, server)


def test_key_types_match_the_set_openssl_is_checked_against() -> None:
    assert set(KEY_TYPES) == set(KEY_TEXT)


@pytest.mark.tools
def test_openssl_accepts_server_certificate_for_every_key_type(
    openssl: OpenSSL, chain: KeyTypeChain
) -> None:
    result = verify(openssl, chain.ca_file, chain.server.cert, "sslserver")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{chain.server.cert}: OK\n"


@pytest.mark.tools
def test_openssl_reads_the_key_type_asked_for_in_ca_and_leaf(
    openssl: OpenSSL, chain: KeyTypeChain
) -> None:
    algorithm, detail = KEY_TEXT[chain.key_type]
    for cert in (chain.ca_file, chain.server.cert):
        result = openssl("x509", "-in", cert, "-noout", "-text")
        assert result.returncode == 0, result.stderr
        assert f"Public Key Algorithm: {algorithm}" in result.stdout, cert
        assert detail in result.stdout, cert


def test_mtls_succeeds_with_server_certificate_of_every_key_type(
    chain: KeyTypeChain, tmp_path: Path
) -> None:
    ca = CertificateAuthority.open(chain.directory)
    client = write_certificate(ca, "client", tmp_path, "client", "alice")
    outcome = handshake(chain.ca_file, chain.server, client)
    assert (outcome.client_error, outcome.server_error) == (None, None)
    assert outcome.client_got == b"hellopong:ping"
    assert (outcome.client_peer, outcome.server_peer) == ("localhost", "alice")
