"""Checking a CA folder, and repairing what can safely be repaired.

What a crash (even SIGKILL) can leave behind, given how minica writes: a temporary file
(``.NAME.tmp-*``) or an init staging folder; a certificate file whose registry row was
never committed (the signing died between the two, before anyone received it). What a
person can break: file modes, a key that does not match the certificate, a lost file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from . import keys, store
from .errors import MinicaError
from .formats import iso, serial_hex
from .registry import Record, insert
from .store import TEMPORARY_MARK, Store

RECOVERED_PROFILE = "unknown (recovered by doctor)"


@dataclass(frozen=True)
class Finding:
    """One problem: what is wrong, and whether it was repaired (None: it cannot be)."""

    problem: str
    repaired: bool | None = False


def examine(
    directory: Path, *, repair: bool, passphrase: Callable[[], bytes] | None = None
) -> list[Finding]:
    """Every problem found in the CA folder ``directory``; with ``repair``, the safe
    repairs are made and marked. StoreError if there is no CA there at all.

    It holds the folder lock and the registry's write lock throughout, so that a write
    in progress in another process is never taken for debris of a crash.
    """
    ca_store = Store.open(directory)
    registry_findings = _registry_integrity(ca_store)
    if registry_findings:
        return registry_findings + _modes(ca_store, repair) + _key_matches(ca_store, passphrase)
    with ca_store.lock(), ca_store.registry.transaction() as connection:
        findings = _leftovers(ca_store, repair) + _modes(ca_store, repair)
        findings += _registry_and_files(ca_store, connection, repair)
    return findings + _key_matches(ca_store, passphrase)


def _registry_integrity(ca_store: Store) -> list[Finding]:
    try:
        with closing(sqlite3.connect(ca_store.path(store.REGISTRY))) as connection:
            (integrity,) = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.Error as error:
        return [Finding(f"the registry cannot be read: {error}", None)]
    return [] if integrity == "ok" else [Finding(f"the registry is damaged: {integrity}", None)]


def _leftovers(ca_store: Store, repair: bool) -> list[Finding]:
    folders = [ca_store.directory, ca_store.path(store.CERTS), ca_store.path(store.PRIVATE)]
    found = [
        path
        for folder in folders
        if folder.is_dir()
        for path in folder.iterdir()
        if TEMPORARY_MARK in path.name or path.name.startswith(".minica-init-")
    ]
    findings = []
    for path in sorted(found):
        if repair:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(True)
        findings.append(Finding(f"{path} is left over from an interrupted write", repair))
    return findings


def _modes(ca_store: Store, repair: bool) -> list[Finding]:
    findings = []
    for path, wanted in (
        (ca_store.path(store.PRIVATE), 0o700),
        (ca_store.path(store.CA_KEY), 0o600),
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


def _registry_and_files(
    ca_store: Store, connection: sqlite3.Connection, repair: bool
) -> list[Finding]:
    rows = {serial for (serial,) in connection.execute("SELECT serial FROM certificates")}
    folder = ca_store.path(store.CERTS)
    files = {path.stem: path for path in folder.glob("*.crt")} if folder.is_dir() else {}
    findings = [
        Finding(f"registry row {serial} has no certificate file {folder / serial}.crt", None)
        for serial in sorted(rows - files.keys())
    ]
    for serial in sorted(files.keys() - rows):
        findings.append(_orphan(files[serial], connection, repair))
    return findings


def _orphan(path: Path, connection: sqlite3.Connection, repair: bool) -> Finding:
    """A certificate file with no row: signed, but the signing died before its commit."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        if repair:
            path.unlink(missing_ok=True)
        return Finding(f"{path} is not a readable certificate and has no registry row", repair)
    if serial_hex(certificate.serial_number) != path.stem:
        return Finding(f"{path} holds certificate {serial_hex(certificate.serial_number)}", None)
    if repair:  # keep a record of everything the CA key signed, whoever received it
        insert(
            connection,
            Record(
                serial=path.stem,
                subject=certificate.subject.rfc4514_string(),
                profile=RECOVERED_PROFILE,
                contact=None,
                not_before=iso(certificate.not_valid_before_utc),
                not_after=iso(certificate.not_valid_after_utc),
                issued_at=iso(certificate.not_valid_before_utc),
            ),
        )
    return Finding(f"{path} has no registry row (a signing was interrupted)", repair)


def _key_matches(ca_store: Store, passphrase: Callable[[], bytes] | None) -> list[Finding]:
    try:
        certificate = x509.load_pem_x509_certificate(ca_store.read(store.CA_CERT))
        data = ca_store.read(store.CA_KEY)
        secret = passphrase() if passphrase and b"ENCRYPTED" in data else None
        private_key = keys.load_private_key(data, str(ca_store.path(store.CA_KEY)), secret)
    except (MinicaError, ValueError) as error:
        return [Finding(f"the CA key could not be checked: {error}", None)]
    if private_key.public_key() != certificate.public_key():
        return [Finding("the CA key does not belong to ca.crt", None)]
    return []
