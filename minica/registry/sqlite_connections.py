"""How SQLiteRegistry holds its connections: this process's writers queued on one lock
per registry file, and connections that remember their synchronous setting (a service
keeps them: kept.py)."""

from __future__ import annotations

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
