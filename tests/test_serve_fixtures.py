"""The service from Python: `FixtureCA().serve()` runs it in the test process, and the pytest
plugin's `minica_service` gives each test its own. A Python ssl client reads the OCSP URL
from the certificate a TLS server presents and asks the service about it.
"""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID
from serve_lab import (
    PROPAGATION,
    ask,
    check_signature,
    eventually,
    listed_in_crl,
    ocsp_request,
    ocsp_response,
    post_ocsp,
)
from servers import http_request

from minica import CertificateAuthority, Credential, FixtureCA, ManualClock

pytest_plugins = ["pytester"]

TIMEOUT = 10.0  # seconds for each socket operation
# Inner runs as in test_pytest_plugin.py: no cache folder, no hypothesis, the file's order.
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly")


def presented_certificate(server: ssl.SSLContext, client: ssl.SSLContext) -> x509.Certificate:
    """The certificate a TLS server with context ``server`` presents to a Python ssl client
    with context ``client`` (which verifies it, for "localhost")."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)

        def accept() -> None:
            connection, _ = listener.accept()
            with server.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # until the client closes

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as raw,
            client.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        thread.join(TIMEOUT)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def ocsp_url_of(certificate: x509.Certificate) -> str:
    access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    (url,) = [
        str(d.access_location.value)
        for d in access.value
        if d.access_method == AuthorityInformationAccessOID.OCSP
    ]
    return url


def online_status(certificate: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    """What the OCSP responder the certificate names says of it."""
    url = ocsp_url_of(certificate)
    assert url.endswith("/ocsp"), url
    response = ocsp_response(
        post_ocsp(url.removesuffix("/ocsp"), ocsp_request(certificate, issuer))
    )
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    return response.certificate_status


def checked_by_a_tls_client(ca: FixtureCA, credential: Credential) -> ocsp.OCSPCertStatus:
    server = ca.server_context(credential, client_certificates=False)
    presented = presented_certificate(server, ca.client_context())
    assert presented == credential.certificate
    return online_status(presented, ca.certificate)


def refuses_connections(url: str) -> bool:
    port = int(url.rstrip("/").rpartition(":")[2])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    except ConnectionRefusedError:
        return True
    return False


def test_fixture_ca_serve_answers_a_tls_clients_ocsp_question(tmp_path: Path) -> None:
    ca = FixtureCA()
    with ca.serve() as served:
        good, revoked = ca.certify("localhost"), ca.certify("localhost")
        for credential in (good, revoked):
            points = credential.certificate.extensions.get_extension_for_class(
                x509.CRLDistributionPoints
            ).value
            assert [n.value for p in points for n in p.full_name or []] == [served.crl_url]
            assert ocsp_url_of(credential.certificate) == served.ocsp_url
        assert checked_by_a_tls_client(ca, good) == ocsp.OCSPCertStatus.GOOD
        ca.revoke(revoked)

        def revoked_online() -> bool:
            return checked_by_a_tls_client(ca, revoked) == ocsp.OCSPCertStatus.REVOKED

        assert eventually(PROPAGATION, revoked_online) is not None, "not revoked online in 2 s"
        base = served.crl_url.removesuffix("/crl")
        serial = revoked.certificate.serial_number
        assert eventually(PROPAGATION, lambda: listed_in_crl(base, serial)) is not None
        assert checked_by_a_tls_client(ca, good) == ocsp.OCSPCertStatus.GOOD
        root = tmp_path / "root.pem"
        root.write_bytes(ca.root_pem)
        assert served.https_url is not None
        health = http_request(f"{served.https_url.rstrip('/')}/health", trust=root)
        assert health.status == 200
    assert served.http_url is not None and refuses_connections(served.http_url)
    after = ca.certify("localhost")  # no longer points at a service that is gone
    assert x509.AuthorityInformationAccess not in {
        type(e.value) for e in after.certificate.extensions
    }


def test_fixture_ca_serve_signs_with_the_cas_own_key() -> None:
    ca = FixtureCA()
    with ca.serve() as served:
        credential = ca.certify("localhost")
        reply = post_ocsp(
            served.ocsp_url.removesuffix("/ocsp"),
            ocsp_request(credential.certificate, ca.certificate, hashes.SHA256()),
        )
        response = ocsp_response(reply)
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
        assert ca.certificate in response.certificates
        check_signature(
            ca.certificate.public_key(),
            response.signature,
            response.tbs_response_bytes,
            response.signature_hash_algorithm,
        )


# A user's test file: the plugin's minica_service, with no import from minica.
USER_TESTS = """
import time
import urllib.request
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

URLS = []


def status(certificate, issuer, url):
    request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1())
    sent = urllib.request.Request(
        url,
        data=request.build().public_bytes(Encoding.DER),
        headers={"Content-Type": "application/ocsp-request"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(sent, timeout=10) as answer:
        return ocsp.load_der_ocsp_response(answer.read()).certificate_status


def test_a_revoked_credential_is_revoked_online(minica_ca, minica_service, minica_certificate):
    credential = minica_certificate("localhost")
    issuer = minica_ca.certificate
    access = credential.certificate.extensions.get_extension_for_class(
        x509.AuthorityInformationAccess
    ).value
    urls = [d.access_location.value for d in access
            if d.access_method == AuthorityInformationAccessOID.OCSP]
    assert urls == [minica_service.ocsp_url]
    online = minica_service.ocsp_url
    assert status(credential.certificate, issuer, online) == ocsp.OCSPCertStatus.GOOD
    minica_ca.revoke(credential)
    deadline = time.monotonic() + 2
    while status(credential.certificate, issuer, online) != ocsp.OCSPCertStatus.REVOKED:
        assert time.monotonic() < deadline, "not revoked online within 2 s"
        time.sleep(0.05)
    URLS.append(minica_service.http_url)


def test_each_test_has_its_own_service(minica_service):
    import socket

    assert URLS and minica_service.http_url != URLS[0]
    port = int(URLS[0].rstrip("/").rpartition(":")[2])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        pass
    else:
        raise AssertionError("the first test's service still runs")
"""


def test_the_plugin_serves_the_session_ca_one_service_per_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(*INNER)
    result.assert_outcomes(passed=2)


def presented_serial(url: str) -> int:
    """The serial of the certificate an HTTPS listener presents (not verified: its dates
    follow the CA's manual clock, not this machine's)."""
    port = int(url.rstrip("/").rpartition(":")[2])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_served_ca_stays_current_as_its_clock_moves() -> None:
    """300 days on: OCSP answers, the CRL and the HTTPS certificate are all made anew, dated
    by the CA's clock, with no restart (the CRL before its nextUpdate, the certificate
    before it runs out)."""
    clock = ManualClock(datetime.now(timezone.utc).replace(microsecond=0))
    ca = FixtureCA(CertificateAuthority.in_memory(clock=clock))
    with ca.serve() as served:
        secure = served.https_url
        assert secure is not None
        base = served.ocsp_url.removesuffix("/ocsp")
        credential = ca.certify("localhost")
        before = presented_serial(secure)
        ask(base, credential.certificate, ca.certificate)
        clock.advance(timedelta(days=300))
        now = clock()

        def answered_anew() -> bool:
            response = ask(base, credential.certificate, ca.certificate)
            return response.this_update_utc >= now

        def crl_signed_anew() -> bool:
            crl = x509.load_der_x509_crl(http_request(served.crl_url).body)
            return crl.last_update_utc >= now and crl.next_update_utc is not None

        assert eventually(PROPAGATION, answered_anew) is not None, "OCSP answers are stale"
        assert ask(base, credential.certificate, ca.certificate).next_update_utc > now  # type: ignore[operator]
        assert eventually(PROPAGATION, crl_signed_anew) is not None, "the CRL is stale"
        renewed = eventually(PROPAGATION, lambda: presented_serial(secure) != before)
        assert renewed is not None, "the HTTPS certificate was not renewed"
        serials = {record.serial for record in ca.authority.records()}
        assert format(presented_serial(secure), "x") in serials
