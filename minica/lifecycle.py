"""What happens to certificates after they are issued: the rules of revocation, renewal
and CRLs, and finding a certificate by serial or file. Functions of a registry and a
signer: CertificateAuthority calls them, and knows nothing of how they work.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path

from cryptography import x509

from . import store
from .errors import ConflictError, InputError, NotFoundError, PolicyError, StorageError
from .formats import parse_serial, serial_hex
from .issuer import Issued, Signer
from .loading import UNREADABLE
from .registry import Record, Registry, unknown_serial
from .requests import load_certificate, load_crl
from .revocation import revocation_list
from .usages import REVOCATION_REASONS
from .validity import lifetime

CRL_DAYS = 7  # CA/B Forum: a CRL for end-entity certificates is valid for 10 days at most

Exclusive = AbstractContextManager[None]

# What a renewal must carry over unchanged: the certificate's meaning. (Serial, dates, the
# key identifiers and the CA's URLs may differ.)
_KEPT_EXTENSIONS = (
    x509.BasicConstraints,
    x509.KeyUsage,
    x509.ExtendedKeyUsage,
    x509.SubjectAlternativeName,
    x509.NameConstraints,
    x509.CertificatePolicies,
    x509.OCSPNoCheck,
)


def serial_of(text: str) -> str:
    """A serial in minica's form from any form a user types; InputError if it is none."""
    try:
        return parse_serial(text)
    except ValueError:
        raise InputError(f"{_short(text)!r} is not a serial number (hexadecimal)") from None


def check_reason(reason: str) -> None:
    if reason not in REVOCATION_REASONS:
        known = ", ".join(REVOCATION_REASONS)
        raise InputError(
            f"unknown revocation reason {_short(reason)!r} (known: {known})", code="unknown-reason"
        )


def check_ca_compromise(certificate: x509.Certificate) -> None:
    """ca-compromise is for CA certificates (RFC 5280 5.3.1; the CA/B Forum forbids it for
    leaves)."""
    if not path_constraints(certificate).ca:
        raise PolicyError("ca-compromise is for CA certificates; use key-compromise")


def path_constraints(certificate: x509.Certificate) -> x509.BasicConstraints:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return x509.BasicConstraints(ca=False, path_length=None)


def path_length_of(certificate: x509.Certificate) -> int | None:
    return path_constraints(certificate).path_length


def check_renewable(record: Record) -> None:
    if record.revoked_at is not None:
        raise ConflictError(
            f"certificate {record.serial} is revoked; issue a new one instead",
            code="renew-revoked",
        )


def check_same_certificate(old: x509.Certificate, new: Issued) -> None:
    """Refuse a renewal that would not reproduce the original: its subject, and every
    extension that says what the certificate is for or where it may be used."""
    if new.certificate.subject != old.subject:
        raise _changed(old, "subject")
    for kind in _KEPT_EXTENSIONS:
        if _extension(old, kind) != _extension(new.certificate, kind):
            raise _changed(old, kind.__name__)


def _extension(certificate: x509.Certificate, kind: type[x509.ExtensionType]) -> object:
    try:
        extension = certificate.extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None
    return extension.critical, extension.value


def _changed(old: x509.Certificate, what: str) -> PolicyError:
    return PolicyError(
        f"renewing {serial_hex(old.serial_number)} would change its {what} "
        "(its profile or CA changed since it was issued); issue a new certificate instead",
        code="renew-changes",
    )


def sign_crl(
    signer: Signer, registry: Registry, now: datetime, days: int | None
) -> x509.CertificateRevocationList:
    """A CRL of every revocation in ``registry``, with a new CRL number, kept as the
    registry's latest. ``days`` past the CA's own expiry is refused; the default lifetime
    is cut to it. Everything is checked before a number is spent."""
    explicit = days is not None
    _, next_update, _ = lifetime(
        now, days if days is not None else CRL_DAYS, explicit=explicit, issuer=signer.validity
    )
    number, revoked = registry.next_crl(now)
    crl = revocation_list(signer, revoked, number=number, now=now, next_update=next_update)
    registry.record_crl(number, crl)
    return crl


def crl_number(crl: x509.CertificateRevocationList) -> int:
    """The CRL's number; 0 for a CRL without one (made elsewhere: older than any of ours)."""
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except (x509.ExtensionNotFound, *UNREADABLE):
        return 0  # (a damaged one too: a CRL signed by minica always has its number)


def latest_crl(registry: Registry, folder: store.Store | None) -> x509.CertificateRevocationList:
    """The newest CRL the registry keeps; for a CA folder from before the registry kept
    them, the newest of crl.pem and crl.der. NotFoundError if there is none."""
    kept = registry.latest_crl()
    if kept is not None:
        return kept
    paths = [folder.path(name) for name in (store.CRL, store.CRL_DER)] if folder else []
    found = [load_crl(path.read_bytes(), str(path)) for path in paths if path.is_file()]
    if not found:
        raise NotFoundError("this CA has signed no CRL yet", code="no-crl")
    return max(found, key=crl_number)


def record_of(
    registry: Registry, certificate: x509.Certificate, *, registry_alone: bool = False
) -> Record:
    """The row of ``certificate`` if this registry's CA issued exactly it. With
    ``registry_alone``, a recorded certificate that cannot be read back does not stop it:
    the serial is taken on the registry's word (revoking must work without the file)."""
    serial = serial_hex(certificate.serial_number)
    row = registry.get(serial)
    if row is not None:
        try:
            if certificate == registry.certificate(serial):
                return row
        except StorageError:
            if registry_alone:
                return row
            raise
    raise NotFoundError(
        f"certificate {serial} ({_short(_subject_text(certificate))}) was not issued by this CA",
        code="not-issued-here",
    )


def find(registry: Registry, serial_or_file: str) -> Record:
    """The row of a certificate named by its serial or given as a file; needs the
    registry alone."""
    path = Path(serial_or_file)
    if path.is_file():
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InputError(f"cannot read {serial_or_file}: {error.strerror}") from None
        return record_of(registry, load_certificate(data, serial_or_file), registry_alone=True)
    try:
        serial = parse_serial(serial_or_file)
    except ValueError:
        problem = f"{_short(serial_or_file)}: no such file, and not a serial number"
        raise InputError(problem) from None
    row = registry.get(serial)
    if row is None:
        raise unknown_serial(serial)
    return row


def _subject_text(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:  # a subject in an encoding cryptography cannot read
        return "an unreadable subject"


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
