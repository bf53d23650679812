"""ACME accounts in process (RFC 8555 §7.3): made with each kind of key clients sign
with (ES256, ES384, RS256, EdDSA), found again by key, contacts changed and refused,
deactivated, rolled over to a new key (RFC 8555 §7.3.5), and bound to an external account
where the server requires one (§7.3.4). Every refusal is checked to change nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from acme_jws_client import (
    Account,
    AccountKey,
    AcmeLab,
    Response,
    acme_lab,
    changes_nothing,
    flattened,
)
from conftest import copy_ca, listing
from josepy.jwk import JWKEC
from test_acme_eab import binding

from minica.acme import eab

WWW = "www.lab.test"
ALGORITHMS = ["ES256", "ES384", "RS256", "EdDSA"]


@pytest.fixture
def lab(tmp_path: Path, template_ca: Path) -> Iterator[AcmeLab]:
    with acme_lab(copy_ca(template_ca, tmp_path / "ca")) as lab:
        yield lab


def new_account(lab: AcmeLab, key: AccountKey, **payload: Any) -> Response:
    return lab.client.post(lab.client.url("newAccount"), payload, key)


def order(lab: AcmeLab, account: Account) -> Response:
    payload = {"identifiers": [{"type": "dns", "value": WWW}]}
    return lab.client.as_account(account, lab.client.url("newOrder"), payload)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_an_account_of_each_key_type_gets_a_certificate(lab: AcmeLab, alg: str) -> None:
    key = AccountKey.generate(alg)
    made = new_account(lab, key, contact=[f"mailto:{alg.lower()}@lab.test"])
    assert made.status == 201
    assert made.json()["status"] == "valid"
    assert made.json()["key"] == key.jwk()
    account = Account(key, made.location)
    certificate, finalized = lab.client.certificate(account, WWW)
    orders = lab.client.as_account(account, made.json()["orders"]).json()["orders"]
    assert orders == [finalized.location]
    # The same key again is the same account (RFC 8555 §7.3.1): 200 and its Location.
    again = new_account(lab, key)
    assert (again.status, again.location) == (200, made.location)
    rows = listing(lab.ca, "--json")
    serial = format(certificate.serial_number, "x")
    assert [row["contact"] for row in rows if row["serial"] == serial] == [
        f"{alg.lower()}@lab.test"
    ]


def test_only_return_existing(lab: AcmeLab) -> None:
    key = AccountKey.generate()
    unknown = partial(new_account, lab, key, onlyReturnExisting=True)
    changes_nothing(lab, unknown, "accountDoesNotExist", 400)
    made = new_account(lab, key)
    before = lab.state()
    found = new_account(lab, key, onlyReturnExisting=True)
    assert (found.status, found.location) == (200, made.location)
    assert lab.state() == before


def test_the_contact_is_changed_and_read_back(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate(), contact=["mailto:a@lab.test"])
    changed = lab.client.as_account(account, account.url, {"contact": ["mailto:b@lab.test"]})
    assert changed.status == 200 and changed.json()["contact"] == ["mailto:b@lab.test"]
    read = lab.client.as_account(account, account.url)  # POST-as-GET
    assert read.json()["contact"] == ["mailto:b@lab.test"]
    cleared = lab.client.as_account(account, account.url, {"contact": []})
    assert cleared.json()["contact"] == []


@pytest.mark.parametrize(
    "contact, kind",
    [
        (["mailto:not an address"], "invalidContact"),
        (["mailto:a@lab.test,b@lab.test"], "invalidContact"),
        (["mailto:a@lab.test?subject=hi"], "invalidContact"),
        (["tel:+15555550100"], "unsupportedContact"),
        ("mailto:a@lab.test", "malformed"),
        ([f"mailto:u{n}@lab.test" for n in range(11)], "malformed"),
    ],
)
def test_a_bad_contact_is_refused_on_creation_and_on_update(
    lab: AcmeLab, contact: object, kind: str
) -> None:
    changes_nothing(
        lab, partial(new_account, lab, AccountKey.generate(), contact=contact), kind, 400
    )
    account = lab.client.new_account(AccountKey.generate(), contact=["mailto:a@lab.test"])
    update = partial(lab.client.as_account, account, account.url, {"contact": contact})
    changes_nothing(lab, update, kind, 400)


def test_a_deactivated_account_can_do_nothing_more(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    revived = partial(lab.client.as_account, account, account.url, {"status": "valid"})
    changes_nothing(lab, revived, "malformed", 400)
    done = lab.client.as_account(account, account.url, {"status": "deactivated"})
    assert done.status == 200 and done.json()["status"] == "deactivated"
    for request in (
        partial(order, lab, account),
        partial(lab.client.as_account, account, account.url),
        partial(lab.client.as_account, account, account.url, {"status": "deactivated"}),
    ):
        assert "is deactivated" in changes_nothing(lab, request, "unauthorized", 403)
    # Nor is its key an account again (RFC 8555 §7.3.6): newAccount with it is refused.
    again = partial(new_account, lab, account.key)
    assert "is deactivated" in changes_nothing(lab, again, "unauthorized", 403)


# Key rollover (RFC 8555 §7.3.5).


def key_change(
    lab: AcmeLab,
    account: Account,
    new: AccountKey,
    *,
    inner_url: str | None = None,
    old_key: object = None,
    named: str | None = None,
    signer: AccountKey | None = None,
    inner_nonce: bool = False,
) -> Response:
    """POST keyChange as the account, the inner JWS signed by ``new`` (or ``signer``)
    naming ``named`` (the account) and ``old_key`` (the account's key); any of them
    wrong when given, and with a nonce of its own when ``inner_nonce``."""
    url = lab.client.url("keyChange")
    header = {"alg": new.alg, "jwk": new.jwk(), "url": inner_url or url}
    if inner_nonce:
        header["nonce"] = lab.client.nonce()
    payload = {"account": named or account.url, "oldKey": old_key or account.key.jwk()}
    inner = flattened(header, json.dumps(payload).encode(), (signer or new).sign)
    return lab.client.post(url, inner, account.key, account.url)


@pytest.mark.parametrize(
    "old, new, old_refused",
    [
        ("ES256", "ES256", "malformed"),  # the same kind of key: the signature fails
        ("ES256", "EdDSA", "badSignatureAlgorithm"),  # another kind: the algorithm does
        ("RS256", "ES384", "badSignatureAlgorithm"),
    ],
)
def test_after_a_key_change_the_new_key_works_and_the_old_one_not(
    lab: AcmeLab, old: str, new: str, old_refused: str
) -> None:
    account = lab.client.new_account(AccountKey.generate(old))
    new_key = AccountKey.generate(new)
    changed = key_change(lab, account, new_key)
    assert changed.status == 200 and changed.json()["key"] == new_key.jwk()
    assert changed.location == account.url
    changes_nothing(lab, partial(order, lab, account), old_refused, 400)
    unknown = partial(new_account, lab, account.key, onlyReturnExisting=True)
    changes_nothing(lab, unknown, "accountDoesNotExist", 400)
    assert order(lab, Account(new_key, account.url)).status == 201
    assert new_account(lab, new_key, onlyReturnExisting=True).location == account.url


def test_a_key_change_to_a_key_in_use_is_a_conflict(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    other = lab.client.new_account(AccountKey.generate("EdDSA"))
    taken = partial(key_change, lab, account, other.key)
    assert other.url in changes_nothing(lab, taken, "malformed", 409)
    assert taken().location == other.url  # RFC 8555 §7.3.5: the account that has the key


def test_a_key_change_that_does_not_hold_together_is_malformed(lab: AcmeLab) -> None:
    account = lab.client.new_account(AccountKey.generate())
    other = lab.client.new_account(AccountKey.generate())
    new = AccountKey.generate()
    for wrong in (
        {"inner_url": lab.client.url("newOrder")},
        {"old_key": AccountKey.generate().jwk()},
        {"old_key": {"kty": "EC", "crv": "P-256", "x": None, "y": None}},
        {"named": other.url},
        {"signer": AccountKey.generate()},
        {"inner_nonce": True},  # RFC 8555 §7.3.5: the inner JWS omits the nonce
    ):
        request = partial(key_change, lab, account, new, **wrong)
        changes_nothing(lab, request, "malformed", 400)
    not_a_jws = partial(lab.client.post, lab.client.url("keyChange"), {}, account.key, account.url)
    changes_nothing(lab, not_a_jws, "malformed", 400)


# External account binding required (RFC 8555 §7.3.4).


def test_a_server_requiring_eab_says_so_and_binds_new_accounts(
    tmp_path: Path, template_ca: Path
) -> None:
    ca = copy_ca(template_ca, tmp_path / "ca")
    with acme_lab(ca, eab_required=True) as lab:
        assert lab.client.directory["meta"]["externalAccountRequired"] is True
        key = AccountKey.generate()
        unbound = partial(new_account, lab, key)
        changes_nothing(lab, unbound, "externalAccountRequired", 403)
        kid, hmac_key = eab.add(lab.server.state, "lab", datetime.now(timezone.utc))
        jwk = JWKEC(key=key.private)
        made = new_account(
            lab,
            key,
            externalAccountBinding=binding(jwk, kid, hmac_key, url=lab.client.url("newAccount")),
        )
        assert made.status == 201, made.body
        assert made.json()["externalAccountBinding"] == {"kid": kid}
        assert order(lab, Account(key, made.location)).status == 201
