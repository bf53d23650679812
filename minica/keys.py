"""Key types by name: generate, describe, check strength, load and serialize keys."""

from __future__ import annotations

from typing import Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import RequestError

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey]

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ec-p256": ec.SECP256R1,
    "ec-p384": ec.SECP384R1,
    "ec-p521": ec.SECP521R1,
}
_RSA_SIZES = {"rsa-2048": 2048, "rsa-3072": 3072, "rsa-4096": 4096}
KEY_TYPES = (*_CURVES, *_RSA_SIZES, "ed25519")
DEFAULT_KEY_TYPE = "ec-p256"

MIN_RSA_BITS = 2048  # NIST SP 800-131A: below 2048 bits RSA is disallowed
RSA_EXPONENT = 65537  # the only exponent CA/B Forum and every modern library expect


def generate(key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
    """A new private key of the named type; RequestError for an unknown name."""
    if key_type in _CURVES:
        return ec.generate_private_key(_CURVES[key_type]())
    if key_type in _RSA_SIZES:
        return rsa.generate_private_key(RSA_EXPONENT, _RSA_SIZES[key_type])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise RequestError(f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})")


def key_name(public_key: object) -> str:
    """A name for any public key, e.g. 'ec-p256', 'rsa-1024', 'ec-secp256k1'; never raises."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        known = [name for name, curve in _CURVES.items() if isinstance(public_key.curve, curve)]
        return known[0] if known else f"ec-{public_key.curve.name}"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return type(public_key).__name__.removeprefix("_").removesuffix("PublicKey").lower()


def key_type_of(public_key: object) -> str:
    """The key-type name of a public key, after checking it is fit to be certified.

    Raises RequestError for weak RSA, odd exponents, unsupported curves and algorithms.
    """
    name = key_name(public_key)
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise RequestError(
                f"RSA key of {public_key.key_size} bits is too weak (at least {MIN_RSA_BITS})"
            )
        exponent = public_key.public_numbers().e
        if exponent != RSA_EXPONENT:
            raise RequestError(
                f"RSA public exponent {exponent} is not allowed (only {RSA_EXPONENT})"
            )
    elif name not in KEY_TYPES:
        raise RequestError(f"{name} keys are not supported (supported: {', '.join(KEY_TYPES)})")
    return name


def signature_hash(private_key: PrivateKey) -> hashes.HashAlgorithm | None:
    """The hash to sign with: matched to the key's strength; None for Ed25519."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        size = private_key.curve.key_size
        return hashes.SHA512() if size > 384 else hashes.SHA384() if size > 256 else hashes.SHA256()
    return hashes.SHA256()


def private_key_pem(private_key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """The key as PKCS#8 PEM, encrypted with the best available scheme if a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(data: bytes, source: str, passphrase: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER bytes; RequestError naming ``source`` if it cannot be read."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, passphrase)
        else:
            key = serialization.load_der_private_key(data, passphrase)
    except TypeError as error:  # encrypted without passphrase, or the reverse
        raise RequestError(f"{source}: {_passphrase_problem(error)}") from None
    except ValueError:
        problem = "wrong passphrase or not a private key" if passphrase else "not a private key"
        raise RequestError(f"{source}: {problem}") from None
    except Exception:  # cryptography raises assorted errors on malformed input
        raise RequestError(f"{source}: not a readable private key") from None
    try:
        key_type_of(key.public_key())
    except RequestError as error:
        raise RequestError(f"{source}: {error}") from None
    return key  # type: ignore[return-value]


def _passphrase_problem(error: TypeError) -> str:
    if "not encrypted" in str(error):
        return "the key is not encrypted, but a passphrase was given"
    return "the key is encrypted and needs a passphrase"
