"""The registry: a SQLite database with one row per issued certificate, and the CRL numbers.

SQLite (WAL, busy timeout) makes every change atomic and safe under concurrent minica
processes, and keeps the cost of a signature independent of how much was signed before.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from .errors import MinicaError, StoreError
from .formats import iso

SCHEMA = """
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,          -- lowercase hex, as in certs/<serial>.crt
    subject TEXT NOT NULL,            -- RFC 4514
    profile TEXT NOT NULL,
    contact TEXT,
    not_before TEXT NOT NULL,         -- ISO 8601 UTC: text order is time order
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT,
    renewed_from TEXT REFERENCES certificates(serial)
);
CREATE INDEX certificates_not_after ON certificates(not_after);
CREATE INDEX certificates_revoked_at ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE crls (
    number INTEGER PRIMARY KEY,       -- RFC 5280 cRLNumber: only ever grows
    issued_at TEXT NOT NULL
);
PRAGMA user_version = 1;
PRAGMA journal_mode = WAL;            -- readers never wait for a signer; persists in the file
"""

STATUSES = ("valid", "revoked", "expired", "all")
_STATUS_WHERE = {
    "valid": "revoked_at IS NULL AND not_after >= :now",
    "revoked": "revoked_at IS NOT NULL",
    "expired": "revoked_at IS NULL AND not_after < :now",
    "all": "1",
}


# (serial, revoked_at, reason name) as the registry holds them: what a CRL lists.
Revocation = tuple[str, str, str]


class Record(NamedTuple):
    """One registry row: what was issued, under which profile, to whom, and its fate.

    A named tuple, as sqlite hands rows out: a CRL or a listing reads 100,000 of them."""

    serial: str
    subject: str
    profile: str
    contact: str | None
    not_before: str
    not_after: str
    issued_at: str
    revoked_at: str | None = None
    revocation_reason: str | None = None
    renewed_from: str | None = None

    def status_at(self, now: str) -> str:
        """The status at ``now``, an ISO time as the registry writes them (_STATUS is the
        same rule in SQL)."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.not_after < now else "valid"

    def to_json(self, now: str) -> dict[str, str | None]:
        """The row as `show --json` prints it, with its status at ``now``: the object
        Registry.records_json has SQLite build for each row of `list --json`."""
        return dict(zip(_JSON_KEYS, (*self, self.status_at(now)), strict=True))


_COLUMNS = ", ".join(Record._fields)
_INSERT = f"INSERT INTO certificates ({_COLUMNS}) VALUES ({', '.join('?' * len(Record._fields))})"
_JSON_KEYS = (*Record._fields, "status")
# Record.status_at in SQL, and a row as the JSON forms show it, built by SQLite: a listing
# of 100,000 rows then never becomes a million Python strings (twice as fast).
_STATUS = (
    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN not_after < :now THEN 'expired' ELSE 'valid' END"
)
_JSON_ROW = "json_object({}, 'status', {})".format(
    ", ".join(f"'{name}', {name}" for name in Record._fields), _STATUS
)


def _explain(error: sqlite3.Error, path: Path) -> str:
    """SQLite's message, or the reason behind it when the disk is full."""
    try:
        full = os.statvfs(path.parent).f_bavail == 0
    except OSError:
        full = False
    return "no space left on device" if full else str(error)


def insert(connection: sqlite3.Connection, record: Record) -> None:
    """Insert one row within an open transaction; SerialTaken if the serial is there."""
    try:
        connection.execute(
            _INSERT,
            record,
        )
    except sqlite3.IntegrityError:
        raise SerialTaken(record.serial) from None


class SerialTaken(StoreError):
    """The registry already holds this serial number (the caller draws another)."""

    def __init__(self, serial: str) -> None:
        super().__init__(f"serial {serial} is already in the registry")


class Registry:
    """The registry file of one CA folder."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> Registry:
        connection = sqlite3.connect(path)
        try:
            connection.executescript(SCHEMA)
        finally:
            connection.close()
        return cls(path)

    @contextmanager
    def _connection(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """A connection; with ``write``, one transaction holding the write lock from the start,
        so concurrent writers queue instead of failing half-way. Commits unless it raises."""
        if not self.path.is_file():
            raise StoreError(f"the registry {self.path} is missing")
        writable = os.access(self.path.parent, os.W_OK)
        if write and not writable:
            raise StoreError(f"cannot write the registry {self.path}: its folder is read-only")
        try:
            # isolation_level=None: no implicit transactions; BEGIN IMMEDIATE is explicit.
            # In a read-only folder, WAL mode cannot make its index file: read as immutable.
            target = str(self.path) if writable else f"file:{self.path}?immutable=1"
            connection = sqlite3.connect(target, timeout=30, isolation_level=None, uri=not writable)
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the registry {self.path}: {error}") from None
        try:
            connection.execute("PRAGMA synchronous = FULL")
            if write:
                connection.execute("BEGIN IMMEDIATE")
            yield connection
            if write:
                connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise StoreError(f"registry {self.path}: {_explain(error, self.path)}") from None
        finally:
            connection.close()  # an open transaction is rolled back

    def add(self, record: Record, then: Callable[[], None] = lambda: None) -> None:
        """Insert ``record``, run ``then`` (writing the certificate file), and commit both
        or neither. Raises SerialTaken if the serial is already there."""
        with self.transaction() as connection:
            insert(connection, record)
            then()

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction, holding the registry's write lock from its start."""
        return self._connection(write=True)

    def add_many(self, records: Iterable[Record]) -> None:
        """Insert many rows in one transaction (imports, and benchmarks that need a big
        registry fast); StoreError if any serial is already there, and then none is added."""
        with self._connection(write=True) as connection:
            try:
                connection.executemany(
                    _INSERT,
                    records,
                )
            except sqlite3.IntegrityError as error:
                raise StoreError(f"registry {self.path}: {error}") from None

    def get(self, serial: str) -> Record | None:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?", (serial,)
            ).fetchone()
        return Record._make(row) if row else None

    def records(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> list[Record]:
        """Rows with ``status`` (see STATUSES) at ``now``, by expiry; with ``expiring_within``
        days, only valid ones that expire within that many days."""
        return list(map(Record._make, self._select(_COLUMNS, status, now, expiring_within)))

    def records_json(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> str:
        """The same rows as ``records``, as a JSON array of Record.to_json objects, one a line."""
        rows = self._select(_JSON_ROW, status, now, expiring_within)
        return "[" + ",\n".join(row for (row,) in rows) + "]"

    def _select(
        self, columns: str, status: str, now: datetime, expiring_within: int | None
    ) -> list[tuple]:
        where = _STATUS_WHERE[status]
        parameters = {"now": iso(now)}
        if expiring_within is not None:
            if expiring_within < 0:
                raise MinicaError(f"--expiring {expiring_within}: give 0 days or more")
            where = f"{_STATUS_WHERE['valid']} AND not_after < :until"
            try:
                parameters["until"] = iso(now + timedelta(days=expiring_within))
            except OverflowError:  # past the year 9999: everything valid expires before
                parameters["until"] = "9999-12-31T23:59:59Z"
        with self._connection() as connection:
            return connection.execute(
                f"SELECT {columns} FROM certificates WHERE {where} ORDER BY not_after, serial",
                parameters,
            ).fetchall()

    def revoke(self, serial: str, reason: str, at: datetime) -> Record:
        """Mark ``serial`` revoked; MinicaError if it is unknown or already revoked."""
        with self._connection(write=True) as connection:
            row = connection.execute(
                "SELECT revoked_at FROM certificates WHERE serial = ?", (serial,)
            ).fetchone()
            if row is None:
                raise MinicaError(f"no certificate with serial {serial} in this CA's registry")
            if row[0] is not None:
                raise MinicaError(f"certificate {serial} was already revoked on {row[0]}")
            connection.execute(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?",
                (iso(at), reason, serial),
            )
        record = self.get(serial)
        assert record is not None
        return record

    def next_crl(self, at: datetime) -> tuple[int, list[Revocation]]:
        """A CRL number greater than every one handed out before, and the revocations as
        of that number, read in one transaction: a higher number never lists less. The
        number is committed before use, so no crash can make a number repeat."""
        with self._connection(write=True) as connection:
            (last,) = connection.execute("SELECT coalesce(max(number), 0) FROM crls").fetchone()
            connection.execute("INSERT INTO crls VALUES (?, ?)", (last + 1, iso(at)))
            revocations = connection.execute(
                "SELECT serial, revoked_at, coalesce(revocation_reason, 'unspecified') "
                "FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial"
            ).fetchall()
        return int(last) + 1, revocations
