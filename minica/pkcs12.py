"""PKCS#12 bundles: a key, its certificate and the CA chain in one passphrase-protected file."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

from .errors import MinicaError
from .keys import PrivateKey

# PBES2 with AES-256 and a SHA-256 MAC: read by OpenSSL 3 and Java 17+ keytool, unlike the
# legacy RC2/3DES default, which OpenSSL 3 refuses without its legacy provider.
_KDF_ROUNDS = 100_000


def bundle(
    private_key: PrivateKey,
    certificate: x509.Certificate,
    chain: list[x509.Certificate],
    passphrase: bytes,
    friendly_name: str | None = None,
) -> bytes:
    """The DER PKCS#12 file; MinicaError if the key does not belong to the certificate."""
    if private_key.public_key() != certificate.public_key():
        raise MinicaError("the key does not belong to the certificate (their public keys differ)")
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )
    name = (friendly_name or certificate.subject.rfc4514_string()).encode()
    return pkcs12.serialize_key_and_certificates(name, private_key, certificate, chain, encryption)
