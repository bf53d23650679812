"""ACME's state in a PostgreSQL registry (the AcmeState protocol for PostgresRegistry):
one table of documents, and the statements.

Each call is one transaction, as the registry's are; ``update`` locks the row (SELECT ...
FOR UPDATE) from its read to its write, so no writer of any process or machine
interleaves; of two ``take``s of one row, the second waits for the first and deletes
nothing. Nonces are committed without waiting for the disk (``synchronous_commit = off``):
one lost at a crash only makes a client retry.

An expired document is skipped by get, find, take and update at once, but it holds its
id and key until ``purge`` removes it, as in SQLite.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors

from ..errors import ConflictError
from . import Document, acme_lookup, acme_taken, acme_unknown, aware

# ``created`` comes from a sequence: it orders rows by creation (find: oldest first).
ACME_SCHEMA = (
    "CREATE TABLE acme ("
    " created bigint GENERATED ALWAYS AS IDENTITY,"
    ' kind text COLLATE "C" NOT NULL, id text COLLATE "C" NOT NULL,'
    " body text NOT NULL, key text, account text, expires timestamptz,"
    " CONSTRAINT acme_id PRIMARY KEY (kind, id))",
    "CREATE UNIQUE INDEX acme_key ON acme(kind, key) WHERE key IS NOT NULL",
    "CREATE INDEX acme_account ON acme(kind, account) WHERE account IS NOT NULL",
    "CREATE INDEX acme_expires ON acme(expires) WHERE expires IS NOT NULL",  # for purge
    "CREATE INDEX acme_created ON acme(kind, created)",
)
# Kinds whose writes may be lost at a crash (never their atomicity).
RELAXED_KINDS = frozenset({"nonce"})

_LIVE = "(expires IS NULL OR expires >= %(now)s)"
_COLUMNS = "body, key, account, expires"
Connection = psycopg.Connection[tuple[Any, ...]]


class Store(Protocol):
    """What of PostgresRegistry this module uses (named here, not imported: postgres.py
    imports this module)."""

    def _connection(
        self, write: bool = False, durable: bool = True, schema: bool = True
    ) -> AbstractContextManager[Connection]: ...


def _document(row: tuple[Any, ...]) -> Document:
    body, key, account, expires = row
    return Document(body, key, account, expires)


class PostgresAcmeState:
    """The AcmeState protocol on the ``acme`` table of one database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(self, kind: str, id: str, document: Document) -> None:
        row = self._row(kind, id, document)
        durable = kind not in RELAXED_KINDS
        with self._store._connection(write=True, durable=durable) as connection:
            try:
                connection.execute(
                    "INSERT INTO acme (kind, id, body, key, account, expires) "
                    "VALUES (%(kind)s, %(id)s, %(body)s, %(key)s, %(account)s, %(expires)s)",
                    row,
                )
            except pg_errors.UniqueViolation as error:
                raise self._taken(error, kind, id, document.key) from None

    def get(self, kind: str, id: str, *, now: datetime) -> Document | None:
        with self._store._connection() as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM acme WHERE kind = %(kind)s AND id = %(id)s AND {_LIVE}",
                {"kind": kind, "id": id, "now": aware(now)},
            ).fetchone()
        return _document(row) if row else None

    def find(
        self, kind: str, *, now: datetime, key: str | None = None, account: str | None = None
    ) -> list[tuple[str, Document]]:
        acme_lookup(key, account)
        where = "kind = %(kind)s"
        if key is not None:
            where += " AND key = %(key)s"
        elif account is not None:
            where += " AND account = %(account)s"
        parameters = {"kind": kind, "key": key, "account": account, "now": aware(now)}
        with self._store._connection() as connection:
            rows = connection.execute(
                f"SELECT id, {_COLUMNS} FROM acme WHERE {where} AND {_LIVE} ORDER BY created",
                parameters,
            ).fetchall()
        return [(row[0], _document(row[1:])) for row in rows]

    def update(
        self, kind: str, id: str, change: Callable[[Document], Document], *, now: datetime
    ) -> Document:
        with self._store._connection(write=True) as connection:
            row = connection.execute(
                f"SELECT {_COLUMNS} FROM acme "
                f"WHERE kind = %(kind)s AND id = %(id)s AND {_LIVE} FOR UPDATE",
                {"kind": kind, "id": id, "now": aware(now)},
            ).fetchone()
            if row is None:
                raise acme_unknown(kind, id)
            new = change(_document(row))  # if it raises, the transaction is rolled back
            try:
                connection.execute(
                    "UPDATE acme SET body = %(body)s, key = %(key)s, account = %(account)s, "
                    "expires = %(expires)s WHERE kind = %(kind)s AND id = %(id)s",
                    self._row(kind, id, new),
                )
            except pg_errors.UniqueViolation:
                raise acme_taken(kind, f"key {new.key}") from None
        return new

    def take(self, kind: str, id: str, *, now: datetime) -> bool:
        durable = kind not in RELAXED_KINDS
        with self._store._connection(write=True, durable=durable) as connection:
            deleted = connection.execute(
                f"DELETE FROM acme WHERE kind = %(kind)s AND id = %(id)s AND {_LIVE}",
                {"kind": kind, "id": id, "now": aware(now)},
            ).rowcount
        return deleted == 1

    def remove(self, kind: str, id: str) -> bool:
        with self._store._connection(write=True) as connection:
            deleted = connection.execute(
                "DELETE FROM acme WHERE kind = %s AND id = %s", (kind, id)
            ).rowcount
        return deleted == 1

    def purge(self, *, now: datetime) -> int:
        with self._store._connection(write=True) as connection:
            deleted = connection.execute(
                "DELETE FROM acme WHERE expires < %s", (aware(now),)
            ).rowcount
        return int(deleted)

    @staticmethod
    def _row(kind: str, id: str, document: Document) -> dict[str, Any]:
        expires = aware(document.expires) if document.expires is not None else None
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
        error: pg_errors.UniqueViolation, kind: str, id: str, key: str | None
    ) -> ConflictError:
        """The ConflictError for an insert that broke a unique index: the id's, or the key's
        (the server names the constraint)."""
        held = error.diag.constraint_name == "acme_id"
        return acme_taken(kind, f"id {id}" if held else f"key {key}")
