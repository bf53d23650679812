"""The lifecycle commands through the real CLI: list, show, revoke, crl and renew.

Every refusal is checked the same way: exit 1, one `error:` line naming the problem, and
the CA folder byte-for-byte as it was (`snapshot`).
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    OpenSSL,
    assert_refused,
    issuer_key,
    listing,
    run_minica,
    snapshot,
    write_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from minica import CertificateAuthority, Names, Subject
from minica.keys import generate
from minica.requests import build_csr
from minica.requests import load as load_request

REASONS = {
    "unspecified": None,  # RFC 5280 5.3.1: no reasonCode extension rather than "unspecified"
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
}


# ---------------------------------------------------------------- helpers


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def example(ca_dir: Path) -> dict[str, str]:
    """The example CA's two certificates: {profile: serial} ("server", "client")."""
    return {r.profile: r.serial for r in CertificateAuthority.open(ca_dir).records()}


def cert_file(ca_dir: Path, serial: str) -> Path:
    return ca_dir / "certs" / f"{serial}.crt"


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def by_serial(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["serial"]: row for row in rows}


def issue_extra(ca_dir: Path, cn: str, profile: str = "client") -> str:
    """Setup only: issue and record one more certificate in-process; its serial."""
    authority = CertificateAuthority.open(ca_dir)
    issued, _ = authority.issue(authority.profile(profile), Subject(common_name=cn))
    return format(issued.certificate.serial_number, "x")


def revoke_quietly(ca_dir: Path, serial: str, reason: str = "unspecified") -> None:
    """Setup only: revoke in-process (the CLI's `revoke` has tests of its own)."""
    CertificateAuthority.open(ca_dir).revoke(serial, reason)


def make_crl(ca_dir: Path, *options: str | Path) -> x509.CertificateRevocationList:
    result = run_minica("crl", "--ca", ca_dir, *options)
    assert result.code == 0, result.stderr
    return x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def refused_unchanged(ca_dir: Path, *args: str | Path, fragments: tuple[str, ...]) -> None:
    """Run a command that must fail: exit 1, one error line naming `fragments`, folder intact."""
    before = snapshot(ca_dir)
    assert_refused(run_minica(*args), *fragments)
    assert snapshot(ca_dir) == before


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    return CertificateAuthority.in_memory(subject=Subject(common_name="some other CA"))


def impostor(ca_dir: Path, serial: str) -> x509.Certificate:
    """A certificate with the same serial, subject and issuer name as one of ours, signed by
    another key: only the whole certificate tells it apart."""
    genuine = load_cert(cert_file(ca_dir, serial))
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        x509.CertificateBuilder()
        .subject_name(genuine.subject)
        .issuer_name(genuine.issuer)
        .serial_number(genuine.serial_number)
        .not_valid_before(genuine.not_valid_before_utc)
        .not_valid_after(genuine.not_valid_after_utc)
        .public_key(key.public_key())
        .sign(key, hashes.SHA256())
    )


# ---------------------------------------------------------------- list


def test_list_shows_every_certificate_with_status_profile_and_contact(ca_dir: Path) -> None:
    serials = example(ca_dir)
    result = run_minica("list", "--ca", ca_dir)
    assert result.code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["SERIAL", "STATUS", "NOT", "AFTER", "PROFILE", "SUBJECT", "CONTACT"]
    lines = {line.split()[0]: line for line in rows}
    assert set(lines) == {serials["server"], serials["client"]}
    server, client = lines[serials["server"]], lines[serials["client"]]
    assert server.split()[1:2] == ["valid"] and " server " in server
    assert "CN=www.example.test" in server
    assert client.split()[1:2] == ["valid"] and " client " in client
    assert client.endswith("CN=Alice Example  alice@example.test")


def test_list_json_rows_hold_the_registry_facts(ca_dir: Path) -> None:
    serials = example(ca_dir)
    rows = by_serial(listing(ca_dir))
    assert set(rows) == set(serials.values())
    for profile, serial in serials.items():
        row, certificate = rows[serial], load_cert(cert_file(ca_dir, serial))
        assert row["subject"] == certificate.subject.rfc4514_string()
        assert row["profile"] == profile
        assert row["not_after"] == certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["status"] == "valid"
    assert rows[serials["client"]]["contact"] == "alice@example.test"
    assert rows[serials["server"]]["contact"] is None


def test_list_status_selects_valid_revoked_or_all(ca_dir: Path) -> None:
    serials = example(ca_dir)
    revoke_quietly(ca_dir, serials["server"], "superseded")
    assert [r["serial"] for r in listing(ca_dir, "--status", "valid")] == [serials["client"]]
    revoked = listing(ca_dir, "--status", "revoked")
    assert [(r["serial"], r["status"]) for r in revoked] == [(serials["server"], "revoked")]
    assert listing(ca_dir, "--status", "expired") == []
    everything = listing(ca_dir, "--status", "all")
    assert everything == listing(ca_dir)
    assert {r["serial"]: r["status"] for r in everything} == {
        serials["server"]: "revoked",
        serials["client"]: "valid",
    }


def test_list_unknown_status_is_a_usage_error(ca_dir: Path) -> None:
    before = snapshot(ca_dir)
    result = run_minica("list", "--ca", ca_dir, "--status", "bogus")
    assert result.code == 2, result.stderr
    assert "--status" in result.stderr and "bogus" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(ca_dir) == before


def test_list_expiring_shows_only_valid_certificates_ending_within_the_days(
    ca_dir: Path, tmp_path: Path
) -> None:
    issued = run_minica(
        "issue",
        "--ca",
        ca_dir,
        "--profile",
        "client",
        "--cn",
        "Short Lived",
        "--days",
        "5",
        "--out",
        tmp_path / "short.crt",
    )
    assert issued.code == 0, issued.stderr
    short = format(load_cert(tmp_path / "short.crt").serial_number, "x")
    assert [r["serial"] for r in listing(ca_dir, "--expiring", "10")] == [short]
    assert listing(ca_dir, "--expiring", "3") == []
    revoke_quietly(ca_dir, short)
    assert listing(ca_dir, "--expiring", "10") == []


def old_ca_with_an_expired_certificate(tmp_path: Path) -> tuple[Path, str]:
    """A CA made 30 days ago, which issued a one-day certificate that ended 9 days ago;
    the CA folder and that certificate's serial."""
    directory = tmp_path / "old-ca"
    CertificateAuthority.init(directory, clock=lambda: now() - timedelta(days=30), days=3650)
    # the sign path of an opened CA, ten days ago
    authority = CertificateAuthority.open(directory, clock=lambda: now() - timedelta(days=10))
    old, _ = authority.issue(authority.profile("client"), Subject(common_name="Gone"), days=1)
    return directory, format(old.certificate.serial_number, "x")


def test_list_shows_an_expired_certificate_as_expired(tmp_path: Path) -> None:
    directory, expired = old_ca_with_an_expired_certificate(tmp_path)
    fresh = issue_extra(directory, "Current")
    assert cert_file(directory, expired).is_file()  # recorded: certs/ file and registry row
    rows = by_serial(listing(directory))
    assert rows[expired]["status"] == "expired" and rows[fresh]["status"] == "valid"
    assert [r["serial"] for r in listing(directory, "--status", "expired")] == [expired]
    assert [r["serial"] for r in listing(directory, "--status", "valid")] == [fresh]
    assert [r["serial"] for r in listing(directory, "--expiring", "3650")] == [fresh]


def test_list_json_list_text_and_show_agree_on_every_status(tmp_path: Path) -> None:
    # `list --json` is built by SQLite, `list` and `show` by Python: one rule for all three.
    directory, expired = old_ca_with_an_expired_certificate(tmp_path)
    valid = issue_extra(directory, "Zoë Müller 日本")  # not ASCII: JSON stays UTF-8
    revoke_quietly(directory, issue_extra(directory, "Revoked"), "superseded")
    as_json = {serial: row["status"] for serial, row in by_serial(listing(directory)).items()}
    text = run_minica("list", "--ca", directory).stdout.splitlines()[1:]  # after the header
    as_text = {line.split()[0]: line.split()[1] for line in text}
    shown = {
        serial: json.loads(run_minica("show", serial, "--ca", directory, "--json").stdout)[
            "registry"
        ]["status"]
        for serial in as_json
    }
    assert as_json == as_text == shown
    assert sorted(as_json.values()) == ["expired", "revoked", "valid"]
    assert as_json[expired] == "expired" and as_json[valid] == "valid"
    assert by_serial(listing(directory))[valid]["subject"] == "CN=Zoë Müller 日本"


def test_list_records_a_csr_email_as_contact_even_under_the_server_profile(
    ca_dir: Path, tmp_path: Path
) -> None:
    csr, crt = tmp_path / "ops.csr", tmp_path / "ops.crt"
    made = run_minica(
        "req",
        "--cn",
        "ops.example.test",
        "--dns",
        "ops.example.test",
        "--email",
        "ops@example.test",
        "--out",
        csr,
    )
    assert made.code == 0, made.stderr
    signed = run_minica("sign", "--ca", ca_dir, "--profile", "server", csr, "--out", crt)
    assert signed.code == 0, signed.stderr
    certificate = load_cert(crt)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == []  # kept out of the certificate...
    row = by_serial(listing(ca_dir))[format(certificate.serial_number, "x")]
    assert row["contact"] == "ops@example.test"  # ...but recorded
    assert row["profile"] == "server"


def test_list_without_a_ca_fails_cleanly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    refused_unchanged(tmp_path, "list", "--ca", tmp_path / "empty", fragments=("no CA",))


# ---------------------------------------------------------------- show


def spellings(serial: str) -> dict[str, str]:
    pairs = [serial[i : i + 2] for i in range(0, len(serial), 2)]
    return {
        "lower": serial,
        "upper": serial.upper(),
        "leading-zeros": "00" + serial,
        "colons": ":".join(pairs),
        "upper-colons-leading-zero": "00:" + ":".join(pairs).upper(),
    }


@pytest.mark.parametrize("form", list(spellings("ab")))
def test_show_finds_a_serial_in_every_spelling(ca_dir: Path, form: str) -> None:
    serial = example(ca_dir)["server"]
    result = run_minica("show", spellings(serial)[form], "--ca", ca_dir, "--json")
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["serial"] == serial
    assert info["registry"]["serial"] == serial


def test_show_serial_gives_the_registry_facts_in_text_and_json(ca_dir: Path) -> None:
    serial = example(ca_dir)["client"]
    text = run_minica("show", serial, "--ca", ca_dir)
    assert text.code == 0, text.stderr
    registry_line = next(line for line in text.stdout.splitlines() if "registry:" in line)
    assert registry_line.split("registry:")[1].strip() == (
        "valid, profile client, contact alice@example.test"
    )
    revoke_quietly(ca_dir, serial, "affiliation-changed")
    shown = run_minica("show", serial, "--ca", ca_dir, "--json")
    assert shown.code == 0, shown.stderr
    registry = json.loads(shown.stdout)["registry"]
    assert registry["status"] == "revoked"
    assert registry["profile"] == "client"
    assert registry["contact"] == "alice@example.test"
    assert registry["revocation_reason"] == "affiliation-changed"
    assert registry["revoked_at"] is not None


@pytest.mark.parametrize(
    ("argument", "named"),
    [
        ("deadbeef", "deadbeef"),
        ("not-a-serial", "not-a-serial: no such file, and not a serial number"),
    ],
    ids=["unknown-serial", "not-a-serial"],
)
def test_show_unknown_serial_is_a_clear_error(ca_dir: Path, argument: str, named: str) -> None:
    refused_unchanged(ca_dir, "show", argument, "--ca", ca_dir, fragments=(named,))


@pytest.mark.parametrize("der", [False, True], ids=["pem", "der"])
def test_show_describes_a_crl_file(ca_dir: Path, tmp_path: Path, der: bool) -> None:
    serial = example(ca_dir)["server"]
    revoke_quietly(ca_dir, serial, "key-compromise")
    out = tmp_path / ("list.crl" if der else "list.pem")
    made = run_minica("crl", "--ca", ca_dir, "--out", out, *(["--der"] if der else []))
    assert made.code == 0, made.stderr
    shown = run_minica("show", out, "--json")
    assert shown.code == 0, shown.stderr
    info = json.loads(shown.stdout)
    assert info["type"] == "crl"
    assert info["issuer"] == load_cert(ca_dir / "ca.crt").subject.rfc4514_string()
    assert info["crl_number"] == 1
    assert [(r["serial"], r["reason"]) for r in info["revoked"]] == [(serial, "key-compromise")]


# ---------------------------------------------------------------- revoke


def test_revoke_by_serial_marks_only_that_row_revoked(ca_dir: Path) -> None:
    serials = example(ca_dir)
    before = now()
    result = run_minica("revoke", "--ca", ca_dir, serials["server"].upper())
    assert result.code == 0, result.stderr
    assert serials["server"] in result.stderr
    rows = by_serial(listing(ca_dir))
    server = rows[serials["server"]]
    assert server["status"] == "revoked"
    assert server["revocation_reason"] == "unspecified"
    assert before <= datetime.fromisoformat(server["revoked_at"].replace("Z", "+00:00")) <= now()
    assert rows[serials["client"]]["status"] == "valid"
    assert rows[serials["client"]]["revoked_at"] is None


def test_revoke_by_certificate_file(ca_dir: Path, tmp_path: Path) -> None:
    serial = example(ca_dir)["client"]
    copy = tmp_path / "alice.crt"
    copy.write_bytes(cert_file(ca_dir, serial).read_bytes())
    result = run_minica("revoke", "--ca", ca_dir, copy, "--reason", "superseded")
    assert result.code == 0, result.stderr
    row = by_serial(listing(ca_dir))[serial]
    assert (row["status"], row["revocation_reason"]) == ("revoked", "superseded")


def test_each_revocation_reason_reaches_the_crl(ca_dir: Path) -> None:
    serials = {
        # ca-compromise is for CA certificates only (RFC 5280 5.3.1)
        reason: issue_extra(
            ca_dir,
            f"revoked for {reason}",
            "intermediate-ca" if reason == "ca-compromise" else "client",
        )
        for reason in REASONS
    }
    for reason, serial in serials.items():
        result = run_minica("revoke", "--ca", ca_dir, serial, "--reason", reason)
        assert result.code == 0, result.stderr
        assert f"({reason})" in result.stderr
    rows = by_serial(listing(ca_dir, "--status", "revoked"))
    assert {rows[s]["revocation_reason"] for s in serials.values()} == set(REASONS)
    crl = make_crl(ca_dir)
    for reason, serial in serials.items():
        entry = crl.get_revoked_certificate_by_serial_number(int(serial, 16))
        assert entry is not None, reason
        assert entry_reason(entry) == REASONS[reason], reason
        assert (
            entry.revocation_date_utc.strftime("%Y-%m-%dT%H:%M:%SZ") == rows[serial]["revoked_at"]
        )


def test_ca_compromise_is_refused_for_a_leaf(ca_dir: Path) -> None:
    serial = example(ca_dir)["server"]
    refused_unchanged(
        ca_dir,
        "revoke",
        "--ca",
        ca_dir,
        serial,
        "--reason",
        "ca-compromise",
        fragments=("ca-compromise is for CA certificates",),
    )


def test_revoke_unknown_serial_is_refused(ca_dir: Path) -> None:
    refused_unchanged(ca_dir, "revoke", "--ca", ca_dir, "deadbeef", fragments=("deadbeef",))


def test_revoke_twice_is_refused(ca_dir: Path) -> None:
    serial = example(ca_dir)["server"]
    revoke_quietly(ca_dir, serial, "key-compromise")
    refused_unchanged(
        ca_dir, "revoke", "--ca", ca_dir, serial, fragments=(serial, "already revoked")
    )
    assert by_serial(listing(ca_dir))[serial]["revocation_reason"] == "key-compromise"


def test_revoke_unknown_reason_is_refused(ca_dir: Path) -> None:
    serial = example(ca_dir)["server"]
    before = snapshot(ca_dir)
    result = run_minica("revoke", "--ca", ca_dir, serial, "--reason", "stolen-laptop")
    assert result.code == 2  # an unknown option value is a usage error
    assert "'stolen-laptop' is not one of" in result.stderr and "key-compromise" in result.stderr
    assert snapshot(ca_dir) == before


def test_revoke_certificate_of_another_ca_is_refused(
    ca_dir: Path, tmp_path: Path, other_ca: CertificateAuthority
) -> None:
    foreign, _ = write_certificate(other_ca, "client", tmp_path, "foreign", "Mallory")
    serial = format(load_cert(foreign).serial_number, "x")
    refused_unchanged(
        ca_dir, "revoke", "--ca", ca_dir, foreign, fragments=(serial, "not issued by this CA")
    )


def test_revoke_impostor_with_one_of_our_serials_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    serial = example(ca_dir)["server"]
    fake = tmp_path / "fake.crt"
    fake.write_bytes(impostor(ca_dir, serial).public_bytes(Encoding.PEM))
    refused_unchanged(
        ca_dir, "revoke", "--ca", ca_dir, fake, fragments=(serial, "not issued by this CA")
    )


def test_revoke_the_ca_certificate_itself_is_refused(ca_dir: Path) -> None:
    refused_unchanged(
        ca_dir, "revoke", "--ca", ca_dir, ca_dir / "ca.crt", fragments=("not issued by this CA",)
    )


# ---------------------------------------------------------------- crl


def test_crl_is_written_to_the_ca_folder_and_signed_by_the_ca(ca_dir: Path) -> None:
    serials = example(ca_dir)
    revoke_quietly(ca_dir, serials["server"], "key-compromise")
    started = now()
    crl = make_crl(ca_dir)
    finished = now()
    ca = load_cert(ca_dir / "ca.crt")
    assert crl.is_signature_valid(issuer_key(ca))
    assert crl.issuer == ca.subject
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert crl_number(crl) >= 1
    assert started <= crl.last_update_utc <= finished
    assert crl.next_update_utc == crl.last_update_utc + timedelta(days=7)
    assert [format(e.serial_number, "x") for e in crl] == [serials["server"]]
    assert entry_reason(next(iter(crl))) == x509.ReasonFlags.key_compromise


def test_crl_numbers_grow_across_runs_and_output_forms(ca_dir: Path, tmp_path: Path) -> None:
    first = crl_number(make_crl(ca_dir))
    second = make_crl(ca_dir, "--days", "30")
    assert second.next_update_utc == second.last_update_utc + timedelta(days=30)
    der = run_minica("crl", "--ca", ca_dir, "--der", "--out", tmp_path / "crl.der")
    assert der.code == 0, der.stderr
    data = (tmp_path / "crl.der").read_bytes()
    assert not data.startswith(b"-----")
    third = crl_number(x509.load_der_x509_crl(data))
    fourth = crl_number(make_crl(ca_dir))
    assert first < crl_number(second) < third < fourth


@pytest.mark.parametrize("days", ["0", "-1"])
def test_crl_without_positive_days_is_refused(ca_dir: Path, days: str) -> None:
    # The refusal must not use up a CRL number either: the registry stays as it was.
    refused_unchanged(ca_dir, "crl", "--ca", ca_dir, "--days", days, fragments=(days, "days"))
    assert not (ca_dir / "crl.pem").exists()


def test_crl_to_a_missing_folder_is_refused(ca_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "crl.pem"
    refused_unchanged(ca_dir, "crl", "--ca", ca_dir, "--out", target, fragments=(str(target),))


def test_crl_without_a_ca_fails_cleanly(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    refused_unchanged(tmp_path, "crl", "--ca", empty, fragments=("no CA", str(empty)))
    assert list(empty.iterdir()) == []


def test_openssl_rejects_a_revoked_certificate_and_accepts_a_valid_one(
    ca_dir: Path, openssl: OpenSSL
) -> None:
    serials = example(ca_dir)
    revoke_quietly(ca_dir, serials["server"], "key-compromise")
    make_crl(ca_dir)
    check = ("verify", "-crl_check", "-CRLfile", ca_dir / "crl.pem", "-CAfile", ca_dir / "ca.crt")
    revoked = openssl(*check, cert_file(ca_dir, serials["server"]))
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr
    valid = openssl(*check, cert_file(ca_dir, serials["client"]))
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert valid.stdout.strip().endswith(": OK")


def lint_crl(path: Path, profile: str) -> dict[str, str]:
    """pkilint's CRL linter in-process: {finding code: severity} at WARNING and above."""
    linter = pytest.importorskip("pkilint.bin.lint_crl", reason="pkilint comes with the test extra")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        linter.main(["lint", "-t", "CRL", "-p", profile, "-s", "WARNING", "-f", "JSON", str(path)])
    results = json.loads(output.getvalue())["results"]
    return {f["code"]: f["severity"] for r in results for f in r["finding_descriptions"]}


@pytest.mark.parametrize("profile", ["BR", "PKIX"])
def test_crl_with_several_entries_passes_pkilint(ca_dir: Path, profile: str) -> None:
    serials = example(ca_dir)
    revoke_quietly(ca_dir, serials["server"], "key-compromise")
    revoke_quietly(ca_dir, serials["client"], "cessation-of-operation")
    for reason in ("unspecified", "superseded", "affiliation-changed"):
        revoke_quietly(ca_dir, issue_extra(ca_dir, f"lint {reason}"), reason)
    assert len(make_crl(ca_dir)) == 5
    found = lint_crl(ca_dir / "crl.pem", profile)
    assert {code for code, severity in found.items() if severity in ("ERROR", "FATAL")} == set()


# ---------------------------------------------------------------- renew


def test_renew_keeps_subject_names_key_and_profile(ca_dir: Path, tmp_path: Path) -> None:
    old_serial = example(ca_dir)["server"]
    result = run_minica("renew", "--ca", ca_dir, old_serial, "--out", tmp_path / "new.crt")
    assert result.code == 0, result.stderr
    old, new = load_cert(cert_file(ca_dir, old_serial)), load_cert(tmp_path / "new.crt")
    assert new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert new.issuer == old.issuer
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert new.public_key().public_bytes(*spki) == old.public_key().public_bytes(*spki)
    for kind in (x509.SubjectAlternativeName, x509.ExtendedKeyUsage, x509.KeyUsage):
        assert (
            new.extensions.get_extension_for_class(kind).value
            == old.extensions.get_extension_for_class(kind).value
        ), kind
    ca = load_cert(ca_dir / "ca.crt")
    new.verify_directly_issued_by(ca)
    new_serial = format(new.serial_number, "x")
    assert cert_file(ca_dir, new_serial).read_bytes() == (tmp_path / "new.crt").read_bytes()
    rows = by_serial(listing(ca_dir))
    assert rows[old_serial]["status"] == "valid"
    assert rows[new_serial]["status"] == "valid"
    assert rows[new_serial]["renewed_from"] == old_serial
    assert rows[new_serial]["profile"] == "server"


def test_renew_by_file_with_days_keeps_the_contact(ca_dir: Path) -> None:
    old_serial = example(ca_dir)["client"]
    result = run_minica("renew", "--ca", ca_dir, cert_file(ca_dir, old_serial), "--days", "30")
    assert result.code == 0, result.stderr
    new = x509.load_pem_x509_certificate(result.stdout.encode())
    lifetime = new.not_valid_after_utc - new.not_valid_before_utc
    assert timedelta(days=30) <= lifetime <= timedelta(days=30, minutes=2)
    row = by_serial(listing(ca_dir))[format(new.serial_number, "x")]
    assert row["renewed_from"] == old_serial
    assert row["contact"] == "alice@example.test"
    assert row["profile"] == "client"


def test_renew_keeps_a_contact_the_profile_kept_out_of_the_certificate(ca_dir: Path) -> None:
    authority = CertificateAuthority.open(ca_dir)
    names = Names.parse(dns=["ops.example.test"], email=["ops@example.test"])
    csr = build_csr(generate("ec-p256"), Subject(common_name="ops.example.test"), names)
    issued = authority.sign(load_request(csr, "ops.csr"), authority.profile("server"))
    old_serial = format(issued.certificate.serial_number, "x")
    result = run_minica("renew", "--ca", ca_dir, old_serial)
    assert result.code == 0, result.stderr
    new_serial = format(x509.load_pem_x509_certificate(result.stdout.encode()).serial_number, "x")
    row = by_serial(listing(ca_dir))[new_serial]
    assert (row["contact"], row["renewed_from"]) == ("ops@example.test", old_serial)


def test_renew_revoked_certificate_is_refused(ca_dir: Path) -> None:
    serial = example(ca_dir)["server"]
    revoke_quietly(ca_dir, serial, "key-compromise")
    refused_unchanged(ca_dir, "renew", "--ca", ca_dir, serial, fragments=(serial, "revoked"))


def test_renew_unknown_serial_is_refused(ca_dir: Path) -> None:
    refused_unchanged(ca_dir, "renew", "--ca", ca_dir, "deadbeef", fragments=("deadbeef",))


def test_renew_certificate_of_another_ca_is_refused(
    ca_dir: Path, tmp_path: Path, other_ca: CertificateAuthority
) -> None:
    foreign, _ = write_certificate(
        other_ca, "server", tmp_path, "foreign", "www.example.test", dns=["www.example.test"]
    )
    serial = format(load_cert(foreign).serial_number, "x")
    refused_unchanged(
        ca_dir, "renew", "--ca", ca_dir, foreign, fragments=(serial, "not issued by this CA")
    )


def test_renew_with_zero_days_is_refused(ca_dir: Path) -> None:
    serial = example(ca_dir)["server"]
    refused_unchanged(ca_dir, "renew", "--ca", ca_dir, serial, "--days", "0", fragments=("0 days",))


def test_list_expiring_refuses_negative_days_and_takes_huge_ones(ca_dir: Path) -> None:
    negative = run_minica("list", "--ca", ca_dir, "--expiring", "-3")
    assert negative.code == 2 and "--expiring" in negative.stderr, negative.stderr
    revoked = run_minica("list", "--ca", ca_dir, "--status", "revoked", "--expiring", "100")
    assert revoked.code == 2 and "does not go with --status revoked" in revoked.stderr
    huge = run_minica("list", "--ca", ca_dir, "--expiring", "99999999999", "--json")
    assert huge.code == 0, huge.stderr
    assert {row["status"] for row in json.loads(huge.stdout)} == {"valid"}
