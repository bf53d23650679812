"""ACME's state in a CA folder's SQLite registry (the AcmeState protocol for
SqliteRegistry): one table of documents, its schema (version 4), and the statements.

Each call is one transaction on its own connection, as the registry's are; ``update``
holds the write lock (BEGIN IMMEDIATE) from its read to its write, so no writer of any
process interleaves. Nonces, written on every ACME request, are committed without
waiting for the disk (``synchronous = NORMAL``): one lost at a power failure only makes
a client retry. Everything else is committed as durably as the certificates.

An expired document is skipped by get, find, take and update at once, but it holds its
id and key until ``purge`` removes it (``create`` is given no time to tell).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from typing import Protocol

from ..errors import ConflictError
from . import Document, acme_lookup, acme_taken, acme_unknown, aware

# Schema 4. ``created`` is the rowid: SQLite gives each new row one above the highest,
# so it orders rows by creation (find: oldest first). The key and account indexes leave
# out rows without one (every nonce), so a nonce costs the table, (kind, id) and expiry.
ACME_SCHEMA = (
    "CREATE TABLE acme ("
    "created INTEGER PRIMARY KEY, kind TEXT NOT NULL, id TEXT NOT NULL, "
    "body TEXT NOT NULL, key TEXT, account TEXT, "
    "expires TEXT, "  # ISO 8601 UTC to the microsecond, fixed width: text order is time order
    "UNIQUE (kind, id))",
    "CREATE UNIQUE INDEX acme_key ON acme(kind, key) WHERE key IS NOT NULL",
    "CREATE INDEX acme_account ON acme(kind, account) WHERE account IS NOT NULL",
    "CREATE INDEX acme_expires ON acme(expires) WHERE expires IS NOT NULL",  # for purge
)
# Kinds whose writes may be lost at a power failure (never their atomicity).
RELAXED_KINDS = frozenset({"nonce"})

_LIVE = "(expires IS NULL OR expires >= :now)"
_COLUMNS = "body, key, account, expires"


class Store(Protocol):
    """What of SqliteRegistry this module uses (named here, not imported: sqlite.py
    imports this module)."""

    _current: bool  # the file's schema is this minica's (else: an older, read-only one)

    def _connection(
        self, write: bool = False, durable: bool = True
    ) -> AbstractContextManager[sqlite3.Connection]: ...


def _instant(moment: datetime) -> str:
    return aware(moment).astimezone(timezone.utc).isoformat(timespec="microseconds")


def _document(row: tuple[str, str | None, str | None, str | None]) -> Document:
    body, key, account, expires = row
    return Document(body, key, account, datetime.fromisoformat(expires) if expires else None)


class SqliteAcmeState:
    """The AcmeState protocol on the ``acme`` table of one registry file."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, kind: str, id: str, document: Document) -> None:
        row = self._row(kind, id, document)
        durable = kind not in RELAXED_KINDS
        with self._store._connection(write=True, durable=durable) as connection:
            try:
                connection.execute(
                    "INSERT INTO acme (kind, id, body, key, account, expires) "
                    "VALUES (:kind, :id, :body, :key, :account, :expires)",
                    row,
                )
            except sqlite3.IntegrityError:
                raise self._taken(connection, kind, id, document.key) from None

    def get(self, kind: str, id: str, *, now: datetime) -> Document | None:
        with self._store._connection() as connection:
            if not self._store._current:
                return None  # a read-only registry from before ACME holds none
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM acme WHERE kind = :kind AND id = :id AND {_LIVE}",
                {"kind": kind, "id": id, "now": _instant(now)},
            ).fetchone()
        return _document(row) if row else None

    def find(
        self, kind: str, *, now: datetime, key: str | None = None, account: str | None = None
    ) -> list[tuple[str, Document]]:
        acme_lookup(key, account)
        where = "kind = :kind"
        if key is not None:
            where += " AND key = :key"
        elif account is not None:
            where += " AND account = :account"
        parameters = {"kind": kind, "key": key, "account": account, "now": _instant(now)}
        with self._store._connection() as connection:
            if not self._store._current:
                return []
            rows = connection.execute(
                f"SELECT id, {_COLUMNS} FROM acme WHERE {where} AND {_LIVE} ORDER BY created",
                parameters,
            ).fetchall()
        return [(id, _document(rest)) for id, *rest in rows]

    def update(
        self, kind: str, id: str, change: Callable[[Document], Document], *, now: datetime
    ) -> Document:
        with self._store._connection(write=True) as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM acme WHERE kind = :kind AND id = :id AND {_LIVE}",
                {"kind": kind, "id": id, "now": _instant(now)},
            ).fetchone()
            if row is None:
                raise acme_unknown(kind, id)
            new = change(_document(row))  # if it raises, the transaction is rolled back
            try:
                connection.execute(
                    "UPDATE acme SET body = :body, key = :key, account = :account, "
                    "expires = :expires WHERE kind = :kind AND id = :id",
                    self._row(kind, id, new),
                )
            except sqlite3.IntegrityError:
                raise acme_taken(kind, f"key {new.key}") from None
        return new

    def take(self, kind: str, id: str, *, now: datetime) -> bool:
        # One DELETE: of two takers in any processes, SQLite's write lock lets one delete.
        durable = kind not in RELAXED_KINDS
        with self._store._connection(write=True, durable=durable) as connection:
            deleted = connection.execute(
                f"DELETE FROM acme WHERE kind = :kind AND id = :id AND {_LIVE}",
                {"kind": kind, "id": id, "now": _instant(now)},
            ).rowcount
        return deleted == 1

    def remove(self, kind: str, id: str) -> bool:
        with self._store._connection(write=True) as connection:
            deleted = connection.execute(
                "DELETE FROM acme WHERE kind = ? AND id = ?", (kind, id)
            ).rowcount
        return deleted == 1

    def purge(self, *, now: datetime) -> int:
        with self._store._connection(write=True) as connection:
            deleted = connection.execute(
                "DELETE FROM acme WHERE expires < ?", (_instant(now),)
            ).rowcount
        return int(deleted)

    @staticmethod
    def _row(kind: str, id: str, document: Document) -> dict[str, str | None]:
        expires = _instant(document.expires) if document.expires is not None else None
        return {
            "kind": kind,
            "id": id,
            "body": document.body,
            "key": document.key,
            "account": document.account,
            "expires": expires,
        }

    @staticmethod
    def _taken(
        connection: sqlite3.Connection, kind: str, id: str, key: str | None
    ) -> ConflictError:
        """The ConflictError for an insert that broke a unique index: the id's, or the key's."""
        held = connection.execute(
            "SELECT 1 FROM acme WHERE kind = ? AND id = ?", (kind, id)
        ).fetchone()
        return acme_taken(kind, f"id {id}" if held else f"key {key}")
