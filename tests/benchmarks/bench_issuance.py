"""In-process issuance speed: minica's in-memory CA against trustme and a bare loop.

    python tests/benchmarks/bench_issuance.py [--rounds N (40)] [--batch N]

Each contender issues a leaf certificate for "localhost" with a new key, the same way:
key generation, the extensions a TLS server certificate carries (basic constraints, key
usage, SKI, AKI, EKU serverAuth, SAN), and a signature by an EC P-256 CA. The rounds
interleave the contenders, so that a busy machine slows them alike; the table shows the
median time per certificate and the ratios the targets are about:
minica faster than trustme, and within 15% of the bare `cryptography` loop. Each ratio
comes with a 90% bootstrap interval: a target is met or missed only when the whole
interval says so (RSA key generation varies so much that an even race stays undecided).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from minica import CertificateAuthority, FixtureCA

KEY_TYPES = {"ec-p256": trustme.KeyType.ECDSA, "rsa-2048": trustme.KeyType.RSA}


def bare_loop(ca: CertificateAuthority, key_type: str) -> Callable[[], object]:
    """What any test suite could write by hand with cryptography: the baseline."""
    ca_key, ca_cert = ca.private_key, ca.certificate
    ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value

    def issue() -> object:
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
        if key_type == "ec-p256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(65537, 2048)
        now = datetime.now(timezone.utc)
        usage = x509.KeyUsage(
            True, False, key_type == "rsa-2048", False, False, False, False, False, False
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        )
        return builder.sign(ca_key, hashes.SHA256()), key

    return issue


def contenders(key_type: str) -> dict[str, Callable[[], object]]:
    minica_ca = FixtureCA(CertificateAuthority.in_memory(key_type="ec-p256"))
    trustme_ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
    return {
        "bare cryptography": bare_loop(minica_ca.authority, key_type),
        "trustme": lambda: trustme_ca.issue_cert("localhost", key_type=KEY_TYPES[key_type]),
        "minica": lambda: minica_ca.certify("localhost", key_type=key_type),
    }


def measure(key_type: str, rounds: int, batch: int) -> dict[str, list[float]]:
    """Samples of seconds per certificate for each contender."""
    runs = contenders(key_type)
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for issue in runs.values():
        issue()  # warm up: imports, caches, profile loading
    for turn in range(rounds):
        order = list(runs.items())
        for name, issue in order if turn % 2 == 0 else reversed(order):  # no fixed neighbour
            start = time.perf_counter()
            for _ in range(batch):
                issue()
            samples[name].append((time.perf_counter() - start) / batch)
    return samples


def ratio_interval(mine: list[float], theirs: list[float]) -> tuple[float, float]:
    """A 90% bootstrap interval for the ratio of the medians: how far noise could move it."""
    generator = random.Random(0)
    ratios = sorted(
        statistics.median(generator.choices(mine, k=len(mine)))
        / statistics.median(generator.choices(theirs, k=len(theirs)))
        for _ in range(1000)
    )
    return ratios[50], ratios[949]


def verdict(label: str, mine: list[float], theirs: list[float], limit: float) -> str:
    """Met or missed only when noise could not change the answer."""
    ratio = statistics.median(mine) / statistics.median(theirs)
    low, high = ratio_interval(mine, theirs)
    if high <= limit:
        outcome = "met"
    elif low > limit:
        outcome = "MISSED"
    else:
        outcome = "within noise of the target"
    return f"{label} {ratio:.2f} [90%: {low:.2f}-{high:.2f}] (target <= {limit}) {outcome}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=0, help="default: 100 EC, 1 RSA")
    args = parser.parse_args()
    print(
        f"{'key type':<10}{'contender':<20}{'per cert':>12}{'certs/s':>10}"
        f"{'vs bare':>9}{'vs trustme':>12}"
    )
    verdicts = []
    for key_type in KEY_TYPES:
        # RSA key generation time varies several-fold from key to key, and is nearly all of
        # the work: hundreds of single-key samples (8 a round) narrow the medians down
        if key_type == "ec-p256":
            samples = measure(key_type, args.rounds, args.batch or 100)
        else:
            samples = measure(key_type, args.rounds * 8, args.batch or 1)
        result = {name: statistics.median(times) for name, times in samples.items()}
        for name, seconds in result.items():
            print(
                f"{key_type:<10}{name:<20}{seconds * 1e6:>10.0f}us{1 / seconds:>10.0f}"
                f"{seconds / result['bare cryptography']:>9.2f}{seconds / result['trustme']:>12.2f}"
            )
        mine = samples["minica"]
        verdicts.append(
            verdict(f"{key_type}: minica/bare", mine, samples["bare cryptography"], 1.15)
        )
        verdicts.append(verdict(f"{key_type}: minica/trustme", mine, samples["trustme"], 1.0))
    print()
    print("\n".join(verdicts))


if __name__ == "__main__":
    main()
