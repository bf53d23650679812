"""What the commands share: option types, opening the CA, and writing new certificates."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import files

if TYPE_CHECKING:
    from ..ca import CertificateAuthority
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
KeyType = Annotated[
    Optional[str],
    typer.Option(
        "--key-type",
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


def profiles_dir(ca: Path | None) -> Path | None:
    """The CA's profiles/ folder; with no CA named and none in ./ca, just the built-ins."""
    from ..store import PROFILES, Store

    directory = ca_dir(ca)
    if ca is None and not Store(directory).holds_ca():
        return None
    return Store.open(directory).path(PROFILES)


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
    authority: CertificateAuthority,
    issued: Issued,
    out: Path | None,
    chain_out: Path | None,
    as_json: bool,
) -> None:
    """Write a new certificate where asked, and say what was signed on stderr."""
    if chain_out is not None:
        files.write(chain_out, authority.full_chain_pem(issued))
    if out is not None:
        files.write(out, issued.pem)
    if as_json:
        from .. import describe

        typer.echo(json.dumps(describe.certificate(issued.certificate), indent=2))
    elif out is None:
        files.write_stream(sys.stdout, issued.pem)
    for warning in issued.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"signed {issued.summary}", err=True)
