"""The pytest plugin (entry point ``pytest11``): a session CA and a certificate factory.

    def test_mutual_tls(minica_ca, minica_certificate):
        server = minica_ca.server_context(minica_certificate("localhost"))
        client = minica_ca.client_context(minica_certificate("alice", profile="client"))

Uses only minica's public API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from minica import Credential, FixtureCA
    from minica.serve import Endpoints


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
