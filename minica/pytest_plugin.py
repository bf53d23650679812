"""The pytest plugin (entry point ``pytest11``): a session CA, a certificate factory, the
CA online, and an ACME server for a test's ACME client.

    def test_mutual_tls(minica_ca, minica_certificate):
        server = minica_ca.server_context(minica_certificate("localhost"))
        client = minica_ca.client_context(minica_certificate("alice", profile="client"))

    @pytest.mark.minica_acme(validate=False)
    def test_my_acme_client(minica_acme):
        my_client.obtain(minica_acme.directory, trust=minica_acme.ca_file)

Uses only minica's public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from minica import Credential, FixtureCA
    from minica.serve import AcmeEndpoints, Endpoints

ACME_MARKER = "minica_acme"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ACME_MARKER}(validate=True, profiles=('server',), eab_required=False, "
        "dns_resolver=None, hostnames=()): options of the minica_acme fixture's ACME server",
    )


@pytest.fixture(scope="session")
def minica_ca() -> FixtureCA:
    """One in-memory CA for the whole test session: no disk."""
    from minica import FixtureCA

    return FixtureCA()


@pytest.fixture
def minica_certificate(minica_ca: FixtureCA) -> Callable[..., Credential]:
    """``minica_certificate(*names, profile="server", key_type=..., days=..., ...)``:
    a new certificate and key from the session CA (see FixtureCA.certify)."""

    def make(*names: str, **options: Any) -> Credential:
        return minica_ca.certify(*names, **options)

    return make


@pytest.fixture
def minica_service(minica_ca: FixtureCA) -> Iterator[Endpoints]:
    """The session CA online for one test (``FixtureCA.serve``): its ``ocsp_url``,
    ``crl_url``, ``http_url`` and ``https_url``; certificates made meanwhile point at it.
    Needs the serve extra (`pip install 'minica-pki[serve]'`)."""
    with minica_ca.serve() as endpoints:
        yield endpoints


@pytest.fixture
def minica_acme(request: pytest.FixtureRequest, minica_ca: FixtureCA) -> Iterator[AcmeEndpoints]:
    """An ACME server of the session CA for one test, on 127.0.0.1 (``FixtureCA.acme``): its
    ``directory``, the root as ``ca_file``, and ``http_01_port``/``tls_alpn_01_port`` where
    it validates challenges. Options through ``@pytest.mark.minica_acme(validate=False, …)``.
    Needs the serve extra."""
    marker = request.node.get_closest_marker(ACME_MARKER)
    with minica_ca.acme(**(marker.kwargs if marker else {})) as acme:
        yield acme
