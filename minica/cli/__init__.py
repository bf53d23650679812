"""The command line: arguments in, one core call, output out; MinicaError becomes `error:`.

Start-up time matters (scripts run minica thousands of times), so nothing heavy is
imported here: `--version` answers without Typer, and a command run builds a Typer app
holding that one command, importing only its module (Typer inspects every command it
holds on each run). The core, and cryptography, load inside each command.
"""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import MinicaError

# command name -> (module in minica.cli, function); the order is the order of --help.
COMMANDS = {
    "init": ("issuing", "init"),
    "req": ("issuing", "req"),
    "sign": ("issuing", "sign"),
    "issue": ("issuing", "issue"),
    "renew": ("issuing", "renew"),
    "show": ("lifecycle", "show"),
    "list": ("lifecycle", "list_certificates"),
    "revoke": ("lifecycle", "revoke"),
    "crl": ("lifecycle", "crl"),
    "verify": ("lifecycle", "verify"),
    "export": ("lifecycle", "export"),
    "doctor": ("lifecycle", "doctor"),
    "profiles": ("issuing", "profiles"),
}


def main() -> None:
    """The console entry point: run the command, turning MinicaError into `error:` + exit 1."""
    arguments = sys.argv[1:]
    if arguments == ["--version"]:
        print(f"minica {__version__}")
        return
    from .app import build

    command = arguments[0] if arguments and arguments[0] in COMMANDS else None
    try:
        build(COMMANDS, only=command)()
    except MinicaError as error:
        print(f"error: {error}", file=sys.stderr)
        if error.hint:
            print(f"hint: {error.hint}", file=sys.stderr)
        sys.exit(1)
