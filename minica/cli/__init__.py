"""The command line: arguments in, one core call, output out; MinicaError becomes `error:`.

Start-up time matters (scripts run minica thousands of times), so nothing heavy is
imported here: `--version` answers without Typer, and a command run builds a Typer app
holding that one command, importing only its module (Typer inspects every command it
holds on each run). The core, and cryptography, load inside each command.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from .. import __version__
from ..errors import MinicaError
from . import streams

# command name -> (module in minica.cli, function, the line `minica --help` lists it with);
# the order is the order of --help.
COMMANDS = {
    "init": ("issuing", "init", "Create a root CA, or an intermediate under --parent."),
    "req": ("issuing", "req", "Make a key and a CSR (needs no CA)."),
    "sign": ("issuing", "sign", "Check a CSR against a profile, sign it and record it."),
    "issue": ("issuing", "issue", "Make a key and a certificate for it in one step."),
    "renew": ("issuing", "renew", "Sign a certificate again with a new serial."),
    "show": ("lifecycle", "show", "Describe a certificate, CSR or CRL."),
    "list": ("lifecycle", "list_certificates", "List what this CA issued, with status."),
    "revoke": ("lifecycle", "revoke", "Mark a certificate revoked."),
    "crl": ("lifecycle", "crl", "Sign a CRL of every revoked certificate."),
    "verify": ("lifecycle", "verify", "Validate a certificate against this CA."),
    "export": ("lifecycle", "export", "Bundle key and chain into a PKCS#12 file."),
    "doctor": ("lifecycle", "doctor", "Check a CA folder for damage and leftovers."),
    "profiles": ("issuing", "profiles", "List the profiles, or show what one sets."),
    "serve": ("serving", "serve", "Run the CA online: OCSP, CRL, CA certificate, a page."),
    "acme": ("acme", "app", "ACME's external account keys: eab add, list, remove."),
    "trust": (
        "trust",
        "app",
        "The root in the trust stores: install, uninstall, status.",
    ),
}


COMPLETION_OPTIONS = {"--install-completion", "--show-completion"}

# What the CLI adds to the core's errors, by their code: how to act on them at the shell.
HINTS = {
    "no-ca": "create one with `minica init`, or point --ca / MINICA_CA at it",
    "no-crl": "publish one with `minica crl`",
    "crl-outdated": "publish a new one with `minica crl`",
    "needs-dns-or-ip": "add --dns or --ip (or a --cn that is a host name)",
    "needs-dns": "add --dns (or a --cn that is a host name)",
    "needs-ip": "add --ip",
    "needs-email": "add --email (or sign a CSR whose subject holds an emailAddress)",
    "needs-uri": "add --uri",
    "lifetime-past-issuer": "ask for fewer --days, or renew the CA first",
    "unknown-serial": "`minica list` shows the serials this CA issued",
    "renew-revoked": "issue a new certificate with `minica issue` or `minica sign`",
    "unknown-eab": "`minica acme eab list` shows the external account keys",
    "no-trust-store": "name one with --store (nss needs libnss3-tools, java a JDK)",
    "unconstrained-root": "make a root for the lab's names only (`minica init --permit-dns "
    "lab.test --permit-ip 10.0.0.0/8`), or pass --allow-unconstrained",
}


def report(error: MinicaError) -> None:
    """Print ``error`` as the CLI does: `error:` and, if there is one, a `hint:` (the
    CLI's own for the error's code, else the core's)."""
    from ..formats import printable  # whatever a message quotes, the terminal sees it safe

    print(f"error: {printable(str(error))}", file=sys.stderr)
    hint = HINTS.get(error.code or "", error.hint)
    if hint:
        print(f"hint: {printable(hint)}", file=sys.stderr)


def main() -> None:
    """The console entry point: run the command; MinicaError becomes `error:` and exit 1,
    and so does a standard output or error that cannot be written (a full device, a closed
    pipe), whichever command was writing."""
    with streams.guarded_streams():
        try:
            try:
                _run(sys.argv[1:])
            finally:
                streams.flush_streams()  # inside the guard: a failure here is reported too
        except streams.StreamError as failure:
            _stream_failed(failure)


def _run(arguments: list[str]) -> None:
    if arguments == ["--version"]:
        print(f"minica {__version__}")
        return
    from .app import build

    command = arguments[0] if arguments and arguments[0] in COMMANDS else None
    # Shell completion needs every command and option, whatever the words typed so far.
    completing = "_MINICA_COMPLETE" in os.environ or bool(COMPLETION_OPTIONS & set(arguments))
    if completing:
        _accept_click_completion_names()
    try:
        build(COMMANDS, only=None if completing else command, completion=completing)(
            prog_name="minica"
        )
    except MinicaError as error:
        report(error)
        sys.exit(1)


def _accept_click_completion_names() -> None:
    """Click documents `_MINICA_COMPLETE=bash_source`; Typer reads `source_bash`: take both."""
    shell, _, instruction = os.environ.get("_MINICA_COMPLETE", "").partition("_")
    if shell in ("bash", "zsh", "fish") and instruction in ("source", "complete"):
        os.environ["_MINICA_COMPLETE"] = f"{instruction}_{shell}"


def _stream_failed(failure: streams.StreamError) -> NoReturn:
    """Exit 1; say why on stderr unless stderr is what failed, or stdout is a pipe whose
    reader has gone (`minica list | head -1`): tools killed by SIGPIPE say nothing there,
    as the reader left on purpose, and exit non-zero so that `set -o pipefail` sees it."""
    streams.discard(failure.stream)
    if failure.name == "standard output" and not isinstance(failure.error, BrokenPipeError):
        try:
            print(f"error: {failure}", file=sys.stderr, flush=True)
        except streams.StreamError as second:
            streams.discard(second.stream)
    sys.exit(1)
