"""Caddy (Debian's 2.6.2) gets its site certificate from `minica serve` on its own, as a
user's Caddyfile asks (`acme_ca`, `acme_ca_root`), answering http-01 or tls-alpn-01 on the
ports minica's validator connects to, with an external account key when the service
requires one, then serves HTTPS with it: curl trusting only minica's root gets the page,
curl trusting another CA is refused, and the certificate served is minica's, listed in
the registry with Caddy's ACME account email as contact.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from acme_clients import assert_server_certificate, client_env, eab_key
from acme_serve import AcmeService, acme_service
from conftest import require_tool, write_ca_certificate
from serve_lab import served_certificate
from servers import Response, run_curl, stop

from minica import CertificateAuthority, Subject

pytestmark = pytest.mark.tools


@pytest.fixture(autouse=True)
def _caddy_and_curl_installed() -> None:
    """Skip (or fail under MINICA_REQUIRE_TOOLS=1) before starting a service for nothing."""
    require_tool("caddy")
    require_tool("curl")


SITE = "www.lab.test"
BODY = "hello from caddy"
EMAIL = "caddy@lab.test"
CERTIFICATE_TIMEOUT = 60.0  # seconds for Caddy to start, order, be validated and serve
POLL_EVERY = 0.2  # seconds between two curl attempts while Caddy gets its certificate

# Caddy binds only 127.0.0.1 (default_bind), on the ports minica's validator connects to:
# http-01 on http_port, tls-alpn-01 on https_port (the site leaves Caddy one of them). Its
# storage and its own CA (which skip_install_trust keeps out of the system's trust
# store) live under the test's folder.
CADDYFILE = """\
{{
    admin off
    default_bind 127.0.0.1
    storage file_system {storage}
    skip_install_trust
    http_port {http_port}
    https_port {https_port}
    acme_ca {directory}
    acme_ca_root {root}
    email {email}
    ocsp_stapling off
}}

{site} {{
{tls}    respond "{body}"
}}
"""
# The site's issuer as the global options make it, with one of its two challenges off:
# given both, Caddy picks one at random for each order.
ONE_CHALLENGE = """\
    tls {{
        issuer acme {{
            dir {directory}
            trusted_roots {root}
            email {email}
            {disable}
            {eab}
        }}
    }}
"""
CHALLENGES = {"http-01": "disable_tlsalpn_challenge", "tls-alpn-01": "disable_http_challenge"}


@dataclass(frozen=True)
class Caddy:
    process: subprocess.Popen[bytes]
    log: Path
    https_port: int

    def said(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def caddy(
    acme: AcmeService, folder: Path, challenge: str, eab: tuple[str, str] | None = None
) -> Iterator[Caddy]:
    """`caddy run` with the Caddyfile above in ``folder`` (its site's ``challenge`` one
    of CHALLENGES; its account bound to the external account key ``eab``, (kid, HMAC
    key), if given), HOME and the XDG folders there too; stopped (SIGTERM, then kill) on
    exit. Skips (or fails under MINICA_REQUIRE_TOOLS=1) without caddy."""
    binary = require_tool("caddy")
    folder.mkdir()
    config = folder / "Caddyfile"
    where = {"directory": acme.directory, "root": acme.root, "email": EMAIL}
    config.write_text(
        CADDYFILE.format(
            storage=folder / "storage",
            http_port=acme.http_01_port,
            https_port=acme.tls_alpn_01_port,
            site=SITE,
            body=BODY,
            tls=ONE_CHALLENGE.format(
                disable=CHALLENGES[challenge], eab=f"eab {eab[0]} {eab[1]}" if eab else "", **where
            ),
            **where,
        )
    )
    places = {"XDG_DATA_HOME": str(folder / "data"), "XDG_CONFIG_HOME": str(folder / "config")}
    log = folder / "caddy.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [binary, "run", "--config", str(config), "--adapter", "caddyfile"],
            env=client_env(folder, places),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Caddy(process, log, acme.tls_alpn_01_port)
    finally:
        stop(process)


def get(server: Caddy, trust: Path) -> Response:
    """curl https://www.lab.test:PORT/ at 127.0.0.1, trusting only ``trust``: Debian's
    libcurl also reads its built-in CA path (/etc/ssl/certs) unless given another, here
    an empty folder."""
    no_ca_path = server.log.parent / "empty-ca-path"
    no_ca_path.mkdir(exist_ok=True)
    options = ("--capath", str(no_ca_path), "--resolve", f"{SITE}:{server.https_port}:127.0.0.1")
    return run_curl(trust, server.https_port, None, *options, host=SITE)


def serving(server: Caddy, trust: Path) -> Response:
    """Poll until curl trusting ``trust`` gets the page (Caddy has its certificate); fails
    the test, with what Caddy said, if Caddy exits or CERTIFICATE_TIMEOUT passes."""
    deadline = time.monotonic() + CERTIFICATE_TIMEOUT
    while True:
        response = get(server, trust)
        if response.code == 0:
            return response
        if server.process.poll() is not None:
            pytest.fail(f"caddy exited ({server.process.returncode}):\n{server.said()}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"caddy served no page in {CERTIFICATE_TIMEOUT} s: {response}\n{server.said()}"
            )
        time.sleep(POLL_EVERY)


@pytest.mark.parametrize("challenge", sorted(CHALLENGES))
def test_caddy_gets_and_serves_a_minica_certificate(tmp_path: Path, challenge: str) -> None:
    other = CertificateAuthority.in_memory(subject=Subject(common_name="some other root"))
    other_root = write_ca_certificate(other, tmp_path / "other-root.crt")
    with acme_service(tmp_path) as acme, caddy(acme, tmp_path / "caddy", challenge) as server:
        response = serving(server, acme.root)
        assert (response.status, response.body) == ("200", BODY), response
        assert f'"challenge_type":"{challenge}"' in server.said()

        # curl trusting another CA only (no system bundle either) refuses the server:
        # exit 60, the peer's certificate cannot be authenticated.
        refused = get(server, other_root)
        assert refused.code == 60, refused

        certificate = served_certificate(server.https_port, acme.root, SITE)
        assert_server_certificate(acme, certificate, (SITE,), EMAIL)


def test_caddy_with_external_account_binding(tmp_path: Path) -> None:
    with acme_service(tmp_path, "--eab-required") as acme:
        key = eab_key(acme)
        with caddy(acme, tmp_path / "caddy", "http-01", eab=key) as server:
            response = serving(server, acme.root)
            assert (response.status, response.body) == ("200", BODY), response
            certificate = served_certificate(server.https_port, acme.root, SITE)
            assert_server_certificate(acme, certificate, (SITE,), EMAIL)
