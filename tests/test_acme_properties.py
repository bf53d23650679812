"""Whatever arrives, the ACME server answers 4xx problem documents, never a 5xx: random
bytes and JSON as request bodies, JWS of the right shape with wrong contents (reaching the
nonce, key and signature checks), jws.parse and verify called directly, and requests
signed for real by an account with random payloads (reaching every handler).

These found the bugs the "Fix:" commits of jws.py repair: josepy raised AttributeError
and KeyError for header fields of the wrong JSON type, which the server answered with 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from acme_jws_client import BASE, PROBLEM, AccountKey, AcmeLab, Response, acme_lab, b64, flattened
from conftest import copy_ca
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minica.acme import jws
from minica.acme.problems import Problem

PROPERTY = settings(
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def shared_lab(tmp_path_factory: pytest.TempPathFactory, template_ca: Path) -> Iterator[AcmeLab]:
    """One lab for every example (hypothesis runs them all in one fixture)."""
    with acme_lab(copy_ca(template_ca, tmp_path_factory.mktemp("fuzz") / "ca")) as lab:
        yield lab


SIGNED_PATHS = [
    "new-account",
    "account/x",
    "account/x/orders",
    "key-change",
    "new-order",
    "order/x",
    "order/x/finalize",
    "authz/x",
    "challenge/x/http-01",
    "certificate/x",
    "revoke-cert",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD = st.text(max_size=60) | st.binary(max_size=60).map(b64) | JSON
JWK_SHAPES = st.fixed_dictionaries(
    {"kty": st.sampled_from(["EC", "RSA", "OKP", "oct", ""]) | JSON},
    optional={name: FIELD for name in ("crv", "x", "y", "n", "e", "k", "d")},
)
HEADERS = st.fixed_dictionaries(
    {"alg": st.sampled_from(["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"]) | JSON},
    optional={"nonce": FIELD, "url": FIELD, "kid": FIELD, "jwk": JWK_SHAPES | JSON},
)


def jws_of(header: dict[str, Any], payload: bytes, signature: bytes) -> bytes:
    return flattened(header, payload, lambda _: signature)


def assert_a_problem_document(response: Response) -> None:
    assert 400 <= response.status < 500, (response.status, response.body)
    assert response.content_type == PROBLEM, response.body
    assert response.problem


@PROPERTY
@given(
    path=st.sampled_from(SIGNED_PATHS),
    body=st.binary(max_size=300) | JSON.map(lambda j: json.dumps(j).encode()),
)
def test_random_bodies_get_problem_documents(shared_lab: AcmeLab, path: str, body: bytes) -> None:
    assert_a_problem_document(shared_lab.http.request("POST", f"{BASE}/acme/{path}", body))


@PROPERTY
@given(
    path=st.sampled_from(SIGNED_PATHS),
    header=HEADERS,
    payload=st.binary(max_size=80) | JSON.map(lambda j: json.dumps(j).encode()),
    signature=st.binary(max_size=80),
    fresh_nonce=st.booleans(),
)
def test_random_jws_get_problem_documents(
    shared_lab: AcmeLab,
    path: str,
    header: dict[str, Any],
    payload: bytes,
    signature: bytes,
    fresh_nonce: bool,
) -> None:
    """Headers of the right shape with wrong contents, the url and a nonce right when
    drawn so, reach the key and signature checks: still a 4xx problem."""
    url = f"{BASE}/acme/{path}"
    if fresh_nonce:
        header = {**header, "url": url, "nonce": shared_lab.client.nonce()}
    response = shared_lab.http.request("POST", url, jws_of(header, payload, signature))
    assert_a_problem_document(response)


@PROPERTY
@given(header=HEADERS, payload=st.binary(max_size=80), signature=st.binary(max_size=80))
def test_parse_and_verify_raise_only_problems(
    header: dict[str, Any], payload: bytes, signature: bytes
) -> None:
    body = jws_of(header, payload, signature)
    for inner in (False, True):
        try:
            signed = jws.parse(body, inner=inner)
            signed.verify(signed.jwk or jws.key_of(header.get("jwk")))
        except Problem as problem:
            assert 400 <= problem.status < 500


# Signed for real: random payloads reach the handlers.

FIELDS = (
    "identifiers",
    "csr",
    "certificate",
    "reason",
    "contact",
    "status",
    "onlyReturnExisting",
    "externalAccountBinding",
    "profile",
    "replaces",
    "notBefore",
    "account",
    "oldKey",
)
IDENTIFIER = st.fixed_dictionaries(
    {"type": st.sampled_from(["dns", "ip", "email"]) | JSON, "value": st.text(max_size=30) | JSON}
)
VALUES = FIELD | st.lists(IDENTIFIER | JSON, max_size=3) | st.sampled_from(["deactivated", "valid"])
PAYLOADS = st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4) | JSON
RESOURCES = (
    "newAccount",
    "account",
    "orders",
    "keyChange",
    "newOrder",
    "order",
    "finalize",
    "authz",
    "challenge",
    "revokeCert",
)


def resource_urls(
    lab: AcmeLab, account_url: str, order: dict[str, Any], location: str
) -> dict[str, str]:
    authz = order["authorizations"][0]
    authz_id = authz.rsplit("/", 1)[1]
    return {
        "newAccount": lab.client.url("newAccount"),
        "account": account_url,
        "orders": f"{account_url}/orders",
        "keyChange": lab.client.url("keyChange"),
        "newOrder": lab.client.url("newOrder"),
        "order": location,
        "finalize": order["finalize"],
        "authz": authz,
        "challenge": f"{BASE}/acme/challenge/{authz_id}/http-01",
        "revokeCert": lab.client.url("revokeCert"),
    }


@PROPERTY
@given(resource=st.sampled_from(RESOURCES), payload=PAYLOADS)
def test_signed_requests_with_random_payloads_never_get_a_5xx(
    shared_lab: AcmeLab, resource: str, payload: Any
) -> None:
    client = shared_lab.client
    account = client.new_account(AccountKey.generate())  # fresh: a payload may deactivate it
    order = client.new_order(account, "www.lab.test")
    urls = resource_urls(shared_lab, account.url, order.json(), order.location)
    kid = None if resource == "newAccount" else account.url
    body = json.dumps(payload).encode()
    response = client.post(urls[resource], body, account.key, kid)
    assert response.status < 500, response.body
    if response.status >= 400:
        assert_a_problem_document(response)
