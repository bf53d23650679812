"""External account binding (minica/acme/eab.py): keys made, listed and removed in both
registries, and bindings built by certbot's own ``acme`` package (and josepy, for the
ones a client should never send) checked as RFC 8555 §7.3.4 says."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from acme import jws as acme_jws
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwa import HS256, RS256
from josepy.jwk import JWK, JWKEC, JWKRSA, JWKOct
from test_registry import IMPLEMENTATIONS, in_threads

from minica.acme import eab
from minica.acme.problems import Problem
from minica.errors import InputError, NotFoundError
from minica.registry import AcmeState

NOW = datetime(2030, 5, 17, 12, 0, tzinfo=timezone.utc)
URL = "https://ca.lab.test:8443/acme/new-account"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def state(request: pytest.FixtureRequest, tmp_path: Path) -> AcmeState:
    return IMPLEMENTATIONS[request.param](tmp_path).acme


def account_key() -> JWK:
    return JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def binding(
    account: JWK, kid: str, hmac_key: str, *, url: str = URL, alg: str = "HS256"
) -> dict[str, Any]:
    """The externalAccountBinding certbot sends for ``account``."""
    directory = messages.Directory({"newAccount": url})
    made = messages.ExternalAccountBinding.from_data(
        account.public_key(), kid, hmac_key, directory, hmac_alg=alg
    )
    parsed: dict[str, Any] = json.loads(json.dumps(made))  # as the server reads it
    return parsed


def refused(kind: str, call: Any, *fragments: str) -> Problem:
    """The Problem ``call()`` raised: of type ``kind``, its detail naming every fragment."""
    with pytest.raises(Problem) as raised:
        call()
    problem = raised.value
    assert problem.type == kind, problem
    assert problem.document()["status"] == {"unauthorized": 403, "malformed": 400}[kind]
    for fragment in fragments:
        assert fragment in str(problem), (fragment, str(problem))
    return problem


def test_a_key_is_shown_once_and_listed_without_its_secret(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, "build farm", NOW)
    other, _ = eab.add(state, None, NOW)
    assert kid != other and kid.startswith("kid-")
    assert len(base64.urlsafe_b64decode(hmac_key + "=")) == 32  # 43 characters, unpadded
    listed = eab.list(state, NOW)
    assert [key.to_json() for key in listed] == [
        {"kid": kid, "label": "build farm", "created": "2030-05-17T12:00:00Z", "account": None},
        {"kid": other, "label": None, "created": "2030-05-17T12:00:00Z", "account": None},
    ]
    assert hmac_key not in repr(listed)


def test_a_label_is_one_line(state: AcmeState) -> None:
    with pytest.raises(InputError, match="not one line of printable text"):
        eab.add(state, "two\nlines", NOW)
    assert eab.list(state, NOW) == []


def test_a_removed_key_is_gone_and_an_unknown_one_not_found(state: AcmeState) -> None:
    kid, _ = eab.add(state, None, NOW)
    eab.remove(state, kid)
    assert eab.list(state, NOW) == []
    with pytest.raises(NotFoundError, match=f"no external account key {kid}") as error:
        eab.remove(state, kid)
    assert error.value.code == "unknown-eab"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_a_binding_binds_its_key_to_the_account(state: AcmeState, alg: str) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    made = binding(account, kid, hmac_key, alg=alg)
    assert eab.bind(state, made, account.public_key(), URL, "acct-1", NOW) == kid
    assert [key.account for key in eab.list(state, NOW)] == ["acct-1"]
    # The same account again (a client retrying) is no change.
    assert eab.bind(state, made, account.public_key(), URL, "acct-1", NOW) == kid


def test_a_key_binds_one_account_only(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    first, second = account_key(), account_key()
    eab.bind(state, binding(first, kid, hmac_key), first.public_key(), URL, "acct-1", NOW)
    again = binding(second, kid, hmac_key)
    problem = refused(
        "unauthorized",
        lambda: eab.bind(state, again, second.public_key(), URL, "acct-2", NOW),
        f"external account key {kid} is bound to another account already",
    )
    assert problem.hint == "ask the CA's operator for a new external account key"
    assert [key.account for key in eab.list(state, NOW)] == ["acct-1"]


def test_of_two_accounts_binding_one_key_at_once_one_wins(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    accounts = [account_key() for _ in range(8)]
    bindings = iter([(n, a, binding(a, kid, hmac_key)) for n, a in enumerate(accounts)])

    def bind_one() -> object:
        n, account, made = next(bindings)
        return eab.bind(state, made, account.public_key(), URL, f"acct-{n}", NOW)

    results = in_threads(8, bind_one)
    assert results.count(kid) == 1
    assert all(isinstance(r, Problem) and r.type == "unauthorized" for r in results if r != kid)
    (bound,) = eab.list(state, NOW)
    assert bound.account is not None


def test_an_unknown_key_or_a_wrong_hmac_key_is_unauthorized(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    wrong = base64.urlsafe_b64encode(b"\x01" * 32).decode()
    for made, fragment in [
        (binding(account, "kid-nobody", hmac_key), "no external account key kid-nobody"),
        (binding(account, kid, wrong), f"does not verify with external account key {kid}"),
    ]:
        refused(
            "unauthorized",
            lambda made=made: eab.bind(state, made, account.public_key(), URL, "a1", NOW),
            fragment,
        )
    assert [key.account for key in eab.list(state, NOW)] == [None]


def test_a_binding_for_another_key_or_url_is_malformed(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account, stranger = account_key(), account_key()
    refused(
        "malformed",
        lambda: eab.bind(
            state, binding(stranger, kid, hmac_key), account.public_key(), URL, "a1", NOW
        ),
        "payload must be the account's public key",
    )
    elsewhere = binding(account, kid, hmac_key, url="https://evil.test/new-account")
    refused(
        "malformed",
        lambda: eab.bind(state, elsewhere, account.public_key(), URL, "a1", NOW),
        f"must carry the newAccount URL {URL}",
        "evil.test",
    )
    assert [key.account for key in eab.list(state, NOW)] == [None]


def signed(payload: bytes, key: JWK, alg: Any, *, nonce: bytes | None = None) -> Any:
    made = acme_jws.JWS.sign(payload, key, alg, nonce, URL, "kid-x")
    return json.loads(made.json_dumps())


def test_what_rfc_8555_does_not_allow_is_malformed(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    good = binding(account, kid, hmac_key)
    jwk = json.dumps(account.public_key().to_partial_json()).encode()
    hmac = JWKOct(key=base64.urlsafe_b64decode(hmac_key + "="))
    rsa_key = JWKRSA(key=rsa.generate_private_key(65537, 2048))
    cases: list[tuple[object, str]] = [
        ("a string", "must be a flattened JWS"),
        ({**good, "header": {"kid": kid}}, "must be a flattened JWS"),
        ({**good, "payload": 7}, "are strings"),
        ({**good, "protected": "%%%"}, "protected header that is not base64url-encoded JSON"),
        ({**good, "protected": b64encode(b"[1]").decode()}, "not a JSON object"),
        ({**good, "payload": b64encode(b"{}").decode()}, "is not a JWS over a JWK"),
        (signed(jwk, rsa_key, RS256), "is signed with 'RS256'; it must be signed with HS"),
        (signed(jwk, hmac, HS256, nonce=b"once"), "must not carry a nonce"),
    ]
    for made, fragment in cases:
        refused(
            "malformed",
            lambda made=made: eab.bind(state, made, account.public_key(), URL, "a1", NOW),
            fragment,
        )
    assert [key.account for key in eab.list(state, NOW)] == [None]
