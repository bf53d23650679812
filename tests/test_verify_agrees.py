"""`minica verify` agrees with the real clients: a matrix of certificates, each judged by
`minica verify` (run in-process) and by `openssl verify` on the same inputs, or by the
program that uses such a certificate where `openssl verify` does not look (`openssl
ocsp` for OCSP responders; OpenSSL 3.2's codesign rules for code signing, as 3.0 lacks
that purpose).

Every CA key type (ed25519 included) as root and as intermediate, leaves of every key
type issued directly and through an intermediate (found in the CERT file, in the root's
registry, or with --ca on the intermediate), validity periods, broken chains, name
constraints, Extended Key Usage and key usage combinations built by hand with
cryptography, host names and CRLs.

Where minica is deliberately stricter than `openssl verify`, a test below says so and
shows the client that refuses too (Python ssl), or why minica refuses anyway.
"""

from __future__ import annotations

import io
import ipaddress
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
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

from minica import CertificateAuthority, Names, Subject
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
    "ocsp-signing": "ocsphelper",
}
NOW = datetime.now(timezone.utc)
USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)


# --- running minica in-process ---------------------------------------------------------------


def minica(*args: str | Path) -> Result:
    """`minica ARGS` in this process (the same entry point as the console command)."""
    out, err = io.StringIO(), io.StringIO()
    argv = ["minica", *map(str, args)]
    with mock.patch.object(sys, "argv", argv), redirect_stdout(out), redirect_stderr(err):
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
    return Result(code, out.getvalue(), err.getvalue())


def check_form(result: Result) -> None:
    """Exit 0 and exactly OK, or exit 1 and one `error:` line (and maybe a `hint:`)."""
    if result.code == 0:
        assert (result.stdout, result.stderr) == ("OK\n", ""), result
        return
    lines = result.stderr.strip().splitlines()
    assert result.code == 1 and lines and lines[0].startswith("error: "), result
    assert all(line.startswith("hint: ") for line in lines[1:]), result
    assert "Traceback" not in result.stderr


# --- certificates built by hand --------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    certificate: x509.Certificate
    key: PrivateKey

    @classmethod
    def of(cls, authority: CertificateAuthority) -> Issuer:
        return cls(authority.certificate, authority.private_key)


def key_usage(*names: str) -> x509.KeyUsage:
    flags = {name: name in names for name in USAGES}
    return x509.KeyUsage(**flags, encipher_only=False, decipher_only=False)


def forge(
    issuer: Issuer,
    *,
    cn: str = "x.agree.test",
    dns: Sequence[str] = ("x.agree.test",),
    ip: Sequence[str] = (),
    email: Sequence[str] = (),
    key_type: str = "ec-p256",
    ku: Sequence[str] | None = ("digital_signature",),
    ku_critical: bool = True,
    eku: Sequence[x509.ObjectIdentifier] | None = (EKU.SERVER_AUTH,),
    eku_critical: bool = False,
    ca: bool = False,
    path_length: int | None = None,
    name_constraints: x509.NameConstraints | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    basic_constraints: bool = True,
    aki_critical: bool = False,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> Issuer:
    """A certificate signed by ``issuer``'s key with exactly the extensions asked for."""
    key = generate(key_type)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip]
    names += [x509.RFC822Name(e) for e in email]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(hours=1))
        .not_valid_after(not_after or NOW + timedelta(days=30))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.key.public_key()  # type: ignore[arg-type]
            ),
            aki_critical,
        )
    )
    if basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca, path_length), critical=True)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ku is not None:
        builder = builder.add_extension(key_usage(*ku), critical=ku_critical)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), eku_critical)
    if name_constraints is not None:
        builder = builder.add_extension(name_constraints, critical=True)
    for value, critical in extra:
        builder = builder.add_extension(value, critical)
    return Issuer(builder.sign(issuer.key, signature_hash(issuer.key)), key)  # type: ignore[arg-type]


def forge_ca(issuer: Issuer, cn: str, **options: object) -> Issuer:
    """An intermediate CA certificate by hand (keyCertSign, cRLSign, no EKU by default)."""
    defaults: dict[str, object] = {
        "cn": cn,
        "dns": (),
        "ku": ("digital_signature", "key_cert_sign", "crl_sign"),
        "eku": None,
        "ca": True,
    }
    return forge(issuer, **{**defaults, **options})  # type: ignore[arg-type]


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


# --- the PKI every test reads ----------------------------------------------------------------


@dataclass
class Lab:
    folder: Path
    roots: dict[str, CertificateAuthority] = field(default_factory=dict)
    intermediates: dict[str, CertificateAuthority] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # certificate files by name

    def directory(self, authority: CertificateAuthority) -> Path:
        assert authority.store is not None
        return authority.store.directory

    def write(self, name: str, *certificates: x509.Certificate) -> Path:
        path = self.folder / f"{name}.crt"
        path.write_bytes(pem(*certificates))
        self.files[name] = path
        return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A root and an intermediate (`init --parent`) per key type, and a server certificate
    of every key type under each of them; both CA folders live on disk."""
    lab = Lab(tmp_path_factory.mktemp("agree"))
    for key_type in KEY_TYPES:
        root = CertificateAuthority.init(
            lab.folder / f"root-{key_type}",
            subject=Subject(common_name=f"agree root {key_type}"),
            key_type=key_type,
        )
        inter = CertificateAuthority.init(
            lab.folder / f"inter-{key_type}",
            subject=Subject(common_name=f"agree issuing {key_type}"),
            key_type=INTERMEDIATE_KEY[key_type],
            parent=root,
        )
        lab.roots[key_type], lab.intermediates[key_type] = root, inter
        for leaf_type in KEY_TYPES:
            for where, ca in (("root", root), ("inter", inter)):
                host = f"{leaf_type}.{where}.agree.test"
                issued, _ = ca.issue(
                    ca.profile("server"),
                    Subject(common_name=host),
                    Names.parse(dns=[host]),
                    key_type=leaf_type,
                )
                name = f"{where}-{key_type}-{leaf_type}"
                lab.write(name, issued.certificate)
                lab.write(f"{name}-full", issued.certificate, inter.certificate)
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
    anchors: Path | None = None  # for openssl -CAfile (default: the folder's ca-chain.crt)
    crl: bool = False
    says: str = ""  # a fragment minica's error must hold

    def minica_args(self) -> list[str | Path]:
        args: list[str | Path] = ["verify", "--ca", self.ca, self.cert]
        if self.purpose:
            args += ["--purpose", self.purpose]
        if self.hostname:
            args += ["--hostname", self.hostname]
        return args + (["--check-revocation"] if self.crl else [])

    def openssl_args(self) -> list[str | Path]:
        args: list[str | Path] = ["verify", "-CAfile", self.anchors or self.ca / "ca-chain.crt"]
        if self.untrusted:
            args += ["-untrusted", self.untrusted]
        if self.purpose:
            args += ["-purpose", OPENSSL_PURPOSES[self.purpose]]
        if self.hostname:
            try:
                ipaddress.ip_address(self.hostname)
                args += ["-verify_ip", self.hostname]
            except ValueError:
                args += ["-verify_hostname", self.hostname]
        if self.crl:
            args += ["-crl_check", "-CRLfile", self.ca / "crl.pem"]
        return [*args, self.cert]


def judge(openssl: OpenSSL, cases: Iterable[Case]) -> None:
    """Run every case through minica and openssl verify; report every disagreement."""
    wrong = []
    for case in cases:
        ours = minica(*case.minica_args())
        check_form(ours)
        theirs = openssl(*case.openssl_args())
        assert theirs.returncode in (0, 2), (case.name, theirs.stderr)
        verdicts = {"minica": ours.code == 0, "openssl": theirs.returncode == 0}
        if set(verdicts.values()) != {case.valid} or case.says not in ours.stderr:
            wrong.append(f"{case.name}: expected valid={case.valid}, got {verdicts}")
            wrong.append(f"    minica: {ours.stderr.strip() or 'OK'}")
            wrong.append(f"    openssl: {theirs.stderr.strip() or 'OK'}")
    assert not wrong, "\n".join(wrong)


# --- 1. every key type, directly and through an intermediate ----------------------------------


@pytest.mark.parametrize("root_type", KEY_TYPES)
def test_every_key_type_verifies_as_openssl_says(
    lab: Lab, openssl: OpenSSL, root_type: str
) -> None:
    root, inter = lab.roots[root_type], lab.intermediates[root_type]
    root_dir, inter_dir = lab.directory(root), lab.directory(inter)
    cases = []
    for leaf_type in KEY_TYPES:
        server = {"purpose": "server", "valid": True}
        direct, below = f"root-{root_type}-{leaf_type}", f"inter-{root_type}-{leaf_type}"
        host = f"{leaf_type}.inter.agree.test"
        cases += [
            Case(
                direct,
                root_dir,
                lab.files[direct],
                hostname=f"{leaf_type}.root.agree.test",
                **server,
            ),  # type: ignore[arg-type]
            # --ca ROOT, the leaf alone: the intermediate comes from the root's registry
            Case(
                f"{below} from the registry",
                root_dir,
                lab.files[below],
                hostname=host,
                untrusted=inter_dir / "ca.crt",
                **server,
            ),  # type: ignore[arg-type]
            # --ca ROOT, the leaf followed by its intermediate in CERT
            Case(
                f"{below} full chain",
                root_dir,
                lab.files[f"{below}-full"],
                hostname=host,
                untrusted=lab.files[f"{below}-full"],
                **server,
            ),  # type: ignore[arg-type]
            # --ca INTERMEDIATE: its chain leads on to the root
            Case(
                f"{below} --ca intermediate", inter_dir, lab.files[below], hostname=host, **server
            ),  # type: ignore[arg-type]
        ]
    judge(openssl, cases)


def test_the_api_returns_the_path_through_the_intermediate(lab: Lab) -> None:
    root, inter = lab.roots["ed25519"], lab.intermediates["ed25519"]
    leaf = x509.load_pem_x509_certificate(lab.files["inter-ed25519-ec-p256"].read_bytes())
    path = verify(leaf, root.chain, now=NOW, intermediates=[inter.certificate])
    assert path == [leaf, inter.certificate, root.certificate]
    with pytest.raises(VerificationFailed, match="not issued by this CA: its issuer is CN=agree"):
        verify(leaf, root.chain, now=NOW)  # no intermediate given, none found


# --- 2. chains: validity, CA constraints, path lengths, name constraints ----------------------


class Cases:
    """Cases of one kind, their certificates written as files (CERT holds the chain)."""

    def __init__(self, lab: Lab, ca: CertificateAuthority, prefix: str) -> None:
        self.lab, self.ca, self.prefix = lab, lab.directory(ca), prefix
        self.issuer = Issuer.of(ca)
        self.cases: list[Case] = []

    def add(
        self, name: str, valid: bool, *certificates: x509.Certificate, **options: object
    ) -> None:
        path = self.lab.write(f"{self.prefix}-{len(self.cases)}", *certificates)
        defaults: dict[str, object] = {"untrusted": path, "ca": self.ca}
        self.cases.append(Case(name, cert=path, valid=valid, **{**defaults, **options}))  # type: ignore[arg-type]

    def leaf(self, name: str, valid: bool, says: str = "", **options: object) -> None:
        """A leaf forged under this CA, checked with ``options`` that are Case fields."""
        fields = {k: options.pop(k) for k in ("purpose", "hostname") if k in options}
        certificate = forge(self.issuer, **options).certificate  # type: ignore[arg-type]
        self.add(name, valid, certificate, says=says, **fields)

    def under(self, name: str, valid: bool, ca: Issuer, says: str = "", **options: object) -> None:
        """A leaf forged under ``ca``, which CERT carries after it."""
        fields = {k: options.pop(k) for k in ("purpose",) if k in options}
        leaf = forge(ca, **options).certificate  # type: ignore[arg-type]
        self.add(name, valid, leaf, ca.certificate, says=says, **fields)


@pytest.fixture(scope="module")
def chains(lab: Lab) -> list[Case]:
    cases = Cases(lab, lab.roots["ec-p256"], "chain")
    root, day = cases.issuer, timedelta(days=1)
    cases.leaf("expired", False, "expired on", not_before=NOW - 9 * day, not_after=NOW - day)
    cases.leaf("not yet valid", False, "not valid until", not_before=NOW + day)
    old = forge_ca(root, "expired CA", not_before=NOW - 10 * day, not_after=NOW - day)
    cases.under("expired intermediate", False, old, "CA certificate CN=expired CA expired on")
    not_ca = forge(root, cn="not a CA")
    cases.under("issued by a non-CA", False, not_ca, "not a CA certificate")
    no_bc = forge_ca(root, "no basic constraints", basic_constraints=False)
    cases.under("intermediate without basic constraints", False, no_bc, "no basic constraints")
    no_sign = forge_ca(root, "no keyCertSign", ku=("digital_signature", "crl_sign"))
    cases.under("intermediate without keyCertSign", False, no_sign, "(key_cert_sign)")
    cases.under("intermediate without key usage", True, forge_ca(root, "no key usage", ku=None))
    zero = forge_ca(root, "path length 0", path_length=0)
    deeper = forge_ca(zero, "below path length 0")
    cases.add(
        "path length exceeded",
        False,
        forge(deeper).certificate,
        deeper.certificate,
        zero.certificate,
        says="(path length 0); this chain has 1",
    )
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"), b"\x05\0")
    cases.leaf("unknown critical extension", False, "1.3.6.1.4.1.55555.1", extra=[(unknown, True)])
    cases.leaf("critical AKI", False, "authorityKeyIdentifier", aki_critical=True)
    cases.leaf("unknown extension, not critical", True, extra=[(unknown, False)])
    cases.leaf("no SAN, key usage or EKU", True, dns=(), ku=None, eku=None)
    other_key = Issuer(root.certificate, generate("ec-p384"))
    cases.under("same issuer name, another key", False, other_key, "did not sign")
    client_only = forge_ca(root, "client-only CA", eku=(EKU.CLIENT_AUTH,))
    limited = "CN=client-only CA is limited to client authentication"
    cases.under("CA for clientAuth only, as server", False, client_only, limited, purpose="server")
    cases.under(
        "CA for clientAuth only, as client",
        True,
        client_only,
        purpose="client",
        eku=(EKU.CLIENT_AUTH,),
    )
    cases.under("CA for clientAuth only, no purpose", True, client_only)
    any_ca = forge_ca(root, "anyEKU CA", eku=(EKU.ANY_EXTENDED_KEY_USAGE,))
    cases.under("CA for anyEKU, as server", False, any_ca, "is limited to", purpose="server")

    # name constraints of an intermediate made as `minica init --parent --permit-*` makes it
    permits = NameConstraints.parse(dns=["lab.test"], ip=["10.0.0.0/8"], email=["lab.test"])
    made = CertificateAuthority.init(
        lab.folder / "constrained",
        subject=Subject(common_name="agree constrained"),
        parent=lab.roots["ec-p256"],
        name_constraints=permits,
    )
    constrained, outside = Issuer.of(made), "is outside the name constraints of CN=agree"
    device, person = {"dns": (), "cn": "device"}, {"dns": (), "cn": "Alice"}
    for name, valid, options in [
        ("dns inside", True, {"dns": ("www.lab.test",)}),
        ("wildcard inside", True, {"dns": ("*.lab.test",)}),
        ("upper case inside", True, {"dns": ("WWW.LAB.TEST",)}),
        ("dns outside", False, {"dns": ("www.evil.test",)}),
        ("dns look-alike", False, {"dns": ("www.evillab.test",)}),
        ("one name of two outside", False, {"dns": ("www.lab.test", "lab.evil")}),
        ("ip inside", True, {**device, "ip": ("10.1.2.3",)}),
        ("ip outside", False, {**device, "ip": ("11.1.2.3",)}),
        ("ipv6 under an IPv4 constraint", False, {**device, "ip": ("2001:db8::1",)}),
        ("email inside", True, {**person, "email": ("alice@lab.test",)}),
        ("email in a subdomain", False, {**person, "email": ("alice@x.lab.test",)}),
        ("host-like CN outside, no SAN", False, {"dns": (), "cn": "www.evil.test"}),
        ("host-like CN outside, DNS SAN in", True, {"dns": ("a.lab.test",), "cn": "b.evil.test"}),
        ("plain CN, no SAN", True, {"dns": (), "cn": "Alice Example"}),
    ]:
        cases.under(f"constrained, {name}", valid, constrained, "" if valid else outside, **options)
    excluding = forge_ca(
        root,
        "excluding CA",
        name_constraints=x509.NameConstraints(None, [x509.DNSName("bad.lab.test")]),
    )
    cases.under("excluded subtree", False, excluding, "excluded by", dns=("a.bad.lab.test",))
    cases.under("beside the excluded subtree", True, excluding, dns=("a.good.lab.test",))
    organization = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Lab")])
    directory = forge_ca(
        root,
        "dirName CA",
        name_constraints=x509.NameConstraints([x509.DirectoryName(organization)], None),
    )
    cases.under("subject outside a dirName constraint", False, directory, "subject CN=x.agree.test")
    return cases.cases


def test_chains_verify_as_openssl_says(chains: list[Case], openssl: OpenSSL) -> None:
    judge(openssl, chains)


@pytest.fixture(scope="module")
def deep(lab: Lab) -> dict[str, Path]:
    """root -> A (path length 1, in root's registry) -> B (in A's registry only) -> leaf."""
    root = lab.roots["ec-p384"]
    a = CertificateAuthority.init(
        lab.folder / "deep-a", subject=Subject(common_name="deep A"), parent=root, path_length=1
    )
    b = CertificateAuthority.init(
        lab.folder / "deep-b", subject=Subject(common_name="deep B"), parent=a
    )
    issued, _ = b.issue(
        b.profile("server"), Subject(common_name="deep.test"), Names.parse(dns=["deep.test"])
    )
    return {
        "root": lab.directory(root),
        "a": lab.directory(a),
        "leaf": lab.write("deep", issued.certificate),
        "full": lab.write("deep-full", issued.certificate, b.certificate, a.certificate),
        "b only": lab.write("deep-b", b.certificate),
    }


def test_chains_two_intermediates_deep(deep: dict[str, Path], openssl: OpenSSL) -> None:
    root, a, leaf, full = deep["root"], deep["a"], deep["leaf"], deep["full"]
    judge(
        openssl,
        [
            Case(
                "leaf alone, --ca root: B is not in root's registry",
                root,
                leaf,
                False,
                untrusted=a / "ca.crt",
                says="its issuer is CN=deep B",
            ),
            Case("full chain, --ca root", root, full, True, untrusted=full),
            Case(
                "leaf alone, --ca A: B is in A's registry", a, leaf, True, untrusted=deep["b only"]
            ),
        ],
    )


# --- 3. purposes: Extended Key Usage and key usage -------------------------------------------


def minica_leaves(lab: Lab, cases: Cases) -> dict[str, Path]:
    """A certificate of each of minica's profiles (EC and RSA keys) under the case's CA."""
    authority = lab.roots["ec-p256"]
    names = {"server": {"dns": ["p.agree.test"]}, "email": {"email": ["p@agree.test"]}}
    made = {}
    for profile in ("server", "client", "email", "timestamping", "code-signing", "ocsp-signing"):
        for key_type in ("ec-p256", "rsa-2048"):
            issued, _ = authority.issue(
                authority.profile(profile),
                Subject(common_name=f"{profile} {key_type}"),
                Names.parse(**names.get(profile, {})),
                key_type=key_type,
            )
            made[f"{profile} {key_type}"] = lab.write(
                f"profile-{profile}-{key_type}", issued.certificate
            )
    return made


@pytest.fixture(scope="module")
def purposes(lab: Lab) -> list[Case]:
    cases = Cases(lab, lab.roots["ec-p256"], "purpose")
    for name, path in minica_leaves(lab, cases).items():
        profile = name.split()[0]
        for purpose in ("server", "client", "email", "timestamping"):
            says = "" if profile == purpose else "not "
            cases.cases.append(
                Case(
                    f"{name} as {purpose}",
                    cases.ca,
                    path,
                    profile == purpose,
                    purpose=purpose,
                    says=says,
                )
            )
    ds, ke, ka, cc = "digital_signature", "key_encipherment", "key_agreement", "content_commitment"
    server = {"purpose": "server"}
    cases.leaf("server: RSA, key_encipherment only", True, key_type="rsa-2048", ku=(ke,), **server)
    cases.leaf("server: RSA, digital_signature only", True, key_type="rsa-2048", ku=(ds,), **server)
    cases.leaf("server: EC, digital_signature and key_agreement", True, ku=(ds, ka), **server)
    cases.leaf("server: Ed25519", True, key_type="ed25519", **server)
    cases.leaf(
        "server: EC, content_commitment only", False, "lacks digital_signature:", ku=(cc,), **server
    )
    cases.leaf(
        "server: RSA, content_commitment only",
        False,
        "lacks digital_signature or key_encipherment",
        key_type="rsa-2048",
        ku=(cc,),
        **server,
    )
    cases.leaf("server: no key usage", True, ku=None, **server)
    cases.leaf("server: no EKU", True, eku=None, **server)
    cases.leaf(
        "server: anyEKU only",
        False,
        "not server authentication",
        eku=(EKU.ANY_EXTENDED_KEY_USAGE,),
        **server,
    )
    cases.leaf(
        "server: serverAuth and anyEKU",
        True,
        eku=(EKU.SERVER_AUTH, EKU.ANY_EXTENDED_KEY_USAGE),
        **server,
    )
    client = {"purpose": "client", "eku": (EKU.CLIENT_AUTH,)}
    cases.leaf(
        "client: key_encipherment only",
        False,
        "lacks digital_signature",
        key_type="rsa-2048",
        ku=(ke,),
        **client,
    )
    cases.leaf("client: RSA, digital_signature", True, key_type="rsa-2048", **client)
    cases.leaf("client: no key usage", True, ku=None, **client)
    email = {
        "purpose": "email",
        "eku": (EKU.EMAIL_PROTECTION,),
        "dns": (),
        "email": ("a@agree.test",),
    }
    cases.leaf("email: content_commitment only", True, ku=(cc,), **email)
    cases.leaf(
        "email: key_encipherment only",
        False,
        "lacks digital_signature or content_commitment",
        key_type="rsa-2048",
        ku=(ke,),
        **email,
    )
    cases.leaf("email: key_agreement only", False, "lacks digital_signature", ku=(ka,), **email)
    cases.leaf("email: no EKU", True, **{**email, "eku": None})
    tsa = {"purpose": "timestamping", "eku": (EKU.TIME_STAMPING,), "eku_critical": True, "dns": ()}
    cases.leaf("timestamping: by hand", True, **tsa)
    cases.leaf("timestamping: Ed25519", True, key_type="ed25519", **tsa)
    cases.leaf("timestamping: content_commitment only", True, ku=(cc,), **tsa)
    cases.leaf("timestamping: both signing usages", True, ku=(ds, cc), **tsa)
    cases.leaf("timestamping: no key usage", True, ku=None, **tsa)
    cases.leaf(
        "timestamping: EKU not critical",
        False,
        "must be critical",
        **{**tsa, "eku_critical": False},
    )
    cases.leaf(
        "timestamping: also serverAuth",
        False,
        "only Extended Key Usage",
        **{**tsa, "eku": (EKU.TIME_STAMPING, EKU.SERVER_AUTH)},
    )
    cases.leaf(
        "timestamping: also anyEKU",
        False,
        "also for any purpose",
        **{**tsa, "eku": (EKU.TIME_STAMPING, EKU.ANY_EXTENDED_KEY_USAGE)},
    )
    cases.leaf(
        "timestamping: key_encipherment too",
        False,
        "also has key_encipherment",
        key_type="rsa-2048",
        ku=(ds, ke),
        **tsa,
    )
    cases.leaf(
        "timestamping: key_agreement only",
        False,
        "lacks digital_signature or content_commitment",
        ku=(ka,),
        **tsa,
    )
    cases.leaf("timestamping: no EKU", False, "has no Extended Key Usage", **{**tsa, "eku": None})
    return cases.cases


def test_purposes_verify_as_openssl_says(purposes: list[Case], openssl: OpenSSL) -> None:
    judge(openssl, purposes)


# OpenSSL 3.2 added `-purpose codesign`; on 3.0 the verdicts are those its rules give
# (crypto/x509/v3_purp.c, check_purpose_code_sign): key usage present, critical, with
# digital_signature and without key_cert_sign or crl_sign; an EKU with codeSigning and
# without serverAuth or anyExtendedKeyUsage. CAs above need only be CAs.
@pytest.fixture(scope="module")
def code_signing(lab: Lab) -> list[Case]:
    cases = Cases(lab, lab.roots["ec-p256"], "codesign")
    for key_type in ("ec-p256", "rsa-2048"):
        path = lab.files[f"profile-code-signing-{key_type}"]
        cases.cases.append(
            Case(f"minica's profile, {key_type}", cases.ca, path, True, purpose="code-signing")
        )
    path = lab.files["profile-server-ec-p256"]
    cases.cases.append(
        Case(
            "a server certificate",
            cases.ca,
            path,
            False,
            purpose="code-signing",
            says="not code signing",
        )
    )
    signer = {"purpose": "code-signing", "eku": (EKU.CODE_SIGNING,), "dns": ()}
    cases.leaf("by hand", True, **signer)
    cases.leaf(
        "with emailProtection too",
        True,
        **{**signer, "eku": (EKU.CODE_SIGNING, EKU.EMAIL_PROTECTION)},
    )
    cases.leaf("key usage not critical", False, "must be critical", ku_critical=False, **signer)
    cases.leaf("no key usage", False, "needs a key usage", ku=None, **signer)
    cases.leaf(
        "keyCertSign too",
        False,
        "must not allow signing certificates",
        ku=("digital_signature", "key_cert_sign"),
        **signer,
    )
    cases.leaf(
        "content_commitment only",
        False,
        "lacks digital_signature",
        ku=("content_commitment",),
        **signer,
    )
    cases.leaf(
        "serverAuth too",
        False,
        "must not also be for server authentication",
        **{**signer, "eku": (EKU.CODE_SIGNING, EKU.SERVER_AUTH)},
    )
    cases.leaf(
        "anyEKU too",
        False,
        "must not also be for any purpose",
        **{**signer, "eku": (EKU.CODE_SIGNING, EKU.ANY_EXTENDED_KEY_USAGE)},
    )
    cases.leaf("no EKU", False, "has no Extended Key Usage", **{**signer, "eku": None})
    return cases.cases


def test_code_signing_verifies_as_openssl_codesign_rules_say(
    code_signing: list[Case], openssl: OpenSSL
) -> None:
    help_text = openssl("verify", "-help")
    if "codesign" in help_text.stdout + help_text.stderr:  # OpenSSL 3.2 and later
        judge(openssl, code_signing)
        return
    wrong = []
    for case in code_signing:
        result = minica(*case.minica_args())
        check_form(result)
        if (result.code == 0) != case.valid or case.says not in result.stderr:
            wrong.append(
                f"{case.name}: expected valid={case.valid}: {result.stderr.strip() or 'OK'}"
            )
    assert not wrong, "\n".join(wrong)


# `openssl verify -purpose ocsphelper` does not look at the responder itself ("checked in
# OCSP_verify"), so the judge is `openssl ocsp` reading a response the responder signed.
@pytest.fixture(scope="module")
def responders(lab: Lab) -> list[tuple[Case, Issuer]]:
    cases = Cases(lab, lab.roots["ec-p256"], "ocsp")
    made: list[Issuer] = []

    def responder(name: str, valid: bool, says: str = "", **options: object) -> None:
        made.append(forge(cases.issuer, **{"dns": (), "eku": (EKU.OCSP_SIGNING,), **options}))  # type: ignore[arg-type]
        cases.add(name, valid, made[-1].certificate, purpose="ocsp-signing", says=says)

    responder("by hand", True)
    responder("Ed25519", True, key_type="ed25519")
    responder("RSA, no key usage", True, key_type="rsa-2048", ku=None)
    responder("OCSPSigning and serverAuth", True, eku=(EKU.OCSP_SIGNING, EKU.SERVER_AUTH))
    responder("no EKU", False, "has no Extended Key Usage", eku=None)
    responder("anyEKU", False, "not OCSP signing", eku=(EKU.ANY_EXTENDED_KEY_USAGE,))
    responder("serverAuth", False, "not OCSP signing", eku=(EKU.SERVER_AUTH,))
    return list(zip(cases.cases, made, strict=True))


def ocsp_accepts(openssl: OpenSSL, lab: Lab, responder: Issuer, folder: Path) -> bool:
    """Whether `openssl ocsp` accepts a response ``responder`` signed for a certificate of
    the ec-p256 root (the responder's issuer, as RFC 6960 4.2.2.2 asks)."""
    root = lab.roots["ec-p256"]
    subject = x509.load_pem_x509_certificate(lab.files["root-ec-p256-ec-p256"].read_bytes())
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=subject,
            issuer=root.certificate,
            algorithm=hashes.SHA1(),  # the CertID hash every OCSP client knows (RFC 5019)
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW - timedelta(minutes=1),
            next_update=NOW + timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder.certificate)
        .certificates([responder.certificate])
        .sign(responder.key, signature_hash(responder.key))  # type: ignore[arg-type]
    )
    path = folder / "response.der"
    path.write_bytes(response.public_bytes(Encoding.DER))
    anchors = lab.directory(root) / "ca.crt"
    done = openssl("ocsp", "-respin", path, "-CAfile", anchors, "-no_nonce")
    assert ("Response verify OK" in done.stdout + done.stderr) == (done.returncode == 0), done
    return done.returncode == 0


def test_ocsp_responders_verify_as_openssl_ocsp_says(
    lab: Lab, responders: list[tuple[Case, Issuer]], openssl: OpenSSL, tmp_path: Path
) -> None:
    wrong = []
    for case, responder in responders:
        ours = minica(*case.minica_args())
        check_form(ours)
        verdicts = {
            "minica": ours.code == 0,
            "openssl ocsp": ocsp_accepts(openssl, lab, responder, tmp_path),
        }
        if set(verdicts.values()) != {case.valid} or case.says not in ours.stderr:
            wrong.append(f"{case.name}: expected valid={case.valid}, got {verdicts}: {ours.stderr}")
    assert not wrong, "\n".join(wrong)


# --- 4. host names ---------------------------------------------------------------------------


def test_host_names_verify_as_openssl_says(lab: Lab, openssl: OpenSSL) -> None:
    cases = Cases(lab, lab.roots["ec-p256"], "host")
    names = {"dns": ("www.lab.test", "*.lab.test"), "ip": ("10.0.0.1", "2001:db8::1")}
    certificate = forge(cases.issuer, **names).certificate  # type: ignore[arg-type]
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
        says = "" if valid else f"not {hostname}"
        cases.add(f"{hostname}", valid, certificate, hostname=hostname, purpose="server", says=says)
    judge(openssl, cases.cases)


# --- 5. revocation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def revocation(lab: Lab) -> list[Case]:
    cases: list[Case] = []
    for key_type in ("ec-p256", "ed25519"):
        root, inter = lab.roots[key_type], lab.intermediates[key_type]
        for authority, where in ((root, "root"), (inter, "inter")):
            revoked, kept = (
                authority.issue(
                    authority.profile("client"), Subject(common_name=f"{name} {where}")
                )[0]
                for name in ("revoked", "kept")
            )
            authority.revoke(format(revoked.certificate.serial_number, "x"), "key-compromise")
            (lab.directory(authority) / "crl.pem").write_bytes(
                authority.crl().public_bytes(Encoding.PEM)
            )
            folder = lab.directory(authority)
            revoked_file = lab.write(f"revoked-{where}-{key_type}", revoked.certificate)
            kept_file = lab.write(f"kept-{where}-{key_type}", kept.certificate)
            cases += [
                Case(
                    f"{key_type} {where}: revoked",
                    folder,
                    revoked_file,
                    False,
                    crl=True,
                    says="was revoked on",
                ),
                Case(f"{key_type} {where}: not revoked", folder, kept_file, True, crl=True),
                Case(f"{key_type} {where}: revoked, not asked", folder, revoked_file, True),
            ]
        # the root's CRL cannot speak for what the intermediate issued (openssl: "unable to
        # get certificate CRL")
        kept_file = lab.files[f"kept-inter-{key_type}"]
        cases.append(
            Case(
                f"{key_type}: intermediate's leaf, root's CRL",
                lab.directory(root),
                kept_file,
                False,
                crl=True,
                untrusted=lab.directory(inter) / "ca.crt",
                says="only its CRL",
            )
        )
    # a CRL past its next update
    stale = lab.roots["rsa-2048"]
    crl = stale.crl(now=NOW - timedelta(days=3), days=1)
    (lab.directory(stale) / "crl.pem").write_bytes(crl.public_bytes(Encoding.PEM))
    cases.append(
        Case(
            "stale CRL",
            lab.directory(stale),
            lab.files["root-rsa-2048-ec-p256"],
            False,
            crl=True,
            says="out of date",
        )
    )
    return cases


def test_revocation_verifies_as_openssl_crl_check_says(
    revocation: list[Case], openssl: OpenSSL
) -> None:
    judge(openssl, revocation)


def hand_made_crl(
    issuer: Issuer,
    revoked: Iterable[int] = (),
    *,
    number: int | None = None,
    last_update: datetime | None = None,
    extra: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(last_update or NOW - timedelta(minutes=5))
        .next_update(NOW + timedelta(days=1))
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), critical=False)
    for value, critical in extra:
        builder = builder.add_extension(value, critical)
    for serial in revoked:
        entry = x509.RevokedCertificateBuilder(serial, NOW - timedelta(minutes=10)).build()
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, signature_hash(issuer.key))  # type: ignore[arg-type]


def test_verify_reads_crls_minica_does_not_write_as_openssl_does(
    lab: Lab, openssl: OpenSSL, tmp_path: Path
) -> None:
    """verify.py itself needs no CRL number (the CLI's reading of crl.pem is another
    matter); what it refuses, openssl -crl_check refuses too."""
    root = lab.roots["ed25519"]
    issuer = Issuer.of(root)
    leaf_file = lab.files["root-ed25519-ec-p256"]
    leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.55555.2"), b"\x05\0")
    crls = {
        "no CRL number, revoked": (hand_made_crl(issuer, [leaf.serial_number]), "was revoked on"),
        "no CRL number, not revoked": (hand_made_crl(issuer, [12345]), ""),
        "a CRL number, not revoked": (hand_made_crl(issuer, number=7), ""),
        "unknown critical extension": (
            hand_made_crl(issuer, extra=[(unknown, True)]),
            "critical extension",
        ),
        "unknown extension, not critical": (hand_made_crl(issuer, extra=[(unknown, False)]), ""),
        "issued in the future": (
            hand_made_crl(issuer, last_update=NOW + timedelta(hours=1)),
            "not valid until",
        ),
        "another key": (
            hand_made_crl(Issuer(root.certificate, generate("ed25519"))),
            "not signed by this CA",
        ),
    }
    wrong = []
    for name, (crl, says) in crls.items():
        crl_file = tmp_path / "crl.pem"
        crl_file.write_bytes(crl.public_bytes(Encoding.PEM))
        try:
            verify(leaf, root.chain, now=NOW, crl=crl)
            ours, message = True, ""
        except VerificationFailed as refusal:
            ours, message = False, str(refusal)
        theirs = openssl(
            "verify",
            "-crl_check",
            "-CRLfile",
            crl_file,
            "-CAfile",
            lab.directory(root) / "ca.crt",
            leaf_file,
        )
        if ours != (theirs.returncode == 0) or ours != (not says) or says not in message:
            wrong.append(
                f"{name}: minica {message or 'OK'}; openssl {theirs.stderr.strip() or 'OK'}"
            )
    assert not wrong, "\n".join(wrong)


# --- 6. where minica is stricter than `openssl verify`, and who agrees with it ---------------


@pytest.mark.parametrize(
    ("key_type", "usage"),
    [("ec-p256", "key_agreement"), ("ec-p256", "key_encipherment"), ("ed25519", "key_agreement")],
)
def test_a_tls_server_key_that_cannot_sign_is_refused_as_python_ssl_refuses_it_in_tls_1_2(
    lab: Lab, openssl: OpenSSL, tmp_path: Path, key_type: str, usage: str
) -> None:
    root = lab.roots["ec-p256"]
    server = forge(
        Issuer.of(root), cn="localhost", dns=("localhost",), key_type=key_type, ku=(usage,)
    )
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(pem(server.certificate))
    key.write_bytes(private_key_pem(server.key))
    anchors = lab.directory(root) / "ca.crt"
    lenient = openssl("verify", "-CAfile", anchors, "-purpose", "sslserver", cert)
    assert lenient.returncode == 0, lenient.stderr  # openssl verify takes any of three usages
    result = minica("verify", "--ca", lab.directory(root), cert, "--purpose", "server")
    check_form(result)
    assert result.code == 1 and "lacks digital_signature: a TLS server" in result.stderr
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(anchors))
    client_context.maximum_version = ssl.TLSVersion.TLSv1_2
    outcome = handshake(server_context, client_context, "localhost")
    assert not outcome.succeeded  # Python ssl: "bad ecc cert" or no usable cipher at all
    assert isinstance(outcome.client_error, ssl.SSLError), outcome


def test_a_host_name_only_in_the_common_name_is_refused_as_browsers_refuse_it(
    lab: Lab, openssl: OpenSSL, tmp_path: Path
) -> None:
    """openssl verify, and Python ssl by default (hostname_checks_common_name), fall back to
    the common name of a certificate without DNS names; browsers and Go do not, and RFC
    9525 dropped that match: minica refuses, as Python ssl does when told to act alike."""
    root = lab.roots["ec-p256"]
    server = forge(Issuer.of(root), cn="localhost", dns=())
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(pem(server.certificate))
    key.write_bytes(private_key_pem(server.key))
    anchors = lab.directory(root) / "ca.crt"
    lenient = openssl("verify", "-CAfile", anchors, "-verify_hostname", "localhost", cert)
    assert lenient.returncode == 0, lenient.stderr
    result = minica("verify", "--ca", lab.directory(root), cert, "--hostname", "localhost")
    check_form(result)
    assert result.code == 1 and "certificate is for no host names, not localhost" in result.stderr
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(anchors))
    assert handshake(server_context, client).succeeded  # the common name fallback
    client.hostname_checks_common_name = False
    outcome = handshake(server_context, client)
    assert isinstance(outcome.client_error, ssl.SSLCertVerificationError), outcome
    assert "Hostname mismatch" in str(outcome.client_error)


@pytest.mark.parametrize(
    ("what", "options", "purpose", "says"),
    [
        # Only the fixed-(EC)DH client certificates of TLS 1.2, which OpenSSL never
        # implemented, use key_agreement; every TLS client signs CertificateVerify.
        (
            "client, key_agreement only",
            {"eku": (EKU.CLIENT_AUTH,), "ku": ("key_agreement",)},
            "client",
            "lacks digital_signature: a TLS client",
        ),
        # RFC 3161 2.3: timeStamping is the only EKU; OpenSSL skips OIDs it does not know.
        (
            "timestamping, and an unknown EKU",
            {
                "eku": (EKU.TIME_STAMPING, x509.ObjectIdentifier("1.3.6.1.4.1.55555.3")),
                "eku_critical": True,
            },
            "timestamping",
            "only Extended Key Usage",
        ),
        # A responder signs its responses (RFC 5280 4.2.1.3); `openssl ocsp` only reads the EKU.
        (
            "OCSP responder, key_encipherment only",
            {"eku": (EKU.OCSP_SIGNING,), "ku": ("key_encipherment",), "key_type": "rsa-2048"},
            "ocsp-signing",
            "lacks digital_signature: an OCSP responder",
        ),
    ],
)
def test_where_minica_asks_more_than_openssl(
    lab: Lab,
    openssl: OpenSSL,
    tmp_path: Path,
    what: str,
    options: dict[str, object],
    purpose: str,
    says: str,
) -> None:
    root = lab.roots["ec-p256"]
    certificate = forge(Issuer.of(root), dns=(), **options)  # type: ignore[arg-type]
    cert = tmp_path / "leaf.crt"
    cert.write_bytes(pem(certificate.certificate))
    anchors = lab.directory(root) / "ca.crt"
    if purpose == "ocsp-signing":
        assert ocsp_accepts(openssl, lab, certificate, tmp_path)
    else:
        lenient = openssl("verify", "-CAfile", anchors, "-purpose", OPENSSL_PURPOSES[purpose], cert)
        assert lenient.returncode == 0, lenient.stderr
    result = minica("verify", "--ca", lab.directory(root), cert, "--purpose", purpose)
    check_form(result)
    assert result.code == 1 and says in result.stderr, result


# --- 7. name constraints, drawn at random, against openssl -----------------------------------

LABELS = st.sampled_from(["a", "b", "ab", "lab", "test", "x-y"])


# `openssl` and `tmp_path_factory` keep no state between examples
@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
    constraints = (
        x509.NameConstraints(None, subtree) if excluded else x509.NameConstraints(subtree, None)
    )
    ca = forge_ca(Issuer.of(root), "random constraints", name_constraints=constraints)
    leaf = forge(ca, cn="Leaf", dns=(name,)).certificate
    folder = tmp_path_factory.mktemp("nc")
    (folder / "leaf.crt").write_bytes(pem(leaf))
    (folder / "ca.crt").write_bytes(pem(ca.certificate))
    try:
        verify(leaf, root.chain, now=NOW, intermediates=[ca.certificate])
        ours = True
    except VerificationFailed:
        ours = False
    theirs = openssl(
        "verify",
        "-CAfile",
        lab.directory(root) / "ca.crt",
        "-untrusted",
        folder / "ca.crt",
        folder / "leaf.crt",
    )
    assert ours == (theirs.returncode == 0), (subtree, name, theirs.stderr)
