"""The CA core as every front end sees it: the same behaviour in memory and on a folder,
typed errors, one clock, safety under threads, profiles that follow their files, and a
module graph without cycles."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO
from cryptography import x509

from minica import (
    CertificateAuthority,
    ConflictError,
    FixtureCA,
    InputError,
    ManualClock,
    MinicaError,
    Names,
    NotFoundError,
    PolicyError,
    StorageError,
    Subject,
)
from minica.formats import serial_hex
from minica.keys import generate
from minica.requests import build_csr, load
from minica.validity import BACKDATE

NOW = datetime(2031, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

Maker = Callable[..., CertificateAuthority]


@pytest.fixture(params=["memory", "folder"])
def make_ca(request: pytest.FixtureRequest, tmp_path: Path) -> Maker:
    """Makes a CA in memory or in a CA folder (then opened again, as the CLI does)."""

    def make(**options: object) -> CertificateAuthority:
        if request.param == "memory":
            return CertificateAuthority.in_memory(**options)  # type: ignore[arg-type]
        folder = tmp_path / f"ca{len(list(tmp_path.iterdir()))}"
        CertificateAuthority.init(folder, **options)  # type: ignore[arg-type]
        clock = options.get("clock")
        if clock is None:
            return CertificateAuthority.open(folder)
        return CertificateAuthority.open(folder, clock=clock)  # type: ignore[arg-type]

    return make


def serial(issued_certificate: x509.Certificate) -> str:
    return serial_hex(issued_certificate.serial_number)


def leaf(ca: CertificateAuthority, name: str = "www.lab.test") -> x509.Certificate:
    issued, _ = ca.issue("server", Subject(common_name=name))
    return issued.certificate


# --- the same rules in memory and in a folder ---------------------------------------------


def test_revoking_what_was_never_issued_is_not_found(make_ca: Maker) -> None:
    ca = make_ca()
    with pytest.raises(NotFoundError, match="no certificate with serial 123abc"):
        ca.revoke("123abc")


def test_revoking_garbage_is_bad_input(make_ca: Maker) -> None:
    ca = make_ca()
    with pytest.raises(InputError, match="is not a serial number"):
        ca.revoke("not a serial")
    with pytest.raises(InputError, match="unknown revocation reason"):
        ca.revoke(serial(leaf(ca)), "because")


def test_a_second_revocation_is_a_conflict(make_ca: Maker) -> None:
    ca = make_ca()
    number = serial(leaf(ca))
    ca.revoke(number, "superseded")
    with pytest.raises(ConflictError, match="already revoked"):
        ca.revoke(number.upper())  # any form of the serial names the same certificate


def test_ca_compromise_is_refused_for_a_leaf(make_ca: Maker) -> None:
    ca = make_ca()
    with pytest.raises(PolicyError, match="ca-compromise is for CA certificates"):
        ca.revoke(serial(leaf(ca)), "ca-compromise")


def test_crls_list_revocations_and_a_refused_crl_spends_no_number(make_ca: Maker) -> None:
    ca = make_ca()
    revoked = serial(leaf(ca))
    ca.revoke(revoked, "key-compromise")
    with pytest.raises(PolicyError, match="lifetime of 0 days"):
        ca.crl(days=0)
    with pytest.raises(PolicyError, match="after the issuer's own expiry"):
        ca.crl(days=100_000)
    crl = ca.crl()
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 1
    assert [format(entry.serial_number, "x") for entry in crl] == [revoked]
    assert ca.latest_crl() == crl


def test_the_default_crl_lifetime_is_cut_to_the_ca_expiry(make_ca: Maker) -> None:
    clock = ManualClock(NOW)
    ca = make_ca(days=3, clock=clock)
    assert ca.crl().next_update_utc == ca.certificate.not_valid_after_utc


def test_an_expired_ca_signs_nothing(make_ca: Maker) -> None:
    clock = ManualClock(NOW)
    ca = make_ca(days=1, clock=clock)
    clock.advance(timedelta(days=2))
    with pytest.raises(PolicyError, match="the CA expired on"):
        leaf(ca)
    with pytest.raises(PolicyError, match="the CA expired on"):
        ca.crl()


def test_profiles_are_found_by_name_wherever_a_profile_is_taken(make_ca: Maker) -> None:
    ca = make_ca()
    key = generate("ec-p256")
    request = load(build_csr(key, Subject(common_name="a.lab.test"), Names()), "a.csr")
    issued = ca.sign(request, "server")
    assert issued.profile == "server"
    assert ca.record(issued.certificate).profile == "server"


# --- one clock -------------------------------------------------------------------------------


def test_every_date_comes_from_the_ca_clock(make_ca: Maker) -> None:
    clock = ManualClock(NOW)
    ca = make_ca(clock=clock)
    clock.advance(timedelta(hours=1))
    certificate = leaf(ca)
    assert certificate.not_valid_before_utc == NOW + timedelta(hours=1) - BACKDATE
    assert ca.record(certificate).issued_at == NOW + timedelta(hours=1)
    clock.advance(timedelta(hours=1))
    assert ca.revoke(serial(certificate)).revoked_at == NOW + timedelta(hours=2)
    assert ca.crl().last_update_utc == NOW + timedelta(hours=2)
    clock.advance(timedelta(days=400))
    assert [r.status_at(clock()) for r in ca.records()] == ["revoked"]


def test_fixtures_date_their_failures_by_the_ca_clock() -> None:
    clock = ManualClock(NOW)
    fixtures = FixtureCA(CertificateAuthority.in_memory(clock=clock))
    clock.advance(timedelta(days=1))
    expired = fixtures.expired("localhost").certificate
    assert expired.not_valid_after_utc == NOW + timedelta(days=1) - timedelta(days=1)


# --- typed errors ----------------------------------------------------------------------------


def test_opening_a_folder_without_a_ca_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no CA in") as caught:
        CertificateAuthority.open(str(tmp_path))  # a str is a path too
    assert caught.value.code == "no-ca"


def test_making_a_ca_where_one_is_is_a_conflict(tmp_path: Path) -> None:
    CertificateAuthority.init(tmp_path / "ca")
    with pytest.raises(ConflictError, match="already holds a CA"):
        CertificateAuthority.init(str(tmp_path / "ca"))


def test_every_error_kind_is_a_minica_error() -> None:
    for kind in (NotFoundError, ConflictError, PolicyError, InputError, StorageError):
        assert issubclass(kind, MinicaError)
    assert issubclass(InputError, ValueError)  # what Python code expects of a bad argument


def test_the_core_names_no_cli_flag() -> None:
    """Core messages speak the core's terms; the CLI adds the flags (cli/__init__.HINTS).
    Exempt: the service's page, whose command lines are other programs' (certbot, lego),
    and trust/, which runs other programs (certutil, keytool)."""
    offenders = []
    for path in sorted((REPO / "minica").rglob("*.py")):
        if {"cli", "trust"} & set(path.parts) or path.parts[-2:] == ("serve", "page.py"):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) in docstrings:
                    continue
                text = node.value
                if " --" in f" {text}" and any(c.isalpha() for c in text.split("--", 1)[1][:1]):
                    offenders.append(f"{path.name}: {text!r}")
    assert offenders == []


def test_a_key_that_is_not_the_cas_is_refused_before_signing(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder)
    other = tmp_path / "other"
    CertificateAuthority.init(other)
    (folder / "private" / "ca.key").write_bytes((other / "private" / "ca.key").read_bytes())
    ca = CertificateAuthority.open(folder)
    with pytest.raises(StorageError, match="the CA key does not belong to the CA certificate"):
        leaf(ca)
    assert ca.records() == []


# --- threads ---------------------------------------------------------------------------------


def test_one_ca_serves_sixteen_threads(make_ca: Maker) -> None:
    ca = make_ca(key_type="ec-p256")
    serials: list[str] = []
    numbers: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def work(n: int) -> None:
        try:
            start.wait()
            for round_ in range(4):
                certificate = leaf(ca, f"t{n}-{round_}.lab.test")
                serials.append(serial(certificate))
                if round_ % 2:
                    ca.revoke(serial(certificate), "superseded")
                crl = ca.crl()
                numbers.append(
                    crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
                )
        except BaseException as error:  # collected: the assertion shows them
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(serials)) == len(serials) == 64
    assert sorted(numbers) == list(range(1, 65))  # each number once: they only grow
    assert len(ca.records("revoked")) == 32
    assert ca.latest_crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 64


def test_the_key_and_its_passphrase_are_read_once_among_threads(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder, passphrase=b"correct horse")
    asked: list[int] = []

    def passphrase() -> bytes:
        asked.append(1)
        threading.Event().wait(0.05)  # a slow prompt: every thread arrives meanwhile
        return b"correct horse"

    ca = CertificateAuthority.open(folder, passphrase)
    threads = [threading.Thread(target=leaf, args=(ca, f"k{n}.lab.test")) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert asked == [1]
    assert len(ca.records()) == 16


# --- profiles follow their files -------------------------------------------------------------


def test_an_edited_profile_is_seen_without_reopening_the_ca(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder)
    ca = CertificateAuthority.open(folder)
    assert ca.profile("server").validity_days == 90
    path = folder / "profiles" / "server.yaml"
    path.write_text(path.read_text().replace("validity_days: 90", "validity_days: 30"))
    assert ca.profile("server").validity_days == 30
    (folder / "profiles" / "lab-web.yaml").write_text("description: lab web\nextends: server\n")
    assert ca.profile("lab-web").validity_days == 30
    path.write_text(path.read_text().replace("validity_days: 30", "validity_days: 20"))
    assert ca.profile("lab-web").validity_days == 20  # what it extends changed


def test_an_unchanged_profile_is_not_read_again(tmp_path: Path) -> None:
    folder = tmp_path / "ca"
    CertificateAuthority.init(folder)
    ca = CertificateAuthority.open(folder)
    assert ca.profile("server") is ca.profile("server")


# --- the module graph --------------------------------------------------------------------


def imports_of(path: Path, package: Path) -> set[str]:
    """The minica modules ``path`` imports, anywhere in it (also inside functions)."""
    module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module.removesuffix(".__init__")
    base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - node.level + 1]
                target = ".".join(parts + ([node.module] if node.module else []))
                names = [f"{target}.{alias.name}" for alias in node.names]
            else:
                target, names = node.module or "", []
            candidates = [target, *names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in candidates if name.startswith("minica")}
    return found


def test_no_import_cycle_anywhere_in_minica() -> None:
    package = REPO / "minica"
    modules = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph = {
        name: {m for m in imports_of(path, package) if m in modules and m != name}
        for name, path in modules.items()
    }
    graph = {name: {m for m in targets if m != "minica"} for name, targets in graph.items()}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in trail:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in done:
                visit(target, [*trail, target])
        done.add(node)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


def test_the_registry_keeps_the_subject_as_the_certificate_writes_it(make_ca: Maker) -> None:
    ca = make_ca()
    issued, _ = ca.issue("client", Subject(common_name="Smith, Alice + Bob", organization="Lab"))
    assert ca.record(issued.certificate).subject == issued.certificate.subject.rfc4514_string()
