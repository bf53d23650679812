"""The parts of josepy minica's ACME uses, imported from where josepy defines them (its
package root does not export them to a type checker)."""

from josepy.errors import DeserializationError, Error
from josepy.json_util import decode_b64jose, encode_b64jose
from josepy.jwa import ES256, ES384, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

__all__ = [
    "ES256",
    "ES384",
    "JWK",
    "JWKEC",
    "JWKRSA",
    "RS256",
    "DeserializationError",
    "Error",
    "JWASignature",
    "decode_b64jose",
    "encode_b64jose",
]
