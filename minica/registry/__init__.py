"""The registry: what a CA issued, what it revoked, and the CRL numbers it spent.

One protocol, ``Registry``, with one implementation per place records live: in memory
(``memory.MemoryRegistry``, for test fixtures) and in a CA folder (``sqlite.SqliteRegistry``:
SQLite plus ``certs/``). Every front end and the CA core use only this protocol, and
every implementation passes the same test suite (tests/test_registry.py); a new one
(PostgreSQL, and the ACME state that will live beside the certificates) implements the
protocol and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import NamedTuple, Protocol

from cryptography import x509

from ..errors import ConflictError, InputError, NotFoundError
from ..formats import iso, to_second

STATUSES = ("valid", "revoked", "expired", "all")


class Revocation(NamedTuple):
    """One revoked certificate, as a CRL lists it."""

    serial: str
    revoked_at: datetime
    reason: str  # a usages.REVOCATION_REASONS name


class Record(NamedTuple):
    """One registry row: what was issued, under which profile, to whom, and its fate.

    A named tuple: listings and CRLs read 100,000 of them. Times are aware UTC datetimes
    to the second, as certificates hold them.
    """

    serial: str  # lowercase hex, as formats.serial_hex writes it
    subject: str  # RFC 4514
    profile: str
    contact: str | None
    not_before: datetime
    not_after: datetime
    issued_at: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    renewed_from: str | None = None

    def status_at(self, now: datetime) -> str:
        """``valid``, ``revoked`` or ``expired`` at ``now`` (to the second, as stored)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.not_after < to_second(now) else "valid"

    @property
    def revocation(self) -> Revocation | None:
        if self.revoked_at is None:
            return None
        return Revocation(self.serial, self.revoked_at, self.revocation_reason or "unspecified")

    def to_json(self, now: datetime) -> dict[str, str | None]:
        """The row as `show --json` and `list --json` print it, with its status at ``now``."""
        return {
            "serial": self.serial,
            "subject": self.subject,
            "profile": self.profile,
            "contact": self.contact,
            "not_before": iso(self.not_before),
            "not_after": iso(self.not_after),
            "issued_at": iso(self.issued_at),
            "revoked_at": iso(self.revoked_at) if self.revoked_at else None,
            "revocation_reason": self.revocation_reason,
            "renewed_from": self.renewed_from,
            "status": self.status_at(now),
        }


@dataclass(frozen=True)
class Finding:
    """One problem a check found: what is wrong, and whether it was repaired
    (None: only a person can)."""

    problem: str
    repaired: bool | None = False


class SerialTaken(ConflictError):
    """The registry already holds this serial number (the caller draws another)."""

    def __init__(self, serial: str) -> None:
        super().__init__(f"serial {serial} is already in the registry", code="serial-taken")


class Registry(Protocol):
    """Where a CA keeps what it issued. Implementations are safe to share between threads
    and, where they live on disk or in a database, between processes.

    Errors: NotFoundError for an unknown serial, ConflictError for a serial or revocation
    that is already there, InputError for arguments out of range, StorageError when the
    storage itself fails. A method that raises has changed nothing.
    """

    def add(
        self,
        record: Record,
        certificate: x509.Certificate,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Keep ``record`` and its certificate; run ``then`` (delivering the certificate)
        before committing, so that a failure there records nothing. SerialTaken if the
        serial is there already."""
        ...

    def get(self, serial: str) -> Record | None:
        """The row of ``serial``, or None."""
        ...

    def certificate(self, serial: str) -> x509.Certificate:
        """The certificate issued with ``serial``; NotFoundError if there is none,
        StorageError if it is recorded but cannot be read back."""
        ...

    def records(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> list[Record]:
        """Rows with ``status`` (one of STATUSES) at ``now``, by expiry then serial; with
        ``expiring_within`` days, only those that expire within that many days."""
        ...

    def records_json(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> str:
        """The same rows as a JSON array of Record.to_json objects, one a line."""
        ...

    def revoke(self, serial: str, reason: str, at: datetime) -> Record:
        """Mark ``serial`` revoked; NotFoundError if unknown, ConflictError if it already is."""
        ...

    def next_crl(self, at: datetime) -> tuple[int, list[Revocation]]:
        """A CRL number greater than every one handed out before (committed before it is
        returned, so that no crash can make a number repeat), and every revocation as of
        that number: a higher number never lists less."""
        ...

    def record_crl(self, number: int, crl: x509.CertificateRevocationList) -> None:
        """Keep the CRL signed with ``number`` as the latest (if no higher one is kept)."""
        ...

    def latest_crl(self) -> x509.CertificateRevocationList | None:
        """The CRL with the highest number kept by record_crl, or None."""
        ...

    @property
    def acme(self) -> AcmeState:
        """ACME's state, kept beside the certificates and shared as they are."""
        ...

    def revision(self) -> int:
        """A number that grows whenever a certificate is added or revoked (by any process):
        what a long-lived reader compares to know its cached answers are stale."""
        ...

    def keep_connections(self) -> None:
        """A long-running service uses this registry from now on: keep connections open
        between calls where there are any (SQLite: one per thread), instead of one per call."""
        ...

    def exclusive(self) -> AbstractContextManager[None]:
        """One holder at a time, among every thread and process that uses this registry and
        asks for it (writing a CRL file, repairing); other calls go on meanwhile."""
        ...

    def check(
        self, *, repair: bool, issued_by: Callable[[x509.Certificate], bool]
    ) -> list[Finding]:
        """Every inconsistency in the stored records; with ``repair``, the safe repairs
        made. ``issued_by`` says whether a certificate was signed by this CA's key: only
        such a certificate may be recorded by a repair."""
        ...


def unknown_serial(serial: str) -> NotFoundError:
    return NotFoundError(
        f"no certificate with serial {serial} in this CA's registry", code="unknown-serial"
    )


def already_revoked(serial: str, at: datetime) -> ConflictError:
    return ConflictError(
        f"certificate {serial} was already revoked on {iso(at)}", code="already-revoked"
    )


def listing_filter(status: str, now: datetime, expiring_within: int | None) -> datetime | None:
    """Check a listing's arguments; the end of its "expiring within" window, if it has one
    (past the year 9999: the end of time). InputError for an unknown status, a negative
    window, or a window with a status other than valid or all (it lists valid ones)."""
    if status not in STATUSES:
        raise InputError(f"unknown status {status!r} (known: {', '.join(STATUSES)})")
    if expiring_within is None:
        return None
    if expiring_within < 0:
        raise InputError(
            f"expiring within {expiring_within} days is not a window; give 0 days or more"
        )
    if status not in ("valid", "all"):
        raise InputError(
            f"expiring within {expiring_within} days lists valid certificates; "
            f"it cannot list {status} ones"
        )
    try:
        return to_second(now) + timedelta(days=expiring_within)
    except OverflowError:
        return datetime.max.replace(microsecond=0, tzinfo=timezone.utc)


def listing(
    records: Iterable[Record], status: str, now: datetime, until: datetime | None
) -> list[Record]:
    """The rows of ``records`` in a listing of ``status`` at ``now`` (with ``until``: only
    valid ones that expire before it), by expiry then serial: Python's form of the
    SQL in sqlite.py, for registries that hold their rows in memory."""
    if until is not None:
        chosen = (r for r in records if r.status_at(now) == "valid" and r.not_after < until)
    else:
        chosen = (r for r in records if status == "all" or r.status_at(now) == status)
    return sorted(chosen, key=lambda record: (record.not_after, record.serial))


class Document(NamedTuple):
    """One piece of ACME state as a registry keeps it: a JSON text the ACME layer owns,
    and what it is found by. The registry never reads ``body``."""

    body: str  # JSON text
    key: str | None = None  # unique within its kind when set (an account's key thumbprint)
    account: str | None = None  # the account it belongs to, for listing by account
    expires: datetime | None = None  # after this it is gone: get, find and take skip it


class AcmeState(Protocol):
    """ACME's state (accounts, orders, authorizations, nonces, EAB keys) beside the
    certificates, as documents of a ``kind`` (a short word) under an ``id`` unique within
    it. Shared by every thread and process, and later by every replica, using the
    registry: each call is atomic, and ``update`` is a read-modify-write no other writer
    can interleave with.

    Errors: ConflictError (code ``acme-taken``) when an id, or a key within the kind, is
    taken already; NotFoundError when ``update`` finds nothing; StorageError when the
    storage fails. A call that raises has changed nothing.
    """

    def create(self, kind: str, id: str, document: Document) -> None:
        """Keep ``document`` as ``kind``/``id``."""
        ...

    def get(self, kind: str, id: str, *, now: datetime) -> Document | None:
        """The document, or None if there is none or it expired before ``now``."""
        ...

    def find(
        self, kind: str, *, now: datetime, key: str | None = None, account: str | None = None
    ) -> list[tuple[str, Document]]:
        """(id, document) of the unexpired documents of ``kind`` with this ``key`` (at most
        one) or belonging to ``account`` (at most one of the two; neither: every one of
        ``kind``, for listings such as the EAB keys), oldest first."""
        ...

    def update(
        self, kind: str, id: str, change: Callable[[Document], Document], *, now: datetime
    ) -> Document:
        """Replace the unexpired document by ``change(document)`` in one transaction and
        return the new one; if ``change`` raises, nothing changes and the error passes on."""
        ...

    def take(self, kind: str, id: str, *, now: datetime) -> bool:
        """Remove the document; whether it was there and unexpired (a nonce is good once,
        among all processes: of two takers, one gets True)."""
        ...

    def remove(self, kind: str, id: str) -> bool:
        """Remove the document; whether there was one."""
        ...

    def purge(self, *, now: datetime) -> int:
        """Remove every document that expired before ``now``; how many."""
        ...


def acme_taken(kind: str, what: str) -> ConflictError:
    return ConflictError(f"{kind} {what} is taken already", code="acme-taken")


def acme_unknown(kind: str, id: str) -> NotFoundError:
    return NotFoundError(f"no {kind} {id} (or it expired)", code="acme-unknown")


def acme_lookup(key: str | None, account: str | None) -> None:
    """Check ``find``'s arguments: InputError for a key and an account at once."""
    if key is not None and account is not None:
        raise InputError("find ACME documents by key or by account, not by both")


def acme_expired(document: Document, now: datetime) -> bool:
    """Whether ``document`` expired before ``now`` (InputError for a naive time: it
    compares with nothing the registry keeps)."""
    aware(now)
    return document.expires is not None and aware(document.expires) < now


def aware(moment: datetime) -> datetime:
    """``moment`` if it is aware; InputError if it is naive."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InputError(f"{moment} has no time zone; ACME state keeps aware UTC times")
    return moment
