"""Standard output and error as the CLI writes them, and what it does when they cannot be
written (a full device, a closed pipe, EIO): a StreamError, which the entry point reports
once, whichever command was writing."""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO, cast


def write(stream: TextIO | None, data: bytes) -> None:
    """Write bytes to standard output or error, flushed; StreamError if that fails."""
    name = "standard error" if stream is not None and stream is sys.stderr else "standard output"
    try:
        if stream is None:  # started with the descriptor closed (`minica ... >&-`)
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        stream.flush()  # what was printed before comes first
        stream.buffer.write(data)
        stream.buffer.flush()
    except OSError as error:
        raise StreamError(name, stream, error) from None


class StreamError(Exception):
    """Writing to standard output or standard error failed; the entry point reports it."""

    def __init__(self, name: str, stream: TextIO | None, error: OSError) -> None:
        super().__init__(f"cannot write to {name}: {error.strerror or error}")
        self.name = name
        self.stream = stream  # the stream itself, not a _Guarded wrapper
        self.error = error


class _Guarded:
    """A standard stream, or its binary buffer, whose write failures raise StreamError:
    told apart from every other OSError, wherever the write happened (print, typer.echo,
    sys.stdout.buffer). Everything else is the stream's own."""

    def __init__(self, stream: Any, name: str, owner: TextIO) -> None:
        self._stream = stream
        self._name = name
        self._owner = owner

    def write(self, data: Any) -> Any:
        return self._guard(self._stream.write, data)

    def writelines(self, lines: Any) -> None:
        self._guard(self._stream.writelines, lines)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    @property
    def buffer(self) -> _Guarded:
        return _Guarded(self._stream.buffer, self._name, self._owner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def _guard(self, method: Callable[..., Any], *arguments: Any) -> Any:
        try:
            return method(*arguments)
        except OSError as error:
            raise StreamError(self._name, self._owner, error) from None


class _Closed:
    """Stands in for a standard stream that Python found closed at start (None: `minica
    list >&-`): a write fails as it would on the closed descriptor; nothing to flush."""

    encoding = "utf-8"
    errors = "strict"

    def write(self, data: object) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def writelines(self, lines: object) -> None:
        self.write(lines)

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> _Closed:
        return self


@contextmanager
def guarded_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr raise StreamError on a failed write while this lasts."""
    saved = sys.stdout, sys.stderr
    sys.stdout = _guarded(sys.stdout, "standard output")
    sys.stderr = _guarded(sys.stderr, "standard error")
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _guarded(stream: TextIO | None, name: str) -> TextIO:
    stream = stream if stream is not None else cast(TextIO, _Closed())
    return cast(TextIO, _Guarded(stream, name, stream))


def flush_streams() -> None:
    """Flush standard output and error now, so that a failure is ours to report rather than
    the interpreter's at exit (a traceback-like `Exception ignored` and exit code 120)."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()


def discard(stream: TextIO | None) -> None:
    """Point a failed stream's descriptor at /dev/null, so that what is still buffered for
    it cannot fail again when the interpreter flushes it at exit (the Python docs' note on
    SIGPIPE does the same)."""
    descriptor = descriptor_of(stream)
    if descriptor is None:
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)


def descriptor_of(stream: TextIO | None) -> int | None:
    try:
        return stream.fileno() if stream is not None else None
    except (OSError, ValueError):  # io.StringIO, a closed stream
        return None
