"""Commands that look after what a CA has issued: show, list, revoke, crl, verify, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import MinicaError
from ..formats import iso, printable, terminal_safe_json
from . import files
from .common import CaDir, PassphraseFile, SerialOrCertificate, ca_dir, one_of, open_ca


# The vocabularies load only for the command that checks them (the CLI starts fast).
def known_status(value: str) -> str | None:
    from ..registry import STATUSES

    return one_of(STATUSES, value)


def known_reason(value: str) -> str | None:
    from ..usages import REVOCATION_REASONS

    return one_of(tuple(REVOCATION_REASONS), value)


def known_purpose(value: str | None) -> str | None:
    from ..verify import PURPOSES

    return one_of(tuple(PURPOSES), value)


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
    """Describe a certificate, CSR or CRL; each certificate of a chain file, in order."""
    from .. import describe
    from ..clock import system_clock
    from ..loading import load_all

    now = system_clock()  # a file needs no CA, and no CA's clock
    path = Path(file_or_serial)
    if path.exists():
        items = load_all(files.read(path), file_or_serial)
        infos = [describe.describe(item) for item in items]
    else:
        authority = open_ca(ca)
        certificate, record = authority.lookup(file_or_serial)
        now = authority.clock()
        infos = [{**describe.describe(certificate), "registry": record.to_json(now)}]
    if as_json:
        # One object for one certificate (as ever), a list for several. json's default
        # ensure_ascii writes every non-ASCII character as \uXXXX: no control, bidi or
        # zero-width character from a certificate reaches the terminal raw.
        typer.echo(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
    else:
        typer.echo(describe.to_text(infos, now))


def list_certificates(
    ca: CaDir = None,
    status: Annotated[
        str,
        typer.Option(
            "--status",
            callback=known_status,
            help="valid, revoked, expired or all.",
        ),
    ] = "all",
    expiring: Annotated[
        Optional[int],
        typer.Option(
            "--expiring", min=0, help="Only valid certificates that expire within DAYS days."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The registry: what this CA issued, with profile, contact, expiry and status."""
    if expiring is not None and status not in ("valid", "all"):
        raise typer.BadParameter(
            f"--expiring lists valid certificates; it does not go with --status {status}",
            param_hint="--expiring",
        )
    authority = open_ca(ca)
    if as_json:
        listing = authority.records_json(status, expiring_within=expiring)
        # UTF-8 (RFC 8259), but no control or bidi character raw (SQLite escapes only C0)
        sys.stdout.buffer.write(f"{terminal_safe_json(listing)}\n".encode())
        return
    now = authority.clock()
    lines = (
        f"{printable(r.serial):<40}  {r.status_at(now):<7}  {iso(r.not_after):<20}  "
        f"{printable(r.profile):<15}  {printable(r.subject)}  "
        f"{printable(r.contact or '')}".rstrip()
        for r in authority.records(status, expiring_within=expiring)
    )
    sys.stdout.write(
        f"{'SERIAL':<40}  {'STATUS':<7}  {'NOT AFTER':<20}  {'PROFILE':<15}  SUBJECT  CONTACT\n"
    )
    sys.stdout.writelines(f"{line}\n" for line in lines)


def revoke(
    serial_or_cert: SerialOrCertificate,
    ca: CaDir = None,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            callback=known_reason,
            help=(
                "unspecified, key-compromise, ca-compromise, affiliation-changed, superseded or "
                "cessation-of-operation."
            ),
        ),
    ] = "unspecified",
) -> None:
    """Mark a certificate revoked; the next `minica crl` lists it."""
    authority = open_ca(ca)
    record = authority.revoke(authority.find(serial_or_cert).serial, reason)
    typer.echo(f"revoked {record.serial} {printable(record.subject)} ({reason})", err=True)


def crl(
    ca: CaDir = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", help="Where to write the CRL (default: CA/crl.pem, or CA/crl.der with --der)."
        ),
    ] = None,
    days: Annotated[
        Optional[int],
        typer.Option(
            "--days",
            help="Days until the next update (default: 7, or fewer where the CA expires sooner).",
        ),
    ] = None,
    der: Annotated[bool, typer.Option("--der", help="Write DER instead of PEM.")] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Sign a CRL of every revoked certificate."""
    from .. import describe, revocation
    from ..store import CRL, CRL_DER

    authority = open_ca(ca, passphrase_file)
    out = out or ca_dir(ca) / (CRL_DER if der else CRL)
    files.check_writable(out)
    with authority.exclusive():  # a CRL with a higher number is never overwritten by a lower
        revocation_list = authority.crl(days=days)
        files.write(out, revocation.encode(revocation_list, der=der))
    typer.echo(f"{describe.crl_summary(revocation_list)} written to {out}", err=True)


def verify(
    cert: Annotated[
        Path,
        typer.Argument(
            help="The certificate, PEM or DER; a PEM file may go on with its intermediates.",
            show_default=False,
            metavar="CERT",
        ),
    ],
    ca: CaDir = None,
    purpose: Annotated[
        Optional[str],
        typer.Option(
            "--purpose",
            callback=known_purpose,
            help="server, client, code-signing, email, timestamping or ocsp-signing.",
        ),
    ] = None,
    hostname: Annotated[
        Optional[str],
        typer.Option("--hostname", help="The DNS name or IP address the certificate must be for."),
    ] = None,
    check_revocation: Annotated[
        bool, typer.Option("--check-revocation", help="Check the latest CRL this CA signed.")
    ] = False,
) -> None:
    """Validate a certificate: chain to this CA (directly or through CAs under it), validity
    period, purpose, name, revocation."""
    from .. import verify as verifier

    authority = open_ca(ca)
    verifier.verify_file(
        authority,
        files.read(cert),
        str(cert),
        now=authority.clock(),
        purpose=purpose,
        hostname=hostname,
        check_revocation=check_revocation,
    )
    typer.echo("OK")


def export(
    serial_or_cert: SerialOrCertificate,
    key: Annotated[Path, typer.Option("--key", help="The certificate's private key.")],
    p12: Annotated[Path, typer.Option("--p12", help="Where to write the PKCS#12 file.")],
    ca: CaDir = None,
    passphrase_file: Annotated[
        Optional[Path],
        typer.Option(
            "--passphrase-file",
            help="File holding the PKCS#12 passphrase (else "
            "$MINICA_P12_PASSPHRASE, else a prompt on a terminal).",
        ),
    ] = None,
    name: Annotated[
        Optional[str],
        typer.Option("--name", help="Friendly name (default: the certificate's subject)."),
    ] = None,
) -> None:
    """Bundle key, certificate and CA chain into a PKCS#12 file (for browsers, Java, Windows)."""
    from ..keys import load_private_key
    from ..pkcs12 import bundle

    files.refuse_existing(p12)
    files.check_writable(p12)
    authority = open_ca(ca)
    certificate, _ = authority.lookup(serial_or_cert)
    private_key = load_private_key(files.read(key), str(key))
    passphrase = files.secret_source(
        passphrase_file,
        "MINICA_P12_PASSPHRASE",
        "PKCS#12 passphrase",
        "a PKCS#12 file needs a passphrase",
        confirm=True,
    )()
    files.write_key(p12, bundle(private_key, certificate, authority.chain, passphrase, name))
    typer.echo(f"wrote {p12}", err=True)


def doctor(
    ca: CaDir = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Repair what can safely be repaired.")
    ] = False,
    passphrase_file: PassphraseFile = None,
) -> None:
    """Check a CA folder: registry against certs/, leftovers of interrupted writes, file
    modes, and that the key belongs to the certificate."""
    from .. import doctor as checkup

    passphrase = files.secret_source(
        passphrase_file, "MINICA_CA_PASSPHRASE", "CA key passphrase", "the CA key is encrypted"
    )
    findings = checkup.examine(ca_dir(ca), repair=repair, passphrase=passphrase)
    for finding in findings:
        state = {True: "repaired", False: "repairable with --repair", None: "needs a person"}
        typer.echo(f"{state[finding.repaired]}: {finding.problem}")
    left = [finding for finding in findings if not finding.repaired]
    if left:
        raise MinicaError(f"{len(left)} problem(s) in {ca_dir(ca)}")
    typer.echo(f"OK: {ca_dir(ca)} is consistent" + (" after repairs" if findings else ""))
