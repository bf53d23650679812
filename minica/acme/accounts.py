"""ACME accounts (RFC 8555 §7.3): creation (with external account binding when asked),
lookup by key or URL, contact and status updates, key rollover."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..errors import ConflictError, RequestError
from ..formats import iso, printable
from ..names import parse_email
from ..registry import AcmeState
from . import eab, jose
from .jws import Signed, key_of, parse, thumbprint
from .model import Account, Urls
from .problems import Problem

MAX_CONTACTS = 10


class Accounts:
    """The accounts kept in ``state``."""

    def __init__(self, state: AcmeState, *, eab_required: bool) -> None:
        self.state = state
        self.eab_required = eab_required

    def get(self, id: str, now: datetime) -> Account | None:
        document = self.state.get("account", id, now=now)
        return Account.of(id, document) if document else None

    def by_key(self, key: jose.JWK, now: datetime) -> Account | None:
        found = self.state.find("account", now=now, key=thumbprint(key))
        return Account.of(*found[0]) if found else None

    def of_kid(self, kid: str, urls: Urls, now: datetime) -> Account:
        """The account a ``kid`` names, if it may still act; Problem otherwise."""
        id = urls.account_id(kid)
        account = self.get(id, now) if id else None
        if account is None:
            raise Problem("accountDoesNotExist", f"no account {kid} on this server")
        if account.status != "valid":
            raise Problem("unauthorized", f"account {kid} is {account.status}")
        return account

    def create(
        self, signed: Signed, payload: dict[str, Any], url: str, now: datetime
    ) -> tuple[Account, bool]:
        """The account of the request's key: the existing one (False), or a new one (True).
        Problem for onlyReturnExisting with no account, a missing or bad EAB, a bad
        contact."""
        assert signed.jwk is not None
        existing = self.by_key(signed.jwk, now)
        if existing is not None:
            if existing.status != "valid":  # RFC 8555 §7.3.6: its key is refused from then on
                raise Problem("unauthorized", f"the account of this key is {existing.status}")
            return existing, False
        if payload.get("onlyReturnExisting") is True:
            raise Problem("accountDoesNotExist", "no account has this key on this server")
        contact = check_contact(payload.get("contact", []))
        binding = payload.get("externalAccountBinding")
        if binding is None and self.eab_required:
            raise Problem(
                "externalAccountRequired",
                "this server needs an external account binding for new accounts; "
                "ask its operator for a key id and HMAC key",
            )
        account = Account(
            id=secrets.token_urlsafe(12),
            jwk=signed.jwk.to_json(),
            contact=contact,
            created=iso(now),
            eab_kid=None,
        )
        if binding is not None:
            if not isinstance(binding, dict):
                raise Problem("malformed", "externalAccountBinding must be a JWS object")
            kid = eab.bind(self.state, binding, signed.jwk, url, account.id, now)
            account = replace(account, eab_kid=kid)
        try:
            self.state.create("account", account.id, account.document(thumbprint(signed.jwk)))
        except ConflictError:  # the same key, at the same moment, on another request
            raced = self.by_key(signed.jwk, now)
            if raced is None:
                raise
            return raced, False
        return account, True

    def update(self, account: Account, payload: dict[str, Any], now: datetime) -> Account:
        """The account after a POST to its URL: a new contact, or deactivated."""
        status = payload.get("status")
        if status is not None and status != "deactivated":
            raise Problem(
                "malformed", f"an account's status can only become deactivated, not {status!r}"
            )
        changed = account
        if "contact" in payload:
            changed = replace(changed, contact=check_contact(payload["contact"]))
        if status == "deactivated":
            changed = replace(changed, status="deactivated")
        if changed == account:
            return account
        key = thumbprint(key_of(account.jwk))
        self.state.update("account", account.id, lambda _: changed.document(key), now=now)
        return changed

    def change_key(self, account: Account, outer: Signed, urls: Urls, now: datetime) -> Account:
        """RFC 8555 §7.3.5: the account with the new key of the inner JWS."""
        inner = parse(outer.payload, inner=True)
        assert inner.jwk is not None
        if inner.url != outer.url:
            raise Problem("malformed", "the inner JWS of a key change must have the outer url")
        if inner.nonce:  # RFC 8555 §7.3.5: the outer JWS's nonce is the one used
            raise Problem("malformed", "the inner JWS of a key change must have no nonce")
        inner.verify(inner.jwk)
        payload = inner.json()
        if payload.get("account") != urls.account(account.id):
            raise Problem("malformed", "the key change names another account than the signer")
        old = key_of(payload.get("oldKey"))
        current = key_of(account.jwk)
        if thumbprint(old) != thumbprint(current):
            raise Problem("malformed", "the key change's oldKey is not the account's key")
        other = self.by_key(inner.jwk, now)
        if other is not None:
            raise Problem(
                "malformed",
                f"the new key belongs to account {urls.account(other.id)} already",
                status=409,
                location=urls.account(other.id),  # RFC 8555 §7.3.5
            )
        changed = replace(account, jwk=inner.jwk.to_json())
        new_key = thumbprint(inner.jwk)
        self.state.update("account", account.id, lambda _: changed.document(new_key), now=now)
        return changed


def check_contact(contact: object) -> tuple[str, ...]:
    """The contact URLs of an account: mailto: addresses, each one address."""
    if not isinstance(contact, list) or not all(isinstance(c, str) for c in contact):
        raise Problem("malformed", "contact must be a list of URLs")
    if len(contact) > MAX_CONTACTS:
        raise Problem("malformed", f"at most {MAX_CONTACTS} contacts")
    for url in contact:
        if not url.startswith("mailto:"):
            raise Problem(
                "unsupportedContact", f"only mailto: contacts are supported, not {url[:60]!r}"
            )
        address = url.removeprefix("mailto:")
        try:
            if "," in address or "?" in address:  # RFC 8555 §7.3: one address, no hfields
                raise RequestError("more than one address or a query")
            parse_email(address)
        except RequestError as error:
            raise Problem(
                "invalidContact", f"{printable(url[:80])} is not an email: {error}"
            ) from None
    return tuple(contact)
