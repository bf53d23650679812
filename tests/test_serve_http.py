"""`minica serve` over plain HTTP and HTTPS, read back field by field: OCSP requests built with
cryptography and sent by POST and GET, the CRL (also through `openssl crl` and `openssl
verify -crl_download` following the certificate's own URL), the CA certificate files,
/health, the HTTPS listener's own certificate, and the page as headless Chromium shows it.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import os
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import OpenSSL, listing, require_tool, run_minica
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID
from serve_lab import (
    OCSP_REQUEST,
    ROOT_CN,
    Lab,
    check_signature,
    get_ocsp,
    make_lab,
    ocsp_request,
    ocsp_request_for_serial,
    ocsp_response,
    post_ocsp,
    served_certificate,
)
from servers import Reply, http_request, running_service, stop_service

SKEW = timedelta(seconds=5)  # between this process's clock and the service's reading of it
STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One service for the module: the tests only read from it."""
    served = make_lab(tmp_path_factory.mktemp("serve-http"))
    yield served
    stop_service(served.service)


def send(lab: Lab, method: str, request: bytes) -> Reply:
    return (post_ocsp if method == "POST" else get_ocsp)(lab.service.http_url, request)


def assert_names_the_ca(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> None:
    """The responder is the CA (by key hash or by name), its certificate is included, and
    the CA's key signed the response."""
    key_id = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    assert response.responder_key_hash == key_id or response.responder_name == issuer.subject
    assert issuer in response.certificates
    check_signature(
        issuer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
    )


def assert_cacheable_until(reply: Reply, next_update: datetime) -> None:
    """Cache-Control max-age, Expires, Last-Modified and ETag, none past ``next_update``
    (RFC 5019 section 6.2)."""
    now = datetime.now(timezone.utc)
    max_age = re.search(r"max-age=(\d+)", reply.headers.get("cache-control", ""))
    assert max_age, reply.headers
    assert 0 < int(max_age[1]) <= (next_update - now + SKEW).total_seconds(), reply.headers
    expires = email.utils.parsedate_to_datetime(reply.headers["expires"])
    assert now - SKEW < expires <= next_update + SKEW, reply.headers
    assert email.utils.parsedate_to_datetime(reply.headers["last-modified"]) <= now + SKEW
    assert reply.headers["etag"].strip('W/"'), reply.headers


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("role", ["good", "revoked", "unknown"])
def test_ocsp_response_field_by_field(lab: Lab, role: str, method: str) -> None:
    certificate = lab.certificate(role)
    request = ocsp.load_der_ocsp_request(ocsp_request(certificate, lab.issuer))
    reply = send(lab, method, request.public_bytes(Encoding.DER))
    response = ocsp_response(reply)
    now = datetime.now(timezone.utc)
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status == STATUS[role]
    assert response.serial_number == certificate.serial_number
    assert (response.issuer_name_hash, response.issuer_key_hash) == (
        request.issuer_name_hash,
        request.issuer_key_hash,
    )
    assert isinstance(response.hash_algorithm, hashes.SHA1)
    assert response.this_update_utc <= now + SKEW
    assert response.produced_at_utc <= now + SKEW
    assert response.next_update_utc is not None  # RFC 5019 2.2.4: always a nextUpdate
    assert response.next_update_utc > max(now, response.this_update_utc)
    if role == "revoked":
        before, after = lab.revoked_between
        assert before <= response.revocation_time_utc <= after  # type: ignore[operator]
        assert response.revocation_reason == x509.ReasonFlags.key_compromise
    else:
        assert (response.revocation_time_utc, response.revocation_reason) == (None, None)
    assert_names_the_ca(response, lab.issuer)
    assert_cacheable_until(reply, response.next_update_utc)


def test_ocsp_sha256_certid_is_answered_in_kind(lab: Lab) -> None:
    certificate = lab.certificate("revoked")
    request = ocsp.load_der_ocsp_request(
        ocsp_request(certificate, lab.issuer, algorithm=hashes.SHA256())
    )
    response = ocsp_response(post_ocsp(lab.service.http_url, request.public_bytes(Encoding.DER)))
    assert response.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert isinstance(response.hash_algorithm, hashes.SHA256)
    assert (response.issuer_name_hash, response.issuer_key_hash, response.serial_number) == (
        request.issuer_name_hash,
        request.issuer_key_hash,
        certificate.serial_number,
    )


@pytest.mark.parametrize("size", [16, 32])  # RFC 8954: 1 to 32 octets; 32 is the usual
def test_ocsp_nonce_is_echoed(lab: Lab, size: int) -> None:
    nonce = os.urandom(size)
    request = ocsp_request(lab.certificate("good"), lab.issuer, nonce=nonce)
    response = ocsp_response(post_ocsp(lab.service.http_url, request))
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert_names_the_ca(response, lab.issuer)  # the nonce is inside what was signed


@pytest.mark.parametrize("size", [0, 129])
def test_ocsp_a_nonce_of_no_allowed_length_is_malformed(lab: Lab, size: int) -> None:
    """RFC 8954 2.1: a nonce of 0 octets or more than 32 is rejected with malformedRequest;
    RFC 9654, which replaces it, allows up to 128. Neither allows these."""
    request = ocsp_request(lab.certificate("good"), lab.issuer, nonce=os.urandom(size))
    response = ocsp_response(post_ocsp(lab.service.http_url, request))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_ocsp_a_serial_never_issued_is_unknown(lab: Lab) -> None:
    serial = x509.random_serial_number()
    response = ocsp_response(
        get_ocsp(lab.service.http_url, ocsp_request_for_serial(lab.issuer, serial))
    )
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert (response.certificate_status, response.serial_number) == (
        ocsp.OCSPCertStatus.UNKNOWN,
        serial,
    )


def test_ocsp_get_decodes_every_base64_character(lab: Lab) -> None:
    """A request whose base64 holds "/" and "+" (and "=" when its length calls for it), all
    percent-encoded in the URL."""
    for _ in range(1000):
        serial = x509.random_serial_number()
        request = ocsp_request_for_serial(lab.issuer, serial)
        if {"/", "+"} <= set(base64.b64encode(request).decode()):
            break
    else:
        pytest.fail("no request with '/' and '+' in its base64 in 1000 tries")
    response = ocsp_response(get_ocsp(lab.service.http_url, request))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert (response.certificate_status, response.serial_number) == (
        ocsp.OCSPCertStatus.UNKNOWN,
        serial,
    )


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_ocsp_another_issuer_is_unauthorized(lab: Lab, method: str) -> None:
    foreign_ca = x509.load_pem_x509_certificate(lab.foreign_ca.read_bytes())
    response = ocsp_response(
        send(lab, method, ocsp_request(lab.certificate("foreign"), foreign_ca))
    )
    assert response.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


@pytest.mark.parametrize(
    "body", [b"", b"hello", b"\x30\x03\x02\x01\x01", b"\x30\x82\xff\xff" + b"\x00" * 100]
)
def test_ocsp_garbage_gets_a_malformed_request_response(lab: Lab, body: bytes) -> None:
    response = ocsp_response(post_ocsp(lab.service.http_url, body))
    assert response.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_the_crl_lists_what_was_revoked(lab: Lab, openssl: OpenSSL, tmp_path: Path) -> None:
    reply = http_request(f"{lab.service.http_url}/crl")
    assert (reply.status, reply.content_type) == (200, "application/pkix-crl"), reply.headers
    crl = x509.load_der_x509_crl(reply.body)
    assert crl.issuer == lab.issuer.subject
    assert crl.is_signature_valid(lab.issuer.public_key())  # type: ignore[arg-type]
    revoked = crl.get_revoked_certificate_by_serial_number(lab.certificate("revoked").serial_number)
    assert revoked is not None
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason == x509.ReasonFlags.key_compromise
    assert (
        crl.get_revoked_certificate_by_serial_number(lab.certificate("good").serial_number) is None
    )
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > datetime.now(timezone.utc)
    assert_cacheable_until(reply, crl.next_update_utc)
    saved = tmp_path / "crl.der"
    saved.write_bytes(reply.body)
    done = openssl("crl", "-inform", "DER", "-in", saved, "-CAfile", lab.ca_file, "-noout")
    assert done.returncode == 0 and "verify OK" in done.stdout + done.stderr, done
    listed = openssl("crl", "-inform", "DER", "-in", saved, "-noout", "-text").stdout
    assert format(lab.certificate("revoked").serial_number, "X") in listed.replace(":", "")


def test_certificates_point_at_the_service(lab: Lab) -> None:
    """`minica init --url` put the service's URLs into what the CA issues."""
    base = lab.service.http_url
    certificate = lab.certificate("good")
    points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [name.value for point in points for name in point.full_name or []] == [f"{base}/crl"]
    access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert {(d.access_method, d.access_location.value) for d in access} == {
        (AuthorityInformationAccessOID.OCSP, f"{base}/ocsp"),
        (AuthorityInformationAccessOID.CA_ISSUERS, f"{base}/ca.crt"),
    }


@pytest.mark.parametrize("role, verdict", [("good", "OK"), ("revoked", "certificate revoked")])
def test_openssl_verify_downloads_the_crl_from_the_certificate(
    lab: Lab, openssl: OpenSSL, role: str, verdict: str
) -> None:
    done = openssl(
        "verify", "-crl_download", "-crl_check", "-CAfile", lab.ca_file, lab.leaves[role]
    )
    said = done.stdout + done.stderr
    assert (done.returncode == 0) == (role == "good"), said
    assert verdict in said, said


def test_the_ca_certificate_in_each_form(lab: Lab) -> None:
    base = lab.service.http_url
    der = http_request(f"{base}/ca.crt")
    assert (der.status, der.content_type) == (200, "application/pkix-cert"), der.headers
    assert der.body == lab.issuer.public_bytes(Encoding.DER)
    for path, expected in (("ca.pem", "ca.crt"), ("ca-chain.pem", "ca-chain.crt")):
        pem = http_request(f"{base}/{path}")
        assert (pem.status, pem.content_type) == (200, "application/x-pem-file"), pem.headers
        assert x509.load_pem_x509_certificates(pem.body) == x509.load_pem_x509_certificates(
            (lab.ca / expected).read_bytes()
        )


def test_health_answers_on_both_listeners(lab: Lab) -> None:
    for url in (lab.service.http_url, lab.service.https_url):
        reply = http_request(f"{url}/health", trust=lab.ca_file)
        assert (reply.status, reply.content_type) == (200, "application/json"), reply
        assert json.loads(reply.body)["status"] == "ok"


def test_the_https_listener_serves_ocsp_and_the_crl_too(lab: Lab) -> None:
    secure, plain = lab.service.https_url, lab.service.http_url
    request = ocsp_request(lab.certificate("revoked"), lab.issuer)
    reply = http_request(
        f"{secure}/ocsp", request, headers={"Content-Type": OCSP_REQUEST}, trust=lab.ca_file
    )
    assert ocsp_response(reply).certificate_status == ocsp.OCSPCertStatus.REVOKED
    crl = http_request(f"{secure}/crl", trust=lab.ca_file)
    assert crl.status == 200 and crl.body == http_request(f"{plain}/crl").body
    ca = http_request(f"{secure}/ca.crt", trust=lab.ca_file)
    assert ca.body == lab.issuer.public_bytes(Encoding.DER)


def test_the_https_certificate_is_the_cas_own_and_recorded(lab: Lab) -> None:
    port = lab.service.port("https")
    served = {served_certificate(port, lab.ca_file, name) for name in ("localhost", "127.0.0.1")}
    assert len(served) == 1
    (certificate,) = served
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    rows = {row["serial"]: row for row in listing(lab.ca)}
    assert rows[format(certificate.serial_number, "x")]["profile"] == "server", rows
    kept = [
        path
        for path in (lab.ca / "serve").iterdir()
        if path.is_file() and certificate.public_bytes(Encoding.PEM).strip() in path.read_bytes()
    ]
    assert kept, sorted((lab.ca / "serve").iterdir())


class _Text(HTMLParser):
    """The text of an HTML document, scripts and styles left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("script", "style") and self._skip > 0

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def page_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile and home in ``tmp_path``, no proxy."""
    binary = require_tool("chromium")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    command = [
        *(binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"),
        *("--no-default-browser-check", "--no-proxy-server"),
        f"--user-data-dir={tmp_path / 'chromium'}",
        *arguments,
    ]
    environment = {**os.environ, "HOME": str(home)}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=environment)


def test_the_page_in_chromium_shows_the_fingerprint_and_how_to_trust(
    lab: Lab, tmp_path: Path
) -> None:
    reply = http_request(f"{lab.service.http_url}/")
    assert (reply.status, reply.content_type) == (200, "text/html"), reply.headers
    done = chromium(tmp_path, "--dump-dom", f"{lab.service.http_url}/")
    assert done.returncode == 0, done.stderr
    text = page_text(done.stdout)
    fingerprint = hashlib.sha256(lab.issuer.public_bytes(Encoding.DER)).hexdigest()
    assert fingerprint in re.sub(r"[\s:]", "", text).lower(), text
    assert ROOT_CN in text, text
    assert "Debian" in text and "update-ca-certificates" in text, text
    assert "/usr/local/share/ca-certificates" in text, text


def test_the_page_gives_the_acme_directory_and_client_command_lines(lab: Lab) -> None:
    text = " ".join(page_text(http_request(f"{lab.service.http_url}/").body.decode()).split())
    directory = f"{lab.service.https_url}/acme/directory"
    assert f"Directory: {directory}" in text, text
    root = f"curl -o lab-root.pem {lab.service.http_url}/root.pem"
    assert (
        f"REQUESTS_CA_BUNDLE=$PWD/lab-root.pem certbot certonly --standalone --server {directory}"
        in text
    )
    assert f"LEGO_CA_CERTIFICATES=$PWD/lab-root.pem lego --server {directory}" in text
    assert text.count(root) == 2, text


def test_the_page_screenshot_is_a_png(lab: Lab, tmp_path: Path) -> None:
    picture = tmp_path / "page.png"
    done = chromium(
        tmp_path, f"--screenshot={picture}", "--window-size=1280,2000", f"{lab.service.http_url}/"
    )
    assert done.returncode == 0, done.stderr
    data = picture.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, len(data)
    if keep := os.environ.get("MINICA_KEEP_SCREENSHOT"):  # to look at it by eye
        Path(keep).write_bytes(data)


def test_the_page_shows_name_constraints_and_validity(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    run_minica(
        "init", "--ca", ca, "--cn", "constrained root", "--permit-dns", "lab.example.test",
        "--permit-ip", "10.20.0.0/16", check=True,
    )  # fmt: skip
    # The default names (localhost, 127.0.0.1) are outside the constraints: name one inside.
    with running_service(ca, "--hostname", "www.lab.example.test") as service:
        reply = http_request(f"{service.http_url}/")
    assert reply.status == 200
    text = page_text(reply.body.decode())
    assert "lab.example.test" in text and "10.20.0.0/16" in text, text
    certificate = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    for moment in (certificate.not_valid_before_utc, certificate.not_valid_after_utc):
        assert moment.strftime("%Y-%m-%d") in text, (moment, text)
