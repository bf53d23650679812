"""A registry in memory: what an in-memory CA (a test fixture) issued and revoked.

It keeps the rules of the registry on disk — unknown serials, double revocations and
CRL numbers behave the same — at the cost of a dictionary entry per certificate.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from cryptography import x509

from ..formats import to_second
from . import (
    AcmeState,
    Finding,
    Record,
    Revocation,
    SerialTaken,
    already_revoked,
    listing,
    listing_filter,
    unknown_serial,
)
from .memory_acme import MemoryAcmeState


class MemoryRegistry:
    """The Registry protocol on dictionaries, guarded by one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: `exclusive` blocks may call methods
        self._records: dict[str, Record] = {}
        self._certificates: dict[str, x509.Certificate] = {}
        self._crl_number = 0
        self._latest_crl: tuple[int, x509.CertificateRevocationList] | None = None
        self._revision = 0
        self._acme = MemoryAcmeState(self._lock)

    def add(
        self,
        record: Record,
        certificate: x509.Certificate,
        then: Callable[[], None] | None = None,
    ) -> None:
        with self._lock:
            if record.serial in self._records:
                raise SerialTaken(record.serial)
            if then is not None:
                then()
            self._records[record.serial] = record
            self._certificates[record.serial] = certificate
            self._revision += 1

    def get(self, serial: str) -> Record | None:
        return self._records.get(serial)

    def certificate(self, serial: str) -> x509.Certificate:
        try:
            return self._certificates[serial]
        except KeyError:
            raise unknown_serial(serial) from None

    def records(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> list[Record]:
        until = listing_filter(status, now, expiring_within)
        with self._lock:
            rows = list(self._records.values())
        return listing(rows, status, now, until)

    def records_json(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> str:
        rows = self.records(status, now=now, expiring_within=expiring_within)
        objects = (json.dumps(row.to_json(now), separators=(",", ":")) for row in rows)
        return "[" + ",\n".join(objects) + "]"

    def revoke(self, serial: str, reason: str, at: datetime) -> Record:
        with self._lock:
            record = self._records.get(serial)
            if record is None:
                raise unknown_serial(serial)
            if record.revoked_at is not None:
                raise already_revoked(serial, record.revoked_at)
            record = record._replace(revoked_at=to_second(at), revocation_reason=reason)
            self._records[serial] = record
            self._revision += 1
            return record

    def next_crl(self, at: datetime) -> tuple[int, list[Revocation]]:
        with self._lock:
            self._crl_number += 1
            revoked = [r.revocation for r in self._records.values() if r.revocation]
            return self._crl_number, sorted(revoked, key=lambda r: (r.revoked_at, r.serial))

    def record_crl(self, number: int, crl: x509.CertificateRevocationList) -> None:
        with self._lock:
            if self._latest_crl is None or self._latest_crl[0] < number:
                self._latest_crl = (number, crl)

    @property
    def acme(self) -> AcmeState:
        return self._acme

    def revision(self) -> int:
        return self._revision

    def latest_crl(self) -> x509.CertificateRevocationList | None:
        latest = self._latest_crl
        return latest[1] if latest else None

    def keep_connections(self) -> None:
        pass  # nothing to connect to

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._lock:
            yield

    def check(
        self, *, repair: bool, issued_by: Callable[[x509.Certificate], bool]
    ) -> list[Finding]:
        return []  # nothing can come apart between two dictionaries under one lock
