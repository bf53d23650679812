"""Whole-process speed of the CLI, side by side with its baselines and peers, in one run.

    python tests/benchmarks/bench_cli.py [--runs N] [--rows N]

Each figure is the median wall time of N runs of a whole process; the contenders take
turns, so that a busy machine slows them alike. The targets are ratios:

- `minica --version` and `minica --help`: at most 1.25 x `python -c "import cryptography.x509"`;
- `minica sign --profile server`: at most 1.25 x bare_sign.py, the same signing in a bare
  cryptography script; `openssl x509 -req` and easy-rsa `sign-req` are reported beside it;
- with ROWS (default 100,000) certificates in the registry: `sign` and `show SERIAL`
  within 10% of their time on an empty CA; `list --status revoked --json` and `crl` with
  ROWS revoked entries under 2 s, the CRL within 1.5 x building it in-process with
  cryptography.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from minica.registry import Record
from minica.registry.sqlite import SqliteRegistry

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MINICA = [str(Path(PYTHON).parent / "minica")]  # the console script, as users run it
# What any CLI made of Typer, PyYAML and SQLite that signs with cryptography must import:
# the floor under `minica sign`, whatever minica itself does.
IMPORT_FLOOR = "import cryptography.x509, typer, yaml, sqlite3"
FLOOR = f"python -c '{IMPORT_FLOOR}'"
# minica's core doing what `minica sign` does, without the command line around it.
CORE_SIGN = """
from pathlib import Path
from minica import CertificateAuthority, requests
ca = CertificateAuthority.open(Path("ca"))
request = requests.load(Path("req.csr").read_bytes(), "req.csr")
Path("core.crt").write_bytes(ca.sign(request, ca.profile("server")).pem)
"""


def compile_package() -> None:
    """Byte-compile minica, as pip does when it installs a package. An editable install
    under PYTHONDONTWRITEBYTECODE (set on this project's machines) would otherwise compile
    every module on every run: 40 ms that no installed minica pays."""
    import minica

    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(Path(minica.__file__).parent)], check=True
    )


def wall(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, timeout=300)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def medians(contenders: dict[str, Callable[[], float]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()  # warm the page cache
    for turn in range(runs):
        # every other turn backwards: no contender always runs after the same one (a sign's
        # fsyncs, say, can slow whatever comes next)
        order = list(contenders.items())
        for name, run in order if turn % 2 == 0 else reversed(order):
            samples[name].append(run())
    return {name: statistics.median(times) for name, times in samples.items()}


def setup(work: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run([*MINICA, *args], cwd=work, check=True, capture_output=True)

    run("init", "--ca", "ca", "--cn", "bench root")
    run("req", "--cn", "www.example.test", "--dns", "www.example.test", "--out", "req.csr")
    shutil.copytree(work / "ca", work / "big")
    (work / "ext.cnf").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:www.example.test\n"
    )


def fill_registry(ca: Path, rows: int) -> list[tuple[int, datetime]]:
    """ROWS revoked certificates in the registry, through the registry API; returns them."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    stamp, later = now, now + timedelta(days=90)
    serials = [(1 << 158) | secrets.randbits(158) for _ in range(rows)]
    SqliteRegistry(ca).add_many(
        Record(
            format(s, "x"),
            f"CN=host{i}.example.test",
            "server",
            None,
            stamp,
            later,
            stamp,
            stamp,
            "superseded",
        )
        for i, s in enumerate(serials)
    )
    return [(s, now) for s in serials]


def in_process_crl(ca: Path, revoked: list[tuple[int, datetime]]) -> float:
    """Seconds to build and sign the same CRL inside one Python process with cryptography."""
    key = serialization.load_pem_private_key((ca / "private" / "ca.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # `minica init`'s default, ec-p384
    issuer = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    start = time.perf_counter()
    entries = [
        x509.RevokedCertificateBuilder()
        .serial_number(s)
        .revocation_date(at)
        .add_extension(x509.CRLReason(x509.ReasonFlags.superseded), False)
        .build()
        for s, at in revoked
    ]
    now = datetime.now(timezone.utc)
    x509.CertificateRevocationListBuilder(
        issuer_name=issuer.subject,
        last_update=now,
        next_update=now + timedelta(days=7),
        revoked_certificates=entries,
    ).add_extension(x509.CRLNumber(1), False).sign(key, hashes.SHA384())
    return time.perf_counter() - start


def easy_rsa(work: Path) -> Callable[[], float] | None:
    """easy-rsa sign-req of the same CSR, if easy-rsa is installed (Debian: easy-rsa)."""
    script = shutil.which("easyrsa") or "/usr/share/easy-rsa/easyrsa"
    if not Path(script).exists():
        return None
    pki = work / "easyrsa"
    env = {
        **os.environ,
        "EASYRSA_BATCH": "1",
        "EASYRSA_PKI": str(pki / "pki"),
        "EASYRSA_REQ_CN": "bench easy-rsa root",
    }
    pki.mkdir()
    subprocess.run([script, "init-pki"], cwd=pki, env=env, check=True, capture_output=True)
    subprocess.run(
        [script, "build-ca", "nopass"], cwd=pki, env=env, check=True, capture_output=True
    )
    counter = iter(range(10**6))

    def sign() -> float:
        name = f"host{next(counter)}"
        subprocess.run(
            [script, "import-req", str(work / "req.csr"), name],
            cwd=pki,
            env=env,
            check=True,
            capture_output=True,
        )
        return wall([script, "sign-req", "server", name], pki, env)

    return sign


def report(title: str, results: dict[str, float], base: str) -> None:
    print(f"\n{title}")
    for name, seconds in results.items():
        print(f"  {name:<44}{seconds * 1000:>9.1f} ms{seconds / results[base]:>8.2f}x")


def verdict(label: str, value: float, limit: float) -> str:
    return f"{label}: {value:.2f} (target <= {limit}) {'met' if value <= limit else 'MISSED'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    compile_package()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        setup(work)
        outputs = iter(range(10**6))

        def minica(*arguments: str) -> Callable[[], float]:
            return lambda: wall(
                [*MINICA, *(a.replace("{n}", str(next(outputs))) for a in arguments)], work
            )

        start = medians(
            {
                "python -c 'import cryptography.x509'": lambda: wall(
                    [PYTHON, "-c", "import cryptography.x509"], work
                ),
                "minica --version": minica("--version"),
                "minica --help": minica("--help"),
            },
            args.runs,
        )
        report("Start-up", start, "python -c 'import cryptography.x509'")

        signing = {
            "bare_sign.py (cryptography, no checks)": lambda: wall(
                [PYTHON, str(HERE / "bare_sign.py"), "ca", "req.csr", "b.crt"], work
            ),
            "minica sign --profile server": minica(
                "sign", "--ca", "ca", "--profile", "server", "req.csr", "--out", "m{n}.crt"
            ),
            "minica's core, no CLI (CA.open + sign)": lambda: wall([PYTHON, "-c", CORE_SIGN], work),
            FLOOR: lambda: wall([PYTHON, "-c", IMPORT_FLOOR], work),
            "openssl x509 -req": lambda: wall(
                [
                    "openssl",
                    "x509",
                    "-req",
                    "-in",
                    "req.csr",
                    "-CA",
                    "ca/ca.crt",
                    "-CAkey",
                    "ca/private/ca.key",
                    "-set_serial",
                    str(secrets.randbits(120)),
                    "-days",
                    "90",
                    "-extfile",
                    "ext.cnf",
                    "-out",
                    "o.crt",
                ],
                work,
            ),
        }
        if (sign_with_easy_rsa := easy_rsa(work)) is not None:
            signing["easy-rsa sign-req server"] = sign_with_easy_rsa
        sign = medians(signing, args.runs)
        report(
            "Signing one CSR (peers reported, not judged)",
            sign,
            "bare_sign.py (cryptography, no checks)",
        )

        revoked = fill_registry(work / "big", args.rows)
        serial = next((work / "ca" / "certs").glob("*.crt")).stem
        shutil.copy(work / "ca" / "certs" / f"{serial}.crt", work / "big" / "certs")
        row = SqliteRegistry(work / "ca").get(serial)
        assert row is not None
        SqliteRegistry(work / "big").add_many([row])
        scale = medians(
            {
                "sign, empty CA": minica(
                    "sign", "--ca", "ca", "-p", "server", "req.csr", "--out", "e{n}.crt"
                ),
                f"sign, {args.rows:,} rows": minica(
                    "sign", "--ca", "big", "-p", "server", "req.csr", "--out", "g{n}.crt"
                ),
                "show SERIAL, empty CA": minica("show", serial, "--ca", "ca"),
                f"show SERIAL, {args.rows:,} rows": minica("show", serial, "--ca", "big"),
            },
            args.runs,
        )
        report("Registry scale", scale, "sign, empty CA")
        heavy = medians(
            {
                f"list --status revoked --json, {args.rows:,} revoked": minica(
                    "list", "--ca", "big", "--status", "revoked", "--json"
                ),
                f"crl, {args.rows:,} revoked": minica("crl", "--ca", "big", "--out", "c.pem"),
            },
            max(3, args.runs // 3),
        )
        in_process = statistics.median(in_process_crl(work / "big", revoked) for _ in range(3))
        heavy["same CRL in-process with cryptography"] = in_process
        report("Big registry", heavy, "same CRL in-process with cryptography")

    print("\nTargets")
    base = start["python -c 'import cryptography.x509'"]
    bare = sign["bare_sign.py (cryptography, no checks)"]
    lines = [
        verdict(
            "minica --version / import cryptography.x509", start["minica --version"] / base, 1.25
        ),
        verdict("minica --help / import cryptography.x509", start["minica --help"] / base, 1.25),
        verdict("minica sign / bare_sign.py", sign["minica sign --profile server"] / bare, 1.25),
        verdict(
            "sign 100k / sign empty",
            scale[f"sign, {args.rows:,} rows"] / scale["sign, empty CA"],
            1.10,
        ),
        verdict(
            "show 100k / show empty",
            scale[f"show SERIAL, {args.rows:,} rows"] / scale["show SERIAL, empty CA"],
            1.10,
        ),
        verdict(
            "list --status revoked --json (s)",
            heavy[f"list --status revoked --json, {args.rows:,} revoked"],
            2.0,
        ),
        verdict("crl (s)", heavy[f"crl, {args.rows:,} revoked"], 2.0),
        verdict("crl / in-process CRL", heavy[f"crl, {args.rows:,} revoked"] / in_process, 1.5),
        "import floor (cryptography.x509, typer, yaml, sqlite3) / bare_sign.py: "
        f"{sign[FLOOR] / bare:.2f} (reported)",
        "minica sign / openssl x509 -req: "
        f"{sign['minica sign --profile server'] / sign['openssl x509 -req']:.2f} (reported)",
    ]
    if "easy-rsa sign-req server" in sign:
        ratio = sign["minica sign --profile server"] / sign["easy-rsa sign-req server"]
        lines.append(f"minica sign / easy-rsa sign-req: {ratio:.2f} (reported)")
    print("\n".join(f"  {line}" for line in lines))


if __name__ == "__main__":
    main()
