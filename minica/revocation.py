"""Building CRLs: the revoked certificates of a CA, signed by it."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .issuer import Signer
from .keys import signature_hash
from .registry import Revocation
from .usages import REVOCATION_REASONS


def revocation_list(
    signer: Signer,
    revoked: Iterable[Revocation],
    *,
    number: int,
    now: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A CRL listing ``revoked``, signed at ``now``, valid until ``next_update``."""
    # Each entry in one builder call, with naive UTC times (what the builder stores): the
    # fluent setters would copy, check and convert, which is most of the time a CRL of
    # 100,000 entries takes.
    entries = [
        x509.RevokedCertificateBuilder(
            int(serial, 16), at.replace(tzinfo=None), _reason(reason)
        ).build()
        for serial, at, reason in revoked
    ]
    # All entries go to the constructor at once: adding them one call at a time copies the
    # list on every call, which is quadratic for a large CRL.
    builder = x509.CertificateRevocationListBuilder(
        issuer_name=signer.name,
        last_update=now,
        next_update=next_update,
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


@functools.cache  # a handful of reasons, shared by every entry
def _reason(name: str) -> list[x509.Extension[x509.ExtensionType]]:
    if name == "unspecified":  # RFC 5280 5.3.1: leave the reason out rather than say so
        return []
    return [x509.Extension(x509.CRLReason.oid, False, x509.CRLReason(REVOCATION_REASONS[name]))]


def encode(crl: x509.CertificateRevocationList, *, der: bool = False) -> bytes:
    """The CRL as PEM, or DER with ``der``."""
    return crl.public_bytes(Encoding.DER if der else Encoding.PEM)
