"""Real OCSP clients judge `minica serve`'s responder: `openssl ocsp` (statuses, revocation
reason and time, nonces, SHA-1 and SHA-256 CertIDs, another CA's certificate, a delegated
responder), GnuTLS `ocsptool` following the certificate's own AIA URL, and pkilint's
RFC 6960 linter on what it answers.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import OpenSSL, listing, require_tool, run_minica
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_lab import Lab, make_lab, ocsp_request, ocsp_response, post_ocsp
from servers import http_request, stop_service

pytestmark = pytest.mark.tools

# What openssl prints for each status (first line of stdout: "FILE: STATUS").
STATUSES = {"good": "good", "revoked": "revoked", "unknown": "unknown"}
OPENSSL_TIME = "%b %d %H:%M:%S %Y GMT"  # "Dec  2 06:48:00 2026 GMT"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One service for the module: the tests only read from it."""
    served = make_lab(tmp_path_factory.mktemp("serve-ocsp"))
    yield served
    stop_service(served.service)


@pytest.fixture(scope="module")
def delegated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The same, served with --ocsp-delegate: responses signed by a responder certificate."""
    served = make_lab(tmp_path_factory.mktemp("serve-ocsp-delegate"), "--ocsp-delegate")
    yield served
    stop_service(served.service)


@pytest.fixture(scope="module")
def intermediate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """An issuing CA below a root, served; relying parties trust only the root."""
    folder = tmp_path_factory.mktemp("serve-ocsp-intermediate")
    root = folder / "root"
    run_minica("init", "--ca", root, "--cn", "minica serve test top root", check=True)
    served = make_lab(folder, parent=root)
    yield served
    stop_service(served.service)


def ask_openssl(
    openssl: OpenSSL, lab: Lab, role: str, *options: str | Path
) -> subprocess.CompletedProcess[str]:
    """`openssl ocsp -issuer ISSUER OPTIONS -cert LEAF -url .../ocsp -CAfile ROOT`
    (a digest option such as -sha256 must come before -cert)."""
    return openssl(
        "ocsp", "-issuer", lab.issuer_of(role), *options, "-cert", lab.leaves[role],
        "-url", f"{lab.service.http_url}/ocsp", "-CAfile", lab.root_file,
    )  # fmt: skip


def assert_verified(done: subprocess.CompletedProcess[str], lab: Lab, role: str) -> None:
    """openssl verified the response and found STATUS for the leaf."""
    said = done.stdout + done.stderr + lab.service.said()[-2000:]
    assert done.returncode == 0, said
    assert "Response verify OK" in done.stderr, said
    assert done.stdout.splitlines()[0] == f"{lab.leaves[role]}: {STATUSES[role]}", said
    assert "WARNING" not in done.stdout + done.stderr, said


@pytest.mark.parametrize(
    "digest", [(), ("-sha1",), ("-sha256",)], ids=["default", "sha1", "sha256"]
)
@pytest.mark.parametrize("role", ["good", "revoked", "unknown"])
def test_openssl_ocsp_verifies_each_status(
    openssl: OpenSSL, lab: Lab, tmp_path: Path, role: str, digest: tuple[str, ...]
) -> None:
    answer = tmp_path / "response.der"
    done = ask_openssl(openssl, lab, role, *digest, "-respout", answer)
    assert_verified(done, lab, role)
    # The response names the certificate by the CertID it was asked with (RFC 6960 4.2.1).
    response = ocsp.load_der_ocsp_response(answer.read_bytes())
    assert response.hash_algorithm.name == (digest[0][1:] if digest else "sha1")
    assert response.serial_number == lab.certificate(role).serial_number


def test_openssl_reads_the_revocation_reason_and_time(openssl: OpenSSL, lab: Lab) -> None:
    done = ask_openssl(openssl, lab, "revoked")
    assert_verified(done, lab, "revoked")
    fields = dict(line.strip().split(": ", 1) for line in done.stdout.splitlines()[1:])
    assert fields["Reason"] == "keyCompromise", done.stdout
    revoked = datetime.strptime(fields["Revocation Time"], OPENSSL_TIME).replace(
        tzinfo=timezone.utc
    )
    before, after = lab.revoked_between
    assert before <= revoked <= after, (fields, lab.revoked_between)


@pytest.mark.parametrize("nonce", [(), ("-nonce",)], ids=["by-default", "asked"])
def test_openssl_nonce_is_echoed(
    openssl: OpenSSL, lab: Lab, tmp_path: Path, nonce: tuple[str, ...]
) -> None:
    sent, answer = tmp_path / "request.der", tmp_path / "response.der"
    done = ask_openssl(openssl, lab, "good", *nonce, "-reqout", sent, "-respout", answer)
    assert_verified(done, lab, "good")  # openssl itself warns of a missing or wrong nonce
    request = ocsp.load_der_ocsp_request(sent.read_bytes())
    response = ocsp.load_der_ocsp_response(answer.read_bytes())
    asked = request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert echoed == asked


def test_openssl_gets_unauthorized_for_another_cas_certificate(openssl: OpenSSL, lab: Lab) -> None:
    done = ask_openssl(openssl, lab, "foreign")
    assert "Responder Error: unauthorized (6)" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )


@pytest.mark.parametrize("role", ["good", "revoked", "unknown"])
def test_openssl_verifies_an_intermediate_cas_responses_up_to_the_root(
    openssl: OpenSSL, intermediate: Lab, tmp_path: Path, role: str
) -> None:
    answer = tmp_path / "response.der"
    done = ask_openssl(openssl, intermediate, role, "-respout", answer)
    assert_verified(done, intermediate, role)
    response = ocsp.load_der_ocsp_response(answer.read_bytes())
    assert intermediate.issuer in response.certificates  # the signer, for the path to the root


def test_an_intermediate_cas_https_chain_verifies_up_to_the_root(intermediate: Lab) -> None:
    reply = http_request(f"{intermediate.service.https_url}/health", trust=intermediate.root_file)
    assert reply.status == 200
    chain = x509.load_pem_x509_certificates(
        http_request(f"{intermediate.service.http_url}/ca-chain.pem").body
    )
    root = x509.load_pem_x509_certificate(intermediate.root_file.read_bytes())
    assert chain == [intermediate.issuer, root]


@pytest.mark.parametrize("role", ["good", "revoked", "unknown"])
def test_openssl_verifies_a_delegated_responder_through_the_ca(
    openssl: OpenSSL, delegated: Lab, tmp_path: Path, role: str
) -> None:
    answer = tmp_path / "response.der"
    done = ask_openssl(openssl, delegated, role, "-respout", answer)
    assert_verified(done, delegated, role)
    response = ocsp.load_der_ocsp_response(answer.read_bytes())
    responder = response.certificates[0]
    assert responder != delegated.issuer  # not the CA signing by itself
    responder.verify_directly_issued_by(delegated.issuer)
    usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    key_id = x509.SubjectKeyIdentifier.from_public_key(responder.public_key()).digest
    assert response.responder_key_hash == key_id or response.responder_name == responder.subject


def test_the_delegated_responder_is_kept_and_recorded(delegated: Lab, tmp_path: Path) -> None:
    response = ocsp_response(
        post_ocsp(
            delegated.service.http_url,
            ocsp_request(delegated.certificate("good"), delegated.issuer),
        )
    )
    responder = response.certificates[0]
    rows = {row["serial"]: row for row in listing(delegated.ca)}
    assert rows[format(responder.serial_number, "x")]["profile"] == "ocsp-signing", rows
    kept = [
        x509.load_pem_x509_certificates(path.read_bytes())
        for path in (delegated.ca / "serve").iterdir()
        if path.is_file() and b"-----BEGIN CERTIFICATE-----" in path.read_bytes()
    ]
    assert any(responder in certificates for certificates in kept), sorted(
        (delegated.ca / "serve").iterdir()
    )


@pytest.mark.parametrize("role", ["good", "revoked"])
def test_gnutls_ocsptool_follows_the_aia_url_and_verifies(lab: Lab, role: str) -> None:
    binary = require_tool("ocsptool")
    done = subprocess.run(
        [binary, "--ask", "--load-cert", str(lab.leaves[role]), "--load-issuer", str(lab.ca_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert f"127.0.0.1:{lab.service.port()}" in said, said  # the URL came from the certificate
    assert f"Certificate Status: {role}" in said, said
    assert "Verifying OCSP Response: Success." in said, said


def pkilint_findings(response: Path) -> dict[str, str]:
    """pkilint's OCSP response linter, in-process: {finding code: severity}, WARNING and up."""
    pytest.importorskip("pkilint", reason="pkilint comes with the test extra")
    from pkilint.bin import lint_ocsp_response

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        lint_ocsp_response.main(["lint", "-s", "WARNING", "-f", "JSON", str(response)])
    results = json.loads(output.getvalue())["results"]
    return {f["code"]: f["severity"] for r in results for f in r["finding_descriptions"]}


@pytest.mark.parametrize("signer", ["ca", "delegate"])
@pytest.mark.parametrize("role", ["good", "revoked", "unknown"])
def test_pkilint_finds_no_error_in_a_response(
    request: pytest.FixtureRequest, tmp_path: Path, role: str, signer: str
) -> None:
    served: Lab = request.getfixturevalue("lab" if signer == "ca" else "delegated")
    reply = post_ocsp(
        served.service.http_url, ocsp_request(served.certificate(role), served.issuer)
    )
    ocsp_response(reply)  # a successful HTTP answer of the right type
    saved = tmp_path / "response.der"
    saved.write_bytes(reply.body)
    found = pkilint_findings(saved)
    assert {code for code, severity in found.items() if severity in ("ERROR", "FATAL")} == set(), (
        found
    )
