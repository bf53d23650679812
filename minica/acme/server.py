"""The ACME server: the directory, nonces, and every POST through one pipeline — JWS
form, url, nonce, key, signature — before its resource's handler runs (RFC 8555 §6).
Handlers take checked requests and return ``Reply``s; the web layer only carries them.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..ca import CertificateAuthority
from ..errors import ConflictError, MinicaError
from . import jose
from .accounts import Accounts
from .ari import RETRY_AFTER, CertId, window
from .jws import Signed, jwk_of, key_of, parse, thumbprint
from .model import Account, Urls, account_json, authorization_json, challenge_json, order_json
from .nonces import Nonces
from .orders import Checker, Orders
from .problems import Problem

PURGE_EVERY = timedelta(minutes=10)  # used nonces and authorizations are removed when expired
RETRY_SECONDS = 1  # Retry-After while a challenge is being validated
PEM_CHAIN = "application/pem-certificate-chain"
# RFC 5280 §5.3.1 reason codes a subscriber may give (RFC 8555 §7.6), by minica's names.
REASONS = {
    0: "unspecified",
    1: "key-compromise",
    3: "affiliation-changed",
    4: "superseded",
    5: "cessation-of-operation",
}


@dataclass
class Reply:
    """What a handler answers: status, a JSON body (or bytes of ``content_type``) and the
    headers ACME defines."""

    body: dict[str, Any] | bytes | None = None
    status: int = 200
    location: str | None = None
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, rel)
    retry_after: int | None = None
    content_type: str = "application/json"


@dataclass(frozen=True)
class Caller:
    """A checked request: its JWS and, when signed by kid, its account."""

    signed: Signed
    account: Account | None
    urls: Urls
    now: datetime

    @property
    def of_account(self) -> Account:
        assert self.account is not None
        return self.account


Handler = Callable[[Caller, dict[str, str]], Reply]


class AcmeServer:
    """ACME for ``authority``: ``profiles`` offered (the first the default),
    ``validator`` checks challenges (None: every challenge passes, for test fixtures)."""

    def __init__(
        self,
        authority: CertificateAuthority,
        *,
        profiles: tuple[str, ...] = ("server",),
        validator: Checker | None,
        eab_required: bool = False,
    ) -> None:
        for name in profiles:
            authority.profile(name)  # ProfileError now, not at the first order
        self.authority = authority
        self.state = authority.registry.acme
        self.profiles = profiles
        self.eab_required = eab_required
        self.accounts = Accounts(self.state, eab_required=eab_required)
        self.orders = Orders(authority, self.state, profiles=profiles, validator=validator)
        self.nonces = Nonces(self.state, authority.clock)
        self._purged = authority.clock()
        # resource: (handler, how it is signed: "jwk", "kid" or "any")
        self.resources: dict[str, tuple[Handler, str]] = {
            "new-account": (self._new_account, "jwk"),
            "account": (self._account, "kid"),
            "orders": (self._account_orders, "kid"),
            "key-change": (self._key_change, "kid"),
            "new-order": (self._new_order, "kid"),
            "order": (self._order, "kid"),
            "finalize": (self._finalize, "kid"),
            "authz": (self._authorization, "kid"),
            "challenge": (self._challenge, "kid"),
            "certificate": (self._certificate, "kid"),
            "revoke-cert": (self._revoke, "any"),
        }

    def close(self) -> None:
        self.orders.close()

    # Unsigned.

    def directory(self, urls: Urls) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "website": urls.base + "/",
            "externalAccountRequired": self.eab_required,
            "profiles": {name: self._describe(name) for name in self.profiles},
        }
        return {
            "newNonce": urls.of("new-nonce"),
            "newAccount": urls.of("new-account"),
            "newOrder": urls.of("new-order"),
            "revokeCert": urls.of("revoke-cert"),
            "keyChange": urls.of("key-change"),
            "renewalInfo": urls.of("renewal-info"),
            "meta": meta,
        }

    def _describe(self, name: str) -> str:
        profile = self.authority.profile(name)
        return f"minica profile {name}: {profile.description or name}, {profile.validity_days} days"

    def new_nonce(self) -> str:
        """A fresh nonce (no registry call: it may be made on the event loop)."""
        return self.nonces.new()

    def renewal_info(self, cert_id: str) -> Reply:
        parsed = CertId.parse(cert_id)
        record = self.authority.registry.get(parsed.serial_hex)
        ours = CertId.of(self.authority.registry.certificate(parsed.serial_hex)) if record else None
        if record is None or ours != parsed:
            raise Problem("malformed", f"no certificate {cert_id[:80]} from this CA", status=404)
        body = {"suggestedWindow": window(record, self.authority.clock())}
        return Reply(body, retry_after=RETRY_AFTER)

    # Signed.

    def post(
        self, resource: str, params: dict[str, str], body: bytes, url: str, urls: Urls
    ) -> Reply:
        """The reply to a POST of ``body`` to ``url`` (``resource`` with its ``params``),
        after the checks every request passes; Problem for the first that fails."""
        handler, signing = self.resources[resource]
        signed = parse(body)
        if signed.url != url:
            raise Problem(
                "unauthorized", f"the JWS url {signed.url[:100]!r} is not the request's URL {url}"
            )
        now = self.authority.clock()
        if not self.nonces.take(signed.nonce, now):
            raise Problem("badNonce", "the nonce is unknown, used or expired; take the new one")
        if now - self._purged > PURGE_EVERY:
            self._purged = now
            # In a thread of its own: requests run on the event loop, and ten minutes of
            # used nonces under load are many rows to delete.
            threading.Thread(target=self._purge, args=(now,), name="minica-acme-purge").start()
        account = self._signer(signed, signing, urls, now)
        return handler(Caller(signed, account, urls, now), params)

    def _purge(self, now: datetime) -> None:
        try:
            self.state.purge(now=now)
        except MinicaError as failure:  # the registry is away: the next purge will do
            print(f"warning: purging expired ACME state: {failure}", file=sys.stderr)

    def _signer(self, signed: Signed, signing: str, urls: Urls, now: datetime) -> Account | None:
        """The account that signed (for kid), after its signature is verified."""
        if signed.kid is not None:
            if signing == "jwk":
                raise Problem("malformed", "this request is signed with its key (jwk), not a kid")
            account = self.accounts.of_kid(signed.kid, urls, now)
            signed.verify(key_of(account.jwk))
            return account
        if signing == "kid":
            raise Problem("malformed", "this request is signed by an account (kid), not a jwk")
        assert signed.jwk is not None
        signed.verify(signed.jwk)
        return None

    # Accounts.

    def _new_account(self, caller: Caller, params: dict[str, str]) -> Reply:
        account, created = self.accounts.create(
            caller.signed, caller.signed.json(), caller.signed.url, caller.now
        )
        return Reply(
            account_json(account, caller.urls),
            status=201 if created else 200,
            location=caller.urls.account(account.id),
        )

    def _account(self, caller: Caller, params: dict[str, str]) -> Reply:
        account = self._own_account(caller, params["id"])
        if caller.signed.payload:
            account = self.accounts.update(account, caller.signed.json(), caller.now)
        return Reply(account_json(account, caller.urls), location=caller.urls.account(account.id))

    def _account_orders(self, caller: Caller, params: dict[str, str]) -> Reply:
        account = self._own_account(caller, params["id"])
        orders = self.orders.of_account(account, caller.now)
        return Reply({"orders": [caller.urls.order(o.id) for o in orders]})

    def _own_account(self, caller: Caller, id: str) -> Account:
        if id != caller.of_account.id:
            raise Problem("unauthorized", "an account can only read and change itself")
        return caller.of_account

    def _key_change(self, caller: Caller, params: dict[str, str]) -> Reply:
        account = self.accounts.change_key(
            caller.of_account, caller.signed, caller.urls, caller.now
        )
        return Reply(account_json(account, caller.urls), location=caller.urls.account(account.id))

    # Orders.

    def _new_order(self, caller: Caller, params: dict[str, str]) -> Reply:
        order = self.orders.create(caller.of_account, caller.signed.json(), caller.now)
        status = self.orders.status(order, caller.now)
        return Reply(order_json(order, status, caller.urls), 201, caller.urls.order(order.id))

    def _order(self, caller: Caller, params: dict[str, str]) -> Reply:
        order = self.orders.order(params["id"], caller.of_account, caller.now)
        return Reply(order_json(order, self.orders.status(order, caller.now), caller.urls))

    def _finalize(self, caller: Caller, params: dict[str, str]) -> Reply:
        order = self.orders.finalize(
            caller.of_account, params["id"], caller.signed.json(), caller.now
        )
        return Reply(order_json(order, "valid", caller.urls), location=caller.urls.order(order.id))

    def _authorization(self, caller: Caller, params: dict[str, str]) -> Reply:
        if caller.signed.payload:  # RFC 8555 §7.5.2: {"status": "deactivated"}, nothing else
            status = caller.signed.json().get("status")
            if status != "deactivated":
                raise Problem(
                    "malformed",
                    f"an authorization's status can only become deactivated, not {status!r}",
                )
            authorization = self.orders.deactivate(params["id"], caller.of_account, caller.now)
            return Reply(authorization_json(authorization, caller.now, caller.urls))
        authorization = self.orders.authorization(params["id"], caller.of_account, caller.now)
        busy = any(c.status == "processing" for c in authorization.challenges)
        return Reply(
            authorization_json(authorization, caller.now, caller.urls),
            retry_after=RETRY_SECONDS if busy else None,
        )

    def _challenge(self, caller: Caller, params: dict[str, str]) -> Reply:
        payload = caller.signed.payload
        if payload:
            caller.signed.json()  # RFC 8555 §7.5.1: an empty object; anything JSON goes
        authorization, challenge = self.orders.respond(
            caller.of_account, params["authz"], params["type"], payload, caller.now
        )
        return Reply(
            challenge_json(authorization.id, challenge, caller.urls),
            links=[(caller.urls.authorization(authorization.id), "up")],
            retry_after=RETRY_SECONDS if challenge.status == "processing" else None,
        )

    # Certificates.

    def _certificate(self, caller: Caller, params: dict[str, str]) -> Reply:
        serial = params["serial"]
        found = self.state.find("order", now=caller.now, key=serial)
        if not found or found[0][1].account != caller.of_account.id:
            raise Problem(
                "unauthorized", f"certificate {serial} was not ordered by this account", status=404
            )
        certificate = self.authority.certificate_by_serial(serial)
        # Leaf, then intermediates. A root's leaf has none, and certbot refuses a chain of
        # one certificate ("less than 2 certificates in chain"): it gets the root after
        # it, as django-ca serves it (RFC 8446 §4.4.2 lets a server send the root).
        chain = [certificate, *(self.authority.intermediates or self.authority.chain[-1:])]
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in chain)
        return Reply(pem, content_type=PEM_CHAIN)

    def _revoke(self, caller: Caller, params: dict[str, str]) -> Reply:
        payload = caller.signed.json()
        certificate = _certificate_of(payload.get("certificate"))
        code = payload.get("reason", 0)
        reason = REASONS.get(code) if isinstance(code, int) and not isinstance(code, bool) else None
        if reason is None:
            raise Problem(
                "badRevocationReason",
                f"reason {payload.get('reason')!r} is not one a subscriber may give "
                f"(give one of {', '.join(map(str, REASONS))})",
            )
        if not self.authority.issued_by(certificate):
            raise Problem("unauthorized", "the certificate was not issued by this CA", status=404)
        serial = format(certificate.serial_number, "x")
        self._check_may_revoke(caller, certificate, serial)
        try:
            self.authority.revoke(serial, reason)
        except ConflictError as error:
            raise Problem("alreadyRevoked", str(error)) from None
        return Reply()

    def _check_may_revoke(self, caller: Caller, certificate: x509.Certificate, serial: str) -> None:
        """RFC 8555 §7.6: the account that ordered it, or whoever holds its key."""
        if caller.account is None:
            assert caller.signed.jwk is not None
            if thumbprint(caller.signed.jwk) != thumbprint(jwk_of(certificate.public_key())):
                raise Problem(
                    "unauthorized", "the request is not signed with the certificate's key"
                )
            return
        found = self.state.find("order", now=caller.now, key=serial)
        if not found or found[0][1].account != caller.account.id:
            raise Problem(
                "unauthorized",
                f"certificate {serial} was not ordered by this account; "
                "sign the request with the certificate's key instead",
            )


def _certificate_of(value: object) -> x509.Certificate:
    if not isinstance(value, str):
        raise Problem("malformed", "revokeCert needs a certificate: the base64url DER")
    try:
        return x509.load_der_x509_certificate(jose.decode_b64jose(value))
    except (jose.DeserializationError, ValueError):
        raise Problem("malformed", "the certificate is not base64url DER") from None


__all__ = ["AcmeServer", "Caller", "Reply"]
