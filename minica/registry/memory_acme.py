"""ACME's state in memory (the AcmeState protocol for MemoryRegistry): documents in
dictionaries, under the registry's own lock, with the rules of the SQLite one.

An expired document is skipped by get, find, take and update at once, but it holds its
id and key until ``purge`` removes it (the SQLite state does the same: ``create`` is given
no time to tell).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime

from . import Document, acme_expired, acme_lookup, acme_taken, acme_unknown, aware

_Entry = tuple[int, Document]  # (order of creation, document)


class MemoryAcmeState:
    """The AcmeState protocol on two dictionaries: documents by (kind, id), and the id
    holding each (kind, key)."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._documents: dict[tuple[str, str], _Entry] = {}
        self._keys: dict[tuple[str, str], str] = {}
        self._order = itertools.count()

    def create(self, kind: str, id: str, document: Document) -> None:
        if document.expires is not None:
            aware(document.expires)
        with self._lock:
            if (kind, id) in self._documents:
                raise acme_taken(kind, f"id {id}")
            self._claim_key(kind, id, document.key)
            self._documents[kind, id] = (next(self._order), document)

    def get(self, kind: str, id: str, *, now: datetime) -> Document | None:
        with self._lock:
            return self._live(kind, id, now)

    def find(
        self, kind: str, *, now: datetime, key: str | None = None, account: str | None = None
    ) -> list[tuple[str, Document]]:
        acme_lookup(key, account)
        aware(now)
        with self._lock:
            if key is not None:
                held = self._keys.get((kind, key))
                document = None if held is None else self._live(kind, held, now)
                return [] if held is None or document is None else [(held, document)]
            entries = sorted(
                (order, id, document)
                for (of_kind, id), (order, document) in self._documents.items()
                if of_kind == kind and (account is None or document.account == account)
            )
            return [(id, doc) for _, id, doc in entries if not acme_expired(doc, now)]

    def update(
        self, kind: str, id: str, change: Callable[[Document], Document], *, now: datetime
    ) -> Document:
        with self._lock:
            document = self._live(kind, id, now)
            if document is None:
                raise acme_unknown(kind, id)
            new = change(document)  # before any change: if it raises, nothing changed
            if new.expires is not None:
                aware(new.expires)
            if new.key != document.key:
                self._claim_key(kind, id, new.key)
                if document.key is not None:
                    del self._keys[kind, document.key]
            order, _ = self._documents[kind, id]
            self._documents[kind, id] = (order, new)
            return new

    def take(self, kind: str, id: str, *, now: datetime) -> bool:
        with self._lock:
            if self._live(kind, id, now) is None:
                return False  # an expired one stays until purged, as in SQLite
            self._drop(kind, id)
            return True

    def remove(self, kind: str, id: str) -> bool:
        with self._lock:
            if (kind, id) not in self._documents:
                return False
            self._drop(kind, id)
            return True

    def purge(self, *, now: datetime) -> int:
        aware(now)
        with self._lock:
            expired = [
                place
                for place, (_, document) in self._documents.items()
                if acme_expired(document, now)
            ]
            for kind, id in expired:
                self._drop(kind, id)
            return len(expired)

    def _live(self, kind: str, id: str, now: datetime) -> Document | None:
        aware(now)  # refused whether or not there is a document, as in SQLite
        entry = self._documents.get((kind, id))
        if entry is None or acme_expired(entry[1], now):
            return None
        return entry[1]

    def _claim_key(self, kind: str, id: str, key: str | None) -> None:
        """Make ``key`` (if any) point at ``id``; ConflictError if another id holds it."""
        if key is None:
            return
        if self._keys.get((kind, key), id) != id:
            raise acme_taken(kind, f"key {key}")
        self._keys[kind, key] = id

    def _drop(self, kind: str, id: str) -> None:
        _, document = self._documents.pop((kind, id))
        if document.key is not None:
            del self._keys[kind, document.key]
