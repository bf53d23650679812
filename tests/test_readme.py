"""The README's Python examples run, as written: the documentation cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

BLOCKS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block-{n}" for n in range(len(BLOCKS))])
def test_readme_python_block_runs(
    code: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    minica_ca: object,
    minica_certificate: object,
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    for name, test in list(namespace.items()):  # blocks that define tests: run them too
        if name.startswith("test_") and callable(test):
            test(minica_ca, minica_certificate)


def test_the_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4
