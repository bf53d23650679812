"""The user's files as the CLI reads and writes them: inputs, outputs, keys and secrets.

Failures become MinicaError naming the file; outputs are checked before anything is
signed, so that a refused output never leaves a registry row behind.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import MinicaError


def read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise MinicaError(f"cannot read {path}: {error.strerror}") from None


def read_secret(path: Path) -> bytes:
    """A passphrase from a file; its one trailing newline is not part of it."""
    secret = read(path)
    secret = secret[:-2] if secret.endswith(b"\r\n") else secret.removesuffix(b"\n")
    if not secret:
        raise MinicaError(f"{path} holds an empty passphrase")
    return secret


def secret_source(
    file: Path | None, variable: str, prompt: str, what: str, *, confirm: bool = False
) -> Callable[[], bytes]:
    """A function giving a passphrase: from ``file``, else $``variable``, else a prompt on a
    terminal; with none of them it fails at once (a script must never hang on a prompt)."""

    def passphrase() -> bytes:
        if file is not None:
            return read_secret(file)
        if os.environ.get(variable):
            return os.environ[variable].encode()
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass(f"{prompt}: ")
            if confirm and getpass.getpass(f"{prompt} (again): ") != secret:
                raise MinicaError("the two passphrases differ")
            if not secret:
                raise MinicaError("an empty passphrase is not allowed")
            return secret.encode()
        raise MinicaError(
            f"{what} and no passphrase was given",
            hint=f"use --passphrase-file FILE or set {variable}",
        )

    return passphrase


def write(path: Path, data: bytes) -> None:
    from ..atomic import write_atomic

    try:
        write_atomic(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


def write_key(path: Path, data: bytes) -> None:
    """Write a secret (a key, a PKCS#12 file): mode 0600, never over an existing file."""
    from ..atomic import write_new

    try:
        write_new(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


def check_writable(*paths: Path | None) -> None:
    """Refuse before signing, not after, when an output cannot be written where asked."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise MinicaError(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            raise MinicaError(f"cannot write {path}: there is no folder {path.parent}")
        if not os.access(path.parent, os.W_OK):  # read-only mount, or not ours
            raise MinicaError(f"cannot write {path}: the folder {path.parent} is not writable")


def refuse_existing(key_path: Path) -> None:
    if key_path.exists() or key_path.is_symlink():
        raise MinicaError(
            f"{key_path} already exists; minica never overwrites a key file",
            hint="choose another path, or remove the old file first",
        )
