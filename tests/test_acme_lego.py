"""lego (Debian's 4.9.1) against `minica serve`: certificates through http-01,
tls-alpn-01 and dns-01 (lego's exec provider setting TXT records in the lab DNS, a
wildcard among them), for EC and RSA accounts and keys, renewed; revocation that shows
in OCSP, the CRL and the registry; external account binding; name constraints refusing
an identifier at order time; the default ACME profile. Every refusal (a wildcard without
dns-01, a failed challenge, a key bound already, ...) is checked in lego's own output,
where minica's problem document must reach the user, and in the registry: nothing issued.

lego 4.9.1 orders every identifier as type `dns`, an IP address too (IP identifiers,
RFC 8738, came to lego later): minica refuses such an order, as it must.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme import messages
from acme.client import ClientNetwork, ClientV2
from acme_clients import (
    acme_rows,
    assert_server_certificate,
    eab_key,
    failed,
    http_01,
    lego,
    lego_certificate,
    lego_chain,
    registry_row,
    rows_naming,
    said,
    succeeded,
    tls_alpn_01,
    verifies_for,
)
from acme_serve import AcmeService, acme_service
from conftest import Result, require_tool, run_minica
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509 import ocsp, verification
from cryptography.x509.oid import ExtendedKeyUsageOID
from josepy.jwa import ES256
from josepy.jwk import JWKEC
from serve_lab import PROPAGATION, ask, eventually, listed_in_crl
from servers import free_port, http_request

pytestmark = pytest.mark.tools


@pytest.fixture(autouse=True, scope="module")
def _lego_installed() -> None:
    """Skip (or fail under MINICA_REQUIRE_TOOLS=1) before starting a service for nothing."""
    require_tool("lego")


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeService]:
    """One service for the tests that need no options of their own: each orders names no
    other test orders, with an account of its own (lego's --path in its tmp_path)."""
    with acme_service(tmp_path_factory.mktemp("acme")) as service:
        yield service


NAMES = ("www.lab.test", "api.lab.test")
ACME_ERROR = "urn:ietf:params:acme:error:"


def domains(*names: str) -> tuple[str, ...]:
    return tuple(option for name in names for option in ("--domains", name))


def obtained(
    acme: AcmeService, path: Path, names: tuple[str, ...], *options: str, challenge: str = ""
) -> x509.Certificate:
    """`lego run` for ``names`` with ``options``; the certificate it saved. With
    ``challenge``: lego must say it answered that challenge for every name."""
    done = lego(acme, path, *domains(*names), *options, "run")
    succeeded(done)
    for name in names if challenge else ():
        assert f"[{name}] acme: use {challenge} solver" in said(done), said(done)
    return lego_certificate(path, names[0])


def test_http_01_two_names(acme: AcmeService, tmp_path: Path) -> None:
    certificate = obtained(acme, tmp_path / "lego", NAMES, *http_01(acme), challenge="http-01")
    row = assert_server_certificate(acme, certificate, NAMES, "lego@lab.test")
    assert row["profile"] == "server"
    assert row["subject"] == "CN=www.lab.test"  # the first name, as lego's CSR has it
    for name in NAMES:
        verifies_for(acme, lego_chain(tmp_path / "lego", NAMES[0]), name)


def test_tls_alpn_01(acme: AcmeService, tmp_path: Path) -> None:
    names = ("tls.lab.test",)
    certificate = obtained(
        acme, tmp_path / "lego", names, *tls_alpn_01(acme), challenge="tls-alpn-01"
    )
    assert_server_certificate(acme, certificate, names, "lego@lab.test")


def test_a_name_given_in_capitals_is_issued_in_its_canonical_form(
    acme: AcmeService, tmp_path: Path
) -> None:
    # lego puts the name as given in its CSR's CN, and the SAN holds it lowercased: the
    # CN must be byte for byte that SAN entry (CA/Browser Forum BR 7.1.2.7.2).
    certificate = obtained(acme, tmp_path / "lego", ("WWW.Lab.Test",), *http_01(acme))
    row = assert_server_certificate(acme, certificate, ("www.lab.test",), "lego@lab.test")
    common_names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [name.value for name in common_names] == ["www.lab.test"]
    assert row["subject"] == "CN=www.lab.test"


@pytest.mark.parametrize(
    ("key_type", "key"),
    [("ec384", "ec-secp384r1"), ("rsa2048", "rsa-2048")],  # JWS: ES384, RS256
)
def test_account_and_certificate_key_types(
    acme: AcmeService, tmp_path: Path, key_type: str, key: str
) -> None:
    # lego makes its account key of --key-type too: minica must check that account's
    # signatures, and issue for a certificate key of that type.
    path, names = tmp_path / "lego", ("keys.lab.test",)
    certificate = obtained(acme, path, names, "--key-type", key_type, *http_01(acme))
    assert_server_certificate(acme, certificate, names, "lego@lab.test")
    account = next(path.glob("accounts/*/lego@lab.test/keys/lego@lab.test.key"))
    account_key = load_pem_private_key(account.read_bytes(), None).public_key()
    assert (key_name(account_key), key_name(certificate.public_key())) == (key, key)


def key_name(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ec-{key.curve.name}"
    assert isinstance(key, rsa.RSAPublicKey), key
    return f"rsa-{key.key_size}"


# dns-01: lego's exec provider runs `EXEC_PATH present|cleanup FQDN VALUE`; this script
# turns that into the lab DNS's management API calls (set-txt adds one more TXT value,
# clear-txt removes them all), as a real DNS provider's API would.
EXEC_SCRIPT = """\
#!{python}
import json, sys, urllib.request

action, fqdn, value = sys.argv[1:4]
command, body = {{
    "present": ("set-txt", {{"host": fqdn, "value": value + {spoil!r}}}),
    "cleanup": ("clear-txt", {{"host": fqdn}}),
}}[action]
request = urllib.request.Request(
    "{management}/" + command, data=json.dumps(body).encode(), method="POST"
)
urllib.request.urlopen(request, timeout=10).close()
"""


def dns_01(
    acme: AcmeService, folder: Path, spoil: str = ""
) -> tuple[tuple[str, ...], dict[str, str]]:
    """lego's options and environment to answer dns-01 through the lab DNS: the exec
    provider with a script in ``folder`` (publishing each value with ``spoil`` appended),
    and the propagation check asking the lab DNS only: challtestsrv answers no SOA or NS
    query (NOTIMP), so lego could never find the zone's authoritative servers to ask them
    (--dns.disable-cp)."""
    script = folder / "lab-dns-exec"
    management = acme.dns.management
    script.write_text(EXEC_SCRIPT.format(python=sys.executable, management=management, spoil=spoil))
    script.chmod(0o700)
    options = ("--dns", "exec", "--dns.resolvers", acme.dns_server, "--dns.disable-cp")
    # lego solves an exec provider's challenges one after another, waiting
    # EXEC_SEQUENCE_INTERVAL (60 s by default) between them, and polls its check every
    # EXEC_POLLING_INTERVAL: the lab DNS has the record at once.
    timing = {"EXEC_SEQUENCE_INTERVAL": "1", "EXEC_POLLING_INTERVAL": "1"}
    return options, {"EXEC_PATH": str(script), **timing}


def test_dns_01_wildcard_and_its_base_name(acme: AcmeService, tmp_path: Path) -> None:
    names = ("*.lab.test", "lab.test")
    options, env = dns_01(acme, tmp_path)
    done = lego(acme, tmp_path / "lego", *domains(*names), *options, "run", env=env)
    succeeded(done)
    chain = lego_chain(tmp_path / "lego", "*.lab.test")
    assert_server_certificate(acme, chain[0], names, "lego@lab.test")
    for host in ("lab.test", "any.lab.test"):
        verifies_for(acme, chain, host)
    with pytest.raises(verification.VerificationError):
        verifies_for(acme, chain, "deeper.any.lab.test")  # a wildcard is one label
    # One TXT value per authorization, set by the script at `present` and removed at
    # `cleanup`, one after the other (the lab DNS logs every change).
    log = acme.dns.output()
    assert log.count('Added DNS-01 TXT challenge for Host "_acme-challenge.lab.test."') == 2
    assert log.count('Removed DNS-01 TXT challenge for Host "_acme-challenge.lab.test."') == 2


def test_a_wildcard_gets_no_http_01(acme: AcmeService, tmp_path: Path) -> None:
    done = lego(acme, tmp_path / "lego", *domains("*.web.lab.test"), *http_01(acme), "run")
    # minica offered the wildcard's authorization dns-01 only, which lego was not
    # given: it finds no solver, and no certificate is issued.
    failed(done, "Could not find solver for: dns-01", "could not determine solvers")
    assert "use http-01 solver" not in said(done)
    assert rows_naming(acme, "*.web.lab.test") == []


def wrong_answers(
    acme: AcmeService, folder: Path
) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """lego's options and environment to fail each challenge: http-01 answered on a port
    the validator does not connect to, dns-01 publishing a TXT value one letter too long."""
    wrong_port = ("--http", "--http.port", f"127.0.0.1:{free_port()}")
    return {"http-01": (wrong_port, {}), "dns-01": dns_01(acme, folder, spoil="x")}


@pytest.mark.parametrize(
    ("challenge", "problem"),
    [
        ("http-01", "connection :: cannot reach {name}:{port} for the http-01 challenge"),
        ("dns-01", "incorrectResponse :: the TXT records at _acme-challenge.{name}"),
    ],
    ids=["http-01", "dns-01"],
)
def test_a_failed_challenge_reaches_lego(
    acme: AcmeService, tmp_path: Path, challenge: str, problem: str
) -> None:
    name = f"fail-{challenge}.lab.test"
    options, env = wrong_answers(acme, tmp_path)[challenge]
    done = lego(acme, tmp_path / "lego", *domains(name), *options, "run", env=env)
    failed(done, ACME_ERROR + problem.format(name=name, port=acme.http_01_port))
    assert rows_naming(acme, name) == []


def test_lego_4_9_orders_an_ip_address_as_a_dns_name_and_is_refused(
    acme: AcmeService, tmp_path: Path
) -> None:
    done = lego(acme, tmp_path / "lego", *domains("127.0.0.1"), *http_01(acme), "run")
    failed(done, f"{ACME_ERROR}rejectedIdentifier", "'127.0.0.1' is an IP address, not a DNS")
    assert rows_naming(acme, "127.0.0.1") == []


def revocation_shows(acme: AcmeService, certificate: x509.Certificate) -> bool:
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    answer = ask(acme.service.http_url, certificate, root)
    return answer.certificate_status == ocsp.OCSPCertStatus.REVOKED and listed_in_crl(
        acme.service.http_url, certificate.serial_number
    )


def test_revoke(acme: AcmeService, tmp_path: Path) -> None:
    path = tmp_path / "lego"
    certificate = obtained(acme, path, ("gone.lab.test",), *http_01(acme))
    assert not revocation_shows(acme, certificate)
    # --reason 4: superseded; --keep: lego leaves the files where they are.
    revoke = (*domains("gone.lab.test"), "revoke", "--reason", "4", "--keep")
    revoked = lego(acme, path, *revoke)
    succeeded(revoked)
    assert "Certificate was revoked." in said(revoked)
    assert eventually(PROPAGATION, lambda: revocation_shows(acme, certificate)) is not None
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    answer = ask(acme.service.http_url, certificate, root)
    assert answer.revocation_reason == x509.ReasonFlags.superseded
    failed(lego(acme, path, *revoke), f"{ACME_ERROR}alreadyRevoked")
    assert registry_says(acme, certificate) == [("revoked", "superseded")] * 2


def registry_says(acme: AcmeService, certificate: x509.Certificate) -> list[tuple[str, str]]:
    """(status, revocation reason) of ``certificate`` in `minica list --json`, then in
    `minica show SERIAL --json`."""
    row = registry_row(acme, certificate)
    serial = format(certificate.serial_number, "x")
    shown = run_minica("show", "--ca", acme.ca, serial, "--json", check=True)
    registry = json.loads(shown.stdout)["registry"]
    return [(r["status"], r["revocation_reason"]) for r in (row, registry)]


def test_renew(acme: AcmeService, tmp_path: Path) -> None:
    path, names = tmp_path / "lego", ("renew.lab.test",)
    first = obtained(acme, path, names, *http_01(acme))
    # --days 90: renew now, a `server` certificate lasting 90 days. Without
    # --no-random-sleep lego waits up to 8 minutes when not on a terminal.
    renew = ("renew", "--days", "90", "--no-random-sleep", "--reuse-key")
    succeeded(lego(acme, path, *domains(*names), *http_01(acme), *renew))
    second = lego_certificate(path, names[0])
    assert second.serial_number != first.serial_number
    assert second.public_key() == first.public_key()  # --reuse-key
    for certificate in (first, second):
        assert_server_certificate(acme, certificate, names, "lego@lab.test")


def authorization_urls(result: Result) -> list[str]:
    return re.findall(r"AuthURL: (\S+)", said(result))


def test_a_deactivated_authorization_is_not_reused(acme: AcmeService, tmp_path: Path) -> None:
    # RFC 8555 §7.5.2: lego relinquishes its authorizations after issuance when told to;
    # the next order of the same account must prove control of the name again.
    path, order = tmp_path / "lego", (*domains("given-up.lab.test"), *http_01(acme), "run")
    first = lego(acme, path, *order, "--always-deactivate-authorizations", "true")
    succeeded(first)
    assert "Deactivating auth" in said(first)
    assert "Unable to deactivate" not in said(first)
    again = lego(acme, path, *order)
    succeeded(again)
    assert "authorization already valid" not in said(again)
    assert "[given-up.lab.test] acme: use http-01 solver" in said(again)
    assert authorization_urls(again) != authorization_urls(first)


def new_account_refusal(acme: AcmeService) -> messages.Error:
    """The problem minica answers a newAccount without external account binding, sent by
    certbot's acme client (trusting only the root)."""
    key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    # verify_ssl goes to requests as `verify`, which takes a CA file as well as a bool.
    network = ClientNetwork(key, alg=ES256, verify_ssl=str(acme.root))  # type: ignore[arg-type]
    registration = messages.NewRegistration.from_data(
        email="unbound@lab.test", terms_of_service_agreed=True
    )
    # No keep-alive: minica serve waits for an idle connection at exit (servers.stop then
    # kills it), and closing the session leaves the connection of the refusal open.
    network.session.headers["Connection"] = "close"
    client = ClientV2(ClientV2.get_directory(acme.directory, network), network)
    with pytest.raises(messages.Error) as refused:
        client.new_account(registration)
    return refused.value


def test_external_account_binding(tmp_path: Path) -> None:
    with acme_service(tmp_path, "--eab-required") as acme:
        # lego reads meta.externalAccountRequired from the directory and stops before
        # asking; certbot's acme client asks, and gets minica's problem.
        unbound = lego(acme, tmp_path / "unbound", *domains("www.lab.test"), *http_01(acme), "run")
        failed(unbound, "Server requires External Account Binding")
        assert new_account_refusal(acme).typ == f"{ACME_ERROR}externalAccountRequired"

        kid, hmac = eab_key(acme)
        binding = ("--eab", "--kid", kid, "--hmac", hmac)
        bound = obtained(acme, tmp_path / "bound", ("www.lab.test",), *binding, *http_01(acme))
        assert_server_certificate(acme, bound, ("www.lab.test",), "lego@lab.test")

        # The key binds one account: another account (other key, other email) is refused.
        again = lego(
            acme, tmp_path / "second", *domains("api.lab.test"), *binding, *http_01(acme), "run",
            email="second@lab.test",
        )  # fmt: skip
        failed(again, f"{ACME_ERROR}unauthorized", f"{kid} is bound to another")
        assert [row["contact"] for row in acme_rows(acme)] == ["lego@lab.test"]
        keys = run_minica("acme", "eab", "list", "--ca", acme.ca, "--json", check=True)
        [listed] = json.loads(keys.stdout)
        assert listed["kid"] == kid and listed["account"] is not None, listed


def test_name_constraints_reject_the_identifier_at_order_time(tmp_path: Path) -> None:
    # The service's own HTTPS certificate must fit the constraints too: it names
    # ca.lab.test, and 127.0.0.1 (the directory's address), which no IP rule limits.
    own = ("--hostname", "ca.lab.test", "--hostname", "127.0.0.1")
    with acme_service(tmp_path, *own, init_options=("--permit-dns", "lab.test")) as acme:
        done = lego(acme, tmp_path / "lego", *domains("www.other.test"), *http_01(acme), "run")
        failed(
            done,
            f"{ACME_ERROR}rejectedIdentifier",
            "www.other.test is outside the name constraints",
            "(permitted: lab.test)",
        )
        assert "AuthURL" not in said(done)  # refused at newOrder: no authorization made
        assert acme_rows(acme) == []


@pytest.mark.parametrize(
    ("profiles", "purpose"),
    [
        (("server", "server-client"), (ExtendedKeyUsageOID.SERVER_AUTH,)),
        (
            ("server-client", "server"),
            (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
        ),
    ],
    ids=["server-first", "server-client-first"],
)
def test_the_first_acme_profile_is_the_default(
    tmp_path: Path, profiles: tuple[str, str], purpose: tuple[x509.ObjectIdentifier, ...]
) -> None:
    # lego 4.9.1 cannot choose a profile: its orders get the first one offered.
    offered = [option for name in profiles for option in ("--acme-profile", name)]
    with acme_service(tmp_path, *offered) as acme:
        directory = json.loads(http_request(acme.directory, trust=acme.root).body)
        assert list(directory["meta"]["profiles"]) == list(profiles)
        certificate = obtained(acme, tmp_path / "lego", ("www.lab.test",), *http_01(acme))
        row = assert_server_certificate(
            acme, certificate, ("www.lab.test",), "lego@lab.test", purpose
        )
        assert row["profile"] == profiles[0]
