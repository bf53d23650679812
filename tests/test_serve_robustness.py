"""`minica serve` as a long-lived process meets other processes and bad clients: a
revocation made by `minica revoke` elsewhere shows within 2 s; SIGTERM waits for the
request in flight; garbage, wrong types, oversized bodies and unknown paths get 4xx and
never 5xx; hundreds of idle or half-sent connections do not starve /health; a CA key
others can read is refused.
"""

from __future__ import annotations

import http.client
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import assert_refused, run_minica
from cryptography import x509
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_lab import (
    OCSP_REQUEST,
    PROPAGATION,
    Lab,
    ask,
    eventually,
    get_ocsp,
    issue,
    make_lab,
    ocsp_request,
    ocsp_response,
    post_ocsp,
    revoke,
    served_ca,
)
from servers import Reply, Service, http_request, stop_service

OCSP_LIMIT = 64 * 1024  # bytes: the largest OCSP body the service reads (then 413)
HEALTH_WITHIN = 2.0  # seconds for /health while the service holds many slow connections
SLOW_CONNECTIONS = 200


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One service for the module; a test that changes its registry issues its own leaf."""
    served = make_lab(tmp_path_factory.mktemp("serve-robust"))
    yield served
    stop_service(served.service)


def assert_still_serving(lab: Lab) -> None:
    """/health answers, an OCSP request gets its answer, and nothing was a traceback."""
    assert http_request(f"{lab.service.http_url}/health").status == 200
    good = ask(lab.service.http_url, lab.certificate("good"), lab.issuer)
    assert good.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert "Traceback" not in lab.service.said(), lab.service.said()


def test_a_revocation_by_another_process_shows_within_two_seconds(lab: Lab, tmp_path: Path) -> None:
    """By POST, by GET (the cacheable form) and in the CRL, each with a new ETag."""
    url, issuer = lab.service.http_url, lab.issuer
    leaf = issue(lab.ca, tmp_path, "late")  # issued while the service runs
    certificate = x509.load_pem_x509_certificate(leaf.read_bytes())
    request = ocsp_request(certificate, issuer)
    ask_by: dict[str, Callable[[], Reply]] = {
        "POST": lambda: post_ocsp(url, request),
        "GET": lambda: get_ocsp(url, request),
        "CRL": lambda: http_request(f"{url}/crl"),
    }

    def revoked_in(method: str, reply: Reply) -> bool:
        if method == "CRL":
            crl = x509.load_der_x509_crl(reply.body)
            return (
                crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
            )
        response = ocsp_response(reply)
        if response.certificate_status != ocsp.OCSPCertStatus.REVOKED:
            return False
        assert response.revocation_reason == x509.ReasonFlags.superseded
        return True

    def known() -> bool:
        return ask(url, certificate, issuer).certificate_status == ocsp.OCSPCertStatus.GOOD

    assert eventually(PROPAGATION, known) is not None, "a new certificate was not known in 2 s"
    before = {method: send() for method, send in ask_by.items()}  # kept by caches, maybe
    assert not any(revoked_in(method, reply) for method, reply in before.items())
    revoke(lab.ca, leaf, "superseded")  # returns once the registry has committed it
    start = time.monotonic()
    seen: dict[str, float] = {}

    def shown() -> bool:
        for method, send in ask_by.items():
            reply = send()
            if method not in seen and revoked_in(method, reply):
                seen[method] = time.monotonic() - start
                assert reply.headers.get("etag") != before[method].headers.get("etag"), method
        return len(seen) == len(ask_by)

    eventually(PROPAGATION, shown)
    assert set(seen) == set(ask_by), f"after {PROPAGATION} s only {seen} showed it"
    assert max(seen.values()) <= PROPAGATION, seen


def raw_ocsp_head(length: int) -> bytes:
    return (
        "POST /ocsp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {OCSP_REQUEST}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    ).encode()


def test_sigterm_waits_for_the_request_in_flight(tmp_path: Path) -> None:
    ca, service = served_ca(tmp_path)
    try:
        leaf = x509.load_pem_x509_certificate(issue(ca, tmp_path, "inflight").read_bytes())
        issuer = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
        body = ocsp_request(leaf, issuer)
        with socket.create_connection(("127.0.0.1", service.port()), timeout=10) as connection:
            connection.sendall(raw_ocsp_head(len(body)) + body[:10])
            time.sleep(1.0)  # the service has read the head: the request is in flight
            service.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            assert service.process.poll() is None, "exited with a request in flight"
            connection.sendall(body[10:])
            answer = http.client.HTTPResponse(connection)
            answer.begin()
            reply = Reply(answer.status, dict(answer.getheaders()), answer.read())
        response = ocsp.load_der_ocsp_response(reply.body)
        assert (reply.status, response.certificate_status) == (200, ocsp.OCSPCertStatus.GOOD)
        assert service.process.wait(timeout=10) == 0, service.said()
        assert "Traceback" not in service.said(), service.said()
    finally:
        stop_service(service)


def test_sigterm_does_not_wait_for_an_idle_keep_alive_connection(tmp_path: Path) -> None:
    """An ACME client's connection pool keeps a TLS connection open between requests: it
    is no request in flight, and the service exits without waiting for it to close."""
    ca, service = served_ca(tmp_path)
    try:
        context = ssl.create_default_context(cafile=str(ca / "ca.crt"))
        connection = http.client.HTTPSConnection(
            "127.0.0.1", service.port("https"), context=context, timeout=30
        )
        connection.request("GET", "/health")
        assert connection.getresponse().read()  # answered, and the connection kept open
        service.process.send_signal(signal.SIGTERM)
        # Killed instead (None) if it waited out its grace period for the idle connection.
        assert stop_service(service) == 0, service.said()
        assert "Traceback" not in service.said(), service.said()
        connection.close()
    finally:
        stop_service(service)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_ends_an_idle_service_with_exit_0(tmp_path: Path, signal_number: int) -> None:
    _, service = served_ca(tmp_path)
    try:
        service.process.send_signal(signal_number)
        assert service.process.wait(timeout=10) == 0, service.said()
        assert "Traceback" not in service.said(), service.said()
    finally:
        stop_service(service)


# (method, path, body, content type) -> the status the interface names.
BAD_REQUESTS = [
    ("POST", "/ocsp", b"\x30\x00", "text/plain", 415),
    ("POST", "/ocsp", b"\x30\x00", "application/json", 415),
    ("POST", "/ocsp", b"\x30\x00", "application/x-www-form-urlencoded", 415),
    ("POST", "/ocsp", b"\x30" * (OCSP_LIMIT + 1), OCSP_REQUEST, 413),
    ("POST", "/ocsp", b"\x30" * (4 * OCSP_LIMIT), OCSP_REQUEST, 413),
    ("GET", "/nothing-here", None, None, 404),
    ("GET", "/ca.crt/more", None, None, 404),
    ("DELETE", "/ocsp", None, None, 405),
    ("PUT", "/crl", b"x", "application/pkix-crl", 405),
    ("POST", "/ca.crt", b"x", "application/pkix-cert", 405),
    ("POST", "/health", b"{}", "application/json", 405),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type", "status"), BAD_REQUESTS)
def test_bad_requests_get_their_4xx(
    lab: Lab, method: str, path: str, body: bytes | None, content_type: str | None, status: int
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = http_request(f"{lab.service.http_url}{path}", body, method=method, headers=headers)
    assert reply.status == status, (method, path, reply)
    assert_still_serving(lab)


@pytest.mark.parametrize("encoded", ["!!!", "AAAA", "%ZZ", "MAA%3D", "A" * 4000])
def test_garbage_in_an_ocsp_get_is_no_server_error(lab: Lab, encoded: str) -> None:
    """Not base64, or base64 of no OCSP request: a malformedRequest answer or a 4xx."""
    reply = http_request(f"{lab.service.http_url}/ocsp/{encoded}")
    if reply.status == 200:
        response = ocsp_response(reply)
        assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    else:
        assert 400 <= reply.status < 500, reply
    assert_still_serving(lab)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=512), st.binary(max_size=64).map(lambda b: b"\x30" + b)))
def test_any_ocsp_body_gets_an_ocsp_answer(lab: Lab, body: bytes) -> None:
    reply = post_ocsp(lab.service.http_url, body)
    response = ocsp_response(reply)  # 200, application/ocsp-response, parseable
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


@pytest.mark.parametrize(
    "sent",
    [b"NOT HTTP AT ALL\r\n\r\n", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"],
    ids=["garbage", "long-line"],
)
def test_broken_http_gets_a_4xx(lab: Lab, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", lab.service.port()), timeout=10) as connection:
        connection.sendall(sent)
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 4"), answer[:300]
    assert_still_serving(lab)


def open_slow_connections(stack: ExitStack, service: Service) -> None:
    """SLOW_CONNECTIONS connections, half to each listener: idle ones, HTTP requests cut
    off in their headers, TLS records cut off in their header."""
    for index in range(SLOW_CONNECTIONS):
        scheme = "http" if index % 2 == 0 else "https"
        connection = stack.enter_context(
            socket.create_connection(("127.0.0.1", service.port(scheme)), timeout=10)
        )
        if index % 4 == 0:
            connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        elif index % 4 == 3:
            connection.sendall(b"\x16\x03\x01\x02\x00\x01\x00")  # a ClientHello, begun


def test_slow_connections_do_not_starve_health(lab: Lab) -> None:
    with ExitStack() as stack:
        open_slow_connections(stack, lab.service)
        start = time.monotonic()
        for url in (lab.service.http_url, lab.service.https_url):
            assert http_request(f"{url}/health", trust=lab.ca_file).status == 200
        elapsed = time.monotonic() - start
    assert elapsed <= HEALTH_WITHIN, f"/health took {elapsed:.2f} s on both listeners"
    assert_still_serving(lab)


def test_a_tls_client_that_fails_the_handshake_harms_no_one(lab: Lab) -> None:
    context = ssl.create_default_context()  # trusts the system's roots, not this CA
    with (
        socket.create_connection(("127.0.0.1", lab.service.port("https")), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")
    assert http_request(f"{lab.service.https_url}/health", trust=lab.ca_file).status == 200


def test_a_ca_key_others_can_read_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    run_minica("init", "--ca", ca, "--cn", "open key root", check=True)
    (ca / "private" / "ca.key").chmod(0o644)
    try:
        result = run_minica(
            "serve", "--ca", ca, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
            timeout=30,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("minica serve ran with a CA key readable by others")
    assert_refused(result, "ca.key")
    assert "serving http" not in result.stderr, result.stderr
