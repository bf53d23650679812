"""What the commands share: option types, opening the CA, and writing new certificates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import files, streams

if TYPE_CHECKING:
    from ..ca import CertificateAuthority
    from ..catalog import Catalog
    from ..issuer import Issued
    from ..names import Names, Subject

CaDir = Annotated[
    Optional[Path],
    typer.Option(
        "--ca",
        envvar="MINICA_CA",
        show_default=False,
        help="The CA folder (default: $MINICA_CA, else ./ca).",
    ),
]
PassphraseFile = Annotated[
    Optional[Path],
    typer.Option(
        "--passphrase-file",
        help="File holding the CA key passphrase (else $MINICA_CA_PASSPHRASE, "
        "else a prompt on a terminal).",
    ),
]


def one_of(known: tuple[str, ...], value: str | None) -> str | None:
    """``value`` if it is one of ``known`` (or None); else a usage error (exit 2)."""
    if value is not None and value not in known:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(known)}")
    return value


def known_key_type(value: str | None) -> str | None:
    from ..keys import KEY_TYPES

    return one_of(KEY_TYPES, value)


KeyType = Annotated[
    Optional[str],
    typer.Option(
        "--key-type",
        callback=known_key_type,
        help=(
            "ec-p256 (default for leaves), ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096, ed25519."
        ),
    ),
]
Days = Annotated[
    Optional[int], typer.Option("--days", help="Lifetime in days (replaces the profile's).")
]
Profile = Annotated[str, typer.Option("--profile", "-p", help="Profile name or YAML path.")]
ChainOut = Annotated[
    Optional[Path],
    typer.Option(
        "--chain-out", help="Also write the certificate followed by the intermediates here."
    ),
]
SerialOrCertificate = Annotated[
    str,
    typer.Argument(help="A serial this CA issued, or the certificate file.", show_default=False),
]
Cn = Annotated[str, typer.Option("--cn", help="Common name.")]
Org = Annotated[Optional[str], typer.Option("--org", help="Organization (O).")]
Ou = Annotated[Optional[str], typer.Option("--ou", help="Organizational unit (OU).")]
Locality = Annotated[Optional[str], typer.Option("--locality", help="Locality (L).")]
State = Annotated[Optional[str], typer.Option("--state", help="State or province (ST).")]
Country = Annotated[Optional[str], typer.Option("--country", help="Two-letter country code (C).")]
Emails = Annotated[Optional[list[str]], typer.Option("--email", help="Email name; repeatable.")]
Dns = Annotated[Optional[list[str]], typer.Option("--dns", help="DNS name; repeatable.")]
Ips = Annotated[Optional[list[str]], typer.Option("--ip", help="IPv4/IPv6 address; repeatable.")]
Uris = Annotated[Optional[list[str]], typer.Option("--uri", help="URI name; repeatable.")]


def ca_dir(ca: Path | None) -> Path:
    return ca if ca is not None else Path("ca")


def open_ca(ca: Path | None, passphrase_file: Path | None = None) -> CertificateAuthority:
    from ..ca import CertificateAuthority

    passphrase = files.secret_source(
        passphrase_file, "MINICA_CA_PASSPHRASE", "CA key passphrase", "the CA key is encrypted"
    )
    return CertificateAuthority.open(ca_dir(ca), passphrase)


def profile_catalog(ca: Path | None) -> Catalog:
    """The profiles the CA sees; with no CA named and none in ./ca, just the built-ins."""
    from ..catalog import Catalog

    directory = ca_dir(ca)
    if ca is None and not (directory / "ca.crt").exists():
        return Catalog(None)
    return open_ca(ca).profiles


def subject_and_names(
    cn: str,
    org: str | None,
    ou: str | None,
    locality: str | None,
    state: str | None,
    country: str | None,
    email: list[str] | None,
    dns: list[str] | None,
    ip: list[str] | None,
    uri: list[str] | None,
) -> tuple[Subject, Names]:
    from ..names import Names, Subject

    subject = Subject(
        common_name=cn,
        organization=org,
        organizational_unit=ou,
        locality=locality,
        state=state,
        country=country,
    )
    return subject, Names.parse(dns=dns or (), ip=ip or (), email=email or (), uri=uri or ())


def deliver(
    outputs: files.Outputs,
    authority: CertificateAuthority,
    issued: Issued,
    out: Path | None,
    chain_out: Path | None,
    as_json: bool,
) -> None:
    """Write a new certificate where asked, into ``outputs`` (run before the registry
    commits it: if this fails, nothing is recorded, and nothing is put in place)."""
    if chain_out is not None:
        outputs.write(chain_out, authority.full_chain_pem(issued))
    if out is not None:
        outputs.write(out, issued.pem)
    if as_json:
        from .. import describe

        text = json.dumps(describe.certificate(issued.certificate), indent=2) + "\n"
        streams.write(sys.stdout, text.encode())
    elif out is None:
        streams.write(sys.stdout, issued.pem)


def announce(issued: Issued) -> None:
    """Say on stderr what was signed (once it is recorded)."""
    for warning in issued.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"signed {issued.summary}", err=True)
