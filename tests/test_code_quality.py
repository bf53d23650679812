"""ruff (lint and format) and mypy are part of the test run, as STYLE.md asks."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "minica", "tests"],
        ["ruff", "format", "--check", "minica", "tests"],
        ["mypy", "minica"],
        ["mypy", "tests"],
    ],
    ids=["ruff-check", "ruff-format", "mypy", "mypy-tests"],
)
def test_code_quality(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
