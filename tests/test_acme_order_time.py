"""Orders through time, driven through minica.acme.orders with a pinned clock: an order
whose finalize was cut short (a service that stopped while signing leaves it
`processing`, and it must not stay so for ever: its client would poll until it gave up),
and authorizations reused while valid, then replaced once expired."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from minica import CertificateAuthority, ManualClock
from minica.acme.jws import jwk_of
from minica.acme.model import Account, Order
from minica.acme.orders import INTERRUPTED_AFTER, VALID_LIFETIME, Orders
from minica.acme.problems import Problem
from minica.formats import iso

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def orders(clock: ManualClock) -> Orders:
    authority = CertificateAuthority.in_memory(clock=clock)
    return Orders(authority, authority.registry.acme, profiles=("server",), validator=None)


def account() -> Account:
    key = jwk_of(ec.generate_private_key(ec.SECP256R1()).public_key())
    return Account(id="account-1", jwk=key.to_json(), created=iso(NOW))


def stuck_order(orders: Orders, owner: Account, now: datetime) -> Order:
    """A ready order set to `processing` as finalize does, never to be finished."""
    identifiers = [{"type": "dns", "value": "www.lab.test"}]
    order = orders.create(owner, {"identifiers": identifiers}, now)
    (authz,) = order.authorizations
    orders.respond(owner, authz, "http-01", b"{}", now)
    assert orders.status(orders.order(order.id, owner, now), now) == "ready"
    return orders._set(
        order, lambda o: replace(o, status="processing", processing_since=iso(now)), now
    )


def test_an_order_left_processing_becomes_invalid_and_says_why(
    orders: Orders, clock: ManualClock
) -> None:
    owner = account()
    order = stuck_order(orders, owner, clock())
    clock.advance(INTERRUPTED_AFTER - timedelta(seconds=1))
    assert orders.status(orders.order(order.id, owner, clock()), clock()) == "processing"
    clock.advance(timedelta(seconds=1))
    given_up = orders.order(order.id, owner, clock())
    assert orders.status(given_up, clock()) == "invalid"
    assert given_up.error is not None
    assert given_up.error["type"] == "urn:ietf:params:acme:error:serverInternal"
    assert "place a new order" in given_up.error["detail"]
    with pytest.raises(Problem, match="not ready"):
        orders.finalize(owner, order.id, {"csr": ""}, clock())


def test_a_new_order_for_the_same_names_reuses_the_valid_authorization(
    orders: Orders, clock: ManualClock
) -> None:
    owner = account()
    order = stuck_order(orders, owner, clock())
    clock.advance(INTERRUPTED_AFTER)
    orders.order(order.id, owner, clock())
    again = orders.create(
        owner, {"identifiers": [{"type": "dns", "value": "www.lab.test"}]}, clock()
    )
    assert again.authorizations == order.authorizations
    assert orders.status(again, clock()) == "ready"


def test_an_expired_authorization_is_replaced_and_the_new_one_reused(
    orders: Orders, clock: ManualClock
) -> None:
    owner = account()
    identifiers = {"identifiers": [{"type": "dns", "value": "www.lab.test"}]}

    def validated_order() -> Order:
        order = orders.create(owner, identifiers, clock())
        for authz in order.authorizations:
            orders.respond(owner, authz, "http-01", b"{}", clock())
        return order

    first = validated_order()
    clock.advance(VALID_LIFETIME)
    second = validated_order()
    assert second.authorizations != first.authorizations
    third = orders.create(owner, identifiers, clock())
    assert third.authorizations == second.authorizations
    assert orders.status(third, clock()) == "ready"
