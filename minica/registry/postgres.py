"""The registry in a PostgreSQL database: one row per issued certificate with the
certificate itself (DER, no certs/ files), the CRL numbers, and ACME's state
(postgres_acme.py), shared by every process and every machine that uses the database.

Each call is one transaction (READ COMMITTED) on its own connection, or on the thread's
kept one (``keep_connections``). What concurrent writers must never share is taken from
rows they lock: the next CRL number from a counter row, the revision from another; serials
are unique by primary key. The schema has a version (table ``minica_schema``): a newer one
is refused. Errors of the database become StorageError, saying which database (never its
password).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from ..errors import StorageError
from ..formats import serial_hex, to_second
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
from .postgres_acme import ACME_SCHEMA, PostgresAcmeState

Connection = psycopg.Connection[tuple[Any, ...]]

SCHEMA_VERSION = 1
# Times are timestamptz (to the second, as certificates hold them): their order is time
# order, as the ISO text of SQLite's. Serials and text compare by bytes (COLLATE "C"), as
# SQLite's do, so that listings come in the same order.
_SCHEMA = (
    "CREATE TABLE minica_schema (version integer NOT NULL)",
    f"INSERT INTO minica_schema VALUES ({SCHEMA_VERSION})",
    "CREATE TABLE certificates ("
    ' serial text COLLATE "C" PRIMARY KEY,'
    " subject text NOT NULL, profile text NOT NULL, contact text,"
    " not_before timestamptz NOT NULL, not_after timestamptz NOT NULL,"
    " issued_at timestamptz NOT NULL, revoked_at timestamptz, revocation_reason text,"
    # No foreign key on renewed_from: SQLite's is not enforced (foreign_keys is off), and
    # both must accept the same rows.
    ' renewed_from text COLLATE "C",'
    " der bytea NOT NULL)",
    "CREATE INDEX certificates_not_after ON certificates(not_after, serial)",
    "CREATE INDEX certificates_revoked_at ON certificates(revoked_at) WHERE revoked_at IS NOT NULL",
    # The CRL numbers spent; only the latest CRL is kept whole.
    "CREATE TABLE crls (number bigint PRIMARY KEY, issued_at timestamptz NOT NULL,"
    " next_update timestamptz, der bytea)",
    # Counters, one row each: a writer locks its row until it commits, so no two share
    # a value and a reader sees a value only with the rows it counts.
    "CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL)",
    "INSERT INTO counters VALUES ('crl', 0), ('revision', 0)",
    *ACME_SCHEMA,
)
# Any constant: the advisory lock of ``exclusive`` (one per database).
_EXCLUSIVE_LOCK = 0x6D696E696361  # "minica"

_COLUMNS = ", ".join(Record._fields)
_INSERT = (
    f"INSERT INTO certificates ({_COLUMNS}, der) "
    f"VALUES ({', '.join(['%s'] * (len(Record._fields) + 1))})"
)
_STATUS_WHERE = {
    "valid": "revoked_at IS NULL AND not_after >= %(now)s",
    "revoked": "revoked_at IS NOT NULL",
    "expired": "revoked_at IS NULL AND not_after < %(now)s",
    "all": "true",
}
_BUMP = "UPDATE counters SET value = value + 1 WHERE name = %s RETURNING value"


def _seconds(moment: datetime | None) -> datetime | None:
    return to_second(moment).astimezone(timezone.utc) if moment is not None else None


def _to_row(record: Record, der: bytes) -> tuple[Any, ...]:
    return (
        *record[:4],
        _seconds(record.not_before),
        _seconds(record.not_after),
        _seconds(record.issued_at),
        _seconds(record.revoked_at),
        record.revocation_reason,
        record.renewed_from,
        der,
    )


def _from_row(row: tuple[Any, ...]) -> Record:
    return Record(*row)


def describe(dsn: str) -> str:
    """The database ``dsn`` names, for messages: user, host, port and name, never a
    password."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "PostgreSQL (an unreadable address)"
    user, host = parts.get("user"), parts.get("host") or "localhost"
    port, name = parts.get("port"), parts.get("dbname") or user or ""
    where = f"{user}@{host}" if user else str(host)
    return f"postgresql://{where}{f':{port}' if port else ''}/{name}"


class PostgresRegistry:
    """The Registry protocol on one PostgreSQL database."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.name = describe(dsn)
        self._current = False  # the schema was found to be this version's
        self._kept: KeptConnections[Connection] | None = None
        self._acme = PostgresAcmeState(self)

    def keep_connections(self) -> None:
        self._kept = self._kept or KeptConnections()

    @classmethod
    def create(cls, dsn: str) -> PostgresRegistry:
        """A new, empty registry in the database ``dsn`` (which must hold none yet)."""
        registry = cls(dsn)
        with registry._connection(write=True, schema=False) as connection:
            exists = connection.execute("SELECT to_regclass('minica_schema')").fetchone()
            if exists is not None and exists[0] is not None:
                raise StorageError(
                    f"the database {registry.name} holds a registry already", code="exists"
                )
            for statement in _SCHEMA:
                connection.execute(statement)
        registry._current = True
        return registry

    # Connections, transactions and the schema.

    @contextmanager
    def _connection(
        self, write: bool = False, durable: bool = True, schema: bool = True
    ) -> Iterator[Connection]:
        """A connection in one transaction, committed unless the block raises (then rolled
        back: nothing is kept). Not ``durable``: the commit does not wait for the disk, for
        what a client simply asks again. ``write`` is for the reader: every call is a
        transaction, PostgreSQL orders writers by the rows they lock."""
        del write  # the same transaction either way; kept for the signature
        connection = (self._kept.take() if self._kept else None) or self._connect()
        broken = False
        try:
            with connection.transaction():
                if not durable:
                    connection.execute("SET LOCAL synchronous_commit = off")
                if schema and not self._current:
                    self._check_schema(connection)
                yield connection
        except psycopg.Error as error:
            broken = True  # in a state unknown: not to be used again
            raise StorageError(f"registry {self.name}: {_message(error)}") from None
        finally:
            if self._kept is not None and not broken and not connection.closed:
                self._kept.give_back(connection)
            else:
                connection.close()

    def _connect(self) -> Connection:
        try:
            # autocommit: transactions are explicit (connection.transaction()).
            connection = psycopg.connect(self.dsn, autocommit=True, connect_timeout=30)
        except psycopg.Error as error:
            raise StorageError(
                f"cannot reach the registry {self.name}: {_message(error)}",
                hint="check that the PostgreSQL server is up and the address is right",
                code="registry-unreachable",
            ) from None
        connection.execute("SET TIME ZONE 'UTC'")  # timestamps come back as UTC datetimes
        return connection

    def _check_schema(self, connection: Connection) -> None:
        version = self.schema_version(connection)
        if version is None:
            raise StorageError(
                f"the database {self.name} holds no minica registry",
                hint="make one with PostgresRegistry.create",
                code="no-registry",
            )
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"the registry {self.name} has schema version {version}, newer than this "
                f"minica knows ({SCHEMA_VERSION})",
                hint="upgrade minica to use this CA",
                code="schema-newer",
            )
        self._current = True

    @staticmethod
    def schema_version(connection: Connection) -> int | None:
        (table,) = connection.execute("SELECT to_regclass('minica_schema')").fetchone() or (None,)
        if table is None:
            return None
        row = connection.execute("SELECT max(version) FROM minica_schema").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def version(self) -> int | None:
        """The schema version of the database as it is now (None: it holds no registry)."""
        with self._connection(schema=False) as connection:
            return self.schema_version(connection)

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """An advisory lock on the database, held by a connection of its own: one holder
        at a time among every process and machine; the registry stays usable inside."""
        connection = self._connect()
        try:
            try:
                connection.execute("SELECT pg_advisory_lock(%s)", (_EXCLUSIVE_LOCK,))
            except psycopg.Error as error:
                raise StorageError(f"registry {self.name}: {_message(error)}") from None
            yield
        finally:
            connection.close()  # ending the session releases the lock

    # Certificates.

    def add(
        self,
        record: Record,
        certificate: x509.Certificate,
        then: Callable[[], None] | None = None,
    ) -> None:
        row = _to_row(record, certificate.public_bytes(Encoding.DER))
        with self._connection(write=True) as connection:
            try:
                with connection.transaction():  # a savepoint: the error leaves it usable
                    connection.execute(_INSERT, row)
            except pg_errors.UniqueViolation:
                raise SerialTaken(record.serial) from None
            if then is not None:
                then()
            # Last: the revision row stays locked until the commit, so hold it briefly.
            connection.execute(_BUMP, ("revision",))

    def get(self, serial: str) -> Record | None:
        with self._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE serial = %s", (serial,)
            ).fetchone()
        return _from_row(row) if row else None

    def certificate(self, serial: str) -> x509.Certificate:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT der FROM certificates WHERE serial = %s", (serial,)
            ).fetchone()
        if row is None:
            raise unknown_serial(serial)
        try:
            certificate = x509.load_der_x509_certificate(bytes(row[0]))
        except ValueError:
            raise StorageError(
                f"certificate {serial} is recorded, but damaged", code="certificate-file"
            ) from None
        if serial_hex(certificate.serial_number) != serial:
            raise StorageError(
                f"the row of {serial} holds another certificate", code="certificate-file"
            )
        return certificate

    # Listings.

    def records(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> list[Record]:
        return list(map(_from_row, self._select(status, now, expiring_within)))

    def records_json(
        self, status: str = "all", *, now: datetime, expiring_within: int | None = None
    ) -> str:
        # Built here, as SQLite's json_object writes it (compact, UTF-8 unescaped):
        # PostgreSQL's json functions space their output differently.
        rows = self.records(status, now=now, expiring_within=expiring_within)
        return "[" + ",\n".join(map(_json_line(now), rows)) + "]"

    def _select(
        self, status: str, now: datetime, expiring_within: int | None
    ) -> list[tuple[Any, ...]]:
        until = listing_filter(status, now, expiring_within)
        where = _STATUS_WHERE[status]
        parameters = {"now": _seconds(now)}
        if until is not None:
            where = f"{_STATUS_WHERE['valid']} AND not_after < %(until)s"
            parameters["until"] = until
        with self._connection() as connection:
            return connection.execute(
                f"SELECT {_COLUMNS} FROM certificates WHERE {where} ORDER BY not_after, serial",
                parameters,
            ).fetchall()

    # Revocation and CRLs.

    def revoke(self, serial: str, reason: str, at: datetime) -> Record:
        with self._connection(write=True) as connection:
            row = connection.execute(
                "SELECT revoked_at FROM certificates WHERE serial = %s FOR UPDATE", (serial,)
            ).fetchone()
            if row is None:
                raise unknown_serial(serial)
            if row[0] is not None:
                raise already_revoked(serial, row[0])
            updated = connection.execute(
                "UPDATE certificates SET revoked_at = %s, revocation_reason = %s "
                f"WHERE serial = %s RETURNING {_COLUMNS}",
                (_seconds(at), reason, serial),
            ).fetchone()
            connection.execute(_BUMP, ("revision",))
        assert updated is not None  # the row is locked: it is there
        return _from_row(updated)

    def next_crl(self, at: datetime) -> tuple[int, list[Revocation]]:
        with self._connection(write=True) as connection:
            # The counter row is locked until the commit: the next signer waits, then
            # reads every revocation this one saw (a higher number never lists less).
            (number,) = connection.execute(_BUMP, ("crl",)).fetchone() or (0,)
            connection.execute(
                "INSERT INTO crls (number, issued_at) VALUES (%s, %s)", (number, _seconds(at))
            )
            rows = connection.execute(
                "SELECT serial, revoked_at, coalesce(revocation_reason, 'unspecified') "
                "FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at, serial"
            ).fetchall()
        return int(number), [Revocation(*row) for row in rows]

    def record_crl(self, number: int, crl: x509.CertificateRevocationList) -> None:
        with self._connection(write=True) as connection:
            # Writers of CRLs queue on the counter row, as signers do.
            connection.execute("SELECT value FROM counters WHERE name = 'crl' FOR UPDATE")
            # Only the latest CRL is kept whole: one of 100,000 entries is 4 MB.
            connection.execute("UPDATE crls SET der = NULL WHERE number < %s", (number,))
            connection.execute(
                "UPDATE crls SET der = %s, next_update = %s WHERE number = %s AND NOT EXISTS "
                "(SELECT 1 FROM crls WHERE number > %s AND der IS NOT NULL)",
                (crl.public_bytes(Encoding.DER), crl.next_update_utc, number, number),
            )

    def latest_crl(self) -> x509.CertificateRevocationList | None:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT der FROM crls WHERE der IS NOT NULL ORDER BY number DESC LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        try:
            return x509.load_der_x509_crl(bytes(row[0]))
        except ValueError:
            raise StorageError(f"registry {self.name}: the latest CRL is damaged") from None

    @property
    def acme(self) -> AcmeState:
        return self._acme

    def revision(self) -> int:
        with self._connection() as connection:
            row = connection.execute(
                "SELECT value FROM counters WHERE name = 'revision'"
            ).fetchone()
        return int(row[0]) if row else 0

    # Checks (minica doctor).

    def check(
        self, *, repair: bool, issued_by: Callable[[x509.Certificate], bool]
    ) -> list[Finding]:
        """What can come apart here: the database can be away or hold no registry; a row's
        certificate can be damaged only by hand (it is written in the row's own
        transaction). Nothing is repaired: there is no half-done write to undo."""
        del repair, issued_by  # no orphans: a certificate has no life outside its row
        try:
            with self._connection() as connection:
                serials = [s for (s,) in connection.execute("SELECT serial FROM certificates")]
        except StorageError as error:
            return [Finding(f"the registry cannot be read: {error}", None)]
        findings = []
        for serial in serials:
            try:
                self.certificate(serial)
            except StorageError as error:
                findings.append(Finding(str(error), None))
        return findings


def _json_line(now: datetime) -> Callable[[Record], str]:
    def line(record: Record) -> str:
        return json.dumps(record.to_json(now), ensure_ascii=False, separators=(",", ":"))

    return line


def _message(error: psycopg.Error) -> str:
    """The server's (or libpq's) message, on one line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text
