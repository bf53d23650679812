"""Replay nonces (RFC 8555 §6.5): each good for one request, within an hour.

A nonce is made without writing anything: 16 random bytes and its expiry, with an HMAC
of both under a key every replica reads from the registry. Taking one checks the HMAC
and the expiry, then records it as used: one write per request instead of two (making
it and taking it), and replicas sharing the registry accept each other's nonces, each
once. A used nonce's record lasts as long as the nonce could; purge removes it then.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta, timezone

from ..clock import Clock
from ..errors import ConflictError
from ..registry import AcmeState, Document
from . import jose

LIFETIME = timedelta(hours=1)
KEY_KIND, KEY_ID = "nonce-key", "hmac-sha256"
RANDOM, EXPIRY, MAC = 16, 8, 16  # bytes of a nonce's parts


class Nonces:
    """Nonces of one CA's ACME service, checked against the registry's record of use."""

    def __init__(self, state: AcmeState, clock: Clock) -> None:
        self.state = state
        self.clock = clock
        self._key = self._shared_key()

    def new(self) -> str:
        expires = int((self.clock() + LIFETIME).timestamp())
        body = secrets.token_bytes(RANDOM) + expires.to_bytes(EXPIRY, "big")
        return jose.encode_b64jose(body + self._mac(body))

    def take(self, nonce: str, now: datetime) -> bool:
        """Whether ``nonce`` is one of ours, unexpired and unused; it is used from now on."""
        try:
            raw = jose.decode_b64jose(nonce)
        except (jose.DeserializationError, ValueError, binascii.Error):
            return False
        body, mac = raw[: RANDOM + EXPIRY], raw[RANDOM + EXPIRY :]
        if len(raw) != RANDOM + EXPIRY + MAC or not hmac.compare_digest(mac, self._mac(body)):
            return False
        expires = datetime.fromtimestamp(int.from_bytes(body[RANDOM:], "big"), timezone.utc)
        if expires <= now:
            return False
        try:
            self.state.create("nonce", nonce, Document("", expires=expires))
        except ConflictError:  # used before, here or on another replica
            return False
        return True

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()[:MAC]

    def _shared_key(self) -> bytes:
        """The registry's nonce key, made by the first service that needs it."""
        now = self.clock()
        if self.state.get(KEY_KIND, KEY_ID, now=now) is None:
            made = base64.b64encode(secrets.token_bytes(32)).decode()
            with contextlib.suppress(ConflictError):  # another replica made it first: theirs
                self.state.create(KEY_KIND, KEY_ID, Document(made))
        document = self.state.get(KEY_KIND, KEY_ID, now=now)
        assert document is not None
        return base64.b64decode(document.body)
