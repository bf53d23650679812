"""Writing files so that a crash never leaves half of one: atomic replacement for
certificates and settings, create-exclusive writes for keys."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import NamedTuple

from .errors import ConflictError

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
    temporary = _temporary_file(target.path, data, mode)
    renamed = False
    try:
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
    temporary = _temporary_file(path, data, mode)
    try:
        os.link(temporary, path)
        _sync_folder(path.parent)
    except FileExistsError:
        raise ConflictError(f"{path} already exists; minica never overwrites a key file") from None
    finally:
        Path(temporary).unlink(missing_ok=True)


class Staged:
    """A write made ready but not yet seen: its bytes are in a temporary file beside the
    target, on disk; ``publish`` renames (or, for a new key, links) it into place, and
    ``discard`` takes it back. Lets a caller write everything before it commits something
    else (a registry row), and make it visible only after."""

    def __init__(self, path: Path, data: bytes, mode: int, *, new: bool) -> None:
        self.path, self.data, self.mode, self.new = path, data, mode, new
        self.target = None if new else output_target(path)
        self.temporary: Path | None = None
        if self.target is not None and not self.target.replace:
            write_atomic(path, data, mode)  # a FIFO or device: writing it is delivering it
            return
        self.temporary = _temporary_file(
            path if self.target is None else self.target.path, data, mode
        )

    def publish(self) -> None:
        """Put the staged bytes in place (as write_atomic would, or create-exclusive)."""
        if self.temporary is None:
            return
        temporary, self.temporary = self.temporary, None
        try:
            if self.new:
                try:
                    os.link(temporary, self.path)
                except FileExistsError:
                    raise ConflictError(
                        f"{self.path} already exists; minica never overwrites a key file"
                    ) from None
                _sync_folder(self.path.parent)
            elif self.target is not None and _identity(self.target.path) == self.target.identity:
                os.replace(temporary, self.target.path)
                _sync_folder(self.target.path.parent)
            else:  # the path changed since it was staged: decide afresh
                write_atomic(self.path, self.data, self.mode)
        finally:
            temporary.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.temporary is not None:
            self.temporary.unlink(missing_ok=True)
            self.temporary = None


TEMPORARY_MARK = ".tmp-"  # in the names of files being written; a crash can leave one


def _temporary_file(beside: Path, data: bytes, mode: int) -> Path:
    """A new file holding ``data`` in ``beside``'s folder, mode ``mode`` from the start,
    on disk (fsynced) before it is returned; nothing is left if writing it fails."""
    descriptor, name = tempfile.mkstemp(dir=beside.parent, prefix=_temporary_prefix(beside))
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}{TEMPORARY_MARK}"


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temporary file of a write that never finished."""
    return TEMPORARY_MARK in path.name
