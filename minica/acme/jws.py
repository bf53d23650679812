"""The JWS of an ACME request (RFC 8555 §6.2), read and verified with josepy and the
``acme`` package's header (nonce, url, kid); every check that every request needs, in
one place, each refusal with its problem type.

josepy knows RSA and EC keys; Ed25519 (JWK "OKP", RFC 8037) is registered here through
josepy's own extension points, so that EdDSA accounts are verified by the same code path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from acme import jws as acme_jws
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from . import jose
from .problems import Problem

# RFC 8555 §6.2: asymmetric algorithms only. RS256 and ES256 are the RFC's musts, the
# rest are what the clients in the field sign with.
ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
FLATTENED = frozenset({"protected", "payload", "signature"})
# The JSON type of each protected header field ACME reads (RFC 8555 §6.2, §6.4, §6.5).
HEADER_TYPES: dict[str, type] = {"nonce": str, "url": str, "kid": str, "jwk": dict}
# The members of a JWK josepy decodes as base64url or names (RFC 7518 §6): strings, else
# its decoders raise AttributeError on a null or a number.
JWK_MEMBERS = ("kty", "crv", "x", "y", "d", "n", "e", "p", "q", "dp", "dq", "qi", "k")


@jose.JWK.register
class JWKOKP(jose.JWK):
    """An Ed25519 public key as a JWK (RFC 8037 §2)."""

    typ = "OKP"
    __slots__ = ("key",)
    cryptography_key_types = (ed25519.Ed25519PublicKey,)
    required = ("crv", jose.JWK.type_field_name, "x")
    key: ed25519.Ed25519PublicKey

    def fields_to_partial_json(self) -> dict[str, Any]:
        raw = self.key.public_bytes_raw()
        return {"crv": "Ed25519", "x": jose.encode_b64jose(raw)}

    @classmethod
    def fields_from_json(cls, jobj: Mapping[str, Any]) -> JWKOKP:
        if jobj.get("crv") != "Ed25519":
            raise jose.DeserializationError("only the Ed25519 curve of OKP keys is supported")
        try:
            raw = jose.decode_b64jose(jobj["x"], size=32)
            return cls(key=ed25519.Ed25519PublicKey.from_public_bytes(raw))
        except (KeyError, ValueError) as error:
            raise jose.DeserializationError(f"bad Ed25519 key: {error}") from None

    def public_key(self) -> JWKOKP:
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JWKOKP) and self.key.public_bytes_raw() == (
            other.key.public_bytes_raw()
        )

    def __hash__(self) -> int:
        return hash(self.key.public_bytes_raw())


class _EdDSA(jose.JWASignature):
    """The EdDSA signature algorithm (RFC 8037 §3.1), Ed25519 keys."""

    kty = JWKOKP

    def sign(self, key: Any, msg: bytes) -> bytes:
        return bytes(key.sign(msg))

    def verify(self, key: Any, msg: bytes, sig: bytes) -> bool:
        try:
            key.verify(sig, msg)
        except InvalidSignature:
            return False
        return True


EdDSA = jose.JWASignature.register(_EdDSA("EdDSA"))


@dataclass(frozen=True)
class Signed:
    """A request's JWS, parsed and checked for form, not yet verified: its protected
    header's fields and its payload (b"" for a POST-as-GET)."""

    jws: acme_jws.JWS
    alg: str
    nonce: str
    url: str
    kid: str | None
    jwk: jose.JWK | None
    payload: bytes

    def verify(self, key: jose.JWK) -> None:
        """Problem (malformed) unless ``key`` signed this request; badSignatureAlgorithm
        if its algorithm is not one of the key's kind (RFC 7518 §3.1: ES256 for an EC key,
        never for an RSA or Ed25519 one, which josepy answers with an AttributeError)."""
        algorithm = self.jws.signature.combined.alg
        if not isinstance(key, algorithm.kty):
            raise Problem(
                "badSignatureAlgorithm",
                f"the JWS algorithm {self.alg} is not one for a {key.typ} key",
            )
        try:
            good = self.jws.verify(key)
        except (jose.Error, ValueError, TypeError):  # a key that cannot verify this alg
            good = False
        if not good:
            raise Problem("malformed", "the JWS signature does not verify with the account key")

    def json(self) -> dict[str, Any]:
        """The payload as a JSON object; Problem (malformed) if it is not one."""
        return payload_object(self.payload)


def parse(body: bytes, *, inner: bool = False) -> Signed:
    """The JWS in ``body``: flattened JSON serialization, one protected header carrying
    alg, nonce, url and exactly one of jwk and kid, no unprotected header. An ``inner``
    JWS (key rollover, RFC 8555 §7.3.5) needs no nonce and must carry a jwk."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem("malformed", "the request body is not JSON (a flattened JWS)") from None
    if not isinstance(document, dict) or set(document) != FLATTENED:
        raise Problem(
            "malformed",
            "the request body must be a flattened JWS: exactly protected, payload, signature",
        )
    _check_header(document["protected"])
    try:
        jws = acme_jws.JWS.from_json(document)
    except (jose.DeserializationError, ValueError, TypeError, KeyError) as error:
        # KeyError: josepy reads a JWK's members (crv, n, k) by subscript
        raise Problem("malformed", f"the JWS cannot be read: {error}") from None
    signature = jws.signature
    header = signature.combined
    if header.nonce is None and not inner:
        raise Problem("badNonce", "the JWS protected header has no nonce")
    if not header.url:
        raise Problem("malformed", "the JWS protected header has no url")
    if (header.jwk is None) == (header.kid is None):
        raise Problem("malformed", "the JWS protected header needs exactly one of jwk and kid")
    if inner and header.jwk is None:
        raise Problem("malformed", "the inner JWS of a key change must carry the new key as jwk")
    return Signed(
        jws=jws,
        alg=header.alg.name,
        nonce=jose.encode_b64jose(header.nonce) if header.nonce else "",
        url=header.url,
        kid=header.kid,
        jwk=header.jwk,
        payload=jws.payload,
    )


def _check_header(protected: object) -> None:
    """badSignatureAlgorithm for an algorithm ACME does not allow (none, MACs), before
    josepy's parser refuses it with a message less clear; malformed for a field of the
    wrong JSON type, which josepy's parser does not expect (a null nonce: AttributeError)."""
    try:
        header = json.loads(jose.decode_b64jose(str(protected)))
    except (ValueError, jose.DeserializationError):
        raise Problem("malformed", "the JWS protected header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise Problem("malformed", "the JWS protected header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise Problem(
            "badSignatureAlgorithm",
            f"the JWS algorithm {alg!r} is not accepted; use one of {', '.join(ALGORITHMS)}",
        )
    for name, kind in HEADER_TYPES.items():
        if name in header and not isinstance(header[name], kind):
            raise Problem(
                "malformed", f"the JWS protected header's {name} is not a {kind.__name__}"
            )
    if "jwk" in header:
        _check_jwk(header["jwk"])


def _check_jwk(value: object) -> dict[str, Any]:
    """``value``; Problem (malformed) unless it is a JSON object whose JWK members are
    strings."""
    if not isinstance(value, dict):
        raise Problem("malformed", "a key must be a JWK object")
    wrong = [name for name in JWK_MEMBERS if name in value and not isinstance(value[name], str)]
    if wrong:
        raise Problem("malformed", f"the JWK's {', '.join(wrong)} must be strings")
    return value


def payload_object(payload: bytes) -> dict[str, Any]:
    """``payload`` as a JSON object; Problem (malformed) if it is anything else."""
    try:
        value = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem("malformed", "the JWS payload is not JSON") from None
    if not isinstance(value, dict):
        raise Problem("malformed", "the JWS payload must be a JSON object")
    return value


def jwk_of(public_key: object) -> jose.JWK:
    """``public_key`` (a cryptography key of a certificate or CSR) as a JWK; Problem
    (badPublicKey) for a kind of key ACME accounts do not have."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return jose.JWKRSA(key=public_key)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return jose.JWKEC(key=public_key)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return JWKOKP(key=public_key)
    raise Problem("badPublicKey", f"a {type(public_key).__name__} is not a key ACME knows")


def thumbprint(key: jose.JWK) -> str:
    """The RFC 7638 thumbprint of ``key``, base64url: how accounts are found by key, and
    the second half of every key authorization."""
    return jose.encode_b64jose(key.thumbprint())


def key_of(value: object) -> jose.JWK:
    """A JWK from its JSON form (a stored account key, a key change's oldKey); Problem
    (malformed) if it is not one."""
    try:
        key = jose.JWK.from_json(_check_jwk(value))
    except (jose.DeserializationError, KeyError, TypeError, ValueError):
        raise Problem("malformed", "the key is not a JWK minica can read") from None
    assert isinstance(key, jose.JWK)
    return key
