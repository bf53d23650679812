"""example-ca/: the committed example PKI works as its README says."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLE_CA, OpenSSL, assert_refused, listing, run_minica


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    copy = tmp_path / "example-pki"
    shutil.copytree(EXAMPLE_CA, copy)
    for ca in ("root", "issuing"):
        (copy / ca / "private").chmod(0o700)
        (copy / ca / "private" / "ca.key").chmod(0o600)
    return copy


def test_the_root_recorded_the_intermediate_and_the_intermediate_its_two_certificates(
    pki: Path,
) -> None:
    assert [row["profile"] for row in listing(pki / "root")] == ["intermediate-ca"]
    rows = listing(pki / "issuing")
    assert sorted((row["profile"], row["subject"]) for row in rows) == [
        ("client", "CN=Alice Example"),
        ("server", "CN=www.example.test"),
    ]
    assert all(row["status"] == "valid" for row in rows)
    chain = (pki / "issuing" / "ca-chain.crt").read_text()
    assert chain == (pki / "issuing" / "ca.crt").read_text() + (pki / "root" / "ca.crt").read_text()


def test_a_certificate_from_the_issuing_ca_validates_to_the_root(
    pki: Path, tmp_path: Path, openssl: OpenSSL
) -> None:
    result = run_minica(
        "issue",
        "--ca",
        pki / "issuing",
        "--profile",
        "server",
        "--cn",
        "localhost",
        "--out",
        tmp_path / "localhost.crt",
    )
    assert result.code == 0, result.stderr
    verified = openssl(
        "verify",
        "-CAfile",
        pki / "root" / "ca.crt",
        "-untrusted",
        pki / "issuing" / "ca.crt",
        "-purpose",
        "sslserver",
        tmp_path / "localhost.crt",
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_the_name_constraints_keep_the_example_root_to_example_names(
    pki: Path, tmp_path: Path
) -> None:
    result = run_minica(
        "issue",
        "--ca",
        pki / "issuing",
        "--profile",
        "server",
        "--cn",
        "www.example.com",
        "--out",
        tmp_path / "nope.crt",
    )
    assert_refused(result, "www.example.com", "outside the name constraints")


def test_the_regeneration_script_makes_a_new_working_pki(pki: Path) -> None:
    old_root = (pki / "root" / "ca.crt").read_bytes()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        ["sh", str(pki / "regenerate.sh")], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (pki / "root" / "ca.crt").read_bytes() != old_root
    assert len(listing(pki / "issuing")) == 2
