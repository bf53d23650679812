"""The CLI as users drive it: the CA folder it makes, the files it writes, what it prints."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from conftest import assert_refused, run_minica
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import NameOID

from minica import __version__
from minica.cli import COMMANDS

BUILT_IN = [
    "client",
    "code-signing",
    "email",
    "intermediate-ca",
    "ocsp-signing",
    "server",
    "server-client",
    "timestamping",
]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def rows(ca: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(ca / "minica.db") as registry:
        return registry.execute(
            "SELECT serial, subject, profile, contact FROM certificates ORDER BY issued_at"
        ).fetchall()


def test_init_makes_the_contract_layout(tmp_path: Path) -> None:
    ca = tmp_path / "lab"
    result = run_minica(
        "init",
        "--ca",
        ca,
        "--cn",
        "Lab Root",
        "--org",
        "Lab",
        "--country",
        "DE",
        "--path-len",
        "1",
        "--crl-url",
        "http://lab.test/crl.pem",
        "--key-type",
        "ec-p256",
        "--days",
        "30",
    )
    assert result.code == 0, result.stderr
    for name in ("ca.crt", "ca-chain.crt", "private/ca.key", "ca.yaml", "minica.db"):
        assert (ca / name).is_file(), name
    assert sorted(p.stem for p in (ca / "profiles").iterdir()) == BUILT_IN
    assert (ca / "certs").is_dir() and rows(ca) == []
    assert mode(ca / "private") == 0o700 and mode(ca / "private" / "ca.key") == 0o600
    assert (ca / "ca-chain.crt").read_bytes() == (ca / "ca.crt").read_bytes()
    assert "crl_url: http://lab.test/crl.pem" in (ca / "ca.yaml").read_text()
    assert not [p for p in ca.iterdir() if p.name.startswith(".")]  # no staging left over

    cert = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    assert cert.subject.rfc4514_string() == "CN=Lab Root,O=Lab,C=DE"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 1
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 30
    key = load_pem_private_key((ca / "private" / "ca.key").read_bytes(), None)
    assert key.public_key() == cert.public_key()


def test_bare_init_uses_ca_in_the_current_folder_and_a_unique_name(tmp_path: Path) -> None:
    assert run_minica("init", cwd=tmp_path).code == 0
    assert run_minica("init", cwd=tmp_path / "..", env={"MINICA_CA": str(tmp_path / "b")}).code == 0
    first = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    second = x509.load_pem_x509_certificate((tmp_path / "b" / "ca.crt").read_bytes())
    assert first.subject != second.subject  # two lab CAs never share a name


def test_req_writes_a_0600_key_and_a_csr_with_the_details(tmp_path: Path) -> None:
    result = run_minica(
        "req",
        "--cn",
        "www.lab.test",
        "--org",
        "Lab",
        "--ou",
        "Ops",
        "--locality",
        "Berlin",
        "--state",
        "Berlin",
        "--country",
        "DE",
        "--email",
        "ops@lab.test",
        "--dns",
        "www.lab.test",
        "--ip",
        "2001:db8::1",
        "--uri",
        "https://lab.test/",
        "--out",
        tmp_path / "www.csr",
    )
    assert result.code == 0, result.stderr
    assert mode(tmp_path / "www.key") == 0o600
    csr = x509.load_pem_x509_csr((tmp_path / "www.csr").read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=www.lab.test,OU=Ops,O=Lab,L=Berlin,ST=Berlin,C=DE"
    assert not csr.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)  # an email SAN instead
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@lab.test"]
    assert san.get_values_for_type(x509.DNSName) == ["www.lab.test"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["2001:db8::1"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://lab.test/"]
    key = load_pem_private_key((tmp_path / "www.key").read_bytes(), None)
    assert key.public_key() == csr.public_key()


def test_req_with_an_existing_key(tmp_path: Path) -> None:
    assert run_minica("req", "--cn", "a", "--out", tmp_path / "a.csr").code == 0
    result = run_minica(
        "req", "--cn", "b", "--key", tmp_path / "a.key", "--out", tmp_path / "b.csr"
    )
    assert result.code == 0, result.stderr
    first = x509.load_pem_x509_csr((tmp_path / "a.csr").read_bytes())
    second = x509.load_pem_x509_csr((tmp_path / "b.csr").read_bytes())
    assert first.public_key() == second.public_key()
    assert not (tmp_path / "b.key").exists()


def test_sign_prints_pem_records_the_row_and_summarises(ca_dir: Path, tmp_path: Path) -> None:
    before = rows(ca_dir)
    run_minica(
        "req", "--cn", "www.lab.test", "--email", "ops@lab.test", "--out", tmp_path / "r.csr"
    )
    result = run_minica("sign", "--ca", ca_dir, "--profile", "server", tmp_path / "r.csr")
    assert result.code == 0, result.stderr
    cert = x509.load_pem_x509_certificate(result.stdout.encode())
    serial = format(cert.serial_number, "x")
    assert rows(ca_dir) == [*before, (serial, "CN=www.lab.test", "server", "ops@lab.test")]
    assert (ca_dir / "certs" / f"{serial}.crt").read_text() == result.stdout
    summary = result.stderr.strip()
    assert serial in summary and "CN=www.lab.test" in summary and "server" in summary
    assert f"{cert.not_valid_after_utc:%Y-%m-%d}" in summary


def test_sign_with_out_chain_out_and_json(ca_dir: Path, tmp_path: Path) -> None:
    run_minica("req", "--cn", "api.lab.test", "--out", tmp_path / "r.csr")
    result = run_minica(
        "sign",
        "--ca",
        ca_dir,
        "-p",
        "server",
        tmp_path / "r.csr",
        "--json",
        "--out",
        tmp_path / "r.crt",
        "--chain-out",
        tmp_path / "full.crt",
        "--days",
        "10",
    )
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    cert = x509.load_pem_x509_certificate((tmp_path / "r.crt").read_bytes())
    assert info["serial"] == format(cert.serial_number, "x")
    assert info["extended_key_usage"] == [{"name": "server_auth", "oid": "1.3.6.1.5.5.7.3.1"}]
    assert info["san"] == {"dns": ["api.lab.test"], "ip": [], "email": [], "uri": []}
    # a root CA has no intermediates: the chain file is the leaf alone
    assert (tmp_path / "full.crt").read_bytes() == (tmp_path / "r.crt").read_bytes()


def test_issue_writes_key_and_certificate(ca_dir: Path, tmp_path: Path) -> None:
    result = run_minica(
        "issue",
        "--ca",
        ca_dir,
        "--profile",
        "client",
        "--cn",
        "Alice",
        "--email",
        "alice@lab.test",
        "--key-type",
        "ed25519",
        "--out",
        tmp_path / "alice.crt",
    )
    assert result.code == 0, result.stderr
    assert mode(tmp_path / "alice.key") == 0o600
    cert = x509.load_pem_x509_certificate((tmp_path / "alice.crt").read_bytes())
    key = load_pem_private_key((tmp_path / "alice.key").read_bytes(), None)
    assert cert.public_key() == key.public_key()
    assert rows(ca_dir)[-1][2:] == ("client", "alice@lab.test")


def test_show_json_has_the_contract_fields(ca_dir: Path, tmp_path: Path) -> None:
    run_minica(
        "issue",
        "--ca",
        ca_dir,
        "-p",
        "server-client",
        "--cn",
        "peer.lab.test",
        "--ip",
        "192.0.2.1",
        "--out",
        tmp_path / "peer.crt",
    )
    info = json.loads(run_minica("show", tmp_path / "peer.crt", "--json").stdout)
    cert = x509.load_pem_x509_certificate((tmp_path / "peer.crt").read_bytes())
    assert info["serial"] == format(cert.serial_number, "x")
    assert info["subject"] == "CN=peer.lab.test"
    assert info["issuer"] == cert.issuer.rfc4514_string()
    assert info["not_after"] == f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    assert info["key_type"] == "ec-p256"
    assert info["san"] == {"dns": ["peer.lab.test"], "ip": ["192.0.2.1"], "email": [], "uri": []}
    assert info["key_usage"] == ["digital_signature"]
    assert info["extended_key_usage"] == [
        {"name": "server_auth", "oid": "1.3.6.1.5.5.7.3.1"},
        {"name": "client_auth", "oid": "1.3.6.1.5.5.7.3.2"},
    ]
    assert info["basic_constraints"] == {"ca": False, "path_length": None}
    assert len(info["fingerprint_sha256"]) == 64
    by_serial = run_minica("show", info["serial"].upper(), "--ca", ca_dir, "--json")
    from_registry = json.loads(by_serial.stdout)
    assert from_registry.pop("registry")["profile"] == "server-client"
    assert from_registry == info


def test_show_text_names_the_eku_and_its_oid(ca_dir: Path) -> None:
    serial = next((ca_dir / "certs").iterdir()).stem
    result = run_minica("show", serial, "--ca", ca_dir)
    assert result.code == 0, result.stderr
    assert "1.3.6.1.5.5.7.3." in result.stdout and "extended key usage" in result.stdout


def test_show_describes_a_csr_and_lists_what_it_asked_for(tmp_path: Path) -> None:
    run_minica("req", "--cn", "x.lab.test", "--dns", "x.lab.test", "--out", tmp_path / "x.csr")
    info = json.loads(run_minica("show", tmp_path / "x.csr", "--json").stdout)
    assert info["type"] == "csr" and info["signature_valid"] is True
    assert info["san"]["dns"] == ["x.lab.test"]


def test_profiles_lists_and_shows(ca_dir: Path) -> None:
    listing = run_minica("profiles", "--ca", ca_dir)
    assert listing.code == 0, listing.stderr
    names = [line.split()[0] for line in listing.stdout.splitlines()]
    assert names == BUILT_IN
    shown = run_minica("profiles", "show", "server-client", "--ca", ca_dir)
    assert "server_auth" in shown.stdout and "client_auth" in shown.stdout
    assert str(ca_dir / "profiles" / "server-client.yaml") in shown.stdout


def test_a_profile_edited_in_the_ca_folder_wins_over_the_built_in(
    ca_dir: Path, tmp_path: Path
) -> None:
    (ca_dir / "profiles" / "server.yaml").write_text(
        "description: short-lived servers\nextends: server\nvalidity_days: 3\n"
    )
    run_minica("req", "--cn", "s.lab.test", "--out", tmp_path / "s.csr")
    result = run_minica("sign", "--ca", ca_dir, "-p", "server", tmp_path / "s.csr", "--json")
    info = json.loads(result.stdout)
    cert = x509.load_pem_x509_certificate((ca_dir / "certs" / f"{info['serial']}.crt").read_bytes())
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days == 3


def test_version_and_module_entry_point_agree(tmp_path: Path) -> None:
    module = run_minica("--version")
    assert module.code == 0 and module.stdout.strip() == f"minica {__version__}"
    script = Path(sys.executable).parent / "minica"
    console = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert console.stdout == module.stdout


def test_help_lists_every_command_with_its_summary_and_each_command_has_help() -> None:
    listing = run_minica("--help")
    assert listing.code == 0, listing.stderr
    for name, (_, _, summary) in COMMANDS.items():
        assert f"  {name} " in listing.stdout and summary in listing.stdout
        own = run_minica(name, "--help")
        assert own.code == 0 and f"minica {name} [OPTIONS]" in own.stdout, own.stderr


def test_minica_alone_prints_the_same_listing_as_help() -> None:
    alone, listing = run_minica(), run_minica("--help")
    assert alone.code == 2  # usage, as for any command missing its arguments
    assert (alone.stdout + alone.stderr).strip() == listing.stdout.strip()


def test_encrypted_ca_key_needs_its_passphrase(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse\n")
    ca = tmp_path / "ca"
    assert run_minica("init", "--ca", ca, "--passphrase-file", secret).code == 0
    assert b"ENCRYPTED PRIVATE KEY" in (ca / "private" / "ca.key").read_bytes()
    run_minica("req", "--cn", "a.lab.test", "--out", tmp_path / "a.csr")
    sign = ("sign", "--ca", ca, "-p", "server", tmp_path / "a.csr", "--out", tmp_path / "a.crt")

    assert_refused(run_minica(*sign), "encrypted", "no passphrase")
    wrong = tmp_path / "wrong"
    wrong.write_text("incorrect")
    assert_refused(run_minica(*sign, "--passphrase-file", wrong), "wrong passphrase")
    assert rows(ca) == [] and not (tmp_path / "a.crt").exists()

    assert run_minica(*sign, "--passphrase-file", secret).code == 0
    assert run_minica(*sign, env={"MINICA_CA_PASSPHRASE": "correct horse"}).code == 0
    assert len(rows(ca)) == 2
