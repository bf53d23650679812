"""A lab DNS for ACME tests: Pebble's pebble-challtestsrv (Debian's `pebble` package) as
a real DNS server on free 127.0.0.1 ports, its records set over its management API.

Only its DNS server runs (its own http-01, https-01 and tls-alpn-01 responders are off):
it answers A and AAAA queries for every name with a default address (127.0.0.1 and no
IPv6 here, unless told otherwise) or the addresses added for that name, TXT queries
with the values set, and SERVFAIL for a name told to. It answers over UDP and TCP on the
same port. It never answers NXDOMAIN: a name it knows nothing of has no records.

    with challtestsrv() as lab:
        lab.set_txt("_acme-challenge.lab.test", "value")
        Validator(resolver=lab.dns).validate(...)
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import dns.exception
import dns.message
import dns.query
import pytest
from conftest import require_tool
from servers import free_port, stop

START_TIMEOUT = 10.0  # seconds for challtestsrv to answer DNS and management requests
PORT_ATTEMPTS = 5  # another process may take a free port before challtestsrv binds it


@dataclass(frozen=True)
class ChallTestSrv:
    """A running pebble-challtestsrv: ``dns`` is its DNS server (host, port), as
    Validator(resolver=...) takes it; the methods change what it answers. A host may be
    given with or without its final dot."""

    dns: tuple[str, int]
    management: str  # base URL of the management API
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def set_txt(self, host: str, value: str) -> None:
        """Add ``value`` to the TXT records at ``host`` (each call adds one more)."""
        self.post("set-txt", host=fqdn(host), value=value)

    def clear_txt(self, host: str) -> None:
        """Remove every TXT record at ``host``."""
        self.post("clear-txt", host=fqdn(host))

    def add_a(self, host: str, addresses: Sequence[str]) -> None:
        """Answer A queries for ``host`` with ``addresses`` instead of the default."""
        self.post("add-a", host=fqdn(host), addresses=list(addresses))

    def clear_a(self, host: str) -> None:
        self.post("clear-a", host=fqdn(host))

    def add_aaaa(self, host: str, addresses: Sequence[str]) -> None:
        """Answer AAAA queries for ``host`` with ``addresses`` instead of the default."""
        self.post("add-aaaa", host=fqdn(host), addresses=list(addresses))

    def clear_aaaa(self, host: str) -> None:
        self.post("clear-aaaa", host=fqdn(host))

    def set_default_ipv4(self, address: str | None) -> None:
        """The A answer for names with none added; None: no A record for them."""
        self.post("set-default-ipv4", ip=address or "")

    def set_default_ipv6(self, address: str | None) -> None:
        """The AAAA answer for names with none added; None: no AAAA record for them."""
        self.post("set-default-ipv6", ip=address or "")

    def set_servfail(self, host: str) -> None:
        """Answer every query for ``host`` with SERVFAIL."""
        self.post("set-servfail", host=fqdn(host))

    def clear_servfail(self, host: str) -> None:
        self.post("clear-servfail", host=fqdn(host))

    def post(self, command: str, **body: object) -> None:
        """POST ``body`` as JSON to the management API's ``command``; fails the test
        unless it is accepted."""
        request = urllib.request.Request(
            f"{self.management}/{command}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200, (command, body, answer.status)

    def output(self) -> str:
        """What challtestsrv has logged so far (every change and query it saw)."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


@contextmanager
def challtestsrv(
    default_ipv4: str | None = "127.0.0.1", default_ipv6: str | None = None
) -> Iterator[ChallTestSrv]:
    """A pebble-challtestsrv answering DNS on a free 127.0.0.1 port (UDP and TCP), with
    ``default_ipv4``/``default_ipv6`` as the A/AAAA answer for names with none added
    (None: no record); stopped on exit. Skips without the program (fails under
    MINICA_REQUIRE_TOOLS=1)."""
    binary = require_tool("pebble-challtestsrv")
    with tempfile.TemporaryFile() as log:
        for _ in range(PORT_ATTEMPTS):
            dns_port, management_port = free_udp_and_tcp_port(), free_port()
            command = [
                *(binary, "-dns01", f"127.0.0.1:{dns_port}"),
                *("-http01", "", "-https01", "", "-tlsalpn01", ""),
                *("-management", f"127.0.0.1:{management_port}"),
                *("-defaultIPv4", default_ipv4 or "", "-defaultIPv6", default_ipv6 or ""),
            ]
            log.seek(0)
            log.truncate()
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
            lab = ChallTestSrv(
                ("127.0.0.1", dns_port), f"http://127.0.0.1:{management_port}", process, log
            )
            try:
                if answers(lab):
                    yield lab
                    return
            finally:
                stop(process)
            if "address already in use" not in lab.output():
                pytest.fail(f"pebble-challtestsrv did not start ({command}):\n{lab.output()}")
        pytest.fail(f"pebble-challtestsrv found no free ports in {PORT_ATTEMPTS} attempts")


def answers(lab: ChallTestSrv) -> bool:
    """Poll until ``lab`` answers a DNS query over UDP and TCP and its management API
    (True), or it exits or time runs out (False). A bare connect is not enough: another
    program may hold a port."""
    query = dns.message.make_query("ready.lab.test.", "TXT")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and lab.process.poll() is None:
        try:
            dns.query.udp(query, lab.dns[0], port=lab.dns[1], timeout=0.1)
            dns.query.tcp(query, lab.dns[0], port=lab.dns[1], timeout=0.1)
            lab.clear_txt("ready.lab.test")  # any 200 from the management API
            return True
        except (OSError, dns.exception.DNSException, urllib.error.URLError):
            time.sleep(0.02)
    return False


def free_udp_and_tcp_port() -> int:
    """A 127.0.0.1 port free for both TCP and UDP at the moment of asking."""
    while True:
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def fqdn(host: str) -> str:
    return host if host.endswith(".") else host + "."
