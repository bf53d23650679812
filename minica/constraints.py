"""Name constraints: the names a CA, and every CA below it, may certify (RFC 5280 4.2.1.10).

minica writes only permitted subtrees: DNS domains (the domain and every name under it),
IP networks, and email domains (mailboxes at exactly that domain).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

from .errors import PolicyError, RequestError
from .names import Names, parse_dns

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_LABELS = {"dns": "DNS name", "ip": "IP address", "email": "email address"}
_HOST_LIKE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+")


@dataclass(frozen=True)
class NameConstraints:
    """Permitted subtrees by kind of name; a kind without any is not constrained."""

    dns: tuple[str, ...] = ()
    ip: tuple[IPNetwork, ...] = ()
    email: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, dns: Iterable[str] = (), ip: Iterable[str] = (), email: Iterable[str] = ()
    ) -> NameConstraints:
        """Constraints as a user types them; RequestError naming the first bad one."""
        return cls(
            dns=tuple(_domain(value, "permitted DNS domain") for value in dns),
            ip=tuple(_network(value) for value in ip),
            email=tuple(_domain(value.lstrip("@"), "permitted email domain") for value in email),
        )

    def __bool__(self) -> bool:
        return bool(self.dns or self.ip or self.email)

    def describe(self) -> str:
        return ", ".join([*self.dns, *map(str, self.ip), *(f"@{d}" for d in self.email)])

    def to_extension(self) -> x509.NameConstraints:
        permitted: list[x509.GeneralName] = [x509.DNSName(domain) for domain in self.dns]
        permitted += [x509.IPAddress(network) for network in self.ip]
        permitted += [x509.RFC822Name(domain) for domain in self.email]
        return x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=None)

    @classmethod
    def of(cls, certificate: x509.Certificate) -> NameConstraints:
        """The permitted subtrees a CA certificate carries (empty if it has none)."""
        return _constraints_of(certificate)

    @classmethod
    def _read(cls, certificate: x509.Certificate) -> NameConstraints:
        try:
            extension = certificate.extensions.get_extension_for_class(x509.NameConstraints)
        except x509.ExtensionNotFound:
            return cls()
        permitted = extension.value.permitted_subtrees or []
        return cls(
            dns=tuple(n.value for n in permitted if isinstance(n, x509.DNSName)),
            ip=tuple(n.value for n in permitted if isinstance(n, x509.IPAddress)),  # type: ignore[misc]
            email=tuple(n.value for n in permitted if isinstance(n, x509.RFC822Name)),
        )

    def permits(self, kind: str, value: str) -> bool:
        """Whether a name of ``kind`` ('dns', 'ip', 'email') lies within these constraints."""
        if kind == "dns":
            return not self.dns or any(_under(value.removeprefix("*."), d) for d in self.dns)
        if kind == "ip":
            return not self.ip or any(ipaddress.ip_address(value) in net for net in self.ip)
        if kind == "email":
            return not self.email or value.rpartition("@")[2] in self.email
        return True

    def not_within(self, wider: NameConstraints) -> list[str]:
        """The subtrees of these constraints that ``wider`` does not permit."""
        outside = [f"DNS {d}" for d in self.dns if not wider.permits("dns", d)]
        outside += [f"IP {n}" for n in self.ip if wider.ip and not _inside(n, wider.ip)]
        outside += [f"email @{d}" for d in self.email if wider.email and d not in wider.email]
        for kind in ("dns", "ip", "email"):
            if getattr(wider, kind) and not getattr(self, kind):
                outside.append(f"every {_LABELS[kind]}")
        return outside


def check_names(
    names: Names,
    subject_email: str | None,
    chain: Sequence[x509.Certificate],
    common_name: str | None = None,
) -> None:
    """Refuse any name outside the constraints of a CA in ``chain``, naming both."""
    candidates = [("dns", n, _LABELS["dns"]) for n in names.dns]
    candidates += [("ip", str(a), _LABELS["ip"]) for a in names.ip]
    emails = (*names.email, *filter(None, [subject_email]))
    candidates += [("email", e, _LABELS["email"]) for e in emails]
    if not names.dns and common_name and _HOST_LIKE.fullmatch(common_name):
        # OpenSSL checks a host-like CN against DNS constraints when there is no DNS name
        candidates.append(("dns", common_name.lower(), "common name (a host name to OpenSSL)"))
    for certificate in chain:
        constraints = NameConstraints.of(certificate)
        if not constraints:
            continue
        for kind, value, label in candidates:
            if not constraints.permits(kind, value):
                raise PolicyError(
                    f"{label} {value} is outside the name constraints of "
                    f"{certificate.subject.rfc4514_string()} (permitted: {constraints.describe()})"
                )


def for_new_ca(requested: NameConstraints, chain: Sequence[x509.Certificate]) -> NameConstraints:
    """The constraints a new CA under ``chain`` gets: those asked for, which may not be
    wider than any above; or, when none are asked for, those of the nearest constrained CA."""
    for certificate in chain:
        above = NameConstraints.of(certificate)
        if not above:
            continue
        if not requested:
            return above
        # A kind the new CA does not name stays limited by the CA above: write that down.
        requested = NameConstraints(
            dns=requested.dns or above.dns,
            ip=requested.ip or above.ip,
            email=requested.email or above.email,
        )
        outside = requested.not_within(above)
        if outside:
            raise PolicyError(
                f"the new CA's name constraints are wider than those of "
                f"{certificate.subject.rfc4514_string()}: {', '.join(outside)} "
                f"(permitted there: {above.describe()})"
            )
    return requested


@functools.lru_cache(maxsize=64)  # asked for every certificate a CA signs
def _constraints_of(certificate: x509.Certificate) -> NameConstraints:
    return NameConstraints._read(certificate)


def _inside(network: IPNetwork, networks: tuple[IPNetwork, ...]) -> bool:
    return any(
        network.version == wider.version and network.subnet_of(wider)  # type: ignore[arg-type]
        for wider in networks
    )


def _under(name: str, domain: str) -> bool:
    return name == domain or name.endswith("." + domain)


def _domain(value: str, what: str) -> str:
    if value.startswith("*"):
        raise RequestError(f"{what} {value!r}: give the domain itself; names under it are included")
    return parse_dns(value)


def _network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError:
        raise RequestError(
            f"permitted network {value!r} is not one such as 10.0.0.0/8 (with no host bits set)"
        ) from None
