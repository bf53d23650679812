"""Running the CLI in this process, through its real entry point, for tests that run it
hundreds of times (a fresh `python -m minica` costs ~0.25 s; this, milliseconds)."""

from __future__ import annotations

import io
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from conftest import Result

from minica.cli import main


def run_in_process(*args: str | Path) -> Result:
    """``minica ARGS`` through minica.cli.main with sys.argv set, its exit code and output.

    Any exception but SystemExit propagates: in a shell it would have been a traceback.
    """
    stdout, stderr = _capture(), _capture()
    saved = sys.argv
    sys.argv = ["minica", *map(str, args)]
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            main()
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    finally:
        sys.argv = saved
    return Result(code, _text(stdout), _text(stderr))


def _capture() -> io.TextIOWrapper:
    # A text stream with a .buffer, as sys.stdout has: list --json and sign write bytes to it
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)


def _text(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8")
