"""Bad input through the real CLI: each is refused with one `error:` line and exit 1 (or
exit 2 for usage errors), leaves the CA folder byte-for-byte as it was and writes no file.

Also the proof that a CSR's requested extensions never reach the certificate.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import Result, assert_refused, require_tool, run_minica, snapshot
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from minica import CertificateAuthority
from minica.keys import PrivateKey

HOST = "www.example.test"

# ---------------------------------------------------------------------------------------
# Building CSRs with cryptography


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def rsa_key(exponent: int, bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(exponent, bits)


def make_csr(
    key: PrivateKey | None = None,
    *,
    cn: str = HOST,
    org: str | None = None,
    names: tuple[x509.GeneralName, ...] = (x509.DNSName(HOST),),
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> bytes:
    """A PEM CSR for ``key`` (default: one EC P-256 key) with a subject, a SAN and extras."""
    key = key or ec_key()
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    csr = builder.sign(key, algorithm)
    return csr.public_bytes(serialization.Encoding.PEM)


def pem(der: bytes, label: str = "CERTIFICATE REQUEST") -> bytes:
    """DER re-wrapped as PEM (64-character lines)."""
    text = base64.b64encode(der).decode()
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def tampered(where: str) -> bytes:
    """A valid CSR with one byte changed in its signature or in its subject's CN."""
    der = bytearray(x509.load_pem_x509_csr(make_csr()).public_bytes(serialization.Encoding.DER))
    index = len(der) - 1 if where == "signature" else der.index(HOST.encode())
    der[index] ^= 0x01
    return pem(bytes(der))


def sha1_csr(tmp_path: Path) -> bytes:
    """cryptography refuses to sign with SHA-1, so openssl makes this one."""
    openssl = require_tool("openssl")
    out = tmp_path / "sha1.csr"
    subprocess.run(
        [openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", tmp_path / "sha1.key", "-sha1", "-subj", f"/CN={HOST}",
         "-out", out],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "sha1.key").unlink()
    return out.read_bytes()


CN_ONLY_PROFILE = """\
description: only a common name
subject:
  required: [common_name]
  allowed: [common_name]
names:
  allowed: [dns]
"""
UNKNOWN_KEY_PROFILE = """\
description: a profile with a typo
extends: server
colour: blue
"""

# ---------------------------------------------------------------------------------------
# Shared checks


def assert_nothing_written(folder: Path, before: set[str]) -> None:
    """No output file and no temporary file left in ``folder``."""
    assert {p.name for p in folder.iterdir()} == before


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------------------------------
# minica sign: a table of bad CSRs, profiles and lifetimes


@dataclass(frozen=True)
class SignCase:
    """A bad `minica sign`: the CSR bytes (None: no file), the profile, more args, fragments."""

    csr: Callable[[Path], bytes | None]
    profile: str | Callable[[Path], str] = "server"
    args: tuple[str, ...] = ()
    fragments: tuple[str, ...] = ()


def _profile_file(text: str, name: str) -> Callable[[Path], str]:
    def write(tmp_path: Path) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        return str(path)

    return write


SIGN_CASES = {
    "garbage": SignCase(
        lambda _: b"\x00\xffnot a CSR at all\x13\x37" * 40, fragments=("not a CSR",)
    ),
    "empty-file": SignCase(lambda _: b"", fragments=("the file is empty",)),
    "truncated-pem": SignCase(lambda _: make_csr()[:200], fragments=("truncated",)),
    "certificate-not-csr": SignCase(
        lambda _: CertificateAuthority.in_memory().certificate.public_bytes(
            serialization.Encoding.PEM
        ),
        fragments=("PEM CERTIFICATE", "not a CERTIFICATE REQUEST"),
    ),
    "two-csrs": SignCase(
        lambda _: make_csr() + make_csr(cn="other.example.test", names=()),
        fragments=("2 PEM blocks", "one CSR per file"),
    ),
    "bad-signature-byte": SignCase(
        lambda _: tampered("signature"), fragments=("signature does not verify",)
    ),
    "bad-signature-subject": SignCase(
        lambda _: tampered("subject"), fragments=("signature does not verify",)
    ),
    "sha1-signature": SignCase(sha1_csr, fragments=("SHA1", "too weak")),
    "rsa-1024": SignCase(
        lambda _: make_csr(rsa_key(65537, 1024)), fragments=("RSA key of 1024 bits", "too weak")
    ),
    "rsa-exponent-3": SignCase(
        lambda _: make_csr(rsa_key(3, 2048)), fragments=("RSA public exponent 3",)
    ),
    "ec-secp256k1": SignCase(
        lambda _: make_csr(ec.generate_private_key(ec.SECP256K1())),
        fragments=("secp256k1", "not supported"),
    ),
    "dns-under-code-signing": SignCase(
        lambda _: make_csr(cn="My Signer"),
        profile="code-signing",
        fragments=(f"DNS name {HOST}", "not allowed by profile code-signing"),
    ),
    "uri-under-server": SignCase(
        lambda _: make_csr(
            names=(x509.DNSName(HOST), x509.UniformResourceIdentifier("spiffe://lab/app"))
        ),
        fragments=("URI spiffe://lab/app", "not allowed by profile server"),
    ),
    "org-under-cn-only-profile": SignCase(
        lambda _: make_csr(org="Example Org"),
        profile=_profile_file(CN_ONLY_PROFILE, "cn-only"),
        fragments=("subject field organization", "not allowed by profile cn-only"),
    ),
    "server-without-host-name": SignCase(
        lambda _: make_csr(cn="My Server", names=()),
        fragments=("profile server needs at least one DNS name or IP address",),
    ),
    "ed25519-under-code-signing": SignCase(
        lambda _: make_csr(ed25519.Ed25519PrivateKey.generate(), cn="My Signer", names=()),
        profile="code-signing",
        fragments=("key type ed25519 is not allowed by profile code-signing",),
    ),
    "unknown-profile": SignCase(
        lambda _: make_csr(), profile="no-such-profile", fragments=("unknown profile",)
    ),
    "profile-with-unknown-key": SignCase(
        lambda _: make_csr(),
        profile=_profile_file(UNKNOWN_KEY_PROFILE, "typo"),
        fragments=("typo.yaml", "unknown key 'colour'"),
    ),
    "missing-csr-file": SignCase(lambda _: None, fragments=("cannot read", "missing.csr")),
    "days-0": SignCase(lambda _: make_csr(), args=("--days", "0"), fragments=("0 days",)),
    "days-negative": SignCase(lambda _: make_csr(), args=("--days", "-5"), fragments=("-5 days",)),
    "days-beyond-ca-expiry": SignCase(
        lambda _: make_csr(),
        args=("--days", "100000"),
        fragments=("issuer's own expiry", "{ca_expiry}"),
    ),
    "huge-file": SignCase(
        lambda _: b"padding before the PEM block\n" * 10_000 + make_csr(),
        fragments=("too large",),
    ),
}


@pytest.mark.parametrize("case", SIGN_CASES.values(), ids=SIGN_CASES.keys())
def test_sign_refuses(case: SignCase, ca_dir: Path, out_dir: Path, tmp_path: Path) -> None:
    csr_path = tmp_path / "missing.csr"
    data = case.csr(tmp_path)
    if data is not None:
        csr_path = tmp_path / "request.csr"
        csr_path.write_bytes(data)
    profile = case.profile if isinstance(case.profile, str) else case.profile(tmp_path)
    before = snapshot(ca_dir)

    result = run_minica(
        "sign", "--ca", ca_dir, "--profile", profile, csr_path,
        "--out", out_dir / "cert.crt", "--chain-out", out_dir / "chain.crt", *case.args,
        cwd=tmp_path,
    )  # fmt: skip

    ca_expiry = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes()).not_valid_after_utc
    assert_refused(result, *(f.format(ca_expiry=f"{ca_expiry:%Y-%m-%d}") for f in case.fragments))
    assert result.stdout == ""
    assert snapshot(ca_dir) == before
    assert_nothing_written(out_dir, set())


def test_sign_refuses_without_a_ca(out_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "not-a-ca"
    empty.mkdir()
    csr = tmp_path / "request.csr"
    csr.write_bytes(make_csr())
    result = run_minica(
        "sign", "--ca", empty, "--profile", "server", csr, "--out", out_dir / "cert.crt"
    )
    assert_refused(result, f"no CA in {empty}")
    assert list(empty.iterdir()) == []
    assert_nothing_written(out_dir, set())


def test_sign_refuses_a_ca_folder_that_does_not_exist(out_dir: Path, tmp_path: Path) -> None:
    csr = tmp_path / "request.csr"
    csr.write_bytes(make_csr())
    result = run_minica("sign", "--profile", "server", csr, "--out", out_dir / "c.crt", cwd=out_dir)
    assert_refused(result, "no CA in ca")  # the default ./ca
    assert_nothing_written(out_dir, set())


# ---------------------------------------------------------------------------------------
# minica init


def test_init_refuses_a_folder_that_holds_a_ca(ca_dir: Path) -> None:
    before = snapshot(ca_dir)
    result = run_minica("init", "--ca", ca_dir, "--cn", "second root")
    assert_refused(result, "already holds a CA")
    assert snapshot(ca_dir) == before


INIT_CASES = {
    "country-three-letters": (("--cn", "Lab Root", "--country", "GER"), ("'GER'", "two-letter")),
    "days-0": (("--days", "0"), ("0 days",)),
    "path-len-negative": (("--path-len", "-1"), ("path length of -1",)),
    "path-len-huge": (("--path-len", "99999999999999999999999"), ("0 to 255",)),
}


@pytest.mark.parametrize(("args", "fragments"), INIT_CASES.values(), ids=INIT_CASES.keys())
def test_init_refuses(args: tuple[str, ...], fragments: tuple[str, ...], tmp_path: Path) -> None:
    result = run_minica("init", "--ca", tmp_path / "new-ca", *args, cwd=tmp_path)
    assert_refused(result, *fragments)
    assert {p.name for p in tmp_path.iterdir()} == set()  # no folder, not even a half one


# ---------------------------------------------------------------------------------------
# minica req


REQ_CASES = {
    "ip-not-an-ip": (("--ip", "not-an-ip"), ("'not-an-ip' is not an IPv4 or IPv6 address",)),
    "dns-with-bad-characters": (("--dns", "bad name!"), ("'bad name!'", "not a valid")),
    "dns-that-is-an-ip": (("--dns", "10.0.0.1"), ("'10.0.0.1' is an IP address",)),
    "email-without-domain": (("--email", "nobody"), ("'nobody' is not a valid email address",)),
    "country-three-letters": (("--country", "USA"), ("'USA'", "two-letter")),
}


@pytest.mark.parametrize(("args", "fragments"), REQ_CASES.values(), ids=REQ_CASES.keys())
def test_req_refuses(args: tuple[str, ...], fragments: tuple[str, ...], out_dir: Path) -> None:
    result = run_minica("req", "--cn", HOST, *args, "--out", out_dir / "x.csr", cwd=out_dir)
    assert_refused(result, *fragments)
    assert_nothing_written(out_dir, set())  # neither x.csr nor x.key


def test_req_refuses_a_key_file_that_is_garbage(out_dir: Path) -> None:
    key = out_dir / "garbage.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64 at all!\n-----END PRIVATE KEY-----\n")
    before = key.read_bytes()
    result = run_minica("req", "--cn", HOST, "--key", key, "--out", out_dir / "x.csr")
    assert_refused(result, str(key), "private key")
    assert key.read_bytes() == before
    assert_nothing_written(out_dir, {"garbage.key"})


def test_req_never_overwrites_an_existing_key(out_dir: Path) -> None:
    key = out_dir / "x.key"
    key.write_bytes(b"precious existing key\n")
    result = run_minica("req", "--cn", HOST, "--dns", HOST, "--out", out_dir / "x.csr")
    assert_refused(result, str(key), "already exists")
    assert key.read_bytes() == b"precious existing key\n"
    assert_nothing_written(out_dir, {"x.key"})


# ---------------------------------------------------------------------------------------
# minica issue


def test_issue_refuses_an_existing_key_out_before_signing(ca_dir: Path, out_dir: Path) -> None:
    key = out_dir / "server.key"
    key.write_bytes(b"precious existing key\n")
    before = snapshot(ca_dir)
    result = run_minica(
        "issue", "--ca", ca_dir, "--profile", "server", "--cn", HOST,
        "--out", out_dir / "server.crt", "--key-out", key,
    )  # fmt: skip
    assert_refused(result, str(key), "already exists")
    assert key.read_bytes() == b"precious existing key\n"
    assert snapshot(ca_dir) == before  # no registry row, no certs/ file
    assert_nothing_written(out_dir, {"server.key"})


# ---------------------------------------------------------------------------------------
# Usage errors: exit 2, the parser's own message


def assert_usage_error(result: Result, fragment: str) -> None:
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr, result.stderr


def test_sign_with_an_unknown_option_is_a_usage_error(ca_dir: Path, tmp_path: Path) -> None:
    csr = tmp_path / "request.csr"
    csr.write_bytes(make_csr())
    before = snapshot(ca_dir)
    result = run_minica("sign", "--ca", ca_dir, "--profile", "server", "--bogus", csr)
    assert_usage_error(result, "--bogus")
    assert snapshot(ca_dir) == before


def test_sign_without_a_profile_is_a_usage_error(ca_dir: Path, tmp_path: Path) -> None:
    csr = tmp_path / "request.csr"
    csr.write_bytes(make_csr())
    before = snapshot(ca_dir)
    result = run_minica("sign", "--ca", ca_dir, csr)
    assert_usage_error(result, "--profile")
    assert snapshot(ca_dir) == before


# ---------------------------------------------------------------------------------------
# minica show


def test_show_refuses_garbage_bytes(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\xff garbage \x13\x37" * 40)
    result = run_minica("show", garbage, cwd=tmp_path)
    assert_refused(result, str(garbage), "not a certificate, CSR or CRL")
    assert result.stdout == ""


def test_show_refuses_an_argument_that_is_neither_file_nor_serial(ca_dir: Path) -> None:
    result = run_minica("show", "--ca", ca_dir, "no-such-thing.pem")
    assert_refused(result, "no-such-thing.pem", "no such file, and not a serial number")
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------
# Never copy extensions from a CSR


CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def test_sign_ignores_every_extension_the_csr_asks_for(ca_dir: Path, tmp_path: Path) -> None:
    greedy = make_csr(
        extensions=(
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (
                x509.ExtendedKeyUsage(
                    [
                        ExtendedKeyUsageOID.SERVER_AUTH,
                        ExtendedKeyUsageOID.CODE_SIGNING,
                        ExtendedKeyUsageOID.OCSP_SIGNING,
                        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
                    ]
                ),
                False,
            ),
            (CA_KEY_USAGE, True),
            (x509.NameConstraints([x509.DNSName("example.test")], None), True),
        )
    )
    csr = tmp_path / "greedy.csr"
    csr.write_bytes(greedy)
    out = tmp_path / "greedy.crt"

    result = run_minica("sign", "--ca", ca_dir, "--profile", "server", csr, "--out", out)

    assert result.code == 0, result.stderr
    extensions = x509.load_pem_x509_certificate(out.read_bytes()).extensions
    constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False
    assert constraints.path_length is None
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert not usage.crl_sign
    with pytest.raises(x509.ExtensionNotFound):
        extensions.get_extension_for_class(x509.NameConstraints)
    san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST]
    assert {ext.oid for ext in extensions} <= {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
