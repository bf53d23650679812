"""The CSR of an ACME finalize (RFC 8555 §7.4): read from the payload, checked against
its order — exactly the order's names, not the account's key — and given the order's
first name as CN when it has none."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .. import requests
from ..errors import RequestError
from ..names import parse_dns, parse_ip
from . import jose
from .jws import jwk_of, key_of, thumbprint
from .model import Account, Order
from .problems import Problem

MAX_CN = 64  # RFC 5280 ub-common-name: a longer name stays in the SAN only


def read(payload: dict[str, Any]) -> requests.Request:
    csr = payload.get("csr")
    if not isinstance(csr, str):
        raise Problem("malformed", "finalize needs a csr: the base64url DER of a CSR")
    try:
        der = jose.decode_b64jose(csr)
    except (jose.DeserializationError, ValueError):
        raise Problem("badCSR", "the csr is not base64url") from None
    try:
        return requests.load(der, "the CSR")
    except RequestError as error:
        raise Problem("badCSR", str(error)) from None


def with_common_name(request: requests.Request, order: Order) -> requests.Request:
    """The request, with the order's first name as its CN when it has none (clients such
    as certbot send none; profiles may require one, as Let's Encrypt fills it in too), and
    a CN that is a host name in its canonical form (lego sends `WWW.Lab.Test` as given):
    byte for byte the SAN entry it names, as CA/Browser Forum BR 7.1.2.7.2 asks."""
    common_name = request.subject.common_name
    if common_name is not None:
        kind, canonical = identifier_of_name(common_name)
        if kind == "cn" or canonical == common_name:
            return request
        return replace(request, subject=replace(request.subject, common_name=canonical))
    first = next((i.value for i in order.identifiers if len(i.value) <= MAX_CN), None)
    if first is None:
        return request
    return replace(request, subject=replace(request.subject, common_name=first))


def check(request: requests.Request, order: Order, account: Account) -> None:
    """RFC 8555 §7.4: the CSR names exactly the order's identifiers, and its key is not
    the account's."""
    wanted = {(i.type, i.value) for i in order.identifiers}
    named = {("dns", n) for n in request.names.dns} | {("ip", str(a)) for a in request.names.ip}
    common_name = request.subject.common_name
    if common_name:
        named.add(identifier_of_name(common_name))
    if request.names.email or request.names.uri:
        raise Problem("badCSR", "the CSR names email addresses or URIs; an order names hosts only")
    if named != wanted:
        extra = sorted(v for _, v in named - wanted)
        missing = sorted(v for _, v in wanted - named)
        parts = [f"not in the order: {', '.join(extra)}"] if extra else []
        parts += [f"missing: {', '.join(missing)}"] if missing else []
        raise Problem("badCSR", f"the CSR's names differ from the order's ({'; '.join(parts)})")
    if thumbprint(jwk_of(request.public_key)) == thumbprint(key_of(account.jwk)):
        raise Problem("badCSR", "the CSR's key is the account key; use a key of its own")


def identifier_of_name(name: str) -> tuple[str, str]:
    try:
        return ("ip", str(parse_ip(name)))
    except (RequestError, ValueError):
        pass
    try:
        return ("dns", parse_dns(name))
    except RequestError:
        return ("cn", name)
