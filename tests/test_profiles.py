"""Profiles: the built-ins, lookup order, extends, validation messages and to_yaml."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from cryptography.x509 import ObjectIdentifier
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minica import CertificateAuthority, Names, Request, Subject, profiles
from minica.errors import InputError, MinicaError, ProfileError
from minica.keys import PublicKey, generate
from minica.profiles import NamePolicy, Profile
from minica.settings import Settings
from minica.usages import KEY_USAGES

SERVER_AUTH = ObjectIdentifier("1.3.6.1.5.5.7.3.1")
CLIENT_AUTH = ObjectIdentifier("1.3.6.1.5.5.7.3.2")
CODE_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.3")
ALL_KEY_TYPES = ("ec-p256", "ec-p384", "ec-p521", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")
SUBJECT_FIELDS = ("common_name", "organization", "organizational_unit", "locality", "state")
DEFAULT_SUBJECT = (*SUBJECT_FIELDS, "country")
BUILTINS = ("client", "code-signing", "server", "server-client")
D = "description: a test profile\n"


def write(folder: Path, text: str | bytes, name: str = "test.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    """The ProfileError message for the profile file at ``path``, which must name the file."""
    with pytest.raises(ProfileError) as info:
        profiles.find(str(path))
    message = str(info.value)
    assert str(path) in message
    return message


# --- the built-in profiles ------------------------------------------------------------------


def test_server_builtin_is_what_its_yaml_says() -> None:
    server = profiles.find("server")
    assert server.name == "server"
    assert server.source == str(profiles.builtin_dir() / "server.yaml")
    assert server.description.startswith("TLS server certificate (serverAuth)")
    assert server.validity_days == 90
    assert server.key_usage == ("digital_signature", "key_encipherment")
    assert server.extended_key_usage == (SERVER_AUTH,)
    assert server.extended_key_usage_critical is False
    assert server.ca is False
    assert server.path_length is None
    assert server.subject_required == ("common_name",)
    assert server.subject_allowed == DEFAULT_SUBJECT
    assert server.names == NamePolicy(
        required=("dns_or_ip",), allowed=("dns", "ip"), copy_cn=True, allowed_domains=()
    )
    assert server.key_types == ALL_KEY_TYPES
    assert server.policies == ()
    assert server.ocsp_no_check is False


def test_client_builtin_is_what_its_yaml_says() -> None:
    client = profiles.find("client")
    assert client.name == "client"
    assert client.description.startswith("TLS client certificate (clientAuth)")
    assert client.validity_days == 397
    assert client.key_usage == ("digital_signature",)
    assert client.extended_key_usage == (CLIENT_AUTH,)
    assert client.extended_key_usage_critical is False
    assert (client.ca, client.path_length) == (False, None)
    assert client.subject_required == ("common_name",)
    assert client.subject_allowed == DEFAULT_SUBJECT
    assert client.names == NamePolicy(
        required=(), allowed=("dns", "ip", "email", "uri"), copy_cn=False
    )
    assert client.key_types == ALL_KEY_TYPES


def test_code_signing_builtin_is_what_its_yaml_says() -> None:
    signing = profiles.find("code-signing")
    assert signing.name == "code-signing"
    assert signing.description.startswith("Code signing certificate (codeSigning)")
    assert signing.validity_days == 397
    assert signing.key_usage == ("digital_signature",)
    assert signing.extended_key_usage == (CODE_SIGNING,)
    assert signing.extended_key_usage_critical is False
    assert (signing.ca, signing.path_length) == (False, None)
    assert signing.names == NamePolicy(required=(), allowed=(), copy_cn=False)
    assert signing.key_types == ALL_KEY_TYPES[:-1]  # no ed25519


def test_server_client_builtin_extends_server_with_both_ekus() -> None:
    both = profiles.find("server-client")
    server = profiles.find("server")
    assert both.name == "server-client"
    assert both.source == str(profiles.builtin_dir() / "server-client.yaml")
    assert both.description.startswith("TLS certificate for peers that are both")
    assert both.extended_key_usage == (SERVER_AUTH, CLIENT_AUTH)
    for inherited in ("validity_days", "key_usage", "names", "key_types", "subject_allowed"):
        assert getattr(both, inherited) == getattr(server, inherited), inherited


def test_available_without_ca_lists_every_builtin() -> None:
    found = {profile.name: profile for profile in profiles.available()}
    assert set(BUILTINS) <= set(found)
    assert all(Path(p.source).parent == profiles.builtin_dir() for p in found.values())


# --- lookup order ---------------------------------------------------------------------------


def test_find_prefers_the_ca_copy_over_the_builtin(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    copy = write(
        ca_profiles, "description: lab clients\nextended_key_usage: [client_auth]\n", "client.yaml"
    )
    client = profiles.find("client", ca_profiles)
    assert client.source == str(copy)
    assert client.description == "lab clients"


def test_find_falls_back_to_the_builtin(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    write(ca_profiles, D, "other.yaml")
    server = profiles.find("server", ca_profiles)
    assert server.source == str(profiles.builtin_dir() / "server.yaml")


def test_find_with_a_missing_ca_folder_uses_the_builtin(tmp_path: Path) -> None:
    server = profiles.find("server", tmp_path / "no-such-folder")
    assert server.source == str(profiles.builtin_dir() / "server.yaml")


def test_find_uses_a_path_with_a_slash_as_given(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    write(ca_profiles, "description: CA copy\n", "server.yaml")
    path = write(tmp_path / "elsewhere", "description: by path\nvalidity_days: 7\n", "server.yaml")
    found = profiles.find(str(path), ca_profiles)
    assert (found.name, found.description, found.validity_days) == ("server", "by path", 7)


def test_find_uses_a_name_ending_in_yaml_as_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_profiles = tmp_path / "ca" / "profiles"
    write(ca_profiles, "description: CA copy\n", "server.yaml")
    write(tmp_path / "work", "description: in the working folder\n", "server.yaml")
    monkeypatch.chdir(tmp_path / "work")
    found = profiles.find("server.yaml", ca_profiles)
    assert found.description == "in the working folder"


def test_find_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ProfileError, match="does not exist") as info:
        profiles.find(str(missing))
    assert str(missing) in str(info.value)


def test_find_unknown_name_names_it_and_lists_the_available(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    write(ca_profiles, D, "lab.yaml")
    with pytest.raises(ProfileError) as info:
        profiles.find("sever", ca_profiles)
    message = str(info.value)
    assert "'sever'" in message
    assert "available:" in message
    for name in (*BUILTINS, "lab"):
        assert name in message


def test_ca_copy_named_server_extending_server_extends_the_builtin(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    copy = write(
        ca_profiles, "description: lab server\nextends: server\nvalidity_days: 90\n", "server.yaml"
    )
    server = profiles.find("server", ca_profiles)
    assert server.source == str(copy)
    assert server.description == "lab server"
    assert server.validity_days == 90
    assert server.extended_key_usage == (SERVER_AUTH,)
    assert server.names.required == ("dns_or_ip",)


def test_builtin_server_client_extends_the_ca_copy_of_server(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    write(
        ca_profiles, "description: lab server\nextends: server\nvalidity_days: 90\n", "server.yaml"
    )
    both = profiles.find("server-client", ca_profiles)
    assert both.validity_days == 90
    assert both.extended_key_usage == (SERVER_AUTH, CLIENT_AUTH)


def test_available_lists_ca_copies_shadowing_builtins(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    server_copy = write(
        ca_profiles, "description: lab server\nextends: server\nvalidity_days: 30\n", "server.yaml"
    )
    lab = write(ca_profiles, "description: lab only\n", "lab.yaml")
    found = profiles.available(ca_profiles)
    names = [profile.name for profile in found]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    assert set(names) >= {*BUILTINS, "lab"}
    by_name = {profile.name: profile for profile in found}
    assert by_name["server"].source == str(server_copy)
    assert by_name["server"].validity_days == 30
    assert by_name["lab"].source == str(lab)
    assert by_name["client"].source == str(profiles.builtin_dir() / "client.yaml")


# --- extends --------------------------------------------------------------------------------


def test_extends_merges_mappings_deeply(tmp_path: Path) -> None:
    path = write(tmp_path, D + "extends: server\nnames:\n  allowed_domains: [lab.example.test]\n")
    lab = profiles.find(str(path))
    assert lab.names == NamePolicy(
        required=("dns_or_ip",),
        allowed=("dns", "ip"),
        copy_cn=True,
        allowed_domains=("lab.example.test",),
    )
    assert lab.extended_key_usage == (SERVER_AUTH,)
    assert lab.description == "a test profile"


def test_extends_replaces_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        D + "extends: server\nkey_usage: [digital_signature]\nkeys: {allowed: [ec-p384]}\n",
    )
    lab = profiles.find(str(path))
    assert lab.key_usage == ("digital_signature",)
    assert lab.key_types == ("ec-p384",)


def test_extends_chains_through_several_profiles(tmp_path: Path) -> None:
    path = write(tmp_path, D + "extends: server-client\nvalidity_days: 30\n")
    lab = profiles.find(str(path))
    assert lab.validity_days == 30
    assert lab.extended_key_usage == (SERVER_AUTH, CLIENT_AUTH)
    assert lab.names.copy_cn is True


def test_extends_loop_is_an_error(tmp_path: Path) -> None:
    ca_profiles = tmp_path / "profiles"
    write(ca_profiles, D + "extends: b\n", "a.yaml")
    write(ca_profiles, D + "extends: a\n", "b.yaml")
    with pytest.raises(ProfileError, match="extends: profiles extend each other in a loop"):
        profiles.find("a", ca_profiles)


def test_extends_itself_by_path_is_a_loop(tmp_path: Path) -> None:
    path = tmp_path / "self.yaml"
    write(tmp_path, D + f"extends: {path}\n", "self.yaml")
    assert "extends: profiles extend each other in a loop" in refusal(path)


def test_extends_unknown_profile_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, D + "extends: sever\n")
    message = refusal(path)
    assert "extends" in message
    assert "'sever'" in message
    assert "server" in message.split("'sever'", 1)[1]  # the available ones are listed


# --- invalid profiles -----------------------------------------------------------------------

INVALID = [
    (D + "extended_key_usages: [server_auth]\n", "unknown key 'extended_key_usages' (known: "),
    (D + "names: {alowed: [dns]}\n", "names: unknown key 'alowed' (known: required, allowed"),
    (D + "keys: {types: [ec-p256]}\n", "keys: unknown key 'types'"),
    (
        D + "basic_constraints: {ca: false, pathlen: 0}\n",
        "basic_constraints: unknown key 'pathlen'",
    ),
    (
        D + "extended_key_usage: [serverauth]\n",
        "extended_key_usage: unknown name 'serverauth' (known: server_auth, client_auth, "
        "code_signing, email_protection, time_stamping, ocsp_signing, any, or a dotted OID)",
    ),
    (D + "extended_key_usage: server_auth\n", "extended_key_usage: must be a list"),
    (D + "key_usage: [digitalSignature]\n", "key_usage: unknown name 'digitalSignature' (known: "),
    (D + "names: {copy_cn: 'yes'}\n", "names: copy_cn: must be true or false, not 'yes'"),
    (D + "names: {copy_cn: 1}\n", "names: copy_cn: must be true or false, not 1"),
    (D + "extended_key_usage_critical: 'no'\n", "extended_key_usage_critical: must be true or"),
    (D + "ocsp_no_check: 0\n", "ocsp_no_check: must be true or false"),
    (D + "validity_days: 0\n", "validity_days: must be a whole number above 0, not 0"),
    (D + "validity_days: -30\n", "validity_days: must be a whole number above 0, not -30"),
    (D + "validity_days: ten\n", "validity_days: must be a whole number above 0, not 'ten'"),
    (D + "validity_days: true\n", "validity_days: must be a whole number above 0, not True"),
    (D + "validity_days: 1.5\n", "validity_days: must be a whole number above 0, not 1.5"),
    ("validity_days: 30\n", "description: missing"),
    ('description: "one\\ntwo"\n', "description: must be one line of text"),
    ("description: |\n  one\n  two\n", "description: must be one line of text"),
    ('description: "  "\n', "description: must be one line of text"),
    ("description: [a, b]\n", "description: must be one line of text"),
    (D + "basic_constraints: {path_length: 0}\n", "basic_constraints: path_length needs ca: true"),
    (
        D + "basic_constraints: {ca: true, path_length: -1}\nkey_usage: [key_cert_sign]\n",
        "basic_constraints: path_length: must be a whole number of 0 or more",
    ),
    (
        D + "basic_constraints: {ca: true, path_length: 1000}\nkey_usage: [key_cert_sign]\n",
        "basic_constraints: path_length: must be a whole number of 0 or more (at most 255)",
    ),
    (D + "basic_constraints: {ca: 'yes'}\n", "basic_constraints: ca: must be true or false"),
    (D + "basic_constraints: [ca]\n", "basic_constraints: must be a mapping"),
    (D + "basic_constraints: 5\n", "basic_constraints: must be a mapping"),
    (D + "basic_constraints: true\n", "basic_constraints: must be a mapping"),
    (D + "names: [dns]\n", "names: must be a mapping"),
    (
        D + "key_usage: [digital_signature, key_cert_sign]\n",
        "key_usage: key_cert_sign and crl_sign need basic_constraints ca: true",
    ),
    (
        D + "key_usage: [crl_sign]\n",
        "key_usage: key_cert_sign and crl_sign need basic_constraints ca: true",
    ),
    (
        D + "basic_constraints: {ca: true}\nkey_usage: [digital_signature, crl_sign]\n",
        "key_usage: a CA profile needs key_cert_sign",
    ),
    (
        D + "extended_key_usage: [time_stamping]\n",
        "extended_key_usage: time_stamping must be the only EKU, and critical",
    ),
    (
        D + "extended_key_usage: ['1.3.6.1.5.5.7.3.8']\n",
        "extended_key_usage: time_stamping must be the only EKU, and critical",
    ),
    (
        D + "extended_key_usage: [time_stamping, server_auth]\nextended_key_usage_critical: true\n",
        "extended_key_usage: time_stamping must be the only EKU, and critical",
    ),
    (
        D + "subject: {required: [email], allowed: [common_name]}\n",
        "subject: required field 'email' is not in allowed",
    ),
    (
        D + "subject: {allowed: [common_name, serial_number]}\n",
        "subject: allowed: unknown name 'serial_number' (known: ",
    ),
    (
        D + "names: {required: [email], allowed: [dns, ip]}\n",
        "names: required 'email' is not in allowed",
    ),
    (
        D + "names: {required: [dns_or_ip], allowed: [email, uri]}\n",
        "names: required 'dns_or_ip' is not in allowed",
    ),
    (D + "names: {required: [dns_or_ip]}\n", "names: required 'dns_or_ip' is not in allowed"),
    (D + "names: {allowed: [dns_or_ip]}\n", "names: allowed: unknown name 'dns_or_ip'"),
    (D + "names: {required: [dns_or_email]}\n", "names: required: unknown name 'dns_or_email'"),
    (
        D + "keys: {allowed: [ec-p256, rsa-1024]}\n",
        "keys: allowed: unknown name 'rsa-1024' (known: ec-p256, ec-p384",
    ),
    (
        D + "policies: [not-an-oid]\n",
        "policies: 'not-an-oid' is not a dotted OID such as 2.23.140.1.2.1",
    ),
    (D + "policies: ['1']\n", "policies: '1' is not a dotted OID"),
    (D + "policies: ['2.23..1']\n", "policies: '2.23..1' is not a dotted OID"),
    (D + "policies: '2.23.140.1.2.1'\n", "policies: must be a list"),
    (
        D + "names: {allowed_domains: [bad_domain.example]}\n",
        "names: allowed_domains: DNS name 'bad_domain.example' is not a valid host name",
    ),
    (
        D + "names: {allowed_domains: ['192.0.2.0']}\n",
        "names: allowed_domains: '192.0.2.0' is an IP address",
    ),
    (D + "names: {allowed_domains: ['*.example.com']}\n", "names: allowed_domains: "),
    (D + "names: {allowed_domains: example.com}\n", "names: allowed_domains: must be a list"),
    (D + "extends: [server]\n", "extends: must be a profile name"),
    ("- description: a list\n- validity_days: 30\n", "must be a YAML mapping of profile settings"),
    ("just some text\n", "must be a YAML mapping of profile settings"),
    ("", "must be a YAML mapping of profile settings"),
    ("# only a comment\n", "must be a YAML mapping of profile settings"),
    ("description: [unclosed\n", "not a valid profile YAML"),
    ("description: x\n  validity_days: 3\n", "not a valid profile YAML"),
    (D + "description: again\n", "not a valid profile YAML: duplicate key 'description'"),
    (D + "names:\n  allowed: [dns]\n  allowed: [ip]\n", "duplicate key 'allowed'"),
]


@pytest.mark.parametrize(("text", "expected"), INVALID)
def test_invalid_profile_is_refused_with_its_message(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    assert expected in refusal(path)


def test_non_utf8_profile_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, b"description: caf\xe9 profile\n")
    assert "not UTF-8 text" in refusal(path)


@pytest.mark.parametrize(
    "template",
    [
        '!!python/object/apply:os.system ["touch {marker}"]\n',
        'description: !!python/object/apply:os.system ["touch {marker}"]\n',
        D + 'extends: !!python/object/apply:os.system ["touch {marker}"]\n',
        "!!python/object/new:type\n  args: [x, !!python/tuple [], {{}}]\n",
    ],
)
def test_unsafe_yaml_tag_is_refused_and_not_run(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "ran"
    path = write(tmp_path, template.format(marker=marker))
    assert "not a valid profile YAML" in refusal(path)
    assert not marker.exists()


def test_every_problem_in_a_file_is_reported_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "validity_days: 0\n"
        "extended_key_usage: [serverauth]\n"
        "extended_key_usages: []\n"
        "key_usage: [key_cert_sign]\n"
        "names: {alowed: [dns], copy_cn: 'yes'}\n"
        "keys: {allowed: [dsa-1024]}\n",
    )
    message = refusal(path)
    for fragment in (
        "validity_days: must be a whole number above 0",
        "extended_key_usage: unknown name 'serverauth'",
        "unknown key 'extended_key_usages'",
        "key_usage: key_cert_sign and crl_sign need basic_constraints ca: true",
        "names: unknown key 'alowed'",
        "names: copy_cn: must be true or false",
        "keys: allowed: unknown name 'dsa-1024'",
        "description: missing",
    ):
        assert fragment in message
    assert message.count(str(path)) == 1


# --- valid edge cases -----------------------------------------------------------------------


def test_dotted_oid_eku_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, D + "extended_key_usage: ['1.3.6.1.4.1.311.10.3.13', server_auth]\n")
    found = profiles.find(str(path))
    assert found.extended_key_usage == (ObjectIdentifier("1.3.6.1.4.1.311.10.3.13"), SERVER_AUTH)


def test_repeated_eku_is_kept_once(tmp_path: Path) -> None:
    path = write(tmp_path, D + "extended_key_usage: [server_auth, '1.3.6.1.5.5.7.3.1']\n")
    assert profiles.find(str(path)).extended_key_usage == (SERVER_AUTH,)


def test_minimal_profile_takes_the_defaults(tmp_path: Path) -> None:
    found = profiles.find(str(write(tmp_path, D)))
    assert found.name == "test"
    assert found.description == "a test profile"
    assert found.validity_days == 365
    assert found.key_usage == ("digital_signature",)
    assert found.extended_key_usage == ()
    assert (found.ca, found.path_length) == (False, None)
    assert found.subject_required == ("common_name",)
    assert found.subject_allowed == DEFAULT_SUBJECT
    assert found.names == NamePolicy()
    assert found.key_types == ALL_KEY_TYPES
    assert found.policies == ()


def test_ca_profile_with_path_length_and_policies_parses(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        D
        + "basic_constraints: {ca: true, path_length: 0}\n"
        + "key_usage: [key_cert_sign, crl_sign, digital_signature]\n"
        + "policies: ['2.23.140.1.2.1']\n"
        + "ocsp_no_check: true\n",
    )
    found = profiles.find(str(path))
    assert (found.ca, found.path_length) == (True, 0)
    assert found.key_usage == ("key_cert_sign", "crl_sign", "digital_signature")
    assert found.policies == (ObjectIdentifier("2.23.140.1.2.1"),)
    assert found.ocsp_no_check is True


def test_critical_time_stamping_alone_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path, D + "extended_key_usage: [time_stamping]\nextended_key_usage_critical: true\n"
    )
    found = profiles.find(str(path))
    assert found.extended_key_usage == (ObjectIdentifier("1.3.6.1.5.5.7.3.8"),)
    assert found.extended_key_usage_critical is True


def test_allowed_domains_are_lower_cased_and_idna_encoded(tmp_path: Path) -> None:
    path = write(tmp_path, D + "names: {allowed_domains: [Lab.Example.TEST, bücher.example]}\n")
    found = profiles.find(str(path))
    assert found.names.allowed_domains == ("lab.example.test", "xn--bcher-kva.example")


# --- to_yaml --------------------------------------------------------------------------------

CUSTOM = (
    D
    + "validity_days: 30\n"
    + "key_usage: [key_cert_sign, crl_sign]\n"
    + "extended_key_usage: [server_auth, '1.3.6.1.4.1.311.10.3.13']\n"
    + "basic_constraints: {ca: true, path_length: 2}\n"
    + "subject: {required: [common_name, organization], allowed: [common_name, organization]}\n"
    + "names: {required: [dns], allowed: [dns, email], allowed_domains: [lab.example.test]}\n"
    + "keys: {allowed: [ed25519]}\n"
    + "policies: ['2.23.140.1.2.1', '1.2.3.4']\n"
    + "ocsp_no_check: true\n"
)


def round_trip(profile: Profile, folder: Path) -> Profile:
    path = write(folder, profile.to_yaml(), "again.yaml")
    return dataclasses.replace(profiles.find(str(path)), name=profile.name, source=profile.source)


@pytest.mark.parametrize("name", BUILTINS)
def test_to_yaml_round_trips_builtin(tmp_path: Path, name: str) -> None:
    profile = profiles.find(name)
    assert round_trip(profile, tmp_path) == profile


def test_to_yaml_round_trips_custom_ca_profile(tmp_path: Path) -> None:
    profile = profiles.find(str(write(tmp_path / "src", CUSTOM)))
    assert round_trip(profile, tmp_path) == profile


def test_to_yaml_round_trips_ca_profile_without_path_length(tmp_path: Path) -> None:
    text = D + "basic_constraints: {ca: true}\nkey_usage: [key_cert_sign]\n"
    profile = profiles.find(str(write(tmp_path / "src", text)))
    assert profile.path_length is None
    assert round_trip(profile, tmp_path) == profile


def test_to_yaml_has_no_extends(tmp_path: Path) -> None:
    text = profiles.find("server-client").to_yaml()
    assert "extends" not in text
    assert "client_auth" in text


# --- profiles that validate always sign --------------------------------------------------------

UNSIGNABLE = [
    (
        D + "key_usage: [digital_signature, encipher_only]\n",
        "key_usage: encipher_only and decipher_only need key_agreement (RFC 5280 4.2.1.3)",
    ),
    (
        D + "key_usage: [decipher_only, digital_signature]\n",
        "key_usage: encipher_only and decipher_only need key_agreement",
    ),
    (
        D + "key_usage: []\n",
        "key_usage: leaves no key usage for ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, "
        "rsa-4096, ed25519 keys",
    ),
    (
        D + "key_usage: [key_encipherment]\nkeys: {allowed: [rsa-2048, ec-p256]}\n",
        "key_usage: leaves no key usage for ec-p256 keys (key_encipherment is for RSA keys only",
    ),
    (
        D + "key_usage: [key_agreement, encipher_only]\nkeys: {allowed: [ed25519]}\n",
        "key_usage: leaves no key usage for ed25519 keys",
    ),
    (D + "keys: {allowed: []}\n", "keys: allowed: name at least one key type"),
    (
        D + "subject: {required: [], allowed: []}\nnames: {allowed: []}\n",
        "subject: allowed and names: allowed are both empty: a certificate would name no one",
    ),
    (D + "validity_days: 36526\n", "validity_days: 36526 days is more than 100 years"),
    (D + "validity_days: 3000000\n", "(at most 36525)"),
    (D + "policies: ['3.1']\n", "policies: '3.1' is not a valid OID"),
    (D + "policies: ['1.40']\n", "policies: '1.40' is not a valid OID"),
    ('description: "lab \\e[31mred"\n', "description: holds \\x1b, a control or formatting"),
    ('description: "evil \\u202egnp.exe"\n', "description: holds \\u202e"),
]


@pytest.mark.parametrize(("text", "expected"), UNSIGNABLE)
def test_a_profile_that_could_not_sign_is_refused_when_loaded(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    message = refusal(path)
    assert expected in message
    assert message.isprintable()


def test_repeated_policies_are_kept_once(tmp_path: Path) -> None:
    path = write(tmp_path, D + "policies: ['2.23.140.1.2.1', '2.23.140.1.2.1']\n")
    assert profiles.find(str(path)).policies == (ObjectIdentifier("2.23.140.1.2.1"),)


EKUS = ("server_auth", "client_auth", "code_signing", "email_protection", "ocsp_signing",
        "any", "1.3.6.1.4.1.311.10.3.13", "time_stamping")  # fmt: skip
NAME_KINDS = ("dns", "ip", "email", "uri")
# what a request gives for each subject field and kind of name a profile may ask for
FIELD_VALUES = {
    "common_name": "device.lab.test",
    "organization": "Lab",
    "organizational_unit": "Ops",
    "locality": "Berlin",
    "state": "Berlin",
    "country": "DE",
    "email": "ops@lab.test",
}
NAME_VALUES = {
    "dns": "www.lab.test",
    "ip": "10.0.0.1",
    "email": "alice@lab.test",
    "uri": "https://api.lab.test/",
}


def subsets(items: tuple[str, ...]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(items), unique=True) if items else st.just([])


@st.composite
def profile_documents(draw: st.DrawFn) -> dict[str, object]:
    """Profile mappings across every key of the schema: each key's value valid on its own,
    their combinations anything (key usages for no allowed key, encipher_only alone, ...)."""
    ca = draw(st.booleans())
    usages = draw(subsets(tuple(u for u in KEY_USAGES if u not in ("key_cert_sign", "crl_sign"))))
    if ca:
        usages += ["key_cert_sign", *draw(st.sampled_from([[], ["crl_sign"]]))]
    time_stamping = draw(st.booleans()) and not ca
    subject_allowed = draw(subsets(tuple(FIELD_VALUES)))
    names_allowed = draw(subsets(NAME_KINDS))
    either = ["dns_or_ip"] if {"dns", "ip"} & set(names_allowed) else []
    document: dict[str, object] = {
        "description": "generated",
        "validity_days": draw(st.integers(1, 40_000)),
        "key_usage": usages,
        "extended_key_usage": ["time_stamping"] if time_stamping else draw(subsets(EKUS[:-1])),
        "extended_key_usage_critical": time_stamping or draw(st.booleans()),
        "basic_constraints": {"ca": ca, **({"path_length": draw(st.integers(0, 3))} if ca else {})},
        "subject": {
            "required": draw(st.sampled_from([[], subject_allowed[:1], subject_allowed])),
            "allowed": subject_allowed,
        },
        "names": {
            "required": draw(subsets((*names_allowed, *either))),
            "allowed": names_allowed,
            "copy_cn": draw(st.booleans()),
            "allowed_domains": draw(st.sampled_from([[], ["lab.test"]])),
        },
        "keys": {"allowed": draw(st.lists(st.sampled_from(ALL_KEY_TYPES), unique=True))},
        "policies": draw(st.sampled_from([[], ["2.23.140.1.2.1"], ["1.2.3", "1.2.3"]])),
        "ocsp_no_check": draw(st.booleans()),
    }
    return document


def request_for(profile: Profile, key_type: str) -> Request:
    """A request that gives what ``profile`` requires, and a CN where it may have one."""
    fields = set(profile.subject_required)
    if "common_name" in profile.subject_allowed:
        fields.add("common_name")
    kinds = set()
    for requirement in profile.names.required:
        if requirement == "dns_or_ip":
            requirement = "dns" if "dns" in profile.names.allowed else "ip"
        kinds.add(requirement)
    if not fields and not kinds:  # something to name: validation made sure it may
        if profile.subject_allowed:
            fields.add(profile.subject_allowed[0])
        else:
            kinds.add(profile.names.allowed[0])
    subject = Subject(**{name: FIELD_VALUES[name] for name in fields})
    names = Names.parse(**{kind: [NAME_VALUES[kind]] for kind in kinds})
    return Request(subject, names, request_key(key_type), key_type)


@functools.cache  # made on first use: RSA keys take a while
def request_key(key_type: str) -> PublicKey:
    return generate(key_type).public_key()


@functools.cache
def signer() -> CertificateAuthority:
    return CertificateAuthority.in_memory(clock=lambda: datetime(2030, 1, 2, tzinfo=timezone.utc))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=profile_documents())
def test_a_profile_that_validates_signs_with_every_key_type_it_allows(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, object]
) -> None:
    path = write(tmp_path_factory.mktemp("generated"), yaml.safe_dump(document))
    try:
        profile = profiles.find(str(path))
    except ProfileError:
        return  # refused when loaded: it never reaches signing
    for key_type in profile.key_types:
        issued = signer().sign(request_for(profile, key_type), profile)
        assert issued.certificate.public_key() == request_key(key_type)


# --- bounded YAML --------------------------------------------------------------------------

# The classic "billion laughs": 9^8 strings from a few hundred bytes.
BILLION_LAUGHS = (
    D
    + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    + "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    + "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    + "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    + "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    + "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    + "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    + "policies: *h\nextended_key_usage: *h\nkey_usage: *h\nnames: {allowed_domains: *h}\n"
)


def bounded(call: Callable[[], object]) -> tuple[float, int]:
    """Seconds and peak bytes allocated by ``call``, which must raise a MinicaError."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MinicaError):
            call()
        return time.perf_counter() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_billion_laughs_profile_fails_fast_in_bounded_memory(tmp_path: Path) -> None:
    assert len(BILLION_LAUGHS) < 600
    path = write(tmp_path, BILLION_LAUGHS)
    seconds, peak = bounded(lambda: profiles.find(str(path)))
    assert seconds < 0.5 and peak < 10_000_000, (seconds, peak)
    assert "not a valid profile YAML: anchors and aliases (&name, *name) are not allowed" in (
        refusal(path)
    )


def test_a_billion_laughs_ca_yaml_fails_fast_in_bounded_memory() -> None:
    seconds, peak = bounded(lambda: Settings.from_yaml(BILLION_LAUGHS[len(D) :], "ca.yaml"))
    assert seconds < 0.5 and peak < 10_000_000, (seconds, peak)
    with pytest.raises(InputError, match=r"ca\.yaml: not valid YAML: anchors and aliases"):
        Settings.from_yaml("key_type: &k ec-p256\ncrl_url: *k\n", "ca.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (D + "extends: &base server\n", "anchors and aliases"),  # an anchor alone, too
        (D + "x: &x {validity_days: 9}\n<<: *x\n", "anchors and aliases"),
        (D + "names: " + "[" * 17 + "]" * 17 + "\n", "nested more than 16 levels deep"),
        (D + "names: " + "{a: " * 17 + "1" + "}" * 17 + "\n", "nested more than 16 levels deep"),
        (D + "names:\n" + "".join(f"{' ' * i}- \n" for i in range(17)), "nested more than 16"),
        (D + "names: " + "[" * 5000 + "]" * 5000 + "\n", "nest"),  # libyaml stops at 1000
        (D + "validity_days: " + "9" * 5000 + "\n", "a number or date is out of range"),
        (D + "validity_days: 2030-13-45\n", "a number or date is out of range"),
        (D + "---\n" + D, "expected a single document in the stream but found another"),
    ],
    ids=[
        *("anchor", "merge-alias", "deep-list", "deep-map", "deep-block", "very-deep"),
        *("huge-int", "date", "two-documents"),
    ],
)
def test_yaml_beyond_plain_bounded_data_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = refusal(write(tmp_path, text))
    assert "not a valid profile YAML: " in message and expected in message
    assert len(message) < 300


def test_a_profile_over_64_kib_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, D + "# padding\n" * 7000)
    assert f"{path}: larger than 64 KiB" in refusal(path)


def test_ca_yaml_over_64_kib_is_refused() -> None:
    with pytest.raises(InputError, match="larger than 64 KiB"):
        Settings.from_yaml("# padding\n" * 7000, "ca.yaml")


def test_many_keys_are_checked_for_repeats_in_linear_time(tmp_path: Path) -> None:
    path = write(tmp_path, D + "".join(f"k{i}: 1\n" for i in range(6000)))
    started = time.perf_counter()
    assert "unknown key 'k0'" in refusal(path)
    assert time.perf_counter() - started < 1.0


# --- files that are not regular files ------------------------------------------------------


def refused_without_hanging(call: Callable[[], object]) -> str:
    """The ProfileError ``call`` raises, which it must within 5 seconds (a read of a FIFO
    would block forever)."""
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            call()
        except ProfileError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "reading the profile hung"
    return outcome["error"]


def special_file(folder: Path, kind: str, name: str = "odd.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "dev-null":
        path.symlink_to("/dev/null")
    elif kind == "dangling":
        path.symlink_to(folder / "nowhere.yaml")
    return path


SPECIAL = {
    "fifo": "is a FIFO, not a regular file",
    "folder": "is a folder, not a regular file",
    "dev-zero": "is a character device, not a regular file",
    "dev-null": "is a character device, not a regular file",
    "dangling": "cannot read: No such file or directory",
}


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_a_profile_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, kind: str) -> None:
    path = special_file(tmp_path, kind)
    message = refused_without_hanging(lambda: profiles.find(str(path)))
    assert message == f"{path}: {SPECIAL[kind]}"


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_a_ca_copy_that_is_not_a_regular_file_is_refused_not_replaced_by_the_builtin(
    tmp_path: Path, kind: str
) -> None:
    ca_profiles = tmp_path / "profiles"
    path = special_file(ca_profiles, kind, "server.yaml")
    message = refused_without_hanging(lambda: profiles.find("server", ca_profiles))
    assert message == f"{path}: {SPECIAL[kind]}"


@pytest.mark.parametrize("kind", list(SPECIAL))
def test_available_refuses_a_file_that_is_not_regular_unread(tmp_path: Path, kind: str) -> None:
    ca_profiles = tmp_path / "profiles"
    path = special_file(ca_profiles, kind)
    message = refused_without_hanging(lambda: profiles.available(ca_profiles))
    assert message == f"{path}: {SPECIAL[kind]}"


def test_a_symlink_to_a_regular_profile_is_read(tmp_path: Path) -> None:
    target = write(tmp_path / "shared", D + "validity_days: 7\n", "lab.yaml")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "lab.yaml").symlink_to(target)
    assert profiles.find("lab", tmp_path / "profiles").validity_days == 7
