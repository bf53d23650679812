"""`minica serve` as an ACME server, side by side with Pebble (issue 15).

    python tests/benchmarks/bench_acme.py [--rounds N (6)] [--seconds S (10) | --orders N]
        [--workers W (8)] [--poll-ms MS (10)] [--only pebble|minica] [--profile OUT.pstats]

(--only: one server alone; --profile: minica serve under cProfile, each thread's CPU
time, written to OUT.pstats when it stops; see profile_serve.py.)

One load client, the same for both servers: certbot's `acme` library (ClientV2 over
requests, josepy JWS), ES256 accounts, in W worker processes (separate processes, so
that the client is not one GIL: on a small machine it would otherwise be the
bottleneck). Each worker makes complete orders one after another, each for a name of
its own under lab.test (no authorization can be reused): newOrder, the authorization,
the http-01 challenge answered, the authorization polled until valid, finalize with a
CSR for a new EC P-256 key, the order polled until valid, the certificate downloaded
and checked (its name, and its signature by the CA or the intermediate it came with).
Accounts are made before anything is timed.

The servers:
- Debian's Pebble (/usr/bin/pebble), with PEBBLE_VA_NOSLEEP=1 (no artificial
  validation delay), PEBBLE_WFE_NONCEREJECT=0 (no nonce refused on purpose) and
  PEBBLE_AUTHZREUSE=0, its HTTPS certificate made by a CA of minica's here.
- `minica serve` on a CA made by `minica init` (EC P-384, SQLite registry, durable
  commits: the defaults), HTTPS only (--http-listen none).
Both validate http-01 at the same responder, a threaded HTTP server in this process,
and resolve names through the same lab DNS (pebble-challtestsrv, tests/acme_lab.py:
every name is 127.0.0.1). Each logs every request to a file, as it does by default.

Polling: both servers are polled the same way, every MS milliseconds, whatever
Retry-After says (minica says 1 s while a challenge is validated; honouring it would
measure that number, not the server). Every poll is a signed POST-as-GET the server
must check, so polls/order is reported.

minica serve runs throughout, as a service does; Pebble is started afresh for every run
(new accounts, made before the run is timed). Kept running, Pebble 2.4 hung for good
after 3,000 to 4,000 orders, three times out of three: its newOrder looks through every
authorization it holds (FindValidAuthorization, under the store's read lock, taking
each authorization's lock) while other requests wait for the store's write lock
(AddChallenge); a goroutine dump of the hung Pebble shows every request waiting there,
which looks like a lock-order deadlock. A fresh Pebble also keeps that scan short.

The servers take turns, round by round, every other round in reverse order. A run is
S seconds of orders (orders in flight at the end are finished and counted) or N orders
in all; its rate is orders / (first start to last finish). The table gives the median
over the rounds with their range; latency is one order from newOrder to its checked
certificate. The CPU columns are what the server process and the client processes
used per certificate (CPU time from /proc and os.times, so it does not depend on how
busy the machine was). The client runs on the same machine: when client CPU x rate
nears the number of CPUs, the client, not the server, bounds the rate (Pebble's case
on 2 CPUs), and the ratio flatters minica. The target (issue 15): minica's
certificates/s at least 0.5 x Pebble's, on the ratios of the runs made side by side,
judged on a 90% bootstrap interval of their median as in bench_ocsp.py.

Not alike, and worth knowing when reading the ratio: Pebble keeps everything in
memory and signs with RSA-2048 (root and one intermediate, made at start), minica
commits every change to SQLite with fsync and signs with its CA's EC P-384 key.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import multiprocessing
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, NamedTuple

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))  # the lab DNS of the ACME tests: tests/acme_lab.py

from acme import challenges, client, messages  # noqa: E402
from acme_lab import challtestsrv  # noqa: E402
from bench_cli import compile_package  # noqa: E402
from bench_ocsp import interval, spread, verdict  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from josepy.b64 import b64encode  # noqa: E402
from josepy.jwa import ES256  # noqa: E402
from josepy.jwk import JWKEC  # noqa: E402

PYTHON = sys.executable
MINICA = [str(Path(PYTHON).parent / "minica")]  # the console script, as users run it
PEBBLE = "/usr/bin/pebble"
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0", "PEBBLE_AUTHZREUSE": "0"}
SERVERS = ("pebble", "minica")
TARGET_RATIO = 0.5  # minica's certificates/s over Pebble's (issue 15)
START_TIMEOUT = 60.0  # seconds for a server to answer its directory
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM, before SIGKILL
ORDER_TIMEOUT = 60.0  # seconds an order may take before the benchmark gives up
START_DELAY = 0.2  # seconds from a run's command to its start: every worker is ready
LOG_LINES = 30  # of each server's log, shown when a run fails
TICKS = os.sysconf("SC_CLK_TCK")
# the responder's names: w<worker>-<server>-<round>-<order>.lab.test
NAME = re.compile(r"w(\d+)-([a-z]+)-")
CHALLENGE_PATH = "/.well-known/acme-challenge/"
STEP = [""]  # what a worker process is doing, for its error message


@dataclass(frozen=True)
class Server:
    """A running ACME server, as the workers reach it."""

    name: str
    directory: str
    pid: int  # its process, for its CPU time
    trust: Path  # CA file for its HTTPS
    root: Path | None  # the CA that signs its leaves directly (None: the chain's next)


class Order(NamedTuple):
    """One order a worker made: when it began and ended (time.monotonic), its polls."""

    began: float
    ended: float
    polls: int


class Run(NamedTuple):
    """One server's run of every worker."""

    orders: int
    rate: float  # certificates/s
    p50_ms: float
    p99_ms: float
    polls: float  # per order
    server_cpu_ms: float  # per certificate
    client_cpu_ms: float  # per certificate, every worker together
    fetches: int  # http-01 requests the responder answered for this server


# The http-01 responder.


class Responder(http.server.ThreadingHTTPServer):
    """http-01 for every worker's names: the key authorization is the token and the
    thumbprint of the account key of the worker the name belongs to (RFC 8555 §8.1);
    the fetches are counted by server."""

    daemon_threads = True
    # the default backlog of 5 overflows when Pebble fetches every key authorization
    # three times for eight orders at once: a dropped SYN is retried a second later
    request_queue_size = 1024

    def __init__(self, thumbprints: list[str]) -> None:
        super().__init__(("127.0.0.1", 0), ResponderHandler)
        self.thumbprints = thumbprints
        self.fetches: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class ResponderHandler(http.server.BaseHTTPRequestHandler):
    server: Responder

    def do_GET(self) -> None:
        found = NAME.match(self.headers.get("Host", ""))
        token = self.path.removeprefix(CHALLENGE_PATH)
        if found is None or not self.path.startswith(CHALLENGE_PATH) or "/" in token:
            self.send_error(404)
            return
        with self.server.lock:
            self.server.fetches[found.group(2)] += 1
        body = f"{token}.{self.server.thumbprints[int(found.group(1))]}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a line per validation would cost this process more than the answer


@contextmanager
def responder(thumbprints: list[str]) -> Iterator[Responder]:
    server = Responder(thumbprints)
    thread = threading.Thread(target=server.serve_forever, name="http-01", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# The servers.


def minica(*arguments: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [*MINICA, *map(str, arguments)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise SystemExit(f"minica {' '.join(map(str, arguments))} failed: {done.stderr.strip()}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(
    command: list[str], log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """COMMAND with its output in LOG (a pipe nobody reads would stop a server that logs
    every request); stopped on the way out, whatever happened."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"warning: {command[0]} did not stop within {STOP_TIMEOUT:.0f} s")
                process.kill()
                process.wait()


def wait_for(process: subprocess.Popen[bytes], log: Path, url: str | re.Pattern[str]) -> str:
    """URL (or the first URL the log shows that matches it) once it answers a GET over
    HTTPS with a directory, trusting nothing: the workers check the certificate."""
    context = ssl._create_unverified_context()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"error: the server exited {process.returncode}:\n{log.read_text()}")
        found = url if isinstance(url, str) else url.search(log.read_text(errors="replace"))
        target = found if isinstance(found, str) else found.group(0) if found else None
        if target is not None:
            try:
                with urllib.request.urlopen(target, timeout=5, context=context) as answer:
                    if "newOrder" in json.load(answer):
                        return target
            except OSError:
                pass  # listening, not answering yet
        time.sleep(0.05)
    raise SystemExit(f"error: no ACME directory within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


def pebble_tls(work: Path) -> tuple[Path, Path, Path]:
    """A certificate for Pebble's HTTPS (127.0.0.1), by a CA of minica's: its file, its
    key, and that CA's certificate."""
    minica("init", "--ca", "tls-ca", "--cn", "bench Pebble HTTPS", cwd=work)
    issue = ["issue", "--ca", "tls-ca", "--profile", "server", "--cn", "localhost"]
    minica(*issue, "--dns", "localhost", "--ip", "127.0.0.1", "--out", "pebble.crt", cwd=work)
    return work / "pebble.crt", work / "pebble.key", work / "tls-ca" / "ca.crt"


@contextmanager
def pebble(
    work: Path, dns: str, http_01_port: int, tls: tuple[Path, Path, Path]
) -> Iterator[Server]:
    """A new Pebble, every port a free one, its HTTPS certificate TLS (from pebble_tls)."""
    certificate, key, tls_root = tls
    port = free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{port}",
            "managementListenAddress": f"127.0.0.1:{free_port()}",
            "certificate": str(certificate),
            "privateKey": str(key),
            "httpPort": http_01_port,
            "tlsPort": free_port(),  # tls-alpn-01 is not used
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (work / "pebble.json").write_text(json.dumps(config))
    command = [PEBBLE, "-config", str(work / "pebble.json"), "-dnsserver", dns]
    env = {**os.environ, **PEBBLE_ENV}
    with running(command, log := work / "pebble.log", env) as process:
        directory = wait_for(process, log, f"https://127.0.0.1:{port}/dir")
        yield Server("pebble", directory, process.pid, tls_root, None)


@contextmanager
def minica_serve(work: Path, dns: str, http_01_port: int, profile: Path | None) -> Iterator[Server]:
    """`minica serve` on a new CA, under cProfile (profile_serve.py) when PROFILE is given."""
    minica("init", "--ca", "ca", "--cn", "bench ACME root", cwd=work)
    runner = MINICA if profile is None else [PYTHON, str(HERE / "profile_serve.py"), str(profile)]
    command = [*runner, "serve", "--ca", str(work / "ca"), "--listen", "127.0.0.1:0"]
    command += ["--http-listen", "none", "--http-01-port", str(http_01_port)]
    command += ["--dns-resolver", dns]
    with running(command, log := work / "minica.log", dict(os.environ)) as process:
        announced = re.compile(r"https://127\.0\.0\.1:\d+/acme/directory")
        directory = wait_for(process, log, announced)
        root = work / "ca" / "ca.crt"
        yield Server("minica", directory, process.pid, root, root)


def cpu_seconds(pid: int) -> float:
    """User and system time of process PID so far (/proc/PID/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# The workers: each a process with an account on every server.


class Client(NamedTuple):
    acme: client.ClientV2
    server: Server


def account(server: Server, key: JWKEC, worker: int, trust: Path) -> Client:
    """A new account on SERVER for KEY, with a contact (minica lists it on each row)."""
    # requests takes a CA file where acme's annotation of verify_ssl says bool
    ca_file: Any = str(trust)
    network = client.ClientNetwork(key, alg=ES256, verify_ssl=ca_file, user_agent="minica-bench")
    directory = client.ClientV2.get_directory(server.directory, network)
    acme = client.ClientV2(directory, network)
    registration = messages.NewRegistration.from_data(
        email=f"bench-{worker}@lab.test", terms_of_service_agreed=True
    )
    acme.new_account(registration)
    return Client(acme, server)


def one_order(acme: Client, name: str, poll: float) -> int:
    """A complete order for NAME, its certificate checked; the polls it took."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    STEP[0] = f"{name}: newOrder"
    order = acme.acme.new_order(csr.public_bytes(serialization.Encoding.PEM))
    authorization = order.authorizations[0]
    challenge = next(
        c for c in authorization.body.challenges if isinstance(c.chall, challenges.HTTP01)
    )
    STEP[0] = f"{name}: the challenge"
    acme.acme.answer_challenge(challenge, challenge.chall.response(acme.acme.net.key))
    polls, deadline = 0, time.monotonic() + ORDER_TIMEOUT
    STEP[0] = f"{name}: polling the authorization"
    while authorization.body.status != messages.STATUS_VALID:
        if authorization.body.status == messages.STATUS_INVALID or time.monotonic() > deadline:
            raise RuntimeError(f"{name}: authorization {authorization.body.to_json()}")
        time.sleep(poll)
        authorization, _ = acme.acme.poll(authorization)
        polls += 1
    STEP[0] = f"{name}: finalize, polling the order"
    body = acme.acme.begin_finalization(order).body
    while body.status != messages.STATUS_VALID:
        if body.status == messages.STATUS_INVALID or time.monotonic() > deadline:
            raise RuntimeError(f"{name}: order {body.to_json()}")
        time.sleep(poll)
        body = messages.Order.from_json(acme.acme._post_as_get(order.uri).json())
        polls += 1
    STEP[0] = f"{name}: the certificate"
    check_certificate(acme.acme._post_as_get(body.certificate).content, name, acme.server)
    return polls


def check_certificate(pem: bytes, name: str, server: Server) -> None:
    """The chain names NAME and its leaf is signed by the CA (or the chain's next
    certificate): a fast wrong answer would be no result."""
    chain = x509.load_pem_x509_certificates(pem)
    leaf = chain[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    if names.get_values_for_type(x509.DNSName) != [name]:
        raise RuntimeError(f"{name}: the certificate names {names}")
    if server.root is not None:
        issuer = x509.load_pem_x509_certificate(server.root.read_bytes())
    else:
        issuer = chain[1]
    leaf.verify_directly_issued_by(issuer)


def work_on(
    acme: Client,
    worker: int,
    label: str,
    start: float,
    seconds: float | None,
    count: int,
    poll: float,
) -> list[Order]:
    """Orders from START for SECONDS (None: COUNT orders), one after another."""
    while time.monotonic() < start:
        time.sleep(start - time.monotonic())
    done: list[Order] = []
    while len(done) < count if seconds is None else time.monotonic() < start + seconds:
        began = time.monotonic()
        polls = one_order(acme, f"w{worker}-{label}-{len(done)}.lab.test", poll)
        done.append(Order(began, time.monotonic(), polls))
    return done


def worker_main(worker: int, key_pem: bytes, trust: Path, pipe: Connection) -> None:
    """A worker process, doing as the pipe asks until it sends None: a Server, an
    account there (answered "ready"); a run, its orders (answered with them and the CPU
    seconds they took). A failure is answered ("error", what) and ends the worker."""
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    clients: dict[str, Client] = {}
    command: Any = None
    try:
        while (command := pipe.recv()) is not None:
            if isinstance(command, Server):
                clients[command.name] = account(command, JWKEC(key=key), worker, trust)
                pipe.send("ready")
                continue
            name, label, start, seconds, count, poll = command
            cpu = time.process_time()
            orders = work_on(clients[name], worker, label, start, seconds, count, poll)
            pipe.send((orders, time.process_time() - cpu))
    except Exception as error:  # reported to the benchmark, which stops
        at = f" on {command.name if isinstance(command, Server) else command[0]}, {STEP[0]}"
        pipe.send(("error", f"worker {worker}{at}: {type(error).__name__}: {error}"))


class Workers:
    """W worker processes, one account key each."""

    def __init__(self, keys: list[bytes], trust: Path) -> None:
        # spawn, not fork: this process has threads (the responder)
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[Any] = []
        for worker, key in enumerate(keys):
            mine, theirs = context.Pipe()
            process = context.Process(
                target=worker_main, args=(worker, key, trust, theirs), daemon=True
            )
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    def join(self, server: Server) -> None:
        """An account for every worker on SERVER (before anything is timed)."""
        for pipe in self.pipes:
            pipe.send(server)
        self.answers()

    def answers(self) -> list[Any]:
        replies = [pipe.recv() for pipe in self.pipes]
        for reply in replies:
            if isinstance(reply, tuple) and reply[0] == "error":
                raise SystemExit(f"error: {reply[1]}")
        return replies

    def run(
        self, server: str, label: str, seconds: float | None, orders: int, poll: float
    ) -> tuple[list[Order], float]:
        """Every worker's orders on SERVER (ORDERS shared out, when SECONDS is None), and
        the CPU seconds they used."""
        start = time.monotonic() + START_DELAY
        for worker, pipe in enumerate(self.pipes):
            share = orders // len(self.pipes) + (worker < orders % len(self.pipes))
            pipe.send((server, label, start, seconds, share, poll))
        replies = self.answers()
        return [o for done, _ in replies for o in done], sum(cpu for _, cpu in replies)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # a worker that failed has gone
                pipe.send(None)
        for process in self.processes:
            process.join(STOP_TIMEOUT)
            if process.is_alive():
                process.kill()


@contextmanager
def workers(keys: list[bytes], trust: Path) -> Iterator[Workers]:
    pool = Workers(keys, trust)
    try:
        yield pool
    finally:
        pool.close()


# The measurement.


def percentile(values: list[float], fraction: float) -> float:
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, int(fraction * len(ranked)))]


def measure_run(
    pool: Workers,
    server: Server,
    http01: Responder,
    label: str,
    options: argparse.Namespace,
) -> Run:
    fetched, cpu = http01.fetches[server.name], cpu_seconds(server.pid)
    orders, client_cpu = pool.run(
        server.name, label, options.seconds, options.orders or 0, options.poll_ms / 1000
    )
    server_cpu = cpu_seconds(server.pid) - cpu
    elapsed = max(o.ended for o in orders) - min(o.began for o in orders)
    latencies = [(o.ended - o.began) * 1000 for o in orders]
    return Run(
        orders=len(orders),
        rate=len(orders) / elapsed,
        p50_ms=statistics.median(latencies),
        p99_ms=percentile(latencies, 0.99),
        polls=sum(o.polls for o in orders) / len(orders),
        server_cpu_ms=server_cpu * 1000 / len(orders),
        client_cpu_ms=client_cpu * 1000 / len(orders),
        fetches=http01.fetches[server.name] - fetched,
    )


RunOn = Callable[[str, str, argparse.Namespace], Run]  # (server, label, options)


def rounds(run_on: RunOn, names: list[str], options: argparse.Namespace) -> dict[str, list[Run]]:
    """A warm-up run of each server (one order a worker), then the rounds: the servers
    take turns, every other round in reverse order."""
    warm = argparse.Namespace(**{**vars(options), "seconds": None, "orders": options.workers})
    for name in names:
        run_on(name, "warm", warm)
    runs: dict[str, list[Run]] = {name: [] for name in names}
    for turn in range(options.rounds):
        for name in names if turn % 2 == 0 else reversed(names):
            run = run_on(name, f"{name}-r{turn}", options)
            runs[name].append(run)
            print(
                f"  round {turn + 1}, {name}: {run.rate:.1f} certificates/s, "
                f"p50 {run.p50_ms:.0f} ms",
                flush=True,
            )
    return runs


def account_keys(count: int) -> tuple[list[bytes], list[str]]:
    """COUNT account keys (PKCS#8 PEM) and their JWK thumbprints, base64url."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(count)]
    pems = [
        k.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        for k in keys
    ]
    prints = [b64encode(JWKEC(key=k).thumbprint()).decode() for k in keys]
    return pems, prints


def check_registry(ca: Path, runs: list[Run], workers: int) -> None:
    """Every certificate minica issued over ACME is a row of its registry, with the
    contact of the account that ordered it."""
    rows = json.loads(minica("list", "--ca", ca, "--status", "all", "--json", cwd=ca))
    acme_rows = [r for r in rows if str(r.get("contact") or "").startswith("bench-")]
    expected = sum(run.orders for run in runs) + workers  # and the warm-up's
    if len(acme_rows) != expected:
        raise SystemExit(f"error: minica's registry has {len(acme_rows)} ACME rows, not {expected}")


# The report.


def table(runs: dict[str, list[Run]], options: argparse.Namespace, nproc: int) -> None:
    length = f"{options.seconds:g} s" if options.orders is None else f"{options.orders} orders"
    print(
        f"\nACME orders (http-01): {options.workers} workers, {options.rounds} rounds of "
        f"{length}, polls every {options.poll_ms:g} ms; {nproc} CPUs; "
        "median [range] over the rounds"
    )
    print(
        f"  {'server':<8}{'certificates/s':>20}{'p50 ms':>18}{'p99 ms':>20}{'polls':>7}"
        f"{'http-01':>8}{'server CPU':>12}{'client CPU':>12}{'orders':>8}"
    )
    units = f"{'/order':>7}{'/order':>8}{'ms/cert':>12}{'ms/cert':>12}"
    print(f"  {'':<8}{'':>20}{'':>18}{'':>20}{units}")
    for name, samples in runs.items():
        print(
            f"  {name:<8}{spread([r.rate for r in samples], '.1f'):>20}"
            f"{spread([r.p50_ms for r in samples], '.0f'):>18}"
            f"{spread([r.p99_ms for r in samples], '.0f'):>20}"
            f"{statistics.median(r.polls for r in samples):>7.2f}"
            f"{statistics.median(r.fetches / r.orders for r in samples):>8.2f}"
            f"{statistics.median(r.server_cpu_ms for r in samples):>12.1f}"
            f"{statistics.median(r.client_cpu_ms for r in samples):>12.1f}"
            f"{sum(r.orders for r in samples):>8}"
        )


def targets(runs: dict[str, list[Run]]) -> None:
    ratio = [m.rate / p.rate for m, p in zip(runs["minica"], runs["pebble"], strict=True)]
    cpu = [
        m.server_cpu_ms / p.server_cpu_ms
        for m, p in zip(runs["minica"], runs["pebble"], strict=True)
    ]
    low, high = interval(cpu)
    print("\nTarget (issue 15), on the rounds' side-by-side ratios")
    print(f"  {verdict('minica / Pebble certificates/s', ratio, TARGET_RATIO, above=True)}")
    print(
        f"  minica / Pebble server CPU per certificate: {statistics.median(cpu):.2f} "
        f"[90%: {low:.2f}-{high:.2f}] (reported)"
    )


def checked_fetches(runs: dict[str, list[Run]]) -> None:
    """Each order was validated at the responder (Pebble fetches each key authorization
    more than once; minica once)."""
    for name, samples in runs.items():
        for run in samples:
            if run.fetches < run.orders:
                raise SystemExit(
                    f"error: {name} fetched http-01 {run.fetches} times for {run.orders} orders"
                )


@contextmanager
def logs_on_failure(work: Path) -> Iterator[None]:
    """The end of each server's log when the benchmark stops on an error."""
    try:
        yield
    except SystemExit:
        for log in ("pebble.log", "minica.log"):
            lines = (work / log).read_text(errors="replace").splitlines()
            print(f"--- the end of {log}:", *lines[-LOG_LINES:], sep="\n")
        raise


def benchmark(options: argparse.Namespace) -> None:
    compile_package()
    keys, thumbprints = account_keys(options.workers)
    with (
        tempfile.TemporaryDirectory() as folder,
        challtestsrv() as lab,
        responder(thumbprints) as http01,
    ):
        work, dns = Path(folder), f"{lab.dns[0]}:{lab.dns[1]}"
        tls = pebble_tls(work)
        with minica_serve(work, dns, http01.port, options.profile) as ours:
            trust = work / "trust.pem"
            trust.write_bytes(tls[2].read_bytes() + ours.trust.read_bytes())
            with workers(keys, trust) as pool, logs_on_failure(work):
                pool.join(ours)

                def run_on(name: str, label: str, options: argparse.Namespace) -> Run:
                    """minica serve runs throughout, as a service does. Pebble is new for
                    every run: its store's newOrder looks through every authorization it
                    holds with a lock held, and deadlocks after a few thousand
                    (Pebble 2.4: FindValidAuthorization against makeAuthorizations)."""
                    if name == "minica":
                        return measure_run(pool, ours, http01, label, options)
                    with pebble(work, dns, http01.port, tls) as fresh:
                        pool.join(fresh)
                        return measure_run(pool, fresh, http01, label, options)

                names = [name for name in SERVERS if options.only in (None, name)]
                runs = rounds(run_on, names, options)
        if "minica" in runs:
            check_registry(work / "ca", runs["minica"], options.workers)
    checked_fetches(runs)
    table(runs, options, os.cpu_count() or 0)
    if options.only is None:
        targets(runs)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=10.0, help="of each run")
    length.add_argument("--orders", type=int, help="in each run, instead of --seconds")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--poll-ms", type=float, default=10.0)
    parser.add_argument(
        "--profile", type=Path, help="run minica serve under cProfile, its statistics here"
    )
    parser.add_argument("--only", choices=SERVERS, help="measure one server alone (profiling)")
    options = parser.parse_args()
    if options.orders is not None:
        options.seconds = None
    return options


def main() -> None:
    options = parse_arguments()
    for tool in (PEBBLE, "pebble-challtestsrv"):
        if shutil.which(tool) is None:
            raise SystemExit(f"error: {tool} not found (Debian: apt-get install pebble)")
    benchmark(options)


if __name__ == "__main__":
    main()
