"""A CA folder survives concurrent minica processes and processes killed at any moment.

Everything here runs the real CLI in separate processes, sends real signals and looks at
the real files: the registry (read with sqlite3), certs/, the CRLs (read with cryptography)
and what `minica doctor` says about them.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypedDict

import pytest
from conftest import listing, minica_argv, minica_env, require_tool, run_minica
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from minica import CertificateAuthority, Names, Subject
from minica.issuer import Signer, certify, random_serial
from minica.keys import generate, private_key_pem
from minica.requests import Request, build_csr

RECOVERED = "unknown (recovered by doctor)"
# Reproducible kills: MINICA_CRASH_SEED=N replays (or varies) the crash test.
CRASH_SEED = int(os.environ.get("MINICA_CRASH_SEED") or 20240611)
CRASH_ITERATIONS = 45
CRASH_BUDGET_SECONDS = 35.0


# ---------------------------------------------------------------- processes

# A driver process runs a list of minica commands one after another and prints
# [{"args", "code", "stderr"}, ...] as JSON. DRIVER starts a `python -m minica` process per
# command (its own arguments after the job file: conftest's minica_argv());
# IN_PROCESS_DRIVER calls the CLI's entry point in a loop inside its one process
# (the same code from argv to exit code, without paying the ~0.3 s start-up every time;
# an uncaught exception counts as Python would: a traceback and exit 1).
DRIVER = """
import json, subprocess, sys
minica, results = sys.argv[2:], []
for args in json.load(open(sys.argv[1])):
    done = subprocess.run([*minica, *args], capture_output=True, text=True, timeout=120)
    results.append({"args": args, "code": done.returncode, "stderr": done.stderr})
json.dump(results, sys.stdout)
"""
IN_PROCESS_DRIVER = """
import contextlib, io, json, sys, traceback
from minica.cli import main
results, stdout = [], sys.stdout
for args in json.load(open(sys.argv[1])):
    sys.argv, stderr, code = ["minica", *args], io.StringIO(), 0
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            main()
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (exit.code is not None)
        except Exception:
            code = 1
            traceback.print_exc(file=stderr)
    results.append({"args": args, "code": code, "stderr": stderr.getvalue()})
json.dump(results, stdout)
"""


class Run(TypedDict):
    """One command a driver ran, as it reports it."""

    args: list[str]
    code: int
    stderr: str


def found(pattern: str, text: str) -> str:
    """The first group of ``pattern``'s first match in ``text``, which must have one."""
    match = re.search(pattern, text)
    assert match, (pattern, text)
    return match.group(1)


@contextmanager
def process_groups() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started in new sessions; whatever is still running at the end is killed
    with its whole group, so no child outlives the test."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            kill_group(process)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def run_drivers(
    jobs: list[list[list[str]]], workdir: Path, timeout: float, driver: str = DRIVER
) -> list[list[Run]]:
    """Start one driver process per job list, all at once; their results, in job order."""
    with process_groups() as started:
        for index, job in enumerate(jobs):
            job_file = workdir / f"job-{index}.json"
            job_file.write_text(json.dumps(job))
            started.append(
                subprocess.Popen(
                    [sys.executable, "-c", driver, str(job_file), *minica_argv()],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=minica_env(),
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + timeout
        outputs = []
        for process in started:
            stdout, stderr = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert process.returncode == 0, stderr.decode()
            outputs.append(json.loads(stdout))
    return outputs


# ---------------------------------------------------------------- the CA folder


def make_csrs(folder: Path, count: int, prefix: str = "host") -> list[Path]:
    """``count`` CSRs for the server profile, made in-process (they are input, not subject)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        name = f"{prefix}{index}.example.test"
        path = folder / f"{prefix}{index}.csr"
        path.write_bytes(
            build_csr(generate("ec-p256"), Subject(common_name=name), Names.parse(dns=[name]))
        )
        paths.append(path)
    return paths


@dataclass(frozen=True)
class State:
    """What is on disk: registry rows, revoked rows, CRL numbers handed out, certs/ files,
    leftovers of interrupted writes anywhere in the folder, and crl.pem's bytes."""

    rows: frozenset[str]
    revoked: frozenset[str]
    crl_numbers: frozenset[int]
    files: frozenset[str]
    leftovers: frozenset[str]
    crl_pem: bytes | None

    @property
    def orphans(self) -> frozenset[str]:
        return self.files - self.rows


def state(ca: Path) -> State:
    connection = sqlite3.connect(ca / "minica.db", timeout=30)
    try:
        certificates = connection.execute("SELECT serial, revoked_at FROM certificates").fetchall()
        numbers = [number for (number,) in connection.execute("SELECT number FROM crls")]
    finally:
        connection.close()
    crl_pem = ca / "crl.pem"
    return State(
        rows=frozenset(serial for serial, _ in certificates),
        revoked=frozenset(serial for serial, revoked_at in certificates if revoked_at),
        crl_numbers=frozenset(numbers),
        files=frozenset(path.stem for path in (ca / "certs").glob("*.crt")),
        leftovers=frozenset(
            str(path.relative_to(ca))
            for path in ca.rglob("*")
            if ".tmp-" in path.name or path.name.startswith(".minica-init-")
        ),
        crl_pem=crl_pem.read_bytes() if crl_pem.exists() else None,
    )


def crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def crl_serials(crl: x509.CertificateRevocationList) -> set[str]:
    return {format(entry.serial_number, "x") for entry in crl}


def assert_consistent(ca: Path, context: str = "") -> None:
    """Every registry row has its certs/<serial>.crt, every file its row, each file holds
    the certificate its name says, signed by this CA, and doctor agrees."""
    rows = {row["serial"] for row in listing(ca)}
    files = {path.stem: path for path in (ca / "certs").glob("*.crt")}
    assert rows == set(files), (context, sorted(rows - set(files)), sorted(set(files) - rows))
    ca_certificate = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    for serial, path in files.items():
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
        assert format(certificate.serial_number, "x") == serial, (context, path)
        certificate.verify_directly_issued_by(ca_certificate)
    doctor = run_minica("doctor", "--ca", ca)
    assert doctor.code == 0 and "is consistent" in doctor.stdout, (context, doctor.stdout)


def doctor(ca: Path, *options: str) -> tuple[int, str]:
    result = run_minica("doctor", "--ca", ca, *options)
    assert "Traceback" not in result.stderr, result.stderr
    return result.code, result.stdout + result.stderr


# ---------------------------------------------------------------- concurrency


# 8 processes x 25 signs, each process running the CLI entry point in a loop: one
# `python -m minica sign` per CSR costs ~0.35 s of CPU (80 of them took 22 s here), so
# process-per-command concurrency is left to the mixed test below.
SIGNERS, PER_SIGNER = 8, 25


def sign_args(ca: Path, csr: Path, out: Path) -> list[str]:
    return ["sign", "--ca", str(ca), "--profile", "server", str(csr), "--out", str(out)]


def test_eight_concurrent_signers_lose_no_row_and_repeat_no_serial(
    ca_dir: Path, tmp_path: Path
) -> None:
    total = SIGNERS * PER_SIGNER
    csrs = make_csrs(tmp_path / "csr", total)
    out = tmp_path / "out"
    out.mkdir()
    before = {row["serial"] for row in listing(ca_dir)}
    jobs = [
        [sign_args(ca_dir, csr, out / f"{csr.stem}.crt") for csr in csrs[signer::SIGNERS]]
        for signer in range(SIGNERS)
    ]
    started = time.monotonic()
    outputs = run_drivers(jobs, tmp_path, timeout=120, driver=IN_PROCESS_DRIVER)
    elapsed = time.monotonic() - started
    results = [run for output in outputs for run in output]

    failed = [run for run in results if run["code"] != 0]
    assert len(results) == total and not failed, failed[:3]
    serials = [found(r"signed ([0-9a-f]+) ", run["stderr"]) for run in results]
    assert len(set(serials)) == len(serials), "a serial was handed out twice"
    after = {row["serial"] for row in listing(ca_dir)}
    assert after - before == set(serials) and before <= after
    assert len(after) == len(before) + total
    for csr in csrs:  # what each signer delivered is what the CA folder recorded
        delivered = x509.load_pem_x509_certificate((out / f"{csr.stem}.crt").read_bytes())
        serial = format(delivered.serial_number, "x")
        assert (ca_dir / "certs" / f"{serial}.crt").read_bytes() == delivered.public_bytes(
            Encoding.PEM
        )
        assert delivered.subject.rfc4514_string() == f"CN={csr.stem}.example.test"
    assert_consistent(ca_dir)
    print(f"{len(results)} signs by {SIGNERS} processes in {elapsed:.1f} s")


def test_concurrent_revoke_crl_and_sign_give_distinct_crl_numbers_and_a_complete_crl(
    ca_dir: Path, tmp_path: Path
) -> None:
    authority = CertificateAuthority.open(ca_dir)  # setup: 24 certificates to revoke
    client = authority.profile("client")
    to_revoke = [
        format(
            authority.issue(client, Subject(common_name=f"user {i}"))[0].certificate.serial_number,
            "x",
        )
        for i in range(24)
    ]
    csrs = make_csrs(tmp_path / "csr", 12)
    crls = tmp_path / "crls"
    crls.mkdir()
    ca = str(ca_dir)
    revokers = [
        [["revoke", "--ca", ca, serial, "--reason", "superseded"] for serial in to_revoke[i::3]]
        for i in range(3)
    ]
    # even runs publish to the shared crl.pem, odd runs to a file of their own
    publishers = [
        [
            ["crl", "--ca", ca] + ([] if run % 2 == 0 else ["--out", str(crls / f"{p}-{run}.pem")])
            for run in range(8)
        ]
        for p in range(2)
    ]
    signers = [
        [sign_args(ca_dir, csr, csr.with_suffix(".crt")) for csr in csrs[i::2]] for i in range(2)
    ]
    outputs = run_drivers(revokers + publishers + signers, tmp_path, timeout=120)
    results = [run for output in outputs for run in output]
    failed = [run for run in results if run["code"] != 0]
    assert not failed, failed[:3]

    def number_of(run: Run) -> int:
        return int(found(r"CRL number (\d+) ", run["stderr"]))

    crl_runs = [run for output in outputs for run in output if run["args"][0] == "crl"]
    numbers = [number_of(run) for run in crl_runs]
    assert len(set(numbers)) == len(numbers), sorted(numbers)
    shared = max(number_of(run) for run in crl_runs if "--out" not in run["args"])
    published = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl_number(published) == shared, "crl.pem was overwritten by an older CRL"
    seen = [x509.load_pem_x509_crl(path.read_bytes()) for path in crls.glob("*.pem")]
    by_number = sorted([*seen, published], key=crl_number)
    for older, newer in itertools.pairwise(by_number):
        lost = crl_serials(older) - crl_serials(newer)
        assert not lost, f"CRL {crl_number(newer)} drops {lost} listed by {crl_number(older)}"

    final = run_minica("crl", "--ca", ca_dir)
    assert final.code == 0, final.stderr
    crl = x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes())
    assert crl_number(crl) > max(numbers)
    assert crl_serials(crl) == set(to_revoke)
    assert len(listing(ca_dir)) == 2 + 24 + 12
    assert_consistent(ca_dir)


def test_a_higher_crl_number_never_drops_a_revocation_a_lower_one_listed(
    ca_dir: Path, tmp_path: Path
) -> None:
    """Forces one interleaving with real processes: `crl` A starts while the registry's
    write lock is held here, waits for it and is stopped; X is revoked; `crl` B starts (and
    may finish, or wait for A); A goes on. Whichever CRL got the higher number must list
    every serial the lower one lists, and B, started after the revocation, lists X."""
    if not Path("/proc/self/wchan").exists():
        pytest.skip("needs /proc/PID/wchan to see a process wait for the lock")
    victim = next(row["serial"] for row in listing(ca_dir))
    lock = sqlite3.connect(ca_dir / "minica.db", timeout=30, isolation_level=None)

    def crl_process(name: str) -> subprocess.Popen[bytes]:
        command = minica_argv("crl", "--ca", ca_dir, "--out", tmp_path / f"{name}.pem")
        process = subprocess.Popen(
            command, stderr=subprocess.PIPE, env=minica_env(), start_new_session=True
        )
        started.append(process)
        return process

    with process_groups() as started:
        try:
            lock.execute("BEGIN IMMEDIATE")
            a = crl_process("a")
            wait_until_sleeping(a.pid, timeout=20)
            os.killpg(a.pid, signal.SIGSTOP)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert run_minica("revoke", "--ca", ca_dir, victim).code == 0
        b = crl_process("b")
        with suppress(subprocess.TimeoutExpired):  # a minica that serialises CRLs waits for A
            b.wait(timeout=3)
        os.killpg(a.pid, signal.SIGCONT)
        for process in (a, b):
            _, stderr = process.communicate(timeout=60)
            assert process.returncode == 0, stderr
    crl_a, crl_b = (x509.load_pem_x509_crl((tmp_path / f"{n}.pem").read_bytes()) for n in "ab")
    assert victim in crl_serials(crl_b)
    older, newer = sorted((crl_a, crl_b), key=crl_number)
    assert crl_number(older) < crl_number(newer)
    assert crl_serials(older) <= crl_serials(newer), (
        f"CRL {crl_number(newer)} does not list {crl_serials(older) - crl_serials(newer)}, "
        f"revoked before that number was taken and listed by CRL {crl_number(older)}"
    )


@pytest.mark.tools
def test_crl_pem_keeps_the_newer_of_two_concurrent_crls(ca_dir: Path) -> None:
    """`crl` A takes its number, then its write is slowed (strace holds its first fsync,
    the one of crl.pem's temporary file, for 3 s); `crl` B takes the next number and
    publishes. After both, crl.pem must hold B's CRL, the newest."""
    strace = require_tool("strace")
    slow = [strace, "-f", "-qq", "-o", os.devnull, "-e", "trace=fsync"]
    slow += ["-e", "inject=fsync:delay_enter=3s:when=1"]
    with process_groups() as started:
        a = subprocess.Popen(
            slow + minica_argv("crl", "--ca", ca_dir),
            stderr=subprocess.PIPE,
            env=minica_env(),
            start_new_session=True,
        )
        started.append(a)
        deadline = time.monotonic() + 20
        while not any(ca_dir.glob(".crl.pem.tmp-*")):  # A has its number and is writing
            assert a.poll() is None and time.monotonic() < deadline, a.stderr
            time.sleep(0.01)
        b = run_minica("crl", "--ca", ca_dir)
        assert b.code == 0, b.stderr
        _, a_stderr = a.communicate(timeout=30)
        assert a.returncode == 0, a_stderr
    numbers = {
        name: int(found(r"CRL number (\d+) ", text))
        for name, text in (("A", a_stderr.decode()), ("B", b.stderr))
    }
    assert numbers["B"] > numbers["A"], numbers
    published = crl_number(x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes()))
    assert published == numbers["B"], f"crl.pem holds CRL {published}; numbers {numbers}"


def wait_until_sleeping(pid: int, timeout: float) -> None:
    """Until ``pid`` sleeps in nanosleep: SQLite's busy handler waiting for the lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "nanosleep" in Path(f"/proc/{pid}/wchan").read_text():
            time.sleep(0.3)  # let it settle into the busy loop
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never waited for the registry lock")


def test_doctor_repair_alongside_signing_and_crl_breaks_nothing(
    ca_dir: Path, tmp_path: Path
) -> None:
    """A folder with nothing wrong in it, in use: `doctor --repair` (say from cron) must
    neither take a write in progress for the leftover of a crash nor fail itself."""
    csrs = make_csrs(tmp_path / "csr", 40)
    ca = str(ca_dir)
    jobs = [[sign_args(ca_dir, csr, csr.with_suffix(".crt")) for csr in csrs[i::2]] for i in (0, 1)]
    jobs += [[["crl", "--ca", ca]] * 15, [["doctor", "--ca", ca, "--repair"]] * 20]
    outputs = run_drivers(jobs, tmp_path, timeout=120, driver=IN_PROCESS_DRIVER)
    failed = Counter(
        f"{run['args'][0]}: {'traceback, ' * ('Traceback' in run['stderr'])}"
        + re.sub(
            r"[0-9a-f]{20,}",
            "N",
            (run["stderr"] or "no message").replace(ca, "CA").splitlines()[-1],
        )
        for output in outputs
        for run in output
        if run["code"] != 0
    )
    assert not failed, "\n".join(f"{count} x {line}" for line, count in failed.most_common())
    assert not [row for row in listing(ca_dir) if row["profile"] == RECOVERED]
    assert_consistent(ca_dir)


# ---------------------------------------------------------------- crashes


@dataclass
class Outcome:
    kind: str
    delay: float
    code: int | None  # None: killed
    landed: str


def run_and_kill(args: list[str], delay: float) -> tuple[int | None, str]:
    """Run ``minica ARGS``; SIGKILL its process group after ``delay`` seconds unless it is
    done by then. Its exit code (None if killed) and stderr."""
    with process_groups() as started:
        process = subprocess.Popen(
            minica_argv(*args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=minica_env(),
            start_new_session=True,
        )
        started.append(process)
        try:
            _, stderr = process.communicate(timeout=delay)
            return process.returncode, stderr.decode()
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate(timeout=10)
            return (None if process.returncode == -signal.SIGKILL else process.returncode), (
                stderr.decode()
            )


def landed(kind: str, before: State, after: State) -> str:
    """Where a kill landed, judged by what it left."""
    if kind == "sign":
        if after.rows - before.rows:
            return "after commit"
        if after.orphans - before.orphans:
            return "after file, before commit"
        if after.leftovers - before.leftovers:
            return "during file write"
        return "before any write"
    if kind == "revoke":
        return "after commit" if after.revoked - before.revoked else "before commit"
    if after.crl_pem != before.crl_pem:
        return "after crl.pem written"
    if after.leftovers - before.leftovers:
        return "during crl.pem write"
    if after.crl_numbers - before.crl_numbers:
        return "after number, before write"
    return "before number"


def timed(args: list[str]) -> float:
    started = time.monotonic()
    result = run_minica(*args)
    assert result.code == 0, result.stderr
    return time.monotonic() - started


def kill_fraction(rng: random.Random) -> float:
    """When to kill, as a fraction of the run time: half the kills anywhere in the run,
    half near its end, where the writes are."""
    return rng.uniform(0.0, 1.1) if rng.random() < 0.5 else rng.uniform(0.8, 1.05)


def test_sigkill_at_random_moments_leaves_a_folder_doctor_repairs(
    ca_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(CRASH_SEED)
    seed = f"seed {CRASH_SEED} (MINICA_CRASH_SEED)"
    csrs = iter(make_csrs(tmp_path / "csr", CRASH_ITERATIONS + 6))
    ca = str(ca_dir)

    def command(kind: str, current: State) -> list[str]:
        if kind == "sign":
            return ["sign", "--ca", ca, "--profile", "server", str(next(csrs))]
        if kind == "revoke":
            return ["revoke", "--ca", ca, rng.choice(sorted(current.rows - current.revoked))]
        return ["crl", "--ca", ca]

    # how long each command takes here, so that the kills spread over its whole run
    duration = {
        kind: min(timed(command(kind, state(ca_dir))) for _ in range(2))
        for kind in ("sign", "revoke", "crl")
    }
    outcomes: list[Outcome] = []
    crl_seen: list[int] = []  # numbers of the distinct crl.pem files seen, in order
    last_pem = state(ca_dir).crl_pem
    if last_pem:
        crl_seen.append(crl_number(x509.load_pem_x509_crl(last_pem)))
    started = time.monotonic()
    for iteration in range(CRASH_ITERATIONS):
        if time.monotonic() - started > CRASH_BUDGET_SECONDS:
            break
        before = state(ca_dir)
        kind = rng.choices(["sign", "revoke", "crl"], weights=[3, 1, 2])[0]
        if kind == "revoke" and not before.rows - before.revoked:
            kind = "sign"
        fraction = kill_fraction(rng)
        delay = fraction * duration[kind]
        started_run = time.monotonic()
        code, stderr = run_and_kill(command(kind, before), delay)
        after = state(ca_dir)
        outcome = landed(kind, before, after)
        # follow the machine's load: the run time of finished runs, later for early kills
        if code == 0:
            duration[kind] = 0.7 * duration[kind] + 0.3 * (time.monotonic() - started_run)
        elif fraction >= 0.8 and outcome.startswith("before"):
            duration[kind] *= 1.1
        where = f"{seed}, iteration {iteration}, {kind} killed after {delay * 1000:.0f} ms"
        assert code in (None, 0), f"{where}: exit {code}: {stderr}"
        assert after.rows <= after.files, f"{where}: rows without files {after.rows - after.files}"
        outcomes.append(Outcome(kind, delay, code, outcome))
        if after.crl_pem is not None and after.crl_pem != last_pem:
            number = crl_number(x509.load_pem_x509_crl(after.crl_pem))
            assert not crl_seen or number > crl_seen[-1], f"{where}: CRL {number} after {crl_seen}"
            assert number in after.crl_numbers, f"{where}: CRL {number} was never committed"
            crl_seen.append(number)
            last_pem = after.crl_pem

    # debris does not trip a later command
    damaged = state(ca_dir)
    assert run_minica(*command("sign", damaged)).code == 0, seed
    # then doctor repairs what the kills left, and the folder works as before
    code, report = doctor(ca_dir, "--repair")
    assert code == 0, f"{seed}: {report}"
    repaired = state(ca_dir)
    assert not repaired.leftovers, f"{seed}: {sorted(repaired.leftovers)}"
    assert repaired.rows == repaired.files, seed
    recovered = {row["serial"] for row in listing(ca_dir) if row["profile"] == RECOVERED}
    assert recovered == set(damaged.orphans), seed
    assert_consistent(ca_dir, seed)
    for kind in ("sign", "revoke", "crl"):
        result = run_minica(*command(kind, state(ca_dir)))
        assert result.code == 0, f"{seed}: {kind} after repair: {result.stderr}"
    final = state(ca_dir)
    crl = x509.load_pem_x509_crl(final.crl_pem or b"")
    assert crl_number(crl) > max(crl_seen, default=0), seed
    assert crl_serials(crl) == set(final.revoked), seed
    assert_consistent(ca_dir, seed)

    tally = Counter(f"{o.kind}: {'finished' if o.code == 0 else o.landed}" for o in outcomes)
    print(
        f"\n{seed}: {len(outcomes)} iterations in {time.monotonic() - started:.1f} s; "
        f"run-time estimates {', '.join(f'{k} {v * 1000:.0f} ms' for k, v in duration.items())}; "
        f"leftovers {len(damaged.leftovers)}, orphans {len(damaged.orphans)}; CRLs {crl_seen}"
    )
    for line, count in sorted(tally.items()):
        print(f"  {count:3d}  {line}")


# Kills at exact points: strace delivers SIGKILL as the process enters its Nth fsync or
# fdatasync. minica's own writes fsync twice (the temporary file, then its folder after
# the rename); SQLite in a fresh process fdatasyncs the new WAL's header (1), the folder (2),
# then the committed frames (3).
KILL_POINTS = {
    "sign-temporary-file-written": ("sign", "fsync", 1),
    "sign-certificate-renamed-not-committed": ("sign", "fsync", 2),
    "sign-commit-being-synced": ("sign", "fdatasync", 3),
    "revoke-commit-being-synced": ("revoke", "fdatasync", 3),
    "crl-number-being-synced": ("crl", "fdatasync", 3),
    "crl-number-committed-crl-being-written": ("crl", "fsync", 1),
    "crl-written-folder-not-synced": ("crl", "fsync", 2),
}


@pytest.mark.tools
@pytest.mark.parametrize("point", KILL_POINTS)
def test_sigkill_at_each_sync_of_a_write_leaves_what_doctor_repairs(
    ca_dir: Path, tmp_path: Path, point: str
) -> None:
    strace = require_tool("strace")
    kind, syscall, nth = KILL_POINTS[point]
    (csr,) = make_csrs(tmp_path, 1, prefix=point)
    if kind == "crl":
        assert run_minica("crl", "--ca", ca_dir).code == 0
    before = state(ca_dir)
    victim = sorted(before.rows)[0]
    args = {
        "sign": ["sign", "--ca", str(ca_dir), "--profile", "server", str(csr)],
        "revoke": ["revoke", "--ca", str(ca_dir), victim],
        "crl": ["crl", "--ca", str(ca_dir)],
    }[kind]
    with process_groups() as started:
        process = subprocess.Popen(
            [
                strace,
                "-f",
                "-qq",
                "-o",
                os.devnull,
                "-e",
                f"trace={syscall}",
                "-e",
                f"inject={syscall}:signal=KILL:when={nth}",
                *minica_argv(*args),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=minica_env(),
            start_new_session=True,
        )
        started.append(process)
        _, stderr = process.communicate(timeout=60)
    if process.returncode != -signal.SIGKILL and b"ptrace" in stderr:
        pytest.skip(f"strace cannot trace here: {stderr.decode().strip()}")
    assert process.returncode == -signal.SIGKILL, (process.returncode, stderr)
    after = state(ca_dir)
    new_leftovers = after.leftovers - before.leftovers
    assert after.rows <= after.files
    if point == "sign-temporary-file-written":
        assert len(new_leftovers) == 1 and next(iter(new_leftovers)).startswith("certs/.")
        assert after.rows == before.rows and after.files == before.files
    elif point == "sign-certificate-renamed-not-committed":
        assert not new_leftovers and len(after.orphans - before.orphans) == 1
        assert after.rows == before.rows
    elif point == "crl-number-committed-crl-being-written":
        assert [Path(p).name[:13] for p in new_leftovers] == [".crl.pem.tmp-"]
        assert after.crl_pem == before.crl_pem
        assert max(after.crl_numbers) == max(before.crl_numbers) + 1
    elif point == "crl-written-folder-not-synced":
        crl = x509.load_pem_x509_crl(after.crl_pem or b"")
        assert crl_number(crl) == max(after.crl_numbers) == max(before.crl_numbers) + 1
    elif kind == "crl":
        assert after.crl_pem == before.crl_pem
    landed = f"{point}: {len(new_leftovers)} leftovers, {len(after.orphans)} orphans, " + (
        f"rows {len(before.rows)}->{len(after.rows)}, revoked {len(after.revoked)}, "
        f"CRL numbers {sorted(after.crl_numbers)}"
    )
    print(landed)

    # the same command works with the debris still there ...
    again = {"revoke": ["revoke", "--ca", str(ca_dir), sorted(after.rows - after.revoked)[0]]}
    result = run_minica(*again.get(kind, args))
    assert result.code == 0, f"{landed}: {result.stderr}"
    if kind == "crl":
        number = crl_number(x509.load_pem_x509_crl((ca_dir / "crl.pem").read_bytes()))
        assert number > max(after.crl_numbers), landed
    # ... and doctor reports it, then repairs it
    code, report = doctor(ca_dir)
    assert code == (1 if new_leftovers or after.orphans else 0), f"{landed}: {report}"
    code, report = doctor(ca_dir, "--repair")
    assert code == 0, f"{landed}: {report}"
    repaired = state(ca_dir)
    assert not repaired.leftovers and repaired.rows == repaired.files, landed
    assert_consistent(ca_dir, landed)


# ---------------------------------------------------------------- doctor


def test_doctor_adds_a_row_for_a_certificate_file_whose_signing_died_before_commit(
    ca_dir: Path,
) -> None:
    authority = CertificateAuthority.open(ca_dir)
    key = generate("ec-p256")
    request = Request(
        Subject(common_name="lost.example.test"),
        Names.parse(dns=["lost.example.test"]),
        key.public_key(),
        "ec-p256",
    )
    issued = certify(
        request,
        authority.profile("server"),
        Signer(authority.certificate, authority.private_key, tuple(authority.chain[1:])),
        serial=random_serial(),
        now=datetime.now(timezone.utc),
        urls=authority.settings.urls,
    )
    serial = format(issued.certificate.serial_number, "x")
    (ca_dir / "certs" / f"{serial}.crt").write_bytes(issued.pem)

    code, report = doctor(ca_dir)
    assert code == 1 and f"repairable with --repair: {ca_dir}/certs/{serial}.crt" in report
    assert "has no registry row" in report
    code, report = doctor(ca_dir, "--repair")
    assert code == 0 and "repaired:" in report and "consistent after repairs" in report, report
    row = next(row for row in listing(ca_dir) if row["serial"] == serial)
    assert row["profile"] == RECOVERED and row["subject"] == "CN=lost.example.test"
    assert row["status"] == "valid"
    assert_consistent(ca_dir)


def test_doctor_removes_leftovers_of_interrupted_writes(ca_dir: Path) -> None:
    stray = ca_dir / "certs" / ".x.crt.tmp-123"
    stray.write_bytes(b"-----BEGIN CERT")
    staging = ca_dir / ".minica-init-abc"
    (staging / "private").mkdir(parents=True)
    (staging / "private" / "ca.key").write_bytes(b"half a key")

    code, report = doctor(ca_dir)
    assert code == 1, report
    for path in (stray, staging):
        assert f"repairable with --repair: {path} is left over from an interrupted write" in report
    code, report = doctor(ca_dir, "--repair")
    assert code == 0, report
    assert not stray.exists() and not staging.exists()
    assert_consistent(ca_dir)


def test_doctor_closes_a_ca_key_readable_by_others(ca_dir: Path) -> None:
    key = ca_dir / "private" / "ca.key"
    key.chmod(0o644)
    code, report = doctor(ca_dir)
    assert code == 1 and f"{key} has mode 644, more open than 600" in report, report
    code, report = doctor(ca_dir, "--repair")
    assert code == 0 and f"repaired: {key} has mode 644" in report, report
    assert key.stat().st_mode & 0o777 == 0o600
    assert_consistent(ca_dir)


def test_doctor_leaves_a_row_whose_file_was_deleted_to_a_person(ca_dir: Path) -> None:
    serial = listing(ca_dir)[0]["serial"]
    (ca_dir / "certs" / f"{serial}.crt").unlink()
    for options in ((), ("--repair",)):
        code, report = doctor(ca_dir, *options)
        assert code == 1, report
        assert f"needs a person: registry row {serial} has no certificate file" in report
        assert "repaired:" not in report
    assert serial in {row["serial"] for row in listing(ca_dir)}


def test_doctor_reports_a_ca_key_that_does_not_belong_to_the_certificate(ca_dir: Path) -> None:
    key = ca_dir / "private" / "ca.key"
    key.unlink()
    key.write_bytes(private_key_pem(generate("ec-p384")))
    key.chmod(0o600)
    foreign = key.read_bytes()
    for options in ((), ("--repair",)):
        code, report = doctor(ca_dir, *options)
        assert code == 1 and "needs a person: the CA key does not belong to ca.crt" in report
    assert key.read_bytes() == foreign
