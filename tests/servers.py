"""Real servers and clients for tests: nginx started on a free loopback port, and curl;
`minica serve` as a process, and plain HTTP requests to it.

nginx runs in the foreground as one process (`daemon off; master_process off;`), as
whoever runs the tests (root or not), with every file it writes under the test's tmp
folder, on a free 127.0.0.1 port. With `ssl_verify_client on`, nginx 1.22 completes the
handshake whatever the client certificate and then answers a bad or missing one with
HTTP 400; it logs why at level `info`. Without a client CA it asks for no client
certificate; further server directives (OCSP stapling, say) may be added.

A test module wraps `nginx_launcher` and `run_curl` in its own fixtures.
"""

from __future__ import annotations

import queue
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import Leaf, minica_argv, minica_env, require_tool
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

START_TIMEOUT = 10.0  # seconds for nginx to accept connections
STOP_TIMEOUT = 5.0  # seconds for nginx to exit after SIGTERM, before SIGKILL
PORT_ATTEMPTS = 5  # another process may take the free port before nginx binds it

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid "{dir}/nginx.pid";
error_log "{dir}/error.log" info;
events {{ worker_connections 64; }}
http {{
    access_log "{dir}/access.log";
    client_body_temp_path "{dir}/client_body";
    proxy_temp_path "{dir}/proxy";
    fastcgi_temp_path "{dir}/fastcgi";
    uwsgi_temp_path "{dir}/uwsgi";
    scgi_temp_path "{dir}/scgi";
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate "{cert}";
        ssl_certificate_key "{key}";
{directives}        default_type text/plain;
        location / {{ return 200 "hello $ssl_client_s_dn\\n"; }}
    }}
}}
"""
NGINX_VERIFY_DEPTH = 1  # nginx's own default for ssl_verify_depth


@dataclass(frozen=True)
class Nginx:
    port: int
    error_log: Path

    def log(self) -> str:
        return self.error_log.read_text()


# (leaf, client_ca=None, verify_depth=1, directives=()) -> Nginx
StartNginx = Callable[..., Nginx]


def server_directives(client_ca: Path | None, verify_depth: int, directives: Sequence[str]) -> str:
    """The server block's lines after its certificate and key: the client certificate
    checks when ``client_ca`` is given, then ``directives`` (each without its `;`)."""
    checks = (
        ()
        if client_ca is None
        else (
            f'ssl_client_certificate "{client_ca}"',
            "ssl_verify_client on",
            f"ssl_verify_depth {verify_depth}",
        )
    )
    return "".join(f"        {line};\n" for line in (*checks, *directives))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serves(
    process: subprocess.Popen[bytes], said: Callable[[], str], port: int, leaf: Leaf
) -> bool:
    """Poll until ``port`` completes a TLS handshake presenting ``leaf`` (True), or nginx
    exits, cannot bind, or time runs out. A bare connect is not enough: another program
    may hold the port while nginx still retries its bind."""
    expected = x509.load_pem_x509_certificates(leaf.cert.read_bytes())[0]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        if "Address already in use" in said():
            return False
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw,
                context.wrap_socket(raw) as tls,
            ):
                if tls.getpeercert(binary_form=True) == expected.public_bytes(Encoding.DER):
                    return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def stop(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; the exit code, None if it was killed."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            return None
    return process.returncode


@contextmanager
def nginx_launcher(tmp_path: Path) -> Iterator[StartNginx]:
    """A function that starts nginx serving a certificate (or chain), requiring a client
    certificate from ``client_ca`` if given, with further server ``directives``; every
    nginx started is stopped on exit, and none may be left running. Skips (or fails under
    MINICA_REQUIRE_TOOLS=1) without nginx."""
    binary = require_tool("nginx")
    started: list[subprocess.Popen[bytes]] = []
    configs: list[Path] = []

    def start(
        leaf: Leaf,
        client_ca: Path | None = None,
        verify_depth: int = NGINX_VERIFY_DEPTH,
        directives: Sequence[str] = (),
    ) -> Nginx:
        folder = tmp_path / f"nginx{len(configs)}"
        folder.mkdir()
        conf = folder / "nginx.conf"
        configs.append(conf)
        error_log, output = folder / "error.log", folder / "nginx.out"
        command = [binary, "-p", str(folder), "-e", str(error_log), "-c", str(conf)]

        def said() -> str:
            return "".join(f.read_text() for f in (output, error_log) if f.exists())

        for _ in range(PORT_ATTEMPTS):
            port = free_port()
            error_log.unlink(missing_ok=True)
            conf.write_text(
                NGINX_CONF.format(
                    dir=folder,
                    port=port,
                    cert=leaf.cert,
                    key=leaf.key,
                    directives=server_directives(client_ca, verify_depth, directives),
                )
            )
            checked = subprocess.run(
                [*command, "-t", "-q"], capture_output=True, text=True, timeout=30
            )
            if checked.returncode != 0:
                pytest.fail(f"nginx -t -c {conf} refused the configuration:\n{checked.stderr}")
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT
                )
            started.append(process)
            if serves(process, said, port, leaf):
                return Nginx(port, error_log)
            stop(process)
            if "Address already in use" not in said():
                pytest.fail(f"nginx did not start on 127.0.0.1:{port} ({command}):\n{said()}")
        pytest.fail(f"nginx found no free port in {PORT_ATTEMPTS} attempts")

    try:
        yield start
    finally:
        for process in started:
            stop(process)
    if pgrep := shutil.which("pgrep"):
        for conf in configs:
            left = subprocess.run([pgrep, "-f", str(conf)], capture_output=True, text=True)
            assert left.returncode == 1, f"nginx left running: {left.stdout}"


@dataclass(frozen=True)
class Response:
    code: int  # curl's exit code
    status: str  # HTTP status, "000" when there was none
    body: str
    stderr: str


def run_curl(
    ca_file: Path,
    port: int,
    client: Leaf | None = None,
    *options: str,
    host: str = "localhost",
) -> Response:
    """curl https://HOST:PORT/ (localhost resolved to 127.0.0.1), trusting only ``ca_file``
    and presenting ``client`` (a certificate, or a leaf-first chain, and its key) if given.
    Skips (or fails under MINICA_REQUIRE_TOOLS=1) without curl."""
    binary = require_tool("curl")
    command = [
        *(binary, "-q", "-sS", "--noproxy", "*", "--max-time", "10"),
        *("--cacert", str(ca_file), "--resolve", f"localhost:{port}:127.0.0.1"),
        *("-w", "\n%{http_code}"),
        *(("--cert", str(client.cert), "--key", str(client.key)) if client else ()),
        *options,
        f"https://{host}:{port}/",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    body, _, status = done.stdout.rpartition("\n")
    return Response(done.returncode, status, body, done.stderr)


def assert_refused_by_nginx(response: Response, server: Nginx, verify_error: str) -> None:
    """nginx finished the handshake, then answered HTTP 400 for the client certificate and
    logged ``verify_error`` (a regular expression for OpenSSL's "(code:message)")."""
    assert (response.code, response.status) == (0, "400"), response
    assert "<title>400 The SSL certificate error</title>" in response.body
    log = server.log()
    assert re.search(rf"client SSL certificate verify error: {verify_error}", log), log


# `minica serve` as a user runs it: a process on loopback ports, stopped with SIGTERM.

SERVE_START_TIMEOUT = 30.0  # seconds to the `serving` lines: imports, the HTTPS certificate
SERVE_STOP_TIMEOUT = 10.0  # seconds for minica serve to exit after SIGTERM, before SIGKILL
SERVING = re.compile(r"serving (https?)://(\S+?)/\s*$")


@dataclass
class Service:
    """A running `minica serve`: its process, its base URLs (no trailing slash) and every
    line it has written to stderr so far (a thread reads them, so the pipe never fills)."""

    process: subprocess.Popen[bytes]
    urls: dict[str, str]  # "http"/"https" -> "http://127.0.0.1:PORT"
    lines: list[str]

    @property
    def http_url(self) -> str:
        return self.urls["http"]

    @property
    def https_url(self) -> str:
        return self.urls["https"]

    def port(self, scheme: str = "http") -> int:
        return int(self.urls[scheme].rpartition(":")[2])

    def said(self) -> str:
        return "".join(self.lines)


def _read_lines(stream: IO[bytes], lines: list[str], arrived: queue.Queue[str | None]) -> None:
    for raw in stream:
        line = raw.decode(errors="replace")
        lines.append(line)
        arrived.put(line)
    arrived.put(None)  # end of stream: the process closed stderr or exited


def start_service(
    ca: Path,
    *options: str | Path,
    listen: str = "127.0.0.1:0",
    http_listen: str = "127.0.0.1:0",
    env: Mapping[str, str] | None = None,
) -> Service:
    """Start `minica serve --ca CA --listen LISTEN --http-listen HTTP_LISTEN OPTIONS` and
    wait for its `serving` line of each listener. Fails the test, with what the process
    said, if it exits first or is silent past SERVE_START_TIMEOUT; the caller stops it."""
    process = subprocess.Popen(
        minica_argv(
            "serve", "--ca", ca, "--listen", listen, "--http-listen", http_listen, *options
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=minica_env(env),
        start_new_session=True,  # a terminal's Ctrl-C must not reach it; we signal it ourselves
    )
    assert process.stderr is not None
    lines: list[str] = []
    arrived: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stderr, lines, arrived), daemon=True).start()
    service = Service(process, {}, lines)
    expected = {"https", "http"} - ({"http"} if http_listen == "none" else set())
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while set(service.urls) != expected:
        try:
            line = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            stop_service(service)
            pytest.fail(
                f"minica serve said no `serving` lines in {SERVE_START_TIMEOUT} s:\n"
                + service.said()
            )
        if line is None:
            stop_service(service)
            pytest.fail(
                f"minica serve exited ({process.returncode}) before serving:\n" + service.said()
            )
        if found := SERVING.match(line):
            service.urls[found[1]] = f"{found[1]}://{found[2]}"
    return service


def stop_service(service: Service) -> int | None:
    """SIGTERM, then SIGKILL after SERVE_STOP_TIMEOUT; the exit code, None if it was killed."""
    return stop(service.process, SERVE_STOP_TIMEOUT)


@contextmanager
def running_service(ca: Path, *options: str | Path, **settings: Any) -> Iterator[Service]:
    """start_service(...) for the ``with`` block; stopped (SIGTERM, then kill) on exit."""
    service = start_service(ca, *options, **settings)
    try:
        yield service
    finally:
        stop_service(service)


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers (names lowercase, as received), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").partition(";")[0].strip()


HTTP_TIMEOUT = 10.0  # seconds for one request to the service


def http_request(
    url: str,
    body: bytes | None = None,
    *,
    method: str | None = None,
    headers: Mapping[str, str] | None = None,
    trust: Path | None = None,
) -> Reply:
    """One request with urllib (no proxy, whatever the environment says); 4xx and 5xx are
    answers too. ``trust``: the only CA file an https URL's certificate may chain to."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if trust is not None:
        handlers.append(
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(trust)))
        )
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT) as answer:
            return Reply(answer.status, _lower(answer.headers), answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return Reply(error.code, _lower(error.headers), error.read())


def _lower(headers: Message) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}
