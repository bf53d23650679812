"""The programs that check each purpose judge four of minica's profiles: `osslsigncode` for
code-signing, `openssl cms` for email, `openssl ts` for timestamping and `openssl ocsp` for
ocsp-signing. Each accepts the right certificate and refuses a wrong one, with its own words.

What these programs enforce (osslsigncode 2.9, OpenSSL 3.0), as the tests below pin it:

- `osslsigncode sign` signs with any certificate; `osslsigncode verify` refuses a signer
  whose EKU lacks codeSigning (also one with only anyExtendedKeyUsage), but accepts a
  signer with no EKU extension at all.
- `openssl cms -verify` refuses a signer without emailProtection ("unsuitable certificate
  purpose"); `openssl cms -encrypt` checks nothing about the recipient's certificate.
- `openssl ts -reply` refuses a signer whose EKU is not exactly [timeStamping], critical;
  `openssl ts -verify` refuses a token whose signer is not fit for time stamping.
- `openssl ocsp` refuses a delegated responder without OCSPSigning ("missing ocspsigning
  usage") but still prints the status it read, so only its exit code tells.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import Leaf, Pki, require_tool, write_ca_certificate, write_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from minica import CertificateAuthority

OpenSSL = Callable[..., subprocess.CompletedProcess[str]]
EMAIL = "alice@example.test"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One in-memory CA and every certificate these tests use, written once per module."""
    folder = tmp_path_factory.mktemp("purposes")
    ca = CertificateAuthority.in_memory()
    no_eku, any_eku = folder / "no-eku.yaml", folder / "any-eku.yaml"
    no_eku.write_text("description: no EKU\nextends: code-signing\nextended_key_usage: []\n")
    any_eku.write_text("description: any\nextends: code-signing\nextended_key_usage: [any]\n")
    wanted: dict[str, tuple[str, str, str, dict[str, list[str]]]] = {
        # name: (profile, common name, key type, names)
        "code-signing-ec-p256": ("code-signing", "minica code signer", "ec-p256", {}),
        "code-signing-rsa-2048": ("code-signing", "minica code signer", "rsa-2048", {}),
        "code-signing-no-eku": (str(no_eku), "no EKU signer", "ec-p256", {}),
        "code-signing-any-eku": (str(any_eku), "any EKU signer", "ec-p256", {}),
        "server": ("server", "localhost", "ec-p256", {"dns": ["localhost"]}),
        "server-rsa-2048": ("server", "localhost", "rsa-2048", {"dns": ["localhost"]}),
        "client": ("client", "alice", "ec-p256", {}),
        "email-ec-p256": ("email", "Alice", "ec-p256", {"email": [EMAIL]}),
        "email-rsa-2048": ("email", "Alice", "rsa-2048", {"email": [EMAIL]}),
        "timestamping-ec-p256": ("timestamping", "minica TSA", "ec-p256", {}),
        "timestamping-rsa-2048": ("timestamping", "minica TSA", "rsa-2048", {}),
        "ocsp-signing-ec-p256": ("ocsp-signing", "minica OCSP", "ec-p256", {}),
        "ocsp-signing-rsa-2048": ("ocsp-signing", "minica OCSP", "rsa-2048", {}),
    }
    leaves = {
        name: write_certificate(ca, profile, folder, name, cn, key_type=key_type, **names)
        for name, (profile, cn, key_type, names) in wanted.items()
    }
    return Pki(write_ca_certificate(ca, folder / "ca.crt"), leaves)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def extended_key_usage(path: Path) -> x509.Extension[x509.ExtendedKeyUsage]:
    return load(path).extensions.get_extension_for_class(x509.ExtendedKeyUsage)


# --- 1. code-signing: osslsigncode (Authenticode) -------------------------------------------


def tiny_pe() -> bytes:
    """A minimal PE32 image: DOS header, PE signature, COFF header and an optional header
    with all 16 data directories (entry 4, the certificate table, is where Authenticode
    goes). No sections: osslsigncode hashes the headers, so nothing more is needed."""
    dos = bytearray(64)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 64)  # e_lfanew: the PE header follows at 64
    optional = bytearray(224)  # PE32 optional header: 96 bytes + 16 directories of 8
    struct.pack_into("<HBB", optional, 0, 0x10B, 14, 0)  # PE32 magic, linker version
    struct.pack_into("<I", optional, 28, 0x400000)  # ImageBase
    struct.pack_into("<II", optional, 32, 0x1000, 0x200)  # SectionAlignment, FileAlignment
    struct.pack_into("<H", optional, 48, 6)  # MajorSubsystemVersion
    struct.pack_into("<II", optional, 56, 0x1000, 0x200)  # SizeOfImage, SizeOfHeaders
    struct.pack_into("<H", optional, 68, 3)  # Subsystem: Windows console
    struct.pack_into("<I", optional, 92, 16)  # NumberOfRvaAndSizes
    # Machine i386, no sections, SizeOfOptionalHeader 224, EXECUTABLE_IMAGE | 32BIT_MACHINE.
    coff = struct.pack("<HHIIIHH", 0x14C, 0, 0, 0, 0, len(optional), 0x0102)
    return (bytes(dos) + b"PE\0\0" + coff + bytes(optional)).ljust(0x200, b"\0")


def authenticode_sign(folder: Path, signer: Leaf) -> Path:
    """Sign a fresh tiny PE with ``signer``; osslsigncode signs with any certificate."""
    osslsigncode = require_tool("osslsigncode")
    unsigned, signed = folder / "tiny.exe", folder / "tiny-signed.exe"
    unsigned.write_bytes(tiny_pe())
    done = subprocess.run(
        [osslsigncode, "sign", "-certs", signer.cert, "-key", signer.key, "-h", "sha256",
         "-in", unsigned, "-out", signed],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Succeeded" in done.stdout
    return signed


def authenticode_verify(ca_file: Path, signed: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("osslsigncode"), "verify", "-CAfile", ca_file, "-in", signed],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.tools
@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_osslsigncode_verifies_a_pe_signed_with_a_code_signing_certificate(
    pki: Pki, tmp_path: Path, key_type: str
) -> None:
    signed = authenticode_sign(tmp_path, pki.leaves[f"code-signing-{key_type}"])
    done = authenticode_verify(pki.ca_file, signed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature verification: ok" in done.stdout
    assert "Subject: /CN=minica code signer" in done.stdout
    assert done.stdout.rstrip().endswith("Succeeded")


@pytest.mark.tools
@pytest.mark.parametrize("wrong", ["server", "client", "code-signing-any-eku"])
def test_osslsigncode_verify_refuses_a_signer_without_the_codesigning_eku(
    pki: Pki, tmp_path: Path, wrong: str
) -> None:
    signed = authenticode_sign(tmp_path, pki.leaves[wrong])  # signing itself checks nothing
    done = authenticode_verify(pki.ca_file, signed)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Unsupported Signer's certificate purpose XKU_CODE_SIGN" in done.stdout + done.stderr
    assert "Signature verification: failed" in done.stdout
    assert done.stdout.rstrip().endswith("Failed")


@pytest.mark.tools
def test_osslsigncode_verify_accepts_a_signer_with_no_eku_extension_at_all(
    pki: Pki, tmp_path: Path
) -> None:
    # OpenSSL reads a missing EKU extension as "every purpose"; osslsigncode inherits that.
    # minica's code-signing profile always sets codeSigning, so this is osslsigncode's
    # limit, not a hole in the profile.
    leaf = pki.leaves["code-signing-no-eku"]
    with pytest.raises(x509.ExtensionNotFound):
        extended_key_usage(leaf.cert)
    done = authenticode_verify(pki.ca_file, authenticode_sign(tmp_path, leaf))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Signature verification: ok" in done.stdout


@pytest.mark.tools
def test_openssl_reads_code_signing_as_the_only_extended_key_usage(
    openssl: OpenSSL, pki: Pki
) -> None:
    cert = pki.leaves["code-signing-ec-p256"].cert
    done = openssl("x509", "-in", cert, "-noout", "-ext", "extendedKeyUsage")
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines()] == [
        "X509v3 Extended Key Usage:",
        "Code Signing",
    ]
    # OpenSSL 3.2 added the `codesign` purpose; 3.0 answers "Invalid purpose codesign".
    help_text = openssl("verify", "-help")
    if "codesign" in help_text.stdout + help_text.stderr:
        done = openssl("verify", "-purpose", "codesign", "-CAfile", pki.ca_file, cert)
        assert (done.returncode, done.stdout) == (0, f"{cert}: OK\n"), done.stderr
        server = pki.leaves["server"].cert
        done = openssl("verify", "-purpose", "codesign", "-CAfile", pki.ca_file, server)
        assert "unsuitable certificate purpose" in done.stderr


# --- 2. email: openssl cms (S/MIME) ---------------------------------------------------------


def cms_sign(openssl: OpenSSL, folder: Path, signer: Leaf, *mode: str) -> Path:
    message, signed = folder / "msg.txt", folder / "signed.p7m"
    message.write_text(f"To: bob@example.test\r\nFrom: {EMAIL}\r\n\r\nhello\r\n")
    done = openssl(
        "cms", "-sign", "-in", message, "-signer", signer.cert, "-inkey", signer.key, *mode,
        "-out", signed,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return signed


def cms_verify(openssl: OpenSSL, ca_file: Path, signed: Path) -> subprocess.CompletedProcess[str]:
    return openssl(
        "cms", "-verify", "-in", signed, "-CAfile", ca_file, "-purpose", "smimesign",
        "-out", "/dev/null",
    )  # fmt: skip


@pytest.mark.tools
@pytest.mark.parametrize("mode", ["detached", "nodetach"])
@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_cms_verify_accepts_a_signature_by_an_email_certificate(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, key_type: str, mode: str
) -> None:
    options = ("-nodetach",) if mode == "nodetach" else ()
    signed = cms_sign(openssl, tmp_path, pki.leaves[f"email-{key_type}"], *options)
    done = cms_verify(openssl, pki.ca_file, signed)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "CMS Verification successful"


@pytest.mark.tools
@pytest.mark.parametrize("wrong", ["server", "client", "code-signing-ec-p256"])
def test_cms_verify_refuses_a_signer_without_the_email_protection_eku(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, wrong: str
) -> None:
    done = cms_verify(openssl, pki.ca_file, cms_sign(openssl, tmp_path, pki.leaves[wrong]))
    assert done.returncode == 4, done.stderr  # 4: "error verifying the message"
    assert done.stderr.startswith("CMS Verification failure")
    assert "Verify error: unsuitable certificate purpose" in done.stderr


@pytest.mark.tools
def test_cms_encrypts_to_an_rsa_email_certificate_and_its_key_decrypts(
    openssl: OpenSSL, pki: Pki, tmp_path: Path
) -> None:
    alice = pki.leaves["email-rsa-2048"]
    plain, sealed, opened = tmp_path / "plain.txt", tmp_path / "sealed.p7m", tmp_path / "out"
    plain.write_text("for Alice only\n")
    done = openssl("cms", "-encrypt", "-aes256", "-in", plain, "-out", sealed, alice.cert)
    assert done.returncode == 0, done.stderr
    done = openssl(
        "cms", "-decrypt", "-in", sealed, "-recip", alice.cert, "-inkey", alice.key,
        "-out", opened,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert opened.read_text() == "for Alice only\n"


@pytest.mark.tools
@pytest.mark.parametrize(
    ("name", "accepted"),
    [("email-rsa-2048", True), ("email-ec-p256", False), ("server-rsa-2048", False)],
)
def test_openssl_smimeencrypt_purpose_wants_email_protection_and_key_encipherment(
    openssl: OpenSSL, pki: Pki, name: str, accepted: bool
) -> None:
    # `cms -encrypt` checks nothing about its recipient (see the next test); this purpose
    # check is OpenSSL's judge. It demands keyEncipherment even of EC keys, which minica
    # (rightly: EC keys cannot do key transport) leaves out, so EC email certificates are
    # for signing as far as OpenSSL 3.0 is concerned.
    cert = pki.leaves[name].cert
    done = openssl("verify", "-purpose", "smimeencrypt", "-CAfile", pki.ca_file, cert)
    if accepted:
        assert (done.returncode, done.stdout) == (0, f"{cert}: OK\n"), done.stderr
    else:
        assert done.returncode == 2, done.stdout
        assert "unsuitable certificate purpose" in done.stderr


@pytest.mark.tools
def test_cms_encrypt_does_not_check_the_recipient_certificate_purpose(
    openssl: OpenSSL, pki: Pki, tmp_path: Path
) -> None:
    server = pki.leaves["server-rsa-2048"]  # serverAuth only: no business receiving mail
    plain, sealed, opened = tmp_path / "plain.txt", tmp_path / "sealed.p7m", tmp_path / "out"
    plain.write_text("not for a web server\n")
    assert openssl("cms", "-encrypt", "-in", plain, "-out", sealed, server.cert).returncode == 0
    done = openssl(
        "cms", "-decrypt", "-in", sealed, "-recip", server.cert, "-inkey", server.key,
        "-out", opened,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert opened.read_text() == "not for a web server\n"


# --- 3. timestamping: openssl ts (RFC 3161) -------------------------------------------------


def test_tsa_certificate_has_time_stamping_as_its_only_critical_eku(pki: Pki) -> None:
    for key_type in ("ec-p256", "rsa-2048"):
        extension = extended_key_usage(pki.leaves[f"timestamping-{key_type}"].cert)
        assert extension.critical
        assert list(extension.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def ts_config(folder: Path) -> Path:
    """The smallest TSA section `openssl ts -reply` runs with."""
    (folder / "tsaserial").write_text("01\n")
    config = folder / "ts.cnf"
    config.write_text(
        "[ tsa ]\n"
        "default_tsa = tsa_config\n"
        "[ tsa_config ]\n"
        f"serial = {folder / 'tsaserial'}\n"
        "default_policy = 1.2.3.4.1\n"
        "digests = sha256\n"
        "signer_digest = sha256\n"
        "ess_cert_id_alg = sha256\n"
        "accuracy = secs:1\n"
    )
    return config


def ts_query(openssl: OpenSSL, folder: Path) -> Path:
    data, query = folder / "data.txt", folder / "q.tsq"
    data.write_text("a document to stamp\n")
    done = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert done.returncode == 0, done.stderr
    return query


def ts_reply(
    openssl: OpenSSL, folder: Path, query: Path, signer: Leaf
) -> tuple[subprocess.CompletedProcess[str], Path]:
    reply = folder / "r.tsr"
    done = openssl(
        "ts", "-reply", "-queryfile", query, "-inkey", signer.key, "-signer", signer.cert,
        "-config", ts_config(folder), "-out", reply,
    )  # fmt: skip
    return done, reply


@pytest.mark.tools
@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_openssl_ts_replies_and_verifies_with_the_timestamping_certificate(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, key_type: str
) -> None:
    tsa = pki.leaves[f"timestamping-{key_type}"]
    query = ts_query(openssl, tmp_path)
    done, reply = ts_reply(openssl, tmp_path, query, tsa)
    assert done.returncode == 0, done.stderr
    assert "Response has been generated." in done.stderr
    done = openssl(
        "ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", pki.ca_file,
        "-untrusted", tsa.cert,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Verification: OK"


@pytest.mark.tools
@pytest.mark.parametrize("wrong", ["server", "code-signing-ec-p256", "code-signing-no-eku"])
def test_openssl_ts_reply_refuses_a_signer_that_is_not_a_tsa(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, wrong: str
) -> None:
    done, reply = ts_reply(openssl, tmp_path, ts_query(openssl, tmp_path), pki.leaves[wrong])
    assert done.returncode == 1, done.stderr
    assert "Response is not generated." in done.stderr
    assert "TS_RESP_CTX_set_signer_cert:invalid signer certificate purpose" in done.stderr
    assert not reply.exists()


@pytest.mark.tools
def test_openssl_ts_verify_refuses_a_token_signed_by_a_server_certificate(
    openssl: OpenSSL, pki: Pki, tmp_path: Path
) -> None:
    # `ts -reply` will not sign with a server certificate, so take a genuine token's
    # TSTInfo and sign it again with `cms -sign` as the server: a forged token.
    query = ts_query(openssl, tmp_path)
    _, reply = ts_reply(openssl, tmp_path, query, pki.leaves["timestamping-ec-p256"])
    token, tst_info, forged = (tmp_path / name for name in ("t.der", "tst.der", "forged.der"))
    assert openssl("ts", "-reply", "-in", reply, "-token_out", "-out", token).returncode == 0
    done = openssl("cms", "-verify", "-noverify", "-inform", "DER", "-in", token, "-out", tst_info)
    assert done.returncode == 0, done.stderr
    server = pki.leaves["server"]
    done = openssl(
        "cms", "-sign", "-nodetach", "-binary", "-econtent_type", "id-smime-ct-TSTInfo",
        "-md", "sha256", "-in", tst_info, "-signer", server.cert, "-inkey", server.key,
        "-outform", "DER", "-out", forged,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = openssl(
        "ts", "-verify", "-queryfile", query, "-token_in", "-in", forged,
        "-CAfile", pki.ca_file, "-untrusted", server.cert,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stdout.strip() == "Verification: FAILED"
    assert "ts_verify_cert:certificate verify error" in done.stderr
    assert "Verify error:unsuitable certificate purpose" in done.stderr


# --- 4. ocsp-signing: openssl ocsp (RFC 6960 delegated responder) ---------------------------


def test_ocsp_signing_certificate_carries_ocsp_nocheck_and_ocsp_signing(pki: Pki) -> None:
    for key_type in ("ec-p256", "rsa-2048"):
        cert = load(pki.leaves[f"ocsp-signing-{key_type}"].cert)
        nocheck = cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
        assert nocheck.value == x509.OCSPNoCheck()
        assert not nocheck.critical
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        assert list(eku.value) == [ExtendedKeyUsageOID.OCSP_SIGNING]


def ocsp_response(pki: Pki, folder: Path, responder: Leaf, leaf: Leaf) -> Path:
    """A DER OCSP response saying ``leaf`` is good, signed by ``responder`` (delegated)."""
    responder_cert = load(responder.cert)
    responder_key = serialization.load_pem_private_key(responder.key.read_bytes(), None)
    assert isinstance(responder_key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
    now = datetime.now(timezone.utc)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=load(leaf.cert),
            issuer=load(pki.ca_file),
            algorithm=hashes.SHA256(),  # the CertID hash: openssl needs -sha256 to match
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(days=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder_cert)
        .certificates([responder_cert])
        .sign(responder_key, hashes.SHA256())
    )
    path = folder / "resp.der"
    path.write_bytes(response.public_bytes(Encoding.DER))
    return path


def ocsp_check(
    openssl: OpenSSL, pki: Pki, response: Path, leaf: Leaf
) -> subprocess.CompletedProcess[str]:
    # -sha256 before -cert: the CertID openssl looks up uses SHA-256 like the response's
    # (its default is SHA-1). -no_nonce: a stored response has no nonce to compare.
    return openssl(
        "ocsp", "-respin", response, "-CAfile", pki.ca_file, "-issuer", pki.ca_file,
        "-sha256", "-cert", leaf.cert, "-no_nonce",
    )  # fmt: skip


@pytest.mark.tools
@pytest.mark.parametrize("key_type", ["ec-p256", "rsa-2048"])
def test_openssl_ocsp_accepts_a_response_from_the_delegated_responder(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, key_type: str
) -> None:
    leaf = pki.leaves["server"]
    response = ocsp_response(pki, tmp_path, pki.leaves[f"ocsp-signing-{key_type}"], leaf)
    done = ocsp_check(openssl, pki, response, leaf)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "Response verify OK"
    assert done.stdout.splitlines()[0] == f"{leaf.cert}: good"


@pytest.mark.tools
@pytest.mark.parametrize("wrong", ["server", "code-signing-ec-p256", "code-signing-no-eku"])
def test_openssl_ocsp_refuses_a_response_signed_without_the_ocsp_signing_eku(
    openssl: OpenSSL, pki: Pki, tmp_path: Path, wrong: str
) -> None:
    leaf = pki.leaves["server"]
    done = ocsp_check(openssl, pki, ocsp_response(pki, tmp_path, pki.leaves[wrong], leaf), leaf)
    assert done.returncode == 1, done.stdout
    assert done.stderr.startswith("Response Verify Failure")
    assert "ocsp_check_delegated:missing ocspsigning usage" in done.stderr
    # openssl still prints the unverified status: only the exit code says "do not trust".
    assert done.stdout.splitlines()[0] == f"{leaf.cert}: good"
