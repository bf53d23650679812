"""`minica trust` on what needs no sandbox: the NSS store of a HOME in tmp_path (the
Chromium database, made if missing, and Firefox profiles), judged by NSS's own
certutil; the refusals (an unconstrained root, an unknown store) before any store is
touched; and `minica init --local`, the root made for `trust install`. The system and
Java stores, and the clients that read them, are tested in a private mount namespace
(tests/test_trust_clients.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import assert_refused, require_tool, run_minica
from cryptography import x509

from minica.constraints import NameConstraints


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "home").mkdir()
    return {"HOME": str(tmp_path / "home")}


@pytest.fixture
def local_ca(tmp_path: Path) -> Path:
    run_minica("init", "--ca", tmp_path / "ca", "--local", "--permit-dns", "dev.test", check=True)
    return tmp_path / "ca"


def nss_status(ca: Path, home: dict[str, str]) -> list[dict[str, object]]:
    done = run_minica("trust", "status", "--ca", ca, "--store", "nss", "--json", env=home)
    assert done.code == 0, done.stderr
    return list(json.loads(done.stdout))


def certutil_list(database: Path) -> str:
    return subprocess.run(
        ["certutil", "-L", "-d", f"sql:{database}"], capture_output=True, text=True, check=True
    ).stdout


def test_init_local_is_constrained_to_this_machine(local_ca: Path) -> None:
    root = x509.load_pem_x509_certificate((local_ca / "ca.crt").read_bytes())
    constraints = NameConstraints.of(root)
    assert constraints.dns == ("localhost", "dev.test")
    assert [str(n) for n in constraints.ip] == ["127.0.0.0/8", "::1/128"]
    cn = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert str(cn).startswith("minica local CA ")
    done = run_minica("issue", "--ca", local_ca, "--profile", "server", "--cn", "app.localhost",
                      "--ip", "::1", "--out", local_ca.parent / "app.crt")  # fmt: skip
    assert done.code == 0, done.stderr
    outside = run_minica("issue", "--ca", local_ca, "--profile", "server", "--cn", "example.com",
                         "--out", local_ca.parent / "x.crt")  # fmt: skip
    assert_refused(outside, "outside the name constraints")


@pytest.mark.tools
def test_nss_install_status_uninstall(local_ca: Path, home: dict[str, str]) -> None:
    require_tool("certutil")
    database = Path(home["HOME"]) / ".pki" / "nssdb"
    assert nss_status(local_ca, home) == [
        {"store": "nss", "location": str(database), "action": "not trusted", "trusted": False,
         "detail": None}
    ]  # fmt: skip
    done = run_minica("trust", "install", "--ca", local_ca, "--store", "nss", env=home)
    assert done.code == 0, done.stderr
    assert "may certify: localhost, dev.test, 127.0.0.0/8, ::1/128" in done.stderr
    assert "installed, trusted" in done.stdout
    assert "minica minica local CA" in certutil_list(database)  # named for what it is
    again = run_minica("trust", "install", "--ca", local_ca, "--store", "nss", env=home)
    assert "already installed, trusted" in again.stdout
    assert [entry["trusted"] for entry in nss_status(local_ca, home)] == [True]
    gone = run_minica("trust", "uninstall", "--ca", local_ca, "--store", "nss", env=home)
    assert gone.code == 0 and "removed, not trusted" in gone.stdout, gone.stdout
    assert "minica" not in certutil_list(database)
    assert [entry["trusted"] for entry in nss_status(local_ca, home)] == [False]


@pytest.mark.tools
def test_every_firefox_profile_is_a_store_too(local_ca: Path, home: dict[str, str]) -> None:
    require_tool("certutil")
    profile = Path(home["HOME"]) / ".mozilla" / "firefox" / "abcd.default-release"
    profile.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{profile}", "--empty-password"], check=True)
    done = run_minica("trust", "install", "--ca", local_ca, "--store", "nss", env=home)
    assert done.code == 0, done.stderr
    assert [e["location"] for e in nss_status(local_ca, home) if e["trusted"]] == [
        str(Path(home["HOME"]) / ".pki" / "nssdb"),
        str(profile),
    ]


def test_an_unconstrained_root_is_refused_and_nothing_installed(
    tmp_path: Path, home: dict[str, str]
) -> None:
    run_minica("init", "--ca", tmp_path / "open", check=True)
    done = run_minica("trust", "install", "--ca", tmp_path / "open", "--store", "nss", env=home)
    assert_refused(done, "has no name constraints", "could vouch for any site")
    assert "hint: " in done.stderr and "--permit-dns" in done.stderr
    assert not (Path(home["HOME"]) / ".pki").exists()


def test_an_unknown_store_is_refused(local_ca: Path, home: dict[str, str]) -> None:
    done = run_minica("trust", "install", "--ca", local_ca, "--store", "keychain", env=home)
    assert_refused(done, "no trust store 'keychain'", "known: system, nss, java")


@pytest.mark.parametrize(
    "os_release, anchors",
    [
        ("ID=debian\n", "/usr/local/share/ca-certificates"),
        ("ID=ubuntu\nID_LIKE=debian\n", "/usr/local/share/ca-certificates"),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "/etc/pki/ca-trust/source/anchors"),
        ('ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', "/etc/pki/trust/anchors"),
        ("ID=arch\n", "/etc/ca-certificates/trust-source/anchors"),
        ("ID=nixos\n", None),
    ],
)
def test_the_system_store_is_told_by_os_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, os_release: str, anchors: str | None
) -> None:
    from minica.trust import system

    (tmp_path / "os-release").write_text(os_release)
    monkeypatch.setattr(system, "OS_RELEASE", tmp_path / "os-release")
    found = system.family()
    assert (str(found.anchors) if found else None) == anchors


def test_a_machine_without_any_store_is_told_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from minica import trust
    from minica.errors import NotFoundError
    from minica.trust.java import JavaStore
    from minica.trust.nss import NssStore
    from minica.trust.system import SystemStore

    for store in (SystemStore, NssStore, JavaStore):
        monkeypatch.setattr(store, "found", lambda self: False)
    with pytest.raises(NotFoundError, match="no trust store found on this machine"):
        trust.stores([])


def test_a_store_tool_that_hangs_or_is_missing_is_a_failed_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from minica.trust import base

    monkeypatch.setattr(base, "RUN_TIMEOUT", 0.2)
    hung = base.run(["sleep", "5"])
    assert hung.returncode != 0 and base.said(hung) == "error: sleep did not finish within 0.2 s"
    missing = base.run(["/nonexistent/certutil"])
    assert missing.returncode != 0 and "cannot run /nonexistent/certutil" in base.said(missing)
