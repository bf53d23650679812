"""The `minica_acme` pytest fixture as a Python project meets it: an ACME server in the test
process that certbot's `acme` library (a real ACME client) gets certificates from — with
every challenge passed at once (`validate=False`), or validated for real against an http-01
answer the test serves — and a fresh pytest run that finds it through the entry point."""

from __future__ import annotations

import http.server
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest
from acme import challenges, client, errors, messages
from acme.crypto_util import make_csr
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID
from josepy import jwa, jwk

from minica.serve import AcmeEndpoints

pytest_plugins = ["pytester"]
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly")
DEADLINE = timedelta(seconds=30)  # for an order to become valid: validation is in a thread


def acme_client(acme: AcmeEndpoints, email: str) -> client.ClientV2:
    """A new ES256 account at the fixture's server, trusting only its root."""
    key = jwk.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    # verify_ssl is handed to requests as `verify`, which takes a CA file (acme types it bool)
    network = client.ClientNetwork(key, alg=jwa.ES256, verify_ssl=str(acme.ca_file))  # type: ignore[arg-type]
    directory = client.ClientV2.get_directory(acme.directory, network)
    acme_client = client.ClientV2(directory, network)
    registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
    network.account = acme_client.new_account(registration)
    return acme_client


def order(
    acme_client: client.ClientV2, *, dns: list[str], ips: list[str]
) -> messages.OrderResource:
    """A new order for a fresh key's CSR."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    csr = make_csr(key_pem, dns, ipaddrs=[ipaddress.ip_address(ip) for ip in ips])
    return acme_client.new_order(csr)


def http_01(resource: messages.OrderResource) -> list[messages.ChallengeBody]:
    return [
        challenge
        for authorization in resource.authorizations
        for challenge in authorization.body.challenges
        if isinstance(challenge.chall, challenges.HTTP01)
    ]


def leaf_of(chain_pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificates(chain_pem.encode())[0]


@contextmanager
def http_01_answers(port: int, answers: dict[str, str]) -> Iterator[None]:
    """Serve /.well-known/acme-challenge/TOKEN → key authorization on 127.0.0.1:PORT."""

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path.rpartition("/")[2], "").encode()
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def deadline() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None) + DEADLINE


@pytest.mark.minica_acme(validate=False)
def test_without_validation_every_challenge_passes(minica_acme: AcmeEndpoints) -> None:
    acme = acme_client(minica_acme, "dev@lab.test")
    resource = order(acme, dns=["app.lab.test", "api.lab.test"], ips=[])
    for challenge in http_01(resource):
        acme.answer_challenge(challenge, challenge.chall.response(acme.net.key))
    finished = acme.poll_and_finalize(resource, deadline())
    leaf = leaf_of(finished.fullchain_pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == ["api.lab.test", "app.lab.test"]
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    root = x509.load_pem_x509_certificate(minica_acme.ca_file.read_bytes())
    leaf.verify_directly_issued_by(root)


def test_with_validation_an_http_01_answer_is_checked(minica_acme: AcmeEndpoints) -> None:
    acme = acme_client(minica_acme, "dev@lab.test")
    resource = order(acme, dns=[], ips=["127.0.0.1"])
    (challenge,) = http_01(resource)
    token = challenge.chall.encode("token")
    answer = challenge.chall.validation(acme.net.key)
    with http_01_answers(minica_acme.http_01_port, {token: answer}):
        acme.answer_challenge(challenge, challenge.chall.response(acme.net.key))
        finished = acme.poll_and_finalize(resource, deadline())
    names = leaf_of(finished.fullchain_pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert names.value.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_with_validation_a_missing_answer_fails_the_order(minica_acme: AcmeEndpoints) -> None:
    acme = acme_client(minica_acme, "dev@lab.test")
    resource = order(acme, dns=[], ips=["127.0.0.1"])
    (challenge,) = http_01(resource)
    with http_01_answers(minica_acme.http_01_port, {}):
        acme.answer_challenge(challenge, challenge.chall.response(acme.net.key))
        with pytest.raises(errors.ValidationError) as failed:
            acme.poll_and_finalize(resource, deadline())
    (authorization,) = failed.value.failed_authzrs
    (checked,) = [c for c in authorization.body.challenges if c.error is not None]
    assert checked.error is not None
    assert checked.error.typ == "urn:ietf:params:acme:error:incorrectResponse"
    detail = checked.error.detail or ""
    assert f"127.0.0.1:{minica_acme.http_01_port}" in detail
    assert "404" in detail


USER_TESTS = """
import pytest
from acme import client, messages
import josepy
from cryptography.hazmat.primitives.asymmetric import ec


@pytest.mark.minica_acme(validate=False, profiles=("server", "client"))
def test_directory_offers_the_profiles(minica_acme):
    key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    network = client.ClientNetwork(key, alg=josepy.ES256, verify_ssl=str(minica_acme.ca_file))
    directory = client.ClientV2.get_directory(minica_acme.directory, network)
    assert sorted(directory.meta.profiles) == ["client", "server"]
"""


def test_a_fresh_pytest_finds_the_fixture_and_its_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("--strict-markers", *INNER)
    result.assert_outcomes(passed=1)
