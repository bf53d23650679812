"""Connections a long-running service keeps between registry calls, one per thread, for
any database (SQLite, PostgreSQL): opening one per call was a third of `minica serve`'s
CPU under ACME load (bench_acme.py)."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


class KeptConnections(Generic[C]):
    """This thread's connection, kept for what it was opened on (``identity``: a file's
    device, inode and mode, say): asked for another, it is closed and the caller opens a
    new one. A nested call of the same thread (a read inside a write's ``then``) finds
    none free and opens its own, as without keeping. All are closed when the registry
    is dropped or the process exits."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: set[C] = set()
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._all, self._lock)

    def take(self, identity: Hashable = None) -> C | None:
        """This thread's connection for ``identity``, taken until ``give_back``; None if
        it has none free (the caller opens one)."""
        held: C | None = getattr(self._local, "held", None)
        if held is None:
            return None
        self._local.held = None
        if self._local.identity != identity or getattr(held, "closed", False):
            self._close(held)
            return None
        return held

    def give_back(self, connection: C, identity: Hashable = None) -> None:
        if getattr(self._local, "held", None) is not None:  # kept one already (nested)
            self._close(connection)
            return
        self._local.held, self._local.identity = connection, identity
        with self._lock:
            self._all.add(connection)

    def _close(self, connection: C) -> None:
        with self._lock:
            self._all.discard(connection)
        connection.close()

    def close(self) -> None:
        _close_all(self._all, self._lock)


def _close_all(connections: set[C], lock: threading.Lock) -> None:
    with lock:
        closing = list(connections)
        connections.clear()
    for connection in closing:
        with contextlib.suppress(Exception):  # at exit: a database gone is no matter
            connection.close()
