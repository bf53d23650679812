"""`minica serve`: the CA online — OCSP responder, CRL and CA certificate distribution, a
page for people — as an ASGI application (Starlette) on Uvicorn.

``Service`` holds what the routes answer from (the CA, its responder, its CRL, its own
certificates) and keeps them current; ``app.build`` makes the routes, ``runner`` the
listeners. Nothing here is imported by the other commands: Starlette and Uvicorn are the
``serve`` extra, loaded only when serving.
"""

from __future__ import annotations

import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from ..ca import CertificateAuthority
from ..errors import MinicaError, PolicyError
from ..issuer import Signer
from ..names import Names, Subject
from .crl import CrlPublisher
from .identity import Identity
from .ocsp import Responder

if TYPE_CHECKING:
    from ..acme.server import AcmeServer

DELEGATE_DAYS = 7  # the delegated OCSP responder's lifetime; renewed at two thirds
WATCH_SECONDS = 0.5  # how often the registry's revision is read: changes show within 2 s


@dataclass(frozen=True)
class Endpoints:
    """Where a running service answers: its listeners, and the URLs of what it serves
    (those of the plain HTTP listener where there is one, as relying parties fetch them)."""

    http_url: str | None
    https_url: str | None

    @property
    def base(self) -> str:
        base = self.http_url or self.https_url
        assert base is not None
        return base.rstrip("/")

    @property
    def ocsp_url(self) -> str:
        return f"{self.base}/ocsp"

    @property
    def crl_url(self) -> str:
        return f"{self.base}/crl"

    @property
    def issuer_url(self) -> str:
        return f"{self.base}/ca.crt"

    @property
    def acme_directory(self) -> str | None:
        """The ACME directory, on the HTTPS listener (None without one)."""
        return f"{self.https_url.rstrip('/')}/acme/directory" if self.https_url else None


@dataclass(frozen=True)
class AcmeEndpoints:
    """A running service with ACME, for a test's ACME client: the ``directory`` URL, the
    root certificate file its HTTPS chains to (``ca_file``: give it to the client as its
    trust, e.g. REQUESTS_CA_BUNDLE), and the ports on 127.0.0.1 where the validator asks
    for the client's http-01 and tls-alpn-01 answers."""

    endpoints: Endpoints
    ca_file: Path
    http_01_port: int
    tls_alpn_01_port: int

    @property
    def directory(self) -> str:
        directory = self.endpoints.acme_directory
        assert directory is not None  # the service always listens on HTTPS
        return directory


class Service:
    """What `minica serve` answers from, kept current by ``watch``: the OCSP responder,
    the CRL, and the service's own certificates (TLS unless given files, and the OCSP
    delegate when ``delegate_ocsp``)."""

    def __init__(
        self,
        authority: CertificateAuthority,
        *,
        tls_names: Names | None = None,
        delegate_ocsp: bool = False,
        acme: AcmeServer | None = None,
    ) -> None:
        refuse_open_key(authority)
        self.authority = authority
        self.acme = acme
        authority.registry.keep_connections()  # every request reads it, many write it
        name = authority.certificate.subject.rfc4514_string()
        self.delegate = (
            Identity(
                authority,
                "ocsp",
                "ocsp-signing",
                Subject(common_name=f"OCSP responder of {name}"[:64]),
                # RFC 6960 §4.2.2.2.1: a responder no one checks (ocsp-nocheck) lives short
                days=DELEGATE_DAYS,
            )
            if delegate_ocsp
            else None
        )
        signer = _signer_of(self.delegate)
        self.responder = Responder(authority, signer)
        self.crl = CrlPublisher(authority)
        self.tls = (
            Identity(authority, "tls", "server", Subject(common_name=_first(tls_names)), tls_names)
            if tls_names is not None
            else None
        )
        self.ca_der = authority.certificate.public_bytes(Encoding.DER)
        self.ca_pem = authority.certificate.public_bytes(Encoding.PEM)
        self.chain_pem = b"".join(c.public_bytes(Encoding.PEM) for c in authority.chain)
        self.root_der = authority.chain[-1].public_bytes(Encoding.DER)  # what people trust
        self.root_pem = authority.chain[-1].public_bytes(Encoding.PEM)
        self.on_tls_renewal: list[Callable[[], None]] = []  # the runner reloads its context
        self._stop = threading.Event()

    def refresh(self) -> None:
        """One round of keeping current: a changed registry empties the responder's kept
        answers and signs a new CRL; a due certificate of the service's is issued anew."""
        changed = self.responder.refresh()
        self.crl.refresh(changed=changed)
        if self.delegate is not None and self.delegate.renew_if_due():
            self.responder = Responder(self.authority, _signer_of(self.delegate))
        if self.tls is not None and self.tls.renew_if_due():
            for callback in self.on_tls_renewal:
                callback()

    def watch(self) -> threading.Thread:
        """Start keeping current in a thread of its own, until ``stop``."""

        def loop() -> None:
            while not self._stop.wait(WATCH_SECONDS):
                try:
                    self.refresh()
                except Exception as error:  # a passing storage fault: try again next round
                    print(f"warning: keeping the service current failed: {error}", file=sys.stderr)

        thread = threading.Thread(target=loop, name="minica-serve-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
        if self.acme is not None:
            self.acme.close()


def require_extra() -> None:
    """MinicaError, with the command that helps, unless the serve extra is installed."""
    try:
        import acme  # noqa: F401
        import dns  # noqa: F401
        import josepy  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MinicaError(
            "minica serve needs the serve extra (Starlette, Uvicorn, acme, josepy, dnspython)",
            hint="pip install 'minica-pki[serve]'",
        ) from None


def refuse_open_key(authority: CertificateAuthority) -> None:
    """A CA key others can read is a CA anyone on the machine can be: refuse to serve it."""
    if authority.folder is None:
        return
    path = authority.folder.path("private/ca.key")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PolicyError(
            f"{path} has mode {mode:o}: others can read the CA key; not serving it",
            hint=f"make it readable by its owner alone: chmod 600 {path}",
        )


def _signer_of(identity: Identity | None) -> Signer | None:
    if identity is None:
        return None
    return Signer(identity.current.certificate, identity.current.private_key)


def _first(names: Names | None) -> str:
    assert names is not None
    values = [*names.dns, *(str(address) for address in names.ip)]
    return values[0] if values else "minica service"
