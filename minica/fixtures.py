"""Test fixtures: a CA for test suites (``FixtureCA``), credentials as PEM bytes, files and
ssl contexts, and certificates made to fail (expired, wrong purpose, untrusted, revoked,
...), one call each. Built on CertificateAuthority; see the README's "Test fixtures".
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from . import issuer, keys
from .ca import CertificateAuthority
from .credentials import Credential
from .errors import InputError
from .issuer import Urls
from .names import MAX_NAMES, Names, Subject, parse_name

if TYPE_CHECKING:
    import ssl

    from .acme.server import AcmeServer
    from .profiles import Profile
    from .serve import AcmeEndpoints, Endpoints

# The TLS profile a certificate is *not* for, to make one that fails for its purpose.
_OTHER_PURPOSE = {"server": "client", "client": "server"}


class FixtureCA:
    """A CA for tests: certificates for any profile in one call, ssl contexts that trust it,
    and certificates made to fail. In memory by default; ``authority`` may be any
    CertificateAuthority (a CA folder, an intermediate), whose clock dates everything.
    """

    def __init__(self, authority: CertificateAuthority | None = None) -> None:
        self.authority = authority or CertificateAuthority.in_memory()

    @property
    def certificate(self) -> x509.Certificate:
        """This CA's own certificate."""
        return self.authority.certificate

    @property
    def root_pem(self) -> bytes:
        """The root certificate at the top of this CA's chain, PEM: what peers trust."""
        return self.authority.chain[-1].public_bytes(Encoding.PEM)

    def intermediate(self, **options: Any) -> FixtureCA:
        """A CA below this one (see CertificateAuthority.intermediate), for chains."""
        return FixtureCA(self.authority.intermediate(**options))

    def certify(
        self,
        *names: str,
        profile: str = "server",
        common_name: str | None = None,
        key_type: str | None = None,
        days: int | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
    ) -> Credential:
        """A new key and certificate under ``profile`` for ``names``: host names, IP
        addresses, emails (with @) and URIs (with ://); a word without a dot, such as a
        person's name, is a host name only where the profile needs one (and "localhost").
        The common name defaults to the first name. ``not_before``/``not_after`` (aware
        datetimes) replace ``days``: give both or neither."""
        window = _window(not_before, not_after)
        chosen = self.authority.profile(profile)
        subject = _subject(common_name or (names[0] if names else "minica test"))
        issued, key = self.authority.issue(
            chosen,
            subject,
            _classify(names, chosen),
            key_type=key_type or "ec-p256",
            days=days,
            window=window,
        )
        return Credential(issued.certificate, key, tuple(self.authority.intermediates))

    def revoke(self, credential: Credential, reason: str = "key-compromise") -> None:
        """Revoke a certificate this CA issued; the next CRL lists it."""
        self.authority.revoke(format(credential.certificate.serial_number, "x"), reason)

    def trust(self, context: ssl.SSLContext) -> None:
        """Make ``context`` trust this CA's root."""
        context.load_verify_locations(cadata=self.root_pem.decode())

    def server_context(
        self,
        credential: Credential,
        *,
        client_certificates: bool = True,
        check_revocation: bool = False,
    ) -> ssl.SSLContext:
        """A TLS server context presenting ``credential``; by default it requires client
        certificates from this CA (mutual TLS): ``client_certificates=False`` for a server
        that asks for none."""
        import ssl  # here, not at import: the CLI never needs it

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        credential.configure(context)
        if client_certificates:
            context.verify_mode = ssl.CERT_REQUIRED
            self.trust(context)
            if check_revocation:
                self._load_crl(context)
        return context

    def client_context(
        self,
        credential: Credential | None = None,
        *,
        check_revocation: bool = False,
    ) -> ssl.SSLContext:
        """A TLS client context trusting this CA (host names checked), presenting
        ``credential`` if given; ``check_revocation`` also checks the server against a
        CRL of what this CA revoked so far."""
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.trust(context)
        if credential is not None:
            credential.configure(context)
        if check_revocation:
            self._load_crl(context)
        return context

    @contextmanager
    def serve(
        self, hostnames: tuple[str, ...] = (), *, acme: AcmeServer | None = None
    ) -> Iterator[Endpoints]:
        """Run `minica serve` for this CA in this process, on 127.0.0.1 (free ports), while
        the block runs: OCSP, CRL and CA certificate over HTTP and HTTPS (its certificate
        for ``hostnames``, default localhost and 127.0.0.1: give names a constrained CA may
        certify), and ``acme`` on HTTPS when given. Certificates this CA issues meanwhile
        carry its OCSP, CRL and issuer URLs. Needs the serve extra."""
        from .serve import Service, require_extra

        require_extra()
        from .serve.identity import tls_names
        from .serve.runner import in_thread, listen_on, tls_for

        names = tls_names(list(hostnames), "127.0.0.1")
        service = Service(self.authority, tls_names=names, acme=acme)
        secure, plain = listen_on("127.0.0.1", 0), listen_on("127.0.0.1", 0)
        running = in_thread(service, [(secure, tls_for(service)), (plain, None)])
        settings = self.authority.settings
        endpoints = running.urls
        self.authority.settings = replace(
            settings,
            urls=Urls(crl=endpoints.crl_url, ocsp=endpoints.ocsp_url, issuer=endpoints.issuer_url),
        )
        service.watch()
        try:
            yield endpoints
        finally:
            self.authority.settings = settings
            running.stop(force=True)  # the block is over: nothing of the test is in flight
            service.stop()
            if running.thread is not None:
                running.thread.join(30)

    @contextmanager
    def acme(
        self,
        *,
        validate: bool = True,
        profiles: tuple[str, ...] = ("server",),
        eab_required: bool = False,
        dns_resolver: tuple[str, int] | None = None,
        hostnames: tuple[str, ...] = (),
    ) -> Iterator[AcmeEndpoints]:
        """``serve`` with ACME, as an ACME server for a test's client: its directory, the
        root to trust as a file, and the 127.0.0.1 ports where the validator looks for the
        client's http-01 and tls-alpn-01 answers. ``validate=False`` passes every challenge
        at once (as Pebble's PEBBLE_VA_ALWAYS_VALID); otherwise names resolve through
        ``dns_resolver`` (HOST, PORT) or the system's resolver. Needs the serve extra."""
        from .serve import AcmeEndpoints, require_extra

        require_extra()
        from .acme.server import AcmeServer
        from .acme.validation import Validator
        from .serve.runner import free_port

        http_01_port, tls_alpn_01_port = free_port(), free_port()
        validator = (
            Validator(http_port=http_01_port, tls_alpn_port=tls_alpn_01_port, resolver=dns_resolver)
            if validate
            else None
        )
        server = AcmeServer(
            self.authority, profiles=profiles, validator=validator, eab_required=eab_required
        )
        with (
            tempfile.TemporaryDirectory(prefix="minica-acme-") as folder,
            self.serve(hostnames, acme=server) as endpoints,
        ):
            root = Path(folder) / "root.pem"
            root.write_bytes(self.root_pem)
            yield AcmeEndpoints(endpoints, root, http_01_port, tls_alpn_01_port)

    def crl_pem(self) -> bytes:
        """A fresh CRL of every certificate this CA revoked, PEM."""
        return self.authority.crl().public_bytes(Encoding.PEM)

    # Certificates made to fail, each for one reason.

    def expired(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate that expired yesterday."""
        return self._dated(names, profile, key_type, first_day=-30, last_day=-1)

    def not_yet_valid(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate whose validity starts tomorrow."""
        return self._dated(names, profile, key_type, first_day=1, last_day=30)

    def _dated(
        self,
        names: tuple[str, ...],
        profile: str,
        key_type: str | None,
        *,
        first_day: int,
        last_day: int,
    ) -> Credential:
        now = self.authority.clock()
        return self.certify(
            *names,
            profile=profile,
            key_type=key_type,
            not_before=now + timedelta(days=first_day),
            not_after=now + timedelta(days=last_day),
        )

    def wrong_purpose(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate for the other side of TLS: a client certificate where a server one
        is wanted (``profile="server"``), or the reverse."""
        if profile not in _OTHER_PURPOSE:
            raise InputError(f"wrong_purpose takes profile 'server' or 'client', not {profile!r}")
        return self.certify(*names, profile=_OTHER_PURPOSE[profile], key_type=key_type)

    def untrusted(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate as this CA would issue it, but from a CA nobody trusts."""
        stranger = FixtureCA(
            CertificateAuthority.in_memory(key_type="ec-p256", clock=self.authority.clock)
        )
        return stranger.certify(*names, profile=profile, key_type=key_type)

    def self_signed(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate for ``names`` under ``profile``, but signed by its own key."""
        key = keys.generate(key_type or "ec-p256")
        chosen = self.authority.profile(profile)
        subject = _subject(names[0] if names else "minica test")
        certificate = issuer.self_signed(
            subject,
            key,
            chosen,
            names=_classify(names, chosen),
            serial=issuer.random_serial(),
            now=self.authority.clock(),
            days=chosen.validity_days,
        )
        return Credential(certificate, key)

    def revoked(
        self, *names: str, profile: str = "server", key_type: str | None = None
    ) -> Credential:
        """A certificate this CA issued and then revoked; contexts made with
        ``check_revocation=True`` refuse it."""
        credential = self.certify(*names, profile=profile, key_type=key_type)
        self.revoke(credential)
        return credential

    def _load_crl(self, context: ssl.SSLContext) -> None:
        import ssl

        with tempfile.TemporaryDirectory() as folder:  # CRLs load from files only
            path = Path(folder) / "crl.pem"
            path.write_bytes(self.crl_pem())
            context.load_verify_locations(cafile=path)
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF


def _window(
    not_before: datetime | None, not_after: datetime | None
) -> tuple[datetime, datetime] | None:
    if not_before is None and not_after is None:
        return None
    if not_before is None or not_after is None:
        raise InputError("give both not_before and not_after, or neither")
    if not_before.tzinfo is None or not_after.tzinfo is None:
        raise InputError("not_before and not_after must be timezone-aware datetimes")
    return not_before, not_after


# Test suites ask for the same few names again and again: both are pure, so remembered.
@functools.lru_cache(maxsize=1024)
def _subject(common_name: str) -> Subject:
    return Subject(common_name=common_name)


@functools.lru_cache(maxsize=1024)
def _classify(values: tuple[str, ...], profile: Profile) -> Names:
    """Names by their look: 'a@b' email, 'x://' URI, an address IP, else a host name.
    A word without a dot ('alice') is a host name only where the profile needs one, or
    for 'localhost'; otherwise it is a person's name and stays out of the names."""
    needs_host = bool({"dns", "dns_or_ip"} & set(profile.names.required))
    hosts: dict[str, list[Any]] = {"dns": [], "ip": []}
    email: list[str] = []
    uri: list[str] = []
    for value in values:
        if "://" in value:
            uri.append(value)
        elif "@" in value:
            email.append(value)
        elif (parsed := parse_name(value)) is not None:
            kind, name = parsed
            if kind == "ip" or "." in str(name) or needs_host or name == "localhost":
                hosts[kind].append(name)
    if not (email or uri or len(values) > MAX_NAMES):  # host names come parsed already
        return Names(dns=tuple(dict.fromkeys(hosts["dns"])), ip=tuple(dict.fromkeys(hosts["ip"])))
    return Names.parse(dns=hosts["dns"], ip=[str(a) for a in hosts["ip"]], email=email, uri=uri)
