"""The CA folder: its layout, safe file writes, and where its registry lives."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from .errors import StoreError
from .registry import Record, Registry

CA_CERT = "ca.crt"
CA_CHAIN = "ca-chain.crt"
PRIVATE = "private"
CA_KEY = "private/ca.key"
SETTINGS = "ca.yaml"
PROFILES = "profiles"
CERTS = "certs"
REGISTRY = "minica.db"
CRL = "crl.pem"
CRL_DER = "crl.der"
LAYOUT = (CA_CERT, CA_CHAIN, PRIVATE, SETTINGS, PROFILES, CERTS, REGISTRY)


Identity = tuple[int, int, int]  # device, inode, file type: what a path names, as lstat says


class OutputTarget(NamedTuple):
    """How ``write_atomic`` writes a path, decided from what is there now."""

    path: Path  # the file to replace (a symlink's final target), or the one to open
    replace: bool  # nothing or a regular file there: renamed into place; else written through
    identity: Identity | None  # what is there; None: nothing yet


def output_target(path: Path) -> OutputTarget:
    """What writing ``path`` means: replace a new or regular file (through a symlink, its
    final target), or open and write through what is neither (a FIFO, a device).

    Raises OSError for a folder and for a dangling symlink (written through, it would make
    a file wherever the link points: GNU cp refuses it for that reason).
    """
    try:
        info = os.stat(path)  # follows symlinks, also /dev/stdout's through /proc
    except FileNotFoundError:
        if os.path.islink(path):
            reason = f"it is a symlink to {os.readlink(path)}, which does not exist"
            raise FileNotFoundError(errno.ENOENT, reason, str(path)) from None
        return OutputTarget(path, replace=True, identity=None)
    identity = _identity_of(info)
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
    if not stat.S_ISREG(info.st_mode):
        return OutputTarget(path, replace=False, identity=identity)
    final = Path(os.path.realpath(path)) if os.path.islink(path) else path
    if _identity(final) != identity:  # a /proc link to a deleted file: nothing to rename over
        raise FileNotFoundError(errno.ENOENT, "it leads to a file that has no name", str(path))
    return OutputTarget(final, replace=True, identity=identity)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` as what is there asks (``output_target``).

    Nothing or a regular file: a temporary file in the same folder, fsynced, made ``mode``
    and renamed into place, so that readers see the old file or the new one, never half
    of one. A symlink to a regular file: its final target is replaced so and the link stays
    (the file `openssl -out` writes through it). A FIFO or a device (/dev/null, a terminal,
    /dev/stdout when it is one): opened and written through, never created, renamed over,
    unlinked or chmod'ed. A folder or a dangling symlink: OSError.

    What was decided on is checked again by identity just before the rename, or on the
    opened descriptor, and looked at afresh if it changed meanwhile (a path swapped in the
    instant between that check and the rename is the one race left).
    """
    for _ in range(_ATTEMPTS):
        target = output_target(path)
        if (_replace if target.replace else _write_through)(target, data, mode):
            return
    raise OSError(errno.EAGAIN, "it kept changing while minica wrote it", str(path))


_ATTEMPTS = 3  # looks at a path that keeps changing under us before giving up


def _replace(target: OutputTarget, data: bytes, mode: int) -> bool:
    """Rename a fully written temporary file over ``target``; False if it changed first."""
    folder = target.path.parent
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(target.path))
    renamed = False
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        if _identity(target.path) != target.identity:
            return False
        os.replace(temporary, target.path)
        renamed = True
        _sync_folder(folder)  # the rename itself survives a power cut
        return True
    finally:
        if not renamed:
            Path(temporary).unlink(missing_ok=True)


def _write_through(target: OutputTarget, data: bytes, mode: int) -> bool:
    """Write into what is already open-able at ``target`` (a FIFO waits for its reader);
    False if it is not what was looked at. ``mode`` is not applied: it is not our file."""
    # No O_CREAT, no O_TRUNC: this never makes a file, nor cuts one swapped in meanwhile.
    descriptor = os.open(target.path, os.O_WRONLY | os.O_NOCTTY)
    try:
        if _identity_of(os.fstat(descriptor)) != target.identity:
            return False
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        return True
    finally:
        os.close(descriptor)


def _identity(path: Path) -> Identity | None:
    """The identity of ``path`` itself, not of what a symlink there points to."""
    try:
        return _identity_of(os.lstat(path))
    except FileNotFoundError:
        return None


def _identity_of(info: os.stat_result) -> Identity:
    # The kind too: a file removed and replaced at once (by a symlink, a FIFO) may well
    # get the freed inode number.
    return (info.st_dev, info.st_ino, stat.S_IFMT(info.st_mode))


def write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file that must not exist yet (a private key), mode ``mode`` from the start.

    The hard link either creates ``path`` whole or fails if anything, even a symlink,
    is already there, so an existing key is never overwritten or followed.
    """
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path))
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
        _sync_folder(path.parent)
    except FileExistsError:
        raise StoreError(f"{path} already exists; minica never overwrites a key file") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


TEMPORARY_MARK = ".tmp-"  # in the names of files being written; a crash can leave one


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}{TEMPORARY_MARK}"


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
            if created:
                os.chmod(directory, 0o755)  # whatever the umask: only we may change a CA
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
    def lock(self) -> Iterator[None]:
        """Exclusive use of the CA folder among minica processes (held by `crl` while it
        writes crl.pem, and by `doctor`), released however the block ends."""
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock

    def remove(self) -> None:
        """Take back a CA folder that ``create`` just made (its parent's record failed)."""
        for name in LAYOUT:
            _remove(self.path(name))

    @property
    def registry(self) -> Registry:
        return Registry(self.path(REGISTRY))

    def record(self, record: Record, certificate_pem: bytes) -> None:
        """Add a registry row and certs/<serial>.crt together; SerialTaken if the serial is."""

        path = self.path(CERTS) / f"{record.serial}.crt"
        written = False

        def write_certificate() -> None:
            nonlocal written
            try:
                self.path(CERTS).mkdir(mode=0o755, exist_ok=True)  # git keeps no empty certs/
                write_atomic(path, certificate_pem)
                written = True
            except OSError as error:
                raise StoreError(f"cannot write to {self.path(CERTS)}: {error.strerror}") from None

        try:
            self.registry.add(record, then=write_certificate)
        except BaseException:
            if written:  # the commit failed after the file was written: take it back
                path.unlink(missing_ok=True)
            raise


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
    Registry.create(staging / REGISTRY)
