"""A real PostgreSQL server for the tests: a throwaway cluster in a temporary folder,
listening on 127.0.0.1 on a free port only, trusting local connections, stopped at the end.

PostgreSQL refuses to run as root, and the tests may run as root (a container): then the
cluster belongs to the unprivileged ``postgres`` user the Debian package makes, and its
programs run as that user (runuser). The ``postgres`` fixture (conftest) gives each test
a fresh database of its own: ``postgres()`` is the DSN of a new, empty one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from servers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
INITDB = BIN / "initdb"
# Durability is not what these tests prove, and fsync makes CREATE DATABASE slow.
SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")


def _as_owner(owner: str | None, *command: str | Path) -> list[str]:
    """``command`` run as ``owner`` (None: as we are)."""
    prefix = ["runuser", "-u", owner, "--"] if owner else []
    return [*prefix, *map(str, command)]


def _run(owner: str | None, *command: str | Path) -> None:
    done = subprocess.run(_as_owner(owner, *command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")


@contextmanager
def postgres_server() -> Iterator[str]:
    """A running cluster; the DSN of its ``postgres`` database (the superuser ``minica``)."""
    owner = "postgres" if os.geteuid() == 0 else None
    with tempfile.TemporaryDirectory(prefix="minica-pg-") as temporary:
        folder = Path(temporary)
        data, sockets = folder / "data", folder / "sockets"
        sockets.mkdir()
        if owner:
            shutil.chown(folder, owner)
            shutil.chown(sockets, owner)
        _run(owner, INITDB, "-D", data, "-U", "minica", "--auth=trust", "-E", "UTF8", "--no-sync")
        port = free_port()
        options = " ".join(
            [f"-c listen_addresses=127.0.0.1 -c port={port} -k {sockets}"]
            + [f"-c {setting}" for setting in SETTINGS]
        )
        log = folder / "server.log"
        pg_ctl = BIN / "pg_ctl"
        _run(owner, pg_ctl, "start", "-w", "-D", data, "-l", log, "-o", options)
        try:
            yield f"host=127.0.0.1 port={port} user=minica dbname=postgres"
        finally:
            _run(owner, pg_ctl, "stop", "-w", "-m", "fast", "-D", data)


def database_factory(server: str) -> Callable[[], str]:
    """A function making a new empty database on ``server``; it returns its DSN."""

    def fresh() -> str:
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return server.replace("dbname=postgres", f"dbname={name}")

    return fresh
