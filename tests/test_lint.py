"""pkilint judges every built-in profile: RFC 5280 for all, CA/B Forum rules for `server`."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_ca_certificate, write_certificate

from minica import CertificateAuthority, Subject, Urls

pkilint = pytest.importorskip("pkilint", reason="pkilint comes with the test extra")
from pkilint.bin import lint_cabf_serverauth_cert, lint_pkix_cert  # noqa: E402

URLS = Urls(crl="http://pki.example.com/lab.crl", issuer="http://pki.example.com/lab.crt")

# What each profile's certificate is issued for; example.com names, not .test ones:
# the CA/B linter reports reserved TLDs as internal names.
SUBJECTS: dict[str, tuple[str, dict[str, list[str]]]] = {
    "server": ("www.example.com", {"dns": ["www.example.com", "example.com"]}),
    "server-client": ("peer.example.com", {"dns": ["peer.example.com"]}),
    "client": ("Alice Example", {"email": ["alice@example.com"]}),
    "code-signing": ("Example Release Signing", {}),
    "email": ("Alice Example", {"email": ["alice@example.com"]}),
    "timestamping": ("Example Time-Stamping Authority", {}),
    "ocsp-signing": ("Example OCSP Responder", {}),
    "intermediate-ca": ("Example Issuing CA", {}),
}

# The CA/B Forum requires a policy OID saying the certificate follows its Baseline
# Requirements; a lab CA does not, so it must not claim one (add it to a profile's
# `policies` if yours does). This is the one finding the `server` profile keeps.
LAB_CA_FINDINGS = {"cabf.serverauth.subscriber.certificate_policies_extension_absent"}


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.in_memory(
        subject=Subject(common_name="Example Lab Root", organization="Example Lab", country="DE"),
        urls=URLS,
    )


def findings(linter: Callable[[list[str] | None], int], *args: str | Path) -> dict[str, str]:
    """Run a pkilint command line in-process; {finding code: severity} at WARNING and above."""
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        linter(["lint", "-s", "WARNING", "-f", "JSON", *map(str, args)])
    results = json.loads(output.getvalue())["results"]
    return {f["code"]: f["severity"] for r in results for f in r["finding_descriptions"]}


def serious(found: dict[str, str]) -> set[str]:
    return {code for code, severity in found.items() if severity in ("ERROR", "FATAL")}


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
@pytest.mark.parametrize("profile", SUBJECTS)
def test_every_profile_passes_the_rfc5280_linter(
    ca: CertificateAuthority, tmp_path: Path, profile: str, key_type: str
) -> None:
    cn, names = SUBJECTS[profile]
    certificate, _ = write_certificate(ca, profile, tmp_path, profile, cn, key_type, **names)
    assert findings(lint_pkix_cert.main, certificate) == {}


def test_the_root_passes_the_rfc5280_linter(ca: CertificateAuthority, tmp_path: Path) -> None:
    assert findings(lint_pkix_cert.main, write_ca_certificate(ca, tmp_path / "ca.crt")) == {}


@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_server_passes_the_cabf_serverauth_linter(
    ca: CertificateAuthority, tmp_path: Path, key_type: str
) -> None:
    cn, names = SUBJECTS["server"]
    certificate, _ = write_certificate(ca, "server", tmp_path, "server", cn, key_type, **names)
    found = findings(lint_cabf_serverauth_cert.main, "-t", "DV-FINAL-CERTIFICATE", certificate)
    assert serious(found) == LAB_CA_FINDINGS, found
