"""The README's Python examples run, as written: the documentation cannot drift."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block-{n}" for n in range(len(BLOCKS))])
def test_readme_python_block_runs(
    code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    for name, test in list(namespace.items()):  # blocks that define tests: run them too,
        if name.startswith("test_") and callable(test):  # with the plugin's fixtures they name
            fixtures = inspect.signature(test).parameters
            test(*(request.getfixturevalue(fixture) for fixture in fixtures))


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4
