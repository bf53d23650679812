"""Property: valid certificates, CSRs, CRLs, profiles and ca.yaml files, mutated (bytes
flipped, cut, inserted; DER elements retagged, emptied, dropped, doubled, spliced in from
another object; YAML keys dropped, changed, misspelt, text garbled) and fed to every
command that reads them, end in exit 0 or 1 — never another code, never a traceback, and
an `error:` line (plus `hint:` lines) whenever the command refuses.

Nearly every example runs in this process through the CLI's entry point (milliseconds);
a few run as real processes, to show that the entry point behaves the same there.
"""

from __future__ import annotations

import base64
import ipaddress
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import der
import pytest
import yaml
from conftest import REPO, Result, copy_ca, run_minica
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from in_process import run_in_process

from minica import CertificateAuthority, Names, Subject, Urls
from minica.constraints import NameConstraints
from minica.keys import private_key_pem

EXAMPLES = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
PEM_LABELS = {"certificate": "CERTIFICATE", "csr": "CERTIFICATE REQUEST", "crl": "X509 CRL"}
_unique = count()


@dataclass(frozen=True, repr=False)
class Seeds:
    """Valid inputs of each kind (DER or YAML text), and where the commands find a CA."""

    work: Path
    ca: Path  # signs, and holds a CRL, for the certificate, CSR and profile properties
    ca_without_crl: Path  # to copy: the same CA before it signed a CRL
    leaf_key: Path
    certificates: list[bytes]
    csrs: list[bytes]
    crls: list[bytes]
    profiles: list[str]
    settings: str

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"Seeds({self.work})"

    def fresh(self, name: str) -> Path:
        return self.work / f"{next(_unique)}-{name}"


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    work = tmp_path_factory.mktemp("mutations")
    authority = CertificateAuthority.init(
        work / "ca",
        subject=Subject(common_name="Mutation Root", organization="minica tests"),
        urls=Urls(
            crl="http://ca.example.test/crl",
            ocsp="http://ca.example.test/ocsp",
            issuer="http://ca.example.test/ca.crt",
        ),
        name_constraints=NameConstraints.parse(dns=["example.test"], ip=["192.0.2.0/24"]),
    )
    server, server_key = authority.issue(
        authority.profile("server"),
        Subject(common_name="www.example.test"),
        Names.parse(dns=["www.example.test"], ip=["192.0.2.7"]),
    )
    client, _ = authority.issue(
        authority.profile("client"),
        Subject(common_name="Alice"),
        Names.parse(email=["alice@example.test"]),
    )
    authority.revoke(format(client.certificate.serial_number, "x"), "key-compromise")
    # A CA that has signed no CRL reads the one in its folder (as folders from before the
    # registry kept CRLs do): the place a mutated crl.pem is read
    copy_ca(work / "ca", work / "ca-without-crl")
    crl = authority.crl()
    (work / "ca" / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    (work / "leaf.key").write_bytes(private_key_pem(server_key))
    profiles = [(REPO / "profiles" / f"{name}.yaml").read_text() for name in ("server", "email")]
    profiles.append("description: a lab server\nextends: server\nvalidity_days: 30\n")
    return Seeds(
        work=work,
        ca=work / "ca",
        ca_without_crl=work / "ca-without-crl",
        leaf_key=work / "leaf.key",
        certificates=[
            c.public_bytes(Encoding.DER)
            for c in (server.certificate, client.certificate, authority.certificate)
        ],
        csrs=[csr(key) for key in (ec.generate_private_key(ec.SECP256R1()), ed25519_key())],
        crls=[crl.public_bytes(Encoding.DER)],
        profiles=profiles,
        settings=(work / "ca" / "ca.yaml").read_text(),
    )


def ed25519_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def csr(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    """A CSR the `server` profile signs, with more in it than it needs (to mutate)."""
    names: list[x509.GeneralName] = [
        x509.DNSName("req.example.test"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.9")),
    ]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "req.example.test"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "minica tests"),
        ]
    )
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(Encoding.DER)


# ---------------------------------------------------------------- mutations of DER


Draw = st.DataObject


def flip(data: Draw, blob: bytes, donors: list[bytes]) -> bytes:
    at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
    value = data.draw(st.integers(1, 255))
    return blob[:at] + bytes([blob[at] ^ value]) + blob[at + 1 :] if blob else blob


def truncate(data: Draw, blob: bytes, donors: list[bytes]) -> bytes:
    return blob[: data.draw(st.integers(0, len(blob)))]


def insert(data: Draw, blob: bytes, donors: list[bytes]) -> bytes:
    at = data.draw(st.integers(0, len(blob)))
    return blob[:at] + data.draw(st.binary(min_size=1, max_size=8)) + blob[at:]


def delete(data: Draw, blob: bytes, donors: list[bytes]) -> bytes:
    at = data.draw(st.integers(0, len(blob)))
    return blob[:at] + blob[at + data.draw(st.integers(1, 16)) :]


def in_tree(
    change: Callable[[Draw, der.Node, der.Node | None, der.Node, list[bytes]], None],
) -> Any:
    """A mutation of one DER element chosen at random, lengths fixed up around it; a byte
    flip where ``blob`` no longer parses. Half the time the element lies inside an
    extension's value: the object still loads, and the change reaches its field."""

    def mutation(data: Draw, blob: bytes, donors: list[bytes]) -> bytes:
        try:
            tree = der.parse(blob)
        except ValueError:
            return flip(data, blob, donors)
        nodes = list(tree.walk())
        inner = [pair for _, holder in nodes if holder.wrapped for pair in holder.walk()]
        inner = [(parent, node) for parent, node in inner if parent is not None]
        deep = bool(inner) and data.draw(st.booleans(), label="inside a value")
        pool = inner if deep else nodes
        parent, node = pool[data.draw(st.integers(0, len(pool) - 1))]
        change(data, tree, parent, node, donors)
        return tree.encode()

    return mutation


@in_tree
def new_contents(data: Draw, tree: der.Node, parent: Any, node: der.Node, donors: Any) -> None:
    node.children, node.content = None, data.draw(st.binary(max_size=12))


# BOOLEAN, INTEGER, BIT/OCTET STRING, NULL, OID, UTF8/Printable/IA5String, UTCTime,
# GeneralizedTime, BMPString, SEQUENCE, SET, and context tags as GeneralNames and
# versions use them
TAGS = [
    1,
    2,
    3,
    4,
    5,
    6,
    0x0C,
    0x13,
    0x16,
    0x17,
    0x18,
    0x1E,
    0x30,
    0x31,
    0x80,
    0x82,
    0x87,
    0xA0,
    0xA3,
]


@in_tree
def new_tag(data: Draw, tree: der.Node, parent: Any, node: der.Node, donors: Any) -> None:
    node.tag = data.draw(st.sampled_from(TAGS))


@in_tree
def small_integer(data: Draw, tree: der.Node, parent: Any, node: der.Node, donors: Any) -> None:
    # versions, serials, path lengths, CRL numbers, RSA exponents: the values parsers check
    if node.tag == der.INTEGER:
        value = data.draw(st.integers(-2, 300))
        node.content = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


@in_tree
def drop(data: Draw, tree: der.Node, parent: der.Node | None, node: der.Node, donors: Any) -> None:
    if parent is not None and parent.children:
        parent.children.remove(node)


@in_tree
def double(
    data: Draw, tree: der.Node, parent: der.Node | None, node: der.Node, donors: Any
) -> None:
    # at the level of extensions this is a duplicate extension
    if parent is not None and parent.children is not None:
        parent.children.insert(parent.children.index(node), der.parse(node.encode()))


@in_tree
def splice(
    data: Draw, tree: der.Node, parent: der.Node | None, node: der.Node, donors: list[bytes]
) -> None:
    """The element replaced by one of another object: another subject, validity, key..."""
    donor = [n for _, n in der.parse(data.draw(st.sampled_from(donors))).walk()]
    other = donor[data.draw(st.integers(0, len(donor) - 1))]
    node.tag, node.content, node.children = other.tag, other.content, other.children


BYTE_MUTATIONS = [flip, truncate, insert, delete]  # mostly stopped at loading: cheap
TREE_MUTATIONS = [new_contents, new_tag, small_integer, drop, double, splice]
DER_MUTATIONS = [*BYTE_MUTATIONS, *TREE_MUTATIONS, *TREE_MUTATIONS]


def mutated(data: Draw, kind: str, seeds: list[bytes], donors: list[bytes]) -> bytes:
    """A seed of ``kind`` with one or two mutations, as DER or PEM."""
    blob = data.draw(st.sampled_from(seeds), label="seed")
    for _ in range(data.draw(st.integers(1, 2))):
        mutation = data.draw(st.sampled_from(DER_MUTATIONS), label="mutation")
        blob = mutation(data, blob, donors)
    if data.draw(st.booleans(), label="pem"):
        body = base64.encodebytes(blob).decode()
        label = PEM_LABELS[kind]
        blob = f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()
    return blob


# ---------------------------------------------------------------- running commands


def assert_exit_0_or_1(result: Result, argv: tuple[str | Path, ...]) -> None:
    """The contract's outcome: 0, or 1 with one `error:` line followed only by hints."""
    assert result.code in (0, 1), (argv, result.code, result.stderr)
    assert "Traceback" not in result.stderr, (argv, result.stderr)
    if result.code == 1:
        lines = result.stderr.splitlines()
        errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
        assert len(errors) == 1, (argv, result.stderr)
        assert all(line.startswith("hint: ") for line in lines[errors[0] + 1 :]), (argv, lines)


def run(*argv: str | Path) -> Result:
    result = run_in_process(*argv)
    assert_exit_0_or_1(result, argv)
    if argv[0] in ("show", "list"):  # the outputs this project escapes for terminals
        assert all(c == "\n" or unicodedata.category(c) not in UNSAFE for c in result.stdout)
    return result


def write(seeds: Seeds, name: str, content: bytes | str) -> Path:
    path = seeds.fresh(name)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def donors(seeds: Seeds) -> list[bytes]:
    return [*seeds.certificates, *seeds.csrs, *seeds.crls]


# ---------------------------------------------------------------- the properties


@EXAMPLES
@given(st.data())
def test_mutated_certificates_through_show(seeds: Seeds, data: Draw) -> None:
    blob = mutated(data, "certificate", seeds.certificates, donors(seeds))
    run("show", write(seeds, "x.crt", blob), *data.draw(st.sampled_from([(), ("--json",)])))


@given(st.data())
def test_mutated_certificates_through_verify_revoke_renew_and_export(
    seeds: Seeds, data: Draw
) -> None:
    certificate = write(
        seeds, "x.crt", mutated(data, "certificate", seeds.certificates, donors(seeds))
    )
    ca = seeds.ca
    command = data.draw(
        st.sampled_from(
            [
                ("verify", "--ca", ca, certificate),
                (
                    "verify",
                    "--ca",
                    ca,
                    certificate,
                    "--purpose",
                    "server",
                    "--hostname",
                    "www.example.test",
                    "--check-revocation",
                ),
                ("revoke", "--ca", ca, certificate, "--reason", "superseded"),
                ("renew", "--ca", ca, certificate, "--out", seeds.fresh("renewed.crt")),
                export(seeds, "--ca", ca, certificate),
            ]
        ),
        label="command",
    )
    run(*command)


def export(seeds: Seeds, *target: str | Path) -> tuple[str | Path, ...]:
    """`minica export` of ``target`` (the CA option and a certificate) with the seed key."""
    return (
        "export", *target, "--key", seeds.leaf_key, "--p12", seeds.fresh("x.p12"),
        "--passphrase-file", p12_pass(seeds),
    )  # fmt: skip


def p12_pass(seeds: Seeds) -> Path:
    path = seeds.work / "p12.pass"
    if not path.exists():
        path.write_text("a p12 passphrase\n")
    return path


@EXAMPLES
@given(st.data())
def test_mutated_csrs_through_show_and_sign(seeds: Seeds, data: Draw) -> None:
    request = write(seeds, "x.csr", mutated(data, "csr", seeds.csrs, donors(seeds)))
    command = data.draw(
        st.sampled_from(
            [
                ("show", request),
                ("show", request, "--json"),
                ("sign", "--ca", seeds.ca, "--profile", "server", request),
                (
                    "sign",
                    "--ca",
                    seeds.ca,
                    "--profile",
                    "client",
                    request,
                    "--json",
                    "--out",
                    seeds.fresh("x.crt"),
                ),
            ]
        ),
        label="command",
    )
    run(*command)


@EXAMPLES
@given(st.data())
def test_mutated_crls_through_show(seeds: Seeds, data: Draw) -> None:
    blob = mutated(data, "crl", seeds.crls, donors(seeds))
    run("show", write(seeds, "x.crl", blob), *data.draw(st.sampled_from([(), ("--json",)])))


@given(st.data())
def test_a_mutated_crl_pem_through_verify_check_revocation(
    seeds: Seeds, revocation_ca: Path, data: Draw
) -> None:
    (revocation_ca / "crl.pem").write_bytes(mutated(data, "crl", seeds.crls, donors(seeds)))
    leaf = seeds.work / "leaf.pem"
    if not leaf.exists():
        certificate = x509.load_der_x509_certificate(seeds.certificates[0])
        leaf.write_bytes(certificate.public_bytes(Encoding.PEM))
    run("verify", "--ca", revocation_ca, leaf, "--check-revocation")


@pytest.fixture(scope="module")
def revocation_ca(seeds: Seeds) -> Path:
    return copy_ca(seeds.ca_without_crl, seeds.work / "revocation-ca")


def without_crl_number(crl: bytes) -> bytes:
    tree = der.parse(crl)
    number = der.extension(tree, "2.5.29.20")
    for parent, node in tree.walk():
        if node is number and parent is not None and parent.children is not None:
            parent.children.remove(node)
    return tree.encode()


def bad_utf8_names(blob: bytes) -> bytes:
    """``blob`` with every UTF8String of its names made invalid UTF-8."""
    tree = der.parse(blob)
    for _, node in tree.walk():
        if node.tag == 0x0C:
            node.content = b"\xff" + node.content
    return tree.encode()


def test_a_crl_pem_without_a_crl_number_is_a_clean_refusal(seeds: Seeds) -> None:
    ca = copy_ca(seeds.ca_without_crl, seeds.fresh("crl-ca"))
    (ca / "crl.pem").write_bytes(without_crl_number(seeds.crls[0]))
    leaf = write(seeds, "leaf.der", seeds.certificates[0])
    result = run("verify", "--ca", ca, leaf, "--check-revocation")
    assert result.code == 1, result.stdout


KNOWN = {
    "verify: a certificate of version 5 (requests.load_certificate)": (
        "certificate",
        lambda seeds: der.set_first_integer(seeds.certificates[0], 5),
        ("verify",),
    ),
    "revoke: a certificate whose subject cannot be read (lifecycle.record_of)": (
        "certificate",
        lambda seeds: bad_utf8_names(seeds.certificates[0]),
        ("revoke",),
    ),
    "verify: a crl.pem whose issuer cannot be read (verify._check_revocation)": (
        "crl",
        lambda seeds: bad_utf8_names(seeds.crls[0]),
        ("verify", "--check-revocation"),
    ),
}


@pytest.mark.parametrize("case", KNOWN.values(), ids=KNOWN.keys())
def test_inputs_that_once_ended_in_tracebacks(
    seeds: Seeds, case: tuple[str, Callable[[Seeds], bytes], tuple[str, ...]]
) -> None:
    kind, make, (command, *options) = case
    ca = copy_ca(seeds.ca_without_crl, seeds.fresh("known-ca"))
    if kind == "crl":
        (ca / "crl.pem").write_bytes(make(seeds))
        target = write(seeds, "leaf.der", seeds.certificates[0])
    else:
        target = write(seeds, "broken.der", make(seeds))
    run(command, "--ca", ca, target, *options)


# ---------------------------------------------------------------- mutations of YAML

YAML_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=20)
    | st.sampled_from(["server_auth", "digital_signature", "ec-p256", "dns", "1.2.3", "http://x"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
YAML_NOISE = [
    "!!python/object:os.system",
    "&a",
    "*a",
    "{",
    "}",
    "[",
    "- ",
    ": ",
    "\t",
    "%",
    "'",
    '"',
    "\n  ",
    "<<: *a",
    "? ",
]


def mutated_yaml(data: Draw, texts: list[str]) -> str:
    """A YAML seed with its mapping edited (keys dropped, changed, added, misspelt) or its
    text garbled."""
    text = data.draw(st.sampled_from(texts), label="seed")
    if data.draw(st.booleans(), label="edit the mapping"):
        mapping: dict[Any, Any] = yaml.safe_load(text)
        for _ in range(data.draw(st.integers(1, 3))):
            key = data.draw(st.sampled_from(sorted(mapping) or ["description"]))
            action = data.draw(st.sampled_from(["drop", "change", "misspell", "nest", "add"]))
            if action == "drop":
                mapping.pop(key, None)
            elif action == "change":
                mapping[key] = data.draw(YAML_VALUES)
            elif action == "misspell":
                mapping[key + data.draw(st.sampled_from(["s", "_", " ", "é"]))] = mapping.pop(
                    key, None
                )
            elif action == "nest" and isinstance(mapping.get(key), dict):
                inner = mapping[key]
                inner[data.draw(st.sampled_from([*sorted(inner), "extra"]))] = data.draw(
                    YAML_VALUES
                )
            else:
                mapping[data.draw(st.text(max_size=10))] = data.draw(YAML_VALUES)
        text = yaml.safe_dump(mapping, allow_unicode=True)
    for _ in range(data.draw(st.integers(0, 2))):
        at = data.draw(st.integers(0, len(text)))
        noise = data.draw(st.sampled_from(YAML_NOISE) | st.text(max_size=4))
        text = text[:at] + noise + text[at + data.draw(st.integers(0, 3)) :]
    return text


@EXAMPLES
@given(st.data())
def test_mutated_profiles_through_profiles_show_sign_and_issue(
    seeds: Seeds, profile_ca: Path, data: Draw
) -> None:
    text = mutated_yaml(data, seeds.profiles)
    request = seeds.work / "seed.csr"
    if not request.exists():
        request.write_bytes(seeds.csrs[0])
    if data.draw(st.booleans(), label="as the CA's own server profile"):
        (profile_ca / "profiles" / "server.yaml").write_text(text)
        profile: str | Path = "server"
    else:
        profile = write(seeds, "x.yaml", text)
    ca = ("--ca", profile_ca)
    command = data.draw(
        st.sampled_from(
            [
                ("profiles", "show", profile, *ca),
                ("profiles", *ca),
                ("sign", *ca, "--profile", profile, request, "--out", seeds.fresh("x.crt")),
                (
                    "issue",
                    *ca,
                    "--profile",
                    profile,
                    "--cn",
                    "www.example.test",
                    "--dns",
                    "www.example.test",
                    "--out",
                    seeds.fresh("x.crt"),
                ),
            ]
        ),
        label="command",
    )
    run(*command)


@pytest.fixture(scope="module")
def profile_ca(seeds: Seeds) -> Path:
    return copy_ca(seeds.ca, seeds.work / "profile-ca")


@pytest.fixture(scope="module")
def settings_ca(seeds: Seeds) -> Path:
    return copy_ca(seeds.ca, seeds.work / "settings-ca")


@EXAMPLES
@given(st.data())
def test_a_mutated_ca_yaml_through_every_command_on_the_ca(
    seeds: Seeds, settings_ca: Path, data: Draw
) -> None:
    (settings_ca / "ca.yaml").write_text(mutated_yaml(data, [seeds.settings]))
    leaf = seeds.work / "settings-leaf.der"
    if not leaf.exists():
        leaf.write_bytes(seeds.certificates[0])
    request = seeds.work / "settings.csr"
    if not request.exists():
        request.write_bytes(seeds.csrs[0])
    ca = ("--ca", settings_ca)
    serial = format(x509.load_der_x509_certificate(seeds.certificates[0]).serial_number, "x")
    command = data.draw(
        st.sampled_from(
            [
                ("list", *ca),
                ("list", *ca, "--json"),
                ("show", serial, *ca),
                ("sign", *ca, "--profile", "server", request, "--out", seeds.fresh("x.crt")),
                ("issue", *ca, "--profile", "client", "--cn", "Bob", "--out", seeds.fresh("b.crt")),
                ("renew", *ca, serial, "--out", seeds.fresh("r.crt")),
                ("verify", *ca, leaf, "--check-revocation"),
                ("revoke", *ca, serial),
                ("crl", *ca, "--out", seeds.fresh("crl.pem")),
                ("profiles", *ca),
                ("profiles", "show", "server", *ca),
                ("doctor", *ca),
                export(seeds, *ca, serial),
            ]
        ),
        label="command",
    )
    run(*command)


# ---------------------------------------------------------------- and as real processes


def test_the_entry_point_behaves_the_same_in_a_real_process(seeds: Seeds) -> None:
    # One broken input of each kind: the process gives what the in-process run gave.
    broken_ku = der.set_extension_value(seeds.certificates[0], "2.5.29.15", b"\x01\x01\xff")
    cases = [
        ("show", write(seeds, "ku.der", broken_ku)),
        (
            "sign",
            "--ca",
            seeds.ca,
            "--profile",
            "server",
            write(seeds, "cut.csr", seeds.csrs[0][:90]),
        ),
        ("profiles", "show", write(seeds, "bad.yaml", "description: x\nkeys: {allowed: [dsa]}\n")),
        ("list", "--ca", broken_settings(seeds)),
    ]
    for argv in cases:
        in_process, real = run(*argv), run_minica(*argv)
        assert_exit_0_or_1(real, argv)
        assert (real.code, real.stdout) == (in_process.code, in_process.stdout), argv
        assert real.stderr.splitlines()[:1] == in_process.stderr.splitlines()[:1], argv


def broken_settings(seeds: Seeds) -> Path:
    ca = copy_ca(seeds.ca, seeds.fresh("broken-settings-ca"))
    (ca / "ca.yaml").write_text("key_type: [ec-p256\n")
    return ca
