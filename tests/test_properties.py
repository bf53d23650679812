"""Property tests (hypothesis): whatever bytes or text arrive, minica either accepts them or
refuses them with its own error (a MinicaError subclass), never another exception.

CSR files, profile YAML and SAN values in process; one property through the real CLI.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import yaml
from conftest import assert_refused, copy_ca, run_minica, snapshot
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from minica import profiles
from minica.errors import ProfileError, RequestError
from minica.keys import KEY_TYPES, PrivateKey
from minica.names import NAME_KINDS, SUBJECT_FIELDS, Names
from minica.requests import Request, load
from minica.usages import EXTENDED_KEY_USAGES, KEY_USAGES

PROPERTY = settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------------------
# CSRs: random bytes, random bytes in a PEM frame, valid CSRs with bytes changed

CSR_LABEL = "CERTIFICATE REQUEST"


def pem(der: bytes, label: str = CSR_LABEL) -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


@cache
def valid_csr(key_type: str) -> bytes:
    """A DER CSR with every kind of SAN, from an EC, Ed25519 or RSA key."""
    keys: dict[str, Callable[[], PrivateKey]] = {
        "ec": lambda: ec.generate_private_key(ec.SECP256R1()),
        "ed25519": ed25519.Ed25519PrivateKey.generate,
        "rsa": lambda: rsa.generate_private_key(65537, 2048),
    }
    key = keys[key_type]()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "www.example.test"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
        ]
    )
    names = [
        x509.DNSName("www.example.test"),
        x509.RFC822Name("alice@example.test"),
        x509.UniformResourceIdentifier("spiffe://lab/app"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.1")),
    ]
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if key_type == "ed25519" else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


def changed(der: bytes, at: bytes, offset: int, value: int) -> bytes:
    """``der`` with the byte ``offset`` after the first ``at`` set to ``value``."""
    data = bytearray(der)
    data[data.index(at) + offset] = value
    return bytes(data)


KNOWN_CORRUPTIONS: dict[str, Callable[[], bytes]] = {
    # the first INTEGER of a CSR is its version, 0: cryptography raises InvalidVersion
    "version-1": lambda: changed(valid_csr("ec"), b"\x02\x01\x00", 2, 0x01),
    # an EC point that is not on the curve: ValueError from is_signature_valid
    "ec-point-off-the-curve": lambda: changed(valid_csr("ec"), b"\x03\x42\x00\x04", 4, 0x00),
    # an even RSA exponent: ValueError("e must be odd") from is_signature_valid
    "rsa-even-exponent": lambda: changed(valid_csr("rsa"), b"\x02\x03\x01\x00\x01", 4, 0x02),
}


def assert_loads_or_refuses(data: bytes) -> None:
    try:
        request = load(data, "x.csr")
    except RequestError as error:
        assert "\n" not in str(error)
    else:
        assert isinstance(request, Request)


@pytest.mark.parametrize("make", KNOWN_CORRUPTIONS.values(), ids=KNOWN_CORRUPTIONS.keys())
def test_load_refuses_known_corruptions_with_a_request_error(make: Callable[[], bytes]) -> None:
    data = make()
    for form in (data, pem(data)):
        with pytest.raises(RequestError):
            load(form, "x.csr")


@PROPERTY
@given(st.binary(max_size=2000))
def test_load_of_random_bytes_refuses_or_loads(data: bytes) -> None:
    assert_loads_or_refuses(data)


@PROPERTY
@given(
    st.binary(max_size=1500),
    st.sampled_from([CSR_LABEL, "NEW CERTIFICATE REQUEST", "CERTIFICATE", "X"]),
)
def test_load_of_random_bytes_in_a_pem_frame_refuses_or_loads(data: bytes, label: str) -> None:
    assert_loads_or_refuses(pem(data, label))


@st.composite
def flipped_csrs(draw: st.DrawFn) -> bytes:
    data = bytearray(valid_csr(draw(st.sampled_from(["ec", "ed25519", "rsa"]))))
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        del data[draw(st.integers(0, len(data) - 1)) :]
    return pem(bytes(data)) if draw(st.booleans()) else bytes(data)


@settings(PROPERTY, max_examples=1000)
@given(flipped_csrs())
def test_load_of_a_csr_with_bytes_changed_refuses_or_loads(data: bytes) -> None:
    assert_loads_or_refuses(data)


# ---------------------------------------------------------------------------------------
# Profiles: random YAML documents

SCHEMA_KEYS = [
    "description", "validity_days", "key_usage", "extended_key_usage",
    "extended_key_usage_critical", "basic_constraints", "subject", "names", "keys",
    "policies", "ocsp_no_check", "extends",
    "ca", "path_length", "required", "allowed", "copy_cn", "allowed_domains",
]  # fmt: skip
WORDS = [
    *KEY_USAGES, *EXTENDED_KEY_USAGES, *KEY_TYPES, *NAME_KINDS, *SUBJECT_FIELDS, "dns_or_ip",
    "server", "client", "intermediate-ca", "timestamping", "p", "p.yaml", "no-such",
    "1.3.6.1.5.5.7.3.1", "2.23.140.1.2.1", "1.x", "example.test", "*.example.test", "",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(WORDS),
    st.text(max_size=20),
)
yaml_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(SCHEMA_KEYS), st.text(max_size=8)), inner),
    ),
    max_leaves=20,
)
profile_documents = st.dictionaries(st.sampled_from(SCHEMA_KEYS), yaml_values, max_size=8).map(
    lambda document: yaml.safe_dump(document, allow_unicode=True)
)
profile_texts = st.one_of(
    profile_documents,
    yaml_values.map(lambda value: yaml.safe_dump(value, allow_unicode=True)),
    st.text(max_size=300),
    st.text(alphabet="{}[]:,-&*!|>'\"#%@`? \n\tab01", max_size=120),
)


@settings(PROPERTY, max_examples=500)
@given(profile_texts)
@example("description: x\nextends: p\n")  # itself
@example("description: x\nextends: server\nnames: {allowed: [dns, 7, [dns]]}\n")
@example("description: x\nkey_usage: " + "[" * 900 + "]" * 900 + "\n")
def test_a_random_profile_loads_or_is_refused_and_writes_nothing(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            profile = profiles.find(str(path))
        except ProfileError as error:
            assert "\n" not in str(error)  # the CLI's one `error:` line
        else:
            assert isinstance(profile, profiles.Profile) and profile.name == "p"
        assert os.listdir(folder) == ["p.yaml"]


# ---------------------------------------------------------------------------------------
# Names: random text as a DNS name, email address, URI or IP address

any_text = st.text(st.characters(blacklist_categories=()), max_size=80)
host_like = st.text(alphabet="abcxyzAZü-.*09ßÖ\u200d\u00a0@:/[]% \x00\t", max_size=40)
uri_like = st.builds(
    "{}:{}".format,
    st.sampled_from(["http", "https", "spiffe", "urn", "a+b", ""]),
    st.text(alphabet="/[]:@?#%abc\u00e9 \x00.", max_size=30),
)


def reparsed(kind: str, value: str) -> tuple[object, ...] | None:
    """Names.parse(kind=[value]) as a tuple, or None if refused with a RequestError."""
    try:
        parsed = Names.parse(**{kind: [value]})
    except RequestError as error:
        assert "\n" not in str(error)
        return None
    normalized: tuple[object, ...] = getattr(parsed, kind)
    return normalized


@pytest.mark.parametrize(
    ("kind", "strategy"),
    [
        ("dns", st.one_of(any_text, host_like)),
        ("email", st.one_of(any_text, host_like, st.builds("{}@{}".format, host_like, host_like))),
        ("uri", st.one_of(any_text, uri_like)),
        ("ip", st.one_of(any_text, st.ip_addresses().map(str), host_like)),
    ],
)
def test_a_name_is_refused_or_normalized_idempotently(
    kind: str, strategy: st.SearchStrategy[str]
) -> None:
    @settings(PROPERTY, max_examples=500)
    @given(strategy)
    @example("http://[x")
    @example("//[")
    @example("bücher.example")
    def check(value: str) -> None:
        first = reparsed(kind, value)
        if first is None:
            return
        (normal,) = first
        assert reparsed(kind, str(normal)) == first

    check()


# ---------------------------------------------------------------------------------------
# The CLI: random bytes as a CSR


@pytest.fixture(scope="module")
def signing_ca(tmp_path_factory: pytest.TempPathFactory, template_ca: Path) -> Path:
    return copy_ca(template_ca, tmp_path_factory.mktemp("properties") / "ca")


def test_sign_refuses_random_bytes_and_keeps_the_ca(signing_ca: Path, tmp_path: Path) -> None:
    before = snapshot(signing_ca)

    @settings(PROPERTY, max_examples=10)
    @given(st.one_of(st.binary(max_size=3000), st.binary(max_size=1000).map(pem)))
    def check(data: bytes) -> None:
        request = tmp_path / "random.csr"
        request.write_bytes(data)
        result = run_minica(
            "sign", "--ca", signing_ca, "--profile", "server", request,
            "--out", tmp_path / "out.crt",
        )  # fmt: skip
        assert_refused(result, "random.csr")
        assert snapshot(signing_ca) == before
        assert not (tmp_path / "out.crt").exists()

    check()


# ---------------------------------------------------------------------------------------
# The registry's two JSON forms: `list --json` is built by SQLite, `show --json` by Python.
