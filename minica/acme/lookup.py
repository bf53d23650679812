"""DNS as the ACME validator sees it: the addresses of a name and the TXT records at one,
asked of the configured resolver alone, or of the system's. Every failure is a Problem
"dns" naming the name, the record type and the resolver.

With no configured resolver, addresses come from getaddrinfo, not dnspython: the
system's resolution (/etc/hosts, nsswitch, a local stub resolver) is what every other
program on a lab machine sees, so `localhost` and names in /etc/hosts validate as the
operator expects, and there is one source of addresses, not two that may disagree.
getaddrinfo cannot ask for TXT, so TXT goes to dnspython reading /etc/resolv.conf; when
that file names no usable nameserver, a dns-01 check fails with a Problem saying so
(there is nothing sound to fall back to for TXT). getaddrinfo has no timeout of its own:
it waits as long as resolv.conf's options allow (2 attempts of 5 seconds by default),
whatever the validator's timeout.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.resolver

from ..formats import printable
from ..names import shorten
from .probe import host_port
from .problems import Problem


@dataclass(frozen=True)
class Lookup:
    """``resolver``: the only nameserver to ask, (IP address, port); None: the system's.
    ``timeout``: seconds for each lookup, retries included."""

    resolver: tuple[str, int] | None
    timeout: float

    def describe(self) -> str:
        """The resolver, as a detail names it: ``resolver 127.0.0.1:8053``."""
        if self.resolver is None:
            return "the system resolver"
        return f"resolver {host_port(*self.resolver)}"

    def addresses(self, host: str) -> list[str]:
        """The addresses to connect to for ``host`` (itself if it is an IP address), in
        the order to try them: the system's order (RFC 6724) or, from the configured
        resolver, AAAA before A. Raises Problem "dns" if there is none."""
        try:
            return [ipaddress.ip_address(host).compressed]
        except ValueError:
            pass
        if self.resolver is None:
            return self._system_addresses(host)
        return self._resolved_addresses(host)

    def txt(self, name: str) -> list[bytes]:
        """The TXT records at ``name``, each record's strings joined (RFC 7208 §3.3 does
        the same); none for a name that does not exist or has no TXT. Raises Problem
        "dns" if the resolver cannot be asked or does not answer."""
        try:
            answer = self._resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as error:
            raise Problem("dns", f"no answer for TXT at {name}: {self._why(error)}") from None
        return [b"".join(record.strings) for record in answer]

    def _system_addresses(self, host: str) -> list[str]:
        try:
            found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, ValueError) as error:  # ValueError: NUL, UnicodeError: labels
            why = getattr(error, "strerror", None) or str(error)
            raise Problem(
                "dns", f"no address for {host} from the system resolver: {printable(why)}"
            ) from None
        # getaddrinfo gives one entry per protocol and may repeat an address; keep its order
        return list(dict.fromkeys(str(entry[4][0]) for entry in found))

    def _resolved_addresses(self, host: str) -> list[str]:
        found: list[str] = []
        failures: list[str] = []
        for record_type in ("AAAA", "A"):
            try:
                answer = self._resolve(host, record_type)
            except dns.resolver.NXDOMAIN:
                raise Problem(
                    "dns", f"no such name {host} (NXDOMAIN from {self.describe()})"
                ) from None
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.DNSException as error:
                failures.append(f"{record_type}: {self._why(error)}")
                continue
            found += [_address(record) for record in answer]
        if found:  # one family is enough, as for Let's Encrypt: the other may fail
            return found
        if failures:
            raise Problem("dns", f"no address for {host}: {'; '.join(failures)}")
        raise Problem("dns", f"no A or AAAA record for {host} ({self.describe()})")

    def _resolve(self, name: str, record_type: str) -> dns.resolver.Answer:
        """The answer for ``name`` (absolute: no search domains) and ``record_type``."""
        return self._resolver().resolve(dns.name.from_text(name), record_type, search=False)

    def _resolver(self) -> dns.resolver.Resolver:
        if self.resolver is None:
            resolver = dns.resolver.Resolver()  # /etc/resolv.conf; NoResolverConfiguration
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [self.resolver[0]]
            resolver.port = self.resolver[1]
        resolver.lifetime = self.timeout
        return resolver

    def _why(self, error: dns.exception.DNSException) -> str:
        """Why a lookup failed, naming the resolver."""
        if isinstance(error, dns.resolver.NoResolverConfiguration):
            return "/etc/resolv.conf names no usable nameserver"
        if isinstance(error, dns.exception.Timeout):
            return f"{self.describe()} did not answer within {self.timeout:g}s"
        if isinstance(error, dns.resolver.NoNameservers):
            answers = "; ".join(str(entry[3]) for entry in error.kwargs.get("errors", ()))
            return f"{self.describe()} answered {shorten(printable(answers or 'nothing usable'))}"
        return f"{self.describe()}: {shorten(printable(str(error)))}"


def _address(record: object) -> str:
    assert isinstance(record, (dns.rdtypes.IN.A.A, dns.rdtypes.IN.AAAA.AAAA))
    return str(record.address)
