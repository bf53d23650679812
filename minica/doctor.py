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
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509

from . import keys, store
from .errors import MinicaError
from .formats import iso, serial_hex
from .registry import Record, Registry
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
    repairs are made and marked. StoreError if there is no CA there at all."""
    ca_store = Store.open(directory)
    findings: list[Finding] = []
    for check in (_leftovers, _modes, _registry_and_files):
        findings += check(ca_store, repair)
    findings += _key_matches(ca_store, passphrase)
    return findings


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
            shutil.rmtree(path) if path.is_dir() else path.unlink()
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


def _registry_and_files(ca_store: Store, repair: bool) -> list[Finding]:
    try:
        with sqlite3.connect(ca_store.path(store.REGISTRY)) as connection:
            (integrity,) = connection.execute("PRAGMA integrity_check").fetchone()
    except sqlite3.Error as error:
        return [Finding(f"the registry cannot be read: {error}", None)]
    if integrity != "ok":
        return [Finding(f"the registry is damaged: {integrity}", None)]
    registry = ca_store.registry
    rows = {record.serial for record in registry.records("all", now=datetime.now(timezone.utc))}
    folder = ca_store.path(store.CERTS)
    files = {path.stem: path for path in folder.glob("*.crt")} if folder.is_dir() else {}
    findings = [
        Finding(f"registry row {serial} has no certificate file {folder / serial}.crt", None)
        for serial in sorted(rows - files.keys())
    ]
    for serial in sorted(files.keys() - rows):
        findings.append(_orphan(files[serial], registry, repair))
    return findings


def _orphan(path: Path, registry: Registry, repair: bool) -> Finding:
    """A certificate file with no row: signed, but the signing died before its commit."""
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError:
        if repair:
            path.unlink()
        return Finding(f"{path} is not a readable certificate and has no registry row", repair)
    if serial_hex(certificate.serial_number) != path.stem:
        return Finding(f"{path} holds certificate {serial_hex(certificate.serial_number)}", None)
    if repair:  # keep a record of everything the CA key signed, whoever received it
        registry.add(
            Record(
                serial=path.stem,
                subject=certificate.subject.rfc4514_string(),
                profile=RECOVERED_PROFILE,
                contact=None,
                not_before=iso(certificate.not_valid_before_utc),
                not_after=iso(certificate.not_valid_after_utc),
                issued_at=iso(certificate.not_valid_before_utc),
            )
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
