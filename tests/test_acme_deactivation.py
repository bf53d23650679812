"""Authorization deactivation (RFC 8555 §7.5.2) through certbot's ``acme`` client against
`minica serve`: a pending or valid authorization becomes deactivated, its order invalid;
a second deactivation, or any other status asked for, is refused as malformed. (lego
shows the effect on reuse: tests/test_acme_lego.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from acme import crypto_util, messages
from acme.client import ClientNetwork, ClientV2
from acme_serve import AcmeService, acme_service
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from josepy.jwa import ES256
from josepy.jwk import JWKEC

pytestmark = pytest.mark.tools

MALFORMED = "urn:ietf:params:acme:error:malformed"


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeService]:
    with acme_service(tmp_path_factory.mktemp("acme")) as service:
        yield service


def account(acme: AcmeService) -> ClientV2:
    """certbot's client with a new account, trusting only the root."""
    key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    # verify_ssl goes to requests as `verify`, which takes a CA file as well as a bool.
    network = ClientNetwork(key, alg=ES256, verify_ssl=str(acme.root))  # type: ignore[arg-type]
    # No keep-alive: minica serve would wait for an idle connection when it stops.
    network.session.headers["Connection"] = "close"
    client = ClientV2(ClientV2.get_directory(acme.directory, network), network)
    client.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return client


def order(client: ClientV2, name: str) -> messages.OrderResource:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return client.new_order(crypto_util.make_csr(pem, [name]))


def refusal(call: object) -> messages.Error:
    assert callable(call)
    with pytest.raises(messages.Error) as refused:
        call()
    return refused.value


def test_a_pending_authorization_is_deactivated_and_its_order_invalid(acme: AcmeService) -> None:
    client = account(acme)
    made = order(client, "pending.lab.test")
    [authorization] = made.authorizations
    assert authorization.body.status == messages.STATUS_PENDING
    deactivated = client.deactivate_authorization(authorization)
    assert deactivated.body.status == messages.STATUS_DEACTIVATED
    assert client.poll(authorization)[0].body.status == messages.STATUS_DEACTIVATED
    # The acme client reads an order only while finalizing: a POST-as-GET of its own.
    order_now = messages.Order.from_json(client._post_as_get(made.uri).json())
    assert order_now.status == messages.STATUS_INVALID

    again = refusal(lambda: client.deactivate_authorization(authorization))
    assert again.typ == MALFORMED
    assert "is deactivated: only a pending or valid one can be deactivated" in str(again)


def test_only_deactivated_may_be_asked_for(acme: AcmeService) -> None:
    client = account(acme)
    [authorization] = order(client, "asks.lab.test").authorizations
    asked = messages.UpdateAuthorization(status=messages.STATUS_VALID)
    refused = refusal(lambda: client._post(authorization.uri, asked))
    assert refused.typ == MALFORMED
    assert "can only become deactivated, not 'valid'" in str(refused)
    assert client.poll(authorization)[0].body.status == messages.STATUS_PENDING


def test_another_account_cannot_deactivate(acme: AcmeService) -> None:
    owner, other = account(acme), account(acme)
    [authorization] = order(owner, "owned.lab.test").authorizations
    refused = refusal(lambda: other.deactivate_authorization(authorization))
    assert refused.typ == "urn:ietf:params:acme:error:unauthorized"
    assert owner.poll(authorization)[0].body.status == messages.STATUS_PENDING
