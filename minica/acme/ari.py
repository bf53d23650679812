"""ACME Renewal Information (RFC 9773): the certificate identifier clients send, and the
renewal window this CA suggests for a certificate."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from ..formats import iso, serial_hex
from ..registry import Record
from . import jose
from .problems import Problem

RETRY_AFTER = 6 * 3600  # RFC 9773 §4.3: clients ask again after this many seconds
# A certificate in good standing: renew in the window from two thirds to five sixths of
# its lifetime (Let's Encrypt's practice: a third of the lifetime left to try again).
WINDOW = (2 / 3, 5 / 6)
REVOKED_WINDOW = timedelta(hours=1)  # a revoked one: a window that has begun already


@dataclass(frozen=True)
class CertId:
    """RFC 9773 §4.1: base64url(authority key identifier) "." base64url(serial DER)."""

    key_identifier: bytes
    serial: int

    @classmethod
    def parse(cls, text: object) -> CertId:
        if not isinstance(text, str) or text.count(".") != 1:
            raise Problem("malformed", "a certificate id is AKI.serial, both base64url")
        key_id, serial = text.split(".")
        try:
            key_bytes = jose.decode_b64jose(key_id)
            serial_bytes = jose.decode_b64jose(serial)
        except (jose.DeserializationError, ValueError, binascii.Error):
            raise Problem("malformed", f"certificate id {text[:80]!r} is not base64url") from None
        if not key_bytes or not serial_bytes or serial_bytes[0] & 0x80:
            raise Problem("malformed", f"certificate id {text[:80]!r} has no key id or serial")
        return cls(key_bytes, int.from_bytes(serial_bytes, "big"))

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertId:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
        assert aki.value.key_identifier is not None
        return cls(aki.value.key_identifier, certificate.serial_number)

    @property
    def serial_hex(self) -> str:
        return serial_hex(self.serial)

    def __str__(self) -> str:
        serial = self.serial.to_bytes(self.serial.bit_length() // 8 + 1, "big")  # DER: signed
        return f"{jose.encode_b64jose(self.key_identifier)}.{jose.encode_b64jose(serial)}"


def window(record: Record, now: datetime) -> dict[str, str]:
    """The suggested renewal window of ``record`` (RFC 9773 §4.2): late in its life, or
    already open once it is revoked, so that clients replace it at once."""
    if record.revoked_at is not None:
        start, end = now - REVOKED_WINDOW, now
    else:
        life = record.not_after - record.not_before
        start = record.not_before + life * WINDOW[0]
        end = record.not_before + life * WINDOW[1]
    return {"start": iso(start), "end": iso(end)}
