"""Names as users and OpenSSL make them, judged end to end through the CLI and real clients:
an S/MIME CSR made the usual OpenSSL way (subject emailAddress, no SAN) under the `email`
profile, and control or formatting characters in a subject or a name, refused by `req`
and `sign` with the character shown escaped, never raw."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Result, assert_refused, run_minica, snapshot
from cryptography import x509
from cryptography.x509.oid import NameOID

OpenSSL = Callable[..., subprocess.CompletedProcess[str]]


# --- S/MIME the OpenSSL way ---------------------------------------------------------------------


@pytest.mark.tools
@pytest.mark.parametrize(
    "new_key", [("rsa:2048",), ("ec", "-pkeyopt", "ec_paramgen_curve:P-256")], ids=["rsa", "ec"]
)
def test_an_openssl_smime_csr_gets_its_subject_email_as_its_email_name(
    ca_dir: Path, tmp_path: Path, openssl: OpenSSL, new_key: tuple[str, ...]
) -> None:
    csr, key, cert = tmp_path / "alice.csr", tmp_path / "alice.key", tmp_path / "alice.crt"
    made = openssl(
        "req", "-new", "-newkey", *new_key, "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=Alice/emailAddress=alice@lab.test",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = run_minica("sign", "--ca", ca_dir, "--profile", "email", csr, "--out", cert)
    assert result.code == 0, result.stderr

    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@lab.test"]
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Alice"
    rows = json.loads(run_minica("list", "--ca", ca_dir, "--json").stdout)
    serial = format(certificate.serial_number, "x")
    assert [row["contact"] for row in rows if row["serial"] == serial] == ["alice@lab.test"]

    message, signed = tmp_path / "msg.txt", tmp_path / "msg.p7m"
    message.write_text("hello Bob\n")
    done = openssl("cms", "-sign", "-in", message, "-signer", cert, "-inkey", key, "-out", signed)
    assert done.returncode == 0, done.stderr
    done = openssl(
        "cms", "-verify", "-in", signed, "-CAfile", ca_dir / "ca.crt",
        "-purpose", "smimesign", "-out", tmp_path / "out.txt",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out.txt").read_text() == "hello Bob\n"
    done = openssl("verify", "-CAfile", ca_dir / "ca.crt", "-purpose", "smimesign", cert)
    assert (done.returncode, done.stdout) == (0, f"{cert}: OK\n"), done.stderr


@pytest.mark.tools
def test_an_openssl_csr_without_any_email_is_refused_by_the_email_profile(
    ca_dir: Path, tmp_path: Path, openssl: OpenSSL
) -> None:
    csr = tmp_path / "bob.csr"
    made = openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", tmp_path / "bob.key", "-out", csr, "-subj", "/CN=Bob",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = run_minica("sign", "--ca", ca_dir, "--profile", "email", csr)
    assert_refused(result, "profile email needs at least one email address")
    assert "--dns" not in result.stderr


# --- control and formatting characters ------------------------------------------------------

CHARACTERS = {"esc": "\x1b", "bell": "\x07", "csi": "\x9b", "rlo": "\u202e", "zwsp": "\u200b"}


def assert_refused_escaped(result: Result, character: str, *fragments: str) -> None:
    """Refused naming ``fragments``, with ``character`` shown escaped and never raw."""
    assert_refused(result, repr(character)[1:-1], *fragments)
    assert character not in result.stderr


@pytest.mark.parametrize("character", list(CHARACTERS.values()), ids=list(CHARACTERS))
@pytest.mark.parametrize(
    ("option", "template", "label"),
    [
        ("--cn", "Alice{}Smith", "subject common_name"),
        ("--org", "Lab{}Inc", "subject organization"),
        ("--dns", "www{}.lab.test", "DNS name"),
        ("--email", "alice{}@lab.test", "email address"),
        ("--uri", "https://lab.test/{}", "URI"),
    ],
)
def test_req_refuses_control_and_format_characters_showing_them_escaped(
    tmp_path: Path, option: str, template: str, label: str, character: str
) -> None:
    value = template.format(character)
    arguments = ["--cn", "alice"] if option != "--cn" else []
    result = run_minica("req", *arguments, option, value, "--out", tmp_path / "x.csr")
    assert_refused_escaped(result, character, label)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.tools
@pytest.mark.parametrize("character", ["\x1b", "\u202e"], ids=["esc", "rlo"])
def test_sign_refuses_a_csr_with_control_characters_showing_them_escaped(
    ca_dir: Path, tmp_path: Path, openssl: OpenSSL, character: str
) -> None:
    csr = tmp_path / "evil.csr"
    made = openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", tmp_path / "evil.key", "-out", csr, "-utf8",
        "-subj", f"/CN=invoice{character}fdp.exe",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    before = snapshot(ca_dir)
    result = run_minica("sign", "--ca", ca_dir, "--profile", "client", csr)
    assert_refused_escaped(result, character, "subject common_name", str(csr))
    assert snapshot(ca_dir) == before
