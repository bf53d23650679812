"""CertificateAuthority: a CA identity (key, certificate, chain, settings) and its store,
and issuing under it; lifecycle.py adds what follows issuance, fixtures.py test fixtures."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import keys, profiles, requests, store
from .constraints import NameConstraints
from .errors import MinicaError, StoreError
from .fixtures import Fixtures
from .formats import iso, serial_hex
from .issuer import Issued, Signer, Urls, certify, random_serial, self_signed
from .keys import PrivateKey
from .lifecycle import Lifecycle
from .names import Names, Subject
from .profiles import Profile
from .registry import Record, Registry, Revocation, SerialTaken
from .requests import Request
from .settings import Settings
from .store import Store

CA_KEY_TYPE = "ec-p384"
CA_DAYS = 3650
_SERIAL_ATTEMPTS = 5

Passphrase = Callable[[], bytes]


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


class CertificateAuthority(Fixtures, Lifecycle):
    """A CA that signs requests under profiles, in a CA folder or in memory.

    Open one with ``open``, create one with ``init`` (a folder) or ``in_memory``.
    """

    def __init__(
        self,
        certificate: x509.Certificate,
        chain: list[x509.Certificate],
        settings: Settings,
        private_key: PrivateKey | Callable[[], PrivateKey],
        store: Store | None = None,
    ) -> None:
        self.certificate = certificate
        self.chain = chain  # this CA's certificate, then each issuer up to the root
        self.settings = settings
        self.store = store
        self._private_key = private_key
        self.warnings: tuple[str, ...] = ()  # what making it had to say, e.g. a lifetime cut short
        self.issued: Issued | None = None  # for a CA made by intermediate(): its issuance
        self._profiles: dict[str, Profile] = {}
        self._signer_made: Signer | None = None
        # An in-memory CA keeps only what its CRLs need.
        self._revoked: dict[str, Revocation] = {}
        self._crl_number = 0

    @classmethod
    def init(
        cls,
        directory: Path,
        *,
        subject: Subject | None = None,
        key_type: str = CA_KEY_TYPE,
        days: int | None = None,
        path_length: int | None = None,
        urls: Urls = Urls(),
        name_constraints: NameConstraints = NameConstraints(),
        parent: CertificateAuthority | None = None,
        passphrase: bytes | None = None,
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """A new CA in ``directory``, with the built-in profiles copied in: a root, or with
        ``parent`` an intermediate signed under the parent's intermediate-ca profile and
        recorded in the parent's registry.

        Raises StoreError if the folder already holds a CA, PolicyError for what the parent
        or the lifetime does not allow.
        """
        if Store(directory).holds_ca():
            raise StoreError(f"{directory} already holds a CA; not touching it")
        now = now or datetime.now(timezone.utc)
        make = cls.in_memory if parent is None else parent.intermediate
        authority = make(
            subject=subject,
            key_type=key_type,
            days=days,
            path_length=path_length,
            urls=urls,
            name_constraints=name_constraints,
            now=now,
        )
        files = {
            store.CA_CERT: authority.certificate.public_bytes(Encoding.PEM),
            store.CA_CHAIN: b"".join(c.public_bytes(Encoding.PEM) for c in authority.chain),
            store.CA_KEY: keys.private_key_pem(authority.private_key, passphrase),
            store.SETTINGS: authority.settings.to_yaml().encode(),
        }
        for path in sorted(profiles.builtin_dir().glob("*.yaml")):
            files[f"{store.PROFILES}/{path.name}"] = path.read_bytes()
        authority.store = Store.create(directory, files)
        if parent is not None and (issued := authority.issued) is not None:
            try:  # the parent's registry records the new CA, or the new folder goes
                parent._store().record(_record(issued, now, None), issued.pem)
            except BaseException:
                authority.store.remove()
                raise
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
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """A new root CA that lives only in memory: no folder, no registry."""
        subject = subject or Subject(common_name=f"minica root CA {secrets.token_hex(4)}")
        private_key = keys.generate(key_type)
        certificate = self_signed(
            subject,
            private_key,
            root_profile(path_length),
            serial=random_serial(),
            now=now or datetime.now(timezone.utc),
            days=CA_DAYS if days is None else days,
            name_constraints=name_constraints,
        )
        return cls(certificate, [certificate], Settings(urls=urls), private_key)

    def intermediate(
        self,
        *,
        subject: Subject | None = None,
        key_type: str = CA_KEY_TYPE,
        days: int | None = None,
        path_length: int | None = None,
        urls: Urls = Urls(),
        name_constraints: NameConstraints = NameConstraints(),
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """A new CA signed by this one under its intermediate-ca profile, in memory.

        ``path_length`` replaces the profile's 0; ``name_constraints`` may not be wider than
        this CA's (without any, the new CA inherits them). Nothing is recorded: the new CA
        keeps its ``issued`` for whoever records it (init does).
        """
        subject = subject or Subject(common_name=f"minica intermediate CA {secrets.token_hex(4)}")
        profile = self.profile("intermediate-ca")
        if path_length is not None:
            profile = replace(profile, path_length=path_length)
        private_key = keys.generate(key_type)
        public_key = private_key.public_key()
        request = Request(subject, Names(), public_key, keys.key_type_of(public_key))
        issued = certify(
            request,
            profile,
            self._signer(),
            serial=random_serial(),
            now=now or datetime.now(timezone.utc),
            days=days,
            urls=self.settings.urls,
            name_constraints=name_constraints,
        )
        chain = [issued.certificate, *self.chain]
        child = CertificateAuthority(issued.certificate, chain, Settings(urls=urls), private_key)
        child.issued, child.warnings = issued, issued.warnings
        return child

    @classmethod
    def open(cls, directory: Path, passphrase: Passphrase | None = None) -> CertificateAuthority:
        """The CA in ``directory``. Its key is read, and ``passphrase`` asked for, only when
        something is signed. Raises StoreError if there is no readable CA there."""
        ca_store = Store.open(directory)
        certificate = _load_certificates(ca_store, store.CA_CERT)[0]
        chain = _load_certificates(ca_store, store.CA_CHAIN)
        settings = Settings.from_yaml(
            ca_store.read(store.SETTINGS).decode("utf-8", "replace"),
            str(ca_store.path(store.SETTINGS)),
        )

        def load_key() -> PrivateKey:
            data = ca_store.read(store.CA_KEY)
            secret = passphrase() if passphrase and b"ENCRYPTED" in data else None
            return keys.load_private_key(data, str(ca_store.path(store.CA_KEY)), secret)

        return cls(certificate, chain, settings, load_key, ca_store)

    @property
    def private_key(self) -> PrivateKey:
        if callable(self._private_key):
            self._private_key = self._private_key()
        return self._private_key

    @property
    def key_is_encrypted(self) -> bool:
        return self.store is not None and b"ENCRYPTED" in self.store.read(store.CA_KEY)

    @property
    def intermediates(self) -> list[x509.Certificate]:
        """The chain without the root: what a server sends after its own certificate."""
        return self.chain[:-1]

    def full_chain_pem(self, issued: Issued) -> bytes:
        """The new certificate followed by the intermediates: what a server presents."""
        return issued.pem + b"".join(c.public_bytes(Encoding.PEM) for c in self.intermediates)

    def profile(self, name: str) -> Profile:
        """The profile ``name`` as this CA sees it (its own copies before the built-ins);
        read once per CA object."""
        if name not in self._profiles:
            self._profiles[name] = profiles.find(name, self._profiles_dir())
        return self._profiles[name]

    def available_profiles(self) -> list[Profile]:
        """Every profile this CA can use, by name."""
        return profiles.available(self._profiles_dir())

    def sign(
        self,
        request: Request,
        profile: Profile,
        *,
        days: int | None = None,
        now: datetime | None = None,
        window: tuple[datetime, datetime] | None = None,
        renewing: Record | None = None,
    ) -> Issued:
        """Sign ``request`` under ``profile`` and record it; see issuer.certify for the rules.

        ``window`` is an explicit (not_before, not_after); ``renewing`` is the registry row
        of the certificate this one replaces.
        """
        now = now or datetime.now(timezone.utc)
        signer = self._signer()
        for _ in range(_SERIAL_ATTEMPTS):
            issued = certify(
                request,
                profile,
                signer,
                serial=random_serial(),
                now=now,
                days=days,
                urls=self.settings.urls,
                window=window,
            )
            if self.store is None:
                return issued
            try:
                self.store.record(_record(issued, now, renewing), issued.pem)
            except SerialTaken:
                continue
            return issued
        raise StoreError("could not draw an unused serial number")

    def issue(
        self,
        profile: Profile,
        subject: Subject,
        names: Names = Names(),
        *,
        key_type: str | None = None,
        days: int | None = None,
        now: datetime | None = None,
        window: tuple[datetime, datetime] | None = None,
    ) -> tuple[Issued, PrivateKey]:
        """A new key and a certificate for it, signed under ``profile``."""
        chosen = key_type or self.settings.key_type
        private_key = keys.generate(chosen)  # refuses unknown names: chosen is a key type
        request = Request(subject, names, private_key.public_key(), chosen)
        # Round-trip through a CSR would only re-check what we just built; sign directly.
        return self.sign(request, profile, days=days, now=now, window=window), private_key

    def renew(
        self, certificate: x509.Certificate, *, days: int | None = None, now: datetime | None = None
    ) -> Issued:
        """The certificate again with a new serial and lifetime: same subject, names, public
        key and profile. The old one stays valid until revoked. MinicaError if it is revoked."""
        old = self.record(certificate)
        if old.revoked_at is not None:
            raise MinicaError(f"certificate {old.serial} is revoked; issue a new one instead")
        request = requests.from_certificate(certificate)
        return self.sign(request, self.profile(old.profile), days=days, now=now, renewing=old)

    def _signer(self) -> Signer:
        """The signing identity, made once: it caches what every signature needs."""
        if self._signer_made is None:
            self._signer_made = Signer(self.certificate, self.private_key, tuple(self.chain[1:]))
        return self._signer_made

    def _store(self) -> Store:
        if self.store is None:
            raise StoreError("an in-memory CA keeps no record of what it issued")
        return self.store

    def _registry(self) -> Registry:
        return self._store().registry

    def _profiles_dir(self) -> Path | None:
        return self.store.path(store.PROFILES) if self.store else None


def _record(issued: Issued, now: datetime, renewing: Record | None) -> Record:
    certificate = issued.certificate
    return Record(
        serial=serial_hex(certificate.serial_number),
        subject=certificate.subject.rfc4514_string(),
        profile=issued.profile,
        # a renewal keeps the contact even where the profile kept it out of the certificate
        contact=issued.contact or (renewing.contact if renewing else None),
        not_before=iso(certificate.not_valid_before_utc),
        not_after=iso(certificate.not_valid_after_utc),
        issued_at=iso(now),
        renewed_from=renewing.serial if renewing else None,
    )


def _load_certificates(ca_store: Store, name: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(ca_store.read(name))
    except ValueError:
        raise StoreError(f"{ca_store.path(name)} holds no readable PEM certificate") from None
    return certificates
