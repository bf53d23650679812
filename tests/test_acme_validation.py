"""The ACME challenge validator against real servers on 127.0.0.1 (and ::1 where the
machine has it), each started by its test on a free port: a threaded http.server for
http-01, a Python ssl server presenting certificates built here for tls-alpn-01, and
pebble-challtestsrv (tests/acme_lab.py) as the DNS for dns-01 and for names. Every
failure must be a Problem of the RFC's type whose detail says what happened.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from acme_lab import ChallTestSrv, challtestsrv
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from servers import free_port

from minica import errors
from minica.acme.model import Identifier
from minica.acme.problems import Problem
from minica.acme.validation import Validator, dns01_value

TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"  # RFC 8555 §8.3's example token
KEY_AUTHORIZATION = TOKEN + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
PATH = f"/.well-known/acme-challenge/{TOKEN}"
SHORT = 0.5  # seconds: the timeout of tests that wait on a server that never answers
LOCAL = Identifier("ip", "127.0.0.1")


def problem_of(validator: Validator, challenge: str, identifier: Identifier) -> Problem:
    """The Problem ``validate`` raises (the test fails if it returns)."""
    with pytest.raises(Problem) as raised:
        validator.validate(challenge, identifier, TOKEN, KEY_AUTHORIZATION)
    return raised.value


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not has_ipv6(), reason="this machine has no ::1")


# http-01: a web site whose routes each test sets.


@dataclass(frozen=True)
class Route:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Site:
    port: int
    routes: dict[str, Route]
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Host)


class SiteServer(ThreadingHTTPServer):
    """An http.server serving a Site; with ``tls``, a connection that starts with a TLS
    record is served over TLS, so one port answers both http and https (a redirect from
    http to https on the same port stays on a port the validator follows)."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, object]:
        connection, address = super().get_request()
        if self.tls is not None and connection.recv(1, socket.MSG_PEEK) == b"\x16":
            connection = self.tls.wrap_socket(connection, server_side=True)
        return connection, address


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, self.headers.get("Host")))
            route = site.routes.get(self.path, Route(404, b"not found"))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def web_site(
    routes: dict[str, Route], host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
) -> Iterator[Site]:
    """A site on a free port of ``host`` serving ``routes`` (404 elsewhere)."""
    site = Site(0, routes)
    server_class = type(
        "Server",
        (SiteServer,),
        {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET, "tls": tls},
    )
    with server_class((host, 0), handler_for(site)) as server:
        site.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield site
        finally:
            server.shutdown()
            thread.join()


def answering(body: bytes = KEY_AUTHORIZATION.encode() + b"\n") -> dict[str, Route]:
    return {PATH: Route(200, body)}


@contextmanager
def silent_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that accepts connections (the kernel completes them) but never answers."""
    with socket.create_server((host, 0)) as listener:
        yield listener.getsockname()[1]


@contextmanager
def raw_server(reply: bytes) -> Iterator[int]:
    """A port that reads a request, writes ``reply`` (not HTTP) and closes."""
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            while True:
                try:
                    connection, _ = listener.accept()
                except OSError:  # the listener is closed: the test is over
                    return
                with connection:
                    connection.recv(4096)
                    connection.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield listener.getsockname()[1]
        listener.shutdown(socket.SHUT_RDWR)
    thread.join()


def test_http01_answered_on_an_ip_address() -> None:
    with web_site(answering()) as site:
        Validator(http_port=site.port).validate("http-01", LOCAL, TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [(PATH, f"127.0.0.1:{site.port}")]


@needs_ipv6
def test_http01_answered_on_ipv6() -> None:
    with web_site(answering(), host="::1") as site:
        validator = Validator(http_port=site.port)
        validator.validate("http-01", Identifier("ip", "::1"), TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [(PATH, f"[::1]:{site.port}")]


def test_http01_localhost_through_the_system_resolver() -> None:
    # /etc/hosts names localhost; if it says ::1 too, nothing listens there: the next one
    with web_site(answering(KEY_AUTHORIZATION.encode() + b" \r\n\t")) as site:
        validator = Validator(http_port=site.port)
        validator.validate("http-01", Identifier("dns", "localhost"), TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [(PATH, f"localhost:{site.port}")]


def test_http01_wrong_body() -> None:
    with web_site(answering(b"wrong\n")) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert problem.type == "incorrectResponse"
    assert str(problem) == (
        f'the http-01 response from 127.0.0.1:{site.port} for 127.0.0.1 was "wrong", '
        f'not the key authorization "{KEY_AUTHORIZATION}" '
        f"(GET http://127.0.0.1:{site.port}{PATH})"
    )


def test_http01_hostile_body_is_escaped_and_shortened() -> None:
    with web_site(answering(b"\x1b[2J\xff" + b"A" * 3000)) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    detail = str(problem)
    assert problem.type == "incorrectResponse"
    assert '"\\x1b[2J\ufffdAAA' in detail and '..." (shortened)' in detail
    assert "\x1b" not in detail and len(detail) < 400


def test_http01_not_found() -> None:
    with web_site({}) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert problem.type == "incorrectResponse"
    assert str(problem) == (
        f"the http-01 response from 127.0.0.1:{site.port} for 127.0.0.1 was 404 "
        f"(GET http://127.0.0.1:{site.port}{PATH})"
    )


def test_http01_body_too_long() -> None:
    with web_site(answering(KEY_AUTHORIZATION.encode() + b" " * 5000)) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert problem.type == "incorrectResponse"
    assert "was longer than 4096 bytes, not the key authorization" in str(problem)


def test_http01_follows_redirects_on_its_port() -> None:
    routes = {
        PATH: Route(302, headers={"Location": "step?x=1"}),  # relative to the path
        "/final": Route(200, KEY_AUTHORIZATION.encode()),
    }
    with web_site(routes) as site:
        final = f"http://127.0.0.1:{site.port}/final"
        routes["/.well-known/acme-challenge/step?x=1"] = Route(308, headers={"Location": final})
        Validator(http_port=site.port).validate("http-01", LOCAL, TOKEN, KEY_AUTHORIZATION)
    paths = [path for path, _ in site.requests]
    assert paths == [PATH, "/.well-known/acme-challenge/step?x=1", "/final"]


def test_http01_follows_a_redirect_to_https(tmp_path: Path) -> None:
    cert, key = write_pair(
        tmp_path, certificate([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    )
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    routes: dict[str, Route] = {"/secure": Route(200, KEY_AUTHORIZATION.encode())}
    with web_site(routes, tls=tls) as site:
        routes[PATH] = Route(301, headers={"Location": f"https://127.0.0.1:{site.port}/secure"})
        Validator(http_port=site.port).validate("http-01", LOCAL, TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [
        (PATH, f"127.0.0.1:{site.port}"),
        ("/secure", f"127.0.0.1:{site.port}"),
    ]


@pytest.mark.parametrize(
    ("location", "refusal"),
    [
        ("http://127.0.0.1:9/elsewhere", "only ports 80, 443, {port} are followed"),
        ("ftp://127.0.0.1/file", "only http and https are followed"),
        ("http://exa mple.test/", "no usable host"),
        ("http://127.0.0.1:99999/", "not a URL"),
    ],
    ids=["port", "scheme", "host", "bad-port"],
)
def test_http01_redirects_not_followed(location: str, refusal: str) -> None:
    with web_site({PATH: Route(302, headers={"Location": location})}) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert problem.type == "incorrectResponse"
    expected = f'for 127.0.0.1 redirects to "{location}": {refusal.format(port=site.port)}'
    if refusal == "not a URL":
        expected = f'redirects to "{location}", not a URL'
    assert expected in str(problem), str(problem)


def test_http01_redirect_without_location() -> None:
    with web_site({PATH: Route(307)}) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "incorrectResponse",
        f"the http-01 response from 127.0.0.1:{site.port} for 127.0.0.1 was 307 with no Location",
    )


def test_http01_redirect_loop() -> None:
    with web_site({PATH: Route(302, headers={"Location": PATH})}) as site:
        problem = problem_of(Validator(http_port=site.port), "http-01", LOCAL)
    assert problem.type == "incorrectResponse"
    assert "was redirected more than 10 times" in str(problem)
    assert len(site.requests) == 11


def test_http01_connection_refused() -> None:
    port = free_port()  # nothing listens there any more
    problem = problem_of(Validator(http_port=port), "http-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "connection",
        f"cannot reach 127.0.0.1:{port} for the http-01 challenge of 127.0.0.1: "
        f"127.0.0.1:{port} refused the connection",
    )


def test_http01_server_that_never_answers() -> None:
    with silent_port() as port:
        problem = problem_of(Validator(http_port=port, timeout=SHORT), "http-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "connection",
        f"127.0.0.1:{port} (http://127.0.0.1:{port}{PATH}) did not answer within 0.5s "
        "to the http-01 request",
    )


@pytest.mark.parametrize(
    ("reply", "said"),
    [
        (b"", "closed the connection without answering the http-01 request"),
        (b"HELLO \x1b\r\n\r\n", "did not answer the http-01 request in HTTP: "),
    ],
    ids=["closed", "not-http"],
)
def test_http01_server_that_does_not_speak_http(reply: bytes, said: str) -> None:
    with raw_server(reply) as port:
        problem = problem_of(Validator(http_port=port), "http-01", LOCAL)
    assert problem.type == "connection"
    assert said in str(problem) and "\x1b" not in str(problem), str(problem)


# tls-alpn-01: a Python ssl server presenting a certificate built here.

ACME_IDENTIFIER = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31")
DIGEST = hashlib.sha256(KEY_AUTHORIZATION.encode()).digest()


def certificate(
    names: Sequence[x509.GeneralName],
    acme_value: bytes | None = b"\x04\x20" + DIGEST,
    critical: bool = True,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed certificate for ``names`` with an acmeIdentifier extension holding
    ``acme_value`` (None: without one), as a tls-alpn-01 responder makes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "acme-tls/1 test")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if acme_value is not None:
        extension = x509.UnrecognizedExtension(ACME_IDENTIFIER, acme_value)
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256()), key


def write_pair(
    folder: Path, pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]
) -> tuple[Path, Path]:
    cert, key = folder / "challenge.crt", folder / "challenge.key"
    cert.write_bytes(pair[0].public_bytes(Encoding.PEM))
    key.write_bytes(pair[1].private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return cert, key


@dataclass
class TlsServer:
    port: int
    server_names: list[str | None] = field(default_factory=list)  # the SNI of each handshake


@contextmanager
def tls_server(
    folder: Path,
    pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    alpn: Sequence[str] = ("acme-tls/1",),
    host: str = "127.0.0.1",
) -> Iterator[TlsServer]:
    """A TLS server on a free port of ``host`` presenting ``pair``, offering ``alpn``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*write_pair(folder, pair))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.create_server((host, 0), family=family) as listener:
        server = TlsServer(listener.getsockname()[1])
        context.sni_callback = lambda _socket, name, _context: server.server_names.append(name)
        thread = threading.Thread(target=serve_tls, args=(listener, context), daemon=True)
        thread.start()
        yield server
        listener.shutdown(socket.SHUT_RDWR)
    thread.join()


def serve_tls(listener: socket.socket, context: ssl.SSLContext) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:  # the listener is closed: the test is over
            return
        try:
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.recv(1)  # until the client closes
        except OSError:
            connection.close()


def dns_name(name: str) -> x509.DNSName:
    return x509.DNSName(name)


def ip_name(address: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(address))


def test_tls_alpn01_dns_name(tmp_path: Path) -> None:
    localhost = Identifier("dns", "localhost")
    with tls_server(tmp_path, certificate([dns_name("LocalHost")])) as server:
        Validator(tls_alpn_port=server.port).validate(
            "tls-alpn-01", localhost, TOKEN, KEY_AUTHORIZATION
        )
    assert server.server_names == ["localhost"]


@pytest.mark.parametrize(
    ("address", "sni"),
    [
        ("127.0.0.1", "1.0.0.127.in-addr.arpa"),
        ("::1", "1." + "0." * 31 + "ip6.arpa"),
    ],
    ids=["ipv4", "ipv6"],
)
def test_tls_alpn01_ip_address_sends_the_reverse_name(
    tmp_path: Path, address: str, sni: str
) -> None:
    if ":" in address and not has_ipv6():
        pytest.skip("this machine has no ::1")
    with tls_server(tmp_path, certificate([ip_name(address)]), host=address) as server:
        Validator(tls_alpn_port=server.port).validate(
            "tls-alpn-01", Identifier("ip", address), TOKEN, KEY_AUTHORIZATION
        )
    assert server.server_names == [sni]


@pytest.mark.parametrize(
    ("pair", "detail"),
    [
        (
            lambda: certificate([ip_name("127.0.0.1")], b"\x04\x20" + bytes(32)),
            f"carries the digest {bytes(32).hex()}, not {DIGEST.hex()} "
            "(the SHA-256 of the key authorization)",
        ),
        (
            lambda: certificate([ip_name("127.0.0.1")], DIGEST),
            f"carries the digest 32 bytes that are not an OCTET STRING of 32, not {DIGEST.hex()}",
        ),
        (
            lambda: certificate([ip_name("127.0.0.1")], critical=False),
            "has an acmeIdentifier extension not critical",
        ),
        (
            lambda: certificate([ip_name("127.0.0.1")], None),
            "has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)",
        ),
        (
            lambda: certificate([ip_name("127.0.0.1"), dns_name("other.test")]),
            "names IP:127.0.0.1, DNS:other.test; it must name IP:127.0.0.1 alone",
        ),
        (
            lambda: certificate([dns_name("127.0.0.1")]),
            "names DNS:127.0.0.1; it must name IP:127.0.0.1 alone",
        ),
        (lambda: certificate([]), "has no subjectAltName"),
    ],
    ids=[
        "wrong-digest",
        "digest-not-der",
        "not-critical",
        "no-extension",
        "two-names",
        "dns-for-ip",
        "no-san",
    ],
)
def test_tls_alpn01_wrong_certificate(
    tmp_path: Path,
    pair: Callable[[], tuple[x509.Certificate, ec.EllipticCurvePrivateKey]],
    detail: str,
) -> None:
    with tls_server(tmp_path, pair()) as server:
        problem = problem_of(Validator(tls_alpn_port=server.port), "tls-alpn-01", LOCAL)
    assert problem.type == "incorrectResponse"
    origin = f"the tls-alpn-01 certificate from 127.0.0.1:{server.port} for 127.0.0.1"
    assert str(problem).startswith(origin) and detail in str(problem), str(problem)


@pytest.mark.parametrize("alpn", [(), ("h2", "http/1.1")], ids=["no-alpn", "other-alpn"])
def test_tls_alpn01_without_acme_tls_1(tmp_path: Path, alpn: tuple[str, ...]) -> None:
    with tls_server(tmp_path, certificate([ip_name("127.0.0.1")]), alpn=alpn) as server:
        problem = problem_of(Validator(tls_alpn_port=server.port), "tls-alpn-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "tls",
        f"127.0.0.1:{server.port} did not negotiate acme-tls/1 for 127.0.0.1 "
        "(it chose no protocol)",
    )


def test_tls_alpn01_server_that_does_not_speak_tls() -> None:
    with web_site({}) as site:
        problem = problem_of(Validator(tls_alpn_port=site.port), "tls-alpn-01", LOCAL)
    assert problem.type == "tls"
    assert str(problem).startswith(
        f"the TLS handshake with 127.0.0.1:{site.port} for 127.0.0.1 failed: "
    )


def test_tls_alpn01_connection_refused_and_silence() -> None:
    port = free_port()
    problem = problem_of(Validator(tls_alpn_port=port), "tls-alpn-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "connection",
        f"cannot reach 127.0.0.1 for tls-alpn-01: 127.0.0.1:{port} refused the connection",
    )
    with silent_port() as port:
        validator = Validator(tls_alpn_port=port, timeout=SHORT)
        problem = problem_of(validator, "tls-alpn-01", LOCAL)
    assert (problem.type, str(problem)) == (
        "connection",
        f"127.0.0.1:{port} for 127.0.0.1 did not answer within 0.5s in the TLS handshake",
    )


# DNS: a resolver that never answers needs no tools; the rest is pebble-challtestsrv.


@contextmanager
def deaf_resolver() -> Iterator[tuple[str, int]]:
    """A UDP port that takes queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as deaf:
        deaf.bind(("127.0.0.1", 0))
        yield "127.0.0.1", deaf.getsockname()[1]


def test_resolver_that_never_answers() -> None:
    with deaf_resolver() as resolver:
        validator = Validator(resolver=resolver, timeout=SHORT)
        txt = problem_of(validator, "dns-01", Identifier("dns", "lab.test"))
        address = problem_of(validator, "http-01", Identifier("dns", "www.lab.test"))
    deaf = f"resolver 127.0.0.1:{resolver[1]} did not answer within 0.5s"
    assert (txt.type, str(txt)) == ("dns", f"no answer for TXT at _acme-challenge.lab.test: {deaf}")
    assert (address.type, str(address)) == (
        "dns",
        f"no address for www.lab.test: AAAA: {deaf}; A: {deaf}",
    )


@pytest.fixture
def lab() -> Iterator[ChallTestSrv]:
    with challtestsrv() as running:
        yield running


@pytest.mark.tools
@pytest.mark.parametrize("name", ["lab.test", "*.lab.test"])
def test_dns01_right_record(lab: ChallTestSrv, name: str) -> None:
    lab.set_txt("_acme-challenge.lab.test", "stale")
    lab.set_txt("_acme-challenge.lab.test", dns01_value(KEY_AUTHORIZATION))
    Validator(resolver=lab.dns).validate(
        "dns-01", Identifier("dns", name), TOKEN, KEY_AUTHORIZATION
    )


def test_dns01_value_is_unpadded_base64url_sha256() -> None:
    # RFC 8555 §8.4: base64url(SHA-256(key authorization)), 43 characters, no "="
    value = dns01_value(KEY_AUTHORIZATION)
    assert len(value) == 43 and "=" not in value and "+" not in value and "/" not in value


@pytest.mark.tools
def test_dns01_wrong_records(lab: ChallTestSrv) -> None:
    for value in ("one", "two\x1b", "three", "four"):
        lab.set_txt("_acme-challenge.lab.test", value)
    problem = problem_of(Validator(resolver=lab.dns), "dns-01", Identifier("dns", "lab.test"))
    assert (problem.type, str(problem)) == (
        "incorrectResponse",
        f"the TXT records at _acme-challenge.lab.test (resolver 127.0.0.1:{lab.dns[1]}) are "
        f'"one", "two\\x1b", "three" and 1 more, not "{dns01_value(KEY_AUTHORIZATION)}" '
        "(the base64url SHA-256 of the key authorization)",
    )


@pytest.mark.tools
def test_dns01_no_record(lab: ChallTestSrv) -> None:
    problem = problem_of(Validator(resolver=lab.dns), "dns-01", Identifier("dns", "*.lab.test"))
    assert (problem.type, str(problem)) == (
        "dns",
        f"no TXT record at _acme-challenge.lab.test (resolver 127.0.0.1:{lab.dns[1]})",
    )


@pytest.mark.tools
def test_dns01_servfail(lab: ChallTestSrv) -> None:
    lab.set_servfail("_acme-challenge.lab.test")
    problem = problem_of(Validator(resolver=lab.dns), "dns-01", Identifier("dns", "lab.test"))
    assert (problem.type, str(problem)) == (
        "dns",
        f"no answer for TXT at _acme-challenge.lab.test: resolver 127.0.0.1:{lab.dns[1]} "
        "answered SERVFAIL",
    )


@pytest.mark.tools
def test_http01_name_from_the_resolver(lab: ChallTestSrv) -> None:
    lab.add_a("www.lab.test", ["127.0.0.1"])
    with web_site(answering()) as site:
        validator = Validator(http_port=site.port, resolver=lab.dns)
        validator.validate("http-01", Identifier("dns", "www.lab.test"), TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [(PATH, f"www.lab.test:{site.port}")]


@pytest.mark.tools
def test_http01_redirect_to_another_name(lab: ChallTestSrv) -> None:
    lab.add_a("other.lab.test", ["127.0.0.1"])
    routes = {"/final": Route(200, KEY_AUTHORIZATION.encode())}
    with web_site(routes) as site:
        routes[PATH] = Route(302, headers={"Location": f"http://other.lab.test:{site.port}/final"})
        validator = Validator(http_port=site.port, resolver=lab.dns)
        validator.validate("http-01", Identifier("dns", "www.lab.test"), TOKEN, KEY_AUTHORIZATION)
    assert site.requests == [
        (PATH, f"www.lab.test:{site.port}"),
        ("/final", f"other.lab.test:{site.port}"),
    ]


@pytest.mark.tools
@needs_ipv6
@pytest.mark.parametrize("listening", ["127.0.0.1", "::1"])
def test_http01_tries_ipv6_then_ipv4(lab: ChallTestSrv, listening: str) -> None:
    lab.add_a("www.lab.test", ["127.0.0.1"])
    lab.add_aaaa("www.lab.test", ["::1"])
    with web_site(answering(), host=listening) as site:
        validator = Validator(http_port=site.port, resolver=lab.dns)
        validator.validate("http-01", Identifier("dns", "www.lab.test"), TOKEN, KEY_AUTHORIZATION)
    assert len(site.requests) == 1


@pytest.mark.tools
def test_http01_name_without_address(lab: ChallTestSrv) -> None:
    lab.set_default_ipv4(None)
    problem = problem_of(Validator(resolver=lab.dns), "http-01", Identifier("dns", "www.lab.test"))
    assert (problem.type, str(problem)) == (
        "dns",
        f"no A or AAAA record for www.lab.test (resolver 127.0.0.1:{lab.dns[1]})",
    )


@pytest.mark.tools
def test_tls_alpn01_name_from_the_resolver(lab: ChallTestSrv, tmp_path: Path) -> None:
    lab.add_a("www.lab.test", ["127.0.0.1"])
    with tls_server(tmp_path, certificate([dns_name("www.lab.test")])) as server:
        validator = Validator(tls_alpn_port=server.port, resolver=lab.dns)
        www = Identifier("dns", "www.lab.test")
        validator.validate("tls-alpn-01", www, TOKEN, KEY_AUTHORIZATION)
    assert server.server_names == ["www.lab.test"]


# What no challenge can check, and a validator that cannot work.


@pytest.mark.parametrize(
    ("challenge", "identifier", "kind", "detail"),
    [
        ("http-02", LOCAL, "malformed", 'unknown challenge type "http-02"'),
        (
            "http-01",
            Identifier("email", "a@b"),
            "unsupportedIdentifier",
            'unknown identifier type "email"',
        ),
        (
            "http-01",
            Identifier("ip", "10.0.0.256"),
            "malformed",
            '"10.0.0.256" is not an IP address',
        ),
        ("dns-01", LOCAL, "malformed", "dns-01 cannot validate an ip identifier"),
        (
            "http-01",
            Identifier("dns", "*.lab.test"),
            "malformed",
            "http-01 cannot validate the wildcard *.lab.test",
        ),
        (
            "tls-alpn-01",
            Identifier("dns", "*.lab.test"),
            "malformed",
            "tls-alpn-01 cannot validate the wildcard *.lab.test",
        ),
        ("http-01", Identifier("dns", ""), "malformed", '"" is not a DNS name'),
        (
            "http-01",
            Identifier("dns", "a.test\r\nX: y"),
            "malformed",
            '"a.test\\x0d\\x0aX: y" is not a DNS name',
        ),
        ("dns-01", Identifier("dns", "a.*.test"), "malformed", '"a.*.test" is not a DNS name'),
    ],
)
def test_pairs_no_challenge_checks(
    challenge: str, identifier: Identifier, kind: str, detail: str
) -> None:
    problem = problem_of(Validator(), challenge, identifier)
    assert (problem.type, str(problem)) == (kind, detail)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"http_port": 0}, "the http-01 port must be from 1 to 65535, not 0"),
        ({"tls_alpn_port": 65536}, "the tls-alpn-01 port must be from 1 to 65535, not 65536"),
        ({"timeout": 0}, "the validation timeout must be positive, not 0"),
        (
            {"resolver": ("dns.lab.test", 53)},
            "the DNS resolver must be an IP address, not 'dns.lab.test'",
        ),
        ({"resolver": ("127.0.0.1", 0)}, "the DNS resolver port must be from 1 to 65535, not 0"),
    ],
)
def test_validator_settings_out_of_range(settings: dict[str, object], message: str) -> None:
    with pytest.raises(errors.InputError) as raised:
        Validator(**settings)  # type: ignore[arg-type]
    assert str(raised.value) == message
