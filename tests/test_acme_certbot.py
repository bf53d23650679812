"""certbot, the real client from PyPI, against `minica serve` as an ACME server.

Each test starts the service (tests/acme_serve.py: a fresh CA, a lab DNS where every name
is 127.0.0.1) and runs certbot as a user would: its whole state under tmp_path, the CA's
root as its only trust (REQUESTS_CA_BUNDLE), never `--test-cert`. What certbot saved is
read back with cryptography and checked against minica's registry, OCSP and CRL:

- standalone http-01 for two names, and dns-01 for a wildcard through hook scripts that
  set the TXT records in the lab DNS;
- `--required-profile`/`--preferred-profile`: the certificate is the one `minica sign
  --profile` makes; an unknown required profile is refused (invalidProfile);
- `certbot revoke` by the account and with the certificate's own key: revoked in /ocsp,
  /crl and `minica list`; refused to another account (unauthorized) and a second time
  (alreadyRevoked);
- renewal by ARI (RFC 9773): not due right after issuance; due once `minica revoke` has
  moved the suggested window into the past (certbot 5.8 sends no `replaces`);
- a name outside the CA's name constraints is refused when ordered (rejectedIdentifier).

A root CA's certificates come with the root as their chain: certbot refuses a chain of one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from acme_serve import AcmeService, acme_service
from conftest import listing, run_minica
from cryptography import x509
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_lab import PROPAGATION, ask, eventually, listed_in_crl

from minica.acme.ari import CertId
from minica.formats import serial_hex

pytestmark = pytest.mark.tools

EMAIL = "x@lab.test"
# certbot has no __main__ module; this is what its console script runs.
CERTBOT = "import sys; from certbot.main import main; sys.exit(main())"
CERTBOT_TIMEOUT = 120  # seconds for one certbot run (a hung validation must not hang CI)
ARI_RETRY_AFTER = timedelta(hours=6)  # minica/acme/ari.py RETRY_AFTER, as certbot stores it


# Running certbot.


def certbot(acme: AcmeService, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run certbot ARGS against ``acme`` with its config, work and logs folders under
    FOLDER/certbot, trusting only the CA's root; the completed process (stdout holds
    stderr too), whatever its exit code."""
    require_certbot()
    home = folder / "certbot"
    return subprocess.run(
        [
            *(sys.executable, "-c", CERTBOT, *args),
            *("--server", acme.directory, "--non-interactive", "--agree-tos", "--email", EMAIL),
            *("--config-dir", str(home / "config"), "--work-dir", str(home / "work")),
            *("--logs-dir", str(home / "logs")),
        ],
        # The root as requests' only trust: neither the machine's store nor certifi's.
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "REQUESTS_CA_BUNDLE": str(acme.root)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=CERTBOT_TIMEOUT,
    )


def require_certbot() -> None:
    """certbot comes with the test extra: skip without it, fail under MINICA_REQUIRE_TOOLS=1."""
    if importlib.util.find_spec("certbot") is None:
        if os.environ.get("MINICA_REQUIRE_TOOLS") == "1":
            pytest.fail("certbot is required (MINICA_REQUIRE_TOOLS=1) but not installed")
        pytest.skip("certbot is not installed (pip install -e '.[test]')")


def standalone(
    acme: AcmeService, folder: Path, name: str, *domains: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`certbot certonly --standalone` for ``domains`` (the lineage called ``name``),
    answering http-01 on the port minica's validator connects to."""
    return certbot(
        acme, folder, "certonly", "--standalone", "--cert-name", name,
        *("--http-01-port", str(acme.http_01_port), "--http-01-address", "127.0.0.1"),
        *(arg for domain in domains for arg in ("-d", domain)), *options,
    )  # fmt: skip


def succeeded(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stdout
    assert "Traceback" not in run.stdout, run.stdout


def refused(run: subprocess.CompletedProcess[str], folder: Path, detail: str, problem: str) -> None:
    """certbot failed showing minica's ``detail``; its log has the problem document, of
    type ``problem`` (the RFC's name, without the namespace)."""
    assert run.returncode == 1, run.stdout
    assert detail in run.stdout, run.stdout
    assert "Traceback" not in run.stdout, run.stdout
    assert f'"type": "urn:ietf:params:acme:error:{problem}"' in log_of(folder)


def log_of(folder: Path) -> str:
    """certbot's debug log of its last run in FOLDER/certbot (it rotates the older ones):
    every request and the answer, problem documents included."""
    return (folder / "certbot" / "logs" / "letsencrypt.log").read_text()


def live(folder: Path, name: str, file: str = "cert.pem") -> Path:
    return folder / "certbot" / "config" / "live" / name / file


# Reading back what certbot saved.


def saved(folder: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(live(folder, name).read_bytes())


def dns_names(certificate: x509.Certificate) -> list[str]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    return san.value.get_values_for_type(x509.DNSName)


def extended_key_usage(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def assert_issued_by_ca(acme: AcmeService, folder: Path, name: str) -> x509.Certificate:
    """The lineage's cert.pem, signed by the CA's root; fullchain.pem is it then the root
    (a root CA has no intermediates) and chain.pem the root."""
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    certificate = saved(folder, name)
    certificate.verify_directly_issued_by(root)
    fullchain = x509.load_pem_x509_certificates(live(folder, name, "fullchain.pem").read_bytes())
    assert fullchain == [certificate, root]
    assert x509.load_pem_x509_certificates(live(folder, name, "chain.pem").read_bytes()) == [root]
    return certificate


def registry_row(acme: AcmeService, certificate: x509.Certificate) -> dict[str, Any]:
    """The `minica list --json --status all` row of ``certificate`` (which must be there)."""
    rows = {row["serial"]: row for row in listing(acme.ca, "--status", "all")}
    serial = serial_hex(certificate.serial_number)
    assert serial in rows, (serial, rows)
    return rows[serial]


def serials(acme: AcmeService) -> set[str]:
    return {row["serial"] for row in listing(acme.ca, "--status", "all")}


def shows_revoked(acme: AcmeService, certificate: x509.Certificate) -> bool:
    """Whether the service's /ocsp says revoked and its /crl lists ``certificate``."""
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    answer = ask(acme.service.http_url, certificate, root)
    return answer.certificate_status == ocsp.OCSPCertStatus.REVOKED and listed_in_crl(
        acme.service.http_url, certificate.serial_number
    )


def assert_revoked(
    acme: AcmeService, certificate: x509.Certificate, reason: x509.ReasonFlags, name: str
) -> None:
    """Revoked for ``reason`` in /ocsp and /crl (the CRL is signed anew after a revocation:
    polled up to the contract's bound) and in the registry (as ``name``)."""
    assert eventually(PROPAGATION, lambda: shows_revoked(acme, certificate)) is not None
    root = x509.load_pem_x509_certificate(acme.root.read_bytes())
    assert ask(acme.service.http_url, certificate, root).revocation_reason == reason
    row = registry_row(acme, certificate)
    assert (row["status"], row["revocation_reason"]) == ("revoked", name), row


# Issuance.


def test_standalone_http_01_for_two_names(tmp_path: Path) -> None:
    with acme_service(tmp_path) as acme:
        succeeded(standalone(acme, tmp_path, "www", "www.lab.test", "api.lab.test"))
        certificate = assert_issued_by_ca(acme, tmp_path, "www")
        assert dns_names(certificate) == ["www.lab.test", "api.lab.test"]
        assert extended_key_usage(certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]
        row = registry_row(acme, certificate)
        assert (row["contact"], row["profile"], row["status"]) == (EMAIL, "server", "valid")


HOOK = """\
import json, os, sys, urllib.request
# certbot runs this once per name: the TXT record of _acme-challenge.<name> (a wildcard's
# name without its "*."), set or cleared through the lab DNS's management API.
command, body = sys.argv[1], {{"host": "_acme-challenge." + os.environ["CERTBOT_DOMAIN"] + "."}}
if command == "set-txt":
    body["value"] = os.environ["CERTBOT_VALIDATION"]
request = urllib.request.Request("{management}/" + command, json.dumps(body).encode())
with urllib.request.urlopen(request, timeout=10) as answer:
    assert answer.status == 200, answer.status
"""


def test_manual_dns_01_for_a_wildcard_and_its_domain(tmp_path: Path) -> None:
    with acme_service(tmp_path) as acme:
        hook = tmp_path / "dns_hook.py"
        hook.write_text(HOOK.format(management=acme.dns.management))
        hooks = (
            *("--manual-auth-hook", f"{sys.executable} {hook} set-txt"),
            *("--manual-cleanup-hook", f"{sys.executable} {hook} clear-txt"),
        )
        manual = ("certonly", "--manual", "--preferred-challenges", "dns", *hooks)
        names = ("--cert-name", "wildcard", "-d", "*.lab.test", "-d", "lab.test")
        succeeded(certbot(acme, tmp_path, *manual, *names))
        certificate = assert_issued_by_ca(acme, tmp_path, "wildcard")
        assert sorted(dns_names(certificate)) == ["*.lab.test", "lab.test"]
        assert registry_row(acme, certificate)["contact"] == EMAIL
        # A wildcard is only ever proved by dns-01: the hook set one TXT value for each
        # name at the same host, and the cleanup hook removed them again.
        said = acme.dns.output()
        assert said.count('Added DNS-01 TXT challenge for Host "_acme-challenge.lab.test."') == 2
        assert 'Removed DNS-01 TXT challenge for Host "_acme-challenge.lab.test."' in said


# Profiles.

PROFILES = ("--acme-profile", "server", "--acme-profile", "server-client")
# What a profile decides in a certificate (`minica show --json`), beyond the names and key.
PROFILE_FIELDS = (
    "issuer", "key_type", "key_usage", "extended_key_usage", "extended_key_usage_critical",
    "basic_constraints", "name_constraints", "crl_urls", "ocsp_urls", "issuer_urls",
    "ocsp_no_check", "signature_algorithm",
)  # fmt: skip


def made_by_profile(ca: Path, folder: Path, profile: str) -> dict[str, Any]:
    """`minica show --json` of the certificate `minica sign --profile PROFILE` makes for a
    CSR for www.lab.test (an ec-p256 key, as certbot's)."""
    request = folder / "reference.csr"
    run_minica("req", "--cn", "www.lab.test", "--dns", "www.lab.test", "--out", request, check=True)
    signed = folder / "reference.crt"
    run_minica("sign", "--ca", ca, "--profile", profile, request, "--out", signed, check=True)
    return shown(signed)


def shown(certificate: Path) -> dict[str, Any]:
    described: dict[str, Any] = json.loads(
        run_minica("show", certificate, "--json", check=True).stdout
    )
    return described


def instant(text: str) -> datetime:
    """An ISO 8601 UTC time as minica writes it (`Z`, which Python 3.10 cannot read)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def lifetime(described: dict[str, Any]) -> timedelta:
    return instant(described["not_after"]) - instant(described["not_before"])


def assert_made_like(certificate: Path, reference: dict[str, Any]) -> None:
    described = shown(certificate)
    assert {key: described[key] for key in PROFILE_FIELDS} == {
        key: reference[key] for key in PROFILE_FIELDS
    }
    assert lifetime(described) == lifetime(reference)


def test_required_profile_makes_what_minica_sign_makes(tmp_path: Path) -> None:
    with acme_service(tmp_path, *PROFILES) as acme:
        required = ("--required-profile", "server-client")
        succeeded(standalone(acme, tmp_path, "www", "www.lab.test", options=required))
        certificate = assert_issued_by_ca(acme, tmp_path, "www")
        assert extended_key_usage(certificate) == [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ]
        assert_made_like(live(tmp_path, "www"), made_by_profile(acme.ca, tmp_path, "server-client"))
        assert registry_row(acme, certificate)["profile"] == "server-client"


def test_an_unknown_required_profile_is_refused_and_nothing_issued(tmp_path: Path) -> None:
    with acme_service(tmp_path, *PROFILES) as acme:
        before = serials(acme)
        run = standalone(
            acme, tmp_path, "www", "www.lab.test", options=("--required-profile", "nosuch")
        )
        offered = "profile 'nosuch' is not offered (offered: server, server-client)"
        refused(run, tmp_path, offered, "invalidProfile")
        assert serials(acme) == before
        assert not live(tmp_path, "www").exists()


def test_preferred_profile_is_used_when_offered_and_falls_back_when_not(tmp_path: Path) -> None:
    with acme_service(tmp_path, *PROFILES) as acme:
        preferred = ("--preferred-profile", "server-client")
        succeeded(standalone(acme, tmp_path, "both", "both.lab.test", options=preferred))
        assert registry_row(acme, saved(tmp_path, "both"))["profile"] == "server-client"
        # Not in the directory's meta.profiles: certbot asks for none, minica's default.
        unknown = ("--preferred-profile", "nosuch")
        succeeded(standalone(acme, tmp_path, "plain", "plain.lab.test", options=unknown))
        certificate = saved(tmp_path, "plain")
        assert registry_row(acme, certificate)["profile"] == "server"
        assert extended_key_usage(certificate) == [ExtendedKeyUsageOID.SERVER_AUTH]


# Revocation.


def revoke(acme: AcmeService, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`certbot revoke ARGS`, keeping the lineage's files (certbot would ask otherwise)."""
    return certbot(acme, folder, "revoke", *args, "--no-delete-after-revoke")


def test_revoke_by_the_account_and_with_the_certificate_key(tmp_path: Path) -> None:
    with acme_service(tmp_path) as acme:
        for name in ("mine", "keyed"):
            succeeded(standalone(acme, tmp_path, name, f"{name}.lab.test"))
        mine, keyed = saved(tmp_path, "mine"), saved(tmp_path, "keyed")
        mine_path = str(live(tmp_path, "mine"))
        succeeded(revoke(acme, tmp_path, "--cert-path", mine_path, "--reason", "keycompromise"))
        assert_revoked(acme, mine, x509.ReasonFlags.key_compromise, "key-compromise")
        # With --key-path certbot signs the request with the certificate's key, not an
        # account's: run it from a certbot home that has no account at all.
        stranger = tmp_path / "stranger"
        keyed_paths = (
            *("--cert-path", str(live(tmp_path, "keyed"))),
            *("--key-path", str(live(tmp_path, "keyed", "privkey.pem"))),
        )
        succeeded(revoke(acme, stranger, *keyed_paths, "--reason", "cessationofoperation"))
        assert not (stranger / "certbot" / "config" / "accounts").exists()
        assert_revoked(
            acme, keyed, x509.ReasonFlags.cessation_of_operation, "cessation-of-operation"
        )


def test_revoke_is_refused_to_another_account_and_a_second_time(tmp_path: Path) -> None:
    with acme_service(tmp_path) as acme:
        succeeded(standalone(acme, tmp_path, "mine", "mine.lab.test"))
        mine, mine_path = saved(tmp_path, "mine"), str(live(tmp_path, "mine"))
        other = tmp_path / "other"
        succeeded(certbot(acme, other, "register"))
        refused(
            revoke(acme, other, "--cert-path", mine_path),
            other,
            f"certificate {serial_hex(mine.serial_number)} was not ordered by this account",
            "unauthorized",
        )
        # (A --key-path that is not the certificate's key certbot refuses before asking.)
        root = x509.load_pem_x509_certificate(acme.root.read_bytes())
        assert ask(acme.service.http_url, mine, root).certificate_status == ocsp.OCSPCertStatus.GOOD
        assert registry_row(acme, mine)["status"] == "valid"

        succeeded(revoke(acme, tmp_path, "--cert-path", mine_path, "--reason", "superseded"))
        refused(
            revoke(acme, tmp_path, "--cert-path", mine_path),
            tmp_path,
            f"certificate {serial_hex(mine.serial_number)} was already revoked",
            "alreadyRevoked",
        )
        assert_revoked(acme, mine, x509.ReasonFlags.superseded, "superseded")


# Renewal by ARI.


def ari_answer(
    folder: Path, acme: AcmeService, certificate: x509.Certificate
) -> tuple[int, dict[str, datetime]]:
    """What certbot's last run was told by the renewalInfo of ``certificate`` (RFC 9773
    §4.1: the URL ends in its CertID), read from certbot's log: the Retry-After seconds
    and the suggested window. Fails the test if certbot did not ask."""
    url = f"{acme.service.https_url}/acme/renewal-info/{CertId.of(certificate)}"
    answer = re.compile(
        re.escape(f"Sending GET request to {url}.")
        + r".*?^retry-after: (\d+)$.*?^(\{\"suggestedWindow\".*?)$",
        re.DOTALL | re.MULTILINE,
    )
    found = answer.search(log_of(folder))
    assert found, f"certbot did not ask {url}"
    window = json.loads(found[2])["suggestedWindow"]
    return int(found[1]), {edge: instant(window[edge]) for edge in ("start", "end")}


def next_ari_check(folder: Path, name: str) -> datetime:
    """When certbot will next ask for the renewalInfo of lineage ``name``: the Retry-After
    it was answered, kept in the renewal config as local time without a zone."""
    config = (folder / "certbot" / "config" / "renewal" / f"{name}.conf").read_text()
    found = re.search(r"^ari_retry_after = (\S+)$", config, re.MULTILINE)
    assert found, config
    return datetime.fromisoformat(found[1])


def forget_ari_check(folder: Path, name: str) -> None:
    """Move certbot's next renewalInfo check into the past, as if Retry-After's hours had
    gone by: a test cannot wait for them, and certbot rightly asks no sooner."""
    config = folder / "certbot" / "config" / "renewal" / f"{name}.conf"
    past = (datetime.now() - timedelta(minutes=1)).isoformat(timespec="seconds")
    stored = re.compile(r"^ari_retry_after = \S+$", re.MULTILINE)
    config.write_text(stored.sub(f"ari_retry_after = {past}", config.read_text()))


def renew(acme: AcmeService, folder: Path) -> subprocess.CompletedProcess[str]:
    # Without a terminal certbot renew first sleeps up to 8 minutes to spread the load.
    return certbot(acme, folder, "renew", "--no-random-sleep-on-renew")


def test_renew_follows_the_renewal_information(tmp_path: Path) -> None:
    with acme_service(tmp_path) as acme:
        succeeded(standalone(acme, tmp_path, "www", "www.lab.test"))
        first = saved(tmp_path, "www")
        # No OCSP URL in the certificate (the CA was made without --url): only ARI can
        # tell certbot that the certificate needs replacing.
        with pytest.raises(x509.ExtensionNotFound):
            first.extensions.get_extension_for_class(x509.AuthorityInformationAccess)

        not_due = renew(acme, tmp_path)
        succeeded(not_due)
        assert "Certificate not yet due for renewal" in not_due.stdout, not_due.stdout
        retry_after, window = ari_answer(tmp_path, acme, first)
        assert window["start"] > datetime.now(timezone.utc)  # late in its life, not yet
        assert retry_after == ARI_RETRY_AFTER.total_seconds()
        asked_again = next_ari_check(tmp_path, "www") - datetime.now()
        assert ARI_RETRY_AFTER - timedelta(minutes=5) < asked_again <= ARI_RETRY_AFTER
        assert saved(tmp_path, "www") == first

        run_minica("revoke", "--ca", acme.ca, live(tmp_path, "www"), check=True)
        forget_ari_check(tmp_path, "www")
        renewed = renew(acme, tmp_path)
        succeeded(renewed)
        assert "Congratulations, all renewals succeeded" in renewed.stdout, renewed.stdout
        _, window = ari_answer(tmp_path, acme, first)
        assert window["end"] <= datetime.now(timezone.utc)  # revoked: the window has begun
        second = assert_issued_by_ca(acme, tmp_path, "www")
        assert second.serial_number != first.serial_number
        assert dns_names(second) == ["www.lab.test"]
        row = registry_row(acme, second)
        assert (row["status"], row["contact"], row["profile"]) == ("valid", EMAIL, "server")
        assert registry_row(acme, first)["status"] == "revoked"


# Refusals.


def test_a_name_outside_the_name_constraints_is_refused_when_ordered(tmp_path: Path) -> None:
    # The service's own HTTPS certificate must fit the constraints too: its common name
    # under lab.test, the address the clients connect to as an IP name.
    constrained = ("--permit-dns", "lab.test", "--permit-ip", "127.0.0.1/32")
    hostnames = ("--hostname", "ca.lab.test", "--hostname", "127.0.0.1")
    with acme_service(tmp_path, *hostnames, init_options=constrained) as acme:
        before = serials(acme)
        run = standalone(acme, tmp_path, "other", "www.other.test")
        outside = (
            "DNS name www.other.test is outside the name constraints of "
            "CN=minica ACME test root (permitted: lab.test, 127.0.0.1/32)"
        )
        refused(run, tmp_path, outside, "rejectedIdentifier")
        assert serials(acme) == before
        assert not live(tmp_path, "other").exists()
        # The refusal came with the order: no authorization was made to be validated.
        assert "/acme/authz/" not in log_of(tmp_path)
