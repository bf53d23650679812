"""What an order may name (RFC 8555 §7.1.3, RFC 8738): dns and ip identifiers, parsed
into canonical form, as Names for the CA's policy, and the challenges that can prove each."""

from __future__ import annotations

from ..errors import RequestError
from ..names import Names, parse_dns, parse_ip
from .model import Identifier
from .problems import Problem

MAX_IDENTIFIERS = 100


def parse(value: object) -> tuple[Identifier, ...]:
    """The order's identifiers, canonical and without repeats; Problem for a list that is
    not one, unsupportedIdentifier for a type other than dns and ip."""
    if not isinstance(value, list) or not value:
        raise Problem("malformed", "an order needs a non-empty list of identifiers")
    if len(value) > MAX_IDENTIFIERS:
        raise Problem("rejectedIdentifier", f"at most {MAX_IDENTIFIERS} identifiers in an order")
    found: list[Identifier] = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("value"), str):
            raise Problem("malformed", "each identifier is an object with a type and a value")
        identifier = _identifier(str(item.get("type")), item["value"])
        if identifier not in found:
            found.append(identifier)
    return tuple(found)


def _identifier(type: str, value: str) -> Identifier:
    try:
        if type == "dns":
            return Identifier("dns", parse_dns(value))
        if type == "ip":  # RFC 8738 §3: the address in its textual form
            return Identifier("ip", str(parse_ip(value)))
    except (RequestError, ValueError) as error:
        problem = Problem(
            "rejectedIdentifier", str(error), identifier={"type": type, "value": value[:80]}
        )
        raise problem from None
    raise Problem(
        "unsupportedIdentifier", f"identifier type {type[:20]!r}: only dns and ip are supported"
    )


def names_of(identifiers: tuple[Identifier, ...]) -> Names:
    return Names(
        dns=tuple(i.value for i in identifiers if i.type == "dns"),
        ip=tuple(parse_ip(i.value) for i in identifiers if i.type == "ip"),
    )


def challenge_types(identifier: Identifier) -> tuple[str, ...]:
    """The challenges that can prove ``identifier``: a wildcard only by DNS (RFC 8555
    §7.1.3), an IP address never by DNS (RFC 8738 §7)."""
    if identifier.wildcard:
        return ("dns-01",)
    if identifier.type == "ip":
        return ("http-01", "tls-alpn-01")
    return ("http-01", "dns-01", "tls-alpn-01")
