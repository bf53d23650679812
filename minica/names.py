"""Subjects and subject alternative names: parsing, checking, to and from x509."""

from __future__ import annotations

import functools
import ipaddress
import re
import reprlib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import RequestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

# Subject field names as in the profile schema, in the order a certificate lists them.
SUBJECT_FIELDS: dict[str, x509.ObjectIdentifier] = {
    "country": NameOID.COUNTRY_NAME,
    "state": NameOID.STATE_OR_PROVINCE_NAME,
    "locality": NameOID.LOCALITY_NAME,
    "organization": NameOID.ORGANIZATION_NAME,
    "organizational_unit": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "common_name": NameOID.COMMON_NAME,
    "email": NameOID.EMAIL_ADDRESS,
}
_FIELD_NAMES = {oid: name for name, oid in SUBJECT_FIELDS.items()}
# RFC 5280 upper bounds (ub-common-name etc.); longer values break strict parsers.
_MAX_LENGTHS = {
    "common_name": 64,
    "organization": 64,
    "organizational_unit": 64,
    "locality": 128,
    "state": 128,
    "email": 255,
}

NAME_KINDS = ("dns", "ip", "email", "uri")
# Far above any real certificate (public CAs allow about 100), far below what makes
# signing, storing or a TLS handshake with the certificate a denial of service.
MAX_NAMES = 1000

# Parsers are pure functions of a string: remembered, since test suites and bulk issuance
# ask for the same few names over and over. Errors are raised anew each time.
_remember = functools.lru_cache(maxsize=4096)
_DOTTED = re.compile(r"[0-9.]+")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCAL_PART = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
# How a lax client (OpenSSL) may read a common name as a host name: its labels may hold
# '_' and '*', which no strict host name does.
_LAX_HOST = re.compile(r"[a-z0-9_*-]+(\.[a-z0-9_*-]+)+")
# Characters a terminal or a reader acts on instead of showing: C0 and C1 controls and DEL
# (Cc), bidi overrides and zero-width characters (Cf), line and paragraph separators, and
# lone surrogates (what undecodable command-line bytes become).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_QUOTE = reprlib.Repr()
_QUOTE.maxstring = _QUOTE.maxother = 60  # long enough to recognise, short enough for one line
_QUOTE.maxlevel, _QUOTE.maxlist, _QUOTE.maxdict = 2, 4, 4


def quote(value: object) -> str:
    """``value`` for an error message: as Python's repr writes it, so that control and
    formatting characters show escaped (``\\x1b``, ``\\u202e``), and cut to about 60
    characters (a list of long strings too)."""
    return shorten(_QUOTE.repr(value))


def shorten(text: str, limit: int = 80) -> str:
    """Text already known to be printable (a parsed name), cut in the middle past ``limit``."""
    if len(text) <= limit:
        return text
    head = (limit - 3) * 2 // 3
    return f"{text[:head]}...{text[len(text) - (limit - 3 - head) :]}"


def invisible_character(value: str) -> str | None:
    """The first control or formatting character in ``value``, escaped (``\\x1b``,
    ``\\u202e``), or None: such text would act on a terminal (ESC sequences, newlines)
    or show other than it reads (bidi overrides, zero-width characters)."""
    if value.isprintable():  # the common case: no Cc, Cf, Cs, Zl, Zp (nor Co, Cn, Zs)
        return None
    for character in value:
        if unicodedata.category(character) in _INVISIBLE:
            return repr(character)[1:-1]
    return None


def _refuse_invisible(label: str, value: str) -> None:
    """RequestError naming ``label`` and the character, escaped, if ``value`` holds one
    that invisible_character finds."""
    character = invisible_character(value)
    if character is not None:
        raise RequestError(
            f"{label} {quote(value)} holds {character}, a control or formatting character "
            "that a certificate must not carry"
        )


@dataclass(frozen=True)
class Subject:
    """The distinguished name fields minica knows; None where a field is absent."""

    common_name: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None
    locality: str | None = None
    state: str | None = None
    country: str | None = None
    email: str | None = None  # the deprecated subject emailAddress
    # Worked out once, when made: policy checks and encoding ask for it several times.
    _items: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        items = tuple(
            (name, _check_field(name, value))
            for name in SUBJECT_FIELDS
            if (value := getattr(self, name)) is not None
        )
        if self.email is not None:  # kept in canonical form, as an email name is
            object.__setattr__(self, "email", dict(items)["email"])
        object.__setattr__(self, "_items", items)

    def items(self) -> tuple[tuple[str, str], ...]:
        """The fields that are set, as (schema name, value), in certificate order."""
        return self._items

    def without(self, *names: str) -> Subject:
        """This subject with the named fields removed."""
        return Subject(**{name: value for name, value in self.items() if name not in names})

    def to_x509(self) -> x509.Name:
        return x509.Name(
            [x509.NameAttribute(SUBJECT_FIELDS[name], value) for name, value in self.items()]
        )

    @classmethod
    def from_x509(cls, name: x509.Name) -> Subject:
        """The subject of a CSR or certificate; RequestError for fields minica cannot carry."""
        values: dict[str, str] = {}
        for attribute in name:
            field = _FIELD_NAMES.get(attribute.oid)
            if field is None:
                label = attribute.oid._name if attribute.oid._name != "Unknown OID" else "attribute"
                raise RequestError(
                    f"subject {label} ({attribute.oid.dotted_string}) is not supported"
                )
            if field in values:
                raise RequestError(f"subject has more than one {field}")
            value = attribute.value
            values[field] = value if isinstance(value, str) else value.decode("latin-1")
        return cls(**values)


@_remember
def _check_field(name: str, value: str) -> str:
    """The value of subject field ``name`` as a certificate carries it (an email address in
    canonical form); RequestError naming the field if it cannot be one."""
    if not value or value != value.strip():
        raise RequestError(f"subject {name} {quote(value)} is empty or padded with spaces")
    _refuse_invisible(f"subject {name}", value)
    if name == "country":
        if len(value) != 2 or not value.isascii() or not value.isalpha():
            raise RequestError(f"country {quote(value)} must be a two-letter code such as DE or US")
    elif len(value) > _MAX_LENGTHS[name]:
        raise RequestError(f"subject {name} is longer than {_MAX_LENGTHS[name]} characters")
    return parse_email(value) if name == "email" else value


@dataclass(frozen=True)
class Names:
    """Subject alternative names, each list in the order given, in canonical form (see
    parse_dns, parse_email) and without repeats, however they were made: every comparison
    of names (constraints, allowed domains, repeats, the CN) compares canonical forms."""

    dns: tuple[str, ...] = ()
    ip: tuple[IPAddress, ...] = ()
    email: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()
    _kinds: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The parsers remember their answers: names parsed already cost a lookup each.
        canonical = {
            "dns": _unique(parse_dns(name) for name in self.dns),
            "ip": _unique(parse_ip(str(address)) for address in self.ip),
            "email": _unique(parse_email(address) for address in self.email),
            "uri": _unique(parse_uri(uri) for uri in self.uri),
        }
        for kind, values in canonical.items():
            object.__setattr__(self, kind, values)
        object.__setattr__(self, "_kinds", tuple(kind for kind in NAME_KINDS if canonical[kind]))

    @classmethod
    def parse(
        cls,
        dns: list[str] | tuple[str, ...] = (),
        ip: list[str] | tuple[str, ...] = (),
        email: list[str] | tuple[str, ...] = (),
        uri: list[str] | tuple[str, ...] = (),
    ) -> Names:
        """Names from text as a user types them; RequestError naming the first bad one."""
        count = len(dns) + len(ip) + len(email) + len(uri)
        if count > MAX_NAMES:
            raise RequestError(
                f"{count} names are too many for one certificate (at most {MAX_NAMES})"
            )
        return cls(dns=tuple(dns), ip=tuple(map(parse_ip, ip)), email=tuple(email), uri=tuple(uri))

    def kinds(self) -> tuple[str, ...]:
        """The kinds of name present, e.g. ('dns', 'ip')."""
        return self._kinds

    def values(self, kind: str) -> tuple[str, ...]:
        return tuple(str(value) for value in getattr(self, kind))

    def merge(self, other: Names) -> Names:
        return Names(*((*getattr(self, k), *getattr(other, k)) for k in NAME_KINDS))

    def without(self, kind: str) -> Names:
        return replace(self, **{kind: ()})

    def to_x509(self) -> list[x509.GeneralName]:
        general: list[x509.GeneralName] = [x509.DNSName(name) for name in self.dns]
        general += [x509.IPAddress(address) for address in self.ip]
        general += [x509.RFC822Name(address) for address in self.email]
        general += [x509.UniformResourceIdentifier(uri) for uri in self.uri]
        return general

    @classmethod
    def from_x509(cls, san: x509.SubjectAlternativeName) -> Names:
        """Names from a SAN extension, each checked as if typed; others are refused."""
        kinds: dict[type, str] = {
            x509.DNSName: "dns",
            x509.IPAddress: "ip",
            x509.RFC822Name: "email",
            x509.UniformResourceIdentifier: "uri",
        }
        found: dict[str, list[str]] = {kind: [] for kind in NAME_KINDS}
        for general in san:
            kind = kinds.get(type(general))
            if kind is None:
                raise RequestError(f"{type(general).__name__} names are not supported")
            value = general.value
            if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
                raise RequestError(f"IP name {value} is a network, not an address")
            found[kind].append(str(value))
        return cls.parse(**found)


@_remember
def parse_dns(value: str) -> str:
    """A DNS name in canonical form: IDNA A-labels, lower case, no trailing dot (``a.test.``
    is ``a.test``), with an optional leading '*.' wildcard. Every comparison of names uses
    this form. RequestError for empty labels and anything else that is not a host name."""
    character = invisible_character(value)
    if character is not None:
        raise RequestError(
            f"DNS name {quote(value)} is not a valid host name: it holds {character}, "
            "a control or formatting character"
        )
    name = value.strip().lower()
    if _is_ip(name):
        raise RequestError(
            f"{quote(value)} is an IP address, not a DNS name: give it as an IP name"
        )
    name = name[:-1] if name.endswith(".") and name != "." else name  # the root's dot
    wildcard = name.startswith("*.")
    try:
        ascii_name = _idna(name[2:] if wildcard else name)
    except UnicodeError:
        raise RequestError(f"DNS name {quote(value)} is not a valid (IDNA) host name") from None
    labels = ascii_name.split(".")
    full_length = len(ascii_name) + (2 if wildcard else 0)
    if full_length > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise RequestError(f"DNS name {quote(value)} is not a valid host name")
    if wildcard and len(labels) < 2:
        raise RequestError(f"wildcard {quote(value)} must stand over a domain, e.g. *.example.com")
    return f"*.{ascii_name}" if wildcard else ascii_name


# Python's codec implements IDNA 2003, which maps these to other letters ("ß" to "ss");
# IDNA 2008, which browsers follow, keeps them: such a name would mean another domain.
_IDNA_DEVIATIONS = frozenset("\u00df\u03c2\u200c\u200d")


def _idna(name: str) -> str:
    if name.isascii():
        return name
    if _IDNA_DEVIATIONS & set(name):
        raise UnicodeError("IDNA 2003 and 2008 disagree on this name")
    return name.encode("idna").decode("ascii")


@_remember
def parse_ip(value: str) -> IPAddress:
    _refuse_invisible("IP address", value)
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise RequestError(f"{quote(value)} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise RequestError(
            f"{quote(value)} is not an IPv4 or IPv6 address a certificate can hold "
            "(a zone id has no meaning there)"
        )
    return address


@_remember
def parse_email(value: str) -> str:
    """An email address in canonical form: a valid ASCII local part, kept as given (RFC
    5321 lets it be case-sensitive), and a DNS domain in parse_dns's canonical form."""
    _refuse_invisible("email address", value)
    local, at, domain = value.strip().rpartition("@")
    if (
        not at
        or not _LOCAL_PART.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise RequestError(f"{quote(value)} is not a valid email address")
    if domain.startswith("*"):
        raise RequestError(f"email address {quote(value)} cannot have a wildcard domain")
    try:
        return f"{local}@{parse_dns(domain)}"
    except RequestError:
        raise RequestError(f"{quote(value)} is not a valid email address") from None


@_remember
def parse_uri(value: str) -> str:
    _refuse_invisible("URI", value)
    uri = value.strip()
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unbalanced [ in the host
        parts = urlsplit("")
    printable = uri.isascii() and uri.isprintable() and " " not in uri
    if not printable or not parts.scheme or not (parts.netloc or parts.path):
        raise RequestError(f"{quote(value)} is not an absolute ASCII URI such as spiffe://lab/app")
    return uri


def parse_name(value: str) -> tuple[str, str | IPAddress] | None:
    """('ip', address) or ('dns', name) if ``value`` is one, else None (e.g. 'Alice Smith')."""
    if _is_ip(value):
        return "ip", ipaddress.ip_address(value)
    try:
        return "dns", parse_dns(value)
    except RequestError:
        return None


def host_in_common_name(value: str) -> tuple[str, str] | None:
    """What a TLS client may take the common name ``value`` for, in canonical form:
    ('ip', address), ('dns', name), or None for a CN no client reads as a host name.

    OpenSSL (and so curl, nginx and Python's ssl) match a CN to the host asked for when a
    certificate has no DNS name, also with a trailing dot or a wildcard, and read it as a
    DNS name for name constraints when it has a dot and only host-name characters. A CN
    without a dot ('alice') is a person's or a machine's name: OpenSSL's constraint check
    passes over it, and so does minica's.
    """
    if _is_ip(value):
        return "ip", str(ipaddress.ip_address(value))
    try:
        name = parse_dns(value)
    except RequestError:
        name = value.rstrip(".").lower()  # forms lax clients match: a_b.test, w*.test, a.test..
        if not _LAX_HOST.fullmatch(name):
            return None
    return ("dns", name) if "." in name else None


def uri_host(uri: str) -> tuple[str, str] | None:
    """The host of a URI in canonical form, ('dns', name) or ('ip', address); None when it
    has none (urn:…, mailto:…). RFC 5280 4.2.1.10 checks a URI's host against constraints."""
    try:
        host = urlsplit(uri).hostname
    except ValueError:
        return None
    if not host:
        return None
    if _is_ip(host):
        return "ip", str(ipaddress.ip_address(host))
    try:
        return "dns", parse_dns(host)
    except RequestError:
        return "dns", host.rstrip(".").lower()  # checked as it stands: it can only fail


def names_to_check(
    names: Names, common_name: str | None = None, subject_email: str | None = None
) -> list[tuple[str, str, str]]:
    """Every name a certificate with ``names`` and this subject carries, as the policies
    (name constraints, allowed domains) check it: (kind, canonical value, how a message
    names it), kind being 'dns', 'ip' or 'email'. A URI counts as its host; one without a
    host as the DNS name '' (which no DNS constraint or domain permits); a CN as what
    host_in_common_name reads in it."""
    found = [("dns", name, f"DNS name {name}") for name in names.dns]
    found += [("ip", str(address), f"IP address {address}") for address in names.ip]
    found += [("email", address, f"email address {address}") for address in names.email]
    if subject_email:
        address = parse_email(subject_email)
        found.append(("email", address, f"subject email address {address}"))
    for uri in names.uri:
        kind, host = uri_host(uri) or ("dns", "")
        where = f"host {host}" if host else "it has no host"
        found.append((kind, host, f"URI {shorten(uri)} ({where})"))
    read = host_in_common_name(common_name) if common_name else None
    if read:
        found.append((read[0], read[1], f"common name {shorten(read[1])}"))
    first: dict[tuple[str, str], str] = {}
    for kind, value, label in found:  # a name given twice (the CN copied in) is checked once
        first.setdefault((kind, value), label)
    return [(kind, value, label) for (kind, value), label in first.items()]


def under_domain(name: str, domain: str) -> bool:
    """Whether the canonical DNS name ``name`` (maybe a wildcard) is ``domain`` or below it."""
    return name == domain or name.endswith("." + domain)


def _is_ip(value: str) -> bool:
    if ":" not in value and not _DOTTED.fullmatch(value):
        return False  # the common case, decided without ipaddress's exceptions
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _unique(values: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(values))
