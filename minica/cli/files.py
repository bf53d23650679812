"""The user's files as the CLI reads and writes them: inputs, outputs, keys and secrets,
and standard output and error.

Failures become MinicaError naming the file; outputs are checked before anything is
signed, so that a refused output never leaves a registry row behind. Standard output and
error themselves are streams.py's.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import MinicaError
from . import streams

if TYPE_CHECKING:
    from ..atomic import Staged


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


STDOUT = "-"  # as an output path: standard output, as in openssl, tar and curl


def is_stdout(path: Path | None) -> bool:
    return path is not None and str(path) == STDOUT


def shown(path: Path) -> str:
    """How a message names an output: its path, or `standard output` for `-`."""
    return "standard output" if is_stdout(path) else str(path)


def write(path: Path, data: bytes) -> None:
    """Write an output. `-`, or the very file standard output (or error) already writes to
    (/dev/stdout, /dev/fd/1, whatever it is), goes through that stream, in order with the
    rest; anything else as ``atomic.write_atomic`` decides: a regular file is replaced by a
    rename (through a symlink: its target), a FIFO or device is written through, a folder
    is refused."""
    from ..atomic import write_atomic

    stream = _standard_stream(path)
    if stream is not None:
        streams.write(stream, data)
        return
    try:
        write_atomic(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


def write_key(path: Path, data: bytes) -> None:
    """Write a secret (a key, a PKCS#12 file): mode 0600, never over an existing file."""
    from ..atomic import write_new

    _refuse_stdout(path)
    try:
        write_new(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


class Outputs:
    """The outputs of one new certificate, written while the registry holds its row back:
    files are staged (written beside their place, on disk) and put in place only once the
    row is committed, or taken back if anything fails; standard output, FIFOs and devices
    are written at once (writing them is delivering). See ``outputs``."""

    def __init__(self) -> None:
        self._staged: list[Staged] = []

    def write(self, path: Path, data: bytes) -> None:
        stream = _standard_stream(path)
        if stream is not None:
            streams.write(stream, data)
            return
        self._stage(path, data, mode=0o644, new=False)

    def write_key(self, path: Path, data: bytes) -> None:
        _refuse_stdout(path)
        self._stage(path, data, mode=0o600, new=True)

    def _stage(self, path: Path, data: bytes, *, mode: int, new: bool) -> None:
        from ..atomic import Staged

        try:
            self._staged.append(Staged(path, data, mode, new=new))
        except OSError as error:
            raise MinicaError(f"cannot write {path}: {error.strerror}") from None

    def publish(self) -> None:
        try:
            for staged in self._staged:
                try:
                    staged.publish()
                except OSError as error:
                    raise MinicaError(f"cannot write {staged.path}: {error.strerror}") from None
        finally:
            self.discard()  # whatever is still staged (after a failure) leaves no file

    def discard(self) -> None:
        for staged in self._staged:
            staged.discard()


@contextmanager
def outputs() -> Iterator[Outputs]:
    """Outputs for a new certificate, put in place when the block ends well (after the
    registry committed it), discarded when it raises (and nothing was recorded)."""
    staged = Outputs()
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    staged.publish()


def key_path(out: Path, key_out: Path | None) -> Path:
    """Where a new key goes: ``key_out``, else ``out`` with .key in place of its suffix
    (refused where that is no place for a key: next to standard output or a device)."""
    if key_out is not None:
        return key_out
    if _standard_stream(out) is not None or (out.exists() and not out.is_file()):
        what = "standard output" if is_stdout(out) else "not a file"
        raise MinicaError(
            f"--out {out} is {what}, so the key needs --key-out (its default is --out with .key)"
        )
    return out.with_suffix(".key")


def refuse_same_file(paths: dict[str, Path | None]) -> None:
    """Refuse, before anything is made, two options (outputs, or an output and the key read)
    that name one file: writing one would destroy the other, the new key most of all."""
    named = [(option, path) for option, path in paths.items() if path and _replaceable(path)]
    for index, (first, path) in enumerate(named):
        for second, other in named[index + 1 :]:
            if _same_file(path, other):
                raise MinicaError(
                    f"{first} and {second} name the same file ({other}): "
                    "writing one would destroy the other",
                    hint="give each its own path",
                )


def _replaceable(path: Path) -> bool:
    """Whether writing ``path`` would replace a file (one not there yet, or a regular
    one): writing twice to a device or a FIFO destroys nothing."""
    if is_stdout(path):
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _same_file(path: Path, other: Path) -> bool:
    try:
        if path.resolve() == other.resolve():  # also two names for a file not made yet
            return True
        return os.path.samefile(path, other)  # hard links, bind mounts
    except (OSError, RuntimeError):  # one not made yet; a symlink loop (refused on writing)
        return False


def check_writable(*paths: Path | None) -> None:
    """Refuse before signing, not after, when an output cannot be written where asked."""
    from ..atomic import output_target

    for path in paths:
        if path is None or _standard_stream(path) is not None:
            continue
        try:
            target = output_target(path)
        except OSError as error:
            raise MinicaError(f"cannot write {path}: {error.strerror}") from None
        if not target.replace:  # a FIFO or a device: written through, if we may
            if not os.access(target.path, os.W_OK):
                raise MinicaError(f"cannot write {path}: permission denied")
            continue
        folder = target.path.parent  # a symlink's target is replaced in its own folder
        if not folder.is_dir():
            raise MinicaError(f"cannot write {path}: there is no folder {folder}")
        if not os.access(folder, os.W_OK):  # read-only mount, or not ours
            raise MinicaError(f"cannot write {path}: the folder {folder} is not writable")


def refuse_existing(key_path: Path) -> None:
    """Refuse a key (or PKCS#12) path before anything is made: taken, or standard output."""
    _refuse_stdout(key_path)
    if key_path.exists() or key_path.is_symlink():
        raise MinicaError(
            f"{key_path} already exists; minica never overwrites a key file",
            hint="choose another path, or remove the old file first",
        )


def _refuse_stdout(path: Path) -> None:
    # A key on a terminal or in a pipe is a secret shown or passed on unprotected.
    if is_stdout(path):
        raise MinicaError(
            "minica never writes a key to standard output: keys go only to new files, mode 0600",
            hint="give a file path instead of -",
        )


def _standard_stream(path: Path) -> TextIO | None:
    """sys.stdout for `-`; sys.stdout or sys.stderr if ``path`` is the file it writes to."""
    if is_stdout(path):
        return sys.stdout
    try:
        info = os.stat(path)
    except OSError:
        return None
    for stream in (sys.stdout, sys.stderr):
        descriptor = streams.descriptor_of(stream)
        if descriptor is not None and os.path.samestat(info, os.fstat(descriptor)):
            return stream
    return None
