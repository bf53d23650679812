"""`minica verify` agrees with the real clients: a matrix of certificates, each judged by
`minica verify` (run in-process) and by `openssl verify` on the same inputs, or by the
program that uses such a certificate where `openssl verify` does not look (`openssl
ocsp` for OCSP responders; OpenSSL 3.2's codesign rules for code signing, which 3.0
lacks).

The matrix: every CA key type (ed25519 included) as root and as intermediate, leaves of
every key type issued directly and through an intermediate (found in the CERT file, in
the root's registry, or with --ca on the intermediate); validity periods, broken chains,
name constraints, Extended Key Usage and key usage combinations built by hand with
cryptography; host names; CRLs.

Where minica is deliberately stricter than `openssl verify`, a test in section 6 says so
and shows the client that refuses too, or why minica refuses anyway.
"""

from __future__ import annotations

import io
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from conftest import Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tls import handshake

from minica import CertificateAuthority, ManualClock, Names, Subject
from minica.cli import main
from minica.constraints import NameConstraints
from minica.keys import PrivateKey, generate, private_key_pem, signature_hash
from minica.verify import VerificationFailed, verify

OpenSSL = Callable[..., subprocess.CompletedProcess[str]]
KEY_TYPES = ("ec-p256", "ec-p384", "ec-p521", "rsa-2048", "ed25519")
# Each root's intermediate has another key type, so that every type signs and is signed.
INTERMEDIATE_KEY = dict(zip(KEY_TYPES, KEY_TYPES[1:] + KEY_TYPES[:1], strict=True))
OPENSSL_PURPOSES = {
    "server": "sslserver",
    "client": "sslclient",
    "email": "smimesign",
    "timestamping": "timestampsign",
    "code-signing": "codesign",
}
Row = tuple[str, bool, str, dict[str, Any]]  # name, valid, what minica says, options


def rows_of(rows: list[Row]) -> list[Row]:
    """A table of cases, typed (its options are keyword arguments of different types)."""
    return rows


NOW = datetime.now(timezone.utc)
DAY = timedelta(days=1)
DS, CC, KE = "digital_signature", "content_commitment", "key_encipherment"
KA, CERT_SIGN, CRL_SIGN = "key_agreement", "key_cert_sign", "crl_sign"
UNKNOWN = x509.ObjectIdentifier("1.3.6.1.4.1.55555.1")


# --- running minica in-process ---------------------------------------------------------------


def minica(*args: str | Path) -> Result:
    """`minica ARGS` in this process, through the console command's entry point."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["minica", *map(str, args)]
    with mock.patch.object(sys, "argv", argv), redirect_stdout(out), redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    result = Result(code, out.getvalue(), err.getvalue())
    if code == 0:  # exactly OK, or exit 1 and one `error:` line (and maybe a `hint:`)
        assert (result.stdout, result.stderr) == ("OK\n", ""), result
    else:
        lines = result.stderr.strip().splitlines()
        assert code == 1 and lines and lines[0].startswith("error: "), result
        assert all(line.startswith("hint: ") for line in lines[1:]), result
    return result


# --- certificates built by hand --------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    certificate: x509.Certificate
    key: PrivateKey

    @classmethod
    def of(cls, authority: CertificateAuthority) -> Issuer:
        return cls(authority.certificate, authority.private_key)


def forge(
    issuer: Issuer,
    *,
    cn: str = "x.agree.test",
    dns: Sequence[str] = ("x.agree.test",),
    ip: Sequence[str] = (),
    email: Sequence[str] = (),
    key_type: str = "ec-p256",
    ku: Sequence[str] | None = (DS,),
    ku_critical: bool = True,
    eku: Sequence[x509.ObjectIdentifier] | None = (EKU.SERVER_AUTH,),
    eku_critical: bool = False,
    ca: bool = False,
    path_length: int | None = None,
    basic_constraints: bool = True,
    aki_critical: bool = False,
    name_constraints: x509.NameConstraints | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> Issuer:
    """A certificate signed by ``issuer``'s key with exactly the extensions asked for."""
    key = generate(key_type)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip]
    names += [x509.RFC822Name(e) for e in email]
    issuer_key = issuer.key.public_key()
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        (x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), aki_critical),
    ]
    if basic_constraints:
        extensions.append((x509.BasicConstraints(ca, path_length), True))
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    if ku is not None:
        usages = {name: name in ku for name in (DS, CC, KE, "data_encipherment", KA)}
        usages |= {CERT_SIGN: CERT_SIGN in ku, CRL_SIGN: CRL_SIGN in ku}
        usage = x509.KeyUsage(**usages, encipher_only=False, decipher_only=False)
        extensions.append((usage, ku_critical))
    if eku is not None:
        extensions.append((x509.ExtendedKeyUsage(list(eku)), eku_critical))
    if name_constraints is not None:
        extensions.append((name_constraints, True))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(hours=1))
        .not_valid_after(not_after or NOW + 30 * DAY)
    )
    for value, critical in [*extensions, *extra]:
        builder = builder.add_extension(value, critical)
    return Issuer(builder.sign(issuer.key, signature_hash(issuer.key)), key)  # type: ignore[arg-type]


def forge_ca(issuer: Issuer, cn: str, **options: Any) -> Issuer:
    """An intermediate CA certificate by hand (keyCertSign, cRLSign, no EKU unless asked)."""
    defaults = {"dns": (), "ku": (DS, CERT_SIGN, CRL_SIGN), "eku": None, "ca": True}
    return forge(issuer, cn=cn, **{**defaults, **options})


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def unknown_extension(critical: bool) -> tuple[x509.ExtensionType, bool]:
    return x509.UnrecognizedExtension(UNKNOWN, b"\x05\x00"), critical


# --- the PKI, and the cases ------------------------------------------------------------------


@dataclass
class Lab:
    folder: Path
    roots: dict[str, CertificateAuthority] = field(default_factory=dict)
    intermediates: dict[str, CertificateAuthority] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # certificate files by name

    def write(self, name: str, *certificates: x509.Certificate) -> Path:
        path = self.folder / f"{name}.crt"
        path.write_bytes(pem(*certificates))
        self.files[name] = path
        return path

    def issue(self, authority: CertificateAuthority, profile: str, cn: str, **options: Any) -> Path:
        names = Names.parse(**{k: options.pop(k) for k in ("dns", "email") if k in options})
        issued, _ = authority.issue(
            authority.profile(profile), Subject(common_name=cn), names, **options
        )
        return self.write(f"{profile}-{cn}", issued.certificate)


def folder(authority: CertificateAuthority) -> Path:
    assert authority.folder is not None
    return authority.folder.directory


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A root and an intermediate (`init --parent`) per key type, and a server certificate
    of every key type under each of them, alone and followed by the intermediate."""
    lab = Lab(tmp_path_factory.mktemp("agree"))
    for key_type in KEY_TYPES:
        clock = ManualClock(NOW - 10 * DAY)  # roots made earlier: stale CRLs can be signed
        root = CertificateAuthority.init(
            lab.folder / f"root-{key_type}",
            subject=Subject(common_name=f"agree root {key_type}"),
            key_type=key_type,
            clock=clock,
        )
        clock.now = NOW
        inter = CertificateAuthority.init(
            lab.folder / f"inter-{key_type}",
            subject=Subject(common_name=f"agree issuing {key_type}"),
            key_type=INTERMEDIATE_KEY[key_type],
            parent=root,
            clock=clock,  # what the lab issues is dated NOW, whenever the fixture runs
        )
        lab.roots[key_type], lab.intermediates[key_type] = root, inter
        for leaf_type in KEY_TYPES:
            for where, ca in (("root", root), ("inter", inter)):
                host = f"{leaf_type}.{where}.{key_type}.agree.test"
                issued, _ = ca.issue(
                    ca.profile("server"),
                    Subject(common_name=host),
                    Names.parse(dns=[host]),
                    key_type=leaf_type,
                )
                lab.write(host, issued.certificate)
                if ca is inter:
                    lab.write(f"{host}-full", issued.certificate, inter.certificate)
    return lab


@dataclass(frozen=True)
class Case:
    """One input, and the verdict minica and the judge must both give."""

    name: str
    ca: Path  # --ca
    cert: Path  # CERT
    valid: bool
    purpose: str | None = None
    hostname: str | None = None
    untrusted: Path | None = None  # for openssl: the intermediates minica finds itself
    crl: bool = False
    says: str = ""  # what minica's error must say

    def minica_args(self) -> list[str | Path]:
        args: list[str | Path] = ["verify", "--ca", self.ca, self.cert]
        args += ["--purpose", self.purpose] if self.purpose else []
        args += ["--hostname", self.hostname] if self.hostname else []
        return args + (["--check-revocation"] if self.crl else [])

    def openssl_args(self) -> list[str | Path]:
        args: list[str | Path] = ["verify", "-CAfile", self.ca / "ca-chain.crt"]
        args += ["-untrusted", self.untrusted] if self.untrusted else []
        args += ["-purpose", OPENSSL_PURPOSES[self.purpose]] if self.purpose else []
        if self.hostname:
            is_ip = self.hostname.replace(".", "").isdigit() or ":" in self.hostname
            args += ["-verify_ip" if is_ip else "-verify_hostname", self.hostname]
        args += ["-crl_check", "-CRLfile", self.ca / "crl.pem"] if self.crl else []
        return [*args, self.cert]


def judge(cases: Iterable[Case], other: Callable[[Case], bool]) -> None:
    """Each case through minica and ``other`` (the judge); every disagreement reported."""
    wrong = []
    for case in cases:
        ours = minica(*case.minica_args())
        verdicts = {"minica": ours.code == 0, "judge": other(case)}
        if set(verdicts.values()) != {case.valid} or case.says not in ours.stderr:
            wrong.append(f"{case.name}: valid={case.valid}, {verdicts}, {ours.stderr.strip()}")
    assert not wrong, "\n".join(wrong)


def openssl_verify(openssl: OpenSSL) -> Callable[[Case], bool]:
    def accepts(case: Case) -> bool:
        done = openssl(*case.openssl_args())
        assert done.returncode in (0, 2), (case.name, done.stderr)
        return done.returncode == 0

    return accepts


class Cases:
    """Cases of certificates forged under one CA folder's CA; CERT holds leaf and chain."""

    def __init__(self, lab: Lab, authority: CertificateAuthority, prefix: str) -> None:
        self.lab, self.ca, self.prefix = lab, folder(authority), prefix
        self.issuer = Issuer.of(authority)
        self.cases: list[Case] = []

    def add(
        self, name: str, valid: bool, certificates: Sequence[x509.Certificate], **fields: Any
    ) -> None:
        path = self.lab.write(f"{self.prefix}-{len(self.cases)}", *certificates)
        self.cases.append(Case(name, self.ca, path, valid, untrusted=path, **fields))

    def table(
        self,
        rows: Iterable[tuple[str, bool, str, dict[str, Any]]],
        under: Issuer | None = None,
        **fields: Any,
    ) -> None:
        """One case per row (name, valid, what minica says, forge options), each leaf forged
        under ``under`` (which CERT carries after it) or this CA; ``fields`` are Case's."""
        issuer = under or self.issuer
        chain = [under.certificate] if under else []
        prefix = f"{fields['purpose']}: " if "purpose" in fields else ""
        for name, valid, says, options in rows:
            leaf = forge(issuer, **options).certificate
            self.add(f"{prefix}{name}", valid, [leaf, *chain], says=says, **fields)


# --- 1. every key type, directly and through an intermediate ----------------------------------


@pytest.mark.parametrize("root_type", KEY_TYPES)
def test_every_key_type_verifies_as_openssl_says(
    lab: Lab, openssl: OpenSSL, root_type: str
) -> None:
    root, inter = folder(lab.roots[root_type]), folder(lab.intermediates[root_type])
    cases = []
    for leaf_type in KEY_TYPES:
        direct = f"{leaf_type}.root.{root_type}.agree.test"
        below = f"{leaf_type}.inter.{root_type}.agree.test"
        full = lab.files[f"{below}-full"]
        for name, ca, cert, host, untrusted in [
            ("issued by the root", root, lab.files[direct], direct, None),
            # --ca ROOT and the leaf alone: the intermediate is in the root's registry
            ("through the registry", root, lab.files[below], below, inter / "ca.crt"),
            ("through the CERT file", root, full, below, full),
            ("--ca the intermediate", inter, lab.files[below], below, None),
        ]:
            case = Case(f"{leaf_type} {name}", ca, cert, True, "server", host, untrusted, says="")
            cases.append(case)
    judge(cases, openssl_verify(openssl))


def test_the_api_returns_the_path_through_the_intermediate(lab: Lab) -> None:
    root, inter = lab.roots["ed25519"], lab.intermediates["ed25519"]
    leaf = x509.load_pem_x509_certificate(
        lab.files["ec-p256.inter.ed25519.agree.test"].read_bytes()
    )
    path = verify(leaf, root.chain, now=NOW, intermediates=[inter.certificate])
    assert path == [leaf, inter.certificate, root.certificate]
    with pytest.raises(VerificationFailed, match="not issued by this CA: its issuer is CN=agree"):
        verify(leaf, root.chain, now=NOW)  # no intermediate given, none looked up


# --- 2. chains: validity, CA constraints, path lengths, name constraints ----------------------


def test_chains_verify_as_openssl_says(lab: Lab, openssl: OpenSSL) -> None:
    cases = Cases(lab, lab.roots["ec-p256"], "chain")
    root = cases.issuer
    cases.table(
        [
            ("expired", False, "expired on", {"not_before": NOW - 9 * DAY, "not_after": NOW - DAY}),
            ("not yet valid", False, "not valid until", {"not_before": NOW + DAY}),
            (
                "unknown critical extension",
                False,
                UNKNOWN.dotted_string,
                {"extra": [unknown_extension(True)]},
            ),
            ("unknown extension, not critical", True, "", {"extra": [unknown_extension(False)]}),
            ("critical AKI", False, "critical extension", {"aki_critical": True}),
            ("no SAN, key usage or EKU", True, "", {"dns": (), "ku": None, "eku": None}),
        ]
    )
    other_key = Issuer(root.certificate, generate("ec-p384"))
    cases.table([("same issuer name, another key", False, "did not sign", {})], under=other_key)
    for name, valid, says, ca in rows_of(
        [
            (
                "expired CA",
                False,
                "CN=expired CA expired on",
                {"not_before": NOW - 9 * DAY, "not_after": NOW - DAY},
            ),
            ("not a CA", False, "not a CA certificate (basic constraints CA:FALSE)", {"ca": False}),
            ("no basic constraints", False, "(no basic constraints)", {"basic_constraints": False}),
            (
                "no keyCertSign",
                False,
                "does not allow signing certificates",
                {"ku": (DS, CRL_SIGN)},
            ),
            ("no key usage", True, "", {"ku": None}),
        ]
    ):
        cases.table([(f"intermediate: {name}", valid, says, {})], under=forge_ca(root, name, **ca))
    zero = forge_ca(root, "path length 0", path_length=0)
    deeper = forge_ca(zero, "under path length 0")
    chain = [forge(deeper).certificate, deeper.certificate, zero.certificate]
    cases.add("path length exceeded", False, chain, says="(path length 0); this chain has 1")
    client_only = forge_ca(root, "client-only CA", eku=(EKU.CLIENT_AUTH,))
    limited = "CA certificate CN=client-only CA is limited to client authentication"
    cases.table(
        [("clientAuth CA, as server", False, limited, {})], under=client_only, purpose="server"
    )
    client = {"eku": (EKU.CLIENT_AUTH,)}
    cases.table(
        [("clientAuth CA, as client", True, "", client)], under=client_only, purpose="client"
    )
    cases.table([("clientAuth CA, no purpose", True, "", {})], under=client_only)
    any_ca = forge_ca(root, "anyEKU CA", eku=(EKU.ANY_EXTENDED_KEY_USAGE,))
    cases.table(
        [("anyEKU CA, as server", False, "is limited to any", {})], under=any_ca, purpose="server"
    )
    judge(cases.cases, openssl_verify(openssl))


def test_name_constraints_verify_as_openssl_says(lab: Lab, openssl: OpenSSL) -> None:
    cases = Cases(lab, lab.roots["ec-p256"], "constraints")
    made = CertificateAuthority.init(  # as `minica init --parent --permit-*` makes one
        lab.folder / "constrained",
        subject=Subject(common_name="agree constrained"),
        parent=lab.roots["ec-p256"],
        name_constraints=NameConstraints.parse(
            dns=["lab.test"], ip=["10.0.0.0/8"], email=["lab.test"]
        ),
    )
    out = "is outside the name constraints of CN=agree constrained"
    device: dict[str, Any] = {"dns": (), "cn": "device"}
    person: dict[str, Any] = {"dns": (), "cn": "Alice"}
    rows: list[Row] = [
        ("dns inside", True, "", {"dns": ("www.lab.test",)}),
        ("wildcard inside", True, "", {"dns": ("*.lab.test",)}),
        ("upper case inside", True, "", {"dns": ("WWW.LAB.TEST",)}),
        ("dns outside", False, f"DNS name www.evil.test {out}", {"dns": ("www.evil.test",)}),
        ("dns look-alike", False, out, {"dns": ("www.evillab.test",)}),
        (
            "one name of two outside",
            False,
            "DNS name lab.evil",
            {"dns": ("www.lab.test", "lab.evil")},
        ),
        ("ip inside", True, "", {**device, "ip": ("10.1.2.3",)}),
        ("ip outside", False, f"IP address 11.1.2.3 {out}", {**device, "ip": ("11.1.2.3",)}),
        ("ipv6, IPv4 constraint", False, out, {**device, "ip": ("2001:db8::1",)}),
        ("email inside", True, "", {**person, "email": ("alice@lab.test",)}),
        ("email in a subdomain", False, out, {**person, "email": ("alice@x.lab.test",)}),
        ("host-like CN outside, no SAN", False, out, {"dns": (), "cn": "www.evil.test"}),
        ("host-like CN outside, SAN in", True, "", {"dns": ("a.lab.test",), "cn": "b.evil.test"}),
        ("plain CN, no SAN", True, "", {"dns": (), "cn": "Alice Example"}),
    ]
    cases.table(rows, under=Issuer.of(made))
    excluded = x509.NameConstraints(None, [x509.DNSName("bad.lab.test")])
    excluding = forge_ca(cases.issuer, "excluding CA", name_constraints=excluded)
    rows = [
        ("excluded subtree", False, "excluded by", {"dns": ("a.bad.lab.test",)}),
        ("beside the excluded subtree", True, "", {"dns": ("a.good.lab.test",)}),
    ]
    cases.table(rows, under=excluding)
    organization = x509.DirectoryName(
        x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab")])
    )
    directory = forge_ca(
        cases.issuer, "dirName CA", name_constraints=x509.NameConstraints([organization], None)
    )
    cases.table(
        [("outside a dirName constraint", False, "subject CN=x.agree.test", {})], under=directory
    )
    judge(cases.cases, openssl_verify(openssl))


def test_two_intermediates_deep(lab: Lab, openssl: OpenSSL) -> None:
    """root -> A (path length 1, in root's registry) -> B (in A's registry only) -> leaf."""
    root = lab.roots["ec-p384"]
    a = CertificateAuthority.init(
        lab.folder / "a", subject=Subject(common_name="deep A"), parent=root, path_length=1
    )
    b = CertificateAuthority.init(lab.folder / "b", subject=Subject(common_name="deep B"), parent=a)
    leaf = lab.issue(b, "server", "deep.test", dns=["deep.test"])
    certificate = x509.load_pem_x509_certificate(leaf.read_bytes())
    full = lab.write("deep-full", certificate, b.certificate, a.certificate)
    a_file, b_file = folder(a) / "ca.crt", folder(b) / "ca.crt"
    cases = [
        Case("leaf, --ca root: B is in no registry of it", folder(root), leaf, False,
             untrusted=a_file, says="its issuer is CN=deep B"),
        Case("full chain, --ca root", folder(root), full, True, untrusted=full),
        Case("leaf, --ca A: B is in its registry", folder(a), leaf, True, untrusted=b_file),
    ]  # fmt: skip
    judge(cases, openssl_verify(openssl))


# --- 3. purposes: Extended Key Usage and key usage -------------------------------------------


def test_minicas_profiles_are_for_their_purposes_only(lab: Lab, openssl: OpenSSL) -> None:
    root = lab.roots["ec-p256"]
    names = {"server": {"dns": ["p.agree.test"]}, "email": {"email": ["p@agree.test"]}}
    cases = []
    for profile in ("server", "client", "email", "timestamping", "code-signing", "ocsp-signing"):
        for key_type in ("ec-p256", "rsa-2048"):
            cert = lab.issue(
                root, profile, f"{profile} {key_type}", key_type=key_type, **names.get(profile, {})
            )
            for purpose in ("server", "client", "email", "timestamping"):
                fit = profile == purpose
                name = f"{profile} {key_type} as {purpose}"
                cases.append(
                    Case(name, folder(root), cert, fit, purpose, says="" if fit else ", not ")
                )
    judge(cases, openssl_verify(openssl))


def test_key_usage_and_eku_verify_as_openssl_says(lab: Lab, openssl: OpenSSL) -> None:
    cases = Cases(lab, lab.roots["ec-p256"], "purpose")
    rsa, any_eku = {"key_type": "rsa-2048"}, EKU.ANY_EXTENDED_KEY_USAGE
    cases.table(
        [
            ("RSA, key_encipherment only", True, "", {**rsa, "ku": (KE,)}),
            ("RSA, digital_signature only", True, "", {**rsa, "ku": (DS,)}),
            ("EC, digital_signature and key_agreement", True, "", {"ku": (DS, KA)}),
            ("Ed25519", True, "", {"key_type": "ed25519"}),
            (
                "EC, content_commitment only",
                False,
                "(content_commitment) lacks digital_signature:",
                {"ku": (CC,)},
            ),
            (
                "RSA, content_commitment only",
                False,
                "lacks digital_signature or key_encipherment",
                {**rsa, "ku": (CC,)},
            ),
            ("no key usage", True, "", {"ku": None}),
            ("no EKU", True, "", {"eku": None}),
            (
                "anyEKU only",
                False,
                "for any purpose (anyExtendedKeyUsage), not server",
                {"eku": (any_eku,)},
            ),
            ("serverAuth and anyEKU", True, "", {"eku": (EKU.SERVER_AUTH, any_eku)}),
        ],
        purpose="server",
    )
    client = {"eku": (EKU.CLIENT_AUTH,)}
    cases.table(
        [
            (
                "key_encipherment only",
                False,
                "lacks digital_signature",
                {**client, **rsa, "ku": (KE,)},
            ),
            ("RSA, digital_signature", True, "", {**client, **rsa}),
            ("no key usage", True, "", {**client, "ku": None}),
        ],
        purpose="client",
    )
    email = {"eku": (EKU.EMAIL_PROTECTION,), "dns": (), "email": ("a@agree.test",)}
    neither = "lacks digital_signature or content_commitment"
    cases.table(
        [
            ("content_commitment only", True, "", {**email, "ku": (CC,)}),
            ("key_encipherment only", False, neither, {**email, **rsa, "ku": (KE,)}),
            ("key_agreement only", False, neither, {**email, "ku": (KA,)}),
            ("no EKU", True, "", {**email, "eku": None}),
        ],
        purpose="email",
    )
    ts = EKU.TIME_STAMPING
    tsa = {"eku": (ts,), "eku_critical": True, "dns": ()}
    only = "as its only Extended Key Usage (RFC 3161 2.3); this one is also for"
    no_eku = "no Extended Key Usage; for time stamping it must name timeStamping"
    cases.table(
        [
            ("by hand", True, "", tsa),
            ("Ed25519", True, "", {**tsa, "key_type": "ed25519"}),
            ("content_commitment only", True, "", {**tsa, "ku": (CC,)}),
            ("both signing usages", True, "", {**tsa, "ku": (DS, CC)}),
            ("no key usage", True, "", {**tsa, "ku": None}),
            ("EKU not critical", False, "must be critical", {**tsa, "eku_critical": False}),
            ("also serverAuth", False, only, {**tsa, "eku": (ts, EKU.SERVER_AUTH)}),
            ("also anyEKU", False, only, {**tsa, "eku": (ts, any_eku)}),
            ("key_encipherment too", False, "also has key_enciph", {**tsa, **rsa, "ku": (DS, KE)}),
            ("key_agreement only", False, neither, {**tsa, "ku": (KA,)}),
            ("no EKU", False, no_eku, {**tsa, "eku": None}),
        ],
        purpose="timestamping",
    )  # fmt: skip
    judge(cases.cases, openssl_verify(openssl))


def test_code_signing_verifies_as_openssl_codesign_rules_say(lab: Lab, openssl: OpenSSL) -> None:
    """OpenSSL 3.2 added `-purpose codesign`; on 3.0 the verdicts are those its rules give
    (crypto/x509/v3_purp.c, check_purpose_code_sign): a critical key usage with
    digital_signature and neither key_cert_sign nor crl_sign; an EKU with codeSigning and
    neither serverAuth nor anyExtendedKeyUsage. CAs above need only be CAs."""
    cases = Cases(lab, lab.roots["ec-p256"], "codesign")
    code, any_eku = EKU.CODE_SIGNING, EKU.ANY_EXTENDED_KEY_USAGE
    signer = {"eku": (code,), "dns": ()}
    also = "a code signing certificate must not also be for"
    no_eku = "no Extended Key Usage; for code signing it must name codeSigning"
    cases.table(
        [
            ("by hand", True, "", signer),
            ("RSA", True, "", {**signer, "key_type": "rsa-2048"}),
            ("with emailProtection too", True, "", {**signer, "eku": (code, EKU.EMAIL_PROTECTION)}),
            ("key usage not critical", False, "must be critical", {**signer, "ku_critical": False}),
            ("no key usage", False, "needs a key usage", {**signer, "ku": None}),
            ("keyCertSign too", False, "must not allow signing", {**signer, "ku": (DS, CERT_SIGN)}),
            ("content_commitment only", False, "lacks digital_signature", {**signer, "ku": (CC,)}),
            ("serverAuth too", False, f"{also} server", {**signer, "eku": (code, EKU.SERVER_AUTH)}),
            ("anyEKU too", False, f"{also} any purpose", {**signer, "eku": (code, any_eku)}),
            ("no EKU", False, no_eku, {**signer, "eku": None}),
            ("serverAuth only", False, "is for server authentication, not code signing", {}),
        ],
        purpose="code-signing",
    )  # fmt: skip
    help_text = openssl("verify", "-help")
    if "codesign" in help_text.stdout + help_text.stderr:  # OpenSSL 3.2 and later
        judge(cases.cases, openssl_verify(openssl))
    else:
        judge(cases.cases, lambda case: case.valid)


def ocsp_judge(openssl: OpenSSL, lab: Lab, tmp_path: Path) -> Callable[[Issuer], bool]:
    """Whether `openssl ocsp` accepts a response a responder signed for a certificate of
    the ec-p256 root, the responder's issuer (RFC 6960 4.2.2.2)."""
    root = lab.roots["ec-p256"]
    subject = x509.load_pem_x509_certificate(
        lab.files["ec-p256.root.ec-p256.agree.test"].read_bytes()
    )

    def accepts(responder: Issuer) -> bool:
        response = (
            ocsp.OCSPResponseBuilder()
            .add_response(
                cert=subject,
                issuer=root.certificate,
                algorithm=hashes.SHA1(),  # the CertID hash every OCSP client knows (RFC 5019)
                cert_status=ocsp.OCSPCertStatus.GOOD,
                this_update=NOW - timedelta(minutes=1),
                next_update=NOW + DAY,
                revocation_time=None,
                revocation_reason=None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
            .certificates([responder.certificate])
            .sign(responder.key, signature_hash(responder.key))
        )
        path = tmp_path / "response.der"
        path.write_bytes(response.public_bytes(Encoding.DER))
        done = openssl("ocsp", "-respin", path, "-CAfile", folder(root) / "ca.crt", "-no_nonce")
        assert ("Response verify OK" in done.stdout + done.stderr) == (done.returncode == 0), done
        return done.returncode == 0

    return accepts


def test_ocsp_responders_verify_as_openssl_ocsp_says(
    lab: Lab, openssl: OpenSSL, tmp_path: Path
) -> None:
    """`openssl verify -purpose ocsphelper` leaves the responder itself to OCSP_basic_verify,
    so the judge is `openssl ocsp` reading a response the responder signed."""
    cases = Cases(lab, lab.roots["ec-p256"], "ocsp")
    responders: dict[str, Issuer] = {}
    no_eku = "no Extended Key Usage; for OCSP signing it must name OCSPSigning"
    for name, valid, says, options in rows_of([
        ("by hand", True, "", {}),
        ("Ed25519", True, "", {"key_type": "ed25519"}),
        ("RSA, no key usage", True, "", {"key_type": "rsa-2048", "ku": None}),
        ("OCSPSigning and serverAuth", True, "", {"eku": (EKU.OCSP_SIGNING, EKU.SERVER_AUTH)}),
        ("no EKU", False, no_eku, {"eku": None}),
        ("anyEKU", False, ", not OCSP signing", {"eku": (EKU.ANY_EXTENDED_KEY_USAGE,)}),
        ("serverAuth", False, "server authentication, not OCSP", {"eku": (EKU.SERVER_AUTH,)}),
    ]):  # fmt: skip
        responders[name] = forge(cases.issuer, **{"dns": (), "eku": (EKU.OCSP_SIGNING,), **options})
        cases.add(name, valid, [responders[name].certificate], purpose="ocsp-signing", says=says)
    accepts = ocsp_judge(openssl, lab, tmp_path)
    judge(cases.cases, lambda case: accepts(responders[case.name]))


# --- 4. host names ---------------------------------------------------------------------------


def test_host_names_verify_as_openssl_says(lab: Lab, openssl: OpenSSL) -> None:
    cases = Cases(lab, lab.roots["ec-p256"], "host")
    names: dict[str, Any] = {
        "dns": ("www.lab.test", "*.lab.test"),
        "ip": ("10.0.0.1", "2001:db8::1"),
    }
    certificate = forge(cases.issuer, **names).certificate
    for hostname, valid in [
        ("www.lab.test", True),
        ("WWW.Lab.Test", True),
        ("a.lab.test", True),
        ("a.b.lab.test", False),
        ("lab.test", False),
        ("wwwlab.test", False),
        ("www.lab.test.example", False),
        ("10.0.0.1", True),
        ("10.0.0.2", False),
        ("2001:db8::1", True),
        ("2001:db8::2", False),
    ]:
        holds = "www.lab.test, *.lab.test, 10.0.0.1, 2001:db8::1"
        says = "" if valid else f"certificate is for {holds}, not {hostname}"
        cases.add(hostname, valid, [certificate], purpose="server", hostname=hostname, says=says)
    judge(cases.cases, openssl_verify(openssl))


# --- 5. revocation ---------------------------------------------------------------------------


def test_revocation_verifies_as_openssl_crl_check_says(lab: Lab, openssl: OpenSSL) -> None:
    cases: list[Case] = []
    for key_type in ("ec-p256", "ed25519"):  # CRLs signed with ECDSA and with Ed25519
        root, inter = lab.roots[key_type], lab.intermediates[key_type]
        for authority, where in ((root, "root"), (inter, "intermediate")):
            revoked = lab.issue(authority, "client", f"revoked {where} {key_type}")
            kept = lab.issue(authority, "client", f"kept {where} {key_type}")
            serial = x509.load_pem_x509_certificate(revoked.read_bytes()).serial_number
            authority.revoke(format(serial, "x"), "key-compromise")
            (folder(authority) / "crl.pem").write_bytes(authority.crl().public_bytes(Encoding.PEM))
            base, name = Case("", folder(authority), kept, True, crl=True), f"{key_type} {where}"
            cases += [
                replace(base, name=f"{name}: not revoked"),
                replace(
                    base, name=f"{name}: revoked", cert=revoked, valid=False, says="revoked on"
                ),
                replace(base, name=f"{name}: revoked, unasked", cert=revoked, crl=False),
            ]
        # the root's CRL cannot speak for what the intermediate issued (openssl: "unable to
        # get certificate CRL"), and says so
        cases.append(Case(f"{key_type}: intermediate's leaf, root's CRL", folder(root),
                          lab.files[f"client-kept intermediate {key_type}"], False, crl=True,
                          untrusted=folder(inter) / "ca.crt", says="only its CRL"))  # fmt: skip
    stale = lab.roots["rsa-2048"]
    crl = CertificateAuthority.open(folder(stale), clock=lambda: NOW - 3 * DAY).crl(days=1)
    (folder(stale) / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    leaf = lab.files["ec-p256.root.rsa-2048.agree.test"]
    cases.append(Case("stale CRL", folder(stale), leaf, False, crl=True, says="out of date"))
    judge(cases, openssl_verify(openssl))


def crl_by_hand(
    issuer: Issuer,
    contents: Iterable[int | tuple[x509.ExtensionType, bool]] = (),
    *,
    number: int | None = None,
    last_update: datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL of the serials in ``contents``, with the (extension, critical) pairs there."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(last_update or NOW - timedelta(minutes=5))
        .next_update(NOW + DAY)
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for item in contents:
        if isinstance(item, int):
            entry = x509.RevokedCertificateBuilder(item, NOW - timedelta(minutes=10)).build()
            builder = builder.add_revoked_certificate(entry)
        else:
            builder = builder.add_extension(*item)
    return builder.sign(issuer.key, signature_hash(issuer.key))  # type: ignore[arg-type]


def test_verify_reads_crls_minica_does_not_write_as_openssl_does(
    lab: Lab, openssl: OpenSSL, tmp_path: Path
) -> None:
    """verify.py itself needs no CRL number (reading crl.pem in a CA folder is another
    matter); the CRLs it refuses, openssl -crl_check refuses too."""
    root = lab.roots["ed25519"]
    issuer, stranger = Issuer.of(root), Issuer(root.certificate, generate("ed25519"))
    leaf_file = lab.files["ec-p256.root.ed25519.agree.test"]
    leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
    later, serial = NOW + timedelta(hours=1), leaf.serial_number
    crls = [
        ("no CRL number, revoked", crl_by_hand(issuer, [serial]), "was revoked on"),
        ("no CRL number, not revoked", crl_by_hand(issuer, [12345]), ""),
        ("a CRL number", crl_by_hand(issuer, number=7), ""),
        ("unknown critical extension", crl_by_hand(issuer, [unknown_extension(True)]), "critical"),
        ("unknown extension, not critical", crl_by_hand(issuer, [unknown_extension(False)]), ""),
        ("issued in the future", crl_by_hand(issuer, last_update=later), "not valid until"),
        ("signed by another key", crl_by_hand(stranger), "not signed by this CA"),
    ]
    wrong = []
    for name, crl, says in crls:
        crl_file = tmp_path / "crl.pem"
        crl_file.write_bytes(crl.public_bytes(Encoding.PEM))
        try:
            verify(leaf, root.chain, now=NOW, crl=crl)
            ours = ""
        except VerificationFailed as refusal:
            ours = str(refusal)
        anchors = folder(root) / "ca.crt"
        theirs = openssl(
            "verify", "-crl_check", "-CRLfile", crl_file, "-CAfile", anchors, leaf_file
        )
        if bool(ours) != bool(says) or says not in ours or (theirs.returncode == 0) != (not says):
            wrong.append(f"{name}: minica {ours or 'OK'}; openssl {theirs.stderr.strip() or 'OK'}")
    assert not wrong, "\n".join(wrong)


# --- 6. where minica asks more than `openssl verify`, and who agrees with it -----------------


def write_pair(tmp_path: Path, credential: Issuer) -> tuple[Path, Path]:
    cert, key = tmp_path / "leaf.crt", tmp_path / "leaf.key"
    cert.write_bytes(pem(credential.certificate))
    key.write_bytes(private_key_pem(credential.key))
    return cert, key


@pytest.mark.parametrize(("key_type", "usage"), [("ec-p256", KA), ("ec-p256", KE), ("ed25519", KA)])
def test_a_tls_server_key_that_cannot_sign_is_refused_as_python_ssl_refuses_it_in_tls_1_2(
    lab: Lab, openssl: OpenSSL, tmp_path: Path, key_type: str, usage: str
) -> None:
    """openssl verify -purpose sslserver takes any of digital_signature, key_encipherment
    and key_agreement; an EC or Ed25519 server key without digital_signature cannot sign
    the handshake, and Python ssl refuses it under TLS 1.2 ("bad ecc cert", or no usable
    cipher at all)."""
    root = lab.roots["ec-p256"]
    server = forge(
        Issuer.of(root), cn="localhost", dns=("localhost",), key_type=key_type, ku=(usage,)
    )
    cert, key = write_pair(tmp_path, server)
    anchors = folder(root) / "ca.crt"
    assert openssl("verify", "-CAfile", anchors, "-purpose", "sslserver", cert).returncode == 0
    result = minica("verify", "--ca", folder(root), cert, "--purpose", "server")
    assert result.code == 1 and f"({usage}) lacks digital_signature: a TLS server" in result.stderr
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(anchors))
    client.maximum_version = ssl.TLSVersion.TLSv1_2
    outcome = handshake(server_context, client)
    assert not outcome.succeeded and isinstance(outcome.client_error, ssl.SSLError), outcome


def test_a_host_name_only_in_the_common_name_is_refused_as_browsers_refuse_it(
    lab: Lab, openssl: OpenSSL, tmp_path: Path
) -> None:
    """openssl verify, and Python ssl by default (hostname_checks_common_name), fall back to
    the common name of a certificate without DNS names; browsers and Go do not, and RFC
    9525 dropped that match: minica refuses, as Python ssl does when told to act alike."""
    root = lab.roots["ec-p256"]
    cert, key = write_pair(tmp_path, forge(Issuer.of(root), cn="localhost", dns=()))
    anchors = folder(root) / "ca.crt"
    lenient = openssl("verify", "-CAfile", anchors, "-verify_hostname", "localhost", cert)
    assert lenient.returncode == 0, lenient.stderr
    result = minica("verify", "--ca", folder(root), cert, "--hostname", "localhost")
    assert result.code == 1 and "certificate is for no host names, not localhost" in result.stderr
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(anchors))
    assert handshake(server_context, client).succeeded  # the common name fallback
    client.hostname_checks_common_name = False
    outcome = handshake(server_context, client)
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError), outcome
    assert "Hostname mismatch" in str(outcome.client_error)


STRICTER = [
    # Only TLS 1.2's fixed-(EC)DH client certificates, which OpenSSL never implemented, use
    # key_agreement; every TLS client signs CertificateVerify.
    ("client", {"eku": (EKU.CLIENT_AUTH,), "ku": (KA,)}, "lacks digital_signature: a TLS client"),
    # RFC 3161 2.3: timeStamping is the only EKU; OpenSSL skips EKU OIDs it does not know.
    (
        "timestamping",
        {"eku": (EKU.TIME_STAMPING, UNKNOWN), "eku_critical": True},
        f"this one is also for {UNKNOWN.dotted_string}",
    ),
    # A responder signs its responses (RFC 5280 4.2.1.3); `openssl ocsp` reads only the EKU.
    (
        "ocsp-signing",
        {"eku": (EKU.OCSP_SIGNING,), "ku": (KE,), "key_type": "rsa-2048"},
        "lacks digital_signature: an OCSP responder",
    ),
]


@pytest.mark.parametrize(("purpose", "options", "says"), STRICTER, ids=[p for p, _, _ in STRICTER])
def test_where_minica_asks_more_than_openssl(
    lab: Lab, openssl: OpenSSL, tmp_path: Path, purpose: str, options: dict[str, Any], says: str
) -> None:
    root = lab.roots["ec-p256"]
    credential = forge(Issuer.of(root), dns=(), **options)
    cert, _ = write_pair(tmp_path, credential)
    if purpose == "ocsp-signing":
        assert ocsp_judge(openssl, lab, tmp_path)(credential)
    else:
        lenient = openssl(
            "verify",
            "-CAfile",
            folder(root) / "ca.crt",
            "-purpose",
            OPENSSL_PURPOSES[purpose],
            cert,
        )
        assert lenient.returncode == 0, lenient.stderr
    result = minica("verify", "--ca", folder(root), cert, "--purpose", purpose)
    assert result.code == 1 and says in result.stderr, result


# --- 7. DNS name constraints drawn at random, against openssl --------------------------------

LABELS = st.sampled_from(["a", "b", "ab", "lab", "test", "x-y"])


@settings(
    max_examples=30,
    deadline=None,
    # `openssl` and `tmp_path_factory` keep no state from one example to the next
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    base=st.lists(LABELS, min_size=1, max_size=3).map(".".join),
    leading_dot=st.booleans(),
    name=st.lists(LABELS, min_size=1, max_size=4).map(".".join),
    excluded=st.booleans(),
)
def test_dns_name_constraints_agree_with_openssl(
    lab: Lab,
    openssl: OpenSSL,
    tmp_path_factory: pytest.TempPathFactory,
    base: str,
    leading_dot: bool,
    name: str,
    excluded: bool,
) -> None:
    root = lab.roots["ec-p256"]
    subtree = [x509.DNSName(("." if leading_dot else "") + base)]
    constraints = x509.NameConstraints(*([None, subtree] if excluded else [subtree, None]))
    ca = forge_ca(Issuer.of(root), "random constraints", name_constraints=constraints)
    leaf = forge(ca, cn="Leaf", dns=(name,)).certificate
    files = tmp_path_factory.mktemp("constraints")
    (files / "leaf.crt").write_bytes(pem(leaf))
    (files / "ca.crt").write_bytes(pem(ca.certificate))
    try:
        verify(leaf, root.chain, now=NOW, intermediates=[ca.certificate])
        ours = True
    except VerificationFailed:
        ours = False
    anchors = folder(root) / "ca.crt"
    theirs = openssl(
        "verify", "-CAfile", anchors, "-untrusted", files / "ca.crt", files / "leaf.crt"
    )
    assert ours == (theirs.returncode == 0), (subtree, name, theirs.stderr)


def test_look_alike_intermediates_that_sign_each_other_are_refused_at_once(lab: Lab) -> None:
    """Twelve CA certificates with one name and one key each sign the other eleven: a
    search that tried every order of them would never end."""
    key = generate("ec-p256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "look-alike CA")])
    look_alikes = [
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - DAY)
        .not_valid_after(NOW + DAY)
        .add_extension(x509.BasicConstraints(True, None), critical=True)
        .sign(key, hashes.SHA256())
        for _ in range(12)
    ]
    leaf = forge(Issuer(look_alikes[0], key)).certificate
    started = datetime.now(timezone.utc)
    with pytest.raises(VerificationFailed, match="does not lead to this CA"):
        verify(leaf, lab.roots["ec-p256"].chain, now=NOW, intermediates=look_alikes)
    assert datetime.now(timezone.utc) - started < timedelta(seconds=5)
