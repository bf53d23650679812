"""Certificates, CSRs and CRLs as plain dicts (the JSON form), and those dicts as text."""

from __future__ import annotations

import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .constraints import NameConstraints
from .errors import MinicaError
from .formats import iso, serial_hex
from .keys import key_name
from .usages import KEY_USAGES, eku_name, reason_name

_PEM_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def load(
    data: bytes, source: str
) -> x509.Certificate | x509.CertificateSigningRequest | x509.CertificateRevocationList:
    """The certificate, CSR or CRL in ``data`` (PEM or DER); MinicaError if it is none of those."""
    match = _PEM_LABEL.search(data)
    label = match.group(1).decode() if match else None
    loaders = {
        "CERTIFICATE": x509.load_pem_x509_certificate,
        "CERTIFICATE REQUEST": x509.load_pem_x509_csr,
        "NEW CERTIFICATE REQUEST": x509.load_pem_x509_csr,
        "X509 CRL": x509.load_pem_x509_crl,
    }
    if label is not None and label not in loaders:
        raise MinicaError(f"{source}: holds a PEM {label}, not a certificate, CSR or CRL")
    candidates = (
        [loaders[label]]
        if label
        else [x509.load_der_x509_certificate, x509.load_der_x509_csr, x509.load_der_x509_crl]
    )
    for loader in candidates:
        try:
            return loader(data)  # type: ignore[return-value]
        except ValueError:
            continue
    form = f"a corrupt or truncated PEM {label}" if label else "not a certificate, CSR or CRL"
    raise MinicaError(f"{source}: {form}")


def describe(item: object) -> dict[str, Any]:
    """The JSON form of a certificate, CSR or CRL."""
    if isinstance(item, x509.Certificate):
        return certificate(item)
    if isinstance(item, x509.CertificateSigningRequest):
        return signing_request(item)
    assert isinstance(item, x509.CertificateRevocationList)
    return revocation_list(item)


def certificate(cert: x509.Certificate) -> dict[str, Any]:
    extensions = cert.extensions
    constraints = _extension(extensions, x509.BasicConstraints)
    eku = _extension(extensions, x509.ExtendedKeyUsage)
    info = _extension(extensions, x509.AuthorityInformationAccess)
    points = _extension(extensions, x509.CRLDistributionPoints)
    return {
        "type": "certificate",
        "serial": serial_hex(cert.serial_number),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": iso(cert.not_valid_before_utc),
        "not_after": iso(cert.not_valid_after_utc),
        "key_type": key_name(cert.public_key()),
        "san": _names(_extension(extensions, x509.SubjectAlternativeName)),
        "key_usage": _key_usage(_extension(extensions, x509.KeyUsage)),
        "extended_key_usage": [
            {"name": eku_name(oid), "oid": oid.dotted_string} for oid in eku or []
        ],
        "extended_key_usage_critical": _is_critical(extensions, x509.ExtendedKeyUsage),
        "basic_constraints": {
            "ca": bool(constraints and constraints.ca),
            "path_length": constraints.path_length if constraints else None,
        },
        "name_constraints": _name_constraints(cert),
        "crl_urls": [name.value for point in points or [] for name in point.full_name or []],
        "ocsp_urls": _access(info, x509.AuthorityInformationAccessOID.OCSP),
        "issuer_urls": _access(info, x509.AuthorityInformationAccessOID.CA_ISSUERS),
        "ocsp_no_check": _extension(extensions, x509.OCSPNoCheck) is not None,
        "signature_algorithm": _signature_algorithm(cert),
        "self_signed": cert.issuer == cert.subject,
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }


def signing_request(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    extensions = csr.extensions
    return {
        "type": "csr",
        "subject": csr.subject.rfc4514_string(),
        "key_type": key_name(csr.public_key()),
        "san": _names(_extension(extensions, x509.SubjectAlternativeName)),
        "signature_valid": csr.is_signature_valid,
        "signature_algorithm": _signature_algorithm(csr),
        # Shown so a reviewer sees what was asked for; minica never copies them.
        "requested_extensions": [
            extension.oid._name
            if extension.oid._name != "Unknown OID"
            else extension.oid.dotted_string
            for extension in extensions
            if not isinstance(extension.value, x509.SubjectAlternativeName)
        ],
    }


def revocation_list(crl: x509.CertificateRevocationList) -> dict[str, Any]:
    number = _extension(crl.extensions, x509.CRLNumber)
    revoked = []
    for entry in crl:
        reason = _extension(entry.extensions, x509.CRLReason)
        revoked.append(
            {
                "serial": serial_hex(entry.serial_number),
                "revoked_at": iso(entry.revocation_date_utc),
                "reason": reason_name(reason.reason) if reason else "unspecified",
            }
        )
    return {
        "type": "crl",
        "issuer": crl.issuer.rfc4514_string(),
        "crl_number": number.crl_number if number else None,
        "this_update": iso(crl.last_update_utc),
        "next_update": iso(crl.next_update_utc) if crl.next_update_utc else None,
        "revoked": revoked,
    }


_LABELS = {
    "not_before": "valid from",
    "not_after": "valid until",
    "san": "names",
    "fingerprint_sha256": "SHA-256 fingerprint",
    "crl_urls": "CRL URLs",
    "ocsp_urls": "OCSP URLs",
    "issuer_urls": "issuer URLs",
    "ocsp_no_check": "OCSP no-check",
}
_HIDDEN_WHEN_FALSE = ("extended_key_usage_critical", "ocsp_no_check", "self_signed")


def crl_summary(crl: x509.CertificateRevocationList) -> str:
    """One line for people, without reading every entry (a CRL may hold 100,000)."""
    number = _extension(crl.extensions, x509.CRLNumber)
    next_update = iso(crl.next_update_utc) if crl.next_update_utc else "none"
    return (
        f"CRL number {number.crl_number if number else '?'} with {len(crl)} revoked "
        f"certificates, next update {next_update}"
    )


def to_text(info: dict[str, Any]) -> str:
    """A dict from ``describe`` as aligned 'label: value' lines for people."""
    lines = [
        {
            "certificate": "Certificate",
            "csr": "Certificate signing request",
            "crl": "Certificate revocation list",
        }[info["type"]]
    ]
    for key, value in info.items():
        if key in ("type", "extended_key_usage_critical") or value in (None, [], {}):
            continue
        if key in _HIDDEN_WHEN_FALSE and value is False:
            continue
        text = _text_value(key, value)
        if key == "extended_key_usage" and info.get("extended_key_usage_critical"):
            text += " [critical]"
        label = _LABELS.get(key, key.replace("_", " "))
        lines.append(f"  {label + ':':<22}{text}")
    return "\n".join(lines)


def _text_value(key: str, value: Any) -> str:
    if key == "san":
        names = [f"{kind.upper()}:{name}" for kind, items in value.items() for name in items]
        return ", ".join(names) or "none"
    if key == "extended_key_usage":
        return ", ".join(f"{item['name']} ({item['oid']})" for item in value)
    if key == "name_constraints":
        return "permitted " + ", ".join(
            f"{kind.upper()}:{v}" for kind, vs in value.items() for v in vs
        )
    if key == "basic_constraints":
        length = value["path_length"]
        suffix = f", path length {length}" if value["ca"] and length is not None else ""
        return f"CA:{str(value['ca']).lower()}{suffix}"
    if key == "registry":
        facts = [value["status"], f"profile {value['profile']}"]
        facts += [f"contact {value['contact']}"] if value["contact"] else []
        facts += [f"renews {value['renewed_from']}"] if value["renewed_from"] else []
        if value["revoked_at"]:
            facts.append(f"revoked {value['revoked_at']} ({value['revocation_reason']})")
        return ", ".join(facts)
    if key == "revoked":
        rows = [
            f"{item['serial']} at {item['revoked_at']} ({item['reason'] or 'unspecified'})"
            for item in value
        ]
        return ("\n" + " " * 24).join(rows)
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _extension(extensions: x509.Extensions, kind: type) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _is_critical(extensions: x509.Extensions, kind: type) -> bool:
    try:
        return extensions.get_extension_for_class(kind).critical
    except x509.ExtensionNotFound:
        return False


def _names(san: x509.SubjectAlternativeName | None) -> dict[str, list[str]]:
    kinds = {
        "dns": x509.DNSName,
        "ip": x509.IPAddress,
        "email": x509.RFC822Name,
        "uri": x509.UniformResourceIdentifier,
    }
    return {
        kind: [str(general.value) for general in san or [] if isinstance(general, cls)]
        for kind, cls in kinds.items()
    }


def _name_constraints(cert: x509.Certificate) -> dict[str, list[str]] | None:
    constraints = NameConstraints.of(cert)
    if not constraints:
        return None
    return {
        "dns": list(constraints.dns),
        "ip": [str(n) for n in constraints.ip],
        "email": list(constraints.email),
    }


def _key_usage(usage: x509.KeyUsage | None) -> list[str]:
    if usage is None:
        return []
    names = []
    for name in KEY_USAGES:
        try:
            if getattr(usage, name):
                names.append(name)
        except ValueError:  # encipher_only/decipher_only are undefined without key_agreement
            continue
    return names


def _access(
    info: x509.AuthorityInformationAccess | None, method: x509.ObjectIdentifier
) -> list[str]:
    return [d.access_location.value for d in info or [] if d.access_method == method]


def _signature_algorithm(item: x509.Certificate | x509.CertificateSigningRequest) -> str:
    oid = item.signature_algorithm_oid
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string
