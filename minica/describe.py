"""Certificates, CSRs and CRLs as plain dicts (the JSON form), and those dicts as text.

Describing never fails on an object that loaded: a field cryptography cannot read (a
garbled or duplicate extension, an unknown key algorithm, a name in a broken encoding) is
null in the JSON form and named, with why, under ``unreadable``; the text says so on its
line. Certificates made elsewhere may hold any text, so the text form escapes every
value for the terminal (formats.printable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID

from .formats import iso, parse_iso, printable, serial_hex
from .keys import key_name
from .loading import UNREADABLE, Extensions, Unreadable, quiet
from .usages import KEY_USAGES, eku_name, reason_name


def describe(item: object) -> dict[str, Any]:
    """The JSON form of a certificate, CSR or CRL."""
    with quiet():
        if isinstance(item, x509.Certificate):
            return certificate(item)
        if isinstance(item, x509.CertificateSigningRequest):
            return signing_request(item)
        assert isinstance(item, x509.CertificateRevocationList)
        return revocation_list(item)


def certificate(cert: x509.Certificate) -> dict[str, Any]:
    extensions = Extensions(cert)
    access = x509.AuthorityInformationAccess
    return {
        "type": "certificate",
        **_read(
            {
                "serial": lambda: serial_hex(cert.serial_number),
                "subject": lambda: cert.subject.rfc4514_string(),
                "issuer": lambda: cert.issuer.rfc4514_string(),
                "not_before": lambda: iso(cert.not_valid_before_utc),
                "not_after": lambda: iso(cert.not_valid_after_utc),
                "key_type": lambda: key_name(cert.public_key()),
                "san": lambda: _names(extensions.get(x509.SubjectAlternativeName)),
                "key_usage": lambda: _key_usage(extensions.get(x509.KeyUsage)),
                "extended_key_usage": lambda: [
                    {"name": eku_name(oid), "oid": oid.dotted_string}
                    for oid in extensions.get(x509.ExtendedKeyUsage) or []
                ],
                "extended_key_usage_critical": lambda: extensions.critical(x509.ExtendedKeyUsage),
                "basic_constraints": lambda: _basic(extensions.get(x509.BasicConstraints)),
                "name_constraints": lambda: _permitted(extensions.get(x509.NameConstraints)),
                "crl_urls": lambda: _crl_urls(extensions.get(x509.CRLDistributionPoints)),
                "ocsp_urls": lambda: _access(
                    extensions.get(access), AuthorityInformationAccessOID.OCSP
                ),
                "issuer_urls": lambda: _access(
                    extensions.get(access), AuthorityInformationAccessOID.CA_ISSUERS
                ),
                "ocsp_no_check": lambda: extensions.get(x509.OCSPNoCheck) is not None,
                "signature_algorithm": lambda: _signature_algorithm(cert),
                "self_signed": lambda: cert.issuer == cert.subject,
                "fingerprint_sha256": lambda: cert.fingerprint(hashes.SHA256()).hex(),
            }
        ),
    }


def signing_request(csr: x509.CertificateSigningRequest) -> dict[str, Any]:
    extensions = Extensions(csr)
    san = ExtensionOID.SUBJECT_ALTERNATIVE_NAME.dotted_string
    return {
        "type": "csr",
        **_read(
            {
                "subject": lambda: csr.subject.rfc4514_string(),
                "key_type": lambda: key_name(csr.public_key()),
                "san": lambda: _names(extensions.get(x509.SubjectAlternativeName)),
                "signature_valid": lambda: csr.is_signature_valid,
                "signature_algorithm": lambda: _signature_algorithm(csr),
                # Shown so a reviewer sees what was asked for; minica never copies them.
                "requested_extensions": lambda: [
                    _oid_name(oid) for oid in extensions.oids() if oid != san
                ],
            }
        ),
    }


def revocation_list(crl: x509.CertificateRevocationList) -> dict[str, Any]:
    extensions = Extensions(crl)
    return {
        "type": "crl",
        **_read(
            {
                "issuer": lambda: crl.issuer.rfc4514_string(),
                "crl_number": lambda: _crl_number(extensions.get(x509.CRLNumber)),
                "this_update": lambda: iso(crl.last_update_utc),
                "next_update": lambda: iso(crl.next_update_utc) if crl.next_update_utc else None,
                "revoked": lambda: [_revoked(entry) for entry in crl],
            }
        ),
    }


def _revoked(entry: x509.RevokedCertificate) -> dict[str, Any]:
    return _read(
        {
            "serial": lambda: serial_hex(entry.serial_number),
            "revoked_at": lambda: iso(entry.revocation_date_utc),
            "reason": lambda: _reason(entry),
        }
    )


def _read(fields: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Each field's value, or None when it cannot be read; the reasons under "unreadable"
    (present only when there are any, so a sound object's form never changes)."""
    info: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    for field, value in fields.items():
        try:
            info[field] = value()
        except (*UNREADABLE, Unreadable) as error:
            info[field] = None
            unreadable[field] = str(error) or type(error).__name__
    if unreadable:
        info["unreadable"] = unreadable
    return info


_HEADINGS = {
    "certificate": "Certificate",
    "csr": "Certificate signing request",
    "crl": "Certificate revocation list",
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
_NOT_SHOWN = ("type", "extended_key_usage_critical", "unreadable")
_HIDDEN_WHEN_FALSE = ("ocsp_no_check", "self_signed")
_INDENT = " " * 24  # where values start: two spaces and a 22-character label column


def crl_summary(crl: x509.CertificateRevocationList) -> str:
    """One line for people, without reading every entry (a CRL may hold 100,000)."""
    number = _extension(crl.extensions, x509.CRLNumber)
    next_update = iso(crl.next_update_utc) if crl.next_update_utc else "none"
    return (
        f"CRL number {number.crl_number if number else '?'} with {len(crl)} revoked "
        f"certificates, next update {next_update}"
    )


def to_text(infos: Sequence[dict[str, Any]], now: datetime) -> str:
    """Dicts from ``describe`` as aligned 'label: value' lines for people, numbered when
    there are several (a chain), every value escaped for the terminal; a certificate's
    lines say whether it is valid at ``now`` and for how many more days."""
    texts = []
    for number, info in enumerate(infos, 1):
        heading = _HEADINGS[info["type"]]
        if len(infos) > 1:
            heading += f" {number} of {len(infos)}"
        texts.append("\n".join([heading, *_lines(info, now)]))
    return "\n\n".join(texts)


def _lines(info: dict[str, Any], now: datetime) -> Iterator[str]:
    unreadable = info.get("unreadable", {})
    safe = _escaped(info)
    for key, value in safe.items():
        if key in _NOT_SHOWN or (value in (None, [], {}) and key not in unreadable):
            continue
        if key in _HIDDEN_WHEN_FALSE and value is False:
            continue
        if key in unreadable:
            text = f"unreadable: {safe['unreadable'][key]}"
        else:
            text = _text_value(key, value)
        if key == "extended_key_usage" and info.get("extended_key_usage_critical"):
            text += " [critical]"
        yield f"  {_LABELS.get(key, key.replace('_', ' ')) + ':':<22}{text}"
        dated = info["type"] == "certificate" and info["not_before"] and info["not_after"]
        if key == "not_after" and dated:
            yield f"  {'validity:':<22}{_validity(info['not_before'], info['not_after'], now)}"


def _escaped(value: Any) -> Any:
    """``value`` with every string in it made safe for a terminal."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {key: _escaped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escaped(item) for item in value]
    return value


def _validity(not_before: str, not_after: str, now: datetime) -> str:
    """Whether a certificate is valid at ``now``: since or until when, in days."""
    start, end = parse_iso(not_before), parse_iso(not_after)
    if now < start:
        return f"not yet valid: starts {not_before} (in {_days(start - now)})"
    if now > end:  # RFC 5280 4.1.2.5: the notAfter second itself is still valid
        return f"expired on {not_after} ({_days(now - end)} ago)"
    return f"valid now, {_days(end - now)} left"


def _days(span: timedelta) -> str:
    days = span.days
    return "less than a day" if days < 1 else "1 day" if days == 1 else f"{days} days"


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
        return ("\n" + _INDENT).join(map(_revoked_text, value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _revoked_text(entry: dict[str, Any]) -> str:
    unreadable = entry.get("unreadable", {})
    facts = [
        f"{field} unreadable: {unreadable[field]}" if field in unreadable else entry[field]
        for field in ("serial", "revoked_at", "reason")
    ]
    return f"{facts[0]} at {facts[1]} ({facts[2]})"


def _extension(extensions: x509.Extensions, kind: type) -> Any:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


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


def _permitted(constraints: x509.NameConstraints | None) -> dict[str, list[str]] | None:
    """The permitted DNS, IP and email subtrees (minica writes no others), or None."""
    permitted = (constraints.permitted_subtrees or []) if constraints else []
    found = {
        "dns": [n.value for n in permitted if isinstance(n, x509.DNSName)],
        "ip": [str(n.value) for n in permitted if isinstance(n, x509.IPAddress)],
        "email": [n.value for n in permitted if isinstance(n, x509.RFC822Name)],
    }
    return found if any(found.values()) else None


def _basic(constraints: x509.BasicConstraints | None) -> dict[str, Any]:
    return {
        "ca": bool(constraints and constraints.ca),
        "path_length": constraints.path_length if constraints else None,
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


def _crl_urls(points: x509.CRLDistributionPoints | None) -> list[str]:
    # Only URIs: a point may also be a directory name, which is no URL (and no JSON string)
    return [
        name.value
        for point in points or []
        for name in point.full_name or []
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _access(
    info: x509.AuthorityInformationAccess | None, method: x509.ObjectIdentifier
) -> list[str]:
    return [
        d.access_location.value
        for d in info or []
        if d.access_method == method
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


def _crl_number(number: x509.CRLNumber | None) -> int | None:
    return number.crl_number if number else None


def _reason(entry: x509.RevokedCertificate) -> str:
    reason = _extension(entry.extensions, x509.CRLReason)
    return reason_name(reason.reason) if reason else "unspecified"


def _signature_algorithm(item: x509.Certificate | x509.CertificateSigningRequest) -> str:
    oid = item.signature_algorithm_oid
    return oid._name if oid._name != "Unknown OID" else oid.dotted_string


def _oid_name(dotted: str) -> str:
    """cryptography's name for an OID ('basicConstraints'), else the dotted form."""
    try:
        name = x509.ObjectIdentifier(dotted)._name
    except ValueError:
        return dotted
    return name if name != "Unknown OID" else dotted
