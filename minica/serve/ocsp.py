"""The OCSP responder (RFC 6960, with the RFC 5019 profile): requests in, signed responses
out, from the CA's registry.

Responses without a nonce are signed ahead of need and kept per certificate (RFC 5019 §2.2:
a responder may serve pre-produced responses) until the registry's revision moves or half
their lifetime has passed; a request with a nonce (RFC 8954) gets a response of its own.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509 import ocsp

from ..ca import CertificateAuthority
from ..formats import serial_hex
from ..issuer import Signer
from ..keys import signature_hash
from ..usages import REVOCATION_REASONS

MAX_NONCE = 128  # octets: RFC 9654 lifted RFC 8954's 32 (clients send 16 or 32)
LIFETIME = timedelta(hours=1)  # nextUpdate: how long a relying party may keep an answer
# The CertID hashes relying parties use: SHA-1 (RFC 5019's, and most clients' default) and
# SHA-256 (openssl -sha256, newer clients).
CERT_ID_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
}


@dataclass(frozen=True)
class Answer:
    """A DER OCSP response and what HTTP caches need to know of it."""

    der: bytes
    this_update: datetime | None = None  # None: an unsuccessful response, never cached
    next_update: datetime | None = None

    @functools.cached_property
    def etag(self) -> str:
        return etag(self.der)


def etag(der: bytes) -> str:
    """An HTTP entity tag for a DER body: a cache that has it asks only what changed."""
    return '"' + hashlib.sha256(der).hexdigest()[:32] + '"'


def malformed() -> Answer:
    """The answer to what is no OCSP request at all (RFC 6960 §2.3)."""
    return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)


class Responder:
    """Answers OCSP requests about the certificates of ``authority``, signed by ``signer``
    (the CA's own key unless a delegated responder is given). Safe to share between threads."""

    def __init__(self, authority: CertificateAuthority, signer: Signer | None = None) -> None:
        self.authority = authority
        self.signer = signer or Signer(authority.certificate, authority.private_key)
        self._ids = {
            name: _issuer_id(authority.certificate, algorithm())
            for name, algorithm in CERT_ID_HASHES.items()
        }
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], Answer] = {}
        self._revision = authority.registry.revision()

    def respond(self, request_der: bytes) -> Answer:
        """The response to one DER OCSP request (malformedRequest for anything unreadable,
        unauthorized for a certificate of another issuer). May read the registry and sign:
        call it where blocking is allowed."""
        question = self._question(request_der)
        if isinstance(question, Answer):
            return question
        serial, algorithm, nonce = question
        if nonce is not None:
            return self._sign(serial, algorithm, nonce)
        answer = self._kept(serial, algorithm)
        if answer is None:
            answer = self._sign(serial, algorithm, None)
            with self._lock:
                self._cache[(algorithm.name, serial)] = answer
        return answer

    def respond_at_once(self, request_der: bytes) -> Answer | None:
        """The response if it needs neither the registry nor a signature (kept, or a
        refusal); None if ``respond`` must work for it. Never blocks."""
        question = self._question(request_der)
        if isinstance(question, Answer):
            return question
        serial, algorithm, nonce = question
        return None if nonce is not None else self._kept(serial, algorithm)

    def _question(
        self, request_der: bytes
    ) -> tuple[int, hashes.HashAlgorithm, bytes | None] | Answer:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            key = (request.issuer_name_hash, request.issuer_key_hash)
            serial = request.serial_number
            nonce = _nonce(request)
        except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType):
            return malformed()
        if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE:
            return malformed()  # RFC 8954 §2.1, RFC 9654 §2.1
        if self._ids.get(algorithm.name) != key:
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return serial, algorithm, nonce

    def _kept(self, serial: int, algorithm: hashes.HashAlgorithm) -> Answer | None:
        """The kept response, while it is younger than half its lifetime."""
        kept = self._cache.get((algorithm.name, serial))
        if kept is None or kept.this_update is None or kept.next_update is None:
            return None
        half = kept.this_update + (kept.next_update - kept.this_update) / 2
        return kept if self.authority.clock() < half else None

    def refresh(self) -> bool:
        """Forget every kept response if the registry changed since; whether it had."""
        revision = self.authority.registry.revision()
        if revision == self._revision:
            return False
        with self._lock:
            self._revision = revision
            self._cache.clear()
        return True

    def _sign(self, serial: int, algorithm: hashes.HashAlgorithm, nonce: bytes | None) -> Answer:
        issuer = self.authority.certificate
        name_hash, key_hash = self._ids[algorithm.name]
        record = self.authority.registry.get(serial_hex(serial))
        now = self.authority.clock().replace(microsecond=0)
        next_update = min(now + LIFETIME, issuer.not_valid_after_utc)
        if record is None:
            status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif record.revocation is not None:
            status = ocsp.OCSPCertStatus.REVOKED
            revoked_at = record.revocation.revoked_at
            reason = REVOCATION_REASONS[record.revocation.reason]
        else:
            status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=status,
                this_update=now,
                next_update=next_update,
                revocation_time=revoked_at,
                revocation_reason=reason if reason != x509.ReasonFlags.unspecified else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.signer.certificate)
            .certificates([self.signer.certificate])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        key = self.signer.private_key
        response = builder.sign(key, signature_hash(key))
        return Answer(response.public_bytes(serialization.Encoding.DER), now, next_update)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> Answer:
    return Answer(
        ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)
    )


def _issuer_id(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """The CertID's issuerNameHash and issuerKeyHash of ``issuer`` (RFC 6960 §4.1.1)."""
    name = hashes.Hash(algorithm)
    name.update(issuer.subject.public_bytes())
    key = hashes.Hash(type(algorithm)())
    key.update(_subject_public_key(issuer))
    return name.finalize(), key.finalize()


def _subject_public_key(certificate: x509.Certificate) -> bytes:
    """The contents of the certificate's subjectPublicKey BIT STRING: what RFC 6960 hashes
    into issuerKeyHash (and RFC 5280 into a key identifier)."""
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # Ed25519, Ed448


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None
