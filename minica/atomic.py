"""Writing files so that a crash never leaves half of one: atomic replacement for
certificates and settings, create-exclusive writes for keys."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ConflictError


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so that readers see the old file or the new one, never half of one."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=_temporary_prefix(path))
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
        _sync_folder(path.parent)  # the rename itself survives a power cut
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
        raise ConflictError(f"{path} already exists; minica never overwrites a key file") from None
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


def is_leftover(path: Path) -> bool:
    """Whether ``path`` is a temporary file of a write that never finished."""
    return TEMPORARY_MARK in path.name
