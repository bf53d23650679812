"""`minica serve` as an ACME server for real clients: a CA folder, the service with its
validator pointed at a lab DNS (pebble-challtestsrv, every name → 127.0.0.1) and at
free ports where the client under test answers http-01 and tls-alpn-01.

    with acme_service(tmp_path) as acme:
        lego(acme, "--domains", "www.lab.test", "--http", "--http.port", f":{acme.http_01_port}")

The clients trust only the CA's root (``acme.root``) for the directory's HTTPS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from acme_lab import ChallTestSrv, challtestsrv
from conftest import run_minica
from servers import Service, free_port, running_service


@dataclass(frozen=True)
class AcmeService:
    """A running `minica serve` with ACME, the lab DNS it resolves names through, and the
    ports its validator connects to on 127.0.0.1."""

    ca: Path
    service: Service
    dns: ChallTestSrv
    http_01_port: int
    tls_alpn_01_port: int

    @property
    def directory(self) -> str:
        return f"{self.service.https_url}/acme/directory"

    @property
    def root(self) -> Path:
        return self.ca / "ca.crt"

    @property
    def dns_server(self) -> str:
        """The lab DNS as HOST:PORT, the form lego's --dns.resolvers takes."""
        return f"{self.dns.dns[0]}:{self.dns.dns[1]}"


@contextmanager
def acme_service(
    folder: Path, *serve_options: str, init_options: tuple[str, ...] = ()
) -> Iterator[AcmeService]:
    """`minica init` in FOLDER/ca (with ``init_options``), then `minica serve` with ACME
    validating through a fresh lab DNS on free ports; both stopped on exit."""
    ca = folder / "ca"
    run_minica("init", "--ca", ca, "--cn", "minica ACME test root", *init_options, check=True)
    http_01_port, tls_alpn_01_port = free_port(), free_port()
    with challtestsrv() as dns:
        options = (
            *("--dns-resolver", f"{dns.dns[0]}:{dns.dns[1]}"),
            *("--http-01-port", str(http_01_port), "--tls-alpn-01-port", str(tls_alpn_01_port)),
            *serve_options,
        )
        with running_service(ca, *options) as service:
            yield AcmeService(ca, service, dns, http_01_port, tls_alpn_01_port)
