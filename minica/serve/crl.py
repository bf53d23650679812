"""The CRL the service hands out: always current — signed at start, again after every
change of the registry, and again before half its lifetime is gone — with a CRL number
from the registry, so numbers only grow across restarts and processes."""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding

from ..ca import CertificateAuthority
from ..lifecycle import crl_number
from .ocsp import etag


@dataclass(frozen=True)
class Published:
    """One signed CRL, DER, with what HTTP caches need to know of it."""

    der: bytes
    number: int
    this_update: datetime
    next_update: datetime

    @functools.cached_property  # a CRL of 100,000 entries is 4 MB: hashed once
    def etag(self) -> str:
        return etag(self.der)


class CrlPublisher:
    """Keeps the current CRL of ``authority``; safe to share between threads."""

    def __init__(self, authority: CertificateAuthority) -> None:
        self.authority = authority
        self._lock = threading.Lock()
        self._current = self._sign()

    @property
    def current(self) -> Published:
        return self._current

    def refresh(self, *, changed: bool) -> bool:
        """Sign anew if the registry ``changed`` or half the current CRL's life is gone;
        whether it did."""
        current = self._current
        half = current.this_update + (current.next_update - current.this_update) / 2
        if not changed and self.authority.clock() < half:
            return False
        with self._lock:
            self._current = self._sign()
        return True

    def _sign(self) -> Published:
        crl = self.authority.crl()
        number = crl_number(crl)
        next_update = crl.next_update_utc
        assert next_update is not None  # minica's CRLs always have one
        return Published(crl.public_bytes(Encoding.DER), number, crl.last_update_utc, next_update)
