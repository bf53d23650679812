"""A real nginx and curl judge minica's TLS profiles: mutual TLS works with each profile on
its own side and is refused, with the reason in nginx's error log or in curl's message,
with the wrong one.

The nginx and curl harness lives in servers.py (shared with test_lab_pki.py); its
docstring says how nginx is run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Leaf, Pki, require_tool, write_ca_certificate, write_certificate
from cryptography import x509
from servers import (
    Nginx,
    Response,
    StartNginx,
    assert_refused_by_nginx,
    nginx_launcher,
    run_curl,
)

from minica import CertificateAuthority, Subject
from minica.keys import private_key_pem
from minica.settings import Settings

pytestmark = pytest.mark.tools


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One root CA (plus an intermediate and an unrelated CA) and every leaf, EC P-256
    unless named otherwise, made once through the API."""
    folder = tmp_path_factory.mktemp("pki")
    root = CertificateAuthority.in_memory(subject=Subject(common_name="minica nginx root"))
    stranger = CertificateAuthority.in_memory(subject=Subject(common_name="stranger root"))
    dns, ip = ["localhost"], ["127.0.0.1"]
    leaves = {
        "server": write_certificate(root, "server", folder, "server", "localhost", dns=dns, ip=ip),
        "server-rsa": write_certificate(
            root, "server", folder, "server-rsa", "localhost", "rsa-2048", dns=dns, ip=ip
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
    written = Leaf(folder / "chain-fullchain.crt", folder / "chain.key")
    written.cert.write_bytes(intermediate.full_chain_pem(leaf))
    written.key.write_bytes(private_key_pem(leaf_key))
    return written


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[StartNginx]:
    """Start nginx serving a certificate and requiring a client certificate from a CA;
    every nginx started is stopped afterwards, and none may be left running."""
    with nginx_launcher(tmp_path) as start:
        yield start


@pytest.fixture
def curl(pki: Pki) -> Callable[..., Response]:
    """curl https://localhost:PORT/ (resolved to 127.0.0.1), trusting the root CA."""
    require_tool("curl")

    def run(
        port: int, client: Leaf | None = None, *options: str, host: str = "localhost"
    ) -> Response:
        return run_curl(pki.ca_file, port, client, *options, host=host)

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
    # OpenSSL 3 says "unsuitable", OpenSSL 1.1 "unsupported"; both X509_V_ERR 26
    assert_refused_by_nginx(
        response, server, r"\(26:(unsuitable|unsupported) certificate purpose\)"
    )


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
    assert_refused_by_nginx(response, server, r"\(21:unable to verify the first certificate\)")


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
        nginx(Leaf(certificate, tmp_path / "missing.key"), pki.ca_file)
