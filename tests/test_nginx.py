"""A real nginx and curl judge minica's TLS profiles: mutual TLS works with each profile on
its own side and is refused, with the reason in nginx's error log or in curl's message,
with the wrong one.

nginx runs in the foreground as one process (`daemon off; master_process off;`), as
whoever runs the tests (root or not), with every file it writes under the test's tmp
folder, on a free 127.0.0.1 port. With `ssl_verify_client on`, nginx 1.22 completes the
handshake whatever the client certificate and then answers a bad or missing one with
HTTP 400; it logs why at level `info`.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require_tool, write_ca_certificate, write_certificate
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from minica import CertificateAuthority, Subject
from minica.keys import private_key_pem
from minica.settings import Settings

pytestmark = pytest.mark.tools

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
        ssl_client_certificate "{client_ca}";
        ssl_verify_client on;
        default_type text/plain;
        location / {{ return 200 "hello $ssl_client_s_dn\\n"; }}
    }}
}}
"""

Leaf = tuple[Path, Path]  # certificate, key


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    leaves: dict[str, Leaf]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One root CA (plus an intermediate and an unrelated CA) and every leaf, EC P-256
    unless named otherwise, made once through the API."""
    folder = tmp_path_factory.mktemp("pki")
    root = CertificateAuthority.in_memory(subject=Subject(common_name="minica nginx root"))
    stranger = CertificateAuthority.in_memory(subject=Subject(common_name="stranger root"))
    local = {"dns": ["localhost"], "ip": ["127.0.0.1"]}
    leaves = {
        "server": write_certificate(root, "server", folder, "server", "localhost", **local),
        "server-rsa": write_certificate(
            root, "server", folder, "server-rsa", "localhost", key_type="rsa-2048", **local
        ),
        "client": write_certificate(root, "client", folder, "client", "alice"),
        # names that match, so the only thing wrong as a server certificate is its purpose
        "client-as-server": write_certificate(
            root, "client", folder, "client-as-server", "localhost", dns=["localhost"]
        ),
        "server-client": write_certificate(
            root, "server-client", folder, "server-client", "localhost", dns=["localhost"]
        ),
        "stranger": write_certificate(stranger, "client", folder, "stranger", "mallory"),
        "chain": _intermediate_server(root, folder),
    }
    return Pki(write_ca_certificate(root, folder / "ca.crt"), leaves)


def _intermediate_server(root: CertificateAuthority, folder: Path) -> Leaf:
    """A server certificate from an intermediate CA, written as a full chain file."""
    issued, key = root.issue(
        root.profile("intermediate-ca"), Subject(common_name="minica nginx intermediate")
    )
    intermediate = CertificateAuthority(
        issued.certificate, [issued.certificate, root.certificate], Settings(), key
    )
    leaf, leaf_key = intermediate.issue(
        intermediate.profile("server"),
        Subject(common_name="localhost"),
        key_type="ec-p256",
    )
    chain, key_path = folder / "chain-fullchain.crt", folder / "chain.key"
    chain.write_bytes(intermediate.full_chain_pem(leaf))
    key_path.write_bytes(private_key_pem(leaf_key))
    return chain, key_path


@dataclass(frozen=True)
class Nginx:
    port: int
    error_log: Path

    def log(self) -> str:
        return self.error_log.read_text()


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
    expected = x509.load_pem_x509_certificates(leaf[0].read_bytes())[0]
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


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[Leaf, Path], Nginx]]:
    """Start nginx serving a certificate and requiring a client certificate from a CA;
    every nginx started is stopped afterwards, and none may be left running."""
    binary = require_tool("nginx")
    started: list[subprocess.Popen[bytes]] = []
    configs: list[Path] = []

    def start(leaf: Leaf, client_ca: Path) -> Nginx:
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
                    dir=folder, port=port, cert=leaf[0], key=leaf[1], client_ca=client_ca
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

    yield start
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


@pytest.fixture
def curl(pki: Pki) -> Callable[..., Response]:
    """curl https://localhost:PORT/ (resolved to 127.0.0.1), trusting the root CA."""
    binary = require_tool("curl")

    def run(
        port: int, client: Leaf | None = None, *options: str, host: str = "localhost"
    ) -> Response:
        command = [
            *(binary, "-q", "-sS", "--noproxy", "*", "--max-time", "10"),
            *("--cacert", str(pki.ca_file), "--resolve", f"localhost:{port}:127.0.0.1"),
            *("-w", "\n%{http_code}"),
            *(("--cert", str(client[0]), "--key", str(client[1])) if client else ()),
            *options,
            f"https://{host}:{port}/",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        body, _, status = done.stdout.rpartition("\n")
        return Response(done.returncode, status, body, done.stderr)

    return run


def test_server_certificate_on_nginx_and_client_certificate_in_curl_make_mutual_tls(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server"], pki.ca_file)
    response = curl(server.port, pki.leaves["client"])
    assert (response.code, response.status) == (0, "200"), response
    assert response.body == "hello CN=alice\n"


def test_nginx_answers_400_to_a_server_certificate_offered_as_client_certificate(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server"], pki.ca_file)
    response = curl(server.port, pki.leaves["server"])
    assert (response.code, response.status) == (0, "400"), response
    assert "<title>400 The SSL certificate error</title>" in response.body
    # OpenSSL 3 says "unsuitable", OpenSSL 1.1 "unsupported"; both X509_V_ERR 26
    assert re.search(
        r"client SSL certificate verify error: \(26:(unsuitable|unsupported) certificate "
        r"purpose\)",
        server.log(),
    ), server.log()


def test_curl_refuses_a_client_certificate_as_nginx_server_certificate(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["client-as-server"], pki.ca_file)
    response = curl(server.port, pki.leaves["client"])
    assert (response.code, response.status) == (60, "000"), response
    assert re.search(
        r"curl: \(60\) SSL certificate problem: (unsuitable|unsupported) certificate purpose",
        response.stderr,
    ), response.stderr


def test_server_client_certificate_serves_nginx_and_authenticates_curl(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server-client"], pki.ca_file)
    response = curl(server.port, pki.leaves["server-client"])
    assert (response.code, response.status) == (0, "200"), response
    assert response.body == "hello CN=localhost\n"


def test_nginx_answers_400_to_a_client_certificate_from_another_ca(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server"], pki.ca_file)
    response = curl(server.port, pki.leaves["stranger"])
    assert (response.code, response.status) == (0, "400"), response
    assert "<title>400 The SSL certificate error</title>" in response.body
    assert (
        "client SSL certificate verify error: (21:unable to verify the first certificate)"
        in server.log()
    ), server.log()


def test_nginx_answers_400_without_a_client_certificate(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server"], pki.ca_file)
    response = curl(server.port)
    assert (response.code, response.status) == (0, "400"), response
    assert "<title>400 No required SSL certificate was sent</title>" in response.body
    assert "client sent no required SSL certificate" in server.log(), server.log()


def test_rsa_2048_server_key_works_for_tls12_rsa_key_exchange(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    certificate, _ = pki.leaves["server-rsa"]
    usage = x509.load_pem_x509_certificate(certificate.read_bytes()).extensions
    assert usage.get_extension_for_class(x509.KeyUsage).value.key_encipherment
    server = nginx(pki.leaves["server-rsa"], pki.ca_file)
    # the only cipher offered encrypts the premaster secret to the server's RSA key
    response = curl(
        server.port, pki.leaves["client"], "--tls-max", "1.2", "--ciphers", "AES128-GCM-SHA256"
    )
    assert (response.code, response.status) == (0, "200"), response


def test_server_certificate_ip_name_matches_an_ip_address_url(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["server"], pki.ca_file)
    response = curl(server.port, pki.leaves["client"], host="127.0.0.1")
    assert (response.code, response.status) == (0, "200"), response


def test_full_chain_from_an_intermediate_is_trusted_through_the_root(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], curl: Callable[..., Response]
) -> None:
    server = nginx(pki.leaves["chain"], pki.ca_file)
    response = curl(server.port, pki.leaves["client"])
    assert (response.code, response.status) == (0, "200"), response


def test_nginx_configuration_error_fails_the_test_with_nginx_message(
    pki: Pki, nginx: Callable[[Leaf, Path], Nginx], tmp_path: Path
) -> None:
    certificate, _ = pki.leaves["server"]
    with pytest.raises(pytest.fail.Exception, match=r"(?s)nginx -t .*cannot load certificate key"):
        nginx((certificate, tmp_path / "missing.key"), pki.ca_file)
