"""Shared test helpers: running the CLI as a user would, outside tools, folder snapshots."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from minica import CertificateAuthority, Names, Subject, Urls
from minica.keys import PublicKey, private_key_pem

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CA = REPO / "example-ca"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def minica_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a minica the tests start: this process's, without MINICA_CA*
    (a developer's own CA or passphrase must not leak into a test), plus ``env``."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("MINICA_CA")}
    return {**inherited, **(env or {})}


def minica_argv(*args: str | Path) -> list[str]:
    """The command line of `python -m minica ARGS`, for tests that run the process
    themselves (on a pseudo-terminal, killed mid-flight, under strace)."""
    return [sys.executable, "-m", "minica", *map(str, args)]


def run_minica(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes = b"",
    umask: int | None = None,
    timeout: float = 120,
    check: bool = False,
) -> Result:
    """Run `python -m minica ARGS` in a fresh process, as a shell user would, but with no
    terminal: stdin is a pipe holding ``stdin`` and the process has no controlling
    terminal, so minica never prompts. ``umask``: the process's own. ``check``: insist
    that it succeeded, without a traceback."""
    completed = subprocess.run(
        minica_argv(*args),
        cwd=cwd,
        env=minica_env(env),
        input=stdin,
        capture_output=True,
        timeout=timeout,
        start_new_session=True,
        umask=-1 if umask is None else umask,
    )
    result = Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())
    if check:
        assert result.code == 0, (args, result.code, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
    return result


def assert_refused(result: Result, *fragments: str) -> None:
    """Exit 1 with one `error:` line (plus an optional `hint:`) naming every fragment."""
    assert result.code == 1, (result.code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: "), result.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def listing(ca: Path, *options: str) -> list[dict[str, Any]]:
    """The rows of `minica list --ca CA --json OPTIONS` (which must succeed)."""
    rows: list[dict[str, Any]] = json.loads(
        run_minica("list", "--ca", ca, "--json", *options, check=True).stdout
    )
    return rows


def snapshot(directory: Path) -> dict[str, str]:
    """Every file below ``directory`` with its mode and a hash of its bytes."""
    return {
        str(path.relative_to(directory)): f"{path.stat().st_mode:o}:"
        + (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir")
        for path in sorted(directory.rglob("*"))
    }


def require_tool(name: str) -> str:
    """The path of an outside program; skip without it, but fail under MINICA_REQUIRE_TOOLS=1."""
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        if os.environ.get("MINICA_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is required (MINICA_REQUIRE_TOOLS=1) but not installed")
        pytest.skip(f"{name} is not installed")
    return path


class OpenSSL(Protocol):
    """The ``openssl`` fixture: run openssl with ARGS (and ``env`` as its whole
    environment); returns the completed process, never raises on failure."""

    def __call__(
        self, *args: str | Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def openssl() -> OpenSSL:
    """Run openssl (skip without it); see OpenSSL."""
    binary = require_tool("openssl")

    def run(
        *args: str | Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *map(str, args)], capture_output=True, text=True, timeout=60, env=env
        )

    return run


@pytest.fixture(scope="session")
def session_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA folder made once per test session with `minica init` (read-only use, please)."""
    directory = tmp_path_factory.mktemp("session") / "ca"
    result = run_minica("init", "--ca", directory, "--cn", "minica test root")
    assert result.code == 0, result.stderr
    return directory


def copy_ca(source: Path, destination: Path) -> Path:
    """A copy of the CA folder ``source`` at ``destination``, modes as a real CA has them."""
    shutil.copytree(source, destination)
    (destination / "private").chmod(0o700)
    (destination / "private" / "ca.key").chmod(0o600)
    return destination


@pytest.fixture(scope="session")
def template_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root CA folder as a small lab has it, made once per session: a `server`
    certificate for www.example.test and a `client` one for Alice <alice@example.test>."""
    directory = tmp_path_factory.mktemp("template") / "ca"
    authority = CertificateAuthority.init(
        directory,
        subject=Subject(common_name="minica test root CA", organization="minica tests"),
        urls=Urls(crl="http://ca.example.test/crl.pem", issuer="http://ca.example.test/ca.crt"),
    )
    authority.issue(
        authority.profile("server"),
        Subject(common_name="www.example.test"),
        Names.parse(dns=["example.test"]),
    )
    authority.issue(
        authority.profile("client"),
        Subject(common_name="Alice Example"),
        Names.parse(email=["alice@example.test"]),
    )
    return directory


@pytest.fixture
def ca_dir(tmp_path: Path, template_ca: Path) -> Path:
    """A fresh root CA folder to sign into, with the two certificates of ``template_ca``."""
    return copy_ca(template_ca, tmp_path / "ca")


class Leaf(NamedTuple):
    """A certificate file (or a leaf-first chain) and its key file."""

    cert: Path
    key: Path

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert.read_bytes())


@dataclass(frozen=True)
class Pki:
    """A CA certificate file and the leaves a test module issued under it, by role."""

    ca_file: Path
    leaves: dict[str, Leaf]


def write_certificate(
    ca: CertificateAuthority,
    profile: str,
    directory: Path,
    name: str,
    cn: str,
    key_type: str = "ec-p256",
    **names: list[str],
) -> Leaf:
    """Issue from ``ca`` under ``profile`` and write NAME.crt and NAME.key; returns both paths.

    ``names`` are Names.parse keywords: dns=[...], ip=[...], email=[...], uri=[...].
    """
    issued, key = ca.issue(
        ca.profile(profile), Subject(common_name=cn), Names.parse(**names), key_type=key_type
    )
    certificate, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    certificate.write_bytes(issued.pem)
    key_path.write_bytes(private_key_pem(key))
    return Leaf(certificate, key_path)


def issuer_key(certificate: x509.Certificate) -> PublicKey:
    """The public key of a CA certificate minica made (RSA, EC or Ed25519), typed as a key
    that checks signatures."""
    key = certificate.public_key()
    assert isinstance(
        key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)
    ), key
    return key


def write_ca_certificate(ca: CertificateAuthority, path: Path) -> Path:
    """Write ``ca``'s own certificate as PEM to ``path``; returns it."""
    path.write_bytes(ca.certificate.public_bytes(Encoding.PEM))
    return path


@pytest.fixture(scope="session")
def postgres() -> Iterator[Callable[[], str]]:
    """A PostgreSQL server for the session (skip without one, or without psycopg); each
    call gives the DSN of a fresh, empty database on it (see postgres_lab.py)."""
    require_tool("/usr/lib/postgresql/15/bin/initdb")
    if importlib.util.find_spec("psycopg") is None:
        if os.environ.get("MINICA_REQUIRE_TOOLS") == "1":
            pytest.fail("psycopg is required (MINICA_REQUIRE_TOOLS=1) but not installed")
        pytest.skip("psycopg is not installed")
    from postgres_lab import database_factory, postgres_server

    with postgres_server() as server:
        yield database_factory(server)
