"""ACME orders end to end in process (RFC 8555 §7.4-§7.6, RFC 8738, RFC 9773, ACME
profiles): identifiers and the challenges each may use, authorizations reused, real
http-01 validation with Retry-After while it runs, finalize, the certificate chain and
its media type, revocation by the account and by the certificate's key, renewal
information and ``replaces``, and the profiles a directory offers.

Challenges pass at once (validator None) except in the http-01 test, where minica's own
validator fetches the key authorization from a responder of the test's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from acme_jws_client import (
    Account,
    AccountKey,
    AcmeLab,
    Response,
    acme_lab,
    b64,
    changes_nothing,
    csr_for,
    refused,
    subject_csr,
)
from conftest import copy_ca
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_lab import eventually

from minica.acme.validation import Validator

WWW = "www.lab.test"
API = "api.lab.test"


@pytest.fixture
def lab(tmp_path: Path, template_ca: Path) -> Iterator[AcmeLab]:
    with acme_lab(copy_ca(template_ca, tmp_path / "ca")) as lab:
        yield lab


def new_account(lab: AcmeLab, alg: str = "ES256") -> Account:
    return lab.client.new_account(AccountKey.generate(alg), contact=["mailto:ops@lab.test"])


def challenges_of(lab: AcmeLab, account: Account, authorization: str) -> dict[str, Any]:
    body: dict[str, Any] = lab.client.as_account(account, authorization).json()
    return body


def verified(lab: AcmeLab, pem: bytes, name: str) -> x509.Certificate:
    """The leaf of ``pem`` after checking it as a TLS client would: a chain to the CA's
    root, ``name`` in the SAN, serverAuth."""
    leaf, *intermediates = x509.load_pem_x509_certificates(pem)
    root = x509.load_pem_x509_certificate((lab.ca / "ca.crt").read_bytes())
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([root]))
        .build_server_verifier(x509.DNSName(name))
    )
    verifier.verify(leaf, intermediates)
    return leaf


def san_of(certificate: x509.Certificate) -> set[str]:
    extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return {str(name.value) for name in extension.value}


# Identifiers and challenges (RFC 8555 §7.1.3, RFC 8738).


def test_an_order_for_names_and_an_address_offers_the_challenges_each_can_use(
    lab: AcmeLab,
) -> None:
    account = new_account(lab)
    order = lab.client.new_order(account, WWW, "192.0.2.7", "*.lab.test")
    assert order.json()["status"] == "pending"
    offered = {}
    for authorization in order.json()["authorizations"]:
        body = challenges_of(lab, account, authorization)
        assert body["status"] == "pending"
        key = (body["identifier"]["value"], body.get("wildcard", False))
        offered[key] = sorted(c["type"] for c in body["challenges"])
    assert offered == {
        (WWW, False): ["dns-01", "http-01", "tls-alpn-01"],
        ("192.0.2.7", False): ["http-01", "tls-alpn-01"],  # RFC 8738 §7: no dns-01
        ("lab.test", True): ["dns-01"],  # a wildcard: the base name, DNS only
    }


@pytest.mark.parametrize(
    "identifier, kind",
    [
        ({"type": "email", "value": "a@lab.test"}, "unsupportedIdentifier"),
        ({"type": "dns", "value": "bad_name..test"}, "rejectedIdentifier"),
        ({"type": "ip", "value": "300.1.1.1"}, "rejectedIdentifier"),
    ],
)
def test_identifiers_an_order_cannot_have(
    lab: AcmeLab, identifier: dict[str, str], kind: str
) -> None:
    account = new_account(lab)
    payload = {"identifiers": [identifier]}
    request = partial(lab.client.as_account, account, lab.client.url("newOrder"), payload)
    changes_nothing(lab, request, kind, 400)


def test_a_valid_authorization_is_reused_by_the_next_order(lab: AcmeLab) -> None:
    account = new_account(lab)
    first = lab.client.new_order(account, WWW)
    lab.client.authorize(account, first)
    second = lab.client.new_order(account, WWW)
    assert second.json()["authorizations"] == first.json()["authorizations"]
    assert second.json()["status"] == "ready"
    # Another account's validation is not this one's.
    other = lab.client.new_order(new_account(lab), WWW)
    assert other.json()["status"] == "pending"
    assert other.json()["authorizations"] != first.json()["authorizations"]


# Real http-01, and Retry-After while it runs (RFC 8555 §7.5.1, §8.2).


@dataclass
class GatedResponder:
    """An http-01 responder that holds every answer until ``gate`` is set."""

    port: int
    answers: dict[str, str] = field(default_factory=dict)
    gate: threading.Event = field(default_factory=threading.Event)


@contextmanager
def gated_responder() -> Iterator[GatedResponder]:
    responder = GatedResponder(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            responder.gate.wait(20)
            token = self.path.rsplit("/", 1)[-1]
            body = responder.answers.get(token, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    responder.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield responder
    finally:
        responder.gate.set()
        server.shutdown()
        server.server_close()


def test_http01_validated_for_real_with_retry_after_while_it_runs(
    tmp_path: Path, template_ca: Path
) -> None:
    ca = copy_ca(template_ca, tmp_path / "ca")
    with gated_responder() as responder:
        validator = Validator(http_port=responder.port, timeout=10)
        with acme_lab(ca, validator=validator) as lab:
            account = new_account(lab)
            order = lab.client.new_order(account, "127.0.0.1")
            authorization = order.json()["authorizations"][0]
            http01 = next(
                c
                for c in challenges_of(lab, account, authorization)["challenges"]
                if c["type"] == "http-01"
            )
            responder.answers[http01["token"]] = f"{http01['token']}.{account.key.thumbprint()}"
            answered = lab.client.as_account(account, http01["url"], {})
            assert answered.json()["status"] == "processing"
            assert answered.headers["retry-after"] == "1"
            assert f'<{authorization}>;rel="up"' in answered.links
            polled = lab.client.as_account(account, authorization)
            assert polled.json()["status"] == "pending"
            assert polled.headers["retry-after"] == "1"
            responder.gate.set()

            def valid() -> bool:
                return bool(challenges_of(lab, account, authorization)["status"] == "valid")

            assert eventually(15, valid) is not None
            done = lab.client.as_account(account, authorization)
            assert "retry-after" not in done.headers
            assert done.json()["challenges"][0]["validated"]
            finalized = lab.client.finalize(account, order, csr_for(["127.0.0.1"]))
            assert finalized.json()["status"] == "valid"


# Finalize and download (RFC 8555 §7.4, §7.4.2).


def test_finalize_with_the_orders_names_gives_a_verified_chain(lab: AcmeLab) -> None:
    account = new_account(lab, "RS256")
    order = lab.client.new_order(account, WWW, API)
    lab.client.authorize(account, order)
    # The CSR's names in another order, one of them as its CN: still the order's names.
    finalized = lab.client.finalize(account, order, subject_csr(API, [API, WWW]))
    assert finalized.status == 200 and finalized.json()["status"] == "valid"
    assert finalized.location == order.location
    download = lab.client.as_account(account, finalized.json()["certificate"])
    assert download.status == 200
    assert download.content_type == "application/pem-certificate-chain"
    leaf = verified(lab, download.body, API)
    assert san_of(leaf) == {WWW, API}
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    again = lab.client.finalize(account, order, csr_for([WWW, API]))
    refused(again, "orderNotReady", 403)  # an order is finalized once


def test_a_csr_missing_one_of_the_orders_names_is_a_bad_csr(lab: AcmeLab) -> None:
    account = new_account(lab)
    order = lab.client.new_order(account, WWW, API)
    lab.client.authorize(account, order)
    lacking = partial(lab.client.finalize, account, order, csr_for([API]))  # no WWW, no CN
    assert "missing: www.lab.test" in changes_nothing(lab, lacking, "badCSR", 400)


def test_the_issued_certificate_is_in_the_registry_with_the_accounts_contact(
    lab: AcmeLab,
) -> None:
    certificate, _ = lab.client.certificate(new_account(lab), WWW)
    record = lab.authority.find(format(certificate.serial_number, "x"))
    assert record.contact == "ops@lab.test"
    assert record.profile == "server"
    assert record.subject == f"CN={WWW}"


# Revocation (RFC 8555 §7.6).


def revoke(
    lab: AcmeLab, certificate: x509.Certificate, key: AccountKey, kid: str | None, **extra: Any
) -> Response:
    payload = {"certificate": b64(certificate.public_bytes(Encoding.DER)), **extra}
    return lab.client.post(lab.client.url("revokeCert"), payload, key, kid)


def in_crl(lab: AcmeLab, certificate: x509.Certificate) -> bool:
    crl = lab.authority.crl()
    return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None


def test_revocation_by_the_account_and_then_again(lab: AcmeLab) -> None:
    account = new_account(lab)
    certificate, _ = lab.client.certificate(account, WWW)
    intruder = new_account(lab)
    refusal = partial(revoke, lab, certificate, intruder.key, intruder.url)
    changes_nothing(lab, refusal, "unauthorized", 403)
    assert not in_crl(lab, certificate)
    done = revoke(lab, certificate, account.key, account.url, reason=4)
    assert done.status == 200 and "replay-nonce" in done.headers
    assert in_crl(lab, certificate)
    record = lab.authority.find(format(certificate.serial_number, "x"))
    assert record.revocation_reason == "superseded"
    twice = partial(revoke, lab, certificate, account.key, account.url)
    changes_nothing(lab, twice, "alreadyRevoked", 400)


def test_revocation_by_the_certificates_key(lab: AcmeLab) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    certificate, _ = lab.client.certificate(new_account(lab), WWW, key=private)
    stranger = AccountKey.generate()
    changes_nothing(lab, partial(revoke, lab, certificate, stranger, None), "unauthorized", 403)
    done = revoke(lab, certificate, AccountKey("ES256", private), None)
    assert done.status == 200
    assert in_crl(lab, certificate)


def test_a_reason_a_subscriber_may_not_give(lab: AcmeLab) -> None:
    account = new_account(lab)
    certificate, _ = lab.client.certificate(account, WWW)
    for reason in (2, 7, "1", True):  # caCompromise, unknown, not integers
        request = partial(revoke, lab, certificate, account.key, account.url, reason=reason)
        changes_nothing(lab, request, "badRevocationReason", 400)


# Renewal information (RFC 9773) and replaces.


def cert_id(certificate: x509.Certificate) -> str:
    """RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(DER serial content)."""
    aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert aki.value.key_identifier is not None
    serial = certificate.serial_number
    der_serial = serial.to_bytes(serial.bit_length() // 8 + 1, "big")  # signed: a leading 0
    return f"{b64(aki.value.key_identifier)}.{b64(der_serial)}"


def renewal_window(lab: AcmeLab, certificate: x509.Certificate) -> tuple[datetime, datetime]:
    url = f"{lab.client.url('renewalInfo')}/{cert_id(certificate)}"
    response = lab.http.request("GET", url, content_type=None)
    assert response.status == 200, response.body
    assert int(response.headers["retry-after"]) > 0
    window = response.json()["suggestedWindow"]
    return datetime.fromisoformat(window["start"]), datetime.fromisoformat(window["end"])


def test_the_renewal_window_lies_in_the_lifetime_and_opens_on_revocation(lab: AcmeLab) -> None:
    account = new_account(lab)
    certificate, _ = lab.client.certificate(account, WWW)
    start, end = renewal_window(lab, certificate)
    assert certificate.not_valid_before_utc < start < end < certificate.not_valid_after_utc
    assert revoke(lab, certificate, account.key, account.url).status == 200
    revoked_start, revoked_end = renewal_window(lab, certificate)
    assert revoked_end < start  # renew now, not late in its life
    assert revoked_start < revoked_end <= datetime.now(timezone.utc)


def test_renewal_info_of_an_unknown_certificate_is_not_found(lab: AcmeLab) -> None:
    certificate, _ = lab.client.certificate(new_account(lab), WWW)
    aki, _ = cert_id(certificate).split(".")
    never_issued = b64((12345).to_bytes(2, "big"))
    for unknown in (f"{aki}.{never_issued}", "no-dot", "a.b.c"):
        response = lab.http.request(
            "GET", f"{lab.client.url('renewalInfo')}/{unknown}", content_type=None
        )
        assert 400 <= response.status < 500 and response.problem == "malformed", response.body


def test_an_order_replaces_its_accounts_certificate_once(lab: AcmeLab) -> None:
    account = new_account(lab)
    certificate, _ = lab.client.certificate(account, WWW)
    renewal = lab.client.new_order(account, WWW, replaces=cert_id(certificate))
    assert renewal.json()["replaces"] == cert_id(certificate)
    payload = {"identifiers": [{"type": "dns", "value": WWW}], "replaces": cert_id(certificate)}
    again = partial(lab.client.as_account, account, lab.client.url("newOrder"), payload)
    changes_nothing(lab, again, "alreadyReplaced", 409)
    other = new_account(lab)
    theirs = partial(lab.client.as_account, other, lab.client.url("newOrder"), payload)
    changes_nothing(lab, theirs, "malformed", 400)
    unknown = {**payload, "replaces": cert_id(certificate).split(".")[0] + ".AQ"}
    nothing = partial(lab.client.as_account, account, lab.client.url("newOrder"), unknown)
    changes_nothing(lab, nothing, "malformed", 400)


# ACME profiles (draft-aaron-acme-profiles).


def test_the_directory_offers_the_profiles_and_an_order_picks_one(
    tmp_path: Path, template_ca: Path
) -> None:
    ca = copy_ca(template_ca, tmp_path / "ca")
    with acme_lab(ca, profiles=("server", "server-client")) as lab:
        offered = lab.client.directory["meta"]["profiles"]
        assert list(offered) == ["server", "server-client"]
        assert "90 days" in offered["server"]
        account = new_account(lab)
        default = lab.client.new_order(account, WWW)
        assert default.json()["profile"] == "server"
        order = lab.client.new_order(account, API, profile="server-client")
        assert order.json()["profile"] == "server-client"
        lab.client.authorize(account, order)
        finalized = lab.client.finalize(account, order, csr_for([API]))
        pem = lab.client.as_account(account, finalized.json()["certificate"]).body
        usages = verified(lab, pem, API).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        assert ExtendedKeyUsageOID.CLIENT_AUTH in usages.value
        payload = {"identifiers": [{"type": "dns", "value": WWW}], "profile": "code-signing"}
        unknown = partial(lab.client.as_account, account, lab.client.url("newOrder"), payload)
        assert "not offered" in changes_nothing(lab, unknown, "invalidProfile", 400)
