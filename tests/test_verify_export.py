"""`minica verify` and `minica export` through the CLI, judged against openssl and keytool.

verify: exit 0 and exactly `OK`, or exit 1 with one `error:` line a person understands
(purpose, host name, validity period, issuer, revocation), in agreement with
`openssl verify -purpose`. export: a PKCS#12 file (mode 0600) that OpenSSL 3 and Java 17
keytool open with the passphrase from a file (without its trailing newline) or from
$MINICA_P12_PASSPHRASE, holding the key, the certificate and the CA chain; every refusal
leaves no file behind and never echoes the passphrase.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import (
    Leaf,
    OpenSSL,
    Result,
    assert_refused,
    copy_ca,
    require_tool,
    run_minica,
    write_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key

from minica import CertificateAuthority, ManualClock, Names, Subject
from minica.verify import VerificationFailed, verify

PASSPHRASE = "correct horse battery staple"
PURPOSE_NAMES = {
    "server": "server authentication",
    "client": "client authentication",
    "code-signing": "code signing",
    "email": "email protection",
    "timestamping": "time stamping",
    "ocsp-signing": "OCSP signing",
}
OPENSSL_PURPOSES = {"server": "sslserver", "client": "sslclient", "email": "smimesign"}
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", re.DOTALL)


@dataclass(frozen=True)
class Lab:
    ca: Path  # a copy of example-ca; tests only read it (verify, export)
    leaves: dict[str, Leaf]  # one per profile; "rsa", "ed25519" clients; "any-eku", "no-eku"
    foreign: Leaf  # issued by another `minica init` CA
    forged: Leaf  # this CA's issuer name, another key's signature
    past_ca: Path  # a CA folder made in 2020 with the Python API
    expired: Path  # issued by past_ca, expired on 2021-03-02
    future: Path  # issued by past_ca, valid from 30 days ahead


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, template_ca: Path) -> Lab:
    """Every CA and certificate the tests read, made once (the Python API: no keygen per run)."""
    folder = tmp_path_factory.mktemp("verify-export")
    directory = copy_ca(template_ca, folder / "ca")
    ca = CertificateAuthority.open(directory)
    any_eku, no_eku = folder / "any-eku.yaml", folder / "no-eku.yaml"
    any_eku.write_text("description: any\nextends: client\nextended_key_usage: [any]\n")
    no_eku.write_text("description: no EKU\nextends: client\nextended_key_usage: []\n")
    leaves = {
        "server": write_certificate(
            ca,
            "server",
            folder,
            "server",
            cn="www.lab.test",
            dns=["www.lab.test", "*.lab.test", "bücher.example.test"],
            ip=["10.0.0.1", "2001:db8::1"],
        ),
        "client": write_certificate(
            ca, "client", folder, "client", cn="Alice", email=["alice@lab.test"]
        ),
        "code-signing": write_certificate(
            ca, "code-signing", folder, "code", cn="Lab Code Signing"
        ),
        "email": write_certificate(ca, "email", folder, "email", cn="Bob", email=["bob@lab.test"]),
        "timestamping": write_certificate(ca, "timestamping", folder, "tsa", cn="Lab TSA"),
        "ocsp-signing": write_certificate(ca, "ocsp-signing", folder, "ocsp", cn="Lab OCSP"),
        "server-client": write_certificate(
            ca, "server-client", folder, "peer", cn="peer.lab.test", dns=["peer.lab.test"]
        ),
        "rsa": write_certificate(ca, "client", folder, "rsa", cn="Carol RSA", key_type="rsa-2048"),
        "ed25519": write_certificate(
            ca, "client", folder, "ed", cn="Dave Ed25519", key_type="ed25519"
        ),
        "any-eku": write_certificate(ca, str(any_eku), folder, "any", cn="Erin any EKU"),
        "no-eku": write_certificate(ca, str(no_eku), folder, "none", cn="Frank no EKU"),
    }

    other = folder / "other-ca"
    result = run_minica("init", "--ca", other, "--cn", "other lab CA")
    assert result.code == 0, result.stderr
    foreign = write_certificate(
        CertificateAuthority.open(other),
        "server",
        folder,
        "foreign",
        cn="www.lab.test",
        dns=["www.lab.test"],
    )

    forger = CertificateAuthority.in_memory(subject=Subject.from_x509(ca.certificate.subject))
    assert forger.certificate.subject == ca.certificate.subject  # the same name, another key
    forged = write_certificate(
        forger, "server", folder, "forged", cn="www.lab.test", dns=["www.lab.test"]
    )

    past_dir = folder / "past-ca"
    clock = ManualClock(datetime(2020, 1, 1, tzinfo=timezone.utc))
    past = CertificateAuthority.init(
        past_dir, subject=Subject(common_name="minica past CA"), days=3650, clock=clock
    )
    server = past.profile("server")
    names = Names.parse(dns=["old.lab.test"])
    clock.now = datetime(2021, 3, 1, 12, tzinfo=timezone.utc)
    expired, _ = past.issue(server, Subject(common_name="old.lab.test"), names, days=1)
    clock.now = datetime.now(timezone.utc) + timedelta(days=30)
    future, _ = past.issue(server, Subject(common_name="old.lab.test"), names, days=1)
    (folder / "expired.pem").write_bytes(expired.pem)
    (folder / "future.pem").write_bytes(future.pem)
    return Lab(
        directory,
        leaves,
        foreign,
        forged,
        past_dir,
        folder / "expired.pem",
        folder / "future.pem",
    )


def assert_ok(result: Result) -> None:
    assert (result.code, result.stdout) == (0, "OK\n"), (result.code, result.stdout, result.stderr)


# --- verify: accepted ---------------------------------------------------------------------


def test_verify_prints_exactly_ok_for_a_good_certificate(lab: Lab) -> None:
    result = run_minica("verify", "--ca", lab.ca, lab.leaves["server"].cert)
    assert_ok(result)
    assert result.stderr == ""


def test_verify_reads_a_der_certificate(lab: Lab, tmp_path: Path) -> None:
    der = tmp_path / "server.der"
    der.write_bytes(lab.leaves["server"].certificate.public_bytes(Encoding.DER))
    assert_ok(run_minica("verify", "--ca", lab.ca, der, "--purpose", "server"))


@pytest.mark.parametrize(
    "hostname",
    [
        "www.lab.test",
        "WWW.Lab.Test.",
        "10.0.0.1",
        "2001:db8::1",
        "a.lab.test",
        "bücher.example.test",
    ],
    ids=["dns", "dns-case-and-root-dot", "ipv4", "ipv6", "wildcard", "idn-as-typed-at-issue"],
)
def test_verify_accepts_a_name_the_server_certificate_holds(lab: Lab, hostname: str) -> None:
    server = lab.leaves["server"].cert
    result = run_minica(
        "verify", "--ca", lab.ca, server, "--purpose", "server", "--hostname", hostname
    )
    assert_ok(result)


@pytest.mark.parametrize(
    ("profile", "purpose"),
    # server, client, email and server-client: see the openssl agreement test below
    [(p, p) for p in ("code-signing", "timestamping", "ocsp-signing")],
)
def test_verify_accepts_a_certificate_for_its_own_purpose(
    lab: Lab, profile: str, purpose: str
) -> None:
    assert_ok(run_minica("verify", "--ca", lab.ca, lab.leaves[profile].cert, "--purpose", purpose))


# --- verify: refused, with the reason -----------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "purpose"),
    [
        ("client", "server"),
        ("server", "client"),
        ("code-signing", "email"),
        ("email", "code-signing"),
        ("timestamping", "ocsp-signing"),
        ("ocsp-signing", "timestamping"),
    ],
)
def test_verify_refuses_a_certificate_for_another_purpose(
    lab: Lab, profile: str, purpose: str
) -> None:
    result = run_minica("verify", "--ca", lab.ca, lab.leaves[profile].cert, "--purpose", purpose)
    assert_refused(
        result, f"certificate is for {PURPOSE_NAMES[profile]}, not {PURPOSE_NAMES[purpose]}"
    )
    assert result.stdout == ""


def test_verify_names_both_purposes_of_a_server_client_certificate(lab: Lab) -> None:
    result = run_minica(
        "verify", "--ca", lab.ca, lab.leaves["server-client"].cert, "--purpose", "email"
    )
    assert_refused(
        result,
        "certificate is for server authentication and client authentication, not email protection",
    )


@pytest.mark.parametrize("hostname", ["a.b.lab.test", "lab.test", "10.0.0.2", "wwwlab.test"])
def test_verify_refuses_a_host_name_and_names_what_the_certificate_holds(
    lab: Lab, hostname: str
) -> None:
    result = run_minica("verify", "--ca", lab.ca, lab.leaves["server"].cert, "--hostname", hostname)
    assert_refused(result, "www.lab.test, *.lab.test", "10.0.0.1, 2001:db8::1", f"not {hostname}")


def test_verify_refuses_an_expired_certificate_with_its_date(lab: Lab) -> None:
    assert_refused(run_minica("verify", "--ca", lab.past_ca, lab.expired), "expired on 2021-03-02")


def test_verify_refuses_a_not_yet_valid_certificate_with_its_date(lab: Lab) -> None:
    start = x509.load_pem_x509_certificate(lab.future.read_bytes()).not_valid_before_utc
    assert_refused(
        run_minica("verify", "--ca", lab.past_ca, lab.future), f"not valid until {start:%Y-%m-%d}"
    )


def test_verify_refuses_a_certificate_of_another_ca_and_names_both(lab: Lab) -> None:
    result = run_minica("verify", "--ca", lab.ca, lab.foreign.cert)
    assert_refused(result, "not issued by this CA", "other lab CA", "minica test root CA")


def test_verify_refuses_a_forgery_with_this_cas_name_but_another_key(lab: Lab) -> None:
    assert_refused(
        run_minica("verify", "--ca", lab.ca, lab.forged.cert),
        "not issued by this CA",
        "did not sign",
    )


def test_verify_refuses_a_missing_file_naming_it(lab: Lab, tmp_path: Path) -> None:
    missing = tmp_path / "nothere.crt"
    assert_refused(run_minica("verify", "--ca", lab.ca, missing), "cannot read", str(missing))


def test_verify_refuses_a_garbage_file_naming_it(lab: Lab, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.crt"
    garbage.write_bytes(b"this is not a certificate\n")
    assert_refused(
        run_minica("verify", "--ca", lab.ca, garbage), str(garbage), "not a readable certificate"
    )


def test_verify_unknown_purpose_is_a_usage_error(lab: Lab) -> None:
    result = run_minica(
        "verify", "--ca", lab.ca, lab.leaves["server"].cert, "--purpose", "ssl-server"
    )
    assert result.code == 2, (result.code, result.stderr)
    assert "--purpose" in result.stderr and "Traceback" not in result.stderr


# --- verify: revocation -------------------------------------------------------------------


def test_verify_check_revocation_reports_revoked_with_date_and_reason(
    ca_dir: Path, tmp_path: Path
) -> None:
    ca = CertificateAuthority.open(ca_dir)
    revoked = write_certificate(ca, "client", tmp_path, "revoked", cn="Mallory")
    kept = write_certificate(ca, "client", tmp_path, "kept", cn="Alice")
    day = f"{datetime.now(timezone.utc):%Y-%m-%d}"
    result = run_minica("revoke", "--ca", ca_dir, revoked.cert, "--reason", "key-compromise")
    assert result.code == 0, result.stderr
    assert run_minica("crl", "--ca", ca_dir).code == 0
    today = f"{datetime.now(timezone.utc):%Y-%m-%d}"

    result = run_minica("verify", "--ca", ca_dir, revoked.cert, "--check-revocation")
    assert_refused(result, "was revoked on", "(key-compromise)")
    assert any(f"revoked on {d} (key-compromise)" in result.stderr for d in {day, today})
    assert_ok(run_minica("verify", "--ca", ca_dir, kept.cert, "--check-revocation"))
    # without the option, revocation is not looked at (as with `openssl verify` without -crl_check)
    assert_ok(run_minica("verify", "--ca", ca_dir, revoked.cert))


def test_verify_check_revocation_reads_the_crl_minica_crl_der_wrote(
    ca_dir: Path, tmp_path: Path
) -> None:
    # `minica crl --der` writes CA/crl.der; --check-revocation reads the newest CRL
    ca = CertificateAuthority.open(ca_dir)
    revoked = write_certificate(ca, "client", tmp_path, "revoked", cn="Mallory")
    ca.revoke(format(revoked.certificate.serial_number, "x"), "superseded")
    assert run_minica("crl", "--ca", ca_dir, "--der").code == 0
    result = run_minica("verify", "--ca", ca_dir, revoked.cert, "--check-revocation")
    assert_refused(result, "was revoked on", "(superseded)")


def test_verify_check_revocation_without_a_crl_says_to_run_minica_crl(lab: Lab) -> None:
    result = run_minica("verify", "--ca", lab.ca, lab.leaves["server"].cert, "--check-revocation")
    assert_refused(result, "no CRL")
    assert "hint: publish one with `minica crl`" in result.stderr
    assert "minica crl" in result.stderr


# --- verify: the Python API for the times the CLI cannot reach ----------------------------


@pytest.fixture(scope="module")
def memory_ca() -> CertificateAuthority:
    return CertificateAuthority.in_memory()


def _memory_leaf(ca: CertificateAuthority) -> x509.Certificate:
    issued, _ = ca.issue(
        ca.profile("server"), Subject(common_name="m.lab.test"), Names.parse(dns=["m.lab.test"])
    )
    return issued.certificate


def test_verify_api_refuses_before_not_before_and_after_not_after(
    memory_ca: CertificateAuthority,
) -> None:
    certificate = _memory_leaf(memory_ca)
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    with pytest.raises(VerificationFailed, match=f"not valid until {start:%Y-%m-%d %H:%M} UTC"):
        verify(certificate, memory_ca.chain, now=start - timedelta(seconds=1))
    with pytest.raises(VerificationFailed, match=f"expired on {end:%Y-%m-%d}"):
        verify(certificate, memory_ca.chain, now=end + timedelta(seconds=1))
    verify(certificate, memory_ca.chain, now=start + timedelta(minutes=1))


def test_verify_api_refuses_a_stale_crl_and_says_to_publish_one(
    memory_ca: CertificateAuthority,
) -> None:
    certificate = _memory_leaf(memory_ca)
    now = datetime.now(timezone.utc)
    crl = memory_ca.crl(days=1)
    verify(certificate, memory_ca.chain, now=now + timedelta(hours=1), crl=crl)
    with pytest.raises(VerificationFailed, match=r"CRL is out of date .*minica crl"):
        verify(certificate, memory_ca.chain, now=now + timedelta(days=2), crl=crl)


def test_verify_api_refuses_a_crl_signed_by_another_ca(memory_ca: CertificateAuthority) -> None:
    certificate = _memory_leaf(memory_ca)
    other_crl = CertificateAuthority.in_memory().crl()
    with pytest.raises(VerificationFailed, match="CRL was not signed by this CA"):
        verify(certificate, memory_ca.chain, now=datetime.now(timezone.utc), crl=other_crl)


def test_verify_api_reports_a_revoked_serial_with_its_reason(
    memory_ca: CertificateAuthority,
) -> None:
    certificate = _memory_leaf(memory_ca)
    memory_ca.revoke(format(certificate.serial_number, "x"), "superseded")
    crl = memory_ca.crl()
    with pytest.raises(VerificationFailed, match=r"was revoked on \d{4}-\d\d-\d\d \(superseded\)"):
        verify(certificate, memory_ca.chain, now=datetime.now(timezone.utc), crl=crl)


# --- verify agrees with openssl verify -purpose -------------------------------------------


@pytest.mark.parametrize(
    "profile",
    ["server", "client", "email", "server-client", "code-signing", "any-eku", "no-eku"],
)
def test_verify_agrees_with_openssl_verify_purpose(
    lab: Lab, openssl: OpenSSL, profile: str
) -> None:
    cert = lab.leaves[profile].cert
    verdicts = {}
    for purpose, openssl_purpose in OPENSSL_PURPOSES.items():
        theirs = openssl(
            "verify", "-CAfile", lab.ca / "ca.crt", "-purpose", openssl_purpose, cert
        ).returncode
        ours = run_minica("verify", "--ca", lab.ca, cert, "--purpose", purpose).code
        verdicts[purpose] = (ours, theirs)
    agreeing = {p: (ours == 0, theirs == 0) for p, (ours, theirs) in verdicts.items()}
    assert all(o == t for o, t in agreeing.values()), verdicts
    expected_ok = {
        "server": {"server"},
        "client": {"client"},
        "email": {"email"},
        "server-client": {"server", "client"},
        "code-signing": set(),
        "any-eku": set(),  # OpenSSL 3.0 does not take anyExtendedKeyUsage for these either
        "no-eku": {"server", "client", "email"},  # RFC 5280: no EKU, no restriction
    }[profile]
    assert {p for p, (accepted, _) in agreeing.items() if accepted} == expected_ok


# --- export -------------------------------------------------------------------------------


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "p12.pass"
    path.write_text(PASSPHRASE + "\n")  # the newline an editor or `echo` adds
    path.chmod(0o600)
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def minica_export(
    lab: Lab,
    what: str | Path,
    key: Path,
    p12: Path,
    *options: str | Path,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
) -> Result:
    """`minica export`; whatever happens, the passphrase is never printed."""
    result = run_minica(
        "export", "--ca", lab.ca, what, "--key", key, "--p12", p12, *options, env=env, stdin=stdin
    )
    assert PASSPHRASE not in result.stdout + result.stderr
    return result


@dataclass(frozen=True)
class Bundle:
    p12: Path
    leaf: Leaf
    name: str


@pytest.fixture(scope="module")
def bundles(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Bundle]:
    """One export per key type with --passphrase-file and --name, for openssl and keytool."""
    folder = tmp_path_factory.mktemp("bundles")
    passphrase = folder / "p12.pass"
    passphrase.write_text(PASSPHRASE + "\n")
    made = {}
    for kind, leaf_name in {"ec-p256": "client", "rsa-2048": "rsa", "ed25519": "ed25519"}.items():
        leaf, p12, name = lab.leaves[leaf_name], folder / f"{kind}.p12", f"Lab {kind} Key"
        result = minica_export(
            lab, leaf.cert, leaf.key, p12, "--passphrase-file", passphrase, "--name", name
        )
        assert result.code == 0, result.stderr
        made[kind] = Bundle(p12, leaf, name)
    return made


def read_back(openssl: OpenSSL, p12: Path, passphrase: str) -> tuple[str, list[str]]:
    """`openssl pkcs12 -nodes` output and its PEM blocks, with the passphrase from the env."""
    result = openssl(
        "pkcs12", "-in", p12, "-passin", "env:P12_PASS", "-nodes", env={"P12_PASS": passphrase}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout, [m.group(0) for m in PEM_BLOCK.finditer(result.stdout)]


def assert_bundle_holds(output: str, blocks: list[str], leaf: Leaf, ca: Path) -> None:
    keys = [b for b in blocks if "PRIVATE KEY" in b.splitlines()[0]]
    certs = [x509.load_pem_x509_certificate(b.encode()) for b in blocks if "CERTIFICATE" in b]
    assert len(keys) == 1 and len(certs) == 2, output
    key = load_pem_private_key(keys[0].encode(), None)
    assert key.public_key() == leaf.certificate.public_key()
    ca_certificate = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    assert set(certs) == {leaf.certificate, ca_certificate}


@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048", "ed25519"])
def test_export_bundle_is_mode_0600_and_openssl_reads_key_cert_chain_and_name(
    lab: Lab, bundles: dict[str, Bundle], openssl: OpenSSL, kind: str
) -> None:
    bundle = bundles[kind]
    assert bundle.p12.stat().st_mode & 0o777 == 0o600
    output, blocks = read_back(openssl, bundle.p12, PASSPHRASE)
    assert_bundle_holds(output, blocks, bundle.leaf, lab.ca)
    assert f"friendlyName: {bundle.name}" in output


def test_export_passphrase_file_trailing_newline_is_not_part_of_the_passphrase(
    bundles: dict[str, Bundle], openssl: OpenSSL
) -> None:
    p12 = bundles["ec-p256"].p12
    for wrong in (PASSPHRASE + "\n", "wrong passphrase"):
        result = openssl("pkcs12", "-in", p12, "-passin", "env:P", "-nodes", env={"P": wrong})
        assert result.returncode != 0, wrong
    read_back(openssl, p12, PASSPHRASE)


def test_export_by_serial_with_env_passphrase_and_default_friendly_name(
    lab: Lab, out: Path, openssl: OpenSSL
) -> None:
    leaf = lab.leaves["server"]
    serial = format(leaf.certificate.serial_number, "X")  # upper case, as a user may paste it
    p12 = out / "server.p12"
    result = minica_export(lab, serial, leaf.key, p12, env={"MINICA_P12_PASSPHRASE": PASSPHRASE})
    assert result.code == 0, result.stderr
    assert p12.stat().st_mode & 0o777 == 0o600
    output, blocks = read_back(openssl, p12, PASSPHRASE)
    assert_bundle_holds(output, blocks, leaf, lab.ca)
    assert "friendlyName: CN=www.lab.test" in output


@pytest.fixture
def keytool() -> Callable[..., subprocess.CompletedProcess[str]]:
    binary = require_tool("keytool")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        fast_start = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
        return subprocess.run(
            [binary, *fast_start, *map(str, args)], capture_output=True, text=True, timeout=60
        )

    return run


@pytest.mark.parametrize("kind", ["ec-p256", "rsa-2048", "ed25519"])
def test_keytool_lists_one_private_key_entry_with_a_chain_of_two(
    bundles: dict[str, Bundle], keytool: Callable[..., subprocess.CompletedProcess[str]], kind: str
) -> None:
    bundle = bundles[kind]
    passphrase = bundle.p12.parent / "p12.pass"
    result = keytool(
        "-list", "-v", "-keystore", bundle.p12, "-storetype", "PKCS12",
        "-storepass:file", passphrase,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Your keystore contains 1 entry" in result.stdout
    assert f"Alias name: {bundle.name.lower()}" in result.stdout  # Java lower-cases aliases
    assert "Entry type: PrivateKeyEntry" in result.stdout
    assert "Certificate chain length: 2" in result.stdout
    assert f"Owner: {bundle.leaf.certificate.subject.rfc4514_string()}" in result.stdout


def test_keytool_decrypts_the_ed25519_key_by_copying_the_entry(
    bundles: dict[str, Bundle],
    keytool: Callable[..., subprocess.CompletedProcess[str]],
    tmp_path: Path,
) -> None:
    # -list only checks the MAC and reads the certificates; copying the entry decrypts the key
    bundle = bundles["ed25519"]
    passphrase, new_passphrase = bundle.p12.parent / "p12.pass", tmp_path / "new.pass"
    new_passphrase.write_text("another passphrase\n")
    result = keytool(
        "-importkeystore", "-noprompt",
        "-srckeystore", bundle.p12, "-srcstoretype", "PKCS12", "-srcstorepass:file", passphrase,
        "-destkeystore", tmp_path / "copy.p12", "-deststoretype", "PKCS12",
        "-deststorepass:file", new_passphrase,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 entries successfully imported" in result.stdout + result.stderr


# --- export: refusals ---------------------------------------------------------------------


def test_export_without_a_passphrase_and_no_terminal_refuses_at_once(
    lab: Lab, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINICA_P12_PASSPHRASE", raising=False)
    leaf = lab.leaves["client"]
    started = time.monotonic()
    result = minica_export(lab, leaf.cert, leaf.key, out / "x.p12", stdin=b"")
    assert time.monotonic() - started < 15
    assert_refused(result, "no passphrase")
    assert "--passphrase-file" in result.stderr and "MINICA_P12_PASSPHRASE" in result.stderr
    assert list(out.iterdir()) == []


def test_export_refuses_a_key_that_does_not_belong_to_the_certificate(
    lab: Lab, out: Path, passphrase_file: Path
) -> None:
    leaf = lab.leaves["client"]
    result = minica_export(
        lab, leaf.cert, lab.leaves["rsa"].key, out / "x.p12", "--passphrase-file", passphrase_file
    )
    assert_refused(result, "does not belong to the certificate")
    assert list(out.iterdir()) == []


def test_export_never_overwrites_an_existing_file(
    lab: Lab, out: Path, passphrase_file: Path
) -> None:
    p12 = out / "x.p12"
    p12.write_bytes(b"keep me")
    leaf = lab.leaves["client"]
    result = minica_export(lab, leaf.cert, leaf.key, p12, "--passphrase-file", passphrase_file)
    assert_refused(result, str(p12), "already exists")
    assert p12.read_bytes() == b"keep me"
    assert list(out.iterdir()) == [p12]


def test_export_refuses_an_unknown_serial(lab: Lab, out: Path, passphrase_file: Path) -> None:
    leaf = lab.leaves["client"]
    result = minica_export(
        lab, "abc123", leaf.key, out / "x.p12", "--passphrase-file", passphrase_file
    )
    assert_refused(result, "no certificate with serial abc123")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("which", ["foreign", "forged"])
def test_export_refuses_a_certificate_this_ca_did_notwrite_certificate(
    lab: Lab, out: Path, passphrase_file: Path, which: str
) -> None:
    leaf: Leaf = getattr(lab, which)
    result = minica_export(
        lab, leaf.cert, leaf.key, out / "x.p12", "--passphrase-file", passphrase_file
    )
    assert_refused(result, "not issued by this CA")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"\n"], ids=["empty", "newline-only"])
def test_export_refuses_an_empty_passphrase_file(
    lab: Lab, out: Path, tmp_path: Path, content: bytes
) -> None:
    empty = tmp_path / "empty.pass"
    empty.write_bytes(content)
    leaf = lab.leaves["client"]
    result = minica_export(lab, leaf.cert, leaf.key, out / "x.p12", "--passphrase-file", empty)
    assert_refused(result, "empty passphrase")
    assert list(out.iterdir()) == []
