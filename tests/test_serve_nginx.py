"""nginx staples the OCSP answers of `minica serve`, and curl and openssl judge the staple.

A CA made with `minica init --url http://127.0.0.1:PORT` points every certificate's AIA
at that service's /ocsp, and `minica serve` answers there over plain HTTP (nginx's
stapling speaks only HTTP). With `ssl_stapling on; ssl_stapling_verify on;` nginx fetches
the answer for its certificate (GET /ocsp/ and the request in base64, percent-encoded),
checks it against `ssl_trusted_certificate` and staples it to its handshakes. What these
tests rely on, as nginx 1.22 does it (src/event/ngx_event_openssl_stapling.c):

- It staples lazily: a handshake that finds no staple starts the fetch, so the first
  handshakes may come without one.
- It asks again no sooner than 5 minutes after a good answer (at the latest after an hour,
  or 5 minutes before nextUpdate), and 5 minutes after a failed fetch. So after a
  revocation a running nginx keeps stapling `good`, and only a restart makes it ask at
  once (the test's nginx runs without a master process, which a reload needs).
- It staples only `good`: for a revoked certificate it logs `certificate status "revoked"
  in the OCSP response` and staples nothing, and `curl --cert-status` refuses for want of
  a staple. A revoked answer reaches clients only through `ssl_stapling_file`.

curl --cert-status finds the issuer for the answer's CertID among the certificates the
server sends, so nginx serves the leaf followed by the CA's certificate.
"""

from __future__ import annotations

import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import Leaf, minica_argv, minica_env, require_tool, run_minica
from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID
from servers import Nginx, Response, StartNginx, free_port, nginx_launcher, run_curl, stop

pytestmark = pytest.mark.tools

SERVE_START_TIMEOUT = 30.0  # seconds: Python's start-up and the service's own certificate
STAPLE_TIMEOUT = 10.0  # seconds for nginx to fetch an answer once a handshake asked for it
# seconds for a revocation to show at /ocsp: the contract's 2, with room for a loaded
# machine (this file judges nginx and its clients, not the service's speed)
REVOCATION_TIMEOUT = 10.0
PORT_ATTEMPTS = 5  # another process may take the free port before `minica serve` binds it
POLL = 0.1  # seconds between two looks
CERT_STATUS_REFUSED = 91  # curl's CURLE_SSL_INVALIDCERTSTATUS
NO_STAPLE = "No OCSP response received"  # curl's message when the handshake had no staple
NGINX_REVOKED = 'certificate status "revoked" in the OCSP response'


@dataclass(frozen=True)
class Service:
    """A CA folder made with `minica init --url BASE`, and `minica serve` answering at BASE."""

    ca: Path
    base: str  # http://127.0.0.1:PORT, no trailing slash
    log: Path  # what `minica serve` printed

    @property
    def ca_file(self) -> Path:
        return self.ca / "ca.crt"

    @property
    def ocsp_url(self) -> str:
        return f"{self.base}/ocsp"


StartService = Callable[..., Service]  # (*serve options) -> Service


def answers(process: subprocess.Popen[bytes], log: Path, base: str) -> bool:
    """Poll until `minica serve` has said `serving BASE/` and answers GET /health with 200
    (True), or exits, or time runs out."""
    said = re.compile(rf"^serving {re.escape(base)}/$", re.MULTILINE)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if said.search(log.read_text()):
            try:
                with direct.open(f"{base}/health", timeout=2) as health:
                    if health.status == 200:
                        return True
            except OSError:
                pass
        time.sleep(POLL)
    return False


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[StartService]:
    """A function that makes a CA with `minica init --url http://127.0.0.1:PORT` for a free
    PORT and runs `minica serve OPTIONS` on it (HTTP there, HTTPS on a port of its own);
    every service started is stopped (SIGTERM) afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> Service:
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            base, ca = f"http://127.0.0.1:{port}", tmp_path / f"ca{len(started)}"
            run_minica(
                "init", "--ca", ca, "--cn", "minica stapling root", "--url", base, check=True
            )
            log = tmp_path / f"serve{len(started)}.log"
            command = minica_argv(
                *("serve", "--ca", ca, "--listen", "127.0.0.1:0"),
                *("--http-listen", f"127.0.0.1:{port}", *options),
            )
            with log.open("wb") as sink:
                process = subprocess.Popen(
                    command,
                    env=minica_env(),
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            started.append(process)
            if answers(process, log, base):
                return Service(ca, base, log)
            stop(process)
            if "address already in use" not in log.read_text().lower():
                pytest.fail(
                    f"minica serve did not answer at {base} (attempt {attempt}):\n{log.read_text()}"
                )
        pytest.fail(f"minica serve found no free port in {PORT_ATTEMPTS} attempts")

    try:
        yield start
    finally:
        for process in started:
            stop(process)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[StartNginx]:
    with nginx_launcher(tmp_path) as start:
        yield start


def issue_server(service: Service, folder: Path) -> tuple[Path, Leaf]:
    """A `server` certificate for localhost and 127.0.0.1 from the service's CA: its file,
    and what nginx serves (the leaf, then the CA's certificate, for curl's CertID)."""
    certificate, key = folder / "server.crt", folder / "server.key"
    run_minica(
        *("issue", "--ca", service.ca, "--profile", "server", "--cn", "localhost"),
        *("--dns", "localhost", "--ip", "127.0.0.1", "--out", certificate, "--key-out", key),
        check=True,
    )
    served = folder / "server-and-ca.crt"
    served.write_bytes(certificate.read_bytes() + service.ca_file.read_bytes())
    return certificate, Leaf(served, key)


def stapling(service: Service, *more: str) -> tuple[str, ...]:
    """The nginx directives of the README's how-to (no resolver: the URL is an address)."""
    trusted = service.ca / "ca-chain.crt"
    return (
        "ssl_stapling on",
        "ssl_stapling_verify on",
        f'ssl_trusted_certificate "{trusted}"',
        *more,
    )


def ocsp_urls(certificate: Path) -> list[str]:
    access = x509.load_pem_x509_certificate(certificate.read_bytes()).extensions
    aia = access.get_extension_for_class(x509.AuthorityInformationAccess).value
    return [
        str(point.access_location.value)
        for point in aia
        if point.access_method == AuthorityInformationAccessOID.OCSP
    ]


def cert_status(service: Service, server: Nginx) -> Response:
    """curl --cert-status https://localhost:PORT/: the handshake must carry a staple that
    says `good` for nginx's certificate, signed by a signer curl trusts."""
    return run_curl(service.ca_file, server.port, None, "--cert-status")


def first_stapled(service: Service, server: Nginx) -> Response:
    """curl --cert-status again until a handshake carries a staple, or time runs out
    (nginx staples lazily: see the module's docstring)."""
    deadline = time.monotonic() + STAPLE_TIMEOUT
    while NO_STAPLE in (response := cert_status(service, server)).stderr:
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    return response


def staple_seen_by_openssl(service: Service, server: Nginx) -> str:
    """What `openssl s_client -status` prints of the handshake (and its staple), having
    checked nginx's certificate against the CA."""
    done = subprocess.run(
        [
            *(require_tool("openssl"), "s_client", "-connect", f"127.0.0.1:{server.port}"),
            *("-servername", "localhost", "-status", "-CAfile", str(service.ca_file)),
            "-verify_return_error",
        ],
        input="",  # end of input: s_client closes the connection after the handshake
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Verify return code: 0 (ok)" in done.stdout, done.stdout
    return done.stdout


def stapled_serials(seen: str) -> list[int]:
    """The serial numbers the staple's single responses are about (s_client prints them
    in upper-case hex, as OpenSSL prints every serial)."""
    answer = seen.split("OCSP Response Data:", 1)[-1].split("\n---", 1)[0]
    return [int(serial, 16) for serial in re.findall(r"Serial Number: ([0-9A-F]+)\n", answer)]


def ask_service(service: Service, certificate: Path, *options: str) -> str:
    """`openssl ocsp` asks the service about ``certificate`` (POST, with a nonce unless
    `-no_nonce` is among ``options``) and verifies the answer against the CA; returns what
    it printed."""
    done = subprocess.run(
        [
            *(require_tool("openssl"), "ocsp", "-issuer", str(service.ca_file)),
            *("-cert", str(certificate), "-url", service.ocsp_url),
            *("-CAfile", str(service.ca_file), *options),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Response verify OK" in done.stderr, done.stderr
    return done.stdout


def revoke(service: Service, certificate: Path, *options: str) -> str:
    """`minica revoke` (key compromise) in its own process, then what `openssl ocsp` got
    from the service once it said `revoked`. Asked without a nonce, as nginx asks: a
    request with a nonce gets an answer of its own, while those without one share the
    answer the service keeps, which may say `good` a moment longer."""
    run_minica("revoke", "--ca", service.ca, certificate, "--reason", "key-compromise", check=True)
    deadline = time.monotonic() + REVOCATION_TIMEOUT
    asked = ("-no_nonce", *options)
    while f"{certificate}: good" in (said := ask_service(service, certificate, *asked)):
        if time.monotonic() > deadline:
            break
        time.sleep(POLL)
    assert f"{certificate}: revoked" in said, said
    assert "Reason: keyCompromise" in said, said
    return said


@pytest.mark.parametrize("signer", [(), ("--ocsp-delegate",)], ids=["ca-key", "delegate"])
def test_nginx_staples_the_good_answer_of_minica_serve_and_curl_and_openssl_accept_it(
    serve: StartService, nginx: StartNginx, tmp_path: Path, signer: tuple[str, ...]
) -> None:
    service = serve(*signer)
    certificate, leaf = issue_server(service, tmp_path)
    assert ocsp_urls(certificate) == [service.ocsp_url]
    assert f"{certificate}: good" in ask_service(service, certificate)
    server = nginx(leaf, directives=stapling(service))

    response = first_stapled(service, server)
    assert (response.code, response.status) == (0, "200"), (response, server.log())
    seen = staple_seen_by_openssl(service, server)
    assert "OCSP Response Status: successful (0x0)" in seen, seen
    assert "Cert Status: good" in seen, seen
    assert stapled_serials(seen) == [leaf.certificate.serial_number], seen
    assert "OCSP_basic_verify() failed" not in server.log()
    # nginx asked by GET, with the request's base64 percent-encoded into the path
    assert re.search(r'"GET /ocsp/\S+ HTTP/1\.0" 200', service.log.read_text()), service.log


def test_after_revocation_a_restarted_nginx_staples_nothing_and_curl_cert_status_refuses(
    serve: StartService, nginx: StartNginx, tmp_path: Path
) -> None:
    service = serve()
    certificate, leaf = issue_server(service, tmp_path)
    running = nginx(leaf, directives=stapling(service))
    assert first_stapled(service, running).code == 0, running.log()

    revoke(service, certificate)
    # the running nginx keeps its `good` staple for at least 5 minutes: hence the restart
    stale = cert_status(service, running)
    assert (stale.code, stale.status) == (0, "200"), stale
    restarted = nginx(leaf, directives=stapling(service))
    deadline = time.monotonic() + STAPLE_TIMEOUT
    while NGINX_REVOKED not in restarted.log() and time.monotonic() < deadline:
        cert_status(service, restarted)  # a handshake asks nginx to fetch, if it has not yet
        time.sleep(POLL)
    assert NGINX_REVOKED in restarted.log(), restarted.log()

    refused = cert_status(service, restarted)
    assert (refused.code, refused.status) == (CERT_STATUS_REFUSED, "000"), refused
    assert f"curl: ({CERT_STATUS_REFUSED}) {NO_STAPLE}" in refused.stderr, refused.stderr
    plain = run_curl(service.ca_file, restarted.port)
    assert (plain.code, plain.status) == (0, "200"), plain  # the staple made the difference
    assert "OCSP response: no response sent" in staple_seen_by_openssl(service, restarted)


def test_a_revoked_answer_of_minica_serve_stapled_from_a_file_is_refused_by_curl_for_its_reason(
    serve: StartService, nginx: StartNginx, tmp_path: Path
) -> None:
    service = serve()
    certificate, leaf = issue_server(service, tmp_path)
    answer = tmp_path / "revoked.der"
    revoke(service, certificate, "-respout", str(answer))
    server = nginx(leaf, directives=stapling(service, f'ssl_stapling_file "{answer}"'))

    refused = cert_status(service, server)
    assert (refused.code, refused.status) == (CERT_STATUS_REFUSED, "000"), refused
    assert "SSL certificate revocation reason: keyCompromise (1)" in refused.stderr, refused
    plain = run_curl(service.ca_file, server.port)
    assert (plain.code, plain.status) == (0, "200"), plain  # the staple made the difference
    seen = staple_seen_by_openssl(service, server)
    assert "Cert Status: revoked" in seen, seen
    assert "Revocation Reason: keyCompromise (0x1)" in seen, seen
    assert stapled_serials(seen) == [leaf.certificate.serial_number], seen
