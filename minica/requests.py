"""Certificate signing requests: build them, and load untrusted ones into a plain Request."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import RequestError
from .keys import PrivateKey, PublicKey, key_type_of, signature_hash
from .names import Names, Subject

T = TypeVar("T")
MAX_CSR_BYTES = 256 * 1024  # a CSR with a few hundred names is a few kB; more is not a CSR
_ACCEPTED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_CSR_LABELS = {b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"}


@dataclass(frozen=True)
class Request:
    """What a CSR may contribute to a certificate: subject, names and key; nothing else."""

    subject: Subject
    names: Names
    public_key: PublicKey
    key_type: str

    @property
    def contact(self) -> str | None:
        """The requester's email: the subject emailAddress, else the first email name."""
        return self.subject.email or next(iter(self.names.email), None)


def build_csr(private_key: PrivateKey, subject: Subject, names: Names) -> bytes:
    """A PEM CSR signed by ``private_key`` carrying ``subject`` and ``names`` (as a SAN)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject.to_x509())
    if names.kinds():
        builder = builder.add_extension(
            x509.SubjectAlternativeName(names.to_x509()), critical=False
        )
    csr = builder.sign(private_key, signature_hash(private_key))  # type: ignore[arg-type]
    return csr.public_bytes(Encoding.PEM)


def load(data: bytes, source: str) -> Request:
    """A Request from one CSR in PEM or DER; its signature is checked, its extensions ignored
    except the subject alternative names.

    Raises RequestError saying what is wrong with the file.
    """
    csr = _parse(data, source)
    try:
        signature_ok = csr.is_signature_valid
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise RequestError(f"{source}: signed with an unsupported algorithm") from None
    except ValueError:  # cryptography reads the public key to check the signature
        raise RequestError(f"{source}: the CSR's public key cannot be read") from None
    # The hash first: cryptography does not verify SHA-1 signatures at all, and the
    # user should hear "too weak", not "altered".
    if algorithm is not None and not isinstance(algorithm, _ACCEPTED_HASHES):
        raise RequestError(
            f"{source}: signed with {algorithm.name.upper()}, which is too weak "
            "(use SHA-256 or stronger)"
        )
    if not signature_ok:
        raise RequestError(f"{source}: the CSR's signature does not verify (altered or corrupt)")
    try:
        public_key = csr.public_key()
        key_type = key_type_of(public_key)
        subject = Subject.from_x509(csr.subject)
        names = Names.from_x509(_requested_names(csr))
    except RequestError as error:
        raise RequestError(f"{source}: {error}") from None
    except (ValueError, UnsupportedAlgorithm):
        raise RequestError(f"{source}: the CSR's key or names cannot be read") from None
    return Request(subject, names, public_key, key_type)  # type: ignore[arg-type]


def load_certificate(data: bytes, source: str) -> x509.Certificate:
    """One certificate, PEM or DER; RequestError naming ``source`` if it is not one."""
    return _pem_or_der(
        data,
        x509.load_pem_x509_certificate,
        x509.load_der_x509_certificate,
        f"{source}: not a readable certificate (PEM or DER)",
    )


def load_crl(data: bytes, source: str) -> x509.CertificateRevocationList:
    """One CRL, PEM or DER; RequestError naming ``source`` if it is not one."""
    return _pem_or_der(
        data, x509.load_pem_x509_crl, x509.load_der_x509_crl, f"{source} is not a readable CRL"
    )


def _pem_or_der(
    data: bytes, pem: Callable[[bytes], T], der: Callable[[bytes], T], problem: str
) -> T:
    try:
        return pem(data) if b"-----BEGIN" in data else der(data)
    except (ValueError, x509.InvalidVersion):  # InvalidVersion: version 5, say
        raise RequestError(problem) from None


def from_certificate(certificate: x509.Certificate) -> Request:
    """The request a certificate answered: its subject, names and key (for renewal)."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    public_key = certificate.public_key()
    subject = Subject.from_x509(certificate.subject)
    return Request(subject, Names.from_x509(san), public_key, key_type_of(public_key))  # type: ignore[arg-type]


def _parse(data: bytes, source: str) -> x509.CertificateSigningRequest:
    if not data.strip():
        raise RequestError(f"{source}: the file is empty")
    if len(data) > MAX_CSR_BYTES:
        raise RequestError(f"{source}: {len(data)} bytes is too large for a CSR")
    labels = _PEM_BLOCK.findall(data)
    if labels:
        csr_count = sum(label in _CSR_LABELS for label in labels)
        if csr_count == 0:
            found = labels[0].decode()
            raise RequestError(f"{source}: holds a PEM {found}, not a CERTIFICATE REQUEST")
        if len(labels) > 1:
            raise RequestError(f"{source}: holds {len(labels)} PEM blocks; give one CSR per file")
    try:
        if labels:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except (ValueError, x509.InvalidVersion):
        form = "a truncated or corrupt PEM CSR" if labels else "not a CSR (neither PEM nor DER)"
        raise RequestError(f"{source}: {form}") from None


def _requested_names(csr: x509.CertificateSigningRequest) -> x509.SubjectAlternativeName:
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return x509.SubjectAlternativeName([])
    except (ValueError, x509.DuplicateExtension):
        raise RequestError("the CSR's extensions cannot be read") from None
    return extension.value
