"""A lab PKI — root, intermediates, name constraints — made with the CLI and judged by real
verifiers: openssl, cryptography's X.509 verifier, Python's ssl, nginx and curl.

1. `init --parent` makes an intermediate: CA, path length, chain file, parent's registry.
2. `sign`/`issue --chain-out` write the leaf and the intermediates, never the root.
3. Lifetimes nest: nothing outlives its issuer.
4. `--permit-*` name constraints: in the CA certificate, checked at signing, inherited,
   narrowed but never widened.
5. Real verifiers accept what the intermediates issue, and refuse certificates forged with
   a constrained intermediate's key for names outside its constraints.

Every CA is made once per module; each test writes its own files under its tmp_path.
"""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import (
    Leaf,
    OpenSSL,
    Result,
    assert_refused,
    listing,
    require_tool,
    run_minica,
    snapshot,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from servers import Response, StartNginx, assert_refused_by_nginx, nginx_launcher, run_curl
from test_real_clients import handshake
from tls import handshake as tls_handshake

from minica import Names, Subject
from minica.keys import generate, private_key_pem
from minica.requests import build_csr

LAB_PERMITTED = "permitted: lab.test, 10.0.0.0/8, @lab.test"  # how minica names them


# --- helpers ------------------------------------------------------------------------------


def certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def certificate(path: Path) -> x509.Certificate:
    (only,) = certificates(path)
    return only


def ca_cert(ca: Path) -> x509.Certificate:
    return certificate(ca / "ca.crt")


def expiry(cert: x509.Certificate) -> str:
    """An expiry as minica's messages write it."""
    return f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning: ")]


def write_csr(folder: Path, name: str, cn: str, **names: list[str]) -> Path:
    """A CSR (and its key) made with the Python API, for `minica sign` to judge."""
    key = generate("ec-p256")
    csr = folder / f"{name}.csr"
    csr.write_bytes(build_csr(key, Subject(common_name=cn), Names.parse(**names)))
    (folder / f"{name}.key").write_bytes(private_key_pem(key))
    return csr


def sign(ca: Path, profile: str, csr: Path) -> tuple[Result, Path]:
    """`minica sign --out NAME.crt NAME.csr`; returns the result and NAME.crt."""
    out = csr.with_suffix(".crt")
    return run_minica("sign", "--ca", ca, "--profile", profile, csr, "--out", out), out


def san(cert: x509.Certificate) -> list[x509.GeneralName]:
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def name_constraints(cert: x509.Certificate) -> x509.Extension[x509.NameConstraints]:
    return cert.extensions.get_extension_for_class(x509.NameConstraints)


def path_length(cert: x509.Certificate) -> int | None:
    return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length


def openssl_verify(
    openssl: OpenSSL, root: Path, leaf: Path, *options: str | Path
) -> subprocess.CompletedProcess[str]:
    return openssl("verify", "-CAfile", root / "ca.crt", *options, leaf)


# --- the CAs, made once per module ---------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A root and an intermediate signed by it; nothing else is issued from either."""

    root: Path
    inter: Path
    init: Result  # what `minica init --parent` said


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    folder = tmp_path_factory.mktemp("pair")
    root, inter = folder / "root", folder / "inter"
    run_minica("init", "--ca", root, "--cn", "Lab Root", check=True)
    init = run_minica("init", "--ca", inter, "--parent", root, "--cn", "Lab Issuing CA", check=True)
    return Pair(root, inter, init)


@dataclass(frozen=True)
class Deep:
    """root --path-len 2 -> i1 --path-len 1 -> i2 (the default, 0)."""

    root: Path
    i1: Path
    i2: Path


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> Deep:
    folder = tmp_path_factory.mktemp("deep")
    root, i1, i2 = folder / "root", folder / "i1", folder / "i2"
    run_minica("init", "--ca", root, "--cn", "Deep Root", "--path-len", "2", check=True)
    run_minica(
        *("init", "--ca", i1, "--parent", root, "--cn", "Deep Policy CA", "--path-len", "1"),
        check=True,
    )
    run_minica("init", "--ca", i2, "--parent", i1, "--cn", "Deep Issuing CA", check=True)
    return Deep(root, i1, i2)


@dataclass(frozen=True)
class TlsLab:
    """An unconstrained root and intermediate, and two leaves the intermediate issued with
    `minica issue --chain-out`: a server for localhost and a client, alice; each as the
    leaf alone and as what --chain-out wrote (the leaf, then the intermediate)."""

    root: Path
    inter: Path
    server: Leaf
    server_chain: Leaf
    client: Leaf
    client_chain: Leaf


def issue_with_chain(
    ca: Path, folder: Path, name: str, profile: str, *options: str
) -> tuple[Leaf, Leaf]:
    """`minica issue --out NAME.crt --chain-out NAME-chain.crt`: the leaf alone and what
    --chain-out wrote, each with the key."""
    leaf = Leaf(folder / f"{name}.crt", folder / f"{name}.key")
    chain = Leaf(folder / f"{name}-chain.crt", leaf.key)
    issue: tuple[str | Path, ...] = ("issue", "--ca", ca, "--profile", profile, *options)
    run_minica(*issue, "--out", leaf.cert, "--chain-out", chain.cert, check=True)
    return leaf, chain


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsLab:
    folder = tmp_path_factory.mktemp("tls")
    root, inter = folder / "root", folder / "inter"
    run_minica("init", "--ca", root, "--cn", "TLS Lab Root", check=True)
    run_minica("init", "--ca", inter, "--parent", root, "--cn", "TLS Lab Issuing CA", check=True)
    server, server_chain = issue_with_chain(
        inter, folder, "server", "server", "--cn", "localhost", "--ip", "127.0.0.1"
    )
    client, client_chain = issue_with_chain(inter, folder, "client", "client", "--cn", "alice")
    return TlsLab(root, inter, server, server_chain, client, client_chain)


@dataclass(frozen=True)
class Short:
    """A root that expires in 30 days, and an intermediate made under it with the defaults."""

    root: Path
    inter: Path
    inter_init: Result


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Short:
    folder = tmp_path_factory.mktemp("short")
    root, inter = folder / "root", folder / "inter"
    run_minica("init", "--ca", root, "--cn", "Short Root", "--days", "30", check=True)
    inter_init = run_minica(
        "init", "--ca", inter, "--parent", root, "--cn", "Short Issuing CA", check=True
    )
    return Short(root, inter, inter_init)


@dataclass(frozen=True)
class Lab:
    """A root constrained to lab.test, 10.0.0.0/8 and @lab.test; an intermediate under it
    made without --permit-* options."""

    folder: Path
    root: Path
    inter: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    folder = tmp_path_factory.mktemp("lab")
    root, inter = folder / "root", folder / "inter"
    run_minica(
        *("init", "--ca", root, "--cn", "Lab Constrained Root"),
        *("--permit-dns", "lab.test", "--permit-ip", "10.0.0.0/8", "--permit-email", "lab.test"),
        check=True,
    )
    run_minica(
        "init", "--ca", inter, "--parent", root, "--cn", "Lab Constrained Issuing CA", check=True
    )
    return Lab(folder, root, inter)


# --- 1. init --parent: an intermediate CA ---------------------------------------------------


def test_init_parent_makes_a_ca_of_path_length_zero_signed_by_the_root(pair: Pair) -> None:
    root, inter = ca_cert(pair.root), ca_cert(pair.inter)
    basic = inter.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert (basic.value.ca, basic.value.path_length) == (True, 0)
    usage = inter.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign
    assert inter.subject.rfc4514_string() == "CN=Lab Issuing CA"
    assert inter.issuer == root.subject
    inter.verify_directly_issued_by(root)  # raises unless the root's key signed it
    authority_key = inter.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    root_key = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert authority_key.key_identifier == root_key.digest
    assert pair.init.stderr == f"created intermediate CA CN=Lab Issuing CA in {pair.inter}\n"


def test_intermediate_chain_file_holds_the_intermediate_then_the_root(pair: Pair) -> None:
    assert certificates(pair.inter / "ca-chain.crt") == [ca_cert(pair.inter), ca_cert(pair.root)]
    assert certificates(pair.root / "ca-chain.crt") == [ca_cert(pair.root)]


def test_root_registry_records_the_intermediate_under_intermediate_ca_profile(pair: Pair) -> None:
    inter = ca_cert(pair.inter)
    serial = format(inter.serial_number, "x")
    (row,) = listing(pair.root)
    assert row["serial"] == serial
    assert row["subject"] == "CN=Lab Issuing CA"
    assert row["profile"] == "intermediate-ca"
    assert row["status"] == "valid"
    assert row["not_after"] == inter.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert certificate(pair.root / "certs" / f"{serial}.crt") == inter


def test_intermediate_registry_starts_empty(pair: Pair) -> None:
    assert listing(pair.inter) == []


def test_path_lengths_count_down_through_a_deeper_tree(deep: Deep) -> None:
    root, i1, i2 = (ca_cert(ca) for ca in (deep.root, deep.i1, deep.i2))
    assert [path_length(c) for c in (root, i1, i2)] == [2, 1, 0]
    i1.verify_directly_issued_by(root)
    i2.verify_directly_issued_by(i1)
    assert certificates(deep.i2 / "ca-chain.crt") == [i2, i1, root]
    assert [row["subject"] for row in listing(deep.root)] == ["CN=Deep Policy CA"]
    assert [row["subject"] for row in listing(deep.i1)] == ["CN=Deep Issuing CA"]


def test_ca_of_path_length_zero_refuses_to_make_another_ca(deep: Deep, tmp_path: Path) -> None:
    before = snapshot(deep.i2)
    result = run_minica("init", "--ca", tmp_path / "sub", "--parent", deep.i2)
    assert_refused(result, "path length 0", "may not sign another CA")
    assert not (tmp_path / "sub").exists()
    assert snapshot(deep.i2) == before


@pytest.mark.parametrize(("parent", "asked"), [("root", "2"), ("root", "5"), ("i1", "1")])
def test_child_path_length_not_below_the_parents_is_refused(
    deep: Deep, tmp_path: Path, parent: str, asked: str
) -> None:
    parent_dir: Path = getattr(deep, parent)
    before = snapshot(parent_dir)
    result = run_minica(
        "init", "--ca", tmp_path / "sub", "--parent", parent_dir, "--path-len", asked
    )
    has = path_length(ca_cert(parent_dir))
    assert has is not None
    assert_refused(result, f"this CA has path length {has}", f"{has - 1} at most, not {asked}")
    assert not (tmp_path / "sub").exists()
    assert snapshot(parent_dir) == before


# --- 2. --chain-out: the leaf and the intermediates, never the root -------------------------

CHAIN_CASES = {  # CA -> the CA certificates that follow the leaf in --chain-out
    "tls-root": [],
    "tls-inter": ["tls-inter"],
    "deep-i2": ["deep-i2", "deep-i1"],
}


@pytest.fixture
def ca_dirs(tls: TlsLab, deep: Deep) -> dict[str, Path]:
    return {
        "tls-root": tls.root,
        "tls-inter": tls.inter,
        "deep-i2": deep.i2,
        "deep-i1": deep.i1,
        "deep-root": deep.root,
    }


@pytest.mark.parametrize("command", ["sign", "issue"])
@pytest.mark.parametrize("ca", list(CHAIN_CASES))
def test_chain_out_is_the_leaf_then_the_intermediates_without_the_root(
    ca_dirs: dict[str, Path], tmp_path: Path, command: str, ca: str
) -> None:
    out, chain = tmp_path / "leaf.crt", tmp_path / "fullchain.crt"
    if command == "sign":
        csr = write_csr(tmp_path, "leaf", "www.lab.test")
        run_minica(
            *("sign", "--ca", ca_dirs[ca], "--profile", "server", csr),
            *("--out", out, "--chain-out", chain),
            check=True,
        )
    else:
        run_minica(
            *("issue", "--ca", ca_dirs[ca], "--profile", "server", "--cn", "www.lab.test"),
            *("--out", out, "--chain-out", chain),
            check=True,
        )
    written = certificates(chain)
    assert written == [certificate(out), *(ca_cert(ca_dirs[name]) for name in CHAIN_CASES[ca])]
    root = ca_cert(ca_dirs["deep-root" if ca.startswith("deep") else "tls-root"])
    assert root not in written[1:]


# --- 3. lifetimes nest ------------------------------------------------------------------------


def test_intermediate_days_beyond_the_parents_expiry_are_refused_naming_it(
    short: Short, tmp_path: Path
) -> None:
    before = snapshot(short.root)
    result = run_minica("init", "--ca", tmp_path / "long", "--parent", short.root, "--days", "60")
    assert_refused(result, "60 days", f"issuer's own expiry ({expiry(ca_cert(short.root))})")
    assert not (tmp_path / "long").exists()
    assert snapshot(short.root) == before


def test_intermediate_default_lifetime_is_cut_to_the_parents_expiry_with_a_warning(
    short: Short,
) -> None:
    root, inter = ca_cert(short.root), ca_cert(short.inter)
    assert warnings(short.inter_init) == [
        f"warning: lifetime cut to the issuer's own expiry ({expiry(root)})"
    ]
    assert inter.not_valid_after_utc == root.not_valid_after_utc


def test_leaf_days_beyond_the_intermediates_expiry_are_refused_naming_it(
    short: Short, tmp_path: Path
) -> None:
    before = snapshot(short.inter)
    result = run_minica(
        *("issue", "--ca", short.inter, "--profile", "server", "--cn", "www.lab.test"),
        *("--out", tmp_path / "leaf.crt", "--days", "60"),
    )
    assert_refused(result, "60 days", f"issuer's own expiry ({expiry(ca_cert(short.inter))})")
    assert list(tmp_path.iterdir()) == []
    assert snapshot(short.inter) == before


def test_leaf_default_lifetime_is_cut_to_the_intermediates_expiry_with_a_warning(
    short: Short, tmp_path: Path
) -> None:
    result = run_minica(
        *("issue", "--ca", short.inter, "--profile", "server", "--cn", "www.lab.test"),
        *("--out", tmp_path / "leaf.crt"),
        check=True,
    )
    inter = ca_cert(short.inter)
    assert warnings(result) == [
        f"warning: lifetime cut to the issuer's own expiry ({expiry(inter)})"
    ]
    assert certificate(tmp_path / "leaf.crt").not_valid_after_utc == inter.not_valid_after_utc


# --- 4. name constraints ----------------------------------------------------------------------

LAB_SUBTREES = {
    x509.DNSName("lab.test"),
    x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
    x509.RFC822Name("lab.test"),
}


def test_permit_options_make_a_critical_name_constraints_extension(lab: Lab) -> None:
    extension = name_constraints(ca_cert(lab.root))
    assert extension.critical
    permitted = extension.value.permitted_subtrees
    assert permitted is not None and len(permitted) == 3
    assert set(permitted) == LAB_SUBTREES
    assert extension.value.excluded_subtrees is None


def test_intermediate_without_permit_options_inherits_the_roots_constraints(lab: Lab) -> None:
    extension = name_constraints(ca_cert(lab.inter))
    assert extension.critical
    assert extension.value == name_constraints(ca_cert(lab.root)).value


# (profile, kind label in the message, CSR names)
OUTSIDE = {
    "evil.test": ("server", "DNS name", {"dns": ["evil.test"]}),
    "www.evil.test": ("server", "DNS name", {"dns": ["www.evil.test"]}),
    "lab.test.evil.test": ("server", "DNS name", {"dns": ["lab.test.evil.test"]}),
    "notlab.test": ("server", "DNS name", {"dns": ["notlab.test"]}),
    "11.0.0.1": ("server", "IP address", {"ip": ["11.0.0.1"]}),
    "alice@evil.test": ("email", "email address", {"email": ["alice@evil.test"]}),
    "alice@sub.lab.test": ("email", "email address", {"email": ["alice@sub.lab.test"]}),
}


@pytest.mark.parametrize("name", list(OUTSIDE))
def test_name_outside_the_constraints_is_refused_naming_it_and_the_constraint(
    lab: Lab, tmp_path: Path, name: str
) -> None:
    profile, label, names = OUTSIDE[name]
    csr = write_csr(tmp_path, "leaf", "Lab device", **names)
    before = snapshot(lab.inter)
    result, out = sign(lab.inter, profile, csr)
    assert_refused(result, f"{label} {name} is outside the name constraints", LAB_PERMITTED)
    assert not out.exists()
    assert snapshot(lab.inter) == before


# (profile, openssl purpose, CSR names, the SAN entry expected)
INSIDE = {
    "a.b.lab.test": (
        "server",
        "sslserver",
        {"dns": ["a.b.lab.test"]},
        x509.DNSName("a.b.lab.test"),
    ),
    "lab.test": ("server", "sslserver", {"dns": ["lab.test"]}, x509.DNSName("lab.test")),
    "*.lab.test": ("server", "sslserver", {"dns": ["*.lab.test"]}, x509.DNSName("*.lab.test")),
    "10.1.2.3": (
        "server",
        "sslserver",
        {"dns": ["device.lab.test"], "ip": ["10.1.2.3"]},
        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
    ),
    "alice@lab.test": (
        "email",
        "smimesign",
        {"email": ["alice@lab.test"]},
        x509.RFC822Name("alice@lab.test"),
    ),
}


@pytest.mark.parametrize("name", list(INSIDE))
def test_name_inside_the_constraints_is_signed_and_openssl_agrees(
    lab: Lab, tmp_path: Path, openssl: OpenSSL, name: str
) -> None:
    profile, purpose, names, entry = INSIDE[name]
    csr = write_csr(tmp_path, "leaf", "Lab device", **names)
    result, out = sign(lab.inter, profile, csr)
    assert result.code == 0, result.stderr
    assert entry in san(certificate(out))
    verified = openssl_verify(openssl, lab.root, out, "-untrusted", lab.inter / "ca.crt")
    assert (verified.returncode, verified.stdout) == (0, f"{out}: OK\n"), verified.stderr
    verified = openssl_verify(
        openssl, lab.root, out, "-untrusted", lab.inter / "ca.crt", "-purpose", purpose
    )
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize(
    ("profile", "cn", "names"),
    [("server", "10.1.2.3", {}), ("client", "www.evil.test", {})],
    ids=["ip-cn-without-dns-name", "client-cn-outside"],
)
def test_host_like_common_name_outside_the_dns_constraints_is_refused(
    lab: Lab, tmp_path: Path, openssl: OpenSSL, profile: str, cn: str, names: dict[str, list[str]]
) -> None:
    """openssl (and so nginx and curl) checks a leaf's CN that looks like a host name
    against the DNS constraints when the leaf has no DNS name: minica must not sign what
    every openssl-based verifier will refuse."""
    csr = write_csr(tmp_path, "leaf", cn, **names)
    result, out = sign(lab.inter, profile, csr)
    if result.code == 0:  # say what openssl makes of the certificate minica signed
        verdict = openssl_verify(openssl, lab.root, out, "-untrusted", lab.inter / "ca.crt")
        pytest.fail(
            f"minica signed CN={cn} under DNS constraints lab.test; "
            f"openssl verify says: {verdict.stderr.strip()!r}"
        )
    assert_refused(result, cn, "lab.test")


def write_request(folder: Path, subject: Subject, names: Names) -> Path:
    """A CSR for ``subject`` and ``names`` (and its key), made with the Python API."""
    key = generate("ec-p256")
    csr = folder / "leaf.csr"
    csr.write_bytes(build_csr(key, subject, names))
    (folder / "leaf.key").write_bytes(private_key_pem(key))
    return csr


# Every name a certificate carries, in every form a client may read it, is checked against
# the constraints (lab.test, 10.0.0.0/8, @lab.test): (profile, CN, subject email, names,
# what the refusal says).
EVERY_NAME_OUTSIDE = {
    "cn-trailing-dot": ("client", "www.evil.test.", None, {}, "common name www.evil.test is"),
    "cn-trailing-dot-server": (  # copied into the names, without its dot
        "server",
        "www.evil.test.",
        None,
        {"ip": ["10.1.2.3"]},
        "DNS name www.evil.test is",
    ),
    "cn-upper-case": ("client", "WWW.EVIL.TEST", None, {}, "common name www.evil.test is"),
    "cn-wildcard": ("client", "*.evil.test", None, {}, "common name *.evil.test is"),
    "cn-partial-wildcard": ("client", "w*.evil.test", None, {}, "common name w*.evil.test is"),
    "cn-idn": ("client", "bücher.evil.test", None, {}, "common name xn--bcher-kva.evil.test"),
    "cn-underscore": ("client", "a_b.evil.test", None, {}, "common name a_b.evil.test is"),
    "cn-with-a-dns-name-inside": (
        "client",
        "www.evil.test",
        None,
        {"dns": ["www.lab.test"]},
        "common name www.evil.test is",
    ),
    "dns-trailing-dot": ("server", "Lab device", None, {"dns": ["www.evil.test."]}, "DNS name"),
    "dns-idn": (
        "server",
        "Lab device",
        None,
        {"dns": ["bücher.evil.test"]},
        "DNS name xn--bcher-kva.evil.test is",
    ),
    "uri-host": (
        "client",
        "Lab device",
        None,
        {"uri": ["https://www.evil.test/"]},
        "URI https://www.evil.test/ (host www.evil.test) is",
    ),
    "uri-host-trailing-dot": (
        "client",
        "Lab device",
        None,
        {"uri": ["https://WWW.evil.test./x"]},
        "(host www.evil.test) is",
    ),
    "uri-userinfo": (
        "client",
        "Lab device",
        None,
        {"uri": ["https://lab.test@www.evil.test/"]},
        "(host www.evil.test) is",
    ),
    "uri-ip-host": (
        "client",
        "Lab device",
        None,
        {"uri": ["https://11.0.0.1/"]},
        "URI https://11.0.0.1/ (host 11.0.0.1) is",
    ),
    "uri-without-host": (
        "client",
        "Lab device",
        None,
        {"uri": ["urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"]},
        "(it has no host) is",
    ),
    "email-idn": (
        "email",
        "Alice",
        None,
        {"email": ["alice@bücher.evil.test"]},
        "email address alice@xn--bcher-kva.evil.test is",
    ),
    "subject-email": (
        "email",
        "Alice",
        "alice@evil.test",
        {},
        "email address alice@evil.test is",
    ),
}


@pytest.mark.parametrize("case", list(EVERY_NAME_OUTSIDE))
def test_every_name_in_every_form_is_checked_against_the_constraints(
    lab: Lab, tmp_path: Path, case: str
) -> None:
    profile, cn, email, names, fragment = EVERY_NAME_OUTSIDE[case]
    csr = write_request(tmp_path, Subject(common_name=cn, email=email), Names.parse(**names))
    before = snapshot(lab.inter)
    result, out = sign(lab.inter, profile, csr)
    assert_refused(result, fragment, "outside the name constraints", LAB_PERMITTED)
    assert not out.exists()
    assert snapshot(lab.inter) == before


# (profile, CN, names, the CN the certificate gets, a SAN entry expected)
EVERY_NAME_INSIDE = {
    "cn-trailing-dot": ("client", "www.lab.test.", {}, "www.lab.test", None),
    "cn-trailing-dot-server": (
        "server",
        "WWW.Lab.Test.",
        {},
        "www.lab.test",
        x509.DNSName("www.lab.test"),
    ),
    "cn-idn-server": (
        "server",
        "Bücher.lab.test",
        {},
        "xn--bcher-kva.lab.test",
        x509.DNSName("xn--bcher-kva.lab.test"),
    ),
    "cn-ascii-keeps-its-case": (
        "server",
        "WWW.Lab.Test",
        {},
        "WWW.Lab.Test",
        x509.DNSName("www.lab.test"),
    ),
    "uri-host": (
        "client",
        "Lab device",
        {"uri": ["https://api.lab.test/v1"]},
        "Lab device",
        x509.UniformResourceIdentifier("https://api.lab.test/v1"),
    ),
    "uri-ip-host": (
        "client",
        "Lab device",
        {"uri": ["https://10.1.2.3/"]},
        "Lab device",
        x509.UniformResourceIdentifier("https://10.1.2.3/"),
    ),
    "email-trailing-dot": (
        "email",
        "Alice",
        {"email": ["alice@LAB.test."]},
        "Alice",
        x509.RFC822Name("alice@lab.test"),
    ),
}


@pytest.mark.parametrize("case", list(EVERY_NAME_INSIDE))
def test_names_inside_the_constraints_are_signed_in_canonical_form_and_openssl_agrees(
    lab: Lab, tmp_path: Path, openssl: OpenSSL, case: str
) -> None:
    profile, cn, names, signed_cn, entry = EVERY_NAME_INSIDE[case]
    csr = write_request(tmp_path, Subject(common_name=cn), Names.parse(**names))
    result, out = sign(lab.inter, profile, csr)
    assert result.code == 0, result.stderr
    leaf = certificate(out)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == signed_cn
    if entry is not None:
        assert entry in san(leaf)
    verified = openssl_verify(openssl, lab.root, out, "-untrusted", lab.inter / "ca.crt")
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize(
    ("options", "outside"),
    [
        (("--permit-dns", "test"), "DNS test"),
        (("--permit-dns", "evil.test"), "DNS evil.test"),
        (("--permit-ip", "10.0.0.0/7"), "IP 10.0.0.0/7"),
        (("--permit-email", "evil.test"), "email @evil.test"),
    ],
    ids=["wider-domain", "other-domain", "wider-network", "other-email-domain"],
)
def test_intermediate_asking_for_wider_or_other_constraints_is_refused(
    lab: Lab, tmp_path: Path, options: tuple[str, str], outside: str
) -> None:
    before = snapshot(lab.root)
    result = run_minica("init", "--ca", tmp_path / "wide", "--parent", lab.root, *options)
    assert_refused(result, "wider than those of CN=Lab Constrained Root", outside)
    assert not (tmp_path / "wide").exists()
    assert snapshot(lab.root) == before


@pytest.fixture(scope="module")
def narrow(lab: Lab) -> tuple[Path, Result]:
    """An intermediate under the constrained root asking for dev.lab.test only."""
    directory = lab.folder / "dev"
    result = run_minica(
        *("init", "--ca", directory, "--parent", lab.root, "--cn", "Lab Dev CA"),
        *("--permit-dns", "dev.lab.test"),
    )
    return directory, result


def test_narrower_intermediate_is_made_with_its_own_dns_subtree(
    narrow: tuple[Path, Result],
) -> None:
    directory, result = narrow
    assert result.code == 0, result.stderr
    extension = name_constraints(ca_cert(directory))
    assert extension.critical
    permitted = extension.value.permitted_subtrees or []
    assert [n.value for n in permitted if isinstance(n, x509.DNSName)] == ["dev.lab.test"]


def test_narrower_intermediate_refuses_a_name_only_its_parent_permits(
    narrow: tuple[Path, Result], tmp_path: Path
) -> None:
    directory, made = narrow
    assert made.code == 0, made.stderr
    result, _ = sign(directory, "server", write_csr(tmp_path, "www", "www.lab.test"))
    assert_refused(result, "DNS name www.lab.test is outside", "dev.lab.test")
    result, _ = sign(
        directory, "server", write_csr(tmp_path, "ip", "x.dev.lab.test", ip=["11.0.0.1"])
    )
    assert_refused(result, "IP address 11.0.0.1 is outside")  # the root's network still holds


def test_narrower_intermediate_signs_inside_its_subtree_and_openssl_agrees(
    narrow: tuple[Path, Result], lab: Lab, tmp_path: Path, openssl: OpenSSL
) -> None:
    directory, made = narrow
    assert made.code == 0, made.stderr
    result, out = sign(directory, "server", write_csr(tmp_path, "www", "www.dev.lab.test"))
    assert result.code == 0, result.stderr
    verified = openssl_verify(openssl, lab.root, out, "-untrusted", directory / "ca.crt")
    assert verified.returncode == 0, verified.stderr


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--permit-ip", "10.0.0.1/8"), ("permitted network '10.0.0.1/8'", "no host bits set")),
        (("--permit-dns", "*.lab.test"), ("DNS domain '*.lab.test'", "give the domain itself")),
    ],
    ids=["ip-with-host-bits", "wildcard-domain"],
)
def test_malformed_permit_option_is_a_clear_error(
    tmp_path: Path, options: tuple[str, str], fragments: tuple[str, ...]
) -> None:
    result = run_minica("init", "--ca", tmp_path / "ca", *options)
    assert_refused(result, *fragments)
    assert not (tmp_path / "ca").exists()


# --- 5. real verifiers --------------------------------------------------------------------------


@pytest.mark.tools
def test_openssl_validates_an_intermediates_leaf_given_the_intermediate(
    tls: TlsLab, openssl: OpenSSL
) -> None:
    leaf = tls.server.cert
    verified = openssl_verify(
        openssl, tls.root, leaf, "-untrusted", tls.inter / "ca.crt", "-purpose", "sslserver"
    )
    assert (verified.returncode, verified.stdout) == (0, f"{leaf}: OK\n"), verified.stderr


@pytest.mark.tools
def test_openssl_refuses_an_intermediates_leaf_without_the_intermediate(
    tls: TlsLab, openssl: OpenSSL
) -> None:
    verified = openssl_verify(openssl, tls.root, tls.server.cert, "-purpose", "sslserver")
    assert verified.returncode == 2
    assert "error 20 at 0 depth lookup: unable to get local issuer certificate" in verified.stderr


@pytest.mark.tools
def test_openssl_validates_a_leaf_two_intermediates_down_with_its_chain_out(
    deep: Deep, tmp_path: Path, openssl: OpenSSL
) -> None:
    leaf, chain = issue_with_chain(deep.i2, tmp_path, "leaf", "server", "--cn", "www.lab.test")
    verified = openssl_verify(
        openssl, deep.root, leaf.cert, "-untrusted", chain.cert, "-purpose", "sslserver"
    )
    assert (verified.returncode, verified.stdout) == (0, f"{leaf.cert}: OK\n"), verified.stderr


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_python_ssl_mutual_tls_through_the_intermediate_trusting_only_the_root(
    tls: TlsLab, version: ssl.TLSVersion
) -> None:
    outcome = handshake(
        tls.root / "ca.crt",
        tls.server_chain,  # the server sends leaf + intermediate
        tls.client_chain,  # and so does the client
        version=version,
    )
    assert (outcome.client_error, outcome.server_error) == (None, None)
    assert outcome.client_got == b"hellopong:ping"
    assert (outcome.client_peer, outcome.server_peer) == ("localhost", "alice")


def test_python_ssl_client_refuses_a_server_that_leaves_out_the_intermediate(
    tls: TlsLab,
) -> None:
    outcome = handshake(
        tls.root / "ca.crt",
        tls.server,  # the leaf alone
        tls.client_chain,
    )
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError)
    assert outcome.client_error.verify_message == "unable to get local issuer certificate"


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[StartNginx]:
    with nginx_launcher(tmp_path) as start:
        yield start


@pytest.fixture
def curl(tls: TlsLab) -> Callable[..., Response]:
    """curl https://localhost:PORT/, trusting only the TLS lab's root."""
    require_tool("curl")

    def run(port: int, client: Leaf, *options: str) -> Response:
        return run_curl(tls.root / "ca.crt", port, client, *options)

    return run


@pytest.mark.tools
def test_nginx_serves_the_chain_and_accepts_curl_with_a_client_from_the_intermediate(
    tls: TlsLab, nginx: StartNginx, curl: Callable[..., Response]
) -> None:
    server = nginx(tls.server_chain, tls.root / "ca.crt", verify_depth=2)
    response = curl(server.port, tls.client_chain)
    assert (response.code, response.status) == (0, "200"), response
    assert response.body == "hello CN=alice\n"


@pytest.mark.tools
def test_nginx_answers_400_to_a_client_that_leaves_out_the_intermediate(
    tls: TlsLab, nginx: StartNginx, curl: Callable[..., Response]
) -> None:
    server = nginx(tls.server_chain, tls.root / "ca.crt", verify_depth=2)
    response = curl(server.port, tls.client)  # the leaf alone
    assert_refused_by_nginx(response, server, r"\(21:unable to verify the first certificate\)")


# Forged certificates: signed with the constrained intermediate's key by cryptography alone,
# each the same but for its name. The IP ones get a CN that is no host name, else openssl
# would also check the CN against the DNS constraints.
FORGED: dict[str, tuple[str, x509.DNSName | x509.IPAddress]] = {
    "www.evil.test": ("www.evil.test", x509.DNSName("www.evil.test")),
    "www.lab.test": ("www.lab.test", x509.DNSName("www.lab.test")),
    "11.0.0.1": ("Forged device", x509.IPAddress(ipaddress.ip_address("11.0.0.1"))),
    "10.9.8.7": ("Forged device", x509.IPAddress(ipaddress.ip_address("10.9.8.7"))),
}
FORBIDDEN, ALLOWED = ["www.evil.test", "11.0.0.1"], ["www.lab.test", "10.9.8.7"]
DIGITAL_SIGNATURE_ONLY = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)


def forge_leaf(
    lab: Lab, cn: str, names: list[x509.GeneralName]
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A server certificate for CN=``cn`` and ``names`` with a new key, signed with the
    constrained intermediate's key by hand: no policy of minica's stands in the way."""
    inter = ca_cert(lab.inter)
    inter_key = serialization.load_pem_private_key(
        (lab.inter / "private" / "ca.key").read_bytes(), password=None
    )
    assert isinstance(inter_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(inter.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(DIGITAL_SIGNATURE_ONLY, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_key.public_key()), False
        )
        .sign(inter_key, hashes.SHA384())
    )
    return cert, key


@pytest.fixture(scope="module")
def forged(lab: Lab) -> dict[str, Path]:
    paths = {}
    for name, (cn, general_name) in FORGED.items():
        cert, _ = forge_leaf(lab, cn, [general_name])
        paths[name] = lab.folder / f"forged-{name}.crt"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return paths


def cryptography_verify(lab: Lab, leaf: Path, name: str) -> list[x509.Certificate]:
    """cryptography's server verifier, trusting only the root, for the forged name."""
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([ca_cert(lab.root)]))
        .build_server_verifier(FORGED[name][1])
    )
    return verifier.verify(certificate(leaf), [ca_cert(lab.inter)])


@pytest.mark.parametrize("name", FORBIDDEN)
def test_cryptography_verifier_refuses_a_forged_name_outside_the_constraints(
    lab: Lab, forged: dict[str, Path], name: str
) -> None:
    with pytest.raises(verification.VerificationError) as refused:
        cryptography_verify(lab, forged[name], name)
    assert str(refused.value) == (
        "validation failed: candidates exhausted: no permitted name constraints matched SAN"
    )


@pytest.mark.parametrize("name", ALLOWED)
def test_cryptography_verifier_accepts_the_same_forgery_for_a_name_inside(
    lab: Lab, forged: dict[str, Path], name: str
) -> None:
    chain = cryptography_verify(lab, forged[name], name)
    assert chain == [certificate(forged[name]), ca_cert(lab.inter), ca_cert(lab.root)]


@pytest.mark.tools
@pytest.mark.parametrize("name", FORBIDDEN)
def test_openssl_refuses_a_forged_name_outside_the_constraints(
    lab: Lab, forged: dict[str, Path], openssl: OpenSSL, name: str
) -> None:
    verified = openssl_verify(openssl, lab.root, forged[name], "-untrusted", lab.inter / "ca.crt")
    assert verified.returncode == 2, verified.stdout
    assert "error 47 at 0 depth lookup: permitted subtree violation" in verified.stderr


@pytest.mark.tools
@pytest.mark.parametrize("name", ALLOWED)
def test_openssl_accepts_the_same_forgery_for_a_name_inside(
    lab: Lab, forged: dict[str, Path], openssl: OpenSSL, name: str
) -> None:
    leaf = forged[name]
    verified = openssl_verify(
        openssl, lab.root, leaf, "-untrusted", lab.inter / "ca.crt", "-purpose", "sslserver"
    )
    assert (verified.returncode, verified.stdout) == (0, f"{leaf}: OK\n"), verified.stderr


@pytest.mark.parametrize("name", FORBIDDEN)
def test_minica_verify_refuses_a_forged_name_outside_the_constraints(
    lab: Lab, forged: dict[str, Path], name: str
) -> None:
    result = run_minica("verify", "--ca", lab.inter, forged[name])
    assert_refused(result, name, "is outside the name constraints of", "Constrained Issuing CA")


@pytest.mark.parametrize("name", ALLOWED)
def test_minica_verify_accepts_the_same_forgery_for_a_name_inside(
    lab: Lab, forged: dict[str, Path], name: str
) -> None:
    result = run_minica("verify", "--ca", lab.inter, forged[name])
    assert (result.code, result.stdout) == (0, "OK\n"), result.stderr


# A CN is a host name to OpenSSL and Python's ssl when a certificate has no DNS name, also
# with a trailing dot or as a wildcard. Forged with the constrained intermediate's key, such
# certificates pass both clients for hosts outside lab.test: minica must never sign them.
CN_FORMS_CLIENTS_MATCH = [("www.evil.test.", "www.evil.test."), ("*.evil.test", "www.evil.test")]


def forge_server_certificate(lab: Lab, folder: Path, cn: str) -> Leaf:
    """A server certificate for CN=``cn`` and the IP 10.9.8.7 (inside the constraints), with
    no DNS name, signed with the intermediate's key; the file holds it and the intermediate."""
    cert, key = forge_leaf(lab, cn, [x509.IPAddress(ipaddress.ip_address("10.9.8.7"))])
    leaf = Leaf(folder / "forged.crt", folder / "forged.key")
    leaf.cert.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert(lab.inter).public_bytes(serialization.Encoding.PEM)
    )
    leaf.key.write_bytes(private_key_pem(key))
    return leaf


def python_ssl_accepts(root: Path, server: Leaf, hostname: str) -> BaseException | None:
    """Connect Python's ssl, trusting only ``root``, to a server presenting ``server``;
    None when the client accepted it for ``hostname``, else its error."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(server.cert, server.key)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname
    client_context.load_verify_locations(root)
    return tls_handshake(server_context, client_context, hostname).client_error


def openssl_verify_host(
    openssl: OpenSSL, lab: Lab, leaf: Path, hostname: str
) -> subprocess.CompletedProcess[str]:
    """openssl verify of a server certificate of the lab's intermediate, for ``hostname``."""
    return openssl_verify(
        openssl, lab.root, leaf, "-untrusted", lab.inter / "ca.crt",
        *("-purpose", "sslserver", "-verify_hostname", hostname),
    )  # fmt: skip


@pytest.mark.tools
@pytest.mark.parametrize(("cn", "hostname"), CN_FORMS_CLIENTS_MATCH)
def test_cn_forms_that_clients_match_outside_the_constraints_are_never_signed(
    lab: Lab, tmp_path: Path, openssl: OpenSSL, cn: str, hostname: str
) -> None:
    forged = forge_server_certificate(lab, tmp_path, cn)
    # the danger is real: both clients take the forgery for a host outside lab.test
    assert python_ssl_accepts(lab.root / "ca.crt", forged, hostname) is None
    verified = openssl_verify_host(openssl, lab, forged.cert, hostname)
    assert verified.returncode == 0, verified.stderr
    # and minica refuses to sign the same request, for both profiles that could carry it
    for profile in ("server", "client"):
        result, out = sign(lab.inter, profile, write_csr(tmp_path, profile, cn, ip=["10.9.8.7"]))
        assert_refused(result, "outside the name constraints")
        assert not out.exists()


@pytest.mark.tools
def test_a_trailing_dot_cn_inside_is_signed_without_it_and_clients_agree(
    lab: Lab, tmp_path: Path, openssl: OpenSSL
) -> None:
    csr = write_csr(tmp_path, "www", "www.lab.test.", ip=["10.9.8.7"])
    result, out = sign(lab.inter, "server", csr)
    assert result.code == 0, result.stderr
    leaf = certificate(out)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "www.lab.test"
    assert x509.DNSName("www.lab.test") in san(leaf)
    chain = tmp_path / "www-chain.crt"
    chain.write_bytes(out.read_bytes() + (lab.inter / "ca.crt").read_bytes())
    server = Leaf(chain, tmp_path / "www.key")
    assert python_ssl_accepts(lab.root / "ca.crt", server, "www.lab.test") is None
    refused = python_ssl_accepts(lab.root / "ca.crt", server, "www.evil.test.")
    assert isinstance(refused, ssl.SSLCertVerificationError)
    for hostname, code in (("www.lab.test", 0), ("www.evil.test.", 2), ("www.evil.test", 2)):
        verified = openssl_verify_host(openssl, lab, out, hostname)
        assert verified.returncode == code, (hostname, verified.stderr)


@pytest.mark.tools
def test_an_idn_cn_is_signed_as_its_a_label_and_clients_find_it(
    lab: Lab, tmp_path: Path, openssl: OpenSSL
) -> None:
    result, out = sign(lab.inter, "server", write_csr(tmp_path, "idn", "bücher.lab.test"))
    assert result.code == 0, result.stderr
    leaf = certificate(out)
    common_name = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == "xn--bcher-kva.lab.test"
    assert san(leaf) == [x509.DNSName(common_name)]  # the CN is one of the names
    chain = tmp_path / "idn-chain.crt"
    chain.write_bytes(out.read_bytes() + (lab.inter / "ca.crt").read_bytes())
    # Python's ssl turns the Unicode host name into its A-label, as browsers do
    server = Leaf(chain, tmp_path / "idn.key")
    assert python_ssl_accepts(lab.root / "ca.crt", server, "bücher.lab.test") is None
    verified = openssl_verify_host(openssl, lab, out, "xn--bcher-kva.lab.test")
    assert verified.returncode == 0, verified.stderr
