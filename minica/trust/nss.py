"""NSS databases, where Chromium (~/.pki/nssdb, made if missing; snap Chromium's own) and
every Firefox profile (cert9.db, or the old cert8.db) look for roots, changed and
checked with NSS's own certutil (Debian's libnss3-tools): `certutil -V -u L` asks NSS
itself whether it trusts the root as a CA for TLS."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from .base import Outcome, Root, run, said

Action = Callable[[str, Path, Root], Outcome]

MISSING = (
    "certutil not found: install it (Debian, Ubuntu: apt install libnss3-tools; "
    "Fedora: dnf install nss-tools)"
)


def home() -> Path:
    return Path(os.environ.get("HOME") or Path.home())


def databases() -> list[tuple[str, Path]]:
    """(prefix, folder) of every NSS database of this user: Chromium's (made by install
    when missing), snap Chromium's, each Firefox profile's; `sql:` for cert9.db, `dbm:`
    for an old cert8.db."""
    found: list[tuple[str, Path]] = [("sql", home() / ".pki" / "nssdb")]
    snap = home() / "snap" / "chromium" / "current" / ".pki" / "nssdb"
    if _is_dir(snap):
        found.append(("sql", snap))
    for profiles in (
        home() / ".mozilla" / "firefox",
        home() / "snap" / "firefox" / "common" / ".mozilla" / "firefox",
    ):
        for profile in sorted(profiles.glob("*")) if _is_dir(profiles) else []:
            if (profile / "cert9.db").exists():
                found.append(("sql", profile))
            elif (profile / "cert8.db").exists():
                found.append(("dbm", profile))
    return found


class NssStore:
    name = "nss"

    def found(self) -> bool:
        return shutil.which("certutil") is not None or any(
            (folder / "cert9.db").exists() or (folder / "cert8.db").exists()
            for _, folder in databases()
        )

    def install(self, root: Root) -> list[Outcome]:
        return [self._each(prefix, folder, root, self._add) for prefix, folder in databases()]

    def uninstall(self, root: Root) -> list[Outcome]:
        return [self._each(prefix, folder, root, self._remove) for prefix, folder in databases()]

    def status(self, root: Root) -> list[Outcome]:
        outcomes = []
        for prefix, folder in databases():
            if shutil.which("certutil") is None:
                outcomes.append(Outcome(self.name, str(folder), "failed", False, MISSING))
            elif not _exists(folder):
                outcomes.append(Outcome(self.name, str(folder), "not trusted", False))
            else:
                trusted = _trusted(prefix, folder, root)
                outcomes.append(
                    Outcome(
                        self.name, str(folder), "trusted" if trusted else "not trusted", trusted
                    )
                )
        return outcomes

    def _each(self, prefix: str, folder: Path, root: Root, act: Action) -> Outcome:
        if shutil.which("certutil") is None:
            return Outcome(self.name, str(folder), "failed", False, MISSING)
        return act(prefix, folder, root)

    def _add(self, prefix: str, folder: Path, root: Root) -> Outcome:
        if not _exists(folder):
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as error:
                detail = f"cannot make it: {error.strerror}"
                return Outcome(self.name, str(folder), "failed", False, detail)
            made = run(["certutil", "-N", "-d", f"{prefix}:{folder}", "--empty-password"])
            if made.returncode != 0:
                return Outcome(
                    self.name, str(folder), "failed", False, f"certutil -N: {said(made)}"
                )
        if _trusted(prefix, folder, root) and _nicknames(prefix, folder, root):
            return Outcome(self.name, str(folder), "already installed", True)
        with tempfile.NamedTemporaryFile(suffix=".pem") as file:
            file.write(root.pem)
            file.flush()
            done = run(
                [
                    "certutil",
                    "-A",
                    "-d",
                    f"{prefix}:{folder}",
                    "-n",
                    root.label,
                    "-t",
                    "C,,",
                    "-i",
                    file.name,
                ]
            )
        if done.returncode != 0:
            return Outcome(self.name, str(folder), "failed", False, f"certutil -A: {said(done)}")
        trusted = _trusted(prefix, folder, root)
        return Outcome(self.name, str(folder), "installed" if trusted else "failed", trusted,
                       "" if trusted else "NSS does not trust it after certutil -A")  # fmt: skip

    def _remove(self, prefix: str, folder: Path, root: Root) -> Outcome:
        names = _nicknames(prefix, folder, root) if _exists(folder) else []
        if not names:
            return Outcome(
                self.name,
                str(folder),
                "not installed",
                _exists(folder) and _trusted(prefix, folder, root),
            )
        for name in names:
            done = run(["certutil", "-D", "-d", f"{prefix}:{folder}", "-n", name])
            if done.returncode != 0:
                return Outcome(self.name, str(folder), "failed", True, f"certutil -D: {said(done)}")
        trusted = _trusted(prefix, folder, root)
        return Outcome(self.name, str(folder), "removed" if not trusted else "failed", trusted)


def _exists(folder: Path) -> bool:
    return _is_file(folder / "cert9.db") or _is_file(folder / "cert8.db")


# A HOME the user may not enter (`su` keeps root's) makes pathlib raise PermissionError;
# there, no database is found, and install says why it cannot make one.
def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _is_file(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _trusted(prefix: str, folder: Path, root: Root) -> bool:
    """NSS's own answer: is the certificate under our nickname a CA it trusts for TLS?"""
    done = run(["certutil", "-V", "-d", f"{prefix}:{folder}", "-n", root.label, "-u", "L"])
    return done.returncode == 0 and "valid" in done.stdout and "fail" not in done.stdout.lower()


def _nicknames(prefix: str, folder: Path, root: Root) -> list[str]:
    """Our nickname, if this database holds exactly our root under it (install's)."""
    done = run(["certutil", "-L", "-d", f"{prefix}:{folder}", "-n", root.label, "-a"])
    if done.returncode != 0:
        return []
    held = x509.load_pem_x509_certificates(done.stdout.encode())
    return [root.label] if any(c == root.certificate for c in held) else []
