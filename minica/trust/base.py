"""What every trust store module shares: the root as it goes into a store (``Root``),
what a store did at one place (``Outcome``), the ``Store`` protocol, and running a
store's own tool."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ..constraints import NameConstraints

RUN_TIMEOUT = 60.0  # seconds for one store tool (update-ca-certificates, certutil, keytool)


@dataclass(frozen=True)
class Root:
    """The certificate that goes into the stores, and the name it goes under there: the
    CA's name and the start of its SHA-256 fingerprint, so that it says what it is and
    two CAs of one name never meet."""

    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    @property
    def common_name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()

    @property
    def label(self) -> str:
        """For stores that show a name (NSS nickname): `minica CN (fingerprint)` (no
        colon: NSS reads `token:` before one)."""
        return f"minica {self.common_name.replace(':', ' ')} ({self.fingerprint[:16]})"

    @property
    def slug(self) -> str:
        """For files and aliases: `minica-cn-fingerprint`, letters, digits and dashes."""
        simple = re.sub(r"[^a-z0-9]+", "-", self.common_name.lower()).strip("-")[:40]
        return f"minica-{simple or 'root'}-{self.fingerprint[:16]}"

    @property
    def constraints(self) -> NameConstraints:
        return NameConstraints.of(self.certificate)


@dataclass(frozen=True)
class Outcome:
    """What a store did, or found, at one place: ``action`` in words (installed, already
    installed, removed, not installed, trusted, not trusted, failed), ``trusted`` after
    it, and ``detail`` (why it failed, with a ``hint``)."""

    store: str
    location: str
    action: str
    trusted: bool
    detail: str = ""
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.action == "failed"

    def to_json(self) -> dict[str, object]:
        return {
            "store": self.store,
            "location": self.location,
            "action": self.action,
            "trusted": self.trusted,
            "detail": self.detail or None,
        }


class Store(Protocol):
    name: str

    def found(self) -> bool:
        """Whether the machine has this store (for a run that names none)."""
        ...

    def install(self, root: Root) -> list[Outcome]: ...

    def uninstall(self, root: Root) -> list[Outcome]: ...

    def status(self, root: Root) -> list[Outcome]: ...


def run(command: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """A store tool's run, its output as text; never raises: a tool that fails, hangs past
    RUN_TIMEOUT or cannot be started is a run that failed, with an error line saying so."""
    argv = [str(part) for part in command]
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        why = f"error: {argv[0]} did not finish within {RUN_TIMEOUT:g} s"
    except OSError as error:
        why = f"error: cannot run {argv[0]}: {error.strerror}"
    return subprocess.CompletedProcess(argv, 1, "", why)


def said(done: subprocess.CompletedProcess[str]) -> str:
    """The last line a tool said, for a detail: the last that names an error, on either
    stream, if one does (keytool puts `keytool error: ...` on stdout and, before it,
    "Certificate was added to keystore" on stderr when it then fails to write the store)."""
    lines = [line.strip() for line in f"{done.stdout}\n{done.stderr}".splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    if errors:
        return errors[-1]
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1].strip() if lines else f"exit status {done.returncode}"
