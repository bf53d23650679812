"""External account binding (minica/acme/eab.py): keys made, listed and removed in both
registries, and bindings built by certbot's own ``acme`` package (and josepy, for the
ones a client should never send) checked as RFC 8555 §7.3.4 says; then the same keys
through `minica acme eab`."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from acme import jws as acme_jws
from acme import messages
from conftest import assert_refused, run_minica, snapshot
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwa import HS256, RS256
from josepy.jwk import JWK, JWKEC, JWKRSA, JWKOct
from servers import running_service
from test_registry import IMPLEMENTATIONS, databases, in_threads

from minica import CertificateAuthority
from minica.acme import eab
from minica.acme.problems import Problem
from minica.errors import InputError, NotFoundError
from minica.registry import AcmeState

NOW = datetime(2030, 5, 17, 12, 0, tzinfo=timezone.utc)
URL = "https://ca.lab.test:8443/acme/new-account"


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def state(request: pytest.FixtureRequest, tmp_path: Path) -> AcmeState:
    return IMPLEMENTATIONS[request.param](tmp_path, databases(request)).acme


def account_key() -> JWK:
    return JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def binding(
    account: JWK, kid: str, hmac_key: str, *, url: str = URL, alg: str = "HS256"
) -> dict[str, Any]:
    """The externalAccountBinding certbot sends for ``account``."""
    directory = messages.Directory({"newAccount": url})
    made = messages.ExternalAccountBinding.from_data(
        account.public_key(), kid, hmac_key, directory, hmac_alg=alg
    )
    parsed: dict[str, Any] = json.loads(json.dumps(made))  # as the server reads it
    return parsed


def refused(kind: str, call: Any, *fragments: str) -> Problem:
    """The Problem ``call()`` raised: of type ``kind``, its detail naming every fragment."""
    with pytest.raises(Problem) as raised:
        call()
    problem = raised.value
    assert problem.type == kind, problem
    assert problem.document()["status"] == {"unauthorized": 403, "malformed": 400}[kind]
    for fragment in fragments:
        assert fragment in str(problem), (fragment, str(problem))
    return problem


def test_a_key_is_shown_once_and_listed_without_its_secret(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, "build farm", NOW)
    other, _ = eab.add(state, None, NOW)
    assert kid != other and kid.startswith("kid-")
    assert len(base64.urlsafe_b64decode(hmac_key + "=")) == 32  # 43 characters, unpadded
    listed = eab.list(state, NOW)
    assert [key.to_json() for key in listed] == [
        {"kid": kid, "label": "build farm", "created": "2030-05-17T12:00:00Z", "account": None},
        {"kid": other, "label": None, "created": "2030-05-17T12:00:00Z", "account": None},
    ]
    assert hmac_key not in repr(listed)


def test_a_label_is_one_line(state: AcmeState) -> None:
    with pytest.raises(InputError, match="not one line of printable text"):
        eab.add(state, "two\nlines", NOW)
    assert eab.list(state, NOW) == []


def test_a_removed_key_is_gone_and_an_unknown_one_not_found(state: AcmeState) -> None:
    kid, _ = eab.add(state, None, NOW)
    eab.remove(state, kid)
    assert eab.list(state, NOW) == []
    with pytest.raises(NotFoundError, match=f"no external account key {kid}") as error:
        eab.remove(state, kid)
    assert error.value.code == "unknown-eab"


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_a_binding_binds_its_key_to_the_account(state: AcmeState, alg: str) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    made = binding(account, kid, hmac_key, alg=alg)
    assert eab.bind(state, made, account.public_key(), URL, "acct-1", NOW) == kid
    assert [key.account for key in eab.list(state, NOW)] == ["acct-1"]
    # The same account again (a client retrying) is no change.
    assert eab.bind(state, made, account.public_key(), URL, "acct-1", NOW) == kid


def test_a_key_binds_one_account_only(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    first, second = account_key(), account_key()
    eab.bind(state, binding(first, kid, hmac_key), first.public_key(), URL, "acct-1", NOW)
    again = binding(second, kid, hmac_key)
    problem = refused(
        "unauthorized",
        lambda: eab.bind(state, again, second.public_key(), URL, "acct-2", NOW),
        f"external account key {kid} is bound to another account already",
    )
    assert problem.hint == "ask the CA's operator for a new external account key"
    assert [key.account for key in eab.list(state, NOW)] == ["acct-1"]


def test_of_two_accounts_binding_one_key_at_once_one_wins(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    accounts = [account_key() for _ in range(8)]
    bindings = iter([(n, a, binding(a, kid, hmac_key)) for n, a in enumerate(accounts)])

    def bind_one() -> object:
        n, account, made = next(bindings)
        return eab.bind(state, made, account.public_key(), URL, f"acct-{n}", NOW)

    results = in_threads(8, bind_one)
    assert results.count(kid) == 1
    assert all(isinstance(r, Problem) and r.type == "unauthorized" for r in results if r != kid)
    (bound,) = eab.list(state, NOW)
    assert bound.account is not None


def test_an_unknown_key_or_a_wrong_hmac_key_is_unauthorized(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    wrong = base64.urlsafe_b64encode(b"\x01" * 32).decode()
    for made, fragment in [
        (binding(account, "kid-nobody", hmac_key), "no external account key kid-nobody"),
        (binding(account, kid, wrong), f"does not verify with external account key {kid}"),
    ]:
        refused(
            "unauthorized",
            lambda made=made: eab.bind(state, made, account.public_key(), URL, "a1", NOW),
            fragment,
        )
    assert [key.account for key in eab.list(state, NOW)] == [None]


def test_a_binding_for_another_key_or_url_is_malformed(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account, stranger = account_key(), account_key()
    refused(
        "malformed",
        lambda: eab.bind(
            state, binding(stranger, kid, hmac_key), account.public_key(), URL, "a1", NOW
        ),
        "payload must be the account's public key",
    )
    elsewhere = binding(account, kid, hmac_key, url="https://evil.test/new-account")
    refused(
        "malformed",
        lambda: eab.bind(state, elsewhere, account.public_key(), URL, "a1", NOW),
        f"must carry the newAccount URL {URL}",
        "evil.test",
    )
    assert [key.account for key in eab.list(state, NOW)] == [None]


def signed(payload: bytes, key: JWK, alg: Any, *, nonce: bytes | None = None) -> Any:
    made = acme_jws.JWS.sign(payload, key, alg, nonce, URL, "kid-x")
    return json.loads(made.json_dumps())


def test_what_rfc_8555_does_not_allow_is_malformed(state: AcmeState) -> None:
    kid, hmac_key = eab.add(state, None, NOW)
    account = account_key()
    good = binding(account, kid, hmac_key)
    jwk = json.dumps(account.public_key().to_partial_json()).encode()
    hmac = JWKOct(key=base64.urlsafe_b64decode(hmac_key + "="))
    rsa_key = JWKRSA(key=rsa.generate_private_key(65537, 2048))
    cases: list[tuple[object, str]] = [
        ("a string", "must be a flattened JWS"),
        ({**good, "header": {"kid": kid}}, "must be a flattened JWS"),
        ({**good, "payload": 7}, "are strings"),
        ({**good, "protected": "%%%"}, "protected header that is not base64url-encoded JSON"),
        ({**good, "protected": b64encode(b"[1]").decode()}, "not a JSON object"),
        ({**good, "payload": b64encode(b"{}").decode()}, "is not a JWS over a JWK"),
        (signed(jwk, rsa_key, RS256), "is signed with 'RS256'; it must be signed with HS"),
        (signed(jwk, hmac, HS256, nonce=b"once"), "must not carry a nonce"),
    ]
    for made, fragment in cases:
        refused(
            "malformed",
            lambda made=made: eab.bind(state, made, account.public_key(), URL, "a1", NOW),
            fragment,
        )
    assert [key.account for key in eab.list(state, NOW)] == [None]


# --- minica acme eab ------------------------------------------------------------------------


def test_eab_add_list_and_remove_through_the_cli(ca_dir: Path) -> None:
    human = run_minica("acme", "eab", "add", "--ca", ca_dir, "--label", "build farm", check=True)
    lines = human.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["key id", "HMAC key"]
    kid, hmac_key = (line.split()[-1] for line in lines)
    assert "not shown again" in human.stderr
    machine = run_minica("acme", "eab", "add", "--ca", ca_dir, "--json", check=True)
    made = json.loads(machine.stdout)
    assert sorted(made) == ["hmac_key", "kid"]
    # What the CLI made binds as the core's keys do.
    state = CertificateAuthority.open(ca_dir).registry.acme
    account = account_key()
    eab.bind(state, binding(account, kid, hmac_key), account.public_key(), URL, "acct-1", NOW)

    listed = json.loads(run_minica("acme", "eab", "list", "--ca", ca_dir, "--json").stdout)
    assert [(key["kid"], key["label"], key["account"]) for key in listed] == [
        (kid, "build farm", "acct-1"),
        (made["kid"], None, None),
    ]
    assert all(key["created"].endswith("Z") for key in listed)
    table = run_minica("acme", "eab", "list", "--ca", ca_dir, check=True).stdout.splitlines()
    assert table[0].split() == ["KID", "CREATED", "ACCOUNT", "LABEL"]
    assert table[1].split()[:4:2] == [kid, "acct-1"] and table[1].endswith("build farm")
    assert hmac_key not in "".join(table)

    assert run_minica("acme", "eab", "remove", made["kid"], "--ca", ca_dir, check=True).code == 0
    listed = json.loads(run_minica("acme", "eab", "list", "--ca", ca_dir, "--json").stdout)
    assert [key["kid"] for key in listed] == [kid]


def test_eab_refusals_are_one_error_line(ca_dir: Path, tmp_path: Path) -> None:
    before = snapshot(ca_dir)
    unknown = run_minica("acme", "eab", "remove", "kid-nobody", "--ca", ca_dir)
    assert_refused(unknown, "no external account key kid-nobody")
    assert "hint: `minica acme eab list`" in unknown.stderr
    assert_refused(run_minica("acme", "eab", "add", "--ca", ca_dir, "--label", "a\nb"), "one line")
    assert_refused(run_minica("acme", "eab", "list", "--ca", tmp_path / "none"), "no CA")
    assert snapshot(ca_dir) == before
    assert run_minica("acme", "eab", "remove", "--ca", ca_dir).code == 2  # no KID: usage


def test_eab_needs_no_passphrase_of_an_encrypted_ca(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse\n")
    ca = tmp_path / "ca"
    run_minica("init", "--ca", ca, "--passphrase-file", secret, check=True)
    run_minica("acme", "eab", "add", "--ca", ca, check=True)
    assert len(json.loads(run_minica("acme", "eab", "list", "--ca", ca, "--json").stdout)) == 1


def test_the_acme_group_has_help_and_completion() -> None:
    for words in (["acme"], ["acme", "eab"], ["acme", "eab", "add"]):
        shown = run_minica(*words, "--help")
        assert shown.code == 0 and f"minica {' '.join(words)} [OPTIONS]" in shown.stdout
    env = {"_MINICA_COMPLETE": "complete_bash", "COMP_WORDS": "minica acme eab ", "COMP_CWORD": "3"}
    assert run_minica(env=env).stdout.split() == ["add", "list", "remove"]


def test_eab_commands_work_while_the_ca_is_served(ca_dir: Path) -> None:
    with running_service(ca_dir) as service:
        for n in range(3):
            run_minica("acme", "eab", "add", "--ca", ca_dir, "--label", f"k{n}", check=True)
        listed = json.loads(run_minica("acme", "eab", "list", "--ca", ca_dir, "--json").stdout)
        assert [key["label"] for key in listed] == ["k0", "k1", "k2"]
        run_minica("acme", "eab", "remove", listed[0]["kid"], "--ca", ca_dir, check=True)
        assert service.process.poll() is None
