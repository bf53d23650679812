"""The CA folder: its layout, reading its files, creating one whole, and its registry."""

from __future__ import annotations

import errno
import functools
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .atomic import write_atomic, write_new
from .errors import ConflictError, NotFoundError, PolicyError, StorageError
from .registry.sqlite import CERTIFICATES, DATABASE, SqliteRegistry

CA_CERT = "ca.crt"
CA_CHAIN = "ca-chain.crt"
PRIVATE = "private"
CA_KEY = "private/ca.key"
SETTINGS = "ca.yaml"
PROFILES = "profiles"
CRL = "crl.pem"
CRL_DER = "crl.der"
LAYOUT = (CA_CERT, CA_CHAIN, PRIVATE, SETTINGS, PROFILES, CERTIFICATES, DATABASE)
MAX_FILE = 1 << 20  # a CA's certificate, chain, key and settings are a few KiB
STAGING_PREFIX = ".minica-init-"  # init builds a CA here first; a crash can leave one


class Store:
    """A CA folder on disk: certificate, chain, key, settings, profiles and registry."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def holds_ca(self) -> bool:
        return self.path(CA_CERT).exists() or self.path(CA_KEY).exists()

    def read(self, name: str) -> bytes:
        """A file of the CA folder: a regular file of at most MAX_FILE bytes (a FIFO would
        hang the reader, /dev/zero would never end), else StorageError."""
        path = self.path(name)
        try:
            with open(path, "rb", opener=_open_regular) as file:
                data = file.read(MAX_FILE + 1)
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error.strerror}") from None
        if len(data) > MAX_FILE:
            raise StorageError(f"{path} is larger than {MAX_FILE // 1024} KiB: not a CA file")
        return data

    @functools.cached_property
    def registry(self) -> SqliteRegistry:
        return SqliteRegistry(self.directory)

    @classmethod
    def open(cls, directory: Path) -> Store:
        """The store in ``directory``; NotFoundError if it holds no CA."""
        store = cls(directory)
        if not store.path(CA_CERT).is_file():
            raise NotFoundError(f"no CA in {directory} (no {CA_CERT})", code="no-ca")
        return store

    @classmethod
    def create(
        cls,
        directory: Path,
        files: dict[str, bytes],
        *,
        before: Callable[[], None] | None = None,
    ) -> Store:
        """A new CA folder holding ``files`` (relative path → bytes) and an empty registry.

        Everything is built in a hidden folder inside ``directory``; ``before`` runs once
        it is complete (an intermediate is recorded in its parent's registry there), and
        then it is moved into place with ca.crt last. A failure or a crash before the last
        rename leaves nothing that looks like a CA: a CA folder exists only once ``before``
        is done. A folder that exists already must be the user's and writable by no one
        else (PolicyError): others could replace the CA's files.
        """
        store = cls(directory)
        existing = [name for name in LAYOUT if store.path(name).exists()]
        if existing:
            what = "a CA" if store.holds_ca() else "CA files"
            raise ConflictError(
                f"{directory} already holds {what} ({existing[0]}); not touching it",
                code="ca-exists",
            )
        created = not directory.exists()
        if not created:
            _refuse_shared(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if created:
                os.chmod(directory, 0o755)  # whatever the umask: only we may change a CA
            staging = Path(tempfile.mkdtemp(dir=directory, prefix=STAGING_PREFIX))
        except OSError as error:
            raise StorageError(f"cannot create {directory}: {error.strerror}") from None
        moved: list[str] = []
        try:
            _populate(staging, files)
            if before is not None:
                before()
            for name in sorted(os.listdir(staging), key=lambda name: name == CA_CERT):
                os.rename(staging / name, directory / name)
                moved.append(name)
        except (OSError, StorageError) as error:
            for name in moved:
                _remove(directory / name)
            if created:
                shutil.rmtree(directory, ignore_errors=True)
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise StorageError(f"cannot create the CA in {directory}: {reason}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return store


def _open_regular(path: str, flags: int) -> int:
    """Open ``path`` without blocking and only if it is a regular file."""
    descriptor = os.open(path, flags | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OSError(errno.EINVAL, "not a regular file")
    return descriptor


def _refuse_shared(directory: Path) -> None:
    try:
        status = directory.stat()
    except OSError as error:
        raise StorageError(f"cannot use {directory}: {error.strerror}") from None
    if status.st_uid != os.geteuid():
        raise PolicyError(
            f"{directory} belongs to another user; a CA folder must be yours",
            hint="give a new folder, which init makes",
        )
    if status.st_mode & 0o022:
        raise PolicyError(
            f"{directory} can be written by others (mode {stat.S_IMODE(status.st_mode):o}); "
            "they could replace the CA's files",
            hint=f"make it yours alone (chmod go-w {directory}), or give a new folder",
        )


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _populate(staging: Path, files: dict[str, bytes]) -> None:
    for folder in (PRIVATE, PROFILES):
        (staging / folder).mkdir(mode=0o700 if folder == PRIVATE else 0o755)
    os.chmod(staging / PRIVATE, 0o700)  # whatever the umask
    for name, data in files.items():
        if name == CA_KEY:
            write_new(staging / name, data, mode=0o600)
        else:
            write_atomic(staging / name, data)
    SqliteRegistry.create(staging)
