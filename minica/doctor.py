"""Checking a CA folder, and repairing what can safely be repaired.

What a crash (even SIGKILL) can leave behind, given how minica writes: a temporary file
(``.NAME.tmp-*``) or an init staging folder; a certificate file whose registry row was
never committed (the signing died between the two, before anyone received it). What a
person can break: file modes, a key that does not match the certificate, a lost file.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from . import store
from .atomic import is_leftover
from .ca import CertificateAuthority
from .errors import MinicaError
from .registry import Finding
from .store import STAGING_PREFIX, Store


def examine(
    directory: Path, *, repair: bool, passphrase: Callable[[], bytes] | None = None
) -> list[Finding]:
    """Every problem found in the CA folder ``directory``; with ``repair``, the safe
    repairs are made and marked. NotFoundError if there is no CA there at all.

    It holds the CA's exclusive lock throughout, and the registry checks itself under its
    own write lock, so that a write in progress in another process is never taken for
    debris of a crash.
    """
    authority = CertificateAuthority.open(directory, passphrase)
    folder = authority.folder
    assert folder is not None
    with authority.exclusive():
        findings = _leftovers(folder, repair) + _modes(folder, repair)
        findings += authority.registry.check(repair=repair, issued_by=authority.issued_by)
    return findings + _key_matches(authority)


def _leftovers(folder: Store, repair: bool) -> list[Finding]:
    found = [
        path
        for place in (folder.directory, folder.path(store.PRIVATE))
        if place.is_dir()
        for path in place.iterdir()
        if is_leftover(path) or path.name.startswith(STAGING_PREFIX)
    ]
    findings = []
    for path in sorted(found):
        if repair:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
        findings.append(Finding(f"{path} is left over from an interrupted write", repair))
    return findings


def _modes(folder: Store, repair: bool) -> list[Finding]:
    findings = []
    for path, wanted in (
        (folder.path(store.PRIVATE), 0o700),
        (folder.path(store.CA_KEY), 0o600),
    ):
        if path.is_symlink():
            findings.append(
                Finding(f"{path} is a symbolic link; a CA key belongs in the folder", None)
            )
            continue
        if not path.exists():
            findings.append(Finding(f"{path} is missing", None))
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~wanted:
            if repair:
                os.chmod(path, wanted)
            findings.append(Finding(f"{path} has mode {mode:o}, more open than {wanted:o}", repair))
    return findings


def _key_matches(authority: CertificateAuthority) -> list[Finding]:
    try:
        private_key = authority.private_key
    except MinicaError as error:
        return [Finding(f"the CA key could not be checked: {error}", None)]
    if private_key.public_key() != authority.certificate.public_key():
        return [Finding("the CA key does not belong to ca.crt", None)]
    return []
