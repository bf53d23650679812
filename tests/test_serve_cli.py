"""`minica serve` as a command: its listeners and their options, its own certificates kept
across restarts (but never a revoked one), an encrypted CA key, and its refusals (a taken
port, a bad address, half of --tls-cert/--tls-key, no serve extra) as one `error:` line.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Result, assert_refused, listing, minica_env, run_minica
from cryptography import x509
from cryptography.x509 import ocsp
from serve_lab import (
    ROOT_CN,
    ask,
    eventually,
    issue,
    ocsp_request,
    ocsp_response,
    post_ocsp,
    revoke,
    served_ca,
    served_certificate,
)
from servers import Service, http_request, running_service, stop_service

START = ("--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA folder made by `minica init --url` (its service is stopped at once)."""
    folder, service = served_ca(tmp_path_factory.mktemp("serve-cli"))
    stop_service(service)
    return folder


def tls_certificate(service: Service, ca: Path, hostname: str = "localhost") -> x509.Certificate:
    return served_certificate(service.port("https"), ca / "ca.crt", hostname)


def dns_names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


def serve_refusal(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    """`minica serve ARGS` must end by itself, and not by serving."""
    try:
        result = run_minica("serve", *args, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"minica serve {args} kept running")
    assert "serving http" not in result.stderr, result.stderr
    return result


def test_each_request_gets_an_access_log_line(ca: Path) -> None:
    with running_service(ca) as service:
        assert http_request(f"{service.http_url}/health?probe=1").status == 200

        def logged() -> bool:
            return any('"GET /health?probe=1 HTTP/1.1" 200' in line for line in service.lines)

        assert eventually(2.0, logged) is not None, service.said()


def test_without_http_only_https_is_served(ca: Path) -> None:
    with running_service(ca, http_listen="none") as service:
        assert set(service.urls) == {"https"}
        reply = http_request(f"{service.https_url}/health", trust=ca / "ca.crt")
        assert reply.status == 200


def test_the_tls_certificate_is_kept_across_restarts_and_follows_hostname(ca: Path) -> None:
    with running_service(ca) as service:
        first = tls_certificate(service, ca)
    with running_service(ca) as service:
        assert tls_certificate(service, ca) == first
    with running_service(ca, "--hostname", "lab.example.test", "--hostname", "10.9.8.7") as service:
        named = tls_certificate(service, ca, "lab.example.test")
        assert served_certificate(service.port("https"), ca / "ca.crt", "10.9.8.7") == named
    assert named != first and dns_names(named) == ["lab.example.test"]
    rows = {row["serial"]: row["profile"] for row in listing(ca)}
    for certificate in (first, named):
        assert rows[format(certificate.serial_number, "x")] == "server"


def test_a_revoked_tls_certificate_is_not_served_again(tmp_path: Path) -> None:
    folder, service = served_ca(tmp_path)
    with_revoked = tls_certificate(service, folder)
    stop_service(service)
    revoke(folder, folder / "certs" / f"{with_revoked.serial_number:x}.crt")
    with running_service(folder) as service:
        now = tls_certificate(service, folder)
        issuer = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
        status = ask(service.http_url, now, issuer).certificate_status
        assert status == ocsp.OCSPCertStatus.GOOD, (
            f"the service presents certificate {now.serial_number:x}, which its own OCSP "
            f"responder says is {status.name}"
        )


def delegate_of(service: Service, folder: Path, leaf_file: Path) -> x509.Certificate:
    """The responder certificate in the service's answer about ``leaf_file``."""
    issuer = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    leaf = x509.load_pem_x509_certificate(leaf_file.read_bytes())
    response = ocsp_response(post_ocsp(service.http_url, ocsp_request(leaf, issuer)))
    return response.certificates[0]


def test_a_revoked_ocsp_delegate_is_not_used_again(tmp_path: Path) -> None:
    """The responder certificate carries id-pkix-ocsp-nocheck: no client can find out that
    it was revoked, so the service must not sign with it again."""
    folder, service = served_ca(tmp_path, "--ocsp-delegate")
    leaf = issue(folder, tmp_path, "any")
    with_revoked = delegate_of(service, folder, leaf)
    stop_service(service)
    revoke(folder, folder / "certs" / f"{with_revoked.serial_number:x}.crt")
    with running_service(folder, "--ocsp-delegate") as service:
        signer = delegate_of(service, folder, leaf)
        assert signer != with_revoked, f"signs with revoked responder {signer.serial_number:x}"


def test_given_tls_files_are_served(ca: Path, tmp_path: Path) -> None:
    chain = issue(ca, tmp_path, "given")
    given = x509.load_pem_x509_certificate(chain.read_bytes())
    with running_service(
        ca, "--tls-cert", chain, "--tls-key", chain.with_suffix(".key")
    ) as service:
        assert served_certificate(service.port("https"), ca / "ca.crt", "given.lab.test") == given


def test_an_encrypted_ca_key_needs_its_passphrase_file(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text("correct horse battery staple\n")
    folder = tmp_path / "ca"
    run_minica("init", "--ca", folder, "--cn", ROOT_CN, "--passphrase-file", secret, check=True)
    assert_refused(serve_refusal("--ca", folder, *START))  # no terminal to ask on
    with running_service(folder, "--passphrase-file", secret) as service:
        assert http_request(f"{service.http_url}/health").status == 200


def test_a_taken_port_is_refused_in_one_line(ca: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = serve_refusal(
            "--ca", ca, "--listen", "127.0.0.1:0", "--http-listen", f"127.0.0.1:{port}"
        )
    assert_refused(result, f"127.0.0.1:{port}")


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1:http", "127.0.0.1:70000", ":"])
def test_a_bad_listen_address_is_refused(ca: Path, address: str) -> None:
    result = serve_refusal("--ca", ca, "--listen", address, "--http-listen", "127.0.0.1:0")
    assert result.code in (1, 2), result  # bad input or a usage error, never a traceback
    assert "Traceback" not in result.stderr, result.stderr
    if result.code == 1:
        assert_refused(result, address)


def test_tls_cert_without_tls_key_is_a_usage_error(ca: Path, tmp_path: Path) -> None:
    chain = issue(ca, tmp_path, "half")
    result = serve_refusal("--ca", ca, *START, "--tls-cert", chain)
    assert result.code == 2, result
    assert "Traceback" not in result.stderr and "--tls-key" in result.stderr, result.stderr


@pytest.fixture
def without_serve_extra(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment where Uvicorn cannot be imported, as without the serve extra."""
    blocker = tmp_path / "no-serve-extra"
    blocker.mkdir()
    (blocker / "uvicorn.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'uvicorn'\", name='uvicorn')\n"
    )
    path = minica_env().get("PYTHONPATH", "")
    yield {"PYTHONPATH": f"{blocker}:{path}" if path else str(blocker)}


def test_without_the_serve_extra_serve_says_how_to_get_it(
    ca: Path, without_serve_extra: dict[str, str]
) -> None:
    result = serve_refusal("--ca", ca, *START, env=without_serve_extra)
    assert_refused(result)
    assert result.stderr.strip().splitlines()[-1] == "hint: pip install 'minica-pki[serve]'"
