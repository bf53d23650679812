"""The Typer application, built with all commands (for help) or just the one being run."""

from __future__ import annotations

from importlib import import_module
from typing import Annotated

import typer

from .. import __version__

# -h as well as --help, as most command-line tools take it.
HELP = {"help_option_names": ["-h", "--help"]}


def build(
    commands: dict[str, tuple[str, str, str]],
    only: str | None = None,
    *,
    completion: bool = False,
) -> typer.Typer:
    """A Typer app holding ``only`` that command, or for help a listing of ``commands``;
    with ``completion``, every real command and the completion options (slower to build:
    only shell completion needs it).

    The listing holds stand-ins with each command's summary: the real commands' modules
    and parameters are not needed to list them, and inspecting them all would slow
    `minica --help` by a third.
    """
    app = typer.Typer(
        add_completion=completion,
        context_settings=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain help text: rich formatting would import rich and markdown-it (~50 ms)
        rich_markup_mode=None,
        help="A miniature certificate authority: lab PKIs and TLS test fixtures.",
    )
    app.callback()(_root)
    if completion:
        for name in commands:
            _add(app, commands, name)
    elif only is None:
        for name, (_, _, summary) in commands.items():
            app.command(name, short_help=summary)(_listed)
    else:
        _add(app, commands, only)
    return app


def _add(app: typer.Typer, commands: dict[str, tuple[str, str, str]], name: str) -> None:
    module_name, function_name, summary = commands[name]
    module = import_module(f".{module_name}", __package__)
    if name == "profiles":
        app.add_typer(_profiles_app(module), name=name, short_help=summary)
    elif name in ("acme", "trust"):  # groups: their modules build them
        app.add_typer(getattr(module, function_name)(), name=name, short_help=summary)
    else:
        app.command(name, short_help=summary)(getattr(module, function_name))


def _listed() -> None:
    """Stands in for a command in the listing `minica --help` prints; never runs."""


def _profiles_app(module: object) -> typer.Typer:
    profiles = typer.Typer(
        rich_markup_mode=None,
        context_settings=HELP,
        help="The profiles a CA can use, and what each sets.",
    )
    profiles.callback(invoke_without_command=True)(module.profiles)  # type: ignore[attr-defined]
    profiles.command("show")(module.profiles_show)  # type: ignore[attr-defined]
    return profiles


def _version(value: bool) -> None:
    if value:
        typer.echo(f"minica {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """A miniature certificate authority: lab PKIs and TLS test fixtures."""
