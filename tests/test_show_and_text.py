"""`show`, `list` and the signing summary: safe on a terminal, and never a traceback.

Text from certificates (also ones made elsewhere), CSRs, CRLs and the registry is escaped
in every human output; a field cryptography cannot read is described as unreadable while
the rest is shown; a chain file shows each certificate; a certificate says whether it is
valid now. Broken inputs are real bytes, edited with tests/der.py.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import der
import pytest
from conftest import assert_refused, copy_ca
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from in_process import run_in_process

from minica import CertificateAuthority, FixtureCA, Names, Subject, Urls
from minica.constraints import NameConstraints
from minica.describe import describe, to_text
from minica.formats import printable, terminal_safe_json
from minica.issuer import Issued

UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
FORGED = "a\nregistry: valid, profile server\x1b[2K\u202etxt.exe"  # a line, an escape, a bidi
KEY_USAGE, EXTENDED_KEY_USAGE, BASIC_CONSTRAINTS = "2.5.29.15", "2.5.29.37", "2.5.29.19"
SAN, NAME_CONSTRAINTS, CRL_POINTS, INFO_ACCESS = (
    "2.5.29.17",
    "2.5.29.30",
    "2.5.29.31",
    ("1.3.6.1.5.5.7.1.1"),
)
CRL_NUMBER, CRL_REASON = "2.5.29.20", "2.5.29.21"
EC_PUBLIC_KEY, ECDSA_SHA384 = "1.2.840.10045.2.1", "1.2.840.10045.4.3.3"
NOW = datetime.now(timezone.utc)


def is_safe(text: str) -> bool:
    """No character that may act on a terminal, but the newlines that end lines."""
    return all(c == "\n" or unicodedata.category(c) not in UNSAFE for c in text)


def unescape(text: str) -> str:
    """printable's inverse: \\xHH, \\uHHHH, \\UHHHHHHHH and \\\\; any other backslash is itself."""
    escape = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})")
    return escape.sub(lambda m: "\\" if m[1] == "\\" else chr(int(m[1][1:], 16)), text)


# ---------------------------------------------------------------- the escaping function


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("line\nforged", "line\\x0aforged"),
        ("\r\t\x00", "\\x0d\\x09\\x00"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x7f\x85\x9b", "\\x7f\\x85\\x9b"),  # DEL, C1 NEL and CSI
        ("abc\u202edef\u202c", "abc\\u202edef\\u202c"),  # right-to-left override, pop
        (
            "\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
            "\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c",
        ),
        ("zero\u200bwidth\u200d\ufeff\u00ad", "zero\\u200bwidth\\u200d\\ufeff\\xad"),
        ("\u2028\u2029", "\\u2028\\u2029"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("O=DigiCert\\, Inc.", "O=DigiCert\\, Inc."),  # RFC 4514's escapes stay as they are
        ("literal \\x1b", "literal \\\\x1b"),  # but a backslash that reads as one is doubled
        ("\\\\", "\\\\\\"),  # two: the first before a backslash, the second alone
        ("\\\x1b", "\\\\\\x1b"),  # a backslash before an escaped ESC
        ("\\u202e\\U0001 \\", "\\\\u202e\\\\U0001 \\"),
    ],
)
def test_printable_escapes_what_acts_on_a_terminal(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert unescape(shown) == text


@pytest.mark.parametrize(
    "text", ["CN=www.example.test", "Zoë Müller", "山田\u3000太郎", "Ελλάδα", "🔐 lab", "a b"]
)
def test_printable_keeps_the_letters_and_spaces_of_every_script(text: str) -> None:
    assert printable(text) == text


@settings(max_examples=300, deadline=None)
@given(st.text() | st.text(alphabet="\\xuU0123456789abcdef\x1b\u202e,", max_size=12))
def test_printable_output_is_safe_and_reads_back(text: str) -> None:
    # the second alphabet: backslashes next to what an escape is made of
    shown = printable(text)
    assert all(unicodedata.category(c) not in UNSAFE for c in shown)
    assert unescape(shown) == text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(), max_size=3))
def test_terminal_safe_json_is_the_same_json_value_with_nothing_raw(values: list[str]) -> None:
    document = terminal_safe_json(json.dumps(values, ensure_ascii=False))
    assert json.loads(document) == values
    assert is_safe(document)


# ---------------------------------------------------------------- a CA, and things made elsewhere


@dataclass(frozen=True)
class Lab:
    ca: Path
    leaf: Path  # a server certificate (PEM) with SAN, KU, EKU, BC, CDP and AIA
    client_serial: str
    crl: Path  # DER, one entry with a reason
    csr: Path  # DER, asking for a SAN and more


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    work = tmp_path_factory.mktemp("show")
    authority = CertificateAuthority.init(
        work / "ca",
        subject=Subject(common_name="Show Test Root"),
        urls=Urls(crl="http://ca.example.test/crl", ocsp="http://ca.example.test/ocsp"),
        name_constraints=NameConstraints.parse(dns=["example.test"]),
    )
    leaf, _ = authority.issue(
        authority.profile("server"), Subject(common_name="www.example.test"), Names.parse()
    )
    client, _ = authority.issue(
        authority.profile("client"),
        Subject(common_name="Alice"),
        Names.parse(email=["alice@example.test"]),
    )
    (work / "leaf.pem").write_bytes(leaf.pem)
    authority.revoke(format(client.certificate.serial_number, "x"), "key-compromise")
    (work / "crl.der").write_bytes(authority.crl().public_bytes(Encoding.DER))
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "req.example.test")]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("req.example.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    (work / "req.der").write_bytes(csr.public_bytes(Encoding.DER))
    return Lab(
        work / "ca",
        work / "leaf.pem",
        format(client.certificate.serial_number, "x"),
        work / "crl.der",
        work / "req.der",
    )


def made_elsewhere(
    subject: str,
    *,
    san: list[x509.GeneralName] | None = None,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=30),
) -> x509.Certificate:
    """A self-signed certificate built with cryptography alone, holding any text."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256())


def as_pem(data: bytes, label: str) -> bytes:
    body = base64.encodebytes(data).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def shown(path: Path, *more: str) -> tuple[str, Any]:
    """`show PATH` as text and as parsed JSON, both of which must succeed."""
    text, as_json = run_in_process("show", path, *more), run_in_process("show", path, "--json")
    assert (text.code, as_json.code) == (0, 0), (text.stderr, as_json.stderr)
    return text.stdout, json.loads(as_json.stdout)


# ---------------------------------------------------------------- escaping in every human output


def test_show_escapes_the_subject_and_names_of_a_certificate_made_elsewhere(
    tmp_path: Path,
) -> None:
    certificate = made_elsewhere(
        FORGED,
        san=[
            x509.DNSName("www.example.test\nvalidity: valid now"),
            x509.UniformResourceIdentifier("https://x.test/\x1b]0;title\x07"),
        ],
    )
    path = tmp_path / "elsewhere.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    text, info = shown(path)
    assert is_safe(text)
    lines = text.splitlines()
    assert not any(line.startswith(("registry:", "validity:")) for line in lines)
    escaped = "CN=a\\x0aregistry: valid\\, profile server\\x1b[2K\\u202etxt.exe"
    assert [line for line in lines if "registry:" in line] == [
        f"  subject:              {escaped}",
        f"  issuer:               {escaped}",
    ]
    assert "DNS:www.example.test\\x0avalidity: valid now" in text
    assert "URI:https://x.test/\\x1b]0;title\\x07" in text
    # JSON: the exact text, escaped by JSON itself; ASCII only, so no bidi character raw
    assert info["subject"] == certificate.subject.rfc4514_string()
    assert run_in_process("show", path, "--json").stdout.isascii()


def test_show_escapes_a_csr_and_a_crl_made_elsewhere(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, FORGED)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(name)
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    for item, file in ((csr, "forged.csr"), (crl, "forged.crl")):
        (tmp_path / file).write_bytes(item.public_bytes(Encoding.PEM))
        text, _ = shown(tmp_path / file)
        assert is_safe(text) and "\\x0aregistry: valid" in text
        assert len(text.splitlines()) == len(to_text([describe(item)], NOW).splitlines())


def test_list_and_show_escape_what_the_registry_holds(lab: Lab, tmp_path: Path) -> None:
    # The registry is the CA's own, but its text came from CSRs: list must not replay it.
    ca = copy_ca(lab.ca, tmp_path / "ca")
    contact = "x@example.test\u2066\n0000  valid"
    with sqlite3.connect(ca / "minica.db") as registry:
        registry.execute(
            "UPDATE certificates SET subject = ?, contact = ? WHERE serial = ?",
            (FORGED, contact, lab.client_serial),
        )
    listed = run_in_process("list", "--ca", ca)
    assert listed.code == 0, listed.stderr
    assert is_safe(listed.stdout)
    rows = listed.stdout.splitlines()[1:]
    assert len(rows) == 2  # nothing forged
    (row,) = [row for row in rows if row.startswith(lab.client_serial)]
    assert row.endswith(f"{printable(FORGED)}  {printable(contact)}")
    as_json = run_in_process("list", "--ca", ca, "--json")
    assert is_safe(as_json.stdout)
    by_serial = {row["serial"]: row for row in json.loads(as_json.stdout)}
    assert by_serial[lab.client_serial]["subject"] == FORGED  # the same value, escaped as JSON
    assert by_serial[lab.client_serial]["contact"] == contact
    shown_by_serial = run_in_process("show", lab.client_serial, "--ca", ca)
    assert shown_by_serial.code == 0, shown_by_serial.stderr
    assert is_safe(shown_by_serial.stdout)
    assert f"contact {printable(contact)}" in shown_by_serial.stdout


def test_the_signing_summary_escapes_subject_and_profile() -> None:
    issued = Issued(made_elsewhere(FORGED), profile="server\x1b[0m", contact=None)
    assert is_safe(issued.summary) and "\n" not in issued.summary
    assert "CN=a\\x0aregistry: valid\\, profile server\\x1b[2K\\u202etxt.exe" in issued.summary
    assert "profile server\\x1b[0m," in issued.summary


# ---------------------------------------------------------------- broken fields: unreadable


def edited_leaf(lab: Lab, edit: Any) -> bytes:
    """The lab's server certificate as DER, changed by ``edit`` (DER in, DER out)."""
    certificate = x509.load_pem_x509_certificate(lab.leaf.read_bytes())
    return bytes(edit(certificate.public_bytes(Encoding.DER)))


def garbled(oid: str) -> Any:
    """An edit that makes extension ``oid``'s value a BOOLEAN, which no extension is."""
    return lambda data: der.set_extension_value(data, oid, b"\x01\x01\xff")


def bad_utf8_subject(data: bytes) -> bytes:
    tree = der.parse(data)
    subject = tree.child(0).child(5)  # TBSCertificate: version, serial, algorithm, issuer,
    # validity, subject
    for _, node in subject.walk():
        if node.tag == 0x0C:  # UTF8String
            node.content = b"www\xff"
    return tree.encode()


@pytest.mark.parametrize(
    ("edit", "unreadable", "reason"),
    [
        (lambda d: der.duplicate_extension(d, BASIC_CONSTRAINTS), ["basic_constraints"], "2 times"),
        (lambda d: der.duplicate_extension(d, SAN), ["san"], "appears 2 times"),
        (garbled(KEY_USAGE), ["key_usage"], "error parsing"),
        (garbled(EXTENDED_KEY_USAGE), ["extended_key_usage", "extended_key_usage_critical"], ""),
        (garbled(BASIC_CONSTRAINTS), ["basic_constraints"], "error parsing"),
        (garbled(SAN), ["san"], "error parsing"),
        # an IP address of three octets
        (
            lambda d: der.set_extension_value(d, SAN, bytes.fromhex("30058703010203")),
            ["san"],
            "IPv4 or IPv6",
        ),
        (garbled(CRL_POINTS), ["crl_urls"], ""),
        (garbled(INFO_ACCESS), ["ocsp_urls", "issuer_urls"], ""),
        (lambda d: der.replace_oid(d, EC_PUBLIC_KEY, "1.2.3.4.5"), ["key_type"], "1.2.3.4.5"),
        (bad_utf8_subject, ["subject", "self_signed"], "error parsing"),
    ],
)
def test_show_describes_a_field_it_cannot_read_as_unreadable_and_shows_the_rest(
    lab: Lab, tmp_path: Path, edit: Any, unreadable: list[str], reason: str
) -> None:
    path = tmp_path / "broken.der"
    path.write_bytes(edited_leaf(lab, edit))
    text, info = shown(path)
    assert sorted(info["unreadable"]) == sorted(unreadable)
    assert all(info[field] is None for field in unreadable)
    assert reason in info["unreadable"][unreadable[0]]
    assert info["serial"] and info["not_after"] and info["fingerprint_sha256"]  # the rest is read
    readable = {"subject", "key_type", "san", "key_usage", "basic_constraints"} - set(unreadable)
    assert all(info[field] is not None for field in readable)
    assert "unreadable: " in text and "validity:" in text
    assert is_safe(text)
    original = describe(x509.load_pem_x509_certificate(lab.leaf.read_bytes()))
    kept = set(original) - set(unreadable) - {"fingerprint_sha256", "self_signed"}
    assert {key: info[key] for key in kept} == {key: original[key] for key in kept}


def test_show_names_an_unknown_signature_algorithm_by_its_oid(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "odd.der"
    path.write_bytes(edited_leaf(lab, lambda d: der.replace_oid(d, ECDSA_SHA384, "1.2.3.4.6")))
    text, info = shown(path)
    assert info["signature_algorithm"] == "1.2.3.4.6" and "unreadable" not in info
    assert "signature algorithm:  1.2.3.4.6" in text


def test_show_name_constraints_garbled_in_a_ca_certificate(lab: Lab, tmp_path: Path) -> None:
    ca = x509.load_pem_x509_certificate((lab.ca / "ca.crt").read_bytes())
    assert describe(ca)["name_constraints"] == {"dns": ["example.test"], "ip": [], "email": []}
    path = tmp_path / "ca.der"
    path.write_bytes(garbled(NAME_CONSTRAINTS)(ca.public_bytes(Encoding.DER)))
    text, info = shown(path)
    assert list(info["unreadable"]) == ["name_constraints"]
    assert info["basic_constraints"] == {"ca": True, "path_length": None}
    assert "name constraints:     unreadable: " in text


def test_show_a_csr_with_broken_parts(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "req.der"
    path.write_bytes(der.duplicate_extension(lab.csr.read_bytes(), SAN))
    _, info = shown(path)
    assert list(info["unreadable"]) == ["san"]
    assert info["requested_extensions"] == ["basicConstraints"]
    path.write_bytes(garbled(BASIC_CONSTRAINTS)(lab.csr.read_bytes()))
    _, info = shown(path)
    assert "unreadable" not in info and info["san"]["dns"] == ["req.example.test"]
    path.write_bytes(der.replace_oid(lab.csr.read_bytes(), "1.2.840.10045.4.3.2", "1.2.3.4.7"))
    text, info = shown(path)
    assert (info["signature_valid"], info["signature_algorithm"]) == (False, "1.2.3.4.7")
    assert "signature valid:      no" in text
    path.write_bytes(der.replace_oid(lab.csr.read_bytes(), EC_PUBLIC_KEY, "1.2.3.4.8"))
    text, info = shown(path)
    assert sorted(info["unreadable"]) == ["key_type", "signature_valid"]
    assert "1.2.3.4.8" in info["unreadable"]["key_type"]
    assert "signature valid:      unreadable: " in text


@pytest.mark.parametrize(("within", "what"), [(0, "CSR"), (None, "X509")])
def test_show_refuses_a_version_that_does_not_exist(
    lab: Lab, tmp_path: Path, within: int | None, what: str
) -> None:
    if within is None:
        data = der.set_first_integer(edited_leaf(lab, bytes), 5)
    else:
        data = der.set_first_integer(lab.csr.read_bytes(), 5, within)
    path = tmp_path / "v5.der"
    path.write_bytes(data)
    result = run_in_process("show", path)
    assert_refused(result, f"{path}: 5 is not a valid {what} version")
    pem = tmp_path / "v5.pem"
    pem.write_bytes(as_pem(data, "CERTIFICATE REQUEST" if what == "CSR" else "CERTIFICATE"))
    assert_refused(run_in_process("show", pem), f"{pem}: 5 is not a valid {what} version")


def test_show_a_crl_with_odd_or_missing_extensions(lab: Lab, tmp_path: Path) -> None:
    path = tmp_path / "crl.der"
    path.write_bytes(garbled(CRL_NUMBER)(lab.crl.read_bytes()))
    text, info = shown(path)
    assert list(info["unreadable"]) == ["crl_number"]
    assert [entry["reason"] for entry in info["revoked"]] == ["key-compromise"]
    assert "crl number:           unreadable: " in text
    path.write_bytes(garbled(CRL_REASON)(lab.crl.read_bytes()))
    text, info = shown(path)
    (entry,) = info["revoked"]
    assert entry["reason"] is None and list(entry["unreadable"]) == ["reason"]
    assert entry["serial"] == lab.client_serial and "unreadable" not in info
    assert f"{lab.client_serial} at {entry['revoked_at']} (reason unreadable: " in text
    key = ec.generate_private_key(ec.SECP256R1())
    bare = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere")]))
        .last_update(NOW)
        .next_update(NOW + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(bare.public_bytes(Encoding.DER))
    text, info = shown(path)
    assert info["crl_number"] is None and info["revoked"] == [] and "unreadable" not in info
    assert "crl number" not in text


# ---------------------------------------------------------------- chains and validity


def test_show_of_a_chain_file_shows_each_certificate_in_order(tmp_path: Path) -> None:
    root = FixtureCA(CertificateAuthority.in_memory(subject=Subject(common_name="Chain Root")))
    issuing = root.intermediate(subject=Subject(common_name="Chain Issuing"))
    leaf = issuing.certify("www.example.test")
    chain = tmp_path / "fullchain.pem"
    chain.write_bytes(leaf.chain_pem + root.certificate.public_bytes(Encoding.PEM))
    text, infos = shown(chain)
    assert [info["subject"] for info in infos] == [
        "CN=www.example.test",
        "CN=Chain Issuing",
        "CN=Chain Root",
    ]
    singles = [leaf.certificate, issuing.certificate, root.certificate]
    assert infos == [describe(certificate) for certificate in singles]
    headings = [line for line in text.splitlines() if line.startswith("Certificate")]
    assert headings == ["Certificate 1 of 3", "Certificate 2 of 3", "Certificate 3 of 3"]
    assert text.count("validity:             valid now") == 3
    # One certificate: the one object, as the contract has it (PEM or DER)
    single = tmp_path / "leaf.der"
    single.write_bytes(leaf.certificate.public_bytes(Encoding.DER))
    text, info = shown(single)
    assert isinstance(info, dict) and info["subject"] == "CN=www.example.test"
    assert text.startswith("Certificate\n")


def test_show_of_a_chain_passes_over_keys_and_names_a_corrupt_block(tmp_path: Path) -> None:
    leaf = FixtureCA().certify("www.example.test")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(leaf.private_key_pem + leaf.certificate_pem)
    _, info = shown(bundle)
    assert info["subject"] == "CN=www.example.test"
    cut = leaf.certificate_pem[:200]
    bundle.write_bytes(leaf.certificate_pem + cut + leaf.certificate_pem)
    assert_refused(
        run_in_process("show", bundle), f"{bundle}: PEM block 2: a corrupt or truncated PEM"
    )
    bundle.write_bytes(leaf.private_key_pem)
    assert_refused(run_in_process("show", bundle), "holds a PEM PRIVATE KEY")


@pytest.mark.parametrize(
    ("not_before", "not_after", "said"),
    [
        (NOW - timedelta(days=9), NOW + timedelta(days=30, hours=1), "valid now, 30 days left"),
        (NOW - timedelta(days=9), NOW + timedelta(hours=5), "valid now, less than a day left"),
        (NOW - timedelta(days=9), NOW + timedelta(days=1, hours=1), "valid now, 1 day left"),
        (
            NOW - timedelta(days=9),
            NOW - timedelta(days=3, hours=1),
            "expired on {after} (3 days ago)",
        ),
        (
            NOW + timedelta(days=5, hours=1),
            NOW + timedelta(days=50),
            "not yet valid: starts {before} (in 5 days)",
        ),
    ],
)
def test_a_certificate_says_whether_it_is_valid_now_and_for_how_long(
    tmp_path: Path, not_before: datetime, not_after: datetime, said: str
) -> None:
    certificate = made_elsewhere("dated", not_before=not_before, not_after=not_after)
    info = describe(certificate)
    expected = said.format(before=info["not_before"], after=info["not_after"])
    assert f"  validity:             {expected}" in to_text([info], NOW).splitlines()
    path = tmp_path / "dated.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    text, _ = shown(path)  # the command, at its own now: the same words
    assert f"  validity:             {expected}" in text.splitlines()


# ---------------------------------------------------------------- list's header


def test_list_names_its_columns_and_its_json_has_no_header(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    CertificateAuthority.init(ca)
    empty = run_in_process("list", "--ca", ca)
    assert (empty.code, empty.stdout.split()) == (
        0,
        ["SERIAL", "STATUS", "NOT", "AFTER", "PROFILE", "SUBJECT", "CONTACT"],
    )
    assert json.loads(run_in_process("list", "--ca", ca, "--json").stdout) == []
    issued = run_in_process(
        "issue",
        "--ca",
        ca,
        "--profile",
        "client",
        "--cn",
        "Bob",
        "--email",
        "bob@example.test",
        "--out",
        tmp_path / "bob.crt",
    )
    assert issued.code == 0, issued.stderr
    header, row = run_in_process("list", "--ca", ca).stdout.splitlines()
    # each heading stands over its column (SUBJECT and CONTACT follow the subject's width)
    for heading, value in zip(header.split("  "), row.split("  "), strict=False):
        if heading.strip() not in ("SUBJECT", "CONTACT", ""):
            assert header.index(heading.strip()) == row.index(value.strip()), (heading, row)
