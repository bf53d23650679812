"""The registry of a CA folder: a SQLite database (minica.db) with one row per issued
certificate and the CRL numbers, and each certificate as certs/<serial>.crt.

SQLite (WAL, busy timeout) makes every change atomic and safe under concurrent minica
processes and threads (each call has its own connection), and keeps the cost of a
signature independent of how much was signed before. The schema has a version
(``PRAGMA user_version``): an older registry is upgraded in place the first time it is
written to, a newer one is refused.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..atomic import is_leftover, write_atomic
from ..errors import StorageError
from ..formats import iso, parse_iso, serial_hex
from . import (
    AcmeState,
    Finding,
    Record,
    Revocation,
    SerialTaken,
    already_revoked,
    listing_filter,
    unknown_serial,
)
from .kept import KeptConnections
from .sqlite_acme import ACME_SCHEMA, SqliteAcmeState
from .sqlite_connections import Connection, writer_lock

DATABASE = "minica.db"
CERTIFICATES = "certs"
RECOVERED_PROFILE = "unknown (recovered by doctor)"

SCHEMA_VERSION = 4
# Schema 3: a number that grows with every certificate added or revoked, for long-lived
# readers (the OCSP responder) to see changes made by other processes with one cheap read.
_REVISION = (
    "CREATE TABLE revision (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)",
    "INSERT INTO revision VALUES (1, 0)",
    "CREATE TRIGGER certificate_added AFTER INSERT ON certificates "
    "BEGIN UPDATE revision SET value = value + 1; END",
    "CREATE TRIGGER certificate_revoked AFTER UPDATE OF revoked_at ON certificates "
    "BEGIN UPDATE revision SET value = value + 1; END",
)
_SCHEMA = """
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
    issued_at TEXT NOT NULL,
    next_update TEXT,                 -- schema 2: the latest CRL itself, for serving it
    der BLOB
);
PRAGMA journal_mode = WAL;            -- readers never wait for a signer; persists in the file
""" + "".join(f"{statement};\n" for statement in (*_REVISION, *ACME_SCHEMA))
# Upgrades: MIGRATIONS[n] takes a registry of version n to n + 1, in one transaction.
MIGRATIONS = {
    1: (
        "ALTER TABLE crls ADD COLUMN next_update TEXT",
        "ALTER TABLE crls ADD COLUMN der BLOB",
    ),
    2: _REVISION,
    3: ACME_SCHEMA,  # schema 4: ACME's documents (sqlite_acme.py); no trigger: no revision
}

_COLUMNS = ", ".join(Record._fields)
_INSERT = f"INSERT INTO certificates ({_COLUMNS}) VALUES ({', '.join('?' * len(Record._fields))})"
_STATUS_WHERE = {
    "valid": "revoked_at IS NULL AND not_after >= :now",
    "revoked": "revoked_at IS NOT NULL",
    "expired": "revoked_at IS NULL AND not_after < :now",
    "all": "1",
}
# Record.status_at in SQL, and a row as Record.to_json shows it, built by SQLite: a
# listing of 100,000 rows then never becomes a million Python strings (twice as fast).
_STATUS = (
    "CASE WHEN revoked_at IS NOT NULL THEN 'revoked' "
    "WHEN not_after < :now THEN 'expired' ELSE 'valid' END"
)
_JSON_ROW = "json_object({}, 'status', {})".format(
    ", ".join(f"'{name}', {name}" for name in Record._fields), _STATUS
)


def _to_row(record: Record) -> tuple[str | None, ...]:
    return (
        *record[:4],
        iso(record.not_before),
        iso(record.not_after),
        iso(record.issued_at),
        iso(record.revoked_at) if record.revoked_at else None,
        record.revocation_reason,
        record.renewed_from,
    )


def _from_row(row: tuple[str, ...]) -> Record:
    serial, subject, profile, contact, not_before, not_after, issued, revoked, reason, old = row
    return Record(
        serial,
        subject,
        profile,
        contact,
        parse_iso(not_before),
        parse_iso(not_after),
        parse_iso(issued),
        parse_iso(revoked) if revoked else None,
        reason,
        old,
    )


class SqliteRegistry:
    """The Registry protocol on the SQLite file and certs/ folder of one CA folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / DATABASE
        self.certificates = folder / CERTIFICATES
        self._current = False  # the schema was found to be this version's
        self._acme = SqliteAcmeState(self)
        self._writer = writer_lock(self.path)
        self._kept: KeptConnections[Connection] | None = None

    def keep_connections(self) -> None:
        self._kept = self._kept or KeptConnections()

    @classmethod
    def create(cls, folder: Path) -> SqliteRegistry:
        """A new, empty registry in ``folder`` (its database and certs/)."""
        (folder / CERTIFICATES).mkdir(mode=0o755, exist_ok=True)
        try:
            with closing(sqlite3.connect(folder / DATABASE)) as connection:
                connection.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        except sqlite3.Error as error:
            path = folder / DATABASE
            problem = f"cannot create the registry {path}: {_explain(error, path)}"
            raise StorageError(problem) from None
        return cls(folder)

    # Connections, transactions and the schema.

    @contextmanager
    def _connection(
        self, write: bool = False, durable: bool = True
    ) -> Iterator[sqlite3.Connection]:
        """A connection; with ``write``, one transaction holding the write lock from the
        start, so concurrent writers queue instead of failing half-way (this process's on
        ``writer_lock``). Commits unless the block raises. Not ``durable``: the commit does
        not wait for the disk (WAL keeps it atomic; a power failure may lose it), for what a
        client simply asks again."""
        try:
            file = os.stat(self.path)
        except FileNotFoundError:
            raise StorageError(f"the registry {self.path} is missing") from None
        writable = os.access(self.folder, os.W_OK)
        if write and not writable:
            raise StorageError(f"cannot write the registry {self.path}: its folder is read-only")
        # mode=rw never creates a missing file; in a read-only folder WAL cannot make its
        # index file, so the file is read as immutable.
        mode = "mode=rw" if writable else "immutable=1"
        identity = (file.st_dev, file.st_ino, mode)
        connection = (self._kept.take(identity) if self._kept else None) or self._connect(mode)
        broken = False
        try:
            synchronous = "FULL" if durable else "NORMAL"
            if connection.synchronous != synchronous:
                connection.execute(f"PRAGMA synchronous = {synchronous}")
                connection.synchronous = synchronous
            if not self._current:
                self._upgrade(connection, writable)
            if write:
                with self._writer:
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        yield connection
                        connection.execute("COMMIT")
                    finally:
                        if connection.in_transaction:  # the block raised: nothing is kept
                            connection.execute("ROLLBACK")
            else:
                yield connection
        except sqlite3.Error as error:
            broken = True  # in a state unknown: not to be used again
            raise StorageError(f"registry {self.path}: {_explain(error, self.path)}") from None
        finally:
            if self._kept is not None and not broken:
                self._kept.give_back(connection, identity)
            else:
                connection.close()

    def _connect(self, mode: str) -> Connection:
        try:
            # isolation_level=None: no implicit transactions; BEGIN IMMEDIATE is explicit.
            # check_same_thread=False: a kept connection is used by one thread at a time,
            # and closed by whichever thread ends the process.
            return sqlite3.connect(
                f"file:{self.path}?{mode}",
                factory=Connection,
                timeout=30,
                isolation_level=None,
                uri=True,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise StorageError(f"cannot open the registry {self.path}: {error}") from None

    def _upgrade(self, connection: sqlite3.Connection, writable: bool) -> None:
        """Bring an older schema to this version in one transaction; refuse a newer one.
        A registry that cannot be written is read as it is (its tables hold the rows)."""
        version = self.schema_version(connection)
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"the registry {self.path} has schema version {version}, newer than this "
                f"minica knows ({SCHEMA_VERSION})",
                hint="upgrade minica to use this CA",
                code="schema-newer",
            )
        if version < SCHEMA_VERSION and writable:
            connection.execute("BEGIN IMMEDIATE")
            version = self.schema_version(connection)  # another process may have done it
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    connection.execute(statement)
                version += 1
                connection.execute(f"PRAGMA user_version = {version}")
            connection.execute("COMMIT")
        self._current = version == SCHEMA_VERSION

    @staticmethod
    def schema_version(connection: sqlite3.Connection) -> int:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        return int(version)

    def version(self) -> int:
        """The schema version of the file as it is now (upgrading it if it can)."""
        with self._connection() as connection:
            return self.schema_version(connection)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A lock on the CA folder (flock): one holder at a time among every process and
        thread, released however the block ends; the registry stays usable inside."""
        descriptor = os.open(self.folder, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    # Certificates.

    def add(
        self,
        record: Record,
        certificate: x509.Certificate,
        then: Callable[[], None] | None = None,
    ) -> None:
        path = self._file(record.serial)
        written = False
        try:
            with self._connection(write=True) as connection:
                try:
                    connection.execute(_INSERT, _to_row(record))
                except sqlite3.IntegrityError:
                    raise SerialTaken(record.serial) from None
                self._write_certificate(path, certificate)
                written = True
                if then is not None:
                    then()
        except BaseException:
            if written:  # the commit failed after the file was written: take it back
                path.unlink(missing_ok=True)
            raise

    def add_many(self, rows: Iterable[Record]) -> None:
        """Insert many rows without certificate files, in one transaction (benchmarks that
        need a big registry fast); SerialTaken if any serial is there, and then none is."""
        with self._connection(write=True) as connection:
            try:
                connection.executemany(_INSERT, map(_to_row, rows))
            except sqlite3.IntegrityError as error:
                raise StorageError(f"registry {self.path}: {error}") from None

    def _file(self, serial: str) -> Path:
        return self.certificates / f"{serial}.crt"

    def _write_certificate(self, path: Path, certificate: x509.Certificate) -> None:
        try:
            self.certificates.mkdir(mode=0o755, exist_ok=True)  # git keeps no empty certs/
            write_atomic(path, certificate.public_bytes(Encoding.PEM))
        except OSError as error:
            raise StorageError(f"cannot write to {self.certificates}: {error.strerror}") from None

    def get(self, serial: str) -> Record | None:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?", (serial,)
            ).fetchone()
        return _from_row(row) if row else None

    def certificate(self, serial: str) -> x509.Certificate:
        if self.get(serial) is None:
            raise unknown_serial(serial)
        path = self._file(serial)
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except OSError as error:
            raise StorageError(
                f"certificate {serial} is recorded, but {path} cannot be read: {error.strerror}",
                code="certificate-file",
            ) from None
        except ValueError:
            raise StorageError(
                f"certificate {serial} is recorded, but {path} is damaged",
                code="certificate-file",
            ) from None
        if serial_hex(certificate.serial_number) != serial:
            raise StorageError(f"{path} holds another certificate", code="certificate-file")
        return certificate

    # Listings.

    def records(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> list[Record]:
        return list(map(_from_row, self._select(_COLUMNS, status, now, expiring_within)))

    def records_json(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> str:
        rows = self._select(_JSON_ROW, status, now, expiring_within)
        return "[" + ",\n".join(row for (row,) in rows) + "]"

    def _select(
        self, columns: str, status: str, now: datetime, expiring_within: int | None
    ) -> list[tuple[str, ...]]:
        until = listing_filter(status, now, expiring_within)
        where = _STATUS_WHERE[status]
        parameters = {"now": iso(now)}
        if until is not None:
            where = f"{_STATUS_WHERE['valid']} AND not_after < :until"
            parameters["until"] = iso(until)
        with self._connection() as connection:
            return connection.execute(
                f"SELECT {columns} FROM certificates WHERE {where} ORDER BY not_after, serial",
                parameters,
            ).fetchall()

    # Revocation and CRLs.

    def revoke(self, serial: str, reason: str, at: datetime) -> Record:
        with self._connection(write=True) as connection:
            row = connection.execute(
                "SELECT revoked_at FROM certificates WHERE serial = ?", (serial,)
            ).fetchone()
            if row is None:
                raise unknown_serial(serial)
            if row[0] is not None:
                raise already_revoked(serial, parse_iso(row[0]))
            connection.execute(
                "UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?",
                (iso(at), reason, serial),
            )
            updated = connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE serial = ?", (serial,)
            ).fetchone()
        return _from_row(updated)

    def next_crl(self, at: datetime) -> tuple[int, list[Revocation]]:
        with self._connection(write=True) as connection:
            (last,) = connection.execute("SELECT coalesce(max(number), 0) FROM crls").fetchone()
            connection.execute(
                "INSERT INTO crls (number, issued_at) VALUES (?, ?)", (last + 1, iso(at))
            )
            rows = connection.execute(
                "SELECT serial, revoked_at, coalesce(revocation_reason, 'unspecified') "
                "FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial"
            ).fetchall()
        return int(last) + 1, [Revocation(s, parse_iso(at), reason) for s, at, reason in rows]

    def record_crl(self, number: int, crl: x509.CertificateRevocationList) -> None:
        next_update = crl.next_update_utc
        with self._connection(write=True) as connection:
            # Only the latest CRL is kept whole: one of 100,000 entries is 4 MB.
            connection.execute("UPDATE crls SET der = NULL WHERE number < ?", (number,))
            connection.execute(
                "UPDATE crls SET der = ?, next_update = ? WHERE number = ? AND NOT EXISTS "
                "(SELECT 1 FROM crls WHERE number > ? AND der IS NOT NULL)",
                (
                    crl.public_bytes(Encoding.DER),
                    iso(next_update) if next_update else None,
                    number,
                    number,
                ),
            )

    @property
    def acme(self) -> AcmeState:
        return self._acme

    def revision(self) -> int:
        with self._connection() as connection:
            if self.schema_version(connection) < 3:  # a read-only registry from before
                (count,) = connection.execute(
                    "SELECT count(*) + count(revoked_at) FROM certificates"
                ).fetchone()
                return int(count)
            (value,) = connection.execute("SELECT value FROM revision").fetchone()
        return int(value)

    def latest_crl(self) -> x509.CertificateRevocationList | None:
        with self._connection() as connection:
            if self.schema_version(connection) < 2:
                return None  # a read-only registry from before CRLs were kept
            row = connection.execute(
                "SELECT der FROM crls WHERE der IS NOT NULL ORDER BY number DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        try:
            return x509.load_der_x509_crl(row[0])
        except ValueError:
            raise StorageError(f"registry {self.path}: the latest CRL is damaged") from None

    # Checks and repairs (minica doctor).

    def check(
        self, *, repair: bool, issued_by: Callable[[x509.Certificate], bool]
    ) -> list[Finding]:
        integrity = self._integrity()
        if integrity:
            return integrity
        with self._connection(write=True) as connection:
            findings = self._leftovers(repair)
            rows = {serial for (serial,) in connection.execute("SELECT serial FROM certificates")}
            folder = self.certificates
            files = {p.stem: p for p in folder.glob("*.crt")} if folder.is_dir() else {}
            for serial in sorted(rows - files.keys()):
                problem = f"registry row {serial} has no certificate file {self._file(serial)}"
                findings.append(Finding(problem, None))
            for serial in sorted(rows & files.keys()):
                findings += self._damaged(serial)
            for serial in sorted(files.keys() - rows):
                findings.append(self._orphan(files[serial], connection, repair, issued_by))
        return findings

    def _integrity(self) -> list[Finding]:
        if not self.path.is_file():
            return [Finding(f"the registry {self.path} is missing", None)]
        try:
            with self._connection() as connection:
                (integrity,) = connection.execute("PRAGMA integrity_check").fetchone()
        except StorageError as error:
            return [Finding(f"the registry cannot be read: {error}", None)]
        return [] if integrity == "ok" else [Finding(f"the registry is damaged: {integrity}", None)]

    def _leftovers(self, repair: bool) -> list[Finding]:
        folder = self.certificates
        found = sorted(p for p in folder.iterdir() if is_leftover(p)) if folder.is_dir() else []
        if repair:
            for path in found:
                path.unlink(missing_ok=True)
        return [Finding(f"{path} is left over from an interrupted write", repair) for path in found]

    def _damaged(self, serial: str) -> list[Finding]:
        try:
            self.certificate(serial)
        except StorageError as error:
            return [Finding(str(error), None)]
        return []

    def _orphan(
        self,
        path: Path,
        connection: sqlite3.Connection,
        repair: bool,
        issued_by: Callable[[x509.Certificate], bool],
    ) -> Finding:
        """A certificate file with no row: signed, but the signing died before its commit
        — if this CA's key really signed it."""
        try:
            certificate = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError):
            if repair:
                path.unlink(missing_ok=True)
            return Finding(f"{path} is not a readable certificate and has no registry row", repair)
        if serial_hex(certificate.serial_number) != path.stem:
            held = serial_hex(certificate.serial_number)
            return Finding(f"{path} holds certificate {held}", None)
        if not issued_by(certificate):
            return Finding(f"{path} has no registry row and was not signed by this CA", None)
        if repair:  # keep a record of everything the CA key signed, whoever received it
            record = Record(
                serial=path.stem,
                subject=certificate.subject.rfc4514_string(),
                profile=RECOVERED_PROFILE,
                contact=None,
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                issued_at=certificate.not_valid_before_utc,
            )
            connection.execute(_INSERT, _to_row(record))
        return Finding(f"{path} has no registry row (a signing was interrupted)", repair)


def _explain(error: sqlite3.Error, path: Path) -> str:
    """SQLite's message, or the reason behind it when the disk is full."""
    try:
        full = os.statvfs(path.parent).f_bavail == 0
    except OSError:
        full = False
    return "no space left on device" if full else str(error)
