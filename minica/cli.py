"""The command line: arguments in, one core call, output out; MinicaError becomes `error:`.

Only typer is imported at module load: the core (and cryptography) load inside each
command, so `minica --help` and `--version` start fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from . import __version__
from .errors import MinicaError

if TYPE_CHECKING:
    from .ca import CertificateAuthority
    from .names import Names, Subject

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A miniature certificate authority: lab PKIs and TLS test fixtures.",
)
profiles_app = typer.Typer(help="The profiles a CA can use, and what each sets.")
app.add_typer(profiles_app, name="profiles")

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


def main() -> None:
    """The console entry point: run the app, turning MinicaError into `error:` and exit 1."""
    try:
        app()
    except MinicaError as error:
        _fail(error)


def _fail(error: MinicaError) -> None:
    typer.echo(f"error: {error}", err=True)
    if error.hint:
        typer.echo(f"hint: {error.hint}", err=True)
    sys.exit(1)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minica {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


@app.command()
def init(
    ca: CaDir = None,
    cn: Annotated[
        Optional[str], typer.Option("--cn", help="CA name (default: a unique one).")
    ] = None,
    key_type: Annotated[str, typer.Option("--key-type", help="CA key type.")] = "ec-p384",
    days: Annotated[int, typer.Option("--days", help="CA lifetime in days.")] = 3650,
    org: Org = None,
    country: Country = None,
    path_len: Annotated[
        Optional[int],
        typer.Option(
            "--path-len", help="How many CAs may stand below this one (default: no limit)."
        ),
    ] = None,
    passphrase_file: Annotated[
        Optional[Path],
        typer.Option(
            "--passphrase-file", help="Encrypt the CA key with the passphrase in this file."
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
) -> None:
    """Create a root CA in the CA folder."""
    from .ca import CertificateAuthority
    from .issuer import Urls
    from .names import Subject, parse_uri

    if path_len is not None and path_len < 0:
        raise MinicaError(f"--path-len {path_len} must be 0 or more")
    urls = Urls(*(parse_uri(url) if url else None for url in (crl_url, ocsp_url, issuer_url)))
    subject = Subject(common_name=cn, organization=org, country=country) if cn else None
    if subject is None and (org or country):
        raise MinicaError("--org and --country need --cn as well")
    passphrase = _read_secret(passphrase_file) if passphrase_file else None
    authority = CertificateAuthority.init(
        _ca_dir(ca),
        subject=subject,
        key_type=key_type,
        days=days,
        path_length=path_len,
        urls=urls,
        passphrase=passphrase,
    )
    subject_text = authority.certificate.subject.rfc4514_string()
    typer.echo(f"created CA {subject_text} in {_ca_dir(ca)}", err=True)


@app.command()
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
    from . import keys
    from .requests import build_csr

    subject, names = _subject_and_names(cn, org, ou, locality, state, country, email, dns, ip, uri)
    if key is not None and (key_type or key_out):
        raise MinicaError("--key uses an existing key: it does not go with --key-type or --key-out")
    if key is not None:
        private_key = keys.load_private_key(_read(key), str(key))
        _write(out, build_csr(private_key, subject, names))
        return
    key_out = key_out or out.with_suffix(".key")
    _refuse_existing(key_out)
    _check_writable(out, key_out)
    private_key = keys.generate(key_type or keys.DEFAULT_KEY_TYPE)
    csr = build_csr(private_key, subject, names)
    _write_key(key_out, keys.private_key_pem(private_key))
    _write(out, csr)


@app.command()
def sign(
    csr: Annotated[Path, typer.Argument(help="The CSR, PEM or DER.", show_default=False)],
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
    from . import requests

    _check_writable(out, chain_out)
    authority = _open_ca(ca, passphrase_file)
    request = requests.load(_read(csr), str(csr))
    issued = authority.sign(request, authority.profile(profile), days=days)
    _deliver(authority, issued, out, chain_out, as_json)


@app.command()
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
    from .keys import private_key_pem

    subject, names = _subject_and_names(cn, org, ou, locality, state, country, email, dns, ip, uri)
    key_out = key_out or out.with_suffix(".key")
    _refuse_existing(key_out)
    _check_writable(out, key_out, chain_out)
    authority = _open_ca(ca, passphrase_file)
    issued, private_key = authority.issue(
        authority.profile(profile), subject, names, key_type=key_type, days=days
    )
    _write_key(key_out, private_key_pem(private_key))
    _deliver(authority, issued, out, chain_out, as_json=False)


@app.command()
def show(
    file_or_serial: Annotated[
        str,
        typer.Argument(
            help="A certificate, CSR or CRL file (PEM or DER), or a serial this CA issued.",
            show_default=False,
        ),
    ],
    ca: CaDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe a certificate, CSR or CRL."""
    from . import describe
    from .formats import parse_serial

    path = Path(file_or_serial)
    if path.exists():
        item = describe.load(_read(path), file_or_serial)
    else:
        try:
            serial = parse_serial(file_or_serial)
        except ValueError:
            raise MinicaError(f"{file_or_serial}: no such file, and not a serial number") from None
        item = _open_ca(ca).certificate_by_serial(serial)
    info = describe.describe(item)
    typer.echo(json.dumps(info, indent=2) if as_json else describe.to_text(info))


@profiles_app.callback(invoke_without_command=True)
def profiles(ctx: typer.Context, ca: CaDir = None) -> None:
    """List the profiles this CA can use (its own copies, then the built-ins)."""
    if ctx.invoked_subcommand is not None:
        return
    from . import profiles as profile_files

    for profile in profile_files.available(_profiles_dir(ca)):
        typer.echo(f"{profile.name:<18}{profile.description}")


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or YAML path.", show_default=False)],
    ca: CaDir = None,
) -> None:
    """Show what a profile sets, after `extends` is applied."""
    from . import profiles as profile_files

    profile = profile_files.find(name, _profiles_dir(ca))
    typer.echo(f"# {profile.name}: {profile.source}")
    typer.echo(profile.to_yaml(), nl=False)


def _ca_dir(ca: Path | None) -> Path:
    return ca if ca is not None else Path("ca")


def _open_ca(ca: Path | None, passphrase_file: Path | None = None) -> CertificateAuthority:
    from .ca import CertificateAuthority

    def passphrase() -> bytes:
        if passphrase_file is not None:
            return _read_secret(passphrase_file)
        if os.environ.get("MINICA_CA_PASSPHRASE"):
            return os.environ["MINICA_CA_PASSPHRASE"].encode()
        if sys.stdin.isatty():
            import getpass

            return getpass.getpass("CA key passphrase: ").encode()
        raise MinicaError(
            "the CA key is encrypted and no passphrase was given",
            hint="use --passphrase-file FILE or set MINICA_CA_PASSPHRASE",
        )

    return CertificateAuthority.open(_ca_dir(ca), passphrase)


def _profiles_dir(ca: Path | None) -> Path | None:
    """The CA's profiles/ folder; with no CA named and none in ./ca, just the built-ins."""
    from .store import PROFILES, Store

    directory = _ca_dir(ca)
    if ca is None and not Store(directory).holds_ca():
        return None
    return Store.open(directory).path(PROFILES)


def _subject_and_names(
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
    from .names import Names, Subject

    subject = Subject(
        common_name=cn,
        organization=org,
        organizational_unit=ou,
        locality=locality,
        state=state,
        country=country,
    )
    return subject, Names.parse(dns=dns or (), ip=ip or (), email=email or (), uri=uri or ())


def _deliver(
    authority: CertificateAuthority,
    issued: object,
    out: Path | None,
    chain_out: Path | None,
    as_json: bool,
) -> None:
    """Write a new certificate where asked, and say what was signed on stderr."""
    from . import describe
    from .issuer import Issued

    assert isinstance(issued, Issued)
    info = describe.certificate(issued.certificate)
    if chain_out is not None:
        _write(chain_out, authority.full_chain_pem(issued))
    if out is not None:
        _write(out, issued.pem)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
    elif out is None:
        sys.stdout.buffer.write(issued.pem)
    for warning in issued.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(
        f"signed {info['serial']} {info['subject']} profile {issued.profile}, "
        f"expires {info['not_after']}",
        err=True,
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise MinicaError(f"cannot read {path}: {error.strerror}") from None


def _read_secret(path: Path) -> bytes:
    """A passphrase from a file; its one trailing newline is not part of it."""
    secret = _read(path)
    secret = secret[:-2] if secret.endswith(b"\r\n") else secret.removesuffix(b"\n")
    if not secret:
        raise MinicaError(f"{path} holds an empty passphrase")
    return secret


def _write(path: Path, data: bytes) -> None:
    from .store import write_atomic

    try:
        write_atomic(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


def _write_key(path: Path, data: bytes) -> None:
    from .store import write_new

    try:
        write_new(path, data)
    except OSError as error:
        raise MinicaError(f"cannot write {path}: {error.strerror}") from None


def _check_writable(*paths: Path | None) -> None:
    """Refuse before signing, not after, when an output cannot be written where asked."""
    for path in paths:
        if path is None:
            continue
        if path.is_dir():
            raise MinicaError(f"cannot write {path}: it is a folder")
        if not path.parent.is_dir():
            raise MinicaError(f"cannot write {path}: there is no folder {path.parent}")


def _refuse_existing(key_path: Path) -> None:
    if key_path.exists() or key_path.is_symlink():
        raise MinicaError(
            f"{key_path} already exists; minica never overwrites a key file",
            hint="choose another --key-out, or remove the old key first",
        )
