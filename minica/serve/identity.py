"""The service's own certificates — its TLS server certificate and, if asked for, its
delegated OCSP responder — issued by the CA it serves, recorded in the registry like any
other, kept in the CA folder's serve/ (0700, keys 0600) and issued anew before they run
out (at two thirds of their life), without a restart."""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..atomic import write_atomic, write_new
from ..ca import CertificateAuthority
from ..formats import serial_hex
from ..keys import PrivateKey, load_private_key, private_key_pem
from ..names import Names, Subject

FOLDER = "serve"


@dataclass(frozen=True)
class Credential:
    """A certificate of the service and its key."""

    certificate: x509.Certificate
    private_key: PrivateKey

    def due(self, now: datetime) -> bool:
        """Whether it is time to issue the next one: two thirds of its life are gone."""
        start, end = self.certificate.not_valid_before_utc, self.certificate.not_valid_after_utc
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
        if not revoked and not self.current.due(self.authority.clock()):
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
            credential = Credential(certificate, key)
            record = self.authority.registry.get(serial_hex(certificate.serial_number))
            if (
                record is not None
                and record.revoked_at is None  # a revoked one is never presented again
                and self.authority.issued_by(certificate)
                and key.public_key() == certificate.public_key()
                and _names_of(certificate) == set(self.names.to_x509())
                and not credential.due(self.authority.clock())
            ):
                found.append(credential)
        return max(found, key=lambda c: c.certificate.not_valid_after_utc, default=None)

    def _issue(self) -> Credential:
        issued, key = self.authority.issue(self.profile, self.subject, self.names, days=self.days)
        credential = Credential(issued.certificate, key)
        if self.folder is not None:
            self.folder.mkdir(mode=0o700, exist_ok=True)
            stem = self.folder / f"{self.role}-{serial_hex(issued.certificate.serial_number)}"
            write_new(stem.with_suffix(".key"), private_key_pem(key))
            write_atomic(stem.with_suffix(".crt"), issued.pem)
        return credential


def tls_names(hostnames: list[str], listen_host: str) -> Names:
    """The names of the service's TLS certificate: those given, else localhost and the
    listen address (when it is a particular one)."""
    if hostnames:
        chosen = hostnames
    else:
        chosen = ["localhost"]
        try:
            address = ipaddress.ip_address(listen_host)
            if not address.is_unspecified:
                chosen.append(listen_host)
        except ValueError:
            chosen.append(listen_host)
    dns = [name for name in chosen if not _is_ip(name)]
    ip = [name for name in chosen if _is_ip(name)]
    return Names.parse(dns=dns, ip=ip)


def tls_context(
    chain_pem: bytes, key_pem: bytes, context: ssl.SSLContext | None = None
) -> ssl.SSLContext:
    """A TLS server context presenting ``chain_pem`` and ``key_pem`` (again, into
    ``context``, for a renewal: new handshakes get the new certificate)."""
    context = context or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with tempfile.TemporaryDirectory() as folder:  # ssl loads keys from files only
        chain, key = Path(folder) / "chain.pem", Path(folder) / "key.pem"
        chain.write_bytes(chain_pem)
        key.write_bytes(key_pem)
        os.chmod(key, 0o600)
        context.load_cert_chain(chain, key)
    return context


def chain_pem(authority: CertificateAuthority, credential: Credential) -> bytes:
    return credential.certificate.public_bytes(Encoding.PEM) + b"".join(
        c.public_bytes(Encoding.PEM) for c in authority.intermediates
    )


def _names_of(certificate: x509.Certificate) -> set[x509.GeneralName]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(san.value)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
