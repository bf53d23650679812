"""`minica serve` answering OCSP, side by side with OpenSSL's own responder (issue 14).

    python tests/benchmarks/bench_ocsp.py [--rounds N (6)] [--seconds S (2)] [--rows N (100000)]

One CA made by `minica init` (EC P-384, the default), a few certificates issued and some
revoked; a copy of it with ROWS more certificates in its registry. On each, two
responders: `openssl ocsp -index`, from an index.txt written from `minica list --json`,
and `minica serve` on the CA folder itself; each is checked (a good and a revoked
certificate, the signature) before it is measured. ApacheBench (`ab`; Debian:
apache2-utils) POSTs the DER OCSP request for a good certificate, without a nonce (RFC
5019 lets a responder answer it with a pre-signed response), one connection per request
as OCSP clients make them, with 1, 16 and 64 concurrent clients for S seconds a run.

The four contenders take turns, each openssl next to the minica it is compared with, and
every other round in reverse, so that a busy machine slows them alike. minica serve runs
throughout, as a service does; openssl gets a new process for every run, since a run's
end can leave it stuck (see openssl_runs). The table gives the median requests/s and
p50/p99 latency over the rounds with their range, and the ratio to openssl with the range
of the ratios of the runs made side by side. Each target is judged on a 90% bootstrap
interval of its median: met or missed only when the whole interval says so. Targets
(issue 14): at 16 clients, at least 2 x openssl's requests/s, with p99 under 20 ms;
reported: 1 and 64 clients, how the rate holds with ROWS more certificates, and each
responder's time to its first answer.

OpenSSL 3's `ocsp -port` takes a port number only and listens on every interface
(`[::]`); so the benchmark runs in a private network namespace (`unshare --net`) whose
only interface is loopback, and nothing it starts can be reached from another machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from bench_cli import compile_package
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from minica.registry import Record
from minica.registry.sqlite import SqliteRegistry

PYTHON = sys.executable
MINICA = [str(Path(PYTHON).parent / "minica")]  # the console script, as users run it
CLIENTS = (1, 16, 64)
TARGET_CLIENTS = 16
TARGET_RATIO = 2.0  # minica's requests/s over openssl's, at TARGET_CLIENTS
TARGET_P99_MS = 20.0
OPENSSL = "openssl ocsp"
SERVE = "minica serve"
START_TIMEOUT = 60.0  # seconds for a responder to answer its first request
START_SAMPLES = 3  # starts of each responder on each CA folder, timed
STOP_TIMEOUT = 10.0  # seconds for a responder to exit after SIGTERM, before SIGKILL
MAX_RATE = 20_000  # requests/s no responder here reaches: ab's -n, so that -t bounds a run
INSIDE = "--in-private-network"  # the run re-executed inside its network namespace
# OpenSSL's CA database names of the RFC 5280 reasons (apps/ca.c, crl_reasons)
OPENSSL_REASONS = {
    "unspecified": "unspecified",
    "key-compromise": "keyCompromise",
    "ca-compromise": "CACompromise",
    "affiliation-changed": "affiliationChanged",
    "superseded": "superseded",
    "cessation-of-operation": "cessationOfOperation",
}
OPENSSL_STATUS = {"valid": "V", "revoked": "R", "expired": "E"}


class Run(NamedTuple):
    """What ab measured in one run."""

    rate: float  # requests/s
    p50_ms: float
    p99_ms: float
    errors: int  # refused or broken connections and non-2xx answers


Contender = tuple[str, str]  # (registry: "a few" or "100,000 more", responder)
Runs = dict[tuple[str, str, int], list[Run]]  # (registry, responder, clients): a Run a round


class Responder(NamedTuple):
    url: str  # where ab POSTs
    start_seconds: float  # from the command to its first good OCSP answer


# The private network: re-executing the benchmark where loopback is all there is.


def run_in_private_network(arguments: list[str]) -> int:
    """Run this benchmark again in a new network namespace; returns its exit status."""
    namespace = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    probe = subprocess.run([*namespace, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SystemExit(
            f"error: cannot make a private network namespace ({probe.stderr.strip()}); "
            "openssl ocsp -port would listen on every interface, so the benchmark does not run"
        )
    child = subprocess.Popen([*namespace, PYTHON, sys.argv[0], INSIDE, *arguments])
    # a SIGTERM to this process reaches the benchmark, which then stops its servers
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    try:
        return child.wait()
    except KeyboardInterrupt:  # the child got the same SIGINT from the terminal
        return child.wait()


def bring_up_loopback() -> None:
    """Loopback up, and proof that it is the namespace's only interface."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    interfaces = [name for _, name in socket.if_nameindex()]
    if interfaces != ["lo"]:
        raise SystemExit(f"error: the private network has interfaces {interfaces}, not only lo")


# The CA, its certificates and openssl's view of its registry.


def minica(*arguments: str, cwd: Path) -> str:
    done = subprocess.run(
        [*MINICA, *arguments], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"minica {' '.join(arguments)} failed: {done.stderr.strip()}")
    return done.stdout


def make_ca(work: Path) -> tuple[Path, Path]:
    """A CA in work/ca with four certificates, two of them revoked; returns a good one
    and a revoked one."""
    minica("init", "--ca", "ca", "--cn", "bench OCSP root", cwd=work)
    for name in ("good", "other", "revoked", "retired"):
        host = f"{name}.example.test"
        issue = ["issue", "--ca", "ca", "--profile", "server", "--cn", host]
        minica(*issue, "--out", f"{name}.crt", cwd=work)
    for name, reason in (("revoked", "key-compromise"), ("retired", "superseded")):
        minica(
            "revoke", "--ca", "ca", serial_of(work / f"{name}.crt"), "--reason", reason, cwd=work
        )
    return work / "good.crt", work / "revoked.crt"


def serial_of(certificate: Path) -> str:
    return format(x509.load_pem_x509_certificate(certificate.read_bytes()).serial_number, "x")


def fill_registry(ca: Path, rows: int) -> None:
    """ROWS more certificates in the registry, through the registry API (the way
    bench_cli.py fills it: no certs/ files, which OCSP does not read); one in ten revoked."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    later = now + timedelta(days=90)
    SqliteRegistry(ca).add_many(
        Record(
            serial=format((1 << 158) | secrets.randbits(158), "x"),
            subject=f"CN=host{i}.example.test",
            profile="server",
            contact=None,
            not_before=now,
            not_after=later,
            issued_at=now,
            revoked_at=now if i % 10 == 0 else None,
            revocation_reason="superseded" if i % 10 == 0 else None,
        )
        for i in range(rows)
    )


def openssl_time(iso: str) -> str:
    """An ISO 8601 UTC time of `minica list --json` ("2027-03-02T06:45:11Z") as OpenSSL's
    CA database writes it: the certificate's UTCTime, GeneralizedTime from 2050 on (RFC
    5280 4.1.2.5). Plain slicing: 100,000 rows."""
    digits = iso.replace("-", "").replace("T", "").replace(":", "")
    return digits[2:] if digits < "2050" else digits


def openssl_serial(serial: str) -> str:
    """The serial as `openssl ocsp` looks it up: BN_bn2hex's upper case, whole bytes."""
    return serial.upper().zfill(len(serial) + len(serial) % 2)


def openssl_subject(rfc4514: str) -> str:
    """RFC 4514 (last RDN first) in OpenSSL's /-separated form (first RDN first)."""
    if "\\" in rfc4514:  # escaped commas or signs: let cryptography find the RDNs
        name = x509.Name.from_rfc4514_string(rfc4514)
        return "".join("/" + "+".join(a.rfc4514_string() for a in rdn) for rdn in name.rdns)
    # without a backslash every comma separates RDNs, and the split is 10 x faster
    return "".join("/" + rdn for rdn in reversed(rfc4514.split(",")))


def index_line(row: dict[str, str | None]) -> str:
    """One line of OpenSSL's CA database (index.txt) for one `minica list --json` row:
    status, expiry, revocation time and reason, serial, file name, subject."""
    assert row["not_after"] and row["status"] and row["serial"] and row["subject"]
    revocation = ""
    if row["revoked_at"]:
        reason = OPENSSL_REASONS[row["revocation_reason"] or "unspecified"]
        revocation = f"{openssl_time(row['revoked_at'])},{reason}"
    return "\t".join(
        (
            OPENSSL_STATUS[row["status"]],
            openssl_time(row["not_after"]),
            revocation,
            openssl_serial(row["serial"]),
            "unknown",
            openssl_subject(row["subject"]),
        )
    )


def write_index(ca: Path, index: Path) -> None:
    """index.txt for `openssl ocsp`, built from the registry as `minica list` shows it."""
    rows = json.loads(minica("list", "--ca", str(ca), "--status", "all", "--json", cwd=ca))
    index.write_text("".join(index_line(row) + "\n" for row in rows))
    # openssl refuses an index holding two valid certificates of one subject unless told
    index.with_name(index.name + ".attr").write_text("unique_subject = no\n")


def ocsp_request(certificate: Path, issuer: Path) -> bytes:
    """The DER OCSP request a client sends for CERTIFICATE: SHA-1 CertID (RFC 5019 2.1.1),
    no nonce."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        x509.load_pem_x509_certificate(certificate.read_bytes()),
        x509.load_pem_x509_certificate(issuer.read_bytes()),
        hashes.SHA1(),
    )
    return builder.build().public_bytes(Encoding.DER)


# The responders.


def post(url: str, body: bytes) -> bytes:
    """POST an OCSP request; the answer's body (http.client: no proxy settings apply)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        headers = {"Content-Type": "application/ocsp-request"}
        connection.request("POST", parts.path or "/", body, headers)
        answer = connection.getresponse()
        if answer.status != 200:
            raise ConnectionError(f"{url} answered HTTP {answer.status}")
        return answer.read()
    finally:
        connection.close()


def check_answer(url: str, request: bytes, issuer: x509.Certificate, revoked: bool) -> None:
    """The responder at URL says what the registry says, in a response signed by the CA
    key: a fast wrong answer would be no result."""
    response = ocsp.load_der_ocsp_response(post(url, request))
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise SystemExit(f"error: {url} answered {response.response_status.name}")
    expected = ocsp.OCSPCertStatus.REVOKED if revoked else ocsp.OCSPCertStatus.GOOD
    if response.certificate_status != expected:
        status = response.certificate_status.name
        raise SystemExit(f"error: {url} said {status}, not {expected.name}")
    public_key = issuer.public_key()
    algorithm = response.signature_hash_algorithm
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None
    public_key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))


@contextmanager
def running(name: str, command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """COMMAND running with its output in LOG, not a pipe (a pipe nobody reads would
    stop a server that logs every request); stopped on the way out, whatever happened."""
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(name, process)


def stop(name: str, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"warning: {name} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM")
            process.kill()
            process.wait()
    # the contract: minica serve exits 0 on SIGTERM; openssl ocsp simply dies of it
    if name == SERVE and process.returncode != 0:
        print(f"warning: {name} exited {process.returncode} on SIGTERM, not 0")


def wait_until_answering(
    process: subprocess.Popen[bytes], log: Path, port_line: str, path: str, request: bytes
) -> str:
    """The responder's OCSP URL, once the log names its port (PORT_LINE's group) and it
    answers REQUEST."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: responder exited {process.returncode}:\n{log.read_text()}")
        if found := re.search(port_line, log.read_text(errors="replace")):
            url = f"http://127.0.0.1:{found.group(1)}{path}"
            try:
                if ocsp.load_der_ocsp_response(post(url, request)).response_status.value == 0:
                    return url
            except (OSError, ValueError):
                pass  # listening, not answering yet
        time.sleep(0.01)
    raise SystemExit(f"error: no OCSP answer within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


@contextmanager
def openssl_responder(ca: Path, index: Path, request: bytes) -> Iterator[Responder]:
    """`openssl ocsp` answering from INDEX, signing with the CA key, on a free port."""
    certificate, key = str(ca / "ca.crt"), str(ca / "private" / "ca.key")
    command = ["openssl", "ocsp", "-index", str(index), "-CA", certificate]
    command += ["-rsigner", certificate, "-rkey", key, "-port", "0"]
    # -nmin: a nextUpdate, as minica's responses carry; -ignore_err: a request cut short
    # when ab's time is up must not end the responder
    command += ["-nmin", "60", "-ignore_err"]
    began = time.perf_counter()
    with running(OPENSSL, command, log := index.with_suffix(".log")) as process:
        # with port 0, OpenSSL 3 prints the port it took: "ACCEPT [::]:43671"
        url = wait_until_answering(process, log, r"ACCEPT \S*:(\d+)", "/", request)
        yield Responder(url, time.perf_counter() - began)


@contextmanager
def minica_service(ca: Path, request: bytes) -> Iterator[Responder]:
    """`minica serve` on CA, plain HTTP on a free loopback port (and HTTPS on another)."""
    command = [*MINICA, "serve", "--ca", str(ca), "--http-listen", "127.0.0.1:0"]
    command += ["--listen", "127.0.0.1:0"]
    began = time.perf_counter()
    with running(SERVE, command, log := ca.with_suffix(".log")) as process:
        port_line = r"serving http://127\.0\.0\.1:(\d+)/"
        url = wait_until_answering(process, log, port_line, "/ocsp", request)
        yield Responder(url, time.perf_counter() - began)


# ApacheBench.


def ab(url: str, request: Path, clients: int, seconds: int) -> Run:
    """One ab run: CLIENTS concurrent clients POSTing REQUEST for SECONDS."""
    percentiles = request.with_name("percentiles.csv")
    # -r: a broken connection is counted, not the end of the run; -s: a stuck one fails
    # the run in seconds, not ab's default 30
    command = ["ab", "-q", "-r", "-s", "10", "-c", str(clients), "-t", str(seconds)]
    # -n after -t (which sets it to 50,000): high enough that the time limit ends the run
    command += ["-n", str(MAX_RATE * seconds), "-e", str(percentiles)]
    command += ["-p", str(request), "-T", "application/ocsp-request", url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return parse_ab(done.stdout, percentiles.read_text())


def parse_ab(output: str, percentiles: str) -> Run:
    """Requests/s and errors from ab's report, p50 and p99 from its -e CSV."""
    rate = re.search(r"Requests per second:\s+([\d.]+)", output)
    if rate is None:
        raise SystemExit(f"error: no requests/s in ab's output:\n{output}")
    # "Length" failures are no errors: ab counts every answer whose length differs from
    # the first one's, and ECDSA signatures vary in length by a byte or two
    failed = re.search(
        r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", output
    )
    not_2xx = re.search(r"Non-2xx responses:\s+(\d+)", output)
    errors = sum(map(int, failed.groups())) if failed else 0
    errors += int(not_2xx.group(1)) if not_2xx else 0
    # "Percentage served,Time in ms" then one "P,MILLISECONDS" line for each P in 0..100
    times = dict(line.split(",") for line in percentiles.splitlines()[1:])
    return Run(float(rate.group(1)), float(times["50"]), float(times["99"]), errors)


def measure(contenders: dict[Contender, Callable[[int], Run]], rounds: int) -> Runs:
    """ROUNDS runs of every contender at every client count. Within a round the
    contenders take turns at each count, in the order given (each openssl beside the
    minica it is compared with), and every other round backwards."""
    order = [(registry, name, clients) for clients in CLIENTS for registry, name in contenders]
    runs: Runs = {key: [] for key in order}
    for turn in range(rounds):
        for registry, name, clients in order if turn % 2 == 0 else reversed(order):
            runs[registry, name, clients].append(contenders[registry, name](clients))
    return runs


# The report.


def spread(values: list[float], form: str) -> str:
    """The median of VALUES and, in brackets, their range."""
    low, middle, high = min(values), statistics.median(values), max(values)
    return f"{middle:{form}} [{low:{form}}-{high:{form}}]"


def per_round(mine: list[Run], theirs: list[Run]) -> list[float]:
    """MINE's requests/s over THEIRS', round by round: each round ran them side by side."""
    return [a.rate / b.rate for a, b in zip(mine, theirs, strict=True)]


def table(runs: Runs, registries: list[str], seconds: int, rounds: int) -> None:
    print(f"\nOCSP POST: ab -t {seconds}, {rounds} rounds; median [range] over the rounds")
    print(
        f"  {'registry':<16}{'clients':>7}  {'responder':<14}{'requests/s':>22}{'p50 ms':>8}"
        f"{'p99 ms':>20}{'errors':>8}{'vs openssl':>20}"
    )
    for registry in registries:
        for clients in CLIENTS:
            for name in (OPENSSL, SERVE):
                samples = runs[registry, name, clients]
                rate = spread([run.rate for run in samples], ",.0f")
                p50 = statistics.median(run.p50_ms for run in samples)
                p99 = spread([run.p99_ms for run in samples], ".1f")
                errors = sum(run.errors for run in samples)
                versus = ""
                if name == SERVE:
                    versus = spread(per_round(samples, runs[registry, OPENSSL, clients]), ".2f")
                print(
                    f"  {registry:<16}{clients:>7}  {name:<14}{rate:>22}{p50:>8.1f}{p99:>20}"
                    f"{errors:>8}{versus:>20}"
                )


def interval(values: list[float]) -> tuple[float, float]:
    """A 90% bootstrap interval for the median of VALUES: how far noise could move it (one
    round that a neighbour's job slowed moves it little)."""
    generator = random.Random(0)
    medians = sorted(
        statistics.median(generator.choices(values, k=len(values))) for _ in range(1000)
    )
    return medians[50], medians[949]


def verdict(label: str, values: list[float], limit: float, above: bool) -> str:
    """Met or missed only when the whole interval says so, as in bench_issuance.py."""
    low, high = interval(values)
    if (low >= limit) if above else (high < limit):
        outcome = "met"
    elif (high < limit) if above else (low >= limit):
        outcome = "MISSED"
    else:
        outcome = "within noise of the target"
    middle, target = statistics.median(values), f"{'>=' if above else '<'} {limit:g}"
    return f"{label}: {middle:.2f} [90%: {low:.2f}-{high:.2f}] (target {target}) {outcome}"


def targets(runs: Runs, registries: list[str], starts: dict[str, float]) -> None:
    clients, lines = TARGET_CLIENTS, list[str]()
    for registry in registries:
        mine, theirs = runs[registry, SERVE, clients], runs[registry, OPENSSL, clients]
        label = f"{registry}, {clients} clients, minica"
        ratio = per_round(mine, theirs)
        lines.append(verdict(f"{label} / openssl requests/s", ratio, TARGET_RATIO, above=True))
        p99 = [run.p99_ms for run in mine]
        lines.append(verdict(f"{label} p99 ms", p99, TARGET_P99_MS, above=False))
    few, many = registries
    for clients in CLIENTS:
        for name in (OPENSSL, SERVE):
            held = per_round(runs[many, name, clients], runs[few, name, clients])
            lines.append(f"{clients} clients, {name}, {many} / {few}: {spread(held, '.2f')}")
    lines += [
        f"time to first answer, {name}: {seconds:.2f} s (median of {START_SAMPLES} starts)"
        for name, seconds in starts.items()
    ]
    print("\nTargets (issue 14), and how the rate holds in a big registry")
    print("\n".join(f"  {line}" for line in lines))


# The run.


class Setup(NamedTuple):
    """The CA folders and what ab and the checks send."""

    registries: dict[str, Path]  # "a few", "100,000 more": the CA folder
    issuer: x509.Certificate
    request: Path  # DER, for a good certificate
    revoked_request: bytes


def prepare(work: Path, rows: int) -> Setup:
    """work/ca with a few certificates, work/big the same and ROWS more, an index.txt
    beside each, and the OCSP requests."""
    good, revoked = make_ca(work)
    ca, big = work / "ca", work / "big"
    shutil.copytree(ca, big)
    fill_registry(big, rows)
    for folder in (ca, big):
        write_index(folder, folder.with_suffix(".index"))
    request = work / "request.der"
    request.write_bytes(ocsp_request(good, ca / "ca.crt"))
    issuer = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    registries = {"a few": ca, f"{rows:,} more": big}
    return Setup(registries, issuer, request, ocsp_request(revoked, ca / "ca.crt"))


def checked(setup: Setup, responder: Responder) -> Responder:
    """RESPONDER, once it has answered right for a good and a revoked certificate."""
    check_answer(responder.url, setup.request.read_bytes(), setup.issuer, revoked=False)
    check_answer(responder.url, setup.revoked_request, setup.issuer, revoked=True)
    return responder


def openssl_runs(setup: Setup, ca: Path, seconds: int) -> Callable[[int], Run]:
    """A run of `openssl ocsp` on CA, each with a new responder: OpenSSL's loops forever on
    a connection closed before its request line (openssl/openssl#31129, #23934), as ab
    leaves some when its time is up; a new port also keeps clear of the last run's
    TIME_WAITs."""

    def run(clients: int) -> Run:
        with openssl_responder(ca, ca.with_suffix(".index"), setup.request.read_bytes()) as fresh:
            return ab(fresh.url, setup.request, clients, seconds)

    return run


def start_times(setup: Setup, ca: Path) -> dict[str, float]:
    """Each responder's median time from its command to its first answer on CA, of
    START_SAMPLES starts, one responder at a time (on a machine no other start loads)."""
    good, samples = setup.request.read_bytes(), {OPENSSL: list[float](), SERVE: list[float]()}
    for _ in range(START_SAMPLES):
        with openssl_responder(ca, ca.with_suffix(".index"), good) as responder:
            samples[OPENSSL].append(checked(setup, responder).start_seconds)
        with minica_service(ca, good) as service:
            samples[SERVE].append(checked(setup, service).start_seconds)
    return {name: statistics.median(times) for name, times in samples.items()}


def serve_and_measure(setup: Setup, rounds: int, seconds: int) -> tuple[Runs, dict[str, float]]:
    """Both responders on both CA folders, each checked on a good and a revoked
    certificate and timed from its start to its first answer, then measured; every one
    stopped when done or failed. The runs, and the start times."""
    starts: dict[str, float] = {}
    contenders: dict[Contender, Callable[[int], Run]] = {}
    with ExitStack() as services:
        for registry, ca in setup.registries.items():
            for name, seconds_to_start in start_times(setup, ca).items():
                starts[f"{name}, {registry}"] = seconds_to_start
            service = services.enter_context(minica_service(ca, setup.request.read_bytes()))
            ab(service.url, setup.request, TARGET_CLIENTS, 1)  # warm up: caches, allocators
            contenders[registry, OPENSSL] = openssl_runs(setup, ca, seconds)
            contenders[registry, SERVE] = partial(ab, service.url, setup.request, seconds=seconds)
        return measure(contenders, rounds), starts


def benchmark(rounds: int, seconds: int, rows: int) -> None:
    compile_package()
    with tempfile.TemporaryDirectory() as folder:
        setup = prepare(Path(folder), rows)
        runs, starts = serve_and_measure(setup, rounds, seconds)
    table(runs, list(setup.registries), seconds, rounds)
    targets(runs, list(setup.registries), starts)


def parse_arguments(arguments: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=2, help="of each ab run")
    parser.add_argument("--rows", type=int, default=100_000)
    return parser.parse_args(arguments)


def main() -> None:
    if sys.argv[1:2] == [INSIDE]:
        # SIGTERM unwinds like an error, so that every server started is stopped
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
        args = parse_arguments(sys.argv[2:])
        bring_up_loopback()
        benchmark(args.rounds, args.seconds, args.rows)
        return
    parse_arguments(sys.argv[1:])  # usage errors before anything starts
    for tool, package in (
        ("ab", "apache2-utils"),
        ("openssl", "openssl"),
        ("unshare", "util-linux"),
        ("ip", "iproute2"),
    ):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found (Debian: apt-get install {package})")
    sys.exit(run_in_private_network(sys.argv[1:]))


if __name__ == "__main__":
    main()
