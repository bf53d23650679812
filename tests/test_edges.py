"""The edges of issuance and storage: renewals that keep everything or refuse, revocation
from the registry alone, CA folders nobody else can write, an intermediate that exists only
once its parent recorded it, keys never overwritten, and the CLI's usage conventions."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import OpenSSL, assert_refused, minica_argv, minica_env, run_minica, snapshot
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from test_concurrency_and_crashes import run_and_kill

from minica import CertificateAuthority, ConflictError, FixtureCA, InputError, Subject
from minica.constraints import NameConstraints
from minica.keys import PrivateKey, generate, load_private_key


def ok(*args: str | Path) -> str:
    result = run_minica(*args)
    assert result.code == 0, result.stderr
    return result.stdout


def serial_of(path: Path) -> str:
    return format(x509.load_pem_x509_certificate(path.read_bytes()).serial_number, "x")


@pytest.fixture
def constrained_lab(tmp_path: Path) -> tuple[Path, Path]:
    """A root for lab.test and an intermediate below it for dev.lab.test only."""
    root, issuing = tmp_path / "root", tmp_path / "issuing"
    ok("init", "--ca", root, "--cn", "Lab Root", "--permit-dns", "lab.test")
    ok("init", "--ca", issuing, "--cn", "Dev CA", "--parent", root, "--permit-dns", "dev.lab.test")
    return root, issuing


# --- renewals reproduce the original or refuse ----------------------------------------------


def test_a_renewed_intermediate_keeps_its_constraints_and_path_length(
    constrained_lab: tuple[Path, Path], tmp_path: Path, openssl: OpenSSL
) -> None:
    root, issuing = constrained_lab
    renewed = tmp_path / "renewed.crt"
    ok("renew", "--ca", root, issuing / "ca.crt", "--out", renewed)
    old = x509.load_pem_x509_certificate((issuing / "ca.crt").read_bytes())
    new = x509.load_pem_x509_certificate(renewed.read_bytes())
    assert NameConstraints.of(new) == NameConstraints.of(old)
    assert NameConstraints.of(new).dns == ("dev.lab.test",)
    basic = new.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (basic.ca, basic.path_length) == (True, 0)
    # Leaves signed with the intermediate's key by hand: OpenSSL accepts one inside
    # dev.lab.test and refuses one outside it, through the renewed intermediate as through
    # the original.
    key = load_private_key((issuing / "private" / "ca.key").read_bytes(), "ca.key")
    for name, accepted in (("www.dev.lab.test", True), ("www.lab.test", False)):
        forged = tmp_path / f"{name}.crt"
        forged.write_bytes(forge(name, new.subject, key).public_bytes(Encoding.PEM))
        for intermediate in (issuing / "ca.crt", renewed):
            verdict = openssl(
                "verify", "-CAfile", root / "ca.crt", "-untrusted", intermediate, forged
            )
            assert (verdict.returncode == 0) == accepted, verdict.stdout + verdict.stderr
            if not accepted:
                assert "permitted subtree violation" in verdict.stderr


def forge(name: str, issuer: x509.Name, key: PrivateKey) -> x509.Certificate:
    """A server certificate for ``name`` signed with ``key``, with no policy checked."""
    now = datetime.now(timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer)
        .public_key(generate("ec-p256").public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .sign(key, hashes.SHA384())
    )


def test_a_certificate_signed_under_a_profile_file_renews_under_that_file(
    tmp_path: Path, ca_dir: Path
) -> None:
    custom = tmp_path / "profiles" / "partner.yaml"
    custom.parent.mkdir()
    custom.write_text("description: partner API\nextends: server-client\nvalidity_days: 10\n")
    first = tmp_path / "first.crt"
    ok(
        "issue", "--ca", ca_dir, "--profile", custom, "--cn", "api.example.test",
        "--out", first,
    )  # fmt: skip
    row = json.loads(ok("show", "--ca", ca_dir, serial_of(first), "--json"))["registry"]
    assert row["profile"] == str(custom.resolve())
    renewed = tmp_path / "renewed.crt"
    ok("renew", "--ca", ca_dir, first, "--out", renewed)
    new = x509.load_pem_x509_certificate(renewed.read_bytes())
    usage = new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH]
    assert new.not_valid_after_utc - new.not_valid_before_utc == timedelta(days=10, minutes=1)
    # A profile that now makes something else: the renewal says so instead of signing it.
    custom.write_text("description: partner API\nextends: server\nvalidity_days: 10\n")
    before = snapshot(ca_dir)
    assert_refused(run_minica("renew", "--ca", ca_dir, first), "would change its ExtendedKeyUsage")
    assert snapshot(ca_dir) == before


def test_renewing_a_revoked_certificate_is_a_conflict(tmp_path: Path) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca")
    issued, _ = ca.issue("server", Subject(common_name="a.lab.test"))
    ca.revoke(format(issued.certificate.serial_number, "x"))
    with pytest.raises(ConflictError, match="is revoked"):
        ca.renew(issued.certificate)


# --- the registry alone is enough to revoke ----------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "garbled"])
def test_a_lost_certificate_file_stops_no_revocation_and_is_reported(
    ca_dir: Path, tmp_path: Path, damage: str
) -> None:
    rows = json.loads(ok("list", "--ca", ca_dir, "--json"))
    serial = rows[0]["serial"]
    path = ca_dir / "certs" / f"{serial}.crt"
    if damage == "missing":
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:100])
    ok("revoke", "--ca", ca_dir, serial, "--reason", "key-compromise")
    assert json.loads(ok("list", "--ca", ca_dir, "--status", "revoked", "--json"))[0]["serial"] == (
        serial
    )
    for command in (
        ["show", serial],
        ["renew", serial],
        ["export", serial, "--key", path, "--p12", tmp_path / "x.p12"],
    ):
        assert_refused(run_minica(command[0], "--ca", ca_dir, *command[1:]), serial)
    doctor = run_minica("doctor", "--ca", ca_dir)
    assert doctor.code == 1 and serial in doctor.stdout


# --- CA folders --------------------------------------------------------------------------


def test_init_refuses_a_folder_others_can_write(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert_refused(run_minica("init", "--ca", shared), "can be written by others")
    assert list(shared.iterdir()) == []
    shared.chmod(0o755)
    ok("init", "--ca", shared)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_init_refuses_a_folder_of_another_user(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)  # nobody
    assert_refused(run_minica("init", "--ca", theirs), "belongs to another user")
    assert list(theirs.iterdir()) == []


def test_an_intermediate_exists_only_once_its_parent_recorded_it(tmp_path: Path) -> None:
    """SIGKILL at random moments of `init --parent`: afterwards the new folder is a CA
    recorded in the parent's registry, or it is no CA at all."""
    root = tmp_path / "root"
    ok("init", "--ca", root)
    durations = []
    for timing in range(2):
        started = time.monotonic()
        ok("init", "--ca", tmp_path / f"timing{timing}", "--parent", root)
        durations.append(time.monotonic() - started)
    rng = random.Random(12)
    outcomes = set()
    for attempt in range(13):
        child = tmp_path / f"child{attempt}"
        # kills spread over the whole run (most near its end), and a last run not killed
        delay = rng.uniform(0.5, 1.3) * max(durations) if attempt < 12 else 60.0
        code, stderr = run_and_kill(["init", "--ca", str(child), "--parent", str(root)], delay)
        assert code in (None, 0), stderr
        recorded = {row["serial"] for row in json.loads(ok("list", "--ca", root, "--json"))}
        if (child / "ca.crt").exists():
            assert serial_of(child / "ca.crt") in recorded
            outcomes.add("made")
        else:
            assert not (child / "private").exists()
            outcomes.add("not made")
    assert "made" in outcomes  # at least the last run, which nothing killed


def test_an_expired_ca_refuses_to_sign(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    long_ago = datetime.now(timezone.utc) - timedelta(days=10)
    CertificateAuthority.init(folder, days=2, clock=lambda: long_ago)
    before = snapshot(folder)
    result = run_minica(
        "issue", "--ca", folder, "--profile", "server", "--cn", "a.test", "--out",
        tmp_path / "a.crt",
    )  # fmt: skip
    assert_refused(result, "the CA expired on")
    assert snapshot(folder) == before


# --- the Python API ------------------------------------------------------------------------


def test_credential_write_never_replaces_a_key(tmp_path: Path) -> None:
    credential = FixtureCA().certify("localhost")
    (tmp_path / "cert.key").write_text("precious")
    with pytest.raises(ConflictError, match="never overwrites a key"):
        credential.write(tmp_path)
    assert (tmp_path / "cert.key").read_text() == "precious"
    assert not (tmp_path / "cert.crt").exists()
    with pytest.raises(InputError, match="there is no such folder"):
        credential.write(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == [tmp_path / "cert.key"]


# --- the command line's conventions ----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["revoke", "--reason", "bogus", "1"],
        ["list", "--status", "gone"],
        ["verify", "--purpose", "bogus", "a.crt"],
        ["issue", "--key-type", "rsa-1024", "--profile", "server", "--cn", "a", "--out", "a.crt"],
        ["init", "--key-type", "dsa"],
        ["list", "--expiring", "-1"],
        ["list", "--status", "revoked", "--expiring", "10"],
    ],
    ids=["reason", "status", "purpose", "key-type", "init-key-type", "negative", "mixed"],
)
def test_an_unknown_or_impossible_option_value_is_a_usage_error(
    tmp_path: Path, args: list[str]
) -> None:
    result = run_minica(*args, cwd=tmp_path)
    assert result.code == 2, (result.code, result.stderr)
    assert "Invalid value" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_dash_h_is_help_everywhere() -> None:
    for args in (["-h"], ["sign", "-h"], ["profiles", "-h"], ["profiles", "show", "-h"]):
        result = run_minica(*args)
        assert result.code == 0 and "Usage:" in result.stdout, args


def test_shell_completion_completes_commands_and_options(tmp_path: Path) -> None:
    def complete(words: str) -> list[str]:
        env = {"_MINICA_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        return run_minica(env=env).stdout.split()

    assert complete("minica re") == ["req", "renew", "revoke"]
    assert "--profile" in complete("minica sign --pro")
    for style in ("bash_source", "source_bash"):  # Click's documented name, and Typer's
        sourced = run_minica(env={"_MINICA_COMPLETE": style})
        assert sourced.code == 0 and "_minica_completion" in sourced.stdout, style
    script = run_minica("--show-completion", "bash", env={"HOME": str(tmp_path)})
    assert script.code == 0 and "_minica_completion" in script.stdout
    installed = run_minica("--install-completion", "bash", env={"HOME": str(tmp_path)})
    assert installed.code == 0, installed.stderr
    assert "minica" in (tmp_path / ".bashrc").read_text()  # a HOME of the test's own


# --- a certificate that cannot be delivered is not recorded ---------------------------------


def test_a_certificate_that_cannot_be_delivered_is_not_recorded(
    ca_dir: Path, tmp_path: Path
) -> None:
    csr = tmp_path / "www.csr"
    ok("req", "--cn", "www.example.test", "--dns", "www.example.test", "--out", csr)
    before = snapshot(ca_dir)
    with open("/dev/full", "wb") as full:
        signed = subprocess.run(
            minica_argv("sign", "--ca", ca_dir, "--profile", "server", csr),
            stdout=full,
            stderr=subprocess.PIPE,
            env=minica_env(),
            timeout=60,
        )
    assert signed.returncode == 1
    assert b"cannot write to standard output: No space left on device" in signed.stderr
    assert snapshot(ca_dir) == before
    issued = run_minica(
        "issue", "--ca", ca_dir, "--profile", "server", "--cn", "a.example.test",
        "--out", "/dev/full", "--key-out", tmp_path / "a.key",
    )  # fmt: skip
    assert_refused(issued, "/dev/full", "No space left on device")
    assert snapshot(ca_dir) == before
    assert not (tmp_path / "a.key").exists()  # no key without its certificate


def test_a_ca_file_that_is_not_a_regular_file_is_refused_without_waiting(ca_dir: Path) -> None:
    settings = ca_dir / "ca.yaml"
    settings.unlink()
    os.mkfifo(settings)  # reading it would wait for a writer forever
    started = time.monotonic()
    assert_refused(run_minica("list", "--ca", ca_dir, timeout=20), "ca.yaml", "not a regular file")
    assert time.monotonic() - started < 15


def test_sign_refuses_outputs_that_collide(ca_dir: Path, tmp_path: Path) -> None:
    csr = tmp_path / "www.csr"
    ok("req", "--cn", "www.example.test", "--dns", "www.example.test", "--out", csr)
    before = snapshot(ca_dir)
    same = run_minica(
        "sign", "--ca", ca_dir, "-p", "server", csr, "--out", tmp_path / "a.crt",
        "--chain-out", tmp_path / "a.crt",
    )  # fmt: skip
    assert_refused(same, "--out and --chain-out name the same file")
    json_to_stdout = run_minica("sign", "--ca", ca_dir, "-p", "server", csr, "--json", "--out", "-")
    assert json_to_stdout.code == 2 and "--json takes standard output" in json_to_stdout.stderr
    assert snapshot(ca_dir) == before
