"""One test suite for every registry implementation (the Registry protocol), then what
only the SQLite one does: schema versions and migrations, certs/ files, checks.

A new implementation joins by adding itself to IMPLEMENTATIONS.
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO, copy_ca, run_minica
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st
from test_storage_and_secrets import read_only_view

from minica import CertificateAuthority, FixtureCA
from minica.errors import ConflictError, InputError, NotFoundError, StorageError
from minica.formats import serial_hex
from minica.registry import AcmeState, Document, Record, Registry, SerialTaken
from minica.registry.memory import MemoryRegistry
from minica.registry.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteRegistry

NOW = datetime(2030, 5, 17, 12, 0, tzinfo=timezone.utc)
V1_CA = REPO / "tests" / "data" / "ca-v1"


def kept(registry: Registry) -> Registry:
    """The registry as `minica serve` uses it: connections kept between calls."""
    registry.keep_connections()
    return registry


def postgres_registry(database: Callable[[], str]) -> Registry:
    from minica.registry.postgres import PostgresRegistry  # psycopg is an extra

    return PostgresRegistry.create(database())


# Each makes a new, empty registry, given a folder of its own and a function giving the
# DSN of a fresh PostgreSQL database (called only by those that need one: without
# PostgreSQL, only they are skipped).
IMPLEMENTATIONS: dict[str, Callable[[Path, Callable[[], str]], Registry]] = {
    "memory": lambda folder, database: MemoryRegistry(),
    "sqlite": lambda folder, database: SqliteRegistry.create(folder),
    "sqlite-kept": lambda folder, database: kept(SqliteRegistry.create(folder)),
    "postgres": lambda folder, database: postgres_registry(database),
    "postgres-kept": lambda folder, database: kept(postgres_registry(database)),
}


def databases(request: pytest.FixtureRequest) -> Callable[[], str]:
    """The ``postgres`` fixture's fresh databases, started (or skipped) on first use."""

    def fresh() -> str:
        make: Callable[[], str] = request.getfixturevalue("postgres")
        return make()

    return fresh


_issuer = FixtureCA()


def certificate(name: str = "leaf.test") -> x509.Certificate:
    return _issuer.certify(name).certificate


def record_for(
    leaf: x509.Certificate, *, profile: str = "server", contact: str | None = None
) -> Record:
    return Record(
        serial=serial_hex(leaf.serial_number),
        subject=leaf.subject.rfc4514_string(),
        profile=profile,
        contact=contact,
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        issued_at=NOW,
    )


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    return IMPLEMENTATIONS[request.param](tmp_path, databases(request))


def add(registry: Registry, name: str = "leaf.test", **fields: str | None) -> Record:
    leaf = certificate(name)
    record = record_for(leaf, **fields)  # type: ignore[arg-type]
    registry.add(record, leaf)
    return record


# --- the protocol, for every implementation ------------------------------------------------


def test_a_row_and_its_certificate_come_back_as_added(registry: Registry) -> None:
    leaf = certificate()
    record = record_for(leaf, contact="ops@lab.test")
    registry.add(record, leaf)
    assert registry.get(record.serial) == record
    assert registry.certificate(record.serial) == leaf
    assert registry.get("1234") is None


def test_a_serial_is_added_once(registry: Registry) -> None:
    record = add(registry)
    with pytest.raises(SerialTaken):
        registry.add(record._replace(subject="CN=other"), certificate())
    assert registry.get(record.serial) == record


def test_nothing_is_recorded_when_delivery_fails(registry: Registry) -> None:
    leaf = certificate()
    record = record_for(leaf)

    def fail() -> None:
        raise OSError("no space left on device")

    with pytest.raises(OSError):
        registry.add(record, leaf, then=fail)
    assert registry.get(record.serial) is None
    with pytest.raises(NotFoundError):
        registry.certificate(record.serial)
    registry.add(record, leaf)  # the serial is still free


def test_an_unknown_serial_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFoundError, match="no certificate with serial abc"):
        registry.certificate("abc")
    with pytest.raises(NotFoundError, match="no certificate with serial abc"):
        registry.revoke("abc", "unspecified", NOW)


def test_a_revocation_is_made_once(registry: Registry) -> None:
    record = add(registry)
    revoked = registry.revoke(record.serial, "key-compromise", NOW + timedelta(microseconds=7))
    assert (revoked.revoked_at, revoked.revocation_reason) == (NOW, "key-compromise")
    assert registry.get(record.serial) == revoked
    with pytest.raises(ConflictError, match="already revoked on 2030-05-17T12:00:00Z"):
        registry.revoke(record.serial, "superseded", NOW)
    assert registry.get(record.serial) == revoked


def test_listings_by_status_and_expiry(registry: Registry) -> None:
    valid, expiring, revoked = (add(registry, f"{n}.test") for n in ("a", "b", "c"))
    registry.revoke(revoked.serial, "superseded", NOW)
    later = valid.not_after - timedelta(days=1)  # all three still within their lifetime
    serials = {
        status: [r.serial for r in registry.records(status, now=later)]
        for status in ("valid", "revoked", "expired", "all")
    }
    assert sorted(serials["valid"]) == sorted([valid.serial, expiring.serial])
    assert serials["revoked"] == [revoked.serial]
    assert serials["expired"] == []
    assert sorted(serials["all"]) == sorted([valid.serial, expiring.serial, revoked.serial])
    after = valid.not_after + timedelta(days=1)
    assert sorted(r.serial for r in registry.records("expired", now=after)) == sorted(
        [valid.serial, expiring.serial]
    )
    assert registry.records("valid", now=later, expiring_within=0) == []
    assert len(registry.records("valid", now=later, expiring_within=2)) == 2
    assert len(registry.records(now=later, expiring_within=10**9)) == 2  # past the year 9999


def test_listings_refuse_what_they_cannot_mean(registry: Registry) -> None:
    with pytest.raises(InputError, match="give 0 days or more"):
        registry.records(now=NOW, expiring_within=-1)
    with pytest.raises(InputError, match="cannot list revoked ones"):
        registry.records("revoked", now=NOW, expiring_within=30)
    with pytest.raises(InputError, match="unknown status 'gone'"):
        registry.records("gone", now=NOW)


def test_the_json_listing_is_the_rows_json_one_a_line(registry: Registry) -> None:
    for name in ("a.test", "b.test"):
        add(registry, name, contact="ops@lab.test")
    text = registry.records_json(now=NOW)
    assert len(text.splitlines()) == 2
    assert json.loads(text) == [r.to_json(NOW) for r in registry.records(now=NOW)]


def test_crl_numbers_grow_and_list_every_revocation(registry: Registry) -> None:
    first, second = add(registry, "a.test"), add(registry, "b.test")
    assert registry.next_crl(NOW) == (1, [])
    registry.revoke(second.serial, "key-compromise", NOW)
    registry.revoke(first.serial, "superseded", NOW + timedelta(seconds=1))
    number, revoked = registry.next_crl(NOW)
    assert number == 2
    assert [(r.serial, r.reason) for r in revoked] == [
        (second.serial, "key-compromise"),
        (first.serial, "superseded"),
    ]


def test_the_latest_crl_is_the_highest_numbered(registry: Registry) -> None:
    assert registry.latest_crl() is None
    ca = CertificateAuthority.in_memory(key_type="ec-p256")
    first, second = ca.crl(), ca.crl()
    assert [registry.next_crl(NOW)[0] for _ in range(2)] == [1, 2]
    registry.record_crl(2, second)
    registry.record_crl(1, first)  # a late writer never replaces a higher number
    assert registry.latest_crl() == second


def test_exclusive_has_one_holder_at_a_time(registry: Registry) -> None:
    inside: list[int] = []
    overlaps: list[int] = []

    def hold(n: int) -> None:
        with registry.exclusive():
            inside.append(n)
            if len(inside) > 1:
                overlaps.append(n)
            threading.Event().wait(0.01)
            inside.remove(n)

    threads = [threading.Thread(target=hold, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_fresh_registry_checks_clean(registry: Registry) -> None:
    add(registry)
    assert registry.check(repair=False, issued_by=lambda certificate: True) == []


def test_sixteen_threads_share_one_registry(registry: Registry) -> None:
    leaves = [certificate(f"t{n}.test") for n in range(32)]
    numbers: list[int] = []
    errors: list[BaseException] = []

    def work(chunk: list[x509.Certificate]) -> None:
        try:
            for leaf in chunk:
                record = record_for(leaf)
                registry.add(record, leaf)
                registry.revoke(record.serial, "superseded", NOW)
                numbers.append(registry.next_crl(NOW)[0])
        except BaseException as error:  # collected: the assertion says what went wrong
            errors.append(error)

    threads = [threading.Thread(target=work, args=(leaves[n::16],)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == list(range(1, 33))
    assert len(registry.records("revoked", now=NOW)) == 32


registry_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
seconds = st.datetimes(
    min_value=datetime(1950, 1, 1),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(timezone.utc),
).map(lambda moment: moment.replace(microsecond=0))
records = st.lists(
    st.builds(
        Record,
        serial=st.integers(1, 2**159).map(serial_hex),
        subject=registry_text,
        profile=registry_text,
        contact=st.none() | registry_text,
        not_before=seconds,
        not_after=seconds,
        issued_at=seconds,
        revoked_at=st.none() | seconds,
        revocation_reason=st.none() | st.sampled_from(["superseded", "key-compromise"]),
        # A serial, or none (left to builds, it was any text, NUL included: PostgreSQL's
        # text holds no NUL, and minica only ever writes a serial there).
        renewed_from=st.none() | st.integers(1, 2**159).map(serial_hex),
    ),
    max_size=6,
    unique_by=lambda record: record.serial,
)


def postgres_runs(request: pytest.FixtureRequest) -> bool:
    """Whether the ``postgres`` fixture has a server (False where it would skip)."""
    try:
        request.getfixturevalue("postgres")
    except pytest.skip.Exception:
        return False
    return True


def _made(
    make: Callable[[Path, Callable[[], str]], Registry],
    folder: Path,
    database: Callable[[], str],
) -> Registry:
    folder.mkdir()
    return make(folder, database)


@settings(max_examples=40, deadline=None)
@given(records, st.datetimes(min_value=datetime(1950, 1, 1), timezones=st.just(timezone.utc)))
def test_every_implementation_lists_the_same_rows_and_json(
    request: pytest.FixtureRequest, rows: list[Record], now: datetime
) -> None:
    leaf = certificate()
    database = databases(request)
    with tempfile.TemporaryDirectory() as folder:
        # Not the -kept ones: they list with the same code, and each would hold its
        # connection until collected (the server has only so many).
        names = [name for name in IMPLEMENTATIONS if not name.endswith("-kept")]
        if not postgres_runs(request):  # the others are still compared
            names.remove("postgres")
        registries = [_made(IMPLEMENTATIONS[name], Path(folder) / name, database) for name in names]
        for registry in registries:
            for row in rows:
                registry.add(row, leaf)
        for status in ("all", "valid", "revoked", "expired"):
            listed = [registry.records(status, now=now) for registry in registries]
            assert all(rows_listed == listed[0] for rows_listed in listed)
            expected = [row.to_json(now) for row in listed[0]]
            texts = {
                name: registry.records_json(status, now=now)
                for name, registry in zip(names, registries, strict=True)
            }
            assert all(json.loads(text) == expected for text in texts.values())
            # Byte for byte (memory escapes more).
            assert texts.get("postgres", texts["sqlite"]) == texts["sqlite"]


# --- ACME's state, for every implementation ------------------------------------------------

LATER = NOW + timedelta(minutes=5)
INSTANT = timedelta(microseconds=1)


def test_documents_come_back_by_id_key_and_account(registry: Registry) -> None:
    state = registry.acme
    account = Document('{"status": "valid"}', key="thumb-1")
    state.create("account", "a1", account)
    orders = [Document(f'{{"n": {n}}}', account="a1", expires=LATER) for n in range(3)]
    for n, order in reversed(list(enumerate(orders))):  # made last to first
        state.create("order", f"o{n}", order)
    state.create("order", "other", Document("{}", account="a2"))
    assert state.get("account", "a1", now=NOW) == account
    assert state.get("order", "a1", now=NOW) is None  # ids are per kind
    assert state.find("account", key="thumb-1", now=NOW) == [("a1", account)]
    assert state.find("order", key="thumb-1", now=NOW) == []
    assert state.find("order", account="a1", now=NOW) == [
        ("o2", orders[2]),
        ("o1", orders[1]),
        ("o0", orders[0]),
    ]  # oldest first
    assert [id for id, _ in state.find("order", now=NOW)] == ["o2", "o1", "o0", "other"]
    assert state.get("order", "o1", now=NOW).expires == LATER  # type: ignore[union-attr]
    with pytest.raises(InputError, match="not by both"):
        state.find("account", key="thumb-1", account="a1", now=NOW)


def test_expired_documents_are_gone_at_now_and_purged(registry: Registry) -> None:
    state = registry.acme
    state.create("nonce", "n1", Document("", expires=LATER))
    state.create("order", "o1", Document("{}", key="k", account="a1", expires=LATER))
    state.create("account", "a1", Document("{}"))
    assert state.get("order", "o1", now=LATER) is not None  # good until its last instant
    after = LATER + INSTANT
    assert state.get("order", "o1", now=after) is None
    assert state.find("order", key="k", now=after) == []
    assert state.find("order", account="a1", now=after) == []
    with pytest.raises(NotFoundError) as unknown:
        state.update("order", "o1", lambda document: document, now=after)
    assert unknown.value.code == "acme-unknown"
    assert state.take("nonce", "n1", now=after) is False
    assert state.purge(now=LATER) == 0
    assert state.purge(now=after) == 2
    assert state.purge(now=after) == 0
    assert state.get("account", "a1", now=after) is not None  # no expiry: kept
    state.create("order", "o1", Document("{}", key="k"))  # id and key are free again


def test_a_taken_id_or_key_is_a_conflict(registry: Registry) -> None:
    state = registry.acme
    state.create("account", "a1", Document('{"n": 1}', key="thumb-1"))
    state.create("account", "a2", Document('{"n": 2}', key="thumb-2"))
    state.create("order", "a1", Document("{}", key="thumb-1"))  # another kind: its own ids
    attempts: list[Callable[[], object]] = [
        lambda: state.create("account", "a1", Document("{}")),
        lambda: state.create("account", "a3", Document("{}", key="thumb-1")),
        lambda: state.update(
            "account", "a2", lambda document: document._replace(key="thumb-1"), now=NOW
        ),
    ]
    for attempt, taken in zip(attempts, ("id a1", "key thumb-1", "key thumb-1"), strict=True):
        with pytest.raises(ConflictError, match=f"account {taken} is taken already") as error:
            attempt()
        assert error.value.code == "acme-taken"
    assert state.get("account", "a2", now=NOW) == Document('{"n": 2}', key="thumb-2")
    assert state.get("account", "a3", now=NOW) is None
    # A key moves with its document, and is free once it has moved or gone.
    state.update("account", "a2", lambda document: document._replace(key="thumb-3"), now=NOW)
    state.create("account", "a4", Document("{}", key="thumb-2"))
    assert state.remove("account", "a1") is True
    state.create("account", "a5", Document("{}", key="thumb-1"))
    assert [id for id, _ in state.find("account", key="thumb-3", now=NOW)] == ["a2"]


def test_an_update_whose_change_raises_changes_nothing(registry: Registry) -> None:
    state = registry.acme
    before = Document('{"status": "pending"}', key="k1", account="a1", expires=LATER)
    state.create("order", "o1", before)

    def change(document: Document) -> Document:
        raise InputError("the order is not ready")

    with pytest.raises(InputError, match="not ready"):
        state.update("order", "o1", change, now=NOW)
    assert state.get("order", "o1", now=NOW) == before
    new = state.update(
        "order", "o1", lambda d: Document('{"status": "ready"}', None, "a2", None), now=NOW
    )
    assert state.get("order", "o1", now=LATER + INSTANT) == new
    assert state.find("order", key="k1", now=NOW) == []
    assert state.find("order", account="a2", now=NOW) == [("o1", new)]
    with pytest.raises(NotFoundError, match="no order o2"):
        state.update("order", "o2", lambda document: document, now=NOW)


def test_take_and_remove_say_whether_there_was_one(registry: Registry) -> None:
    state = registry.acme
    state.create("nonce", "n1", Document("", expires=LATER))
    assert state.take("nonce", "n1", now=NOW) is True
    assert state.take("nonce", "n1", now=NOW) is False
    assert state.get("nonce", "n1", now=NOW) is None
    state.create("nonce", "n1", Document("", expires=LATER))  # the id is free again
    assert state.remove("nonce", "n1") is True
    assert state.remove("nonce", "n1") is False


def test_acme_state_refuses_naive_times(registry: Registry) -> None:
    with pytest.raises(InputError, match="no time zone"):
        registry.acme.create("nonce", "n1", Document("", expires=datetime(2030, 1, 1)))
    with pytest.raises(InputError, match="no time zone"):
        registry.acme.get("nonce", "n1", now=datetime(2030, 1, 1))


def test_acme_state_does_not_move_the_revision(registry: Registry) -> None:
    start = registry.revision()
    state = registry.acme
    state.create("account", "a1", Document("{}", key="k"))
    state.update("account", "a1", lambda document: document._replace(body="[]"), now=NOW)
    state.create("nonce", "n1", Document("", expires=NOW))
    state.take("nonce", "n1", now=NOW)
    state.remove("account", "a1")
    assert registry.revision() == start


def in_threads(count: int, work: Callable[[], object]) -> list[object]:
    """What ``work`` returned in each of ``count`` threads let go at once (an error
    raised in one is returned, for the assertion to show)."""
    start = threading.Barrier(count)
    results: list[object] = []

    def run() -> None:
        start.wait()
        try:
            results.append(work())
        except BaseException as error:  # collected: the assertion says what went wrong
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_of_sixteen_threads_taking_one_nonce_one_gets_it(registry: Registry) -> None:
    registry.acme.create("nonce", "n1", Document("", expires=LATER))
    results = in_threads(16, lambda: registry.acme.take("nonce", "n1", now=NOW))
    assert sorted(results, key=str) == [False] * 15 + [True]


def increment(state: AcmeState, times: int) -> None:
    """Add one to the counter in the body of order o1, ``times`` times."""

    def add_one(document: Document) -> Document:
        return document._replace(body=json.dumps({"n": json.loads(document.body)["n"] + 1}))

    for _ in range(times):
        state.update("order", "o1", add_one, now=NOW)


def counter(state: AcmeState) -> int:
    document = state.get("order", "o1", now=NOW)
    assert document is not None
    return int(json.loads(document.body)["n"])


def test_concurrent_updates_lose_nothing(registry: Registry) -> None:
    registry.acme.create("order", "o1", Document('{"n": 0}'))
    results = in_threads(8, lambda: increment(registry.acme, 25))
    assert results == [None] * 8
    assert counter(registry.acme) == 200


def increment_in_process(folder: str, start: multiprocessing.synchronize.Barrier) -> None:
    """A process's share of the test below (module-level: a spawned process imports it)."""
    start.wait()
    increment(SqliteRegistry(Path(folder)).acme, 25)


def test_updates_from_four_processes_lose_nothing(tmp_path: Path) -> None:
    state = SqliteRegistry.create(tmp_path).acme
    state.create("order", "o1", Document('{"n": 0}'))
    context = multiprocessing.get_context("spawn")  # no fork of this threaded process
    start = context.Barrier(4)
    workers = [
        context.Process(target=increment_in_process, args=(str(tmp_path), start)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0] * 4
    assert counter(state) == 100


# --- the SQLite registry: schema versions, migrations, files -------------------------------


def schema_version(folder: Path) -> int:
    with closing(sqlite3.connect(folder / "minica.db")) as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def v1_ca(tmp_path: Path) -> Path:
    """A copy of a CA folder made by minica at registry schema 1."""
    return copy_ca(V1_CA, tmp_path / "ca-v1")


def test_the_committed_v1_registry_is_at_schema_1(v1_ca: Path) -> None:
    assert schema_version(v1_ca) == 1


def test_a_v1_registry_is_upgraded_in_place_keeping_every_row(v1_ca: Path) -> None:
    before = run_minica("list", "--ca", v1_ca, "--json")
    assert before.code == 0, before.stderr
    rows = json.loads(before.stdout)
    assert schema_version(v1_ca) == SCHEMA_VERSION  # the first use upgraded it
    authority = CertificateAuthority.open(v1_ca)
    assert {r.serial for r in authority.records()} == {row["serial"] for row in rows}
    revoked = [r for r in authority.records("revoked")]
    assert [r.revocation_reason for r in revoked] == ["key-compromise"]
    assert [r.renewed_from for r in authority.records() if r.renewed_from] != []
    for row in rows:  # every certificate file still belongs to its row
        assert (
            serial_hex(authority.certificate_by_serial(row["serial"]).serial_number)
            == row["serial"]
        )
    # The CRL signed before the registry kept CRLs is still the latest, from crl.pem...
    old_number = authority.latest_crl().extensions.get_extension_for_class(x509.CRLNumber)
    assert old_number.value.crl_number == 2
    # ...and numbers go on from where schema 1 left them.
    assert authority.crl().extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3
    assert authority.latest_crl() == authority.registry.latest_crl()


def test_an_upgraded_registry_signs_like_a_new_one(v1_ca: Path, tmp_path: Path) -> None:
    issued = run_minica(
        "issue", "--ca", v1_ca, "--profile", "server", "--cn", "new.lab.test",
        "--out", tmp_path / "new.crt",
    )  # fmt: skip
    assert issued.code == 0, issued.stderr
    assert run_minica("revoke", "--ca", v1_ca, tmp_path / "new.crt").code == 0
    doctor = run_minica("doctor", "--ca", v1_ca)
    assert doctor.code == 0, doctor.stdout + doctor.stderr


def test_a_read_only_v1_registry_is_read_as_it_is(v1_ca: Path, tmp_path: Path) -> None:
    with read_only_view(v1_ca, tmp_path / "view") as view:
        listing = CertificateAuthority.open(view).records()
    assert len(listing) == 3
    assert schema_version(v1_ca) == 1


def test_a_registry_from_a_newer_minica_is_refused(v1_ca: Path) -> None:
    with closing(sqlite3.connect(v1_ca / "minica.db")) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    result = run_minica("list", "--ca", v1_ca)
    assert result.code == 1
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this minica knows" in result.stderr
    assert "upgrade minica" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_registry_is_never_created(v1_ca: Path) -> None:
    (v1_ca / "minica.db").unlink()
    with pytest.raises(StorageError, match="is missing"):
        CertificateAuthority.open(v1_ca).records()
    findings = SqliteRegistry(v1_ca).check(repair=True, issued_by=lambda c: True)
    assert [f.repaired for f in findings] == [None]
    assert not (v1_ca / "minica.db").exists()


def test_a_damaged_certificate_file_is_a_storage_error_and_a_finding(v1_ca: Path) -> None:
    authority = CertificateAuthority.open(v1_ca)
    serial = authority.records()[0].serial
    (v1_ca / "certs" / f"{serial}.crt").write_text("not a certificate")
    with pytest.raises(StorageError, match=f"certificate {serial} is recorded, but .* is damaged"):
        authority.certificate_by_serial(serial)
    problems = [
        f.problem for f in authority.registry.check(repair=False, issued_by=authority.issued_by)
    ]
    assert any("is damaged" in problem for problem in problems)


def test_an_orphan_certificate_is_recorded_only_if_this_ca_signed_it(v1_ca: Path) -> None:
    stranger = FixtureCA().certify("evil.lab.test").certificate
    path = v1_ca / "certs" / f"{serial_hex(stranger.serial_number)}.crt"
    path.write_bytes(stranger.public_bytes(Encoding.PEM))
    authority = CertificateAuthority.open(v1_ca)
    findings = authority.registry.check(repair=True, issued_by=authority.issued_by)
    assert [(f.repaired, "not signed by this CA" in f.problem) for f in findings] == [(None, True)]
    assert authority.registry.get(serial_hex(stranger.serial_number)) is None


def test_only_the_latest_crl_is_kept_whole(tmp_path: Path) -> None:
    authority = CertificateAuthority.init(tmp_path / "ca")
    for _ in range(3):
        authority.crl()
    with closing(sqlite3.connect(tmp_path / "ca" / "minica.db")) as connection:
        kept = connection.execute("SELECT number FROM crls WHERE der IS NOT NULL").fetchall()
    assert kept == [(3,)]


def test_no_module_outside_the_sqlite_registry_speaks_sqlite() -> None:
    package = REPO / "minica"
    speakers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "sqlite3" in path.read_text()
        and not path.relative_to(package).as_posix().startswith("registry/sqlite")
    )
    assert speakers == []


def test_the_revision_grows_with_every_addition_and_revocation(registry: Registry) -> None:
    start = registry.revision()
    record = add(registry)
    assert registry.revision() > start
    added = registry.revision()
    registry.next_crl(NOW)  # a CRL changes no certificate
    assert registry.revision() == added
    registry.revoke(record.serial, "superseded", NOW)
    assert registry.revision() > added


def test_another_process_revoking_moves_the_revision(v1_ca: Path) -> None:
    authority = CertificateAuthority.open(v1_ca)
    before = authority.registry.revision()
    serial = authority.records("valid")[0].serial
    assert run_minica("revoke", "--ca", v1_ca, serial).code == 0
    assert authority.registry.revision() > before


def test_a_v3_registry_gains_acme_state_keeping_every_row(v1_ca: Path) -> None:
    with closing(sqlite3.connect(v1_ca / "minica.db")) as connection:
        for version in (1, 2):  # as minica 3 left it: schema 3, no ACME table
            for statement in MIGRATIONS[version]:
                connection.execute(statement)
        connection.execute("PRAGMA user_version = 3")
        connection.commit()
        (before,) = connection.execute("SELECT count(*) FROM certificates").fetchone()
    registry = SqliteRegistry(v1_ca)
    revision = registry.revision()  # the first use upgraded it
    assert schema_version(v1_ca) == SCHEMA_VERSION == 4
    assert len(registry.records(now=NOW)) == before == 3
    registry.acme.create("account", "a1", Document("{}", key="k"))
    assert registry.acme.find("account", key="k", now=NOW) == [("a1", Document("{}", "k"))]
    assert registry.revision() == revision
    doctor = run_minica("doctor", "--ca", v1_ca)
    assert doctor.code == 0, doctor.stdout + doctor.stderr


def test_a_read_only_v1_registry_holds_no_acme_state(v1_ca: Path, tmp_path: Path) -> None:
    with read_only_view(v1_ca, tmp_path / "view") as view:
        state = SqliteRegistry(view).acme
        assert state.get("account", "a1", now=NOW) is None
        assert state.find("eab", now=NOW) == []
        with pytest.raises(StorageError, match="read-only"):
            state.create("nonce", "n1", Document(""))
    assert schema_version(v1_ca) == 1


# --- the PostgreSQL registry: the database, its schema, its errors -------------------------


def test_a_database_away_is_a_storage_error_naming_it_without_password(
    postgres: Callable[[], str],
) -> None:
    from servers import free_port

    from minica.registry.postgres import PostgresRegistry

    port = free_port()  # nothing listens there
    away = PostgresRegistry(f"host=127.0.0.1 port={port} user=ca password=secret dbname=ca")
    with pytest.raises(
        StorageError, match=f"cannot reach the registry postgresql://ca@127.0.0.1:{port}/ca"
    ) as error:
        away.get("ab")
    assert "secret" not in str(error.value)
    assert error.value.code == "registry-unreachable"
    assert away.check(repair=False, issued_by=lambda certificate: True)[0].repaired is None


def test_a_database_with_no_registry_or_a_newer_one_is_refused(
    postgres: Callable[[], str],
) -> None:
    import psycopg

    from minica.registry.postgres import PostgresRegistry

    empty = postgres()
    with pytest.raises(StorageError) as error:
        PostgresRegistry(empty).get("ab")
    assert error.value.code == "no-registry"
    registry = PostgresRegistry.create(empty)
    with pytest.raises(StorageError, match="holds a registry already"):
        PostgresRegistry.create(empty)
    add(registry)
    with psycopg.connect(empty, autocommit=True) as connection:
        connection.execute("UPDATE minica_schema SET version = version + 1")
    with pytest.raises(StorageError) as newer:
        PostgresRegistry(empty).records(now=NOW)
    assert newer.value.code == "schema-newer"
