"""Subjects and subject alternative names: parsing, checking, to and from x509."""

from __future__ import annotations

import functools
import ipaddress
import re
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
            (name, value) for name in SUBJECT_FIELDS if (value := getattr(self, name)) is not None
        )
        for name, value in items:
            _check_field(name, value)
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
def _check_field(name: str, value: str) -> None:
    if not value or value != value.strip() or "\x00" in value:
        raise RequestError(f"subject {name} {value!r} is empty, padded or holds a NUL byte")
    if name == "country":
        if len(value) != 2 or not value.isascii() or not value.isalpha():
            raise RequestError(f"country {value!r} must be a two-letter code such as DE or US")
    elif len(value) > _MAX_LENGTHS[name]:
        raise RequestError(f"subject {name} is longer than {_MAX_LENGTHS[name]} characters")
    if name == "email":
        parse_email(value)


@dataclass(frozen=True)
class Names:
    """Subject alternative names, each list in the order given, without repeats."""

    dns: tuple[str, ...] = ()
    ip: tuple[IPAddress, ...] = ()
    email: tuple[str, ...] = ()
    uri: tuple[str, ...] = ()
    _kinds: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_kinds", tuple(kind for kind in NAME_KINDS if getattr(self, kind))
        )

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
        return cls(
            dns=_unique(parse_dns(value) for value in dns),
            ip=_unique(parse_ip(value) for value in ip),
            email=_unique(parse_email(value) for value in email),
            uri=_unique(parse_uri(value) for value in uri),
        )

    def kinds(self) -> tuple[str, ...]:
        """The kinds of name present, e.g. ('dns', 'ip')."""
        return self._kinds

    def values(self, kind: str) -> tuple[str, ...]:
        return tuple(str(value) for value in getattr(self, kind))

    def merge(self, other: Names) -> Names:
        return Names(*(_unique([*getattr(self, k), *getattr(other, k)]) for k in NAME_KINDS))

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
    """A DNS name in lower-case ASCII (IDNA), with an optional leading '*.' wildcard."""
    name = value.strip().lower()
    if _is_ip(name):
        raise RequestError(f"{value!r} is an IP address, not a DNS name: give it as an IP name")
    wildcard = name.startswith("*.")
    try:
        ascii_name = _idna(name[2:] if wildcard else name)
    except UnicodeError:
        raise RequestError(f"DNS name {value!r} is not a valid (IDNA) host name") from None
    labels = ascii_name.split(".")
    full_length = len(ascii_name) + (2 if wildcard else 0)
    if full_length > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise RequestError(f"DNS name {value!r} is not a valid host name")
    if wildcard and len(labels) < 2:
        raise RequestError(f"wildcard {value!r} must stand over a domain, e.g. *.example.com")
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
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        raise RequestError(f"{value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise RequestError(
            f"{value!r} is not an IPv4 or IPv6 address a certificate can hold "
            "(a zone id has no meaning there)"
        )
    return address


@_remember
def parse_email(value: str) -> str:
    """An email address with a valid ASCII local part and a DNS domain (IDNA)."""
    local, at, domain = value.strip().rpartition("@")
    if (
        not at
        or not _LOCAL_PART.fullmatch(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise RequestError(f"{value!r} is not a valid email address")
    if domain.startswith("*"):
        raise RequestError(f"email address {value!r} cannot have a wildcard domain")
    try:
        return f"{local}@{parse_dns(domain)}"
    except RequestError:
        raise RequestError(f"{value!r} is not a valid email address") from None


def parse_uri(value: str) -> str:
    uri = value.strip()
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unbalanced [ in the host
        parts = urlsplit("")
    printable = uri.isascii() and uri.isprintable() and " " not in uri
    if not printable or not parts.scheme or not (parts.netloc or parts.path):
        raise RequestError(f"{value!r} is not an absolute ASCII URI such as spiffe://lab/app")
    return uri


def parse_name(value: str) -> tuple[str, str | IPAddress] | None:
    """('ip', address) or ('dns', name) if ``value`` is one, else None (e.g. 'Alice Smith')."""
    if _is_ip(value):
        return "ip", ipaddress.ip_address(value)
    try:
        return "dns", parse_dns(value)
    except RequestError:
        return None


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
