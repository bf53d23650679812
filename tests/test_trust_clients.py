"""`minica trust` judged by the clients that use the stores: curl and Python (OpenSSL's
default verify paths, fed by the system store), headless Chromium (the user's NSS database)
and a Java HttpClient (the JDK's cacerts) fetch a page from nginx serving a minica
certificate once the root is installed, and refuse it before install and after uninstall;
`minica trust status --json` says what they did. A root's name constraints hold after
install (Chromium and curl refuse a certificate outside them, signed with the root's key
by hand); a root without constraints is not installed at all; Debian's hook copies a
system install into Java's cacerts, and uninstall takes it out of there too.

Everything happens in a trust sandbox (tests/trust_sandbox.py): the machine's real stores
never change, which a test checks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Leaf, Result, assert_refused, minica_argv, require_tool, run_minica
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID
from servers import StartNginx, nginx_launcher
from trust_sandbox import Sandbox, trust_sandbox

pytestmark = pytest.mark.tools

ROOT_CN = "minica trust test root"
PAGE = "hello"  # what tests/servers.py's nginx answers
CLIENTS = ("curl", "python", "chromium", "java")
# Which store each client trusts through: status must agree with the client.
STORE_OF = {"curl": "system", "python": "system", "chromium": "nss", "java": "java"}
# How each client says that nobody it trusts vouches for the server.
UNKNOWN_ISSUER = {
    "curl": "unable to get local issuer certificate",
    "python": "CERTIFICATE_VERIFY_FAILED",
    "chromium": "ERR_CERT_AUTHORITY_INVALID",
    "java": "unable to find valid certification path",
}
HOST_STORES = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/ssl/certs/java/cacerts"))
# Debian's Java hook runs `dpkg --triggers-only --pending`: dpkg's own state is written too.
HOST_DPKG = Path("/var/lib/dpkg/status")
HOST_FOLDERS = (
    Path("/usr/local/share/ca-certificates"),
    Path("/var/lib/ca-certificates-java"),
    Path.home() / ".pki" / "nssdb",  # the real user's, outside the sandbox's HOME
)

FETCH_JAVA = """\
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().proxy(HttpClient.Builder.NO_PROXY).build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0])).build();
        System.out.print(client.send(request, HttpResponse.BodyHandlers.ofString()).body());
    }
}
"""
FETCH_PYTHON = """\
import ssl, sys, urllib.request
context = ssl.create_default_context()
print(urllib.request.urlopen(sys.argv[1], context=context, timeout=30).read().decode())
"""


@dataclass(frozen=True)
class Site:
    """nginx serving ``name`` on 127.0.0.1:``port``."""

    name: str
    port: int

    @property
    def url(self) -> str:
        return f"https://{self.name}:{self.port}/"


@dataclass(frozen=True)
class Lab:
    """A name-constrained CA, the sites nginx serves for it, and the sandbox; ``start``
    serves one more."""

    ca: Path
    folder: Path
    sandbox: Sandbox
    sites: dict[str, Site]
    start: StartNginx | None = None


def make_root(ca: Path, *constraints: str) -> Path:
    run_minica("init", "--ca", ca, "--cn", ROOT_CN, *constraints, check=True)
    return ca


def by_hand(ca: Path, folder: Path, name: str) -> Leaf:
    """A server certificate for ``name`` signed with the CA's key by hand (the CA's
    policy would refuse a name outside its constraints): what a stolen key could make."""
    issuer = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    ca_key = load_pem_private_key((ca / "private" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = Leaf(folder / f"{name}.crt", folder / f"{name}.key")
    leaf.cert.write_bytes(certificate.public_bytes(Encoding.PEM))
    leaf.key.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return leaf


def issued(ca: Path, folder: Path, name: str) -> Leaf:
    """A `server` certificate for ``name`` issued by `minica issue`."""
    leaf = Leaf(folder / f"{name}.crt", folder / f"{name}.key")
    run_minica(
        "issue", "--ca", ca, "--profile", "server", "--cn", name, "--out", leaf.cert, check=True
    )
    return leaf


def require_clients() -> None:
    for tool in ("curl", "chromium", "java", "keytool", "certutil", "update-ca-certificates"):
        require_tool(tool)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A root constrained to lab.test and 127.0.0.0/8; nginx serving www.lab.test (issued
    by minica) and, signed by hand with the root's key, in.lab.test (inside the
    constraints) and www.other.test (outside them); a sandbox where those names are
    127.0.0.1."""
    require_clients()
    ca = make_root(tmp_path / "ca", "--permit-dns", "lab.test", "--permit-ip", "127.0.0.0/8")
    leaves = {
        "www.lab.test": issued(ca, tmp_path, "www.lab.test"),
        "in.lab.test": by_hand(ca, tmp_path, "in.lab.test"),
        "www.other.test": by_hand(ca, tmp_path, "www.other.test"),
    }
    (tmp_path / "Fetch.java").write_text(FETCH_JAVA)
    (tmp_path / "fetch.py").write_text(FETCH_PYTHON)
    (tmp_path / "hosts").write_text(f"127.0.0.1 {' '.join(leaves)}\n")
    with nginx_launcher(tmp_path) as start, trust_sandbox(tmp_path / "sandbox") as sandbox:
        sites = {name: Site(name, start(leaf).port) for name, leaf in leaves.items()}
        # Python resolves through the system resolver: the sandbox's own /etc/hosts.
        assert sandbox.sh(f"cat {tmp_path / 'hosts'} >> /etc/hosts").code == 0
        yield Lab(ca, tmp_path, sandbox, sites, start)


def fetch(lab: Lab, client: str, site: Site) -> Result:
    """``client`` GETs ``site`` inside the sandbox, trusting only its default stores."""
    sandbox, folder = lab.sandbox, lab.folder
    if client == "curl":
        return sandbox.run(
            "curl", "-sS", "--noproxy", "*", "--resolve", f"{site.name}:{site.port}:127.0.0.1",
            site.url,
        )  # fmt: skip
    if client == "python":
        return sandbox.run(minica_argv()[0], folder / "fetch.py", site.url)
    if client == "chromium":
        return sandbox.run(
            "chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--no-proxy-server",
            f"--user-data-dir={folder / 'chromium'}",
            f"--host-resolver-rules=MAP {site.name} 127.0.0.1", "--dump-dom", site.url,
        )  # fmt: skip
    assert client == "java"
    return sandbox.run(
        "java", f"-Djdk.net.hosts.file={folder / 'hosts'}", folder / "Fetch.java", site.url
    )


def fetched(ran: Result) -> bool:
    """The client showed the page (Chromium exits 0 on a refused page, with an empty DOM)."""
    return ran.code == 0 and PAGE in ran.stdout


def client_outcomes(lab: Lab, site: Site) -> dict[str, Result]:
    return {client: fetch(lab, client, site) for client in CLIENTS}


def assert_all_refuse(outcomes: dict[str, Result]) -> None:
    """Every client refused, saying it knows no issuer for the server's certificate."""
    for client, ran in outcomes.items():
        assert not fetched(ran), (client, ran)
        assert UNKNOWN_ISSUER[client] in ran.stderr, (client, ran.stderr)


def assert_all_fetch(outcomes: dict[str, Result]) -> None:
    for client, ran in outcomes.items():
        assert fetched(ran), (client, ran)


def trust(lab: Lab, *args: str | Path) -> Result:
    """`minica trust ARGS --ca CA` inside the sandbox."""
    return lab.sandbox.run(*minica_argv("trust", *args, "--ca", lab.ca))


def status(lab: Lab) -> dict[str, bool]:
    """`minica trust status --json`: for each store, whether some location of it trusts the
    root (several NSS databases may be listed)."""
    ran = trust(lab, "status", "--json")
    assert ran.code == 0, ran
    rows = json.loads(ran.stdout)
    assert all({"store", "location", "trusted"} <= row.keys() for row in rows), rows
    trusted: dict[str, bool] = {}
    for row in rows:
        trusted[row["store"]] = trusted.get(row["store"], False) or row["trusted"] is True
    return trusted


def assert_status_agrees(lab: Lab, outcomes: dict[str, Result]) -> None:
    said = status(lab)
    for client, ran in outcomes.items():
        assert said.get(STORE_OF[client], False) == fetched(ran), (client, said, ran)


def java_aliases(lab: Lab) -> str:
    """`keytool -list` of the JDK's cacerts inside the sandbox (Debian's store password)."""
    ran = lab.sandbox.run("keytool", "-list", "-cacerts", "-storepass", "changeit")
    assert ran.code == 0, ran
    return ran.stdout


def root_fingerprint(ca: Path) -> str:
    """The root's SHA-256 fingerprint as keytool prints it: AA:BB:..."""
    root = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    return ":".join(f"{b:02X}" for b in root.fingerprint(hashes.SHA256()))


def test_the_four_clients_trust_the_root_from_install_to_uninstall(lab: Lab) -> None:
    site = lab.sites["www.lab.test"]
    before = client_outcomes(lab, site)
    assert_all_refuse(before)
    assert_status_agrees(lab, before)

    installed = trust(lab, "install")
    assert installed.code == 0, installed
    after_install = client_outcomes(lab, site)
    assert_all_fetch(after_install)
    assert_status_agrees(lab, after_install)

    removed = trust(lab, "uninstall")
    assert removed.code == 0, removed
    after_uninstall = client_outcomes(lab, site)
    assert_all_refuse(after_uninstall)
    assert_status_agrees(lab, after_uninstall)


def test_the_installed_root_vouches_for_nothing_outside_its_constraints(lab: Lab) -> None:
    assert trust(lab, "install").code == 0
    # The same hand-made kind of certificate, inside the constraints, is accepted: what
    # refuses www.other.test is the constraint, not how the certificate was made.
    for client in ("curl", "chromium"):
        assert fetched(fetch(lab, client, lab.sites["in.lab.test"])), client
    outside = lab.sites["www.other.test"]
    curl = fetch(lab, "curl", outside)
    assert curl.code == 60 and "permitted subtree violation" in curl.stderr, curl
    chromium = fetch(lab, "chromium", outside)
    # Chromium's verifier reports a name-constraint violation as an invalid certificate.
    assert not fetched(chromium) and "net::ERR_CERT_INVALID" in chromium.stderr, chromium


def test_java_follows_the_system_store_through_install_uninstall_and_install_again(
    lab: Lab,
) -> None:
    site, fingerprint = lab.sites["www.lab.test"], root_fingerprint(lab.ca)
    links_before = certs_links(lab)
    for _ in range(2):  # the second install must reach Java as the first did
        assert trust(lab, "install", "--store", "system").code == 0
        # Debian's update-ca-certificates hook put the root into Java's cacerts.
        assert fingerprint in java_aliases(lab)
        assert fetched(fetch(lab, "java", site))
        assert trust(lab, "uninstall", "--store", "system").code == 0
        assert fingerprint not in java_aliases(lab)
        java = fetch(lab, "java", site)
        assert not fetched(java) and UNKNOWN_ISSUER["java"] in java.stderr, java
        # Nothing install added is left in /etc/ssl/certs: a link left there (Debian's
        # update-ca-certificates keeps a dangling one) makes the next install of the same
        # file "0 added", and its hook never gives Java the root again.
        assert certs_links(lab) == links_before


def test_each_store_takes_back_only_what_it_put_in(lab: Lab) -> None:
    """Java's store removes its own alias, not the copy Debian's hook made for the system
    store (nor any other alias of the same root), and the reverse."""
    site, fingerprint = lab.sites["www.lab.test"], root_fingerprint(lab.ca)
    assert trust(lab, "install", "--store", "system", "--store", "java").code == 0
    assert trust(lab, "uninstall", "--store", "java").code == 0
    assert fingerprint in java_aliases(lab)  # the system store's copy stays...
    assert fetched(fetch(lab, "java", site))  # ...and Java trusts the root through it
    assert status(lab)["java"] is True
    assert trust(lab, "uninstall", "--store", "system").code == 0
    assert fingerprint not in java_aliases(lab)
    assert status(lab)["java"] is False


def certs_links(lab: Lab) -> str:
    """The symbolic links in the sandbox's /etc/ssl/certs and where they point."""
    return lab.sandbox.sh(
        "find /etc/ssl/certs -maxdepth 1 -type l -printf '%f %l\\n' | sort"
    ).stdout


def test_an_intermediates_folder_installs_its_root_once_however_often_asked(
    lab: Lab, tmp_path: Path
) -> None:
    """`--ca` an intermediate's folder: the root above it goes in (twice asked, once
    there), so curl accepts what the intermediate issues; the root's own folder then
    takes it out, as the same root."""
    issuing = tmp_path / "issuing"
    run_minica("init", "--ca", issuing, "--cn", "minica trust test issuing", "--parent", lab.ca,
               check=True)  # fmt: skip
    leaf = issued(issuing, tmp_path, "deep.lab.test")
    chain = tmp_path / "deep-chain.crt"
    chain.write_bytes(leaf.cert.read_bytes() + (issuing / "ca.crt").read_bytes())
    assert lab.start is not None
    site = Site("deep.lab.test", lab.start(Leaf(chain, leaf.key)).port)
    for _ in range(2):
        installed = lab.sandbox.run(
            *minica_argv("trust", "install", "--store", "system", "--ca", issuing)
        )
        assert installed.code == 0, installed
    anchors = lab.sandbox.sh("ls /usr/local/share/ca-certificates | grep -c minica")
    assert anchors.stdout.strip() == "1", anchors
    assert fetched(fetch(lab, "curl", site))
    assert trust(lab, "uninstall", "--store", "system").code == 0
    assert not fetched(fetch(lab, "curl", site))


def test_an_unconstrained_root_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    require_clients()
    ca = make_root(tmp_path / "ca")
    with trust_sandbox(tmp_path / "sandbox") as sandbox:
        lab = Lab(ca, tmp_path, sandbox, {})
        refused = trust(lab, "install")
        assert_refused(refused, "name constraints")
        assert "--permit-dns" in refused.stderr.strip().splitlines()[-1], refused.stderr
        assert root_fingerprint(ca) not in java_aliases(lab)
        assert not any(status(lab).values())
        # Not a byte written to any store, and no NSS database made: a refusal happens
        # before anything is touched.
        assert sandbox.written() == []


def host_state() -> dict[str, str]:
    """Hashes of the host's bundle, Java cacerts and dpkg status, and the file lists of its
    anchor folder, the Java hook's pending list and the user's NSS database."""
    files = (*HOST_STORES, HOST_DPKG)
    state = {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}
    for folder in HOST_FOLDERS:
        state[str(folder)] = (
            " ".join(sorted(p.name for p in folder.glob("*"))) if folder.exists() else ""
        )
    return state


def test_a_sandboxed_install_leaves_the_host_stores_unchanged(lab: Lab) -> None:
    before = host_state()
    assert trust(lab, "install").code == 0
    # The install did write the stores, inside the sandbox: an unchanged host means the
    # sandbox held, not that nothing was written.
    written = lab.sandbox.written()
    assert {str(path) for path in (*HOST_STORES, HOST_DPKG)} <= set(written), written
    assert root_fingerprint(lab.ca) in java_aliases(lab)
    assert host_state() == before


def test_a_user_without_root_is_told_which_stores_need_root(lab: Lab) -> None:
    """As `nobody`, the system store and Java's cacerts (root's files) fail with why and a
    hint on sudo; the user's own NSS database is done, and the error says so."""
    home = as_nobody(lab)
    ran = lab.sandbox.run(*NOBODY, *minica_argv("trust", "install", "--ca", NOBODYS_CA), env=home)
    error, hint = refusal_lines(ran)
    assert "2 of 3 failed" in error and "(nss done)" in error, error
    assert "system at /usr/local/share/ca-certificates/" in error, error
    # keytool says "Certificate was added to keystore" before it fails to write the store:
    # the reason must be the failure, not that.
    java = error[error.index("java at ") :]
    assert "Permission denied" in java and "was added" not in java, error
    assert "sudo" in hint, hint
    said = lab.sandbox.run(
        *NOBODY, *minica_argv("trust", "status", "--json", "--ca", NOBODYS_CA), env=home
    )
    assert {row["store"]: row["trusted"] for row in json.loads(said.stdout)} == {
        "system": False, "nss": True, "java": False,
    }, said  # fmt: skip


def test_a_home_the_user_cannot_enter_fails_the_nss_store_without_a_traceback(lab: Lab) -> None:
    """`su nobody` keeps root's HOME: nobody may not look into it (pytest's folders are
    root's alone), so the NSS store fails, saying why, as the other two do."""
    as_nobody(lab)
    ran = lab.sandbox.run(*NOBODY, *minica_argv("trust", "install", "--ca", NOBODYS_CA))
    error, _ = refusal_lines(ran)
    assert "3 of 3 failed" in error, error
    nss = error[error.index("nss at ") : error.index("java at ")]
    assert "Permission denied" in nss, error


NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
NOBODYS_CA = "/var/tmp/minica-trust-ca"  # inside the sandbox: /var is an overlay


def as_nobody(lab: Lab) -> dict[str, str]:
    """A copy of the CA that `nobody` may read and a HOME of nobody's own, both inside the
    sandbox (pytest's folders are root's alone); the environment that uses that HOME."""
    require_tool("setpriv")
    home = "/var/tmp/nobody-home"
    made = lab.sandbox.sh(
        f"cp -r {lab.ca} {NOBODYS_CA} && chmod -R a+rX {NOBODYS_CA}"
        f" && mkdir {home} && chown nobody {home}"
    )
    assert made.code == 0, made
    return {"HOME": home}


def refusal_lines(ran: Result) -> tuple[str, str]:
    """The `error:` and `hint:` lines of a command that exited 1."""
    assert ran.code == 1 and "Traceback" not in ran.stderr, ran
    lines = ran.stderr.strip().splitlines()
    assert lines[-2].startswith("error: ") and lines[-1].startswith("hint: "), ran.stderr
    return lines[-2], lines[-1]


def test_every_firefox_profile_and_chromium_get_the_root_and_lose_it(lab: Lab) -> None:
    """NSS databases of two Firefox profiles (made by certutil, as Firefox does) and
    Chromium's: install puts the root in each, status names each, uninstall takes it out
    of each; NSS itself (certutil -V) is the judge."""
    profiles = [
        lab.sandbox.home / ".mozilla" / "firefox" / name for name in ("a.default", "b.work")
    ]
    for profile in profiles:
        profile.mkdir(parents=True)
        assert (
            lab.sandbox.run("certutil", "-N", "-d", f"sql:{profile}", "--empty-password").code == 0
        )
    nss = [*profiles, lab.sandbox.home / ".pki" / "nssdb"]
    assert trust(lab, "install", "--store", "nss").code == 0
    assert nss_trusted(lab) == {str(folder): True for folder in nss}
    assert all(root_in_nss(lab, folder) for folder in nss)
    assert trust(lab, "uninstall", "--store", "nss").code == 0
    assert nss_trusted(lab) == {str(folder): False for folder in nss}
    assert not any(root_in_nss(lab, folder) for folder in nss)


def nss_trusted(lab: Lab) -> dict[str, bool]:
    ran = trust(lab, "status", "--store", "nss", "--json")
    assert ran.code == 0, ran
    return {row["location"]: row["trusted"] for row in json.loads(ran.stdout)}


def root_in_nss(lab: Lab, folder: Path) -> bool:
    """Whether the NSS database in ``folder`` holds the root, under whatever nickname:
    each nickname `certutil -L` lists (before its trust flags) exported and compared."""
    root = x509.load_pem_x509_certificate((lab.ca / "ca.crt").read_bytes())
    listing = lab.sandbox.run("certutil", "-L", "-d", f"sql:{folder}")
    assert listing.code == 0, listing
    for line in listing.stdout.splitlines():
        if "," not in line or "Trust Attributes" in line or "S/MIME" in line:
            continue
        nickname = line.rsplit(None, 1)[0].strip()
        pem = lab.sandbox.run("certutil", "-L", "-d", f"sql:{folder}", "-a", "-n", nickname)
        if pem.code == 0 and root in x509.load_pem_x509_certificates(pem.stdout.encode()):
            return True
    return False
