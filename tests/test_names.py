"""Subjects and subject alternative names: checking, IDNA, wildcards, x509 in and out."""

from __future__ import annotations

import ipaddress
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from minica.errors import RequestError
from minica.names import (
    Names,
    Subject,
    host_in_common_name,
    names_to_check,
    parse_dns,
    parse_email,
    parse_ip,
    parse_name,
    parse_uri,
    quote,
    uri_host,
)

LABEL_63 = "a" * 63
NAME_253 = ".".join([LABEL_63, "b" * 63, "c" * 63, "d" * 61])  # 63*3 + 61 + 3 dots = 253


# --- Subject --------------------------------------------------------------------------------


def test_subject_keeps_every_field_in_certificate_order() -> None:
    subject = Subject(
        common_name="Alice",
        organization="Lab",
        organizational_unit="Ops",
        locality="Berlin",
        state="Berlin",
        country="DE",
        email="alice@example.com",
    )
    assert list(subject.items()) == [
        ("country", "DE"),
        ("state", "Berlin"),
        ("locality", "Berlin"),
        ("organization", "Lab"),
        ("organizational_unit", "Ops"),
        ("common_name", "Alice"),
        ("email", "alice@example.com"),
    ]


def test_subject_round_trips_through_x509() -> None:
    subject = Subject(common_name="Alice", organization="Lab", country="DE")
    name = subject.to_x509()
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Alice"
    assert name.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "DE"
    assert Subject.from_x509(name) == subject


def test_subject_without_drops_named_fields() -> None:
    subject = Subject(common_name="Alice", email="alice@example.com").without("email")
    assert subject == Subject(common_name="Alice")


@pytest.mark.parametrize("country", ["D", "DEU", "D1", "12", "ÄB", "D-"])
def test_subject_country_must_be_two_ascii_letters(country: str) -> None:
    with pytest.raises(RequestError, match="must be a two-letter code such as DE or US"):
        Subject(country=country)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("common_name", ""),
        ("common_name", " Alice"),
        ("common_name", "Alice "),
        ("common_name", "Alice\n"),
        ("organization", ""),
        ("country", ""),
        ("country", "D "),
    ],
)
def test_subject_refuses_empty_or_padded_values(field: str, value: str) -> None:
    with pytest.raises(RequestError, match="is empty or padded with spaces"):
        Subject(**{field: value})


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        ("common_name", 64),
        ("organization", 64),
        ("organizational_unit", 64),
        ("locality", 128),
        ("state", 128),
    ],
)
def test_subject_field_rfc5280_length_limit(field: str, limit: int) -> None:
    assert getattr(Subject(**{field: "x" * limit}), field) == "x" * limit
    with pytest.raises(RequestError, match=f"longer than {limit} characters"):
        Subject(**{field: "x" * (limit + 1)})


def test_subject_email_length_limit_is_255() -> None:
    domain = ".".join(["b" * 63, "c" * 63, "d" * 62])  # 190 characters
    longest = "a" * 64 + "@" + domain
    assert len(longest) == 255
    assert Subject(email=longest).email == longest
    with pytest.raises(RequestError, match="longer than 255 characters"):
        Subject(email=longest + "e")


def test_subject_email_must_be_an_email_address() -> None:
    with pytest.raises(RequestError, match="not a valid email address"):
        Subject(email="alice.example.com")


@pytest.mark.parametrize(
    ("oid", "fragment"),
    [
        (NameOID.SERIAL_NUMBER, "subject serialNumber (2.5.4.5) is not supported"),
        (NameOID.DOMAIN_COMPONENT, "subject domainComponent (0.9.2342.19200300.100.1.25)"),
        (x509.ObjectIdentifier("1.2.3.4"), "subject attribute (1.2.3.4) is not supported"),
    ],
)
def test_subject_from_x509_refuses_unsupported_attributes(
    oid: x509.ObjectIdentifier, fragment: str
) -> None:
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Alice"), x509.NameAttribute(oid, "x")]
    )
    with pytest.raises(RequestError) as info:
        Subject.from_x509(name)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("oid", "field"),
    [
        (NameOID.COMMON_NAME, "common_name"),
        (NameOID.ORGANIZATIONAL_UNIT_NAME, "organizational_unit"),
    ],
)
def test_subject_from_x509_refuses_repeated_fields(oid: x509.ObjectIdentifier, field: str) -> None:
    name = x509.Name([x509.NameAttribute(oid, "one"), x509.NameAttribute(oid, "two")])
    with pytest.raises(RequestError, match=f"subject has more than one {field}"):
        Subject.from_x509(name)


def test_subject_from_x509_checks_lengths() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "x" * 65)])
    with pytest.raises(RequestError, match="organization is longer than 64 characters"):
        Subject.from_x509(name)


# --- DNS names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("www.example.com", "www.example.com"),
        ("WWW.Example.COM", "www.example.com"),
        ("  www.example.com ", "www.example.com"),
        ("localhost", "localhost"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("*.example.com", "*.example.com"),
        ("*.Bücher.Example", "*.xn--bcher-kva.example"),
        ("a-b.example.com", "a-b.example.com"),
        (f"{LABEL_63}.example", f"{LABEL_63}.example"),
        (NAME_253, NAME_253),
        ("*." + NAME_253[2:], "*." + NAME_253[2:]),  # 253 characters with the '*.'
        # canonical form: no trailing dot (the root), whatever the case or script
        ("example.com.", "example.com"),
        ("WWW.Example.COM.", "www.example.com"),
        ("bücher.example.", "xn--bcher-kva.example"),
        ("*.example.com.", "*.example.com"),
        (NAME_253 + ".", NAME_253),
        ("bücher。example", "xn--bcher-kva.example"),  # the ideographic full stop
    ],
)
def test_parse_dns_accepts(typed: str, parsed: str) -> None:
    assert parse_dns(typed) == parsed


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("*.com", "must stand over a domain"),
        ("*.lab", "must stand over a domain"),
        ("*", "not a valid host name"),
        ("a*.example.com", "not a valid host name"),
        ("*a.example.com", "not a valid host name"),
        ("www.*.example.com", "not a valid host name"),
        ("*.*.example.com", "not a valid host name"),
        ("", "not a valid host name"),
        ("a..example.com", "not a valid host name"),
        (".example.com", "not a valid host name"),
        ("example.com..", "not a valid host name"),
        (".", "not a valid host name"),
        ("..", "not a valid host name"),
        ("*.example.com..", "not a valid host name"),
        ("-a.example.com", "not a valid host name"),
        ("a-.example.com", "not a valid host name"),
        ("a_b.example.com", "not a valid host name"),
        ("a b.example.com", "not a valid host name"),
        ("a\n.example.com", "holds \\n, a control or formatting character"),
        ("a\r.example.com", "holds \\r, a control or formatting character"),
        (f"{LABEL_63}a.example", "not a valid host name"),
        ("ü" * 60 + ".example", "not a valid (IDNA) host name"),
        (NAME_253 + "e", "not a valid host name"),
    ],
)
def test_parse_dns_refuses(typed: str, fragment: str) -> None:
    with pytest.raises(RequestError, match=re.escape(fragment)):
        parse_dns(typed)


def test_parse_dns_refuses_wildcard_whose_full_name_is_over_253() -> None:
    wildcard = "*." + NAME_253[1:]  # 254 characters
    assert len(wildcard) == 254
    with pytest.raises(RequestError):
        parse_dns(wildcard)


@pytest.mark.parametrize("address", ["192.0.2.1", "2001:db8::1", "::1"])
def test_parse_dns_refuses_ip_address_and_says_to_use_an_ip_name(address: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_dns(address)
    message = str(info.value)
    assert repr(address) in message
    assert "is an IP address, not a DNS name: give it as an IP name" in message


def test_parse_dns_keeps_sharp_s_apart_from_ss() -> None:
    """IDNA 2008 (RFC 5891, used by RFC 8399 and browsers) keeps ß: straße ≠ strasse."""
    try:
        parsed = parse_dns("straße.example")
    except RequestError:
        return  # refusing a deviation character is also safe
    assert parsed == "xn--strae-oqa.example"


# --- IP addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("192.0.2.1", ipaddress.IPv4Address("192.0.2.1")),
        (" 192.0.2.1 ", ipaddress.IPv4Address("192.0.2.1")),
        ("2001:DB8::1", ipaddress.IPv6Address("2001:db8::1")),
        ("::1", ipaddress.IPv6Address("::1")),
        ("::ffff:192.0.2.1", ipaddress.IPv6Address("::ffff:c000:201")),
    ],
)
def test_parse_ip_accepts(typed: str, parsed: ipaddress.IPv4Address) -> None:
    assert parse_ip(typed) == parsed


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "garbage",
        "example.com",
        "300.1.1.1",
        "192.0.2",
        "010.0.0.1",
        "10.0.0.0/8",
        "2001:db8::g",
        "2001:db8:::1",
        "fe80::1%eth0",  # a zone id cannot go into a certificate's 16-byte iPAddress
    ],
)
def test_parse_ip_refuses(typed: str) -> None:
    with pytest.raises(RequestError, match="is not an IPv4 or IPv6 address"):
        parse_ip(typed)


# --- email addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "parsed"),
    [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith+tag@Example.COM", "Alice.Smith+tag@example.com"),
        (" alice@example.com ", "alice@example.com"),
        ("alice@bücher.example", "alice@xn--bcher-kva.example"),
        ("alice@localhost", "alice@localhost"),
        ("alice@Example.COM.", "alice@example.com"),
    ],
)
def test_parse_email_accepts(typed: str, parsed: str) -> None:
    assert parse_email(typed) == parsed


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        ("alice.example.com", "is not a valid email address"),
        ("@example.com", "is not a valid email address"),
        ("alice@", "is not a valid email address"),
        ("a@b@example.com", "is not a valid email address"),
        (".alice@example.com", "is not a valid email address"),
        ("alice.@example.com", "is not a valid email address"),
        ("al..ice@example.com", "is not a valid email address"),
        ("al ice@example.com", "is not a valid email address"),
        ("alice\n@example.com", "a control or formatting character"),
        ("alice@example.com..", "is not a valid email address"),
        ("ålice@example.com", "is not a valid email address"),
        ("a" * 65 + "@example.com", "is not a valid email address"),
        ("alice@exa_mple.com", "is not a valid email address"),
        ("alice@192.0.2.1", "is not a valid email address"),
        ("alice@*.example.com", "cannot have a wildcard domain"),
        ("alice@*", "cannot have a wildcard domain"),
    ],
)
def test_parse_email_refuses(typed: str, fragment: str) -> None:
    with pytest.raises(RequestError, match=fragment):
        parse_email(typed)


# --- URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "spiffe://lab/app",
        "https://example.com/path?q=1#top",
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
    ],
)
def test_parse_uri_accepts(typed: str) -> None:
    assert parse_uri(typed) == typed


def test_parse_uri_strips_surrounding_space() -> None:
    assert parse_uri("  spiffe://lab/app ") == "spiffe://lab/app"


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "example.com/app",
        "//example.com/app",
        "http://",
        "not a uri",
        "https://exämple.com/",
        "https://example.com/a b",
    ],
)
def test_parse_uri_refuses(typed: str) -> None:
    with pytest.raises(RequestError, match="is not an absolute ASCII URI"):
        parse_uri(typed)


# --- Names ----------------------------------------------------------------------------------


def test_names_parse_removes_repeats_keeping_order() -> None:
    names = Names.parse(
        dns=["b.example", "A.example", "a.example", "B.EXAMPLE"],
        ip=["2001:db8::1", "192.0.2.1", "2001:DB8:0::1"],
        email=["bob@example.com", "alice@example.com", "bob@EXAMPLE.com"],
        uri=["spiffe://lab/b", "spiffe://lab/a", "spiffe://lab/b"],
    )
    assert names.dns == ("b.example", "a.example")
    assert names.ip == (ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("192.0.2.1"))
    assert names.email == ("bob@example.com", "alice@example.com")
    assert names.uri == ("spiffe://lab/b", "spiffe://lab/a")
    assert list(names.kinds()) == ["dns", "ip", "email", "uri"]
    assert names.values("ip") == ("2001:db8::1", "192.0.2.1")


def test_names_parse_names_the_bad_value() -> None:
    with pytest.raises(RequestError, match="bad_name"):
        Names.parse(dns=["ok.example", "bad_name"])


def test_names_merge_keeps_order_without_repeats() -> None:
    merged = Names.parse(dns=["a.example"]).merge(Names.parse(dns=["b.example", "a.example"]))
    assert merged.dns == ("a.example", "b.example")


def test_names_round_trip_through_x509() -> None:
    names = Names.parse(
        dns=["www.example.com", "*.example.com"],
        ip=["192.0.2.1", "2001:db8::1"],
        email=["alice@example.com"],
        uri=["spiffe://lab/app"],
    )
    general = names.to_x509()
    san = x509.SubjectAlternativeName(general)
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com", "*.example.com"]
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    assert Names.from_x509(san) == names


def test_names_from_x509_checks_each_name_as_if_typed() -> None:
    san = x509.SubjectAlternativeName(
        [x509.DNSName("WWW.Example.com"), x509.DNSName("www.example.com")]
    )
    assert Names.from_x509(san).dns == ("www.example.com",)
    with pytest.raises(RequestError, match="give it as an IP name"):
        Names.from_x509(x509.SubjectAlternativeName([x509.DNSName("192.0.2.1")]))
    with pytest.raises(RequestError, match="not a valid host name"):
        Names.from_x509(x509.SubjectAlternativeName([x509.DNSName("a*.example.com")]))


@pytest.mark.parametrize(
    ("general", "fragment"),
    [
        (
            x509.DirectoryName(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])),
            "DirectoryName names are not supported",
        ),
        (
            x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x01x"),
            "OtherName names are not supported",
        ),
        (
            x509.RegisteredID(x509.ObjectIdentifier("1.2.3.4")),
            "RegisteredID names are not supported",
        ),
        (
            x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
            "IP name 10.0.0.0/8 is a network, not an address",
        ),
        (
            x509.IPAddress(ipaddress.ip_network("2001:db8::/32")),
            "IP name 2001:db8::/32 is a network, not an address",
        ),
    ],
)
def test_names_from_x509_refuses(general: x509.GeneralName, fragment: str) -> None:
    san = x509.SubjectAlternativeName([x509.DNSName("ok.example"), general])
    with pytest.raises(RequestError) as info:
        Names.from_x509(san)
    assert fragment in str(info.value)


# --- parse_name (copying the CN into the SANs) ----------------------------------------------


@pytest.mark.parametrize(
    ("common_name", "parsed"),
    [
        ("www.example.com", ("dns", "www.example.com")),
        ("WWW.Example.com", ("dns", "www.example.com")),
        ("bücher.example", ("dns", "xn--bcher-kva.example")),
        ("*.example.com", ("dns", "*.example.com")),
        ("192.0.2.1", ("ip", ipaddress.IPv4Address("192.0.2.1"))),
        ("2001:db8::1", ("ip", ipaddress.IPv6Address("2001:db8::1"))),
        ("Alice Smith", None),
        ("Lab, Inc.", None),
        ("*.com", None),
        ("", None),
    ],
)
def test_parse_name_for_cn_copying(common_name: str, parsed: tuple[str, object] | None) -> None:
    assert parse_name(common_name) == parsed


# --- canonical form everywhere --------------------------------------------------------------


def test_names_made_directly_are_canonical_too() -> None:
    """However Names is made (parse, from_x509, the constructor), it holds canonical names:
    every comparison downstream (constraints, allowed domains, repeats) relies on it."""
    names = Names(
        dns=("WWW.Bücher.Example.", "www.xn--bcher-kva.example", "www.bücher.example"),
        ip=(ipaddress.ip_address("192.0.2.1"),),
        email=("Alice@Example.COM.", "Alice@example.com"),
        uri=(" spiffe://lab/app ", "spiffe://lab/app"),
    )
    assert names.dns == ("www.xn--bcher-kva.example",)
    assert names.email == ("Alice@example.com",)  # the local part keeps its case
    assert names.uri == ("spiffe://lab/app",)
    assert names.merge(Names(dns=("WWW.xn--BCHER-kva.example",))) == names
    with pytest.raises(RequestError, match="not a valid host name"):
        Names(dns=("a..example",))


def test_subject_email_is_kept_in_canonical_form() -> None:
    subject = Subject(common_name="Alice", email="Alice@Bücher.Example.")
    assert subject.email == "Alice@xn--bcher-kva.example"
    attribute = subject.to_x509().get_attributes_for_oid(NameOID.EMAIL_ADDRESS)[0]
    assert attribute.value == "Alice@xn--bcher-kva.example"


# --- control and formatting characters ------------------------------------------------------

INVISIBLE = [
    "\x00",  # NUL
    "\x07",  # BEL
    "\x1b",  # ESC: terminal escape sequences
    "\x7f",  # DEL
    "\x85",  # NEL (C1)
    "\x9b",  # CSI (C1)
    "\u200b",  # zero width space
    "\u200e",  # left-to-right mark
    "\u202a",  # left-to-right embedding
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2069",  # pop directional isolate
    "\u2028",  # line separator
    "\ufeff",  # zero width no-break space (BOM)
    "\udc9b",  # a lone surrogate: an undecodable byte from the command line
]


def _refusal(make: object) -> str:
    with pytest.raises(RequestError) as info:
        make()  # type: ignore[operator]
    return str(info.value)


def _assert_escaped(message: str, character: str, label: str) -> None:
    assert label in message
    assert repr(character)[1:-1] in message  # shown escaped: \x1b, \u202e
    assert character not in message  # never raw
    assert message.isprintable()


@pytest.mark.parametrize("character", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    "field", ["common_name", "organization", "organizational_unit", "locality", "state"]
)
def test_subject_fields_refuse_control_and_format_characters(field: str, character: str) -> None:
    message = _refusal(lambda: Subject(**{field: f"Lab{character}x"}))
    _assert_escaped(message, character, f"subject {field}")
    assert "control or formatting character" in message


@pytest.mark.parametrize("character", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize(
    ("kind", "template", "label"),
    [
        ("dns", "www{}.example.com", "DNS name"),
        ("email", "ali{}ce@example.com", "email address"),
        ("email", "alice@exam{}ple.com", "email address"),
        ("uri", "https://example.com/{}", "URI"),
        ("ip", "192.0.2.1{}", "IP address"),
    ],
)
def test_names_refuse_control_and_format_characters(
    kind: str, template: str, label: str, character: str
) -> None:
    message = _refusal(lambda: Names.parse(**{kind: [template.format(character)]}))
    _assert_escaped(message, character, label)


def test_subject_email_refuses_control_characters() -> None:
    _assert_escaped(
        _refusal(lambda: Subject(email="alice\x1b@example.com")), "\x1b", "subject email"
    )


def test_csr_subject_and_names_are_checked_for_control_characters() -> None:
    """The CSR path (from_x509) is the same check as typed values."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil\u202egnp.exe")])
    _assert_escaped(_refusal(lambda: Subject.from_x509(name)), "\u202e", "subject common_name")
    san = x509.SubjectAlternativeName([x509.DNSName("www\x1b[2J.example.com")])
    _assert_escaped(_refusal(lambda: Names.from_x509(san)), "\x1b", "DNS name")


def test_printable_unicode_stays_allowed() -> None:
    subject = Subject(common_name="Jürgen Müller", organization="Ελληνικά", locality="東京")
    assert subject.common_name == "Jürgen Müller"


@pytest.mark.parametrize(
    "make",
    [
        lambda: Subject(common_name="x" * 100_000 + "\x1b"),
        lambda: Subject(country="x" * 100_000),
        lambda: Names.parse(dns=["a" * 100_000]),
        lambda: Names.parse(email=["a" * 100_000]),
        lambda: Names.parse(uri=["a" * 100_000]),
        lambda: Names.parse(ip=["1" * 100_000]),
    ],
    ids=["control", "country", "dns", "email", "uri", "ip"],
)
def test_messages_quoting_a_value_bound_its_length(make: object) -> None:
    assert len(_refusal(make)) < 200


def test_quote_escapes_and_bounds() -> None:
    assert quote("a\x1bb") == "'a\\x1bb'"
    assert quote("\u202e") == "'\\u202e'"
    assert len(quote("x" * 10_000)) <= 62
    assert len(quote([["x" * 1000] * 1000] * 1000)) <= 80


# --- what clients read in a common name -----------------------------------------------------


@pytest.mark.parametrize(
    ("common_name", "read"),
    [
        ("www.example.com", ("dns", "www.example.com")),
        ("WWW.Example.COM", ("dns", "www.example.com")),
        ("www.example.com.", ("dns", "www.example.com")),  # OpenSSL matches www.example.com.
        ("www.example.com..", ("dns", "www.example.com")),
        ("bücher.example", ("dns", "xn--bcher-kva.example")),
        ("*.example.com", ("dns", "*.example.com")),  # OpenSSL matches it to www.example.com
        ("w*.example.com", ("dns", "w*.example.com")),  # so does this partial wildcard
        ("*.com", ("dns", "*.com")),
        ("a_b.example.com", ("dns", "a_b.example.com")),  # OpenSSL's cn2dnsid takes '_'
        ("10.1.2.3", ("ip", "10.1.2.3")),
        ("2001:DB8::1", ("ip", "2001:db8::1")),
        ("alice", None),  # one label: a name, not checked by OpenSSL's constraints either
        ("localhost", None),
        ("Alice Smith", None),
        ("Lab, Inc.", None),
        ("Jürgen", None),
        (".www.example.com", None),
        ("www.example.com:443", None),
    ],
)
def test_host_in_common_name(common_name: str, read: tuple[str, str] | None) -> None:
    assert host_in_common_name(common_name) == read


@pytest.mark.parametrize(
    ("uri", "host"),
    [
        ("https://WWW.Example.COM./path", ("dns", "www.example.com")),
        ("https://user@www.example.com:8443/", ("dns", "www.example.com")),
        ("https://lab.test@www.evil.test/", ("dns", "www.evil.test")),  # userinfo is no host
        ("spiffe://lab.test/app", ("dns", "lab.test")),
        ("https://10.1.2.3/", ("ip", "10.1.2.3")),
        ("https://[2001:DB8::1]:443/", ("ip", "2001:db8::1")),
        ("https://%65vil.test/", ("dns", "%65vil.test")),  # kept as it stands: it fails
        ("urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", None),
        ("mailto:alice@example.com", None),
        ("file:///etc/hosts", None),
    ],
)
def test_uri_host(uri: str, host: tuple[str, str] | None) -> None:
    assert uri_host(uri) == host


def test_names_to_check_lists_every_name_once() -> None:
    names = Names.parse(
        dns=["www.lab.test"],
        ip=["10.0.0.1"],
        email=["alice@lab.test"],
        uri=["https://api.lab.test/", "urn:x:y"],
    )
    checked = names_to_check(names, "WWW.lab.test.", "Alice@Lab.Test")
    assert checked == [
        ("dns", "www.lab.test", "DNS name www.lab.test"),
        ("ip", "10.0.0.1", "IP address 10.0.0.1"),
        ("email", "alice@lab.test", "email address alice@lab.test"),
        ("email", "Alice@lab.test", "subject email address Alice@lab.test"),
        ("dns", "api.lab.test", "URI https://api.lab.test/ (host api.lab.test)"),
        ("dns", "", "URI urn:x:y (it has no host)"),
    ]  # the CN reads as www.lab.test, a DNS name already there
