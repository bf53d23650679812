"""CertificateAuthority: one CA's identity (certificate, chain, key, settings), the
registry that remembers what it issued, its profiles and its clock — and what it does
with them: issue, renew, revoke, sign CRLs, find what it issued.

Everything it composes is passed in or made by its constructors (``init``, ``open``,
``in_memory``, ``intermediate``), and every piece is safe to share between threads:
one CertificateAuthority serves a whole service.
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding

from . import constraints, keys, lifecycle, policy, profiles, requests, store
from .catalog import Catalog
from .clock import Clock, system_clock
from .constraints import NameConstraints
from .errors import ConflictError, StorageError
from .formats import serial_hex, to_second
from .issuer import Issued, Signer, Urls, certify, random_serial, self_signed
from .keys import PrivateKey
from .names import Names, Subject
from .profiles import Profile
from .registry import Record, Registry, SerialTaken
from .registry.memory import MemoryRegistry
from .requests import Request
from .settings import Settings
from .store import Store

CA_KEY_TYPE = "ec-p384"
CA_DAYS = 3650
_SERIAL_ATTEMPTS = 5  # 159 random bits: a second collision in a row means a broken RNG

Passphrase = Callable[[], bytes]
Deliver = Callable[[Issued], None]


def root_profile(path_length: int | None) -> Profile:
    """The profile of a self-signed root: CA, signs certificates, CRLs and OCSP responses."""
    return Profile(
        name="root-ca",
        description="self-signed root CA",
        source="built-in",
        key_usage=("digital_signature", "key_cert_sign", "crl_sign"),
        ca=True,
        path_length=path_length,
    )


class CertificateAuthority:
    """A CA that signs requests under profiles and remembers what it signed.

    Make one with ``init`` (a new CA folder), ``open`` (an existing one), ``in_memory``
    (a root that lives in memory, for tests) or ``intermediate`` (a CA below this one).
    """

    def __init__(
        self,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        settings: Settings,
        private_key: PrivateKey | Callable[[], PrivateKey],
        registry: Registry | None = None,
        *,
        folder: Store | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.certificate = certificate
        self.chain = chain  # this CA's certificate, then each issuer up to the root
        self.settings = settings
        self.registry: Registry = registry if registry is not None else MemoryRegistry()
        self.folder = folder  # the CA folder, or None for a CA in memory
        self.clock = clock
        self.warnings: tuple[str, ...] = ()  # what making it had to say, e.g. a lifetime cut short
        self.issued: Issued | None = None  # for a CA made by intermediate(): its issuance
        self._key = _OnceKey(private_key)
        self._signer: Signer | None = None
        self._signer_lock = threading.Lock()
        self.profiles = Catalog(folder.path(store.PROFILES) if folder else None)

    # Making and opening CAs.

    @classmethod
    def init(
        cls,
        directory: Path | str,
        *,
        subject: Subject | None = None,
        key_type: str = CA_KEY_TYPE,
        days: int | None = None,
        path_length: int | None = None,
        urls: Urls = Urls(),
        name_constraints: NameConstraints = NameConstraints(),
        parent: CertificateAuthority | None = None,
        passphrase: bytes | None = None,
        clock: Clock = system_clock,
    ) -> CertificateAuthority:
        """A new CA in ``directory``, with the built-in profiles copied in: a root, or with
        ``parent`` an intermediate signed under the parent's intermediate-ca profile and
        recorded in the parent's registry.

        Raises ConflictError if the folder already holds a CA, PolicyError for what the
        parent or the lifetime does not allow.
        """
        directory = Path(directory)
        if Store(directory).holds_ca():
            raise ConflictError(
                f"{directory} already holds a CA; not touching it", code="ca-exists"
            )
        make = parent.intermediate if parent else functools.partial(cls.in_memory, clock=clock)
        made = make(
            subject=subject,
            key_type=key_type,
            days=days,
            path_length=path_length,
            urls=urls,
            name_constraints=name_constraints,
        )
        files = {
            store.CA_CERT: made.certificate.public_bytes(Encoding.PEM),
            store.CA_CHAIN: b"".join(c.public_bytes(Encoding.PEM) for c in made.chain),
            store.CA_KEY: keys.private_key_pem(made.private_key, passphrase),
            store.SETTINGS: made.settings.to_yaml().encode(),
        }
        for path in sorted(profiles.builtin_dir().glob("*.yaml")):
            files[f"{store.PROFILES}/{path.name}"] = path.read_bytes()
        record_in_parent = None
        if parent is not None and made.issued is not None:
            issued = made.issued

            def record_in_parent() -> None:  # before the new folder is a CA, never after
                parent.registry.add(parent._record(issued, None), issued.certificate)

        folder = Store.create(directory, files, before=record_in_parent)
        authority = cls(
            made.certificate,
            made.chain,
            made.settings,
            made.private_key,
            folder.registry,
            folder=folder,
            clock=clock,
        )
        authority.warnings = made.warnings
        return authority

    @classmethod
    def in_memory(
        cls,
        *,
        subject: Subject | None = None,
        key_type: str = CA_KEY_TYPE,
        days: int | None = None,
        path_length: int | None = None,
        urls: Urls = Urls(),
        name_constraints: NameConstraints = NameConstraints(),
        clock: Clock = system_clock,
    ) -> CertificateAuthority:
        """A new root CA that lives in memory, with a registry in memory."""
        subject = subject or Subject(common_name=f"minica root CA {secrets.token_hex(4)}")
        private_key = keys.generate(key_type)
        certificate = self_signed(
            subject,
            private_key,
            root_profile(path_length),
            serial=random_serial(),
            now=clock(),
            days=CA_DAYS if days is None else days,
            name_constraints=name_constraints,
        )
        return cls(
            certificate,
            [certificate],
            Settings(urls=urls),
            private_key,
            MemoryRegistry(),
            clock=clock,
        )

    def intermediate(
        self,
        *,
        subject: Subject | None = None,
        key_type: str = CA_KEY_TYPE,
        days: int | None = None,
        path_length: int | None = None,
        urls: Urls = Urls(),
        name_constraints: NameConstraints = NameConstraints(),
    ) -> CertificateAuthority:
        """A new CA signed by this one under its intermediate-ca profile, in memory, with
        this CA's clock and a registry of its own in memory.

        ``path_length`` replaces the profile's 0; ``name_constraints`` may not be wider than
        this CA's (without any, the new CA inherits them). Nothing is recorded here: the
        new CA keeps its ``issued`` for whoever records it (init does).
        """
        subject = subject or Subject(common_name=f"minica intermediate CA {secrets.token_hex(4)}")
        profile = self.profile("intermediate-ca")
        if path_length is not None:
            profile = replace(profile, path_length=path_length)
        private_key = keys.generate(key_type)
        public_key = private_key.public_key()
        request = Request(subject, Names(), public_key, keys.key_type_of(public_key))
        issued = self._certify(request, profile, days=days, name_constraints=name_constraints)
        child = CertificateAuthority(
            issued.certificate,
            [issued.certificate, *self.chain],
            Settings(urls=urls),
            private_key,
            MemoryRegistry(),
            clock=self.clock,
        )
        child.issued, child.warnings = issued, issued.warnings
        return child

    @classmethod
    def open(
        cls,
        directory: Path | str,
        passphrase: Passphrase | None = None,
        *,
        clock: Clock = system_clock,
    ) -> CertificateAuthority:
        """The CA in ``directory``. Its key is read, and ``passphrase`` asked for, only when
        something is signed. NotFoundError if there is no CA there, StorageError if it
        cannot be read."""
        folder = Store.open(Path(directory))
        certificate = _load_certificates(folder, store.CA_CERT)[0]
        chain = _load_certificates(folder, store.CA_CHAIN)
        settings = Settings.from_yaml(
            folder.read(store.SETTINGS).decode("utf-8", "replace"),
            str(folder.path(store.SETTINGS)),
        )

        def load_key() -> PrivateKey:
            data = folder.read(store.CA_KEY)
            secret = passphrase() if passphrase and b"ENCRYPTED" in data else None
            return keys.load_private_key(data, str(folder.path(store.CA_KEY)), secret)

        registry = folder.registry
        return cls(certificate, chain, settings, load_key, registry, folder=folder, clock=clock)

    # The identity.

    @property
    def private_key(self) -> PrivateKey:
        """The CA key, loaded (and its passphrase asked for) once, on first use."""
        return self._key.get()

    @property
    def intermediates(self) -> list[x509.Certificate]:
        """The chain without the root: what a server sends after its own certificate."""
        return self.chain[:-1]

    def full_chain_pem(self, issued: Issued) -> bytes:
        """The new certificate followed by the intermediates: what a server presents."""
        return issued.pem + b"".join(c.public_bytes(Encoding.PEM) for c in self.intermediates)

    def issued_by(self, certificate: x509.Certificate) -> bool:
        """Whether this CA's key signed ``certificate``."""
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def profile(self, name: str) -> Profile:
        """The profile ``name`` as this CA sees it (its own copies before the built-ins),
        read again when its file changes; ProfileError if there is none."""
        return self.profiles.find(name)

    # Issuing.

    def check_names(self, names: Names, profile: Profile | str) -> None:
        """PolicyError unless ``profile`` and this CA's name constraints allow a
        certificate for ``names``: the checks of ``sign`` that need no request, for
        refusing an ACME order before any validation is done."""
        chosen = profile if isinstance(profile, Profile) else self.profile(profile)
        policy.check_ca_may_sign(chosen, self.certificate)
        policy.apply_name_policy(names, Subject(), chosen)
        signer = self._signing_identity()
        if signer.constrained:
            constraints.check_names(names, None, signer.path)

    def sign(
        self,
        request: Request,
        profile: Profile | str,
        *,
        days: int | None = None,
        window: tuple[datetime, datetime] | None = None,
        then: Deliver | None = None,
        contact: str | None = None,
    ) -> Issued:
        """Sign ``request`` under ``profile`` (or the profile of that name) and record it;
        see issuer.certify for the rules. ``window`` is an explicit (not_before,
        not_after). ``then`` receives the certificate before it is recorded, to deliver
        it: if it raises, nothing is recorded. ``contact`` is the registry's contact in
        place of the request's (an ACME account's)."""
        if isinstance(profile, Profile):
            return self._sign(
                request, profile, days=days, window=window, then=then, contact=contact
            )
        # A profile given by path is recorded by its path, so that a renewal finds it again.
        reference = str(Path(profile).resolve()) if profiles.is_path(profile) else None
        return self._sign(
            request,
            self.profile(profile),
            days=days,
            window=window,
            then=then,
            reference=reference,
            contact=contact,
        )

    def issue(
        self,
        profile: Profile | str,
        subject: Subject,
        names: Names = Names(),
        *,
        key_type: str | None = None,
        days: int | None = None,
        window: tuple[datetime, datetime] | None = None,
        then: Callable[[Issued, PrivateKey], None] | None = None,
    ) -> tuple[Issued, PrivateKey]:
        """A new key and a certificate for it, signed under ``profile`` and recorded;
        ``then`` receives both before the certificate is recorded, to deliver them."""
        chosen = key_type or self.settings.key_type
        private_key = keys.generate(chosen)  # refuses unknown names: chosen is a key type
        request = Request(subject, names, private_key.public_key(), chosen)
        deliver = functools.partial(_with_key, then, private_key) if then else None
        # Round-trip through a CSR would only re-check what we just built; sign directly.
        issued = self.sign(request, profile, days=days, window=window, then=deliver)
        return issued, private_key

    def renew(
        self,
        certificate: x509.Certificate,
        *,
        days: int | None = None,
        then: Deliver | None = None,
    ) -> Issued:
        """The certificate again with a new serial and lifetime: the same subject, names,
        public key, profile and constraints. The old one stays valid until revoked.
        ConflictError if it is revoked; PolicyError if its profile would now make a
        different certificate."""
        old = self.record(certificate)
        lifecycle.check_renewable(old)
        profile = self.profile(old.profile)
        constraints = NameConstraints()
        if profile.ca:  # a CA keeps its own path length and constraints, never wider ones
            profile = replace(profile, path_length=lifecycle.path_length_of(certificate))
            constraints = NameConstraints.of(certificate)
        request = requests.from_certificate(certificate)
        issued = self._sign(
            request,
            profile,
            days=days,
            renewing=old,
            name_constraints=constraints,
            check=lambda new: lifecycle.check_same_certificate(certificate, new),
            then=then,
            reference=old.profile,
        )
        return issued

    def _sign(
        self,
        request: Request,
        profile: Profile,
        *,
        days: int | None = None,
        window: tuple[datetime, datetime] | None = None,
        renewing: Record | None = None,
        name_constraints: NameConstraints = NameConstraints(),
        check: Callable[[Issued], None] | None = None,
        then: Deliver | None = None,
        reference: str | None = None,
        contact: str | None = None,
    ) -> Issued:
        """Sign and record; ``reference`` is how the registry names the profile (default:
        its name)."""
        for _ in range(_SERIAL_ATTEMPTS):
            issued = self._certify(
                request, profile, days=days, window=window, name_constraints=name_constraints
            )
            if check is not None:
                check(issued)
            deliver = functools.partial(then, issued) if then is not None else None
            try:
                record = self._record(issued, renewing, reference, contact)
                self.registry.add(record, issued.certificate, deliver)
            except SerialTaken:
                continue
            return issued
        raise StorageError("could not draw an unused serial number")

    def _certify(
        self,
        request: Request,
        profile: Profile,
        *,
        days: int | None,
        window: tuple[datetime, datetime] | None = None,
        name_constraints: NameConstraints = NameConstraints(),
    ) -> Issued:
        return certify(
            request,
            profile,
            self._signing_identity(),
            serial=random_serial(),
            now=self.clock(),
            days=days,
            urls=self.settings.urls,
            name_constraints=name_constraints,
            window=window,
        )

    def _record(
        self,
        issued: Issued,
        renewing: Record | None,
        reference: str | None = None,
        contact: str | None = None,
    ) -> Record:
        certificate = issued.certificate
        return Record(
            serial=serial_hex(certificate.serial_number),
            subject=issued.subject_text or certificate.subject.rfc4514_string(),
            profile=reference or issued.profile,
            # a renewal keeps the contact even where the profile kept it out of the certificate
            contact=contact or issued.contact or (renewing.contact if renewing else None),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            issued_at=to_second(self.clock()),
            renewed_from=renewing.serial if renewing else None,
        )

    def _signing_identity(self) -> Signer:
        """The signer, made once: it caches what every signature needs. Refuses a key
        that does not belong to this CA's certificate before anything is signed."""
        if self._signer is None:
            with self._signer_lock:
                if self._signer is None:
                    private_key = self.private_key
                    if private_key.public_key() != self.certificate.public_key():
                        raise StorageError(
                            "the CA key does not belong to the CA certificate: refusing to sign",
                            code="key-mismatch",
                        )
                    self._signer = Signer(self.certificate, private_key, tuple(self.chain[1:]))
        return self._signer

    # What follows issuance.

    def revoke(self, serial: str, reason: str = "unspecified") -> Record:
        """Mark the certificate ``serial`` (any form formats.parse_serial reads) revoked for
        ``reason`` (a usages.REVOCATION_REASONS name); returns its row. NotFoundError if
        this CA never issued it, ConflictError if it is revoked already."""
        lifecycle.check_reason(reason)
        serial = lifecycle.serial_of(serial)
        if reason == "ca-compromise":
            lifecycle.check_ca_compromise(self.registry.certificate(serial))
        return self.registry.revoke(serial, reason, self.clock())

    def crl(self, *, days: int | None = None) -> x509.CertificateRevocationList:
        """A CRL of every certificate revoked so far, with a CRL number never used before,
        valid for ``days`` (default lifecycle.CRL_DAYS, cut to this CA's expiry)."""
        return lifecycle.sign_crl(self._signing_identity(), self.registry, self.clock(), days)

    def latest_crl(self) -> x509.CertificateRevocationList:
        """The newest CRL this CA signed; NotFoundError if it signed none yet."""
        return lifecycle.latest_crl(self.registry, self.folder)

    def exclusive(self) -> lifecycle.Exclusive:
        """One holder at a time among all users of this CA's registry (see Registry)."""
        return self.registry.exclusive()

    def records(self, status: str = "all", *, expiring_within: int | None = None) -> list[Record]:
        """Registry rows by expiry (see Registry.records), as of now."""
        return self.registry.records(status, now=self.clock(), expiring_within=expiring_within)

    def records_json(self, status: str = "all", *, expiring_within: int | None = None) -> str:
        """The same rows as a JSON array, one a line (see Registry.records_json)."""
        return self.registry.records_json(status, now=self.clock(), expiring_within=expiring_within)

    def record(self, certificate: x509.Certificate) -> Record:
        """The registry row of a certificate this CA issued; NotFoundError for any other."""
        return lifecycle.record_of(self.registry, certificate)

    def find(self, serial_or_file: str) -> Record:
        """The row of a certificate this CA issued, named by serial or given as a file;
        needs only the registry (not the certificate's file)."""
        return lifecycle.find(self.registry, serial_or_file)

    def lookup(self, serial_or_file: str) -> tuple[x509.Certificate, Record]:
        """A certificate this CA issued, named by serial or given as a file, with its row."""
        record = self.find(serial_or_file)
        return self.registry.certificate(record.serial), record

    def certificate_by_serial(self, serial: str) -> x509.Certificate:
        """A certificate this CA issued; NotFoundError if it did not issue ``serial``."""
        return self.registry.certificate(lifecycle.serial_of(serial))


def _with_key(
    then: Callable[[Issued, PrivateKey], None], private_key: PrivateKey, issued: Issued
) -> None:
    then(issued, private_key)


class _OnceKey:
    """A private key, or how to load one, loaded once even when many threads ask at once
    (a passphrase prompt must not run twice)."""

    def __init__(self, source: PrivateKey | Callable[[], PrivateKey]) -> None:
        self._source = source
        self._key: PrivateKey | None = None if callable(source) else source
        self._lock = threading.Lock()

    def get(self) -> PrivateKey:
        if self._key is None:
            with self._lock:
                if self._key is None:
                    assert callable(self._source)
                    self._key = self._source()
        return self._key


def _load_certificates(folder: Store, name: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(folder.read(name))
    except ValueError:
        raise StorageError(f"{folder.path(name)} holds no readable PEM certificate") from None
