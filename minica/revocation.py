"""Building CRLs: the revoked certificates of a CA, signed by it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import PolicyError
from .issuer import Signer
from .keys import signature_hash
from .usages import REVOCATION_REASONS


def revocation_list(
    signer: Signer,
    revoked: Iterable[tuple[int, datetime, str]],
    *,
    number: int,
    now: datetime,
    days: int,
) -> x509.CertificateRevocationList:
    """A CRL listing ``revoked`` (serial, revocation time, reason name), valid for ``days``."""
    if days <= 0:
        raise PolicyError(f"a CRL valid for {days} days is not possible; give 1 or more")
    entries = []
    for serial, revoked_at, reason in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
        if reason != "unspecified":  # RFC 5280 5.3.1: leave the reason out rather than say so
            entry = entry.add_extension(x509.CRLReason(REVOCATION_REASONS[reason]), critical=False)
        entries.append(entry.build())
    # All entries go to the constructor at once: adding them one call at a time copies the
    # list on every call, which is quadratic for a large CRL.
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=signer.name,
        last_update=now,
        next_update=now + timedelta(days=days),
        extensions=[
            x509.Extension(
                x509.AuthorityKeyIdentifier.oid,
                False,
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(signer.key_id),
            ),
            x509.Extension(x509.CRLNumber.oid, False, x509.CRLNumber(number)),
        ],
        revoked_certificates=entries,
    )
    return builder.sign(signer.private_key, signature_hash(signer.private_key))  # type: ignore[arg-type]


def encode(crl: x509.CertificateRevocationList, *, der: bool = False) -> bytes:
    """The CRL as PEM, or DER with ``der``."""
    return crl.public_bytes(Encoding.DER if der else Encoding.PEM)
