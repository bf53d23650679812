"""What happens to certificates after they are issued: the registry's view of them,
revocation, CRLs, and finding one by serial or file.

``CertificateAuthority`` inherits these methods (a mixin, as with fixtures.Fixtures).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509

from . import store
from .errors import MinicaError, PolicyError, StoreError
from .formats import iso, parse_serial, serial_hex
from .registry import Record
from .requests import load_certificate, load_crl
from .revocation import revocation_list
from .usages import REVOCATION_REASONS
from .validity import lifetime

if TYPE_CHECKING:
    from .ca import CertificateAuthority

CRL_DAYS = 7  # CA/B Forum: a CRL for end-entity certificates is valid for 10 days at most


class Lifecycle:
    """The lifecycle methods of CertificateAuthority."""

    def revoke(
        self: CertificateAuthority,
        serial: str,
        reason: str = "unspecified",
        *,
        now: datetime | None = None,
    ) -> None:
        """Mark ``serial`` revoked for ``reason`` (a REVOCATION_REASONS name)."""
        if reason not in REVOCATION_REASONS:
            known = ", ".join(REVOCATION_REASONS)
            raise MinicaError(f"unknown revocation reason {reason!r} (known: {known})")
        now = now or datetime.now(timezone.utc)
        if reason == "ca-compromise" and self.store is not None:
            constraints = (
                self.certificate_by_serial(serial)
                .extensions.get_extension_for_class(x509.BasicConstraints)
                .value
            )
            if not constraints.ca:  # RFC 5280 5.3.1, and the CA/B Forum forbids it for leaves
                raise PolicyError("ca-compromise is for CA certificates; use key-compromise")
        if self.store is None:
            self._revoked.setdefault(serial, (serial, iso(now), reason))
        else:
            self.store.registry.revoke(serial, reason, now)

    def crl(
        self: CertificateAuthority, *, days: int = CRL_DAYS, now: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """A CRL of every certificate revoked so far, with a CRL number never used before."""
        now = now or datetime.now(timezone.utc)
        lifetime(now, days, explicit=True, issuer=None)  # refuse a bad lifetime first:
        # a refused CRL must not spend a CRL number
        signer = self._signer()
        if self.store is None:
            self._crl_number += 1
            number, revoked = self._crl_number, list(self._revoked.values())
        else:
            number, revoked = self.store.registry.next_crl(now)
        return revocation_list(signer, revoked, number=number, now=now, days=days)

    def exclusive(self: CertificateAuthority) -> AbstractContextManager[None]:
        """Exclusive use of this CA's folder among minica processes (nothing for a CA in
        memory)."""
        return self.store.lock() if self.store is not None else nullcontext()

    def latest_crl(self: CertificateAuthority) -> x509.CertificateRevocationList:
        """The newest CRL `minica crl` wrote to the CA folder (crl.pem or crl.der, by CRL
        number); MinicaError if there is none."""
        paths = [self._store().path(name) for name in (store.CRL, store.CRL_DER)]
        found = [load_crl(path.read_bytes(), str(path)) for path in paths if path.is_file()]
        if not found:
            raise MinicaError(f"no CRL at {paths[0]} yet", hint="publish one with `minica crl`")
        return max(
            found,
            key=lambda crl: crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number,
        )

    def records(
        self: CertificateAuthority,
        status: str = "all",
        *,
        expiring_within: int | None = None,
        now: datetime | None = None,
    ) -> list[Record]:
        """Registry rows by expiry (see Registry.records)."""
        return self._registry().records(
            status, now=now or datetime.now(timezone.utc), expiring_within=expiring_within
        )

    def record(self: CertificateAuthority, certificate: x509.Certificate) -> Record:
        """The registry row of a certificate this CA issued; MinicaError for any other."""
        serial = serial_hex(certificate.serial_number)
        row = self._registry().get(serial)
        if row is None or certificate != self.certificate_by_serial(serial):
            raise MinicaError(
                f"certificate {serial} ({certificate.subject.rfc4514_string()}) "
                "was not issued by this CA"
            )
        return row

    def lookup(self: CertificateAuthority, serial_or_file: str) -> tuple[x509.Certificate, Record]:
        """A certificate this CA issued, named by its serial or given as a file, with its
        registry row; MinicaError if it is neither, or not this CA's."""
        path = Path(serial_or_file)
        if path.is_file():
            certificate = load_certificate(path.read_bytes(), serial_or_file)
            return certificate, self.record(certificate)
        try:
            serial = parse_serial(serial_or_file)
        except ValueError:
            raise MinicaError(f"{serial_or_file}: no such file, and not a serial number") from None
        certificate = self.certificate_by_serial(serial)
        return certificate, self.record(certificate)

    def certificate_by_serial(self: CertificateAuthority, serial: str) -> x509.Certificate:
        """A certificate this CA issued, from certs/; StoreError if it is not there."""
        path = self._store().path(store.CERTS) / f"{serial}.crt"
        if not path.is_file():
            raise StoreError(f"no certificate with serial {serial} in {self._store().directory}")
        return x509.load_pem_x509_certificate(path.read_bytes())
