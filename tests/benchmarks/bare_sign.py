"""The baseline for `minica sign`: load a CA and sign one CSR with cryptography, no checks.

    python tests/benchmarks/bare_sign.py CA_DIR REQ.csr OUT.crt

It builds what minica's `server` profile builds (basic constraints, key usage, SKI,
AKI, EKU serverAuth, the CSR's SAN) and writes the PEM: the least a script can do.
"""

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

ca_dir, csr_path, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
ca_cert = x509.load_pem_x509_certificate((ca_dir / "ca.crt").read_bytes())
ca_key = serialization.load_pem_private_key((ca_dir / "private" / "ca.key").read_bytes(), None)
assert isinstance(ca_key, ec.EllipticCurvePrivateKey)  # `minica init`'s default, ec-p384
csr = x509.load_pem_x509_csr(csr_path.read_bytes())
assert csr.is_signature_valid
san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
now = datetime.now(timezone.utc)
ca_key_id = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
certificate = (
    x509.CertificateBuilder()
    .subject_name(csr.subject)
    .issuer_name(ca_cert.subject)
    .public_key(csr.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - timedelta(minutes=1))
    .not_valid_after(now + timedelta(days=90))
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .add_extension(
        x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
    )
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False)
    .add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), critical=False
    )
    .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    .add_extension(san, critical=False)
    .sign(ca_key, hashes.SHA384())
)
out.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
