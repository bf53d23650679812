"""External account binding (RFC 8555 §7.3.4): the keys a CA's operator hands out so that
only their holders make ACME accounts, kept as ``eab`` documents in the registry's ACME
state, and the check of the binding a newAccount request carries.

A key is a key id (``kid``) and 32 random bytes for HMAC. The bytes are shown once, when
the key is made, and stored so that a binding can be verified; a key binds one account,
for good (the account is the document's ``account``).
"""

from __future__ import annotations

import base64
import builtins
import json
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import InputError, NotFoundError
from ..formats import iso, parse_iso
from ..registry import AcmeState, Document
from .problems import Problem

if TYPE_CHECKING:
    from josepy.jwk import JWK
    from josepy.jws import JWS

KIND = "eab"
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
KEY_BYTES = 32  # as long as HS256's output: a shorter key weakens it (RFC 2104 §3)
NEW_KEY_HINT = "ask the CA's operator for a new external account key"


class EabKey(NamedTuple):
    """One external account key as a listing shows it (never its HMAC key)."""

    kid: str
    label: str | None
    created: datetime
    account: str | None  # the account it is bound to, if any

    def to_json(self) -> dict[str, str | None]:
        return {
            "kid": self.kid,
            "label": self.label,
            "created": iso(self.created),
            "account": self.account,
        }


def add(state: AcmeState, label: str | None, now: datetime) -> tuple[str, str]:
    """Make and keep a new key; its (kid, HMAC key as unpadded base64url). InputError
    for a label that is not one line of text."""
    if label is not None and not label.isprintable():
        raise InputError(f"the label {label!r} is not one line of printable text")
    # "kid-" first: a kid never starts with "-", which a command line reads as an option.
    kid = "kid-" + secrets.token_urlsafe(12)
    hmac_key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).rstrip(b"=").decode()
    body = {"label": label, "hmac_key": hmac_key, "created": iso(now)}
    state.create(KIND, kid, Document(json.dumps(body)))
    return kid, hmac_key


def list(state: AcmeState, now: datetime) -> builtins.list[EabKey]:
    """Every key, oldest first."""
    keys = []
    for kid, document in state.find(KIND, now=now):
        body = json.loads(document.body)
        keys.append(EabKey(kid, body["label"], parse_iso(body["created"]), document.account))
    return keys


def remove(state: AcmeState, kid: str) -> None:
    """Forget the key ``kid`` (an account it bound stays); NotFoundError if unknown."""
    if not state.remove(KIND, kid):
        raise NotFoundError(f"no external account key {kid}", code="unknown-eab")


def bind(
    state: AcmeState,
    eab_jws: object,
    account_jwk: JWK,
    url: str,
    account_id: str,
    now: datetime,
) -> str:
    """Check the ``externalAccountBinding`` of a newAccount payload (a flattened JWS, as
    parsed from JSON) made for ``account_jwk`` at the newAccount ``url``, and bind its key
    to ``account_id``; the key's kid. Problem ``malformed`` for a binding that is not one,
    ``unauthorized`` for an unknown key, a bad signature or a key bound to another
    account (binding the same account again is no change)."""
    from josepy.jwk import JWKOct  # the serve extra's: not loaded for other commands

    kid, signed, payload = _parse(eab_jws, url)
    document = state.get(KIND, kid, now=now)
    if document is None:
        raise _unknown(kid)
    key = JWKOct(key=_hmac_key(document))
    if not signed.verify(key):
        raise Problem(
            "unauthorized",
            f"the externalAccountBinding signature does not verify with external account "
            f"key {kid}; sign it with that key's HMAC key",
        )
    if payload.public_key().thumbprint() != account_jwk.public_key().thumbprint():
        raise Problem(
            "malformed",
            "the externalAccountBinding payload must be the account's public key "
            "(the jwk of the request's protected header)",
        )

    def bound(document: Document) -> Document:
        if document.account not in (None, account_id):
            raise Problem(
                "unauthorized",
                f"external account key {kid} is bound to another account already",
                hint=NEW_KEY_HINT,
            )
        return document._replace(account=account_id)

    try:
        state.update(KIND, kid, bound, now=now)
    except NotFoundError:  # removed since it was read
        raise _unknown(kid) from None
    return kid


def _parse(eab_jws: object, url: str) -> tuple[str, JWS, JWK]:
    """The kid, the JWS and the JWK payload of a binding; Problem ``malformed`` for what
    RFC 8555 §7.3.4 does not allow."""
    from josepy.errors import Error
    from josepy.jwk import JWK
    from josepy.jws import JWS

    fields = ("payload", "protected", "signature")
    if not isinstance(eab_jws, dict) or sorted(eab_jws) != builtins.list(fields):
        raise _malformed("must be a flattened JWS: an object of protected, payload, signature")
    if not all(isinstance(eab_jws[field], str) for field in fields):
        raise _malformed("must be a flattened JWS: protected, payload, signature are strings")
    header = _decoded(eab_jws["protected"], "protected header")
    if not isinstance(header, dict):
        raise _malformed("has a protected header that is not a JSON object")
    kid = _checked_header(header, url)
    jwk = _decoded(eab_jws["payload"], "payload")
    try:
        signed, payload = JWS.from_json(eab_jws), JWK.from_json(jwk)
    except (Error, KeyError, TypeError, ValueError) as error:
        raise _malformed(f"is not a JWS over a JWK: {error}") from None
    if not isinstance(payload, JWK):  # what from_json makes; its type says less
        raise _malformed("has a payload that is not a JWK")
    return kid, signed, payload


def _checked_header(header: dict[str, Any], url: str) -> str:
    """The kid of a binding's protected header, once it is one RFC 8555 allows."""
    alg = header.get("alg")
    if alg not in HMAC_ALGORITHMS:
        used = "has no alg" if alg is None else f"is signed with {alg!r}"
        raise _malformed(f"{used}; it must be signed with {', '.join(HMAC_ALGORITHMS)}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _malformed("needs the kid of an external account key in its protected header")
    if "nonce" in header:
        raise _malformed("must not carry a nonce (RFC 8555 §7.3.4)")
    if header.get("url") != url:
        raise _malformed(
            f"must carry the newAccount URL {url} as its url, not {header.get('url')!r}"
        )
    return kid


def _decoded(part: str, what: str) -> Any:
    from josepy.b64 import b64decode

    try:
        return json.loads(b64decode(part))
    except (ValueError, TypeError):
        raise _malformed(f"has a {what} that is not base64url-encoded JSON") from None


def _hmac_key(document: Document) -> bytes:
    text: str = json.loads(document.body)["hmac_key"]
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _malformed(what: str) -> Problem:
    return Problem("malformed", f"the externalAccountBinding {what}")


def _unknown(kid: str) -> Problem:
    return Problem("unauthorized", f"no external account key {kid}", hint=NEW_KEY_HINT)
