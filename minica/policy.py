"""What a certificate may say: the checks of a request against its profile and its CA —
key type, CA depth, subject fields, names, domains — and the subject and names that
follow from them. Pure functions, called by issuer.certify before anything is built."""

from __future__ import annotations

from dataclasses import replace

from cryptography import x509

from .errors import MinicaError, PolicyError
from .names import (
    MAX_NAMES,
    Names,
    Subject,
    names_to_check,
    parse_name,
    quote,
    shorten,
    under_domain,
)
from .profiles import Profile
from .requests import Request

_NAME_LABELS = {"dns": "DNS name", "ip": "IP address", "email": "email address", "uri": "URI"}


def check_key(request: Request, profile: Profile) -> None:
    if request.key_type not in profile.key_types:
        raise PolicyError(
            f"key type {request.key_type} is not allowed by profile {profile.name} "
            f"(allowed: {', '.join(profile.key_types)})"
        )


def check_ca_may_sign(profile: Profile, issuer: x509.Certificate) -> None:
    if not profile.ca:
        return
    above = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    if above == 0:
        raise PolicyError("this CA has path length 0: it may not sign another CA certificate")
    wanted = profile.path_length
    if above is not None and (wanted is None or wanted >= above):
        raise PolicyError(
            f"this CA has path length {above}: a CA below it may have a path length of "
            f"{above - 1} at most, not {'unlimited' if wanted is None else wanted}"
        )


def apply_subject_policy(subject: Subject, profile: Profile) -> Subject:
    """The certificate's subject: fields checked against the profile.

    A contact email the profile keeps out of certificates is dropped, not refused:
    it is still recorded as the certificate's contact.
    """
    if subject.email and "email" not in profile.subject_allowed:
        subject = subject.without("email")
    for name, value in subject.items():
        if name not in profile.subject_allowed:
            raise PolicyError(
                f"subject field {name} ({quote(value)}) is not allowed by profile "
                f"{profile.name} (allowed: {', '.join(profile.subject_allowed) or 'none'})"
            )
    for name in profile.subject_required:
        if getattr(subject, name) is None:
            raise PolicyError(f"profile {profile.name} requires the subject field {name}")
    return subject


def apply_name_policy(
    names: Names, subject: Subject, profile: Profile, subject_email: str | None = None
) -> Names:
    """The certificate's alternative names: checked, with the CN copied in if the profile
    says, and the CSR's subject email (``subject_email``) as the email name a profile
    needs when the CSR gives none: a CSR made the usual OpenSSL way for S/MIME
    (``/emailAddress=`` in the subject, no SAN) means that address."""
    policy = profile.names
    if names.email and "email" not in policy.allowed:
        names = names.without("email")  # kept as the contact, as for the subject
    for kind in names.kinds():
        if kind not in policy.allowed:
            raise PolicyError(
                f"{_NAME_LABELS[kind]} {shorten(names.values(kind)[0])} is not allowed by "
                f"profile {profile.name} (allowed names: {', '.join(policy.allowed) or 'none'})"
            )
    if "email" in policy.required and not names.email and subject_email:
        names = names.merge(Names(email=(subject_email,)))
    copy = policy.copy_cn and subject.common_name and subject.common_name not in names.dns
    parsed = parse_name(subject.common_name) if copy else None  # type: ignore[arg-type]
    if parsed and parsed[0] in policy.allowed:
        kind, value = parsed
        cn_name = Names(ip=(value,)) if kind == "ip" else Names(dns=(str(value),))  # type: ignore[arg-type]
        names = cn_name.merge(names)
        if len(names.to_x509()) > MAX_NAMES:  # the CN made one more
            raise PolicyError(
                f"with the common name, {MAX_NAMES + 1} names are too many (at most {MAX_NAMES})"
            )
    if policy.allowed_domains:
        _check_domains(names, subject, policy.allowed_domains, profile.name)
    for requirement in policy.required:
        kinds = ("dns", "ip") if requirement == "dns_or_ip" else (requirement,)
        if not set(kinds) & set(names.kinds()):
            raise _missing_name(profile, kinds)
    if not names.kinds() and not subject.items():
        raise PolicyError("the certificate would name no one: give it a subject field or a name")
    return names


def _missing_name(profile: Profile, kinds: tuple[str, ...]) -> PolicyError:
    """The refusal for a certificate without a name of ``kinds``, saying what gives one."""
    wanted = " or ".join(_NAME_LABELS[kind] for kind in kinds)
    ways = {
        "dns": "a DNS name",
        "ip": "an IP address",
        "email": "an email name (or a CSR whose subject holds an emailAddress)",
        "uri": "a URI name",
    }
    hint = f"give the certificate {' or '.join(ways[kind] for kind in kinds)}"
    if profile.names.copy_cn and {"dns", "ip"} & set(kinds):
        hint += ", or a common name that is one"
    return PolicyError(
        f"profile {profile.name} needs at least one {wanted}",
        hint=hint,
        code="needs-" + "-or-".join(kinds),  # the CLI's hint names its options
    )


def _check_domains(names: Names, subject: Subject, domains: tuple[str, ...], profile: str) -> None:
    """Refuse a name outside the profile's allowed domains: every DNS and email name, a
    URI's host, the subject email and a CN that reads as a host name (IP addresses are
    not domains: name constraints limit them)."""
    for kind, value, label in names_to_check(names, subject.common_name, subject.email):
        name = value.rpartition("@")[2] if kind == "email" else value
        if kind != "ip" and not any(under_domain(name, domain) for domain in domains):
            raise PolicyError(
                f"{label} is outside the domains profile {profile} allows ({', '.join(domains)})"
            )


def common_name_as_named(subject: Subject, names: Names) -> Subject:
    """The subject with its CN written as the SANs write it (IDNA A-labels, no trailing
    dot) when it is a host name given in Unicode or with a trailing dot and one of the DNS
    names: clients look for the A-label, and CA/B Forum rules want a host-name CN to be a
    SAN. A trailing dot goes in any case; other CNs ('Jürgen', 'Lab Inc.') and the case of
    an ASCII CN, which no client tells apart, stay as given."""
    common_name = subject.common_name
    if common_name is None or (common_name.isascii() and not common_name.endswith(".")):
        return subject
    parsed = parse_name(common_name)
    if parsed is None or parsed[0] != "dns":
        return subject
    host = str(parsed[1])
    if host not in names.dns and not (common_name.endswith(".") and "." in host):
        return subject
    try:
        return replace(subject, common_name=host)
    except MinicaError as error:  # an A-label form longer than a CN may be
        raise PolicyError(f"the common name as a host name, {shorten(host)}: {error}") from None
