"""minica under storage faults and secret-handling mistakes, through the real CLI.

A read-only CA folder (a read-only bind mount), a full disk (a small tmpfs), passphrases
(file, environment, a prompt on a real pty, none at all), file modes under umask 000,
symlinks planted at key paths, and bad input that test_bad_input.py does not cover.

Mounting needs root: those tests skip without it, and fail under MINICA_REQUIRE_TOOLS=1.
"""

from __future__ import annotations

import errno
import os
import pty
import re
import select
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest
from conftest import (
    Result,
    assert_refused,
    copy_ca,
    minica_argv,
    minica_env,
    require_tool,
    run_minica,
    snapshot,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

HOST = "www.example.test"
PASSPHRASE = "Tr0ub4dor&3 minica-secret"  # distinctive: searched for in every output and file

# ---------------------------------------------------------------------------------------
# Mounts, CSRs (the CLI runs through conftest's run_minica: stdin a pipe, no controlling
# terminal, so never a prompt)


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("MINICA_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (MINICA_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def mount(*args: str | Path) -> None:
    if os.geteuid() != 0:
        unavailable("mounting needs root")
    done = subprocess.run(
        [require_tool("mount"), *map(str, args)], capture_output=True, text=True, timeout=30
    )
    if done.returncode != 0:
        unavailable(f"mount {' '.join(map(str, args))} failed: {done.stderr.strip()}")


def unmount(path: Path) -> None:
    umount = require_tool("umount")
    if subprocess.run([umount, path], capture_output=True, timeout=30).returncode != 0:
        subprocess.run([umount, "-l", path], capture_output=True, timeout=30)


@contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``view`` (a read-only bind mount)."""
    view.mkdir()
    mount("--bind", source, view)
    try:
        mount("-o", "remount,bind,ro", view)
        try:
            (view / ".probe").touch()
        except OSError as error:
            assert error.errno == errno.EROFS
        else:
            (view / ".probe").unlink()
            unavailable("the read-only remount did not take")
        yield view
    finally:
        unmount(view)


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", where)
    try:
        yield where
    finally:
        unmount(where)


def fill(disk: Path, leave_pages: int = 0) -> Path:
    """Fill ``disk`` with a filler file until ENOSPC, then free ``leave_pages`` pages of it."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    with open(filler, "wb", buffering=0) as file:
        try:
            while True:
                file.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    if leave_pages:
        os.truncate(filler, max(0, filler.stat().st_size - leave_pages * 4096))
    else:
        assert os.statvfs(disk).f_bavail == 0
    return filler


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _der_length(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def csr(cn: str = HOST, dns: tuple[str, ...] = (HOST,), raw_dns: tuple[bytes, ...] = ()) -> bytes:
    """A PEM CSR; ``raw_dns`` are dNSName bytes put into the SAN as they are (cryptography
    refuses to build non-ASCII or other odd names itself)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    if raw_dns:
        body = b"".join(b"\x82" + _der_length(len(name)) + name for name in raw_dns)
        san = b"\x30" + _der_length(len(body)) + body
        extension: x509.ExtensionType = x509.UnrecognizedExtension(
            ExtensionOID.SUBJECT_ALTERNATIVE_NAME, san
        )
        builder = builder.add_extension(extension, critical=False)
    elif dns:
        names = [x509.DNSName(name) for name in dns]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ec_key(), hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def rows(ca: Path, table: str = "certificates") -> list[tuple[object, ...]]:
    """The registry's rows (certificates, or crls: the CRL numbers spent)."""
    connection = sqlite3.connect(ca / "minica.db")
    try:
        return connection.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        connection.close()


def certs(ca: Path) -> set[str]:
    return {path.name for path in (ca / "certs").iterdir()}


def debris(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp-" in p.name or ".minica-init-" in p.name]


def san_dns(certificate: Path) -> list[str]:
    loaded = x509.load_pem_x509_certificate(certificate.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName)


# ---------------------------------------------------------------------------------------
# A CA made by `minica init`, with one registry row (leaf.crt)


@pytest.fixture(scope="module")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli-ca")
    assert run_minica("init", "--ca", base / "ca", "--cn", "storage test root").code == 0
    issued = run_minica(
        "issue", "--ca", base / "ca", "-p", "server", "--cn", HOST, "--out", base / "leaf.crt"
    )
    assert issued.code == 0, issued.stderr
    return base


@pytest.fixture
def work(tmp_path: Path, cli_template: Path) -> Path:
    """A writable folder holding leaf.crt (issued by the CA) and request.csr."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(cli_template / "leaf.crt", folder / "leaf.crt")
    (folder / "request.csr").write_bytes(csr(cn="new.example.test", dns=("new.example.test",)))
    return folder


@pytest.fixture
def cli_ca(tmp_path: Path, cli_template: Path) -> Path:
    return copy_ca(cli_template / "ca", tmp_path / "ca")


# ---------------------------------------------------------------------------------------
# A read-only CA folder

WRITING_COMMANDS: dict[str, tuple[str, ...]] = {
    "sign": ("sign", "-p", "server", "{work}/request.csr", "--out", "{work}/out.crt"),
    "issue": ("issue", "-p", "server", "--cn", "new.example.test", "--out", "{work}/new.crt"),
    "revoke": ("revoke", "{work}/leaf.crt"),
    "crl": ("crl",),
    "renew": ("renew", "{work}/leaf.crt", "--out", "{work}/renewed.crt"),
}


def writing(command: str, ca: Path, work: Path) -> list[str]:
    name, *rest = WRITING_COMMANDS[command]
    return [name, "--ca", str(ca), *(arg.format(work=work) for arg in rest)]


@pytest.fixture
def read_only_ca(cli_ca: Path, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """(the CA folder, a read-only view of it)."""
    with read_only_view(cli_ca, tmp_path / "ro-ca") as view:
        yield cli_ca, view


@pytest.mark.parametrize("command", WRITING_COMMANDS)
def test_read_only_ca_folder_refuses_and_keeps_the_registry(
    command: str, read_only_ca: tuple[Path, Path], work: Path
) -> None:
    source, view = read_only_ca
    before, files_before = snapshot(source), set(os.listdir(work))

    result = run_minica(*writing(command, view, work))

    assert_refused(result)
    assert snapshot(source) == before
    assert set(os.listdir(work)) == files_before  # no certificate, key or CRL written


def test_read_only_ca_folder_errors_say_the_registry_cannot_be_written(
    read_only_ca: tuple[Path, Path], work: Path
) -> None:
    _, view = read_only_ca
    unclear = {}
    for command in WRITING_COMMANDS:
        result = run_minica(*writing(command, view, work))
        line = result.stderr.strip().splitlines()[0]
        if not re.search(r"cannot (be )?writ|read-only|not writable", line, re.IGNORECASE):
            unclear[command] = line
    assert unclear == {}


def test_read_only_ca_folder_can_still_be_listed_and_verified(
    read_only_ca: tuple[Path, Path], work: Path
) -> None:
    _, view = read_only_ca
    verified = run_minica("verify", "--ca", view, work / "leaf.crt")
    assert (verified.code, verified.stdout.strip()) == (0, "OK"), verified.stderr
    listed = run_minica("list", "--ca", view)
    assert listed.code == 0, listed.stderr
    assert "CN=www.example.test" in listed.stdout


# ---------------------------------------------------------------------------------------
# An output folder that cannot be written: refused before anything is signed


@pytest.mark.parametrize("command", ["sign", "issue", "crl"])
def test_read_only_output_folder_is_refused_before_signing(
    command: str, cli_ca: Path, work: Path, tmp_path: Path
) -> None:
    with read_only_view(work, tmp_path / "ro-out") as out:
        args = writing(command, cli_ca, out)
        if command == "crl":
            args += ["--out", str(out / "crl.pem")]
        before = snapshot(cli_ca)
        result = run_minica(*args)
        assert_refused(result, str(out))
        assert snapshot(cli_ca) == before  # no registry row or CRL number for a lost output


# ---------------------------------------------------------------------------------------
# A full disk


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "2m") as mounted:
        yield mounted


@pytest.fixture
def ca_on_disk(disk: Path, cli_template: Path) -> Path:
    return copy_ca(cli_template / "ca", disk / "ca")


@pytest.mark.parametrize("command", ["sign", "crl"])
def test_full_disk_fails_cleanly_and_keeps_the_registry(
    command: str, ca_on_disk: Path, disk: Path, work: Path
) -> None:
    registry_before = (ca_on_disk / "minica.db").read_bytes()
    rows_before = rows(ca_on_disk), rows(ca_on_disk, "crls")
    certs_before, files_before = certs(ca_on_disk), set(os.listdir(work))
    filler = fill(disk)

    result = run_minica(*writing(command, ca_on_disk, work))

    assert_refused(result)
    assert (ca_on_disk / "minica.db").read_bytes() == registry_before
    assert certs(ca_on_disk) == certs_before
    assert not (ca_on_disk / "crl.pem").exists()
    assert set(os.listdir(work)) == files_before
    assert debris(ca_on_disk) == []
    filler.unlink()
    assert (rows(ca_on_disk), rows(ca_on_disk, "crls")) == rows_before
    doctor = run_minica("doctor", "--ca", ca_on_disk)
    assert doctor.code == 0, doctor.stdout + doctor.stderr
    assert doctor.stdout.startswith("OK:")


def test_full_disk_errors_say_the_disk_is_full(ca_on_disk: Path, disk: Path, work: Path) -> None:
    fill(disk)
    unclear = {}
    for command in ("sign", "crl"):
        line = run_minica(*writing(command, ca_on_disk, work)).stderr.strip().splitlines()[0]
        if not re.search(r"no space|disk is full|disk full", line, re.IGNORECASE):
            unclear[command] = line
    assert unclear == {}


def test_nearly_full_disk_never_leaves_a_certificate_without_a_row(
    ca_on_disk: Path, disk: Path, work: Path
) -> None:
    """Sweep the free space from nothing upwards: every failure leaves registry and certs/
    as they were (whichever write hits ENOSPC: the journal, the certificate, the commit)."""
    registry_before, certs_before = (ca_on_disk / "minica.db").read_bytes(), certs(ca_on_disk)
    signed = False
    for free_pages in range(24):
        fill(disk, free_pages)
        result = run_minica(*writing("sign", ca_on_disk, work))
        if result.code == 0:
            signed = True
            break
        assert_refused(result)
        state = ((ca_on_disk / "minica.db").read_bytes(), certs(ca_on_disk))
        assert state == (registry_before, certs_before), f"{free_pages} pages free"
        assert not (work / "out.crt").exists()
    assert signed, "the sweep never left enough room to sign"
    (disk / "filler").unlink()
    assert len(certs(ca_on_disk)) == len(certs_before) + 1
    assert run_minica("doctor", "--ca", ca_on_disk).code == 0


@pytest.mark.parametrize(
    ("size", "folder_exists"),
    [("16k", False), ("48k", False), ("48k", True), ("full", False)],
    ids=["16k", "48k", "48k-existing-folder", "filled-2m"],
)
def test_init_into_a_full_disk_leaves_no_partial_ca(
    size: str, folder_exists: bool, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "disk", "2m" if size == "full" else size) as small:
        target = small / "ca"
        if folder_exists:
            target.mkdir()
        if size == "full":
            fill(small)
        before = sorted(os.listdir(small))

        result = run_minica("init", "--ca", target)

        assert_refused(result, str(target))
        assert sorted(os.listdir(small)) == before
        assert not folder_exists or list(target.iterdir()) == []


# ---------------------------------------------------------------------------------------
# Passphrases


@pytest.fixture(scope="module")
def encrypted_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("encrypted")
    (base / "pass").write_text(PASSPHRASE + "\n")
    result = run_minica("init", "--ca", base / "ca", "--passphrase-file", base / "pass")
    assert result.code == 0, result.stderr
    assert PASSPHRASE not in result.stdout + result.stderr
    (base / "request.csr").write_bytes(csr())
    return base


@pytest.fixture
def encrypted(tmp_path: Path, encrypted_template: Path) -> Path:
    """A folder holding ca/ (key encrypted with PASSPHRASE), pass (with a newline), request.csr."""
    shutil.copytree(encrypted_template, tmp_path / "enc")
    return tmp_path / "enc"


def sign_args(base: Path, out: str = "out.crt") -> list[str | Path]:
    return ["sign", "--ca", base / "ca", "-p", "server", base / "request.csr", "--out", base / out]


def assert_no_secret(base: Path, *results: Result) -> None:
    for result in results:
        assert PASSPHRASE not in result.stdout + result.stderr
    for path in (base / "ca").rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path


def test_init_with_a_passphrase_file_encrypts_the_key_without_the_newline(
    encrypted: Path,
) -> None:
    data = (encrypted / "ca" / "private" / "ca.key").read_bytes()
    assert data.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    serialization.load_pem_private_key(data, PASSPHRASE.encode())
    with pytest.raises(ValueError):
        serialization.load_pem_private_key(data, PASSPHRASE.encode() + b"\n")
    assert_no_secret(encrypted)


def test_sign_without_a_passphrase_source_fails_at_once(encrypted: Path) -> None:
    started = time.monotonic()
    result = run_minica(*sign_args(encrypted), timeout=30)
    assert time.monotonic() - started < 15
    assert_refused(result, "encrypted", "no passphrase")
    hint = result.stderr.strip().splitlines()[-1]
    assert hint.startswith("hint: ")
    assert "--passphrase-file" in hint and "MINICA_CA_PASSPHRASE" in hint
    assert rows(encrypted / "ca") == [] and not (encrypted / "out.crt").exists()


@pytest.mark.parametrize(
    "wrong", ["not the passphrase\n", PASSPHRASE + "\n\n", PASSPHRASE.upper() + "\n"]
)
def test_a_wrong_passphrase_is_a_clear_error(wrong: str, encrypted: Path) -> None:
    (encrypted / "wrong").write_text(wrong)
    result = run_minica(*sign_args(encrypted), "--passphrase-file", encrypted / "wrong")
    assert_refused(result, "wrong passphrase")
    assert rows(encrypted / "ca") == []
    assert_no_secret(encrypted, result)


def test_the_passphrase_file_and_the_environment_both_work(encrypted: Path) -> None:
    ca = encrypted / "ca"
    by_file = run_minica(*sign_args(encrypted, "a.crt"), "--passphrase-file", encrypted / "pass")
    by_env = run_minica(*sign_args(encrypted, "b.crt"), env={"MINICA_CA_PASSPHRASE": PASSPHRASE})
    crl = run_minica("crl", "--ca", ca, env={"MINICA_CA_PASSPHRASE": PASSPHRASE})
    assert [by_file.code, by_env.code, crl.code] == [0, 0, 0], by_file.stderr + by_env.stderr
    assert (len(rows(ca)), len(rows(ca, "crls"))) == (2, 1)
    assert_no_secret(encrypted, by_file, by_env, crl)


def run_on_a_terminal(args: list[str | Path], answer: str, timeout: float = 30) -> tuple[int, str]:
    """Run the CLI with a pty as its terminal; answer the passphrase prompt. (code, output)."""
    argv, env = minica_argv(*args), minica_env()
    pid, terminal = pty.fork()
    if pid == 0:  # the child: exec at once, whatever happens
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    output, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.2)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if not answered and b"passphrase" in output.lower():
                os.write(terminal, answer.encode() + b"\n")
                answered = True
        else:
            os.kill(pid, 9)
            pytest.fail(f"no exit within {timeout}s; output so far: {output!r}")
    finally:
        os.close(terminal)
    _, status = os.waitpid(pid, 0)
    assert answered, output
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_an_interactive_prompt_on_a_terminal_works(encrypted: Path) -> None:
    code, output = run_on_a_terminal(sign_args(encrypted), PASSPHRASE)
    assert code == 0, output
    assert "passphrase" in output.lower() and "signed " in output
    assert PASSPHRASE not in output  # the terminal did not echo it
    assert (encrypted / "out.crt").exists()
    assert_no_secret(encrypted)


def test_a_wrong_answer_to_the_prompt_is_a_clear_error(encrypted: Path) -> None:
    code, output = run_on_a_terminal(sign_args(encrypted), "not it")
    assert code == 1, output
    assert "error: " in output and "wrong passphrase" in output and "Traceback" not in output
    assert rows(encrypted / "ca") == []


@pytest.mark.parametrize("command", ["init", "sign", "issue", "renew", "crl", "export", "doctor"])
def test_no_option_takes_a_passphrase_on_the_command_line(command: str) -> None:
    result = run_minica(command, "--help", env={"COLUMNS": "200"})  # no option names cut
    assert result.code == 0, result.stderr
    options = set(re.findall(r"--[a-z][a-z0-9-]*", result.stdout))
    secret_like = {o for o in options if re.search(r"pass|secret|password|pin\b|pwd", o)}
    assert "--passphrase-file" in secret_like
    assert {o for o in secret_like if not o.endswith("-file")} == set()


# ---------------------------------------------------------------------------------------
# Files: modes under umask 000, symlinks at key paths, overwriting


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_init_under_umask_000_keeps_the_key_private(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert run_minica("init", "--ca", ca, umask=0).code == 0
    assert mode(ca / "private") == 0o700
    assert mode(ca / "private" / "ca.key") == 0o600


def test_init_under_umask_000_makes_no_world_writable_folder(tmp_path: Path) -> None:
    ca = tmp_path / "ca"
    assert run_minica("init", "--ca", ca, umask=0).code == 0
    writable = {
        str(p.relative_to(tmp_path)): oct(mode(p))
        for p in [ca, *ca.rglob("*")]
        if mode(p) & (stat.S_IWGRP | stat.S_IWOTH)
    }
    assert writable == {}  # anyone could swap ca.crt, the registry or private/ itself


def test_req_issue_and_export_keys_are_0600_under_umask_000(cli_ca: Path, work: Path) -> None:
    req = run_minica("req", "--cn", HOST, "--dns", HOST, "--out", work / "r.csr", umask=0)
    issue = run_minica(
        "issue", "--ca", cli_ca, "-p", "server", "--cn", HOST, "--out", work / "i.crt", umask=0
    )
    assert (req.code, issue.code) == (0, 0), req.stderr + issue.stderr
    (work / "p12pass").write_text("p12 secret\n")
    export = run_minica(
        "export", "--ca", cli_ca, work / "i.crt", "--key", work / "i.key",
        "--p12", work / "i.p12", "--passphrase-file", work / "p12pass", umask=0,
    )  # fmt: skip
    assert export.code == 0, export.stderr
    assert {name: mode(work / name) for name in ("r.key", "i.key", "i.p12")} == dict.fromkeys(
        ("r.key", "i.key", "i.p12"), 0o600
    )


def key_writing(command: str, ca: Path, work: Path, key: Path) -> list[str | Path]:
    if command == "req":
        return ["req", "--cn", HOST, "--dns", HOST, "--out", work / "x.csr", "--key-out", key]
    return ["issue", "--ca", ca, "-p", "server", "--cn", HOST, "--out", work / "x.crt",
            "--key-out", key]  # fmt: skip


@pytest.mark.parametrize("target_exists", [True, False], ids=["target-exists", "dangling"])
@pytest.mark.parametrize("command", ["req", "issue"])
def test_a_symlink_at_the_key_path_is_refused_and_not_followed(
    command: str, target_exists: bool, cli_ca: Path, work: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "victim"
    if target_exists:
        target.write_bytes(b"someone else's file\n")
    link = work / "link.key"
    link.symlink_to(target)
    before = snapshot(cli_ca)

    result = run_minica(*key_writing(command, cli_ca, work, link))

    assert_refused(result, str(link), "already exists")
    assert link.is_symlink() and os.readlink(link) == str(target)
    if target_exists:
        assert target.read_bytes() == b"someone else's file\n"
    assert sorted(os.listdir(elsewhere)) == (["victim"] if target_exists else [])
    assert snapshot(cli_ca) == before
    assert not (work / "x.csr").exists() and not (work / "x.crt").exists()


def test_export_never_overwrites_an_existing_p12(cli_ca: Path, work: Path) -> None:
    issued = run_minica(
        "issue", "--ca", cli_ca, "-p", "server", "--cn", HOST, "--out", work / "i.crt"
    )
    assert issued.code == 0, issued.stderr
    (work / "p12pass").write_text("p12 secret\n")
    (work / "i.p12").write_bytes(b"precious old bundle")
    result = run_minica(
        "export", "--ca", cli_ca, work / "i.crt", "--key", work / "i.key",
        "--p12", work / "i.p12", "--passphrase-file", work / "p12pass",
    )  # fmt: skip
    assert_refused(result, "already exists")
    assert (work / "i.p12").read_bytes() == b"precious old bundle"


def test_out_over_an_existing_file_is_replaced_by_a_rename(cli_ca: Path, work: Path) -> None:
    out = work / "out.crt"
    out.write_bytes(b"old certificate\n")
    (work / "old-link.crt").hardlink_to(out)  # a rename leaves the old inode to this name
    inode = out.stat().st_ino

    result = run_minica(*writing("sign", cli_ca, work))

    assert result.code == 0, result.stderr
    assert out.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert out.stat().st_ino != inode
    assert (work / "old-link.crt").read_bytes() == b"old certificate\n"
    assert debris(work) == [] and debris(cli_ca) == []


# ---------------------------------------------------------------------------------------
# Bad input not covered by test_bad_input.py


def sign_bytes(ca: Path, work: Path, data: bytes, *args: str) -> Result:
    (work / "input.csr").write_bytes(data)
    return run_minica(
        "sign", "--ca", ca, "-p", "server", work / "input.csr", "--out", work / "o.crt", *args
    )


def test_a_csr_with_1001_names_is_refused(cli_ca: Path, work: Path) -> None:
    names = tuple(f"h{i}.example.test" for i in range(1001))
    before = snapshot(cli_ca)
    result = sign_bytes(cli_ca, work, csr(cn="h0.example.test", dns=names))
    assert_refused(result, "1001 names", "too many")
    assert snapshot(cli_ca) == before and not (work / "o.crt").exists()


def test_a_csr_with_1000_names_is_signed(cli_ca: Path, work: Path) -> None:
    names = tuple(f"h{i}.example.test" for i in range(1000))
    result = sign_bytes(cli_ca, work, csr(cn="h0.example.test", dns=names))
    assert result.code == 0, result.stderr
    assert san_dns(work / "o.crt") == list(names)


def test_the_name_limit_holds_after_the_cn_is_copied_into_the_names(
    cli_ca: Path, work: Path
) -> None:
    names = tuple(f"h{i}.example.test" for i in range(1000))
    result = sign_bytes(cli_ca, work, csr(cn="extra.example.test", dns=names))
    if result.code == 0:
        assert len(san_dns(work / "o.crt")) <= 1000
    else:
        assert_refused(result, "too many")


@pytest.mark.parametrize(
    "name",
    [b"a\x00.example.test", b"*.*.example.test", b"a*.example.test", b"*a.example.test"],
    ids=["nul-byte", "double-wildcard", "partial-wildcard-suffix", "partial-wildcard-prefix"],
)
def test_a_malformed_dns_name_in_a_csr_is_refused(name: bytes, cli_ca: Path, work: Path) -> None:
    before = snapshot(cli_ca)
    result = sign_bytes(cli_ca, work, csr(cn="Some Host", raw_dns=(name,)))
    assert_refused(result, "DNS name", "not a valid host name")
    assert snapshot(cli_ca) == before and not (work / "o.crt").exists()


def test_a_unicode_dns_name_in_a_csr_is_signed_as_its_a_label(cli_ca: Path, work: Path) -> None:
    data = csr(cn="Bücher Shop", raw_dns=("bücher.example".encode(),))
    result = sign_bytes(cli_ca, work, data)
    assert result.code == 0, result.stderr
    assert san_dns(work / "o.crt") == ["xn--bcher-kva.example"]


HUGE = "99999999999"


@pytest.mark.parametrize("command", ["sign", "issue", "renew", "crl", "init"])
def test_a_huge_days_value_is_a_clear_error(command: str, cli_ca: Path, work: Path) -> None:
    if command == "init":
        args: list[str] = ["init", "--ca", str(work / "new-ca")]
    else:
        args = writing(command, cli_ca, work)
    before = snapshot(cli_ca)
    result = run_minica(*args, "--days", HUGE)
    assert_refused(result, HUGE)
    assert snapshot(cli_ca) == before  # crl: no CRL number spent either
    assert not (work / "new-ca").exists()


def test_a_uri_with_an_unbalanced_bracket_is_a_clear_error(work: Path) -> None:
    result = run_minica("req", "--cn", HOST, "--uri", "spiffe://[lab/app", "--out", work / "u.csr")
    assert_refused(result, "spiffe://[lab/app")
    assert not (work / "u.csr").exists() and not (work / "u.key").exists()


def corrupted(where: str) -> bytes:
    """A valid CSR with one field broken: its version, or its EC public key point."""
    der = bytearray(x509.load_pem_x509_csr(csr()).public_bytes(serialization.Encoding.DER))
    if where == "version":
        index = der.index(b"\x02\x01\x00") + 2  # the first INTEGER is the CSR's version
        der[index] = 0x01
    else:
        index = der.index(b"\x03\x42\x00\x04") + 4  # the point's first byte of X
        der[index] ^= 0x01  # (almost surely) no longer on the curve
    return bytes(der)


@pytest.mark.parametrize("where", ["version", "public-key"])
def test_a_csr_with_a_broken_field_is_a_clear_error(where: str, cli_ca: Path, work: Path) -> None:
    before = snapshot(cli_ca)
    result = sign_bytes(cli_ca, work, corrupted(where))
    assert_refused(result, "input.csr")
    assert snapshot(cli_ca) == before


UNSAFE_PROFILE = """\
description: evil
extends: server
validity_days: !!python/object/apply:os.system ["touch {marker}"]
"""
DUPLICATE_KEY_PROFILE = """\
description: a repeated key must not silently win
extends: server
names:
  allowed: [dns]
  allowed: [dns, ip, email, uri]
"""


@pytest.mark.parametrize("where", ["path", "ca-profiles"])
def test_a_profile_with_an_unsafe_yaml_tag_is_refused(
    where: str, cli_ca: Path, work: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-marker"
    text = UNSAFE_PROFILE.format(marker=marker)
    if where == "path":
        profile = work / "evil.yaml"
        profile.write_text(text)
        before = snapshot(cli_ca)
    else:
        (cli_ca / "profiles" / "evil.yaml").write_text(text)
        profile, before = Path("evil"), snapshot(cli_ca)

    result = run_minica("sign", "--ca", cli_ca, "-p", profile, work / "request.csr")
    listing = run_minica("profiles", "--ca", cli_ca) if where == "ca-profiles" else None

    assert_refused(result, "evil.yaml", "not a valid profile YAML")
    if listing is not None:
        assert_refused(listing, "evil.yaml")
    assert not marker.exists()
    assert snapshot(cli_ca) == before


def test_a_profile_with_a_duplicate_key_is_refused(cli_ca: Path, work: Path) -> None:
    (work / "dup.yaml").write_text(DUPLICATE_KEY_PROFILE)
    before = snapshot(cli_ca)
    result = run_minica("sign", "--ca", cli_ca, "-p", work / "dup.yaml", work / "request.csr")
    assert_refused(result, "dup.yaml", "duplicate key 'allowed'")
    assert snapshot(cli_ca) == before


def billion_laughs(levels: int) -> str:
    """Nested YAML aliases: ``levels`` lines expand to 9**levels strings."""
    lines = ["x0: &x0 [" + ", ".join(["lol"] * 9) + "]"]
    lines += [f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join([*lines, "description: laughs", f"key_usage: [*x{levels - 1}]", ""])


def test_a_profile_of_nested_yaml_aliases_is_refused_with_a_short_message(
    cli_ca: Path, work: Path
) -> None:
    (work / "laughs.yaml").write_text(billion_laughs(7))  # 4.8 million strings
    started = time.monotonic()
    result = run_minica("sign", "--ca", cli_ca, "-p", work / "laughs.yaml", work / "request.csr")
    assert time.monotonic() - started < 20
    assert_refused(result, "laughs.yaml")
    size = len(result.stderr)
    assert size < 2000, f"{size} characters of error"
