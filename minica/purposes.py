"""The purposes of `minica verify --purpose`: what each asks of a certificate's Extended
Key Usage and key usage, and of the EKU of the CAs above it.

The rules are those of OpenSSL's matching `-purpose` (crypto/x509/v3_purp.c, OpenSSL 3),
made stricter where the programs that use such certificates are, or where OpenSSL takes
usages no client can use; each rule says which and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from .chains import VerificationFailed, describe, extension, oid_name
from .usages import KEY_USAGES

PURPOSES: dict[str, tuple[str, x509.ObjectIdentifier]] = {
    "server": ("server authentication", ExtendedKeyUsageOID.SERVER_AUTH),
    "client": ("client authentication", ExtendedKeyUsageOID.CLIENT_AUTH),
    "code-signing": ("code signing", ExtendedKeyUsageOID.CODE_SIGNING),
    "email": ("email protection", ExtendedKeyUsageOID.EMAIL_PROTECTION),
    "timestamping": ("time stamping", ExtendedKeyUsageOID.TIME_STAMPING),
    "ocsp-signing": ("OCSP signing", ExtendedKeyUsageOID.OCSP_SIGNING),
}
_PURPOSE_NAMES = {oid: name for name, oid in PURPOSES.values()}
_PURPOSE_NAMES[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE] = "any purpose (anyExtendedKeyUsage)"
# OpenSSL's TLS and S/MIME purposes also hold every CA's EKU, where it has one, to the
# purpose (xku_reject in check_ssl_ca, purpose_smime); its others only ask for a CA.
_CA_EKU_PURPOSES = ("server", "client", "email")
# Without an EKU a certificate serves any purpose (RFC 5280 4.2.1.12), except where the
# program that checks the purpose insists on seeing it named:
_EKU_REQUIRED = {
    "code-signing": "CA/Browser Forum code signing requirements 7.1.2.3, as OpenSSL's codesign",
    "timestamping": "RFC 3161 2.3, as OpenSSL's timestampsign purpose",
    "ocsp-signing": "RFC 6960 4.2.2.2, as `openssl ocsp` checks a delegated responder",
}


def check_purpose(certificate: x509.Certificate, purpose: str) -> None:
    """Refuse ``certificate`` (VerificationFailed) if its EKU or key usage does not allow
    ``purpose``, a PURPOSES name."""
    wanted, oid = PURPOSES[purpose]
    eku = extension(certificate, x509.ExtendedKeyUsage)
    if eku is None:
        if purpose in _EKU_REQUIRED:
            raise VerificationFailed(
                f"certificate has no Extended Key Usage; for {wanted} it must name "
                f"{oid_name(oid)} ({_EKU_REQUIRED[purpose]})"
            )
    elif oid not in list(eku):
        raise VerificationFailed(f"certificate is for {_eku_names(eku)}, not {wanted}")
    if purpose == "timestamping":
        _check_timestamping_eku(certificate)
    if purpose == "code-signing":
        _check_code_signing_eku(eku)
    problem = _KEY_USAGE_RULES[purpose](certificate, extension(certificate, x509.KeyUsage))
    if problem:
        raise VerificationFailed(problem)


def check_ca_purpose(cas: list[x509.Certificate], purpose: str) -> None:
    """Refuse a CA above the certificate whose EKU leaves ``purpose`` out, where OpenSSL
    does."""
    if purpose not in _CA_EKU_PURPOSES:
        return
    wanted, oid = PURPOSES[purpose]
    for ca in cas:
        eku = extension(ca, x509.ExtendedKeyUsage)
        if eku is not None and oid not in list(eku):
            raise VerificationFailed(
                f"CA certificate {describe(ca)} is limited to {_eku_names(eku)} by its "
                f"Extended Key Usage, not {wanted}"
            )


def _check_timestamping_eku(certificate: x509.Certificate) -> None:
    # RFC 3161 2.3: timeStamping the only EKU, critical. OpenSSL ignores EKU OIDs it does
    # not know when it checks "only"; minica follows the RFC's wording and refuses them too.
    found = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    others = [usage for usage in found.value if usage != ExtendedKeyUsageOID.TIME_STAMPING]
    if others:
        raise VerificationFailed(
            "a time-stamping certificate must have timeStamping as its only Extended Key "
            f"Usage (RFC 3161 2.3); this one is also for {_eku_names(others)}"
        )
    if not found.critical:
        raise VerificationFailed(
            "the Extended Key Usage of a time-stamping certificate must be critical "
            "(RFC 3161 2.3); this one is not"
        )


def _check_code_signing_eku(eku: x509.ExtendedKeyUsage | None) -> None:
    # CA/Browser Forum code signing requirements 7.1.2.3, as OpenSSL's codesign checks them
    barred = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]
    also = [usage for usage in eku or [] if usage in barred]
    if also:
        raise VerificationFailed(
            f"a code signing certificate must not also be for {_eku_names(also)} "
            "(CA/Browser Forum code signing requirements 7.1.2.3)"
        )


def _eku_names(usages: Iterable[x509.ObjectIdentifier]) -> str:
    return " and ".join(_PURPOSE_NAMES.get(usage, usage.dotted_string) for usage in usages)


# Each purpose's key usage rule: a problem to report, or None. A certificate without a key
# usage extension may use its key for anything (RFC 5280 4.2.1.3) unless a rule says not.
KeyUsageRule = Callable[[x509.Certificate, x509.KeyUsage | None], str | None]


def _server_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's sslserver takes any of digital_signature, key_encipherment, key_agreement.
    # A TLS server signs its handshake (TLS 1.3, and every ECDHE suite of 1.2), or, with an
    # RSA key under TLS 1.2, may have the key exchange encrypted to it: so an EC or Ed25519
    # key needs digital_signature (under TLS 1.2 an OpenSSL server will not use such a key,
    # and a Python ssl client refuses it: "bad ecc cert"), an RSA key digital_signature or
    # key_encipherment. minica follows the TLS stack, not `openssl verify`.
    if usage is None or usage.digital_signature:
        return None
    if isinstance(certificate.public_key(), rsa.RSAPublicKey):
        if usage.key_encipherment:
            return None
        return _lacks(
            usage,
            "digital_signature or key_encipherment",
            "a TLS server's RSA key signs the handshake or has the key exchange encrypted to it",
        )
    return _lacks(usage, "digital_signature", "a TLS server's key signs the handshake")


def _client_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's sslclient, which nginx and Python ssl servers check client certificates
    # with, also takes key_agreement alone: for the fixed-(EC)DH client certificates of TLS
    # 1.2, which OpenSSL never implemented. In every TLS version OpenSSL speaks, a client
    # proves its key by signing CertificateVerify, which is what digital_signature allows
    # (RFC 5280 4.2.1.3): minica asks for it, stricter than the servers.
    if usage is None or usage.digital_signature:
        return None
    return _lacks(usage, "digital_signature", "a TLS client's key signs the handshake")


def _email_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # OpenSSL's smimesign, as `openssl cms -verify` applies it (RFC 8550 4.4.2)
    if usage is None or usage.digital_signature or usage.content_commitment:
        return None
    return _lacks(usage, "digital_signature or content_commitment", "the key signs mail (S/MIME)")


def _timestamping_key_usage(
    certificate: x509.Certificate, usage: x509.KeyUsage | None
) -> str | None:
    # OpenSSL's timestampsign: digital_signature and/or content_commitment, nothing else
    if usage is None:
        return None
    if not (usage.digital_signature or usage.content_commitment):
        return _lacks(
            usage,
            "digital_signature or content_commitment",
            "a time-stamping key signs time stamps",
        )
    extra = [name for name in _key_usages(usage) if name not in _SIGNING]
    if extra:
        return (
            f"a time-stamping certificate's key usage may only hold digital_signature and "
            f"content_commitment; this one also has {', '.join(extra)}"
        )
    return None


def _code_signing_key_usage(
    certificate: x509.Certificate, usage: x509.KeyUsage | None
) -> str | None:
    # OpenSSL's codesign (3.2 and later), after the CA/Browser Forum code signing
    # requirements 7.1.2.3: present, critical, digital_signature, no CA usages.
    if usage is None:
        return "a code signing certificate needs a key usage extension (digital_signature)"
    if not usage.digital_signature:
        return _lacks(usage, "digital_signature", "a code signing key signs code")
    if usage.key_cert_sign or usage.crl_sign:
        return "a code signing certificate's key usage must not allow signing certificates or CRLs"
    if not certificate.extensions.get_extension_for_class(x509.KeyUsage).critical:
        return "the key usage of a code signing certificate must be critical"
    return None


def _ocsp_key_usage(certificate: x509.Certificate, usage: x509.KeyUsage | None) -> str | None:
    # `openssl ocsp` checks only the responder's EKU. A responder signs its responses,
    # which is what digital_signature allows (RFC 5280 4.2.1.3): minica asks for it.
    if usage is None or usage.digital_signature:
        return None
    return _lacks(usage, "digital_signature", "an OCSP responder signs its responses")


_SIGNING = ("digital_signature", "content_commitment")
_KEY_USAGE_RULES: dict[str, KeyUsageRule] = {
    "server": _server_key_usage,
    "client": _client_key_usage,
    "email": _email_key_usage,
    "timestamping": _timestamping_key_usage,
    "code-signing": _code_signing_key_usage,
    "ocsp-signing": _ocsp_key_usage,
}


def _lacks(usage: x509.KeyUsage, needed: str, why: str) -> str:
    has = ", ".join(_key_usages(usage)) or "nothing"
    return f"key usage ({has}) lacks {needed}: {why}"


def _key_usages(usage: x509.KeyUsage) -> list[str]:
    names = []
    for name in KEY_USAGES:
        try:
            if getattr(usage, name):
                names.append(name)
        except ValueError:  # encipher_only and decipher_only exist only with key_agreement
            continue
    return names
