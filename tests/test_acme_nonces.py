"""Replay nonces (minica.acme.nonces): each taken once, wherever it was made among the
services sharing one registry, refused when forged, expired or used; made without a
write. Two SqliteRegistry objects on one CA folder stand for two replicas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from acme_jws_client import AccountKey, acme_lab
from serve_lab import eventually

from minica import CertificateAuthority, ManualClock
from minica.acme import jose
from minica.acme.nonces import LIFETIME, Nonces
from minica.acme.server import PURGE_EVERY
from minica.registry.sqlite import SqliteRegistry

NOW = datetime(2030, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def replicas(tmp_path: Path, clock: ManualClock) -> tuple[Nonces, Nonces]:
    SqliteRegistry.create(tmp_path)
    return Nonces(SqliteRegistry(tmp_path).acme, clock), Nonces(
        SqliteRegistry(tmp_path).acme, clock
    )


def test_a_nonce_made_on_one_replica_is_taken_once_on_any(replicas: tuple[Nonces, Nonces]) -> None:
    one, other = replicas
    nonce = one.new()
    assert other.take(nonce, NOW)
    assert not other.take(nonce, NOW)
    assert not one.take(nonce, NOW)


def test_nonces_are_unpredictable_and_made_without_a_write(
    tmp_path: Path, clock: ManualClock
) -> None:
    SqliteRegistry.create(tmp_path)
    registry = SqliteRegistry(tmp_path)
    nonces = Nonces(registry.acme, clock)
    made = {nonces.new() for _ in range(100)}
    assert len(made) == 100
    assert registry.acme.find("nonce", now=NOW) == []  # only taking one records it


def test_an_expired_nonce_is_refused(replicas: tuple[Nonces, Nonces], clock: ManualClock) -> None:
    one, _ = replicas
    nonce = one.new()
    clock.advance(LIFETIME)
    assert not one.take(nonce, clock())


@pytest.mark.parametrize("damage", ["mac", "expiry", "length", "text"])
def test_a_forged_nonce_is_refused(replicas: tuple[Nonces, Nonces], damage: str) -> None:
    one, _ = replicas
    raw = bytearray(jose.decode_b64jose(one.new()))
    if damage == "mac":
        raw[-1] ^= 1
    elif damage == "expiry":  # a longer life, without the key to sign it
        raw[16:24] = int((NOW + timedelta(days=365)).timestamp()).to_bytes(8, "big")
    forged = jose.encode_b64jose(bytes(raw[:-1] if damage == "length" else raw))
    assert not one.take("not base64url!" if damage == "text" else forged, NOW)


def test_the_key_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    SqliteRegistry.create(tmp_path)
    nonce = Nonces(SqliteRegistry(tmp_path).acme, clock).new()
    assert Nonces(SqliteRegistry(tmp_path).acme, clock).take(nonce, NOW)


def test_used_nonces_are_purged_once_they_could_no_longer_be_used(tmp_path: Path) -> None:
    start = datetime.now(timezone.utc)
    clock = ManualClock(start)
    CertificateAuthority.init(tmp_path / "ca")
    with acme_lab(tmp_path / "ca", clock=clock) as lab:
        lab.client.new_account(AccountKey.generate())
        assert len(lab.authority.registry.acme.find("nonce", now=start)) == 1
        clock.advance(LIFETIME + PURGE_EVERY)
        lab.client.nonce()  # the one the client kept has expired: it asks for a new one next
        lab.client.new_account(AccountKey.generate())  # its request starts the purge

        def purged() -> bool:
            return len(lab.authority.registry.acme.find("nonce", now=start)) == 1  # its own

        assert eventually(10, purged) is not None
