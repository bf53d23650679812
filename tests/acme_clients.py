"""Real ACME clients against `minica serve` (tests/acme_serve.py) and the checks every
certificate they obtain must pass: minica's root signed it, for exactly the names ordered,
for TLS servers, and its registry row names the account's contact.

    with acme_service(tmp_path) as acme:
        done = lego(acme, tmp_path / "lego", "--domains", "www.lab.test", *http_01(acme), "run")
        succeeded(done)
        certificate = lego_certificate(tmp_path / "lego", "www.lab.test")
        assert_server_certificate(acme, certificate, ["www.lab.test"], "lego@lab.test")
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from acme_serve import AcmeService
from conftest import Result, issuer_key, listing, require_tool, run_minica
from cryptography import x509
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_lab import check_signature

LEGO_TIMEOUT = 60.0  # seconds for one lego command (~5 s at most here, more on a busy CI)


def client_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for an outside client: PATH, a HOME of its own (nothing read
    from or written to the user's), no proxy variables, plus ``extra``."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **(extra or {})}


def lego(
    acme: AcmeService,
    path: Path,
    *options: str,
    email: str = "lego@lab.test",
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run `lego --server DIRECTORY --path PATH --accept-tos --email EMAIL OPTIONS`,
    trusting only the CA's root for the directory; what it said and its exit status.
    Skips without lego (fails under MINICA_REQUIRE_TOOLS=1)."""
    binary = require_tool("lego")
    path.mkdir(parents=True, exist_ok=True)
    command = [
        *(binary, "--server", acme.directory, "--path", str(path)),
        *("--accept-tos", "--email", email, *options),
    ]
    trust = {"LEGO_CA_CERTIFICATES": str(acme.root), **(env or {})}
    try:
        done = subprocess.run(
            command,
            env=client_env(path, trust),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LEGO_TIMEOUT,
        )
    except subprocess.TimeoutExpired as hung:
        pytest.fail(f"lego ran past {LEGO_TIMEOUT} s: {command}\n{_text(hung.stderr)}")
    return Result(done.returncode, done.stdout, done.stderr)


def _text(output: bytes | str | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def http_01(acme: AcmeService) -> tuple[str, ...]:
    """lego's options to answer http-01 where minica's validator connects."""
    return ("--http", "--http.port", f"127.0.0.1:{acme.http_01_port}")


def tls_alpn_01(acme: AcmeService) -> tuple[str, ...]:
    """lego's options to answer tls-alpn-01 where minica's validator connects."""
    return ("--tls", "--tls.port", f"127.0.0.1:{acme.tls_alpn_01_port}")


def lego_chain(path: Path, domain: str) -> list[x509.Certificate]:
    """What lego saved for an order whose first name is ``domain`` (its file names a
    wildcard's `*` as `_`): the leaf, then the chain minica served after it."""
    saved = path / "certificates" / f"{domain.replace('*', '_')}.crt"
    return x509.load_pem_x509_certificates(saved.read_bytes())


def lego_certificate(path: Path, domain: str) -> x509.Certificate:
    """The leaf lego saved for an order whose first name is ``domain``."""
    return lego_chain(path, domain)[0]


def verifies_for(acme: AcmeService, chain: Sequence[x509.Certificate], host: str) -> None:
    """cryptography's TLS server verifier, trusting only the CA's root, accepts ``chain``
    (leaf first) for ``host``; raises VerificationError if not."""
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .build_server_verifier(x509.DNSName(host))
    )
    verifier.verify(chain[0], list(chain[1:]))


def said(result: Result) -> str:
    """Everything a client wrote, for assertions and failure messages."""
    return result.stdout + result.stderr


def succeeded(result: Result) -> None:
    assert result.code == 0, said(result)


def failed(result: Result, *fragments: str) -> None:
    """The client exited non-zero, and its output names every fragment."""
    assert result.code != 0, said(result)
    for fragment in fragments:
        assert fragment in said(result), (fragment, said(result))


def issued_by_minica(acme: AcmeService, certificate: x509.Certificate) -> None:
    """``certificate`` names the CA's root as issuer and the root's key signed it."""
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    assert certificate.issuer == root.subject, certificate.issuer
    check_signature(
        issuer_key(root),
        certificate.signature,
        certificate.tbs_certificate_bytes,
        certificate.signature_hash_algorithm,
    )


def dns_names(certificate: x509.Certificate) -> list[str]:
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert not names.get_values_for_type(x509.IPAddress), names
    return sorted(names.get_values_for_type(x509.DNSName))


def purposes(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def registry_row(acme: AcmeService, certificate: x509.Certificate) -> dict[str, Any]:
    """The row `minica list --ca CA --json` shows for ``certificate`` (which must be there)."""
    rows = [r for r in listing(acme.ca) if int(r["serial"], 16) == certificate.serial_number]
    assert len(rows) == 1, (certificate.serial_number, listing(acme.ca))
    return rows[0]


def assert_server_certificate(
    acme: AcmeService,
    certificate: x509.Certificate,
    names: Sequence[str],
    contact: str,
    purpose: Sequence[x509.ObjectIdentifier] = (ExtendedKeyUsageOID.SERVER_AUTH,),
) -> dict[str, Any]:
    """``certificate`` is minica's, for exactly ``names``, with exactly the EKUs
    ``purpose`` (the `server` profile's serverAuth unless told), and listed in the
    registry with ``contact``; returns its row."""
    issued_by_minica(acme, certificate)
    assert dns_names(certificate) == sorted(names)
    assert purposes(certificate) == list(purpose)
    row = registry_row(acme, certificate)
    assert row["contact"] == contact, row
    assert row["status"] == "valid", row
    return row


def acme_rows(acme: AcmeService) -> list[dict[str, Any]]:
    """The registry rows with a contact: every certificate ACME issued (the service's own
    HTTPS certificate, made at start, has none)."""
    return [row for row in listing(acme.ca) if row["contact"] is not None]


def rows_naming(acme: AcmeService, name: str) -> list[dict[str, Any]]:
    """The registry rows whose subject is CN=NAME (ACME's certificates have the order's
    first name as CN): none for a name that was refused."""
    return [row for row in listing(acme.ca) if row["subject"] == f"CN={name}"]


def eab_key(acme: AcmeService) -> tuple[str, str]:
    """A new external account key from `minica acme eab add --json`: (kid, hmac_key)."""
    made = run_minica("acme", "eab", "add", "--ca", acme.ca, "--json", check=True)
    key = json.loads(made.stdout)
    return key["kid"], key["hmac_key"]
