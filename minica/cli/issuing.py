"""Commands that make CAs, keys, requests and certificates."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import MinicaError

if TYPE_CHECKING:
    from ..issuer import Issued
    from ..keys import PrivateKey
from . import files
from .common import (
    CaDir,
    ChainOut,
    Cn,
    Country,
    Days,
    Dns,
    Emails,
    Ips,
    KeyType,
    Locality,
    Org,
    Ou,
    PassphraseFile,
    Profile,
    SerialOrCertificate,
    State,
    Uris,
    announce,
    ca_dir,
    deliver,
    known_key_type,
    open_ca,
    profile_catalog,
    subject_and_names,
)


def init(
    ca: CaDir = None,
    cn: Annotated[
        Optional[str], typer.Option("--cn", help="CA name (default: a unique one).")
    ] = None,
    key_type: Annotated[
        str, typer.Option("--key-type", callback=known_key_type, help="CA key type.")
    ] = "ec-p384",
    days: Annotated[
        Optional[int],
        typer.Option(
            "--days",
            help="CA lifetime (default: 3650 for a root; the parent's "
            "intermediate-ca profile for an intermediate).",
        ),
    ] = None,
    org: Org = None,
    country: Country = None,
    path_len: Annotated[
        Optional[int],
        typer.Option(
            "--path-len",
            help="How many CAs may stand below this one (default: no "
            "limit for a root, 0 for an intermediate).",
        ),
    ] = None,
    permit_dns: Annotated[
        Optional[list[str]],
        typer.Option("--permit-dns", help="Only this domain and names under it; repeatable."),
    ] = None,
    permit_ip: Annotated[
        Optional[list[str]],
        typer.Option("--permit-ip", help="Only addresses in this network (CIDR); repeatable."),
    ] = None,
    permit_email: Annotated[
        Optional[list[str]],
        typer.Option("--permit-email", help="Only mailboxes at this domain; repeatable."),
    ] = None,
    parent: Annotated[
        Optional[Path],
        typer.Option("--parent", help="Make an intermediate CA signed by the CA in this folder."),
    ] = None,
    passphrase_file: Annotated[
        Optional[Path],
        typer.Option(
            "--passphrase-file", help="Encrypt the CA key with the passphrase in this file."
        ),
    ] = None,
    parent_passphrase_file: Annotated[
        Optional[Path],
        typer.Option(
            "--parent-passphrase-file",
            help="The parent's key passphrase (else $MINICA_CA_PASSPHRASE, else a prompt).",
        ),
    ] = None,
    crl_url: Annotated[
        Optional[str], typer.Option(help="CRL URL put into issued certificates.")
    ] = None,
    ocsp_url: Annotated[
        Optional[str], typer.Option(help="OCSP URL put into issued certificates.")
    ] = None,
    issuer_url: Annotated[
        Optional[str], typer.Option(help="URL where ca.crt is published.")
    ] = None,
    url: Annotated[
        Optional[str],
        typer.Option(
            "--url",
            help="Base URL of `minica serve`: the CRL, OCSP and issuer URLs become "
            "BASE/crl, BASE/ocsp and BASE/ca.crt (the options above win).",
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="A CA for this machine's development: only localhost, *.localhost, "
            "127.0.0.0/8 and ::1 (and the --permit-* names), ready for `minica trust install`.",
        ),
    ] = False,
) -> None:
    """Create a CA in the CA folder: a root, or with --parent an intermediate."""
    from ..ca import CertificateAuthority
    from ..constraints import NameConstraints
    from ..issuer import Urls
    from ..names import Subject, parse_uri

    if not cn and (org or country):
        raise MinicaError("--org and --country need --cn as well")
    if local and not cn:
        cn = f"minica local CA {getpass.getuser()}@{socket.gethostname()}"[:64]
    authority = CertificateAuthority.init(
        ca_dir(ca),
        subject=Subject(common_name=cn, organization=org, country=country) if cn else None,
        key_type=key_type,
        days=days,
        path_length=path_len,
        urls=Urls(
            *(
                parse_uri(given) if given else None
                for given in service_urls(url, crl_url, ocsp_url, issuer_url)
            )
        ),
        name_constraints=NameConstraints.parse(
            [*(LOCAL_DNS if local else ()), *(permit_dns or ())],
            [*(LOCAL_IP if local else ()), *(permit_ip or ())],
            permit_email or (),
        ),
        parent=open_ca(parent, parent_passphrase_file) if parent else None,
        passphrase=files.read_secret(passphrase_file) if passphrase_file else None,
    )
    for warning in authority.warnings:
        typer.echo(f"warning: {warning}", err=True)
    subject_text = authority.certificate.subject.rfc4514_string()
    kind = "intermediate CA" if parent else "CA"
    typer.echo(f"created {kind} {subject_text} in {ca_dir(ca)}", err=True)


# `init --local`: what a machine's own development needs (RFC 6761 §6.3: localhost and
# the names under it are this machine), and nothing a site on the internet could be.
LOCAL_DNS = ("localhost",)
LOCAL_IP = ("127.0.0.0/8", "::1/128")


def service_urls(
    base: str | None, crl: str | None, ocsp: str | None, issuer: str | None
) -> tuple[str | None, str | None, str | None]:
    """The CRL, OCSP and issuer URLs: those given, else the paths of `minica serve` at
    ``base``."""
    if base is None:
        return crl, ocsp, issuer
    base = base.rstrip("/")
    return crl or f"{base}/crl", ocsp or f"{base}/ocsp", issuer or f"{base}/ca.crt"


def req(
    cn: Cn,
    out: Annotated[Path, typer.Option("--out", help="Where to write the CSR (PEM).")],
    org: Org = None,
    ou: Ou = None,
    locality: Locality = None,
    state: State = None,
    country: Country = None,
    email: Emails = None,
    dns: Dns = None,
    ip: Ips = None,
    uri: Uris = None,
    key_type: KeyType = None,
    key: Annotated[Optional[Path], typer.Option("--key", help="Use this existing key.")] = None,
    key_out: Annotated[
        Optional[Path],
        typer.Option("--key-out", help="Where to write the new key (default: --out with .key)."),
    ] = None,
) -> None:
    """Make a key (unless --key) and a CSR carrying the names given. Needs no CA."""
    from .. import keys
    from ..requests import build_csr

    subject, names = subject_and_names(cn, org, ou, locality, state, country, email, dns, ip, uri)
    if key is not None and (key_type or key_out):
        raise MinicaError("--key uses an existing key: it does not go with --key-type or --key-out")
    if key is not None:
        files.refuse_same_file({"--out": out, "--key": key})
        private_key = keys.load_private_key(files.read(key), str(key))
        files.write(out, build_csr(private_key, subject, names))
        typer.echo(f"CSR written to {files.shown(out)}, for the key in {key}", err=True)
        return
    key_label = "--key-out" if key_out else "--key-out (default: --out with .key)"
    key_out = files.key_path(out, key_out)
    files.refuse_same_file({"--out": out, key_label: key_out})
    files.refuse_existing(key_out)
    files.check_writable(out, key_out)
    private_key = keys.generate(key_type or keys.DEFAULT_KEY_TYPE)
    csr = build_csr(private_key, subject, names)
    files.write_key(key_out, keys.private_key_pem(private_key))
    files.write(out, csr)
    typer.echo(f"CSR written to {files.shown(out)}, key to {key_out}", err=True)


def sign(
    csr: Annotated[
        Path, typer.Argument(help="The CSR, PEM or DER.", show_default=False, metavar="CSR")
    ],
    profile: Profile,
    ca: CaDir = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the certificate here, not to stdout.")
    ] = None,
    days: Days = None,
    chain_out: ChainOut = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the certificate's description as JSON instead of the PEM."
        ),
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Check a CSR against a profile and the CA, sign it and record it."""
    from .. import requests

    if as_json and files.is_stdout(out):
        raise typer.BadParameter(
            "--json takes standard output: give --out a file", param_hint="--out"
        )
    files.refuse_same_file({"--out": out, "--chain-out": chain_out, "CSR": csr})
    files.check_writable(out, chain_out)
    authority = open_ca(ca, passphrase_file)
    request = requests.load(files.read(csr), str(csr))
    with files.outputs() as outputs:
        issued = authority.sign(
            request,
            profile,
            days=days,
            then=lambda new: deliver(outputs, authority, new, out, chain_out, as_json),
        )
    announce(issued)


def issue(
    profile: Profile,
    cn: Cn,
    out: Annotated[Path, typer.Option("--out", help="Where to write the certificate (PEM).")],
    ca: CaDir = None,
    org: Org = None,
    ou: Ou = None,
    locality: Locality = None,
    state: State = None,
    country: Country = None,
    email: Emails = None,
    dns: Dns = None,
    ip: Ips = None,
    uri: Uris = None,
    key_type: KeyType = None,
    key_out: Annotated[
        Optional[Path],
        typer.Option("--key-out", help="Where to write the key (default: --out with .key)."),
    ] = None,
    chain_out: ChainOut = None,
    days: Days = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Make a key and sign a certificate for it in one step (req + sign)."""
    from ..keys import private_key_pem

    subject, names = subject_and_names(cn, org, ou, locality, state, country, email, dns, ip, uri)
    key_label = "--key-out" if key_out else "--key-out (default: --out with .key)"
    key_out = files.key_path(out, key_out)
    files.refuse_same_file({"--out": out, key_label: key_out, "--chain-out": chain_out})
    files.refuse_existing(key_out)
    files.check_writable(out, key_out, chain_out)
    authority = open_ca(ca, passphrase_file)

    with files.outputs() as outputs:

        def write_both(new: Issued, private_key: PrivateKey) -> None:
            outputs.write_key(key_out, private_key_pem(private_key))
            deliver(outputs, authority, new, out, chain_out, as_json=False)

        issued, _ = authority.issue(
            profile, subject, names, key_type=key_type, days=days, then=write_both
        )
    announce(issued)
    chain = f", chain to {files.shown(chain_out)}" if chain_out else ""
    typer.echo(f"certificate written to {files.shown(out)}, key to {key_out}{chain}", err=True)


def profiles(ctx: typer.Context, ca: CaDir = None) -> None:
    """List the profiles this CA can use (its own copies, then the built-ins)."""
    if ctx.invoked_subcommand is not None:
        return
    for profile in profile_catalog(ca).available():
        typer.echo(f"{profile.name:<18}{profile.description}")


def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or YAML path.", show_default=False)],
    ca: CaDir = None,
) -> None:
    """Show what a profile sets, after `extends` is applied."""
    profile = profile_catalog(ca).find(name)
    typer.echo(f"# {profile.name}: {profile.source}")
    typer.echo(profile.to_yaml(), nl=False)


def renew(
    serial_or_cert: SerialOrCertificate,
    ca: CaDir = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the certificate here, not to stdout.")
    ] = None,
    days: Days = None,
    chain_out: ChainOut = None,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Sign a certificate again: same subject, names, key and profile; a new serial.

    The old certificate stays valid until it expires or is revoked.
    """
    files.refuse_same_file({"--out": out, "--chain-out": chain_out})
    files.check_writable(out, chain_out)
    authority = open_ca(ca, passphrase_file)
    certificate, _ = authority.lookup(serial_or_cert)
    with files.outputs() as outputs:
        issued = authority.renew(
            certificate,
            days=days,
            then=lambda new: deliver(outputs, authority, new, out, chain_out, as_json=False),
        )
    announce(issued)
