"""The pytest plugin as a user meets it: `minica_ca` and `minica_certificate` in a test with
no imports from minica, found through the `pytest11` entry point in a fresh pytest run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tls import handshake

from minica import Credential, FixtureCA

pytest_plugins = ["pytester"]

# Inner runs: no cache folder, no hypothesis (a second to import), and the file's own order.
INNER = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:randomly")


def test_mutual_tls_with_the_plugin_fixtures(
    minica_ca: FixtureCA, minica_certificate: Callable[..., Credential]
) -> None:
    server = minica_ca.server_context(minica_certificate("localhost"))
    client = minica_ca.client_context(minica_certificate("alice", profile="client"))
    outcome = handshake(server, client)
    assert outcome.succeeded, outcome
    assert (outcome.client_peer, outcome.server_peer) == ("localhost", "alice")


# A user's test file, run by a fresh pytest that finds the plugin only through its entry point.
USER_TESTS = """
import socket
import ssl
import threading

CAS = []


def test_mutual_tls(minica_ca, minica_certificate):
    server = minica_ca.server_context(minica_certificate("localhost"))
    client = minica_ca.client_context(minica_certificate("alice", profile="client"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)

        def serve():
            connection, _ = listener.accept()
            with server.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"hello " + tls.recv(64))

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            with client.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"alice")
                assert tls.recv(64) == b"hello alice"
        thread.join(5)
    CAS.append(minica_ca)


def test_expired_certificate_is_refused(minica_ca):
    server = minica_ca.server_context(minica_ca.expired("localhost"), client_certificates=False)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)

        def serve():
            connection, _ = listener.accept()
            try:
                server.wrap_socket(connection, server_side=True).close()
            except ssl.SSLError:
                pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with socket.create_connection(listener.getsockname(), timeout=5) as raw:
            try:
                minica_ca.client_context().wrap_socket(raw, server_hostname="localhost")
            except ssl.SSLCertVerificationError as error:
                assert error.verify_message == "certificate has expired"
            else:
                raise AssertionError("an expired certificate was accepted")
        thread.join(5)
    CAS.append(minica_ca)


def test_minica_ca_is_one_object_for_the_session(minica_ca):
    assert len(CAS) == 2
    assert CAS[0] is CAS[1] is minica_ca
    assert minica_ca.authority.folder is None
"""


@pytest.fixture
def user_tests(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makepyfile(test_user=USER_TESTS)
    return pytester


def test_fresh_pytest_finds_the_plugin_fixtures_and_the_example_passes(
    user_tests: pytest.Pytester,
) -> None:
    result = user_tests.runpytest_subprocess(*INNER)
    result.stdout.fnmatch_lines(["plugins: *minica-pki-*"])  # loaded from the distribution
    result.assert_outcomes(passed=3)


def test_the_fixtures_come_from_the_minica_entry_point(user_tests: pytest.Pytester) -> None:
    result = user_tests.runpytest_inprocess("-p", "no:minica", *INNER)
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*fixture 'minica_ca' not found*"])


def test_fixtures_list_shows_session_ca_and_certificate_factory(
    user_tests: pytest.Pytester,
) -> None:
    result = user_tests.runpytest_inprocess("--fixtures", *INNER)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from minica.pytest_plugin*",
            "minica_ca [[]session scope[]]*",
            "*One in-memory CA for the whole test session*",
            "minica_certificate*",
        ]
    )
