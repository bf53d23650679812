"""`minica trust install|uninstall|status`: the CA's root in this machine's trust stores."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import MinicaError
from ..formats import printable
from .common import CaDir, open_ca

if TYPE_CHECKING:
    from ..trust import Outcome, Root

StoreOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--store",
        help="system, nss or java; repeatable (default: every store found on this machine).",
    ),
]


def app() -> typer.Typer:
    from .app import HELP

    trust = typer.Typer(rich_markup_mode=None, context_settings=HELP, no_args_is_help=True)
    trust.callback()(_trust)
    trust.command("install")(install)
    trust.command("uninstall")(uninstall)
    trust.command("status")(status)
    return trust


def _trust() -> None:
    """The CA's root in the trust stores of this machine: the system's, NSS's (Chromium,
    Firefox) and Java's."""


def install(
    ca: CaDir = None,
    store: StoreOption = None,
    allow_unconstrained: Annotated[
        bool,
        typer.Option(
            "--allow-unconstrained",
            help="Install a root without name constraints (it could vouch for any site).",
        ),
    ] = False,
) -> None:
    """Put the CA's root into the trust stores (for an intermediate, its root)."""
    from .. import trust

    root = _root(ca)
    chosen = trust.stores(store or [])
    trust.check_constrained(root, allow_unconstrained)
    scope = root.constraints.describe() or "any name (no name constraints)"
    print(f"root {printable(root.label)}, may certify: {printable(scope)}", file=sys.stderr)
    _report(trust.install(root, chosen, allow_unconstrained))


def uninstall(ca: CaDir = None, store: StoreOption = None) -> None:
    """Take the CA's root out of the trust stores: what install put in, and the copies a
    store's own hooks made of it (Debian copies system anchors into Java's cacerts)."""
    from .. import trust

    _report(trust.uninstall(_root(ca), trust.stores(store or [])))


def status(
    ca: CaDir = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether each store trusts the root, as its own verifier says (OpenSSL's default
    paths, NSS, Java), not by looking for a file."""
    from .. import trust

    outcomes = trust.status(_root(ca), trust.stores(store or []))
    if as_json:
        print(json.dumps([outcome.to_json() for outcome in outcomes], indent=2))
        _fail_if_any(outcomes)
    else:
        _report(outcomes)


def _root(ca: Path | None) -> Root:
    from .. import trust

    return trust.Root(open_ca(ca).chain[-1])


def _report(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        trusted = "trusted" if outcome.trusted else "not trusted"
        checked = outcome.action in ("trusted", "not trusted")
        shown = outcome.action if checked else f"{outcome.action}, {trusted}"
        print(f"{outcome.store}\t{printable(outcome.location)}\t{shown}")
    _fail_if_any(outcomes)


def _fail_if_any(outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.failed]
    if not failed:
        return
    done = sorted({o.store for o in outcomes if not o.failed} - {o.store for o in failed})
    parts = "; ".join(f"{o.store} at {o.location}: {o.detail}" for o in failed)
    after = f" ({', '.join(done)} done)" if done else ""
    hint = next((o.hint for o in failed if o.hint), None)
    raise MinicaError(f"{len(failed)} of {len(outcomes)} failed: {parts}{after}", hint=hint)
