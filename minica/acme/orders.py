"""ACME orders and authorizations (RFC 8555 §7.4, §7.5): identifiers checked against the
profile and the CA's constraints before any work, authorizations reused while valid,
challenges validated in worker threads, finalization by the CA core's ``sign``.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..ca import CertificateAuthority
from ..errors import ConflictError, MinicaError
from ..formats import iso, parse_iso
from ..registry import AcmeState, Document
from . import csr
from .ari import CertId
from .identifiers import challenge_types, names_of
from .identifiers import parse as parse_identifiers
from .jws import key_of, thumbprint
from .model import Account, Authorization, Challenge, Identifier, Order
from .problems import Problem, as_problem

ORDER_LIFETIME = timedelta(days=1)
PENDING_LIFETIME = timedelta(days=1)  # an authorization waiting for its challenge
VALID_LIFETIME = timedelta(days=7)  # a validated one, reused by the account's next orders
# An order still processing this long after finalize began was left so by a service that
# stopped while signing (signing takes milliseconds): it becomes invalid, so that its
# client stops polling and orders again, instead of waiting for ever.
INTERRUPTED_AFTER = timedelta(minutes=2)
REUSABLE = "authz-valid"  # kind: the id of an account's valid authorization for an identifier


class Checker(Protocol):
    def validate(
        self, challenge: str, identifier: Any, token: str, key_authorization: str
    ) -> None: ...


class Orders:
    """Orders, authorizations and challenges kept in ``state`` for ``authority``."""

    def __init__(
        self,
        authority: CertificateAuthority,
        state: AcmeState,
        *,
        profiles: tuple[str, ...],
        validator: Checker | None,
        workers: int = 8,
    ) -> None:
        self.authority = authority
        self.state = state
        self.profiles = profiles
        self.validator = validator  # None: every challenge passes (test fixtures)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="minica-acme-validate")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Reading, with the owner's check.

    def order(self, id: str, account: Account, now: datetime) -> Order:
        order = Order.of(id, self._owned("order", "order", id, account, now))
        if _interrupted(order, now):
            order = self._set(order, lambda o: _given_up(o, now), now)
        return order

    def authorization(self, id: str, account: Account, now: datetime) -> Authorization:
        return Authorization.of(id, self._owned("authz", "authorization", id, account, now))

    def _owned(self, kind: str, what: str, id: str, account: Account, now: datetime) -> Document:
        """The document of ``kind`` and ``id``: 404 if there is none, unauthorized if it is
        another account's (the account is a column of the registry, not of the body)."""
        document = self.state.get(kind, id, now=now)
        if document is None:
            raise Problem("malformed", f"no {what} {id}", status=404)
        if document.account != account.id:
            raise Problem("unauthorized", f"{what} {id} belongs to another account")
        return document

    def status(self, order: Order, now: datetime) -> str:
        return order.status_from([self._authz(a, now) for a in order.authorizations], now)

    def of_account(self, account: Account, now: datetime) -> list[Order]:
        return [Order.of(i, d) for i, d in self.state.find("order", now=now, account=account.id)]

    def _authz(self, id: str, now: datetime) -> Authorization:
        document = self.state.get("authz", id, now=now)
        if document is None:  # expired and purged: as good as invalid
            return Authorization(id, "", Identifier("dns", ""), now, (), "invalid")
        return Authorization.of(id, document)

    # Making an order.

    def create(self, account: Account, payload: dict[str, Any], now: datetime) -> Order:
        """A new order for the payload's identifiers under its profile (or the default);
        Problem (rejectedIdentifier, naming the rule) for any the policy refuses."""
        for field in ("notBefore", "notAfter"):
            if payload.get(field) is not None:
                raise Problem(
                    "malformed", f"{field} is not supported: the profile sets the lifetime"
                )
        profile = self._profile(payload.get("profile"))
        identifiers = parse_identifiers(payload.get("identifiers"))
        self._check_policy(identifiers, profile)
        replaces = self._replaces(account, payload.get("replaces"), now)
        authorizations = [self._authorize(account, i, now) for i in identifiers]
        expires = min([now + ORDER_LIFETIME, *(a.expires for a in authorizations)])
        order = Order(
            id=secrets.token_urlsafe(12),
            account=account.id,
            identifiers=identifiers,
            authorizations=tuple(a.id for a in authorizations),
            expires=expires,
            profile=profile,
            replaces=replaces,
            created=iso(now),
        )
        self.state.create("order", order.id, order.document())
        return order

    def _profile(self, name: object) -> str:
        if name is None:
            return self.profiles[0]
        if name not in self.profiles:
            raise Problem(
                "invalidProfile",
                f"profile {str(name)[:40]!r} is not offered (offered: {', '.join(self.profiles)})",
            )
        return str(name)

    def _check_policy(self, identifiers: tuple[Identifier, ...], profile: str) -> None:
        refusals = []
        for identifier in identifiers:
            try:
                self.authority.check_names(names_of((identifier,)), profile)
            except MinicaError as error:
                refusals.append(
                    Problem("rejectedIdentifier", str(error), identifier=identifier.to_json())
                )
        if refusals:
            detail = "; ".join(str(p) for p in refusals)
            raise Problem("rejectedIdentifier", detail, subproblems=tuple(refusals))
        self.authority.check_names(names_of(identifiers), profile)  # all of them together

    def _replaces(self, account: Account, cert_id: object, now: datetime) -> str | None:
        """RFC 9773 §5: the certificate an order renews must be the account's, and
        renewed once."""
        if cert_id is None:
            return None
        serial = CertId.parse(cert_id).serial_hex
        mine = self.state.find("order", now=now, key=serial)
        if not mine or mine[0][1].account != account.id:
            raise Problem(
                "malformed", f"replaces: {str(cert_id)[:80]} is not a certificate of this account"
            )
        for order in self.of_account(account, now):
            if order.replaces == cert_id and self.status(order, now) != "invalid":
                raise Problem("alreadyReplaced", f"order {order.id} replaces {cert_id} already")
        return str(cert_id)

    def _authorize(self, account: Account, identifier: Identifier, now: datetime) -> Authorization:
        """A valid authorization of the account's for ``identifier`` if there is one, else
        a new pending one with the challenges that can prove it."""
        existing = self._reusable(account, identifier, now)
        if existing is not None:
            return existing
        authorization = Authorization(
            id=secrets.token_urlsafe(12),
            account=account.id,
            identifier=identifier,
            expires=now + PENDING_LIFETIME,
            challenges=tuple(
                Challenge(type, secrets.token_urlsafe(32)) for type in challenge_types(identifier)
            ),
        )
        self.state.create("authz", authorization.id, authorization.document())
        return authorization

    def _reusable(
        self, account: Account, identifier: Identifier, now: datetime
    ) -> Authorization | None:
        """The account's valid authorization for ``identifier``, found through the
        pointer its validation left (a search of all the account's authorizations grew
        with every order: bench_acme.py slowed by a quarter over a minute)."""
        pointer = self.state.get(REUSABLE, _reusable_id(account.id, identifier), now=now)
        document = self.state.get("authz", pointer.body, now=now) if pointer else None
        if pointer is None or document is None:
            return None
        existing = Authorization.of(pointer.body, document)
        mine = existing.account == account.id and existing.identifier == identifier
        return existing if mine and existing.status_at(now) == "valid" else None

    def _remember_valid(self, authorization: Authorization, now: datetime) -> None:
        id = _reusable_id(authorization.account, authorization.identifier)
        pointer = Document(
            authorization.id, account=authorization.account, expires=now + VALID_LIFETIME
        )
        try:
            self.state.create(REUSABLE, id, pointer)
        except ConflictError:  # an older one, perhaps expired but not yet purged
            self.state.remove(REUSABLE, id)
            with contextlib.suppress(ConflictError):  # or another thread's, as valid as ours
                self.state.create(REUSABLE, id, pointer)

    def deactivate(self, authz_id: str, account: Account, now: datetime) -> Authorization:
        """RFC 8555 §7.5.2: the account relinquishes a pending or valid authorization; it
        is never reused for another order, and its orders can no longer be finalized."""
        self.authorization(authz_id, account, now)  # the owner's check

        def deactivated(document: Document) -> Document:
            current = Authorization.of(authz_id, document)
            if current.status_at(now) not in ("pending", "valid"):
                raise Problem(
                    "malformed",
                    f"authorization {authz_id} is {current.status_at(now)}: only a pending or "
                    "valid one can be deactivated",
                )
            return replace(current, status="deactivated").document()

        self.state.update("authz", authz_id, deactivated, now=now)
        return self.authorization(authz_id, account, now)

    # Challenges.

    def respond(
        self, account: Account, authz_id: str, type: str, payload: bytes, now: datetime
    ) -> tuple[Authorization, Challenge]:
        """The challenge after the client's POST to it: with a JSON object as payload, its
        validation starts (once); with none (POST-as-GET), it is only read."""
        authorization = self.authorization(authz_id, account, now)
        challenge = authorization.challenge(type)
        if challenge is None:
            raise Problem(
                "malformed", f"authorization {authz_id} has no {type} challenge", status=404
            )
        if not payload or challenge.status != "pending":
            return authorization, challenge
        if authorization.status_at(now) != "pending":
            raise Problem(
                "malformed", f"authorization {authz_id} is {authorization.status_at(now)}"
            )
        started = replace(challenge, status="processing")

        def start(document: Document) -> Document:
            current = Authorization.of(authz_id, document)
            if current.challenge(type) != challenge:  # another request started it first
                raise _AlreadyStarted
            return current.with_challenge(started).document()

        try:
            self.state.update("authz", authz_id, start, now=now)
        except _AlreadyStarted:
            current = self.authorization(authz_id, account, now)
            return current, current.challenge(type) or started
        key_authorization = f"{challenge.token}.{thumbprint(key_of(account.jwk))}"
        if self.validator is None:
            self._validate(authorization, type, key_authorization)
        else:
            self._pool.submit(self._validate, authorization, type, key_authorization)
        current = self.authorization(authz_id, account, now)
        return current, current.challenge(type) or started

    def _validate(self, authorization: Authorization, type: str, key_authorization: str) -> None:
        """Validate, then record the outcome on the authorization (in a worker thread)."""
        error: dict[str, Any] | None = None
        if self.validator is not None:
            try:
                token = key_authorization.partition(".")[0]
                self.validator.validate(type, authorization.identifier, token, key_authorization)
            except MinicaError as refusal:
                problem = as_problem(refusal)
                problem.identifier = authorization.identifier.base.to_json()
                error = problem.document()
            except Exception as bug:
                print(f"warning: validating {authorization.id}: {bug!r}", file=sys.stderr)
                error = Problem("serverInternal", "the validation failed unexpectedly").document()
        now = self.authority.clock()
        status = "invalid" if error else "valid"

        def record(document: Document) -> Document:
            current = Authorization.of(authorization.id, document)
            challenge = current.challenge(type)
            assert challenge is not None
            done = replace(challenge, validated=iso(now), status=status, error=error)
            changed = current.with_challenge(done)
            if changed.status == "valid":
                changed = replace(changed, expires=now + VALID_LIFETIME)
            return changed.document()

        try:
            self.state.update("authz", authorization.id, record, now=now)
            if status == "valid":
                self._remember_valid(authorization, now)
        except MinicaError as failure:  # expired meanwhile, or the registry is away
            print(
                f"warning: recording validation of {authorization.id}: {failure}", file=sys.stderr
            )

    # Finalizing.

    def finalize(
        self, account: Account, order_id: str, payload: dict[str, Any], now: datetime
    ) -> Order:
        """The order, valid with its certificate, for the CSR in ``payload``; Problem
        orderNotReady before its authorizations are valid, badCSR for a CSR whose names
        are not the order's or whose key is the account's."""
        order = self.order(order_id, account, now)
        status = self.status(order, now)
        if status != "ready":
            raise Problem("orderNotReady", f"order {order_id} is {status}, not ready")
        asked = csr.read(payload)
        csr.check(asked, order, account)  # what the client asked for, before the CN is filled
        request = csr.with_common_name(asked, order)
        self._set(order, lambda o: _processing(o, now), now)
        try:
            issued = self.authority.sign(request, order.profile, contact=account.email)
        except MinicaError as refusal:
            problem = as_problem(refusal)
            self._set(order, lambda o: replace(o, status="invalid", error=problem.document()), now)
            raise Problem("badCSR", str(refusal)) from None
        serial = format(issued.certificate.serial_number, "x")
        return self._set(order, lambda o: replace(o, status="valid", certificate=serial), now)

    def _set(self, order: Order, change: Callable[[Order], Order], now: datetime) -> Order:
        changed: list[Order] = []

        def apply(document: Document) -> Document:
            changed.append(change(Order.of(order.id, document)))
            return changed[-1].document()

        self.state.update("order", order.id, apply, now=now)
        return changed[-1]


class _AlreadyStarted(Exception):
    pass


def _reusable_id(account: str, identifier: Identifier) -> str:
    return f"{account} {identifier.type}:{identifier.value}"


def _processing(order: Order, now: datetime) -> Order:
    if order.status is not None:  # another finalize got here first
        raise Problem("orderNotReady", f"order {order.id} is {order.status} already")
    return replace(order, status="processing", processing_since=iso(now))


def _interrupted(order: Order, now: datetime) -> bool:
    since = order.processing_since
    return (
        order.status == "processing"
        and since is not None
        and parse_iso(since) + INTERRUPTED_AFTER <= now
    )


def _given_up(order: Order, now: datetime) -> Order:
    if not _interrupted(order, now):  # finished meanwhile, in another request
        return order
    problem = Problem(
        "serverInternal",
        f"the certificate of order {order.id} was not issued: the service stopped while "
        "signing it; place a new order (its authorizations are still valid)",
    )
    return replace(order, status="invalid", error=problem.document())
