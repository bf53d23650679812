"""A plain (non-editable) install carries the built-in profiles and the console command."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, minica_argv


def pip(*args: str | Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *map(str, args)],
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_a_built_wheel_installs_a_working_minica_with_its_profiles(tmp_path: Path) -> None:
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", REPO)
    wheel = next((tmp_path / "dist").glob("minica_pki-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert {
        f"minica/profiles/{p}.yaml" for p in ("server", "client", "code-signing", "server-client")
    } <= set(names)
    assert any(name.endswith("entry_points.txt") for name in names)

    target = tmp_path / "site"
    pip("install", "--no-deps", "--target", target, wheel)
    env = {**os.environ, "PYTHONPATH": str(target)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=elsewhere, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run(sys.executable, "-c", "import minica; print(minica.__file__)").startswith(
        str(target)
    )
    assert "server-client" in run(*minica_argv("profiles"))
    assert run(str(target / "bin" / "minica"), "--version").startswith("minica ")
    run(*minica_argv("init"))
    run(str(target / "bin" / "minica"), "issue", "-p", "server", "--cn", "x.test", "--out", "x.crt")
    assert (elsewhere / "x.crt").is_file()
