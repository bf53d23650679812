"""Where outputs go, through the real CLI: `-`, regular files, symlinks, FIFOs, devices,
folders; two outputs naming one file; standard output or error that cannot be written.

Each test looks at the target afterwards: still a FIFO, a device or a symlink, the key
as it was, no temporary file left behind. /dev/null and /dev/stdout are the machine's
own (tests only write to them); as root, a wrong rename would replace them, which is
what these tests exist to catch.
"""

from __future__ import annotations

import fcntl
import os
import pty
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import pytest
from conftest import Result, assert_refused, run_minica, snapshot
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from minica import CertificateAuthority, Subject, atomic

HOST = "www.example.test"
CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
FULL = "error: cannot write to standard output: No space left on device\n"

# ---------------------------------------------------------------------------------------
# Helpers


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder holding request.csr (a `server` request for www.example.test)."""
    folder = tmp_path / "work"
    folder.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (folder / "request.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return folder


def run(
    *args: str | Path, stdout: int | IO[bytes] | None = None, stderr: int | IO[bytes] | None = None
) -> Result:
    """`python -m minica ARGS` with standard output (and error) where the test says;
    a stream not given is captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINICA_")}
    completed = subprocess.run(
        [sys.executable, "-m", "minica", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE if stderr is None else stderr,
        env=env,
        timeout=120,
    )
    decoded = ((stream or b"").decode() for stream in (completed.stdout, completed.stderr))
    return Result(completed.returncode, *decoded)


def sign(ca: Path, work: Path, *args: str | Path) -> list[str | Path]:
    return ["sign", "--ca", ca, "-p", "server", work / "request.csr", *args]


def issue(ca: Path, *args: str | Path) -> list[str | Path]:
    return ["issue", "--ca", ca, "-p", "server", "--cn", HOST, *args]


def debris(*folders: Path) -> list[str]:
    """Temporary files a write left behind."""
    return [
        str(path)
        for folder in folders
        for path in folder.iterdir()
        if atomic.TEMPORARY_MARK in path.name
    ]


def assert_character_device(path: str) -> None:
    assert os.path.exists(path)
    assert stat.S_ISCHR(os.lstat(path).st_mode), f"{path} is no longer a character device"


def registered(ca: Path) -> int:
    return len(list((ca / "certs").iterdir()))


@contextmanager
def fifo_reader(path: Path) -> Iterator[list[bytes]]:
    """A FIFO at ``path`` with a reader thread; yields what it read (once the block ends)."""
    os.mkfifo(path)
    received: list[bytes] = []

    def read() -> None:
        with open(path, "rb") as fifo:
            received.append(fifo.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield received
    finally:
        if not received and reader.is_alive():  # if minica never opened it, the reader
            with suppress(OSError):  # still waits in open(): a writer of ours lets it go
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=30)
        assert not reader.is_alive()


# ---------------------------------------------------------------------------------------
# `-` is standard output


def test_out_dash_writes_the_certificate_to_stdout(ca_dir: Path, work: Path) -> None:
    result = run(*sign(ca_dir, work, "--out", "-"))
    assert result.code == 0, result.stderr
    assert x509.load_pem_x509_certificate(result.stdout.encode()).subject.rfc4514_string() == (
        f"CN={HOST}"
    )
    assert not (work / "-").exists() and debris(work) == []


def test_crl_out_dash_writes_the_crl_to_stdout(ca_dir: Path) -> None:
    result = run("crl", "--ca", ca_dir, "--out", "-")
    assert result.code == 0, result.stderr
    assert x509.load_pem_x509_crl(result.stdout.encode()).next_update_utc is not None


def test_req_out_dash_needs_a_key_path_and_then_writes_the_csr_to_stdout(work: Path) -> None:
    refused = run_minica("req", "--cn", HOST, "--dns", HOST, "--out", "-", cwd=work)
    assert_refused(refused, "--out -", "--key-out")
    assert not (work / "-.key").exists()

    result = run_minica(
        "req", "--cn", HOST, "--dns", HOST, "--out", "-", "--key-out", work / "new.key"
    )
    assert result.code == 0, result.stderr
    assert x509.load_pem_x509_csr(result.stdout.encode()).is_signature_valid
    assert (work / "new.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert result.stderr == f"CSR written to standard output, key to {work / 'new.key'}\n"


@pytest.mark.parametrize(
    "command",
    [
        ["req", "--cn", HOST, "--dns", HOST, "--out", "{work}/x.csr", "--key-out", "-"],
        ["issue", "--ca", "{ca}", "-p", "server", "--cn", HOST, "--out", "{work}/x.crt",
         "--key-out", "-"],
        ["export", "--ca", "{ca}", "{work}/leaf.crt", "--key", "{work}/leaf.key", "--p12", "-"],
    ],
    ids=["req", "issue", "export"],
)  # fmt: skip
def test_a_key_never_goes_to_stdout(command: list[str], ca_dir: Path, work: Path) -> None:
    (work / "leaf.crt").write_bytes((ca_dir / "ca.crt").read_bytes())
    (work / "leaf.key").write_bytes(b"not read: refused before")
    before, files_before = snapshot(ca_dir), set(os.listdir(work))
    result = run(*(arg.format(work=work, ca=ca_dir) for arg in command))
    assert_refused(result, "never writes a key to standard output")
    assert result.stdout == ""
    assert snapshot(ca_dir) == before and set(os.listdir(work)) == files_before


# ---------------------------------------------------------------------------------------
# Devices: written through, never replaced


def test_out_dev_null_writes_through_and_keeps_the_device(ca_dir: Path, work: Path) -> None:
    before = registered(ca_dir)
    result = run(*sign(ca_dir, work, "--out", "/dev/null", "--chain-out", "/dev/null"))
    assert result.code == 0, result.stderr
    assert_character_device("/dev/null")
    assert registered(ca_dir) == before + 1
    assert debris(Path("/dev")) == []


def test_a_symlink_to_dev_null_stays_a_symlink(ca_dir: Path, work: Path) -> None:
    link = work / "null.crt"
    link.symlink_to("/dev/null")
    result = run(*sign(ca_dir, work, "--out", link))
    assert result.code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == "/dev/null"
    assert_character_device("/dev/null")
    assert debris(work, Path("/dev")) == []


def test_out_dev_stdout_on_a_pipe_writes_to_the_pipe(ca_dir: Path, work: Path) -> None:
    result = run(*sign(ca_dir, work, "--out", "/dev/stdout"))
    assert result.code == 0, result.stderr
    assert result.stdout.startswith(CERTIFICATE.decode())
    assert os.path.islink("/dev/stdout")


def test_out_dev_stdout_appends_to_a_file_stdout_appends_to(
    ca_dir: Path, work: Path, tmp_path: Path
) -> None:
    """`>> log`: the certificate goes after what is there, through the shell's own
    descriptor; the log is neither replaced nor written from its start."""
    log = tmp_path / "log"
    log.write_bytes(b"earlier lines\n")
    inode = log.stat().st_ino
    with open(log, "ab") as appending:
        result = run(*sign(ca_dir, work, "--out", "/dev/stdout"), stdout=appending)
    assert result.code == 0, result.stderr
    data = log.read_bytes()
    assert data.startswith(b"earlier lines\n" + CERTIFICATE)
    assert log.stat().st_ino == inode
    assert os.path.islink("/dev/stdout")


def test_the_key_has_no_default_path_next_to_a_device(ca_dir: Path) -> None:
    before = snapshot(ca_dir)
    result = run(*issue(ca_dir, "--out", "/dev/null"))
    assert_refused(result, "--out /dev/null", "--key-out")
    assert not os.path.lexists("/dev/null.key")
    assert_character_device("/dev/null")
    assert snapshot(ca_dir) == before


# ---------------------------------------------------------------------------------------
# FIFOs: written through, still FIFOs afterwards


@pytest.mark.parametrize("option", ["--out", "--chain-out"])
def test_sign_writes_through_a_fifo(option: str, ca_dir: Path, work: Path) -> None:
    fifo = work / "fifo"
    with fifo_reader(fifo) as received:
        extra: list[str | Path] = [] if option == "--out" else ["--out", work / "leaf.crt"]
        result = run(*sign(ca_dir, work, option, fifo, *extra))
    assert result.code == 0, result.stderr
    assert received and received[0].startswith(CERTIFICATE)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert debris(work) == []


def test_crl_writes_through_a_fifo(ca_dir: Path, work: Path) -> None:
    fifo = work / "crl.fifo"
    with fifo_reader(fifo) as received:
        result = run("crl", "--ca", ca_dir, "--out", fifo)
    assert result.code == 0, result.stderr
    assert x509.load_pem_x509_crl(received[0]).issuer.rfc4514_string()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_issue_writes_the_certificate_through_a_fifo(ca_dir: Path, work: Path) -> None:
    fifo = work / "cert.fifo"
    with fifo_reader(fifo) as received:
        result = run(*issue(ca_dir, "--out", fifo, "--key-out", work / "cert.key"))
    assert result.code == 0, result.stderr
    assert received[0].startswith(CERTIFICATE)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert (work / "cert.key").stat().st_mode & 0o777 == 0o600


def test_a_fifo_at_the_key_path_is_refused_and_kept(ca_dir: Path, work: Path) -> None:
    fifo = work / "cert.key"
    os.mkfifo(fifo)  # no reader: opening it for writing would hang, so nothing may try
    before = snapshot(ca_dir)
    result = run(*issue(ca_dir, "--out", work / "cert.crt"))
    assert_refused(result, str(fifo), "already exists")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert snapshot(ca_dir) == before and sorted(os.listdir(work)) == ["cert.key", "request.csr"]


# ---------------------------------------------------------------------------------------
# Symlinks to regular files, folders, dangling symlinks


def test_a_symlink_to_a_file_keeps_the_link_and_replaces_its_target(
    ca_dir: Path, work: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "current.crt"
    target.write_bytes(b"old certificate\n")
    (elsewhere / "old.crt").hardlink_to(target)  # the rename leaves the old bytes to this name
    link = work / "live.crt"
    link.symlink_to(target)

    result = run(*sign(ca_dir, work, "--out", link))

    assert result.code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes().startswith(CERTIFICATE)
    assert (elsewhere / "old.crt").read_bytes() == b"old certificate\n"  # replaced, not edited
    assert debris(work, elsewhere) == []


def test_a_dangling_symlink_is_refused_before_signing(
    ca_dir: Path, work: Path, tmp_path: Path
) -> None:
    link = work / "out.crt"
    link.symlink_to(tmp_path / "nowhere" / "x.crt")
    before = snapshot(ca_dir)
    result = run(*sign(ca_dir, work, "--out", link))
    assert_refused(result, str(link), "symlink", "does not exist")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
    assert snapshot(ca_dir) == before


@pytest.mark.parametrize("option", ["--out", "--chain-out"])
def test_a_folder_is_refused_before_signing(option: str, ca_dir: Path, work: Path) -> None:
    folder = work / "folder"
    folder.mkdir()
    before = snapshot(ca_dir)
    extra: list[str | Path] = [] if option == "--out" else ["--out", work / "leaf.crt"]
    result = run(*sign(ca_dir, work, option, folder, *extra))
    assert_refused(result, str(folder), "folder")
    assert folder.is_dir() and list(folder.iterdir()) == []
    assert snapshot(ca_dir) == before


def test_a_file_swapped_for_a_symlink_while_being_written_is_looked_at_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What write_atomic decided (a regular file: rename over it) is checked again just
    before the rename: here the path became a symlink to /dev/null meanwhile, so the
    rename must not happen and the next look writes through the link instead."""
    path = tmp_path / "out.crt"
    path.write_bytes(b"a regular file when looked at\n")
    stale = atomic.output_target(path)
    path.unlink()
    path.symlink_to("/dev/null")
    decisions = iter([stale])
    real = atomic.output_target
    monkeypatch.setattr(atomic, "output_target", lambda p: next(decisions, None) or real(p))

    atomic.write_atomic(path, b"new contents\n")

    assert path.is_symlink() and os.readlink(path) == "/dev/null"
    assert_character_device("/dev/null")
    assert debris(tmp_path) == []


# ---------------------------------------------------------------------------------------
# Two outputs naming one file: refused before anything is made


def test_issue_out_on_the_default_key_path_is_refused(ca_dir: Path, work: Path) -> None:
    before = snapshot(ca_dir)
    result = run(*issue(ca_dir, "--out", work / "a.key"))
    assert_refused(result, "--out", "--key-out", str(work / "a.key"))
    assert snapshot(ca_dir) == before
    assert not (work / "a.key").exists()


def test_issue_chain_out_on_the_key_path_is_refused(ca_dir: Path, work: Path) -> None:
    before = snapshot(ca_dir)
    key = work / "k.pem"
    result = run(*issue(ca_dir, "--out", work / "c.crt", "--key-out", key, "--chain-out", key))
    assert_refused(result, "--key-out", "--chain-out", str(key))
    assert snapshot(ca_dir) == before
    assert sorted(os.listdir(work)) == ["request.csr"]


def test_issue_chain_out_on_the_default_key_path_through_a_symlink_is_refused(
    ca_dir: Path, work: Path
) -> None:
    alias = work / "chain.pem"
    alias.symlink_to(work / "c.key")  # dangling until the key would be made
    before = snapshot(ca_dir)
    result = run(*issue(ca_dir, "--out", work / "c.crt", "--chain-out", alias))
    assert_refused(result, "--key-out", "--chain-out")
    assert snapshot(ca_dir) == before
    assert not (work / "c.key").exists() and alias.is_symlink()


def test_issue_out_and_chain_out_as_hard_links_of_one_file_are_refused(
    ca_dir: Path, work: Path
) -> None:
    (work / "a.crt").write_bytes(b"old\n")
    (work / "b.crt").hardlink_to(work / "a.crt")
    before = snapshot(ca_dir)
    result = run(
        *issue(ca_dir, "--out", work / "a.crt", "--key-out", work / "a.key",
               "--chain-out", work / "b.crt")
    )  # fmt: skip
    assert_refused(result, "--out", "--chain-out")
    assert snapshot(ca_dir) == before
    assert (work / "a.crt").read_bytes() == b"old\n" and not (work / "a.key").exists()


def test_req_out_on_the_default_key_path_is_refused(work: Path) -> None:
    result = run("req", "--cn", HOST, "--dns", HOST, "--out", work / "c.key")
    assert_refused(result, "--out", "--key-out", str(work / "c.key"))
    assert sorted(os.listdir(work)) == ["request.csr"]


def test_req_out_on_the_key_it_reads_is_refused_and_the_key_kept(work: Path) -> None:
    key = work / "existing.key"
    made = run("req", "--cn", HOST, "--dns", HOST, "--out", work / "x.csr", "--key-out", key)
    assert made.code == 0, made.stderr
    before = key.read_bytes()
    result = run("req", "--cn", HOST, "--dns", HOST, "--key", key, "--out", key)
    assert_refused(result, "--out", "--key")
    assert key.read_bytes() == before and key.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------------------------
# Where things went


def test_issue_says_where_the_certificate_key_and_chain_went(ca_dir: Path, work: Path) -> None:
    result = run(*issue(ca_dir, "--out", work / "w.crt", "--chain-out", work / "full.crt"))
    assert result.code == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"certificate written to {work / 'w.crt'}, key to {work / 'w.key'}, "
        f"chain to {work / 'full.crt'}"
    )
    assert (work / "w.key").exists() and (work / "full.crt").read_bytes().startswith(CERTIFICATE)


def test_req_says_where_the_csr_and_key_went(work: Path) -> None:
    result = run("req", "--cn", HOST, "--dns", HOST, "--out", work / "www.csr")
    assert result.code == 0, result.stderr
    assert result.stderr == f"CSR written to {work / 'www.csr'}, key to {work / 'www.key'}\n"


# ---------------------------------------------------------------------------------------
# Standard output that cannot be written: a full device, a closed pipe, EIO, closed


def stdout_commands(ca: Path, work: Path) -> dict[str, list[str | Path]]:
    """A command line each that writes to standard output."""
    assert run(*sign(ca, work, "--out", work / "leaf.crt")).code == 0
    return {
        "list": ["list", "--ca", ca],
        "list --json": ["list", "--ca", ca, "--json"],
        "show": ["show", work / "leaf.crt"],
        "show --json": ["show", work / "leaf.crt", "--json"],
        "sign": sign(ca, work),
        "sign --json": sign(ca, work, "--json", "--out", work / "j.crt"),
        "crl --out -": ["crl", "--ca", ca, "--out", "-"],
        "verify": ["verify", "--ca", ca, work / "leaf.crt"],
        "profiles": ["profiles", "--ca", ca],
        "--version": ["--version"],
        "--help": ["--help"],
    }


def test_every_command_on_a_full_stdout_says_so_and_exits_1(ca_dir: Path, work: Path) -> None:
    outcomes = {}
    for name, args in stdout_commands(ca_dir, work).items():
        with open("/dev/full", "wb") as full:
            result = run(*args, stdout=full)
        outcomes[name] = (result.code, result.stderr.splitlines()[-1:])
    assert outcomes == dict.fromkeys(outcomes, (1, [FULL.strip()]))


def test_a_full_stdout_is_one_error_line_and_nothing_else(ca_dir: Path) -> None:
    with open("/dev/full", "wb") as full:
        result = run("list", "--ca", ca_dir, stdout=full)
    assert (result.code, result.stderr) == (1, FULL)


def closed_pipe() -> int:
    """The write end of a pipe whose reader has gone (`minica ... | head -0`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    return write_end


def test_every_command_on_a_closed_pipe_exits_1_quietly(ca_dir: Path, work: Path) -> None:
    outcomes = {}
    for name, args in stdout_commands(ca_dir, work).items():
        pipe = closed_pipe()
        try:
            result = run(*args, stdout=pipe)
        finally:
            os.close(pipe)
        outcomes[name] = (result.code, result.stderr)
    # No traceback, no "Exception ignored ... BrokenPipeError" at exit (exit 120 then)
    assert outcomes == dict.fromkeys(outcomes, (1, ""))


def test_a_pipe_closed_while_minica_writes_exits_1_quietly(ca_dir: Path) -> None:
    """`minica list | head -1`: the reader takes a little, then goes away while minica is
    still writing (the listing is larger than the pipe, shrunk to one page, can hold)."""
    authority = CertificateAuthority.open(ca_dir)
    for number in range(100):  # ~13 KB of listing
        authority.issue(authority.profile("client"), Subject(common_name=f"client {number:03}"))
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINICA_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "minica", "list", "--ca", ca_dir],
        stdout=write_end,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(write_end)
    first = os.read(read_end, 100)
    os.close(read_end)
    _, stderr = process.communicate(timeout=120)
    assert len(first) == 100  # it had started
    assert (process.returncode, stderr) == (1, b"")


def test_an_io_error_on_stdout_is_reported(ca_dir: Path) -> None:
    """A terminal whose other side has gone (a closed ssh session) fails writes with EIO."""
    master, terminal = pty.openpty()
    os.close(master)
    try:
        result = run("list", "--ca", ca_dir, stdout=terminal)
    finally:
        os.close(terminal)
    assert (result.code, result.stderr) == (1, "error: cannot write to standard output: "
                                                "Input/output error\n")  # fmt: skip


def test_a_closed_stdout_is_reported(ca_dir: Path, work: Path) -> None:
    shell = 'exec "$@" >&-'
    done = subprocess.run(
        ["bash", "-c", shell, "sh", sys.executable, "-m", "minica", *map(str, sign(ca_dir, work))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "error: cannot write to standard output: Bad file descriptor"
    )


def test_a_command_printing_nothing_to_stdout_does_not_care_that_it_is_full(
    ca_dir: Path, work: Path
) -> None:
    with open("/dev/full", "wb") as full:
        result = run(*sign(ca_dir, work, "--out", work / "x.crt"), stdout=full)
    assert result.code == 0, result.stderr
    assert (work / "x.crt").read_bytes().startswith(CERTIFICATE)


def test_a_full_stderr_ends_in_exit_1_without_a_traceback_at_exit(ca_dir: Path, work: Path) -> None:
    """The summary cannot be written: exit 1 (as GNU tools do for stderr), never the
    interpreter's exit 120; the error line itself cannot be shown either."""
    with open("/dev/full", "wb") as full:
        signed = run(*sign(ca_dir, work, "--out", work / "x.crt"), stderr=full)
        refused = run("show", work / "missing.crt", stderr=full)
    assert (signed.code, refused.code) == (1, 1)
