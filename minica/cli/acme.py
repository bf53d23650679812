"""`minica acme eab add|list|remove`: the external account keys `minica serve` asks ACME
clients for. They live in the registry, so they work while the service runs."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..formats import iso, printable, terminal_safe_json
from .common import CaDir, open_ca

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def app() -> typer.Typer:
    """The `acme` command group, with its `eab` group."""
    from .app import HELP

    acme = typer.Typer(rich_markup_mode=None, context_settings=HELP, no_args_is_help=True)
    acme.callback()(_acme)
    eab = typer.Typer(rich_markup_mode=None, context_settings=HELP, no_args_is_help=True)
    eab.callback()(_eab)
    eab.command("add")(eab_add)
    eab.command("list")(eab_list)
    eab.command("remove")(eab_remove)
    acme.add_typer(eab, name="eab")
    return acme


def _acme() -> None:
    """What `minica serve`'s ACME server keeps beside the certificates."""


def _eab() -> None:
    """External account keys (RFC 8555 §7.3.4): with `minica serve --eab-required`, an
    ACME account needs one, and each binds one account."""


def eab_add(
    ca: CaDir = None,
    label: Annotated[
        Optional[str], typer.Option("--label", help="What the key is for (shown by list).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Make an external account key; print its key id and HMAC key (shown only now)."""
    from ..acme import eab

    authority = open_ca(ca)
    kid, hmac_key = eab.add(authority.registry.acme, label, authority.clock())
    if as_json:
        sys.stdout.write(json.dumps({"kid": kid, "hmac_key": hmac_key}) + "\n")
    else:
        sys.stdout.write(f"key id:   {kid}\nHMAC key: {hmac_key}\n")
    typer.echo("the HMAC key is not shown again: give it to the ACME client now", err=True)


def eab_list(ca: CaDir = None, as_json: AsJson = False) -> None:
    """The external account keys, with the account each is bound to."""
    from ..acme import eab

    authority = open_ca(ca)
    keys = eab.list(authority.registry.acme, authority.clock())
    if as_json:
        text = json.dumps([key.to_json() for key in keys], indent=2, ensure_ascii=False)
        sys.stdout.buffer.write(f"{terminal_safe_json(text)}\n".encode())
        return
    sys.stdout.write(f"{'KID':<22}  {'CREATED':<20}  {'ACCOUNT':<24}  LABEL\n")
    sys.stdout.writelines(
        f"{key.kid:<22}  {iso(key.created):<20}  {printable(key.account or '-'):<24}  "
        f"{printable(key.label or '')}".rstrip()
        + "\n"
        for key in keys
    )


def eab_remove(
    kid: Annotated[str, typer.Argument(help="The key id, as add printed it.", show_default=False)],
    ca: CaDir = None,
) -> None:
    """Remove an external account key: no new account can bind it (one bound stays)."""
    from ..acme import eab

    authority = open_ca(ca)
    eab.remove(authority.registry.acme, kid)
    typer.echo(f"removed external account key {printable(kid)}", err=True)
