"""`minica serve` from the inside: the responder's answers and what it keeps, the CRL it
publishes, the service's own certificates and their renewal, every route and refusal.
(Real clients judge it in tests/test_serve_clients.py and tests/test_serve_nginx.py.)"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import assert_refused, run_minica
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from serve_lab import ocsp_request

from minica import CertificateAuthority, FixtureCA, ManualClock, PolicyError, Subject
from minica.keys import private_key_pem

pytest.importorskip("starlette", reason="minica serve needs the serve extra")

from minica.serve import Endpoints, Service
from minica.serve.identity import tls_names
from minica.serve.ocsp import LIFETIME, Responder
from minica.serve.page import fingerprint
from minica.serve.runner import in_thread, listen_on, tls_for

NOW = datetime(2031, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def never_issued(fixtures: FixtureCA) -> x509.Certificate:
    """A certificate signed with the CA's key by hand: a serial its registry never saw."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = fixtures.authority.clock()
    ca_key = fixtures.authority.private_key
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "never.test")]))
        .issuer_name(fixtures.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )


def answer(responder: Responder, request: bytes) -> ocsp.OCSPResponse:
    return ocsp.load_der_ocsp_response(responder.respond(request).der)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def fixtures(clock: ManualClock) -> FixtureCA:
    return FixtureCA(CertificateAuthority.in_memory(key_type="ec-p256", clock=clock))


# --- the responder ---------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()], ids=["sha1", "sha256"])
def test_good_revoked_and_unknown_signed_by_the_ca(
    fixtures: FixtureCA, algorithm: hashes.HashAlgorithm
) -> None:
    responder = Responder(fixtures.authority)
    cases = {
        "good": fixtures.certify("good.test").certificate,
        "revoked": fixtures.revoked("revoked.test").certificate,
        "never": never_issued(fixtures),
    }
    answers = {
        name: answer(responder, ocsp_request(cert, fixtures.certificate, algorithm))
        for name, cert in cases.items()
    }
    assert answers["good"].certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answers["revoked"].certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answers["revoked"].revocation_reason == x509.ReasonFlags.key_compromise
    assert answers["revoked"].revocation_time_utc == NOW
    assert answers["never"].certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    ca_key = fixtures.certificate.public_key()
    assert isinstance(ca_key, ec.EllipticCurvePublicKey)
    for name, response in answers.items():
        assert response.serial_number == cases[name].serial_number
        assert (response.this_update_utc, response.next_update_utc) == (NOW, NOW + LIFETIME)
        assert response.hash_algorithm.name == algorithm.name
        assert response.certificates == [fixtures.certificate]
        assert response.responder_key_hash is not None
        algorithm_used = response.signature_hash_algorithm
        assert algorithm_used is not None
        ca_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm_used))


def test_another_issuer_is_unauthorized_and_garbage_malformed(fixtures: FixtureCA) -> None:
    responder = Responder(fixtures.authority)
    stranger = FixtureCA()
    other = answer(
        responder, ocsp_request(stranger.certify("x.test").certificate, stranger.certificate)
    )
    assert other.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    for garbage in (b"", b"\x30\x03abc", b"not DER at all"):
        assert (
            answer(responder, garbage).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        )


def test_a_nonce_is_echoed_in_a_response_of_its_own(fixtures: FixtureCA) -> None:
    responder = Responder(fixtures.authority)
    leaf = fixtures.certify("n.test").certificate
    first = answer(responder, ocsp_request(leaf, fixtures.certificate, nonce=b"0123456789abcdef"))
    nonce = first.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"0123456789abcdef"
    assert (
        responder.respond_at_once(ocsp_request(leaf, fixtures.certificate, nonce=b"x" * 16)) is None
    )


def test_kept_answers_last_half_their_life_and_follow_the_registry(
    fixtures: FixtureCA, clock: ManualClock
) -> None:
    responder = Responder(fixtures.authority)
    credential = fixtures.certify("k.test")
    request = ocsp_request(credential.certificate, fixtures.certificate)
    first = responder.respond(request)
    assert responder.respond_at_once(request) == first  # kept: no registry, no signature
    clock.advance(LIFETIME / 2)
    assert responder.respond_at_once(request) is None  # half its life: signed anew
    assert responder.respond(request) != first
    fixtures.revoke(credential)
    assert responder.refresh() is True  # the registry moved: nothing kept survives
    assert responder.respond_at_once(request) is None
    assert answer(responder, request).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert responder.refresh() is False


# --- the service and its routes --------------------------------------------------------------


@pytest.fixture
def served(fixtures: FixtureCA) -> Iterator[tuple[Service, Endpoints]]:
    service = Service(fixtures.authority, tls_names=tls_names([], "127.0.0.1"))
    secure, plain = listen_on("127.0.0.1", 0), listen_on("127.0.0.1", 0)
    running = in_thread(service, [(secure, tls_for(service)), (plain, None)])
    try:
        yield service, running.urls
    finally:
        running.stop()
        if running.thread is not None:
            running.thread.join(30)


def fetch(
    url: str, data: bytes | None = None, content_type: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_every_route_answers_with_its_type(
    served: tuple[Service, Endpoints], fixtures: FixtureCA
) -> None:
    _, urls = served
    base = urls.base
    status, headers, body = fetch(f"{base}/ca.crt")
    assert (status, headers["content-type"]) == (200, "application/pkix-cert")
    assert x509.load_der_x509_certificate(body) == fixtures.certificate
    for path in ("/ca.pem", "/ca-chain.pem"):
        status, headers, body = fetch(base + path)
        assert headers["content-type"] == "application/x-pem-file"
        assert x509.load_pem_x509_certificates(body)[0] == fixtures.certificate
    status, headers, body = fetch(f"{base}/crl")
    assert headers["content-type"] == "application/pkix-crl"
    assert x509.load_der_x509_crl(body).is_signature_valid(fixtures.certificate.public_key())  # type: ignore[arg-type]
    assert {"cache-control", "etag", "expires", "last-modified"} <= set(map(str.lower, headers))
    status, _, body = fetch(f"{base}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, headers, body = fetch(f"{base}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert fingerprint(fixtures.certificate) in body.decode()


def test_ocsp_by_post_and_by_get(served: tuple[Service, Endpoints], fixtures: FixtureCA) -> None:
    _, urls = served
    leaf = fixtures.revoked("r.test").certificate
    request = ocsp_request(leaf, fixtures.certificate, hashes.SHA256())
    status, headers, body = fetch(urls.ocsp_url, request, "application/ocsp-request")
    assert (status, headers["content-type"]) == (200, "application/ocsp-response")
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert headers["cache-control"].startswith("max-age=")
    encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    status, _, body = fetch(f"{urls.ocsp_url}/{encoded}")
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_bad_requests_get_4xx_and_the_service_goes_on(served: tuple[Service, Endpoints]) -> None:
    _, urls = served
    assert fetch(urls.ocsp_url, b"x" * 70_000, "application/ocsp-request")[0] == 413
    assert fetch(urls.ocsp_url, b"x", "text/plain")[0] == 415
    assert fetch(f"{urls.base}/nothing")[0] == 404
    assert fetch(f"{urls.base}/crl", b"x", "text/plain")[0] == 405
    status, _, body = fetch(urls.ocsp_url, b"garbage", "application/ocsp-request")
    assert status == 200
    assert ocsp.load_der_ocsp_response(body).response_status == (
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    )
    assert fetch(f"{urls.base}/health")[0] == 200


def peer_serial(https_url: str) -> int:
    """The serial of the certificate the HTTPS listener presents (not checked: the CA's
    clock is not the machine's here)."""
    parts = urllib.parse.urlsplit(https_url)
    assert parts.hostname is not None and parts.port is not None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_the_https_certificate_is_renewed_in_place(
    served: tuple[Service, Endpoints], fixtures: FixtureCA, clock: ManualClock
) -> None:
    service, urls = served
    assert urls.https_url is not None
    assert service.tls is not None
    first = peer_serial(urls.https_url)
    assert first == service.tls.current.certificate.serial_number
    assert fixtures.authority.record(service.tls.current.certificate).profile == "server"
    clock.advance(timedelta(days=59))
    service.refresh()
    assert peer_serial(urls.https_url) == first  # not due yet
    clock.advance(timedelta(days=2))  # two thirds of the server profile's 90 days
    service.refresh()
    renewed = peer_serial(urls.https_url)  # the same listener, no restart
    assert renewed != first and renewed == service.tls.current.certificate.serial_number


# --- the command line ------------------------------------------------------------------------


def test_init_url_points_certificates_at_the_service(tmp_path: Path) -> None:
    result = run_minica("init", "--ca", tmp_path / "ca", "--url", "http://pki.lab.test:8080/")
    assert result.code == 0, result.stderr
    settings = (tmp_path / "ca" / "ca.yaml").read_text()
    assert "crl_url: http://pki.lab.test:8080/crl" in settings
    assert "ocsp_url: http://pki.lab.test:8080/ocsp" in settings
    assert "issuer_url: http://pki.lab.test:8080/ca.crt" in settings


def test_a_ca_key_others_can_read_is_not_served(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder)
    (folder / "private" / "ca.key").chmod(0o644)
    with pytest.raises(PolicyError, match="others can read the CA key"):
        Service(CertificateAuthority.open(folder), tls_names=None)
    result = run_minica("serve", "--ca", folder, "--listen", "127.0.0.1:0", "--http-listen", "none")
    assert result.code == 1 and "others can read the CA key" in result.stderr


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_minica("serve", "--ca", folder, "--listen", f"127.0.0.1:{port}")
    assert result.code == 1 and "cannot listen on 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("broken", ["garbage key", "encrypted key", "another key", "garbage chain"])
def test_given_tls_files_that_cannot_serve_are_refused_in_one_line(
    tmp_path: Path, broken: str
) -> None:
    folder = tmp_path / "ca"
    ca = CertificateAuthority.init(folder)
    issued, key = ca.issue("server", Subject(common_name="localhost"))
    chain, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    chain.write_bytes(b"junk" if broken == "garbage chain" else issued.pem)
    other = ca.issue("server", Subject(common_name="other.test"))[1]
    chosen = {"another key": other}.get(broken, key)
    password = b"secret" if broken == "encrypted key" else None
    key_file.write_bytes(b"junk" if broken == "garbage key" else private_key_pem(chosen, password))
    result = run_minica(
        "serve", "--ca", folder, "--listen", "127.0.0.1:0", "--http-listen", "none",
        "--tls-cert", chain, "--tls-key", key_file, timeout=30,
    )  # fmt: skip
    assert_refused(result)
