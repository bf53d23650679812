"""minica: a miniature certificate authority for lab PKIs and TLS test fixtures.

The public API is loaded on first use, so that `import minica` (and the CLI) start fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "CertificateAuthority",
    "ConflictError",
    "Credential",
    "CredentialFiles",
    "FixtureCA",
    "InputError",
    "Issued",
    "ManualClock",
    "MinicaError",
    "Names",
    "NotFoundError",
    "PolicyError",
    "Profile",
    "Request",
    "StorageError",
    "Subject",
    "Urls",
    "__version__",
]

_EXPORTS = {
    "CertificateAuthority": "ca",
    "ManualClock": "clock",
    "Credential": "credentials",
    "CredentialFiles": "credentials",
    "FixtureCA": "fixtures",
    "Issued": "issuer",
    "Urls": "issuer",
    "MinicaError": "errors",
    "NotFoundError": "errors",
    "ConflictError": "errors",
    "PolicyError": "errors",
    "InputError": "errors",
    "StorageError": "errors",
    "Names": "names",
    "Subject": "names",
    "Profile": "profiles",
    "Request": "requests",
}

if TYPE_CHECKING:
    from .ca import CertificateAuthority
    from .clock import ManualClock
    from .credentials import Credential, CredentialFiles
    from .errors import (
        ConflictError,
        InputError,
        MinicaError,
        NotFoundError,
        PolicyError,
        StorageError,
    )
    from .fixtures import FixtureCA
    from .issuer import Issued, Urls
    from .names import Names, Subject
    from .profiles import Profile
    from .requests import Request


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'minica' has no attribute {name!r}")
