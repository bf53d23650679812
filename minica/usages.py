"""The closed vocabularies: key usage and Extended Key Usage names and their OIDs."""

from collections.abc import Iterable

from cryptography.x509 import ObjectIdentifier, ReasonFlags
from cryptography.x509.oid import ExtendedKeyUsageOID

# Names as in the profile schema; each is also the keyword of cryptography's KeyUsage.
KEY_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def usages_for(usages: Iterable[str], key_type: str) -> tuple[str, ...]:
    """The key usages out of ``usages`` that a key of ``key_type`` (a key-type name such as
    'rsa-2048', 'ec-p256', 'ed25519') can have, in KEY_USAGES order."""
    kept = set(usages)
    if not key_type.startswith("rsa-"):
        kept.discard("key_encipherment")  # only RSA key transport encrypts to the key
    if not key_type.startswith("ec-"):
        kept.discard("key_agreement")  # ECDH; RSA and Ed25519 keys cannot agree keys
    if "key_agreement" not in kept:  # RFC 5280 4.2.1.3: these qualify keyAgreement alone
        kept -= {"encipher_only", "decipher_only"}
    return tuple(name for name in KEY_USAGES if name in kept)


EXTENDED_KEY_USAGES: dict[str, ObjectIdentifier] = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "time_stamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}

_EKU_NAMES = {oid: name for name, oid in EXTENDED_KEY_USAGES.items()}


def eku_name(oid: ObjectIdentifier) -> str:
    """The schema name of an EKU OID, or its dotted form when it has none."""
    return _EKU_NAMES.get(oid, oid.dotted_string)


def parse_eku(value: str) -> ObjectIdentifier:
    """An EKU OID from a schema name or a dotted OID; ValueError if it is neither."""
    if value in EXTENDED_KEY_USAGES:
        return EXTENDED_KEY_USAGES[value]
    parts = value.split(".")
    if len(parts) >= 2 and all(part.isdigit() for part in parts):
        return ObjectIdentifier(value)
    raise ValueError(value)


# Revocation reasons as the CLI spells them (RFC 5280 5.3.1 CRLReason).
REVOCATION_REASONS: dict[str, ReasonFlags] = {
    "unspecified": ReasonFlags.unspecified,
    "key-compromise": ReasonFlags.key_compromise,
    "ca-compromise": ReasonFlags.ca_compromise,
    "affiliation-changed": ReasonFlags.affiliation_changed,
    "superseded": ReasonFlags.superseded,
    "cessation-of-operation": ReasonFlags.cessation_of_operation,
}


def reason_name(flag: ReasonFlags) -> str:
    """The CLI's name of a CRL reason, e.g. 'key-compromise'; its RFC name if minica has none."""
    names = {value: name for name, value in REVOCATION_REASONS.items()}
    return names.get(flag, flag.value)
