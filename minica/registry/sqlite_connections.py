"""How SQLiteRegistry holds its connections: this process's writers queued on one lock
per registry file, and, for a long-running service, one open connection per thread."""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
from pathlib import Path

# One lock per registry file for the writers of this process. SQLite lets one writer in
# at a time and makes the others wait in its busy handler, which sleeps (1, 2, 5, 10 ms
# and longer) and retries: with a few threads writing (ACME commits a nonce on every
# request), most of a request's time went to those sleeps. Writers of this process now
# queue on the lock and go in as soon as the last one is done; SQLite's own locking
# still orders them against other processes. Reentrant: a nested write in one thread
# waits for SQLite as before, it does not deadlock here.
_WRITERS: dict[str, threading.RLock] = {}
_WRITERS_LOCK = threading.Lock()


def writer_lock(path: Path) -> threading.RLock:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(os.path.realpath(path), threading.RLock())


class Connection(sqlite3.Connection):
    """A connection that remembers its ``PRAGMA synchronous``, so that a kept one is not
    told again on every call."""

    synchronous: str | None = None


class KeptConnections:
    """One open connection per thread, for a long-running service: opening and closing
    one per call was a third of `minica serve`'s CPU under ACME load (bench_acme.py).
    A connection is kept for the file it was opened on (device, inode) and its mode: a
    registry replaced or made read-only meanwhile gets a new one. A nested call of the
    same thread (a read inside a write's ``then``) opens one of its own, as without
    keeping. All are closed when the process exits."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: set[sqlite3.Connection] = set()
        self._lock = threading.Lock()
        atexit.register(self.close)

    def take(self, identity: tuple[int, int, str]) -> Connection | None:
        """This thread's connection for ``identity``, taken until ``give_back``; None if
        it has none free (the caller opens one)."""
        held: Connection | None = getattr(self._local, "held", None)
        if held is None:
            return None
        self._local.held = None
        if self._local.identity != identity:
            self._close(held)
            return None
        return held

    def give_back(self, connection: Connection, identity: tuple[int, int, str]) -> None:
        if getattr(self._local, "held", None) is not None:  # kept one already (nested)
            self._close(connection)
            return
        self._local.held, self._local.identity = connection, identity
        with self._lock:
            self._all.add(connection)

    def _close(self, connection: sqlite3.Connection) -> None:
        with self._lock:
            self._all.discard(connection)
        connection.close()

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, set()
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
