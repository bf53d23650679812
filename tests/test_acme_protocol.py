"""The ACME server refuses what RFC 8555 says a client must not send, each refusal a 4xx
problem document of the RFC's type (with a fresh Replay-Nonce, so that the client can
try again) and each leaving accounts, orders, authorizations and the registry as they
were.

Requests are signed by the tests' own JWS client (acme_jws_client.py) and carried to the
ACME routes in process; challenges pass at once (validator None): validation is tested
in test_acme_validation.py. The property tests (never a 5xx) are test_acme_properties.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from acme_jws_client import (
    BASE,
    Account,
    AccountKey,
    AcmeLab,
    Response,
    acme_lab,
    b64,
    changes_nothing,
    corrupted,
    csr_for,
    mac_signer,
)
from conftest import copy_ca

from minica.serve.acme_routes import MAX_BODY

WWW = "www.lab.test"


@pytest.fixture
def lab(tmp_path: Path, template_ca: Path) -> Iterator[AcmeLab]:
    with acme_lab(copy_ca(template_ca, tmp_path / "ca")) as lab:
        yield lab


def new_account_request(lab: AcmeLab, key: AccountKey, **post: Any) -> Callable[[], Response]:
    return lambda: lab.client.post(lab.client.url("newAccount"), {}, key, **post)


def order_request(lab: AcmeLab, account: Account, **post: Any) -> Callable[[], Response]:
    payload = {"identifiers": [{"type": "dns", "value": WWW}]}
    return lambda: lab.client.post(
        lab.client.url("newOrder"), payload, account.key, account.url, **post
    )


# The JWS and its header (RFC 8555 §6.2, §6.4, §6.5).


def test_a_used_nonce_is_refused_and_the_fresh_one_works(lab: AcmeLab) -> None:
    client = lab.client
    used = client.nonce()
    client.post(client.url("newAccount"), {}, AccountKey.generate(), header={"nonce": used})
    key = AccountKey.generate()
    request = new_account_request(lab, key, header={"nonce": used})
    changes_nothing(lab, request, "badNonce", 400)
    # The refusal's Replay-Nonce is the one to retry with (client.nonce() takes it).
    assert client.post(client.url("newAccount"), {}, key).status == 201


@pytest.mark.parametrize("nonce", [b64(b"never given"), None])
def test_a_nonce_never_given_or_missing_is_refused(lab: AcmeLab, nonce: str | None) -> None:
    request = new_account_request(lab, AccountKey.generate(), header={"nonce": nonce})
    changes_nothing(lab, request, "badNonce", 400)


def test_a_url_other_than_the_requests_is_unauthorized(lab: AcmeLab) -> None:
    wrong = new_account_request(
        lab, AccountKey.generate(), header={"url": lab.client.url("newOrder")}
    )
    detail = changes_nothing(lab, wrong, "unauthorized", 403)
    assert "is not the request's URL" in detail


def test_alg_none_and_a_mac_are_bad_signature_algorithms(lab: AcmeLab) -> None:
    key = AccountKey.generate()
    unsigned = new_account_request(lab, key, header={"alg": "none"}, sign=lambda _: b"")
    assert "'none' is not accepted" in changes_nothing(lab, unsigned, "badSignatureAlgorithm", 400)
    mac = new_account_request(lab, key, header={"alg": "HS256"}, sign=mac_signer(b"k" * 32))
    changes_nothing(lab, mac, "badSignatureAlgorithm", 400)


@pytest.mark.parametrize(
    "key_alg, claimed",
    [("RS256", "ES256"), ("EdDSA", "ES256"), ("ES256", "RS256"), ("ES256", "EdDSA")],
)
def test_an_algorithm_not_of_the_keys_kind_is_refused(
    lab: AcmeLab, key_alg: str, claimed: str
) -> None:
    """Found by these tests: an RSA or Ed25519 key under ES256 was a 500 (josepy's
    AttributeError), for a new account's jwk and for an account's kid alike."""
    key = AccountKey.generate(key_alg)
    header = {"alg": claimed}
    changes_nothing(lab, new_account_request(lab, key, header=header), "badSignatureAlgorithm", 400)
    account = lab.client.new_account(key)
    changes_nothing(lab, order_request(lab, account, header=header), "badSignatureAlgorithm", 400)


def test_a_corrupted_signature_is_malformed(lab: AcmeLab) -> None:
    """RFC 8555 §6.2 leaves the type open; minica (as Boulder and Pebble) says malformed."""
    key = AccountKey.generate("RS256")
    bad = new_account_request(lab, key, sign=corrupted(key.sign))
    assert "does not verify" in changes_nothing(lab, bad, "malformed", 400)
    account = lab.client.new_account(key)
    changes_nothing(lab, order_request(lab, account, sign=corrupted(key.sign)), "malformed", 400)


def test_a_signature_by_another_key_than_the_accounts_is_malformed(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    other = AccountKey.generate()
    changes_nothing(lab, order_request(lab, account, sign=other.sign), "malformed", 400)


@pytest.mark.parametrize(
    "kid", [f"{BASE}/acme/account/nobody", "https://elsewhere.test/acme/account/x", "nobody"]
)
def test_an_unknown_kid_is_an_account_that_does_not_exist(lab: AcmeLab, kid: str) -> None:
    stranger = Account(AccountKey.generate(), kid)
    changes_nothing(lab, order_request(lab, stranger), "accountDoesNotExist", 400)


def test_jwk_and_kid_together_are_malformed(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    both = order_request(lab, account, header={"jwk": account.key.jwk()})
    assert "exactly one of jwk and kid" in changes_nothing(lab, both, "malformed", 400)


def test_a_kid_where_the_key_is_wanted_and_the_reverse_are_malformed(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    by_kid = partial(lab.client.post, lab.client.url("newAccount"), {}, account.key, account.url)
    changes_nothing(lab, by_kid, "malformed", 400)
    by_key = partial(lab.client.post, lab.client.url("newOrder"), {}, account.key)
    changes_nothing(lab, by_key, "malformed", 400)


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[]", b'{"protected": "", "payload": ""}', b"{" * 10],
)
def test_a_body_that_is_not_a_flattened_jws_is_malformed(lab: AcmeLab, body: bytes) -> None:
    key = AccountKey.generate()
    changes_nothing(lab, new_account_request(lab, key, body=body), "malformed", 400)


def test_a_payload_that_is_not_a_json_object_is_malformed(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    for payload in (b"{", b"[1]", b"\x80"):
        request = partial(lab.client.as_account, account, lab.client.url("newOrder"), payload)
        changes_nothing(lab, request, "malformed", 400)


def test_a_body_over_the_limit_is_refused(lab: AcmeLab) -> None:
    key = AccountKey.generate()
    huge = new_account_request(lab, key, body=b" " * (MAX_BODY + 1))
    changes_nothing(lab, huge, "malformed", 413)


def test_a_request_that_is_not_jose_json_is_refused(lab: AcmeLab) -> None:
    key = AccountKey.generate()
    plain = new_account_request(lab, key, content_type="application/json")
    changes_nothing(lab, plain, "malformed", 415)


# Resources of other accounts, and resources that are not there.


def test_another_accounts_resources_are_unauthorized(lab: AcmeLab) -> None:
    client = lab.client
    owner = client.new_account(AccountKey.generate())
    intruder = client.new_account(AccountKey.generate("EdDSA"))
    order = client.new_order(owner, WWW)
    authz = order.json()["authorizations"][0]
    challenge = client.as_account(owner, authz).json()["challenges"][0]["url"]
    csr = {"csr": b64(csr_for([WWW]))}
    for url, payload in [
        (order.location, None),
        (authz, None),
        (challenge, {}),
        (order.json()["finalize"], csr),
        (owner.url, {"contact": ["mailto:intruder@lab.test"]}),
        (owner.url + "/orders", None),
    ]:
        request = partial(client.as_account, intruder, url, payload)
        changes_nothing(lab, request, "unauthorized", 403)
    client.authorize(owner, order)
    finalized = client.finalize(owner, order, csr_for([WWW]))
    download = finalized.json()["certificate"]
    changes_nothing(lab, partial(client.as_account, intruder, download), "unauthorized", 404)


@pytest.mark.parametrize(
    "resource, kind",
    [
        ("order/nothing", "malformed"),
        ("order/nothing/finalize", "malformed"),
        ("authz/nothing", "malformed"),
        ("challenge/nothing/http-01", "malformed"),
        ("certificate/abc", "unauthorized"),  # not this account's, whether it exists or not
    ],
)
def test_an_unknown_resource_is_not_found(lab: AcmeLab, resource: str, kind: str) -> None:
    account = lab.client.new_account(AccountKey.generate())
    payload = {"csr": b64(csr_for([WWW]))} if resource.endswith("finalize") else None
    request = partial(lab.client.as_account, account, f"{BASE}/acme/{resource}", payload)
    changes_nothing(lab, request, kind, 404)


def test_an_unknown_path_is_not_found(lab: AcmeLab) -> None:
    assert lab.http.request("POST", f"{BASE}/acme/no-such-thing").status == 404
    assert lab.http.request("GET", f"{BASE}/acme/new-account", content_type=None).status == 405


def test_a_challenge_the_authorization_does_not_offer_is_not_found(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    order = lab.client.new_order(account, "10.1.2.3")  # an address: no dns-01 (RFC 8738 §7)
    authz = order.json()["authorizations"][0].rsplit("/", 1)[1]
    url = f"{BASE}/acme/challenge/{authz}/dns-01"
    changes_nothing(lab, partial(lab.client.as_account, account, url, {}), "malformed", 404)


# Finalize (RFC 8555 §7.4).


def ready_order(lab: AcmeLab, *names: str) -> tuple[Account, Response]:
    account = lab.client.new_account(AccountKey.generate())
    order = lab.client.new_order(account, *names)
    lab.client.authorize(account, order)
    return account, order


def test_finalize_before_the_order_is_ready(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    order = lab.client.new_order(account, WWW)
    request = partial(lab.client.finalize, account, order, csr_for([WWW]))
    assert "is pending, not ready" in changes_nothing(lab, request, "orderNotReady", 403)


@pytest.mark.parametrize(
    "names, said",
    [
        ([WWW, "extra.lab.test"], "not in the order: extra.lab.test"),
        (["other.lab.test"], "not in the order: other.lab.test"),
        ([WWW, "10.9.9.9"], "not in the order: 10.9.9.9"),
    ],
)
def test_a_csr_naming_other_names_is_a_bad_csr(lab: AcmeLab, names: list[str], said: str) -> None:
    account, order = ready_order(lab, WWW)
    request = partial(lab.client.finalize, account, order, csr_for(names))
    assert said in changes_nothing(lab, request, "badCSR", 400)
    assert lab.client.as_account(account, order.location).json()["status"] == "ready"


def test_a_csr_with_the_account_key_is_a_bad_csr(lab: AcmeLab) -> None:
    account, order = ready_order(lab, WWW)
    request = partial(lab.client.finalize, account, order, csr_for([WWW], account.key.private))
    assert "is the account key" in changes_nothing(lab, request, "badCSR", 400)


@pytest.mark.parametrize("csr", ["", "!!", b64(b"not DER"), 42])
def test_a_csr_that_cannot_be_read_is_refused(lab: AcmeLab, csr: object) -> None:
    account, order = ready_order(lab, WWW)
    request = partial(lab.client.as_account, account, order.json()["finalize"], {"csr": csr})
    response = request()
    assert response.problem in ("badCSR", "malformed"), response.body
    changes_nothing(lab, request, response.problem or "", 400)


@pytest.mark.parametrize(
    "header",
    [
        {"nonce": 12},
        {"url": 7},
        {"kid": ["x"]},
        {"jwk": "key"},
        {"jwk": {"kty": "EC"}},
        {"jwk": {"kty": "RSA", "n": None, "e": "AQAB"}},
        {"jwk": {"kty": "oct"}},
    ],
)
def test_header_fields_of_the_wrong_shape_are_malformed(
    lab: AcmeLab, header: dict[str, Any]
) -> None:
    """Found by the property tests below: josepy raised AttributeError or KeyError for
    these, which the server answered with a 500."""
    key = AccountKey.generate()
    changes_nothing(lab, new_account_request(lab, key, header=header), "malformed", 400)


def test_new_nonce_and_the_index_link(lab: AcmeLab) -> None:
    """RFC 8555 §7.2: HEAD 200, GET 204, never cached, a new nonce each time; §7.1: every
    response links to the directory."""
    url = lab.client.url("newNonce")
    head = lab.http.request("HEAD", url, content_type=None)
    get = lab.http.request("GET", url, content_type=None)
    assert (head.status, get.status) == (200, 204)
    assert head.headers["cache-control"] == get.headers["cache-control"] == "no-store"
    assert head.headers["replay-nonce"] != get.headers["replay-nonce"]
    index = f'<{BASE}/acme/directory>;rel="index"'
    refusal = lab.client.post(url.replace("new-nonce", "new-order"), {}, AccountKey.generate())
    assert index in head.links and index in refusal.links
