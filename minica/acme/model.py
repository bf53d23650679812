"""ACME's objects (RFC 8555 §7.1) as minica keeps them: accounts, orders and
authorizations with their challenges, each stored as a registry Document (JSON) and
shown to clients as the RFC's JSON through ``Urls``.

The order's status is kept only where it is its own (processing, valid, invalid after a
failed finalization); otherwise it follows from its authorizations, as RFC 8555 §7.1.6
draws it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass, replace
from datetime import datetime
from typing import Any

from ..formats import iso, parse_iso
from ..registry import Document

CHALLENGE_TYPES = ("http-01", "dns-01", "tls-alpn-01")


@dataclass(frozen=True)
class Identifier:
    """What an order names: ``dns`` (a host name, ``*.`` for a wildcard) or ``ip``."""

    type: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "value": self.value}

    @property
    def wildcard(self) -> bool:
        return self.type == "dns" and self.value.startswith("*.")

    @property
    def base(self) -> Identifier:
        """The identifier an authorization is for: a wildcard's without its ``*.``."""
        return Identifier("dns", self.value[2:]) if self.wildcard else self


@dataclass(frozen=True)
class Account:
    id: str
    jwk: dict[str, Any]  # the account key, as JSON (josepy reads it back)
    contact: tuple[str, ...] = ()
    status: str = "valid"  # valid, deactivated, revoked
    created: str = ""
    eab_kid: str | None = None

    @property
    def email(self) -> str | None:
        """The first mailto: contact, as the registry's contact for its certificates."""
        return next(
            (c.removeprefix("mailto:") for c in self.contact if c.startswith("mailto:")), None
        )

    def document(self, thumbprint: str) -> Document:
        return Document(_dump(self, "id"), key=thumbprint, account=self.id)

    @classmethod
    def of(cls, id: str, document: Document) -> Account:
        body = json.loads(document.body)
        body["contact"] = tuple(body["contact"])
        return cls(id=id, **body)


@dataclass(frozen=True)
class Challenge:
    type: str
    token: str
    status: str = "pending"  # pending, processing, valid, invalid
    validated: str | None = None
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class Authorization:
    id: str
    account: str
    identifier: Identifier
    expires: datetime
    challenges: tuple[Challenge, ...]
    status: str = "pending"  # pending, valid, invalid, deactivated

    @property
    def wildcard(self) -> bool:
        return self.identifier.wildcard

    def status_at(self, now: datetime) -> str:
        if self.status in ("pending", "valid") and self.expires <= now:
            return "expired"
        return self.status

    def challenge(self, type: str) -> Challenge | None:
        return next((c for c in self.challenges if c.type == type), None)

    def with_challenge(self, challenge: Challenge) -> Authorization:
        """This authorization with ``challenge`` in place of its type's, and the status
        the challenge gives it."""
        challenges = tuple(challenge if c.type == challenge.type else c for c in self.challenges)
        status = {"valid": "valid", "invalid": "invalid"}.get(challenge.status, self.status)
        return replace(self, challenges=challenges, status=status)

    def document(self) -> Document:
        body = _plain(self)
        del body["id"]
        body["identifier"] = self.identifier.to_json()
        body["expires"] = iso(self.expires)
        return Document(json.dumps(body), account=self.account, expires=self.expires)

    @classmethod
    def of(cls, id: str, document: Document) -> Authorization:
        body = json.loads(document.body)
        body["identifier"] = Identifier(**body["identifier"])
        body["expires"] = parse_iso(body["expires"])
        body["challenges"] = tuple(Challenge(**c) for c in body["challenges"])
        return cls(id=id, **body)


@dataclass(frozen=True)
class Order:
    id: str
    account: str
    identifiers: tuple[Identifier, ...]
    authorizations: tuple[str, ...]
    expires: datetime
    profile: str
    status: str | None = None  # None: follows from the authorizations
    certificate: str | None = None  # the serial, once issued
    error: dict[str, Any] | None = None
    replaces: str | None = None  # RFC 9773 §5: the certificate this one renews
    created: str = ""
    processing_since: str | None = None  # when finalize began signing
    not_before: str | None = None
    not_after: str | None = None

    def status_from(self, authorizations: list[Authorization], now: datetime) -> str:
        """RFC 8555 §7.1.6: invalid if it expired or an authorization failed, ready once
        all are valid, else pending — unless its own status says more."""
        if self.status is not None:
            return self.status
        states = {a.status_at(now) for a in authorizations}
        if self.expires <= now or states & {"invalid", "deactivated", "expired", "revoked"}:
            return "invalid"
        return "ready" if states == {"valid"} else "pending"

    def document(self) -> Document:
        body = _plain(self)
        for name in ("id", "account"):
            del body[name]
        body["identifiers"] = [i.to_json() for i in self.identifiers]
        body["expires"] = iso(self.expires)
        return Document(json.dumps(body), key=self.certificate, account=self.account, expires=None)

    @classmethod
    def of(cls, id: str, document: Document) -> Order:
        body = json.loads(document.body)
        body["identifiers"] = tuple(Identifier(**i) for i in body["identifiers"])
        body["authorizations"] = tuple(body["authorizations"])
        body["expires"] = parse_iso(body["expires"])
        return cls(id=id, account=document.account or "", **body)


@dataclass(frozen=True)
class Urls:
    """The URLs of ACME's resources under ``base`` (the service's https URL as the client
    reached it, without a trailing slash)."""

    base: str

    def of(self, resource: str) -> str:
        return f"{self.base}/acme/{resource}"

    def account(self, id: str) -> str:
        return self.of(f"account/{id}")

    def order(self, id: str) -> str:
        return self.of(f"order/{id}")

    def authorization(self, id: str) -> str:
        return self.of(f"authz/{id}")

    def challenge(self, authorization: str, type: str) -> str:
        return self.of(f"challenge/{authorization}/{type}")

    def certificate(self, serial: str) -> str:
        return self.of(f"certificate/{serial}")

    def account_id(self, kid: str) -> str | None:
        """The account id in a ``kid`` URL of this service, or None."""
        prefix = self.account("")
        rest = kid.removeprefix(prefix) if kid.startswith(prefix) else None
        return rest if rest and "/" not in rest else None


def account_json(account: Account, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": account.status,
        "contact": list(account.contact),
        "orders": urls.account(account.id) + "/orders",
        "key": account.jwk,
    }
    if account.eab_kid:
        body["externalAccountBinding"] = {"kid": account.eab_kid}
    return body


def order_json(order: Order, status: str, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "expires": iso(order.expires),
        "identifiers": [i.to_json() for i in order.identifiers],
        "authorizations": [urls.authorization(a) for a in order.authorizations],
        "finalize": urls.order(order.id) + "/finalize",
        "profile": order.profile,
    }
    if order.replaces:
        body["replaces"] = order.replaces
    if order.certificate and status == "valid":
        body["certificate"] = urls.certificate(order.certificate)
    if order.error and status == "invalid":
        body["error"] = order.error
    return body


def authorization_json(authorization: Authorization, now: datetime, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": authorization.status_at(now),
        "expires": iso(authorization.expires),
        "identifier": authorization.identifier.base.to_json(),
        "challenges": [challenge_json(authorization.id, c, urls) for c in authorization.challenges],
    }
    if authorization.wildcard:
        body["wildcard"] = True
    return body


def challenge_json(authorization: str, challenge: Challenge, urls: Urls) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": challenge.type,
        "url": urls.challenge(authorization, challenge.type),
        "token": challenge.token,
        "status": challenge.status,
    }
    if challenge.validated:
        body["validated"] = challenge.validated
    if challenge.error:
        body["error"] = challenge.error
    return body


def _plain(value: Any) -> Any:
    """Dataclasses as dicts and lists, for json.dumps: asdict without its deep copies of
    every dict and list (every ACME write goes through here)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _dump(value: Any, *without: str) -> str:
    body = _plain(value)
    for name in without:
        del body[name]
    return json.dumps(body)


__all__ = [
    "CHALLENGE_TYPES",
    "Account",
    "Authorization",
    "Challenge",
    "Identifier",
    "Order",
    "Urls",
]
