"""The CA folder: its layout, safe file writes, and the SQLite registry of issued certificates."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .errors import StoreError

CA_CERT = "ca.crt"
CA_CHAIN = "ca-chain.crt"
PRIVATE = "private"
CA_KEY = "private/ca.key"
SETTINGS = "ca.yaml"
PROFILES = "profiles"
CERTS = "certs"
REGISTRY = "minica.db"
LAYOUT = (CA_CERT, CA_CHAIN, PRIVATE, SETTINGS, PROFILES, CERTS, REGISTRY)

_SCHEMA = """
CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,          -- lowercase hex, as in certs/<serial>.crt
    subject TEXT NOT NULL,            -- RFC 4514
    profile TEXT NOT NULL,
    contact TEXT,
    not_before TEXT NOT NULL,         -- ISO 8601 UTC
    not_after TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    revoked_at TEXT,
    revocation_reason TEXT,
    renewed_from TEXT REFERENCES certificates(serial)
);
CREATE INDEX certificates_not_after ON certificates(not_after);
PRAGMA user_version = 1;
PRAGMA journal_mode = WAL;  -- readers never wait for a signer; persists in the file
"""


def serial_hex(serial: int) -> str:
    """A serial as minica shows it: lowercase hex, no colons, no leading zeros."""
    return format(serial, "x")


def parse_serial(text: str) -> str:
    """A typed serial (any case, leading zeros, colons) in minica's form; ValueError if not hex."""
    digits = text.strip().replace(":", "").lower().removeprefix("0x")
    if not digits or len(digits) > 40:  # RFC 5280: at most 20 octets
        raise ValueError(text)
    return serial_hex(int(digits, 16))


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the registry and the JSON forms write times."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Record:
    """One registry row: what was issued, under which profile, to whom."""

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


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so that readers see the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file that must not exist yet (a private key), mode ``mode`` from the start.

    The hard link either creates ``path`` whole or fails if anything, even a symlink,
    is already there, so an existing key is never overwritten or followed.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        raise StoreError(f"{path} already exists; minica never overwrites a key file") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


class Store:
    """A CA folder on disk: certificate, chain, key, settings, profiles, certs/ and registry."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def holds_ca(self) -> bool:
        return self.path(CA_CERT).exists() or self.path(CA_KEY).exists()

    def read(self, name: str) -> bytes:
        try:
            return self.path(name).read_bytes()
        except OSError as error:
            raise StoreError(f"cannot read {self.path(name)}: {error.strerror}") from None

    @classmethod
    def open(cls, directory: Path) -> Store:
        """The store in ``directory``; StoreError if it holds no CA."""
        store = cls(directory)
        if not store.path(CA_CERT).is_file():
            raise StoreError(
                f"no CA in {directory} (no {CA_CERT})",
                hint="create one with `minica init`, or point --ca / MINICA_CA at it",
            )
        return store

    @classmethod
    def create(cls, directory: Path, files: dict[str, bytes]) -> Store:
        """A new CA folder holding ``files`` (relative path → bytes) and an empty registry.

        Everything is built in a hidden folder inside ``directory`` and moved into place
        with ca.crt last, so a failed init leaves nothing that looks like a CA.
        """
        store = cls(directory)
        existing = [name for name in LAYOUT if store.path(name).exists()]
        if existing:
            what = "a CA" if store.holds_ca() else "CA files"
            raise StoreError(f"{directory} already holds {what} ({existing[0]}); not touching it")
        created = not directory.exists()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=directory, prefix=".minica-init-"))
        except OSError as error:
            raise StoreError(f"cannot create {directory}: {error.strerror}") from None
        moved: list[str] = []
        try:
            _populate(staging, files)
            for name in sorted(os.listdir(staging), key=lambda name: name == CA_CERT):
                os.rename(staging / name, directory / name)
                moved.append(name)
        except (OSError, sqlite3.Error) as error:
            for name in moved:
                _remove(directory / name)
            if created:
                shutil.rmtree(directory, ignore_errors=True)
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise StoreError(f"cannot create the CA in {directory}: {reason}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return store

    @contextmanager
    def registry(self) -> Iterator[sqlite3.Connection]:
        """A connection to the registry; the ``with`` block is one transaction."""
        try:
            connection = _connect(self.path(REGISTRY))
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the registry {self.path(REGISTRY)}: {error}") from None
        try:
            with connection:
                yield connection
        except sqlite3.Error as error:
            raise StoreError(f"registry {self.path(REGISTRY)}: {error}") from None
        finally:
            connection.close()

    def record(self, record: Record, certificate_pem: bytes) -> None:
        """Add a registry row and certs/<serial>.crt together; StoreError if the serial is taken."""
        with self.registry() as registry:
            registry.execute("BEGIN IMMEDIATE")
            try:
                registry.execute(
                    "INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.serial,
                        record.subject,
                        record.profile,
                        record.contact,
                        record.not_before,
                        record.not_after,
                        record.issued_at,
                        record.revoked_at,
                        record.revocation_reason,
                        record.renewed_from,
                    ),
                )
            except sqlite3.IntegrityError:
                raise SerialTaken(record.serial) from None
            try:
                self.path(CERTS).mkdir(exist_ok=True)  # git does not keep an empty certs/
                write_atomic(self.path(CERTS) / f"{record.serial}.crt", certificate_pem)
            except OSError as error:
                raise StoreError(f"cannot write to {self.path(CERTS)}: {error.strerror}") from None

    def has_serial(self, serial: str) -> bool:
        with self.registry() as registry:
            row = registry.execute("SELECT 1 FROM certificates WHERE serial = ?", (serial,))
            return row.fetchone() is not None


class SerialTaken(StoreError):
    """The registry already holds this serial number (the caller draws another)."""

    def __init__(self, serial: str) -> None:
        super().__init__(f"serial {serial} is already in the registry")


def _connect(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise sqlite3.OperationalError("missing")
    # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE), so
    # concurrent signers queue on the write lock instead of failing mid-transaction.
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA synchronous = FULL")
    return connection


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _populate(staging: Path, files: dict[str, bytes]) -> None:
    for folder in (PRIVATE, PROFILES, CERTS):
        (staging / folder).mkdir(mode=0o700 if folder == PRIVATE else 0o755)
    os.chmod(staging / PRIVATE, 0o700)  # whatever the umask
    for name, data in files.items():
        if name == CA_KEY:
            write_new(staging / name, data, mode=0o600)
        else:
            write_atomic(staging / name, data)
    connection = sqlite3.connect(staging / REGISTRY)
    try:
        connection.executescript(_SCHEMA)
    finally:
        connection.close()
