"""A CA online for the `minica serve` tests: a CA folder made by `minica init --url` for the
port its service then listens on, leaves issued and revoked with the CLI, a certificate
the CA never issued, one of another CA; and OCSP requests built, sent and read back with
cryptography, as a relying party does.
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conftest import run_minica, write_ca_certificate, write_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from cryptography.x509 import ocsp
from servers import PORT_ATTEMPTS, Reply, Service, free_port, http_request, start_service

from minica import CertificateAuthority, Subject

ROOT_CN = "minica serve test root"
ISSUING_CN = "minica serve test issuing CA"
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PROPAGATION = 2.0  # seconds: the contract's bound for another process's revocation to show


@dataclass(frozen=True)
class Lab:
    """A served CA and its certificates, by role: "good", "revoked" (key-compromise, by
    `minica revoke`), "unknown" (the CA's name and key, a serial never issued) and
    "foreign" (another CA's, whose certificate is ``foreign_ca``)."""

    folder: Path
    ca: Path
    service: Service
    leaves: dict[str, Path]
    foreign_ca: Path
    revoked_between: tuple[datetime, datetime]  # before and after `minica revoke` ran
    root_file: Path  # the root a relying party trusts: ca.crt, or the parent's for an intermediate

    @property
    def ca_file(self) -> Path:
        return self.ca / "ca.crt"

    @property
    def issuer(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.ca_file.read_bytes())

    def certificate(self, role: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.leaves[role].read_bytes())

    def issuer_of(self, role: str) -> Path:
        return self.foreign_ca if role == "foreign" else self.ca_file


def served_ca(
    folder: Path, *serve_options: str, parent: Path | None = None
) -> tuple[Path, Service]:
    """`minica init --url http://127.0.0.1:PORT` in FOLDER/ca (a root, or an intermediate
    below the CA folder ``parent``), then `minica serve` on that port (HTTP) and a free one
    (HTTPS). The port is only free when looked at: if another process takes it first, the
    CA is made again for another one."""
    below = ("--parent", str(parent), "--cn", ISSUING_CN) if parent else ("--cn", ROOT_CN)
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        ca = folder / ("ca" if attempt == 0 else f"ca-{attempt}")
        url = f"http://127.0.0.1:{port}"
        run_minica("init", "--ca", ca, *below, "--url", url, check=True)
        try:
            return ca, start_service(ca, *serve_options, http_listen=f"127.0.0.1:{port}")
        except AssertionError as error:
            if "in use" not in str(error).lower():
                raise
    raise AssertionError(f"no free port for minica serve in {PORT_ATTEMPTS} attempts")


def issue(ca: Path, folder: Path, name: str) -> Path:
    """`minica issue --profile server` for NAME.lab.test into FOLDER/NAME.crt (key beside)."""
    out = folder / f"{name}.crt"
    run_minica(
        "issue", "--ca", ca, "--profile", "server", "--cn", f"{name}.lab.test", "--out", out,
        check=True,
    )  # fmt: skip
    return out


def revoke(ca: Path, certificate: Path, reason: str = "key-compromise") -> None:
    run_minica("revoke", "--ca", ca, certificate, "--reason", reason, check=True)


def never_issued(ca: Path, out: Path) -> Path:
    """A certificate with the CA's name as issuer, signed with its key, but made by hand:
    its serial is in no registry, so the responder must say `unknown`."""
    issuer = x509.load_pem_x509_certificate((ca / "ca.crt").read_bytes())
    key = load_pem_private_key((ca / "private" / "ca.key").read_bytes(), None)
    assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    now = datetime.now(timezone.utc)
    forged = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "nobody")]))
        .issuer_name(issuer.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("nobody.lab.test")]), False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    out.write_bytes(forged.public_bytes(Encoding.PEM))
    return out


def foreign_leaf(folder: Path) -> tuple[Path, Path]:
    """Another CA's certificate file and a `server` leaf it issued."""
    other = CertificateAuthority.in_memory(subject=Subject(common_name="some other root"))
    leaf = write_certificate(other, "server", folder, "foreign", "foreign.lab.test")
    return write_ca_certificate(other, folder / "foreign-ca.crt"), leaf.cert


def make_lab(folder: Path, *serve_options: str, parent: Path | None = None) -> Lab:
    """A served CA (an intermediate below ``parent`` if given) with the four roles of Lab;
    the caller stops ``lab.service``."""
    ca, service = served_ca(folder, *serve_options, parent=parent)
    leaves = {role: issue(ca, folder, role) for role in ("good", "revoked")}
    before = datetime.now(timezone.utc).replace(microsecond=0)
    revoke(ca, leaves["revoked"])
    after = datetime.now(timezone.utc)
    leaves["unknown"] = never_issued(ca, folder / "unknown.crt")
    foreign_ca, leaves["foreign"] = foreign_leaf(folder)
    root = (parent or ca) / "ca.crt"
    lab = Lab(folder, ca, service, leaves, foreign_ca, (before, after), root)
    # The service may take up to PROPAGATION seconds to see the revocation: tests start
    # from a lab where it has (test_serve_robustness.py times that bound itself).
    shown = eventually(PROPAGATION, lambda: shows_revoked(lab, lab.certificate("revoked")))
    assert shown is not None, f"the revocation did not show in /ocsp and /crl in {PROPAGATION} s"
    return lab


def listed_in_crl(base_url: str, serial: int) -> bool:
    crl = x509.load_der_x509_crl(http_request(f"{base_url}/crl").body)
    return crl.get_revoked_certificate_by_serial_number(serial) is not None


def shows_revoked(lab: Lab, certificate: x509.Certificate) -> bool:
    """Whether /ocsp says revoked and /crl lists ``certificate``."""
    status = ask(lab.service.http_url, certificate, lab.issuer).certificate_status
    return status == ocsp.OCSPCertStatus.REVOKED and listed_in_crl(
        lab.service.http_url, certificate.serial_number
    )


# OCSP as a relying party speaks it.


def ocsp_request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """The DER of an OCSP request for one certificate (SHA-1 CertID unless ``algorithm``)."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        certificate, issuer, algorithm or hashes.SHA1()
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def ocsp_request_for_serial(issuer: x509.Certificate, serial: int) -> bytes:
    """The DER of an OCSP request for ``serial`` under ``issuer`` (SHA-1 CertID)."""
    name_hash = hashes.Hash(hashes.SHA1())
    name_hash.update(issuer.subject.public_bytes())
    key_hash = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest
    builder = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name_hash.finalize(), key_hash, serial, hashes.SHA1()
    )
    return builder.build().public_bytes(Encoding.DER)


def post_ocsp(base_url: str, request: bytes, content_type: str = OCSP_REQUEST) -> Reply:
    return http_request(f"{base_url}/ocsp", request, headers={"Content-Type": content_type})


def get_ocsp(base_url: str, request: bytes) -> Reply:
    """GET {url}/{url-encoding of base-64 of the DER} (RFC 6960 appendix A.1)."""
    encoded = urllib.parse.quote(base64.b64encode(request).decode(), safe="")
    return http_request(f"{base_url}/ocsp/{encoded}")


def ocsp_response(reply: Reply) -> ocsp.OCSPResponse:
    """The OCSP response a reply carries (which must be 200, application/ocsp-response)."""
    assert reply.status == 200, reply
    assert reply.content_type == OCSP_RESPONSE, reply.headers
    return ocsp.load_der_ocsp_response(reply.body)


def ask(
    base_url: str, certificate: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPResponse:
    """POST an OCSP request for ``certificate``; the successful response."""
    response = ocsp_response(post_ocsp(base_url, ocsp_request(certificate, issuer)))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL, response
    return response


def served_certificate(port: int, trust: Path, hostname: str) -> x509.Certificate:
    """The certificate the HTTPS listener presents to a Python ssl client that trusts only
    ``trust`` and checks ``hostname`` (a failure raises ssl.SSLCertVerificationError)."""
    context = ssl.create_default_context(cafile=str(trust))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def check_signature(
    key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | None,
) -> None:
    """Raise InvalidSignature unless ``key`` signed ``data`` (RSA PKCS#1 v1.5, ECDSA, Ed25519)."""
    if isinstance(key, rsa.RSAPublicKey):
        assert algorithm is not None
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        assert algorithm is not None
        key.verify(signature, data, ec.ECDSA(algorithm))
    else:
        assert isinstance(key, ed25519.Ed25519PublicKey), key
        key.verify(signature, data)


def eventually(seconds: float, condition: Callable[[], bool]) -> float | None:
    """Poll ``condition`` every 50 ms for up to ``seconds``: how long it took to hold, or
    None if it never did."""
    start = time.monotonic()
    while True:
        held = condition()
        elapsed = time.monotonic() - start
        if held:
            return elapsed
        if elapsed > seconds:
            return None
        time.sleep(0.05)
