"""The service's own certificates — its TLS server certificate and, if asked for, its
delegated OCSP responder — issued by the CA it serves, recorded in the registry like any
other, kept in the CA folder's serve/ (0700, keys 0600) and issued anew before they run
out (at two thirds of their life), without a restart."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography import x509

from ..atomic import write_atomic, write_new
from ..ca import CertificateAuthority
from ..credentials import Credential
from ..errors import InputError
from ..formats import serial_hex
from ..keys import load_private_key, private_key_pem
from ..names import Names, Subject, parse_name

FOLDER = "serve"


def due(credential: Credential, now: datetime) -> bool:
    """Whether it is time to issue the next one: two thirds of its life are gone."""
    start = credential.certificate.not_valid_before_utc
    end = credential.certificate.not_valid_after_utc
    return now >= start + (end - start) * 2 / 3


class Identity:
    """One kind of certificate the service holds (``role``: "tls" or "ocsp"), issued under
    ``profile`` for ``subject`` and ``names``."""

    def __init__(
        self,
        authority: CertificateAuthority,
        role: str,
        profile: str,
        subject: Subject,
        names: Names = Names(),
        *,
        days: int | None = None,
    ) -> None:
        self.authority, self.role, self.profile = authority, role, profile
        self.subject, self.names, self.days = subject, names, days
        self.folder = authority.folder.path(FOLDER) if authority.folder else None
        self.current = self._kept() or self._issue()

    def renew_if_due(self) -> bool:
        """Issue the next certificate if the current one is due or was revoked; whether it
        did."""
        current = self.current.certificate
        record = self.authority.registry.get(serial_hex(current.serial_number))
        revoked = record is not None and record.revoked_at is not None
        if not revoked and not due(self.current, self.authority.clock()):
            return False
        self.current = self._issue()
        return True

    def _kept(self) -> Credential | None:
        """The newest certificate of this role in serve/ that is this CA's, for these names,
        and not yet due."""
        if self.folder is None or not self.folder.is_dir():
            return None
        found = []
        for path in self.folder.glob(f"{self.role}-*.crt"):
            try:
                certificate = x509.load_pem_x509_certificate(path.read_bytes())
                key = load_private_key(path.with_suffix(".key").read_bytes(), str(path))
            except (OSError, ValueError):
                continue  # damaged or half-written: a new one is issued instead
            credential = Credential(certificate, key, tuple(self.authority.intermediates))
            record = self.authority.registry.get(serial_hex(certificate.serial_number))
            if (
                record is not None
                and record.revoked_at is None  # a revoked one is never presented again
                and self.authority.issued_by(certificate)
                and key.public_key() == certificate.public_key()
                and _names_of(certificate) == set(self.names.to_x509())
                and not due(credential, self.authority.clock())
            ):
                found.append(credential)
        return max(found, key=lambda c: c.certificate.not_valid_after_utc, default=None)

    def _issue(self) -> Credential:
        issued, key = self.authority.issue(self.profile, self.subject, self.names, days=self.days)
        credential = Credential(issued.certificate, key, tuple(self.authority.intermediates))
        if self.folder is not None:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            stem = self.folder / f"{self.role}-{serial_hex(issued.certificate.serial_number)}"
            write_new(stem.with_suffix(".key"), private_key_pem(key))
            write_atomic(stem.with_suffix(".crt"), issued.pem)
        return credential


def tls_names(hostnames: list[str], listen_host: str) -> Names:
    """The names of the service's TLS certificate: those given, else localhost and the
    listen address (when it is a particular one, not 0.0.0.0 or ::)."""
    chosen = hostnames or [
        "localhost",
        *([] if listen_host in ("0.0.0.0", "::") else [listen_host]),
    ]
    kinds = [(parse_name(name) or ("dns", name))[0] for name in chosen]  # Names.parse says why not
    return Names.parse(
        dns=[name for name, kind in zip(chosen, kinds, strict=True) if kind == "dns"],
        ip=[name for name, kind in zip(chosen, kinds, strict=True) if kind == "ip"],
    )


def given(chain_path: Path, key_path: Path, chain: bytes, key: bytes) -> Credential:
    """The credential of ``--tls-cert`` and ``--tls-key`` files: a PEM chain (the server's
    certificate first) and its key; InputError for what cannot be used."""
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise InputError(f"{chain_path}: no readable PEM certificate") from None
    private_key = load_private_key(key, str(key_path))
    if private_key.public_key() != certificates[0].public_key():
        raise InputError(f"{key_path} is not the key of the first certificate in {chain_path}")
    return Credential(certificates[0], private_key, tuple(certificates[1:]))


def _names_of(certificate: x509.Certificate) -> set[x509.GeneralName]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(san.value)
