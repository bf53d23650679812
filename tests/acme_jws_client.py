"""A JWS client of the tests' own for minica's ACME server, in this process: requests are
signed for real (josepy's algorithms, cryptography's keys) and carried to the Starlette
application of the ACME routes as an HTTPS client would send them (an ASGI call with
scheme https: httpx, which Starlette's TestClient needs, is not installed).

It can also send what a client never should — a used nonce, a wrong url, ``alg: none``,
a MAC, a corrupted signature, jwk and kid together, a body that is not JSON — because the
request is built field by field (``post``'s keywords), not by a library that refuses to.

    with acme_lab(ca_folder) as lab:
        account = lab.client.new_account(AccountKey.generate("ES256"))
        order = lab.client.new_order(account, "www.lab.test")
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from josepy.b64 import b64encode
from josepy.jwa import ES256, ES384, HS256, RS256
from josepy.jwk import JWKEC, JWKRSA
from starlette.applications import Starlette

from minica import CertificateAuthority
from minica.acme.orders import Checker
from minica.acme.server import AcmeServer
from minica.clock import Clock, system_clock
from minica.serve import acme_routes

HOST = "ca.lab.test"
BASE = f"https://{HOST}"
DIRECTORY = f"{BASE}/acme/directory"
JOSE = "application/jose+json"
PROBLEM = "application/problem+json"
NAMESPACE = "urn:ietf:params:acme:error:"

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
Payload = Union[dict[str, Any], bytes, None]  # None: POST-as-GET (an empty payload)


def b64(data: bytes) -> str:
    """base64url without padding, as JWS and ACME write binary fields."""
    return b64encode(data).decode("ascii")


@dataclass(frozen=True)
class Response:
    """What the application answered: status, headers (lower-case names; a repeated
    header's values joined by ", "), body."""

    status: int
    headers: dict[str, str]
    body: bytes
    links: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def problem(self) -> str | None:
        """The problem type (without its namespace) of a problem document, else None."""
        if self.content_type != PROBLEM:
            return None
        kind = str(self.json()["type"])
        assert kind.startswith(NAMESPACE), kind
        return kind.removeprefix(NAMESPACE)

    @property
    def location(self) -> str:
        return self.headers["location"]


class Asgi:
    """``app`` called as an HTTPS client on ``HOST`` would call it, one request at a time."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(
        self, method: str, url: str, body: bytes = b"", content_type: str | None = JOSE
    ) -> Response:
        assert url.startswith(BASE), url
        path = url.removeprefix(BASE)
        headers = [(b"host", HOST.encode()), (b"content-length", str(len(body)).encode())]
        if content_type is not None:
            headers.append((b"content-type", content_type.encode()))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "server": (HOST, 443),
            "client": ("127.0.0.1", 40000),
        }
        return asyncio.run(self._call(scope, body))

    async def _call(self, scope: dict[str, Any], body: bytes) -> Response:
        messages: list[MutableMapping[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            messages.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in messages if m["type"] == "http.response.start")
        headers: dict[str, str] = {}
        links = []
        for name, value in start["headers"]:
            key, text = name.decode("latin-1").lower(), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
            if key == "link":
                links.append(text)
        content = b"".join(
            m.get("body", b"") for m in messages if m["type"] == "http.response.body"
        )
        return Response(start["status"], headers, content, links)


@dataclass(frozen=True)
class AccountKey:
    """An account key and the JWS algorithm it signs with."""

    alg: str
    private: PrivateKey

    @classmethod
    def generate(cls, alg: str = "ES256") -> AccountKey:
        makers: dict[str, Callable[[], PrivateKey]] = {
            "ES256": lambda: ec.generate_private_key(ec.SECP256R1()),
            "ES384": lambda: ec.generate_private_key(ec.SECP384R1()),
            "RS256": lambda: rsa.generate_private_key(65537, 2048),
            "EdDSA": ed25519.Ed25519PrivateKey.generate,
        }
        return cls(alg, makers[alg]())

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK (RFC 7517; RFC 8037 for Ed25519)."""
        public = self.private.public_key()
        if isinstance(public, ed25519.Ed25519PublicKey):
            return {"kty": "OKP", "crv": "Ed25519", "x": b64(public.public_bytes_raw())}
        jwk = JWKEC(key=public) if isinstance(public, ec.EllipticCurvePublicKey) else None
        found: dict[str, Any] = (jwk or JWKRSA(key=public)).to_json()
        return found

    def thumbprint(self) -> str:
        """The RFC 7638 thumbprint: SHA-256 of the required members, sorted, no spaces."""
        jwk = self.jwk()
        members = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
        required = members.get(jwk["kty"], ("crv", "kty", "x"))
        text = json.dumps({m: jwk[m] for m in required}, sort_keys=True, separators=(",", ":"))
        return b64(hashlib.sha256(text.encode()).digest())

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private, ed25519.Ed25519PrivateKey):
            return self.private.sign(message)
        algorithm = {"ES256": ES256, "ES384": ES384, "RS256": RS256}[self.alg]
        return bytes(algorithm.sign(self.private, message))


def flattened(header: dict[str, Any], payload: bytes, sign: Callable[[bytes], bytes]) -> bytes:
    """The flattened JWS serialization (RFC 7515 §7.2.2) of ``payload`` under ``header``."""
    protected = b64(json.dumps(header).encode())
    encoded = b64(payload)
    signature = sign(f"{protected}.{encoded}".encode())
    document = {"protected": protected, "payload": encoded, "signature": b64(signature)}
    return json.dumps(document).encode()


def mac_signer(secret: bytes) -> Callable[[bytes], bytes]:
    """An HS256 signer: what ACME refuses outside external account binding."""
    return lambda message: bytes(HS256.sign(secret, message))


def corrupted(sign: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
    """``sign``, with the signature's first byte flipped."""

    def bad(message: bytes) -> bytes:
        signature = sign(message)
        return bytes([signature[0] ^ 0x01]) + signature[1:]

    return bad


@dataclass(frozen=True)
class Account:
    key: AccountKey
    url: str  # the kid

    @property
    def id(self) -> str:
        return self.url.rsplit("/", 1)[1]


def encode_payload(payload: Payload) -> bytes:
    if payload is None:
        return b""
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


class AcmeClient:
    """ACME requests to ``http``: ``post`` signs one as told; the rest are the steps a
    well-behaved client takes, each asserting that it succeeded."""

    def __init__(self, http: Asgi) -> None:
        self.http = http
        self.directory: dict[str, Any] = http.request("GET", DIRECTORY, content_type=None).json()
        self._nonce: str | None = None

    def url(self, resource: str) -> str:
        return str(self.directory[resource])

    def nonce(self) -> str:
        """A fresh nonce: the last Replay-Nonce, else one from newNonce."""
        nonce, self._nonce = self._nonce, None
        if nonce is None:
            nonce = self.http.request("HEAD", self.url("newNonce"), content_type=None).headers[
                "replay-nonce"
            ]
        return nonce

    def signed(
        self,
        url: str,
        payload: Payload,
        key: AccountKey,
        kid: str | None = None,
        *,
        header: dict[str, Any] | None = None,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> bytes:
        """The body of a request to ``url``: signed by ``key``, naming it by ``kid`` or
        else carrying it as jwk; ``header`` adds to (or, with None values, removes from)
        the protected header."""
        protected: dict[str, Any] = {"alg": key.alg, "nonce": self.nonce(), "url": url}
        protected.update({"kid": kid} if kid else {"jwk": key.jwk()})
        for name, value in (header or {}).items():
            if value is None:
                protected.pop(name, None)
            else:
                protected[name] = value
        return flattened(protected, encode_payload(payload), sign or key.sign)

    def post(
        self,
        url: str,
        payload: Payload,
        key: AccountKey,
        kid: str | None = None,
        *,
        header: dict[str, Any] | None = None,
        sign: Callable[[bytes], bytes] | None = None,
        body: bytes | None = None,
        content_type: str = JOSE,
    ) -> Response:
        """POST to ``url`` (``body`` as it is, else the JWS ``signed`` makes)."""
        if body is None:
            body = self.signed(url, payload, key, kid, header=header, sign=sign)
        response = self.http.request("POST", url, body, content_type)
        self._nonce = response.headers.get("replay-nonce")
        return response

    def as_account(self, account: Account, url: str, payload: Payload = None) -> Response:
        return self.post(url, payload, account.key, account.url)

    # The steps of a client that follows the RFC.

    def new_account(self, key: AccountKey, **fields: Any) -> Account:
        payload = {"termsOfServiceAgreed": True, **fields}
        response = self.post(self.url("newAccount"), payload, key)
        assert response.status == 201, response.body
        return Account(key, response.location)

    def new_order(self, account: Account, *names: str, **fields: Any) -> Response:
        identifiers = [{"type": identifier_type(n), "value": n} for n in names]
        payload = {"identifiers": identifiers, **fields}
        response = self.as_account(account, self.url("newOrder"), payload)
        assert response.status == 201, response.body
        return response

    def authorize(self, account: Account, order: Response, challenge: str = "http-01") -> None:
        """Answer ``challenge`` of every authorization of the order."""
        for authorization in order.json()["authorizations"]:
            offered = self.as_account(account, authorization).json()["challenges"]
            url = next(c["url"] for c in offered if c["type"] == challenge)
            answered = self.as_account(account, url, {})
            assert answered.status == 200, answered.body

    def finalize(self, account: Account, order: Response, csr: bytes) -> Response:
        return self.as_account(account, order.json()["finalize"], {"csr": b64(csr)})

    def certificate(
        self, account: Account, *names: str, key: PrivateKey | None = None
    ) -> tuple[x509.Certificate, Response]:
        """A certificate for ``names`` through the whole flow, and the finalized order."""
        order = self.new_order(account, *names)
        self.authorize(account, order)
        finalized = self.finalize(account, order, csr_for(names, key))
        assert finalized.status == 200, finalized.body
        download = self.as_account(account, finalized.json()["certificate"])
        assert download.status == 200, download.body
        return x509.load_pem_x509_certificates(download.body)[0], finalized


def identifier_type(name: str) -> str:
    """The ACME identifier type of ``name``: ip for an address (RFC 8738), else dns."""
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return "dns"
    return "ip"


def csr_for(names: tuple[str, ...] | list[str], key: PrivateKey | None = None) -> bytes:
    """The DER of a CSR for ``names`` (all in the SAN, no subject), signed by ``key`` (a
    fresh P-256 key if None), as certbot makes them."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(n)) if identifier_type(n) == "ip" else x509.DNSName(n)
        for n in names
    ]
    builder = x509.CertificateSigningRequestBuilder(x509.Name([]))
    builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(Encoding.DER)


def subject_csr(common_name: str, names: list[str]) -> bytes:
    """A CSR whose subject CN is ``common_name`` and SAN ``names``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    san = x509.SubjectAlternativeName([x509.DNSName(n) for n in names])
    builder = x509.CertificateSigningRequestBuilder(subject).add_extension(san, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)


@dataclass(frozen=True)
class AcmeLab:
    """A CA, its ACME server and a client of it, all in this process."""

    ca: Path
    authority: CertificateAuthority
    server: AcmeServer
    http: Asgi
    client: AcmeClient

    def state(self) -> dict[str, Any]:
        """Every account, order, authorization, EAB key and registry row, to compare
        before and after a request that must change nothing (nonces aside: each request
        takes one)."""
        now = self.authority.clock()
        kept = self.authority.registry.acme
        documents = {
            kind: [(id, document.body) for id, document in kept.find(kind, now=now)]
            for kind in ("account", "order", "authz", "eab")
        }
        return {**documents, "registry": self.authority.records_json()}


def refused(response: Response, kind: str, status: int) -> dict[str, Any]:
    """The problem document of ``response``, asserting its type, status and form."""
    assert response.content_type == PROBLEM, (response.status, response.body)
    document: dict[str, Any] = response.json()
    assert response.problem == kind, document
    assert response.status == status == document["status"], document
    assert document["detail"]
    # RFC 8555 §6.5: a nonce in every response to a POST, errors too, so a client can retry
    assert response.headers.get("replay-nonce"), response.headers
    return document


def changes_nothing(lab: AcmeLab, request: Callable[[], Response], kind: str, status: int) -> str:
    """The detail of the refusal ``request()`` gets, after checking it changed nothing."""
    before = lab.state()
    document = refused(request(), kind, status)
    assert lab.state() == before
    return str(document["detail"])


@contextmanager
def acme_lab(
    ca: Path,
    *,
    profiles: tuple[str, ...] = ("server",),
    validator: Checker | None = None,
    eab_required: bool = False,
    clock: Clock = system_clock,
) -> Iterator[AcmeLab]:
    """The CA folder ``ca`` served over ACME in process; every challenge passes at once
    unless a ``validator`` is given."""
    authority = CertificateAuthority.open(ca, clock=clock)
    server = AcmeServer(
        authority, profiles=profiles, validator=validator, eab_required=eab_required
    )
    http = Asgi(Starlette(routes=acme_routes.routes(server)))
    try:
        yield AcmeLab(ca, authority, server, http, AcmeClient(http))
    finally:
        server.close()
