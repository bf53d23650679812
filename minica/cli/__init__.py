"""The command line: arguments in, one core call, output out; MinicaError becomes `error:`.

Only typer is imported at module load: the core (and cryptography) load inside each
command, so `minica --help` and `--version` start fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from ..errors import MinicaError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help text: rich formatting would import rich and markdown-it (~50 ms a start)
    rich_markup_mode=None,
    help="A miniature certificate authority: lab PKIs and TLS test fixtures.",
)
profiles_app = typer.Typer(
    rich_markup_mode=None, help="The profiles a CA can use, and what each sets."
)
app.add_typer(profiles_app, name="profiles")


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


from . import issuing, lifecycle  # noqa: E402, F401  (they register their commands on app)
