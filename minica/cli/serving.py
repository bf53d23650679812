"""`minica serve`: the CA online, until SIGTERM or SIGINT."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import PolicyError
from . import files
from .common import CaDir, PassphraseFile, open_ca


def serve(
    ca: CaDir = None,
    listen: Annotated[
        str, typer.Option("--listen", help="HTTPS listener, HOST:PORT (port 0: a free one).")
    ] = "127.0.0.1:8443",
    http_listen: Annotated[
        str,
        typer.Option("--http-listen", help="Plain HTTP listener for OCSP, CRL, CA; or none."),
    ] = "127.0.0.1:8080",
    hostname: Annotated[
        Optional[list[str]],
        typer.Option(
            "--hostname",
            help="Name of the service's own certificate; repeatable "
            "(default: localhost and the listen address).",
        ),
    ] = None,
    tls_cert: Annotated[
        Optional[Path], typer.Option("--tls-cert", help="Serve HTTPS with this chain instead.")
    ] = None,
    tls_key: Annotated[
        Optional[Path], typer.Option("--tls-key", help="The key of --tls-cert.")
    ] = None,
    ocsp_delegate: Annotated[
        bool,
        typer.Option(
            "--ocsp-delegate", help="Sign OCSP with a responder certificate, not the CA key."
        ),
    ] = False,
    passphrase_file: PassphraseFile = None,
    http_01_port: Annotated[
        int, typer.Option("--http-01-port", help="ACME: the port http-01 is validated on.")
    ] = 80,
    tls_alpn_01_port: Annotated[
        int,
        typer.Option("--tls-alpn-01-port", help="ACME: the port tls-alpn-01 is validated on."),
    ] = 443,
    dns_resolver: Annotated[
        Optional[str],
        typer.Option(
            "--dns-resolver",
            help="ACME: HOST:PORT of the DNS server the validator asks (default: the system's).",
        ),
    ] = None,
    acme_profile: Annotated[
        Optional[list[str]],
        typer.Option(
            "--acme-profile",
            help="ACME: a profile orders may use; repeatable, the first is the default "
            "(default: server).",
        ),
    ] = None,
    eab_required: Annotated[
        bool,
        typer.Option(
            "--eab-required",
            help="ACME: new accounts need a key from `minica acme eab add`.",
        ),
    ] = False,
) -> None:
    """Run the CA as a service: OCSP responder, CRL and CA certificate, ACME, a page for
    people."""
    from ..serve import Service, require_extra

    require_extra()
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("give --tls-cert and --tls-key together", param_hint="--tls-cert")
    import asyncio

    from ..acme.server import AcmeServer
    from ..acme.validation import Validator
    from ..serve.identity import given, tls_names
    from ..serve.runner import announce, listen_on, parse_listen, server_context, tls_for
    from ..serve.runner import serve as run

    host, port = parse_listen(listen)
    plain = None if http_listen == "none" else parse_listen(http_listen)
    authority = open_ca(ca, passphrase_file)
    _ = authority.private_key  # the passphrase is asked now, before anything listens
    names = None if tls_cert else tls_names(hostname or [], host)
    validator = Validator(
        http_port=http_01_port,
        tls_alpn_port=tls_alpn_01_port,
        resolver=parse_listen(dns_resolver) if dns_resolver else None,
    )
    acme = AcmeServer(
        authority,
        profiles=tuple(acme_profile or ("server",)),
        validator=validator,
        eab_required=eab_required,
    )
    try:
        service = Service(authority, tls_names=names, delegate_ocsp=ocsp_delegate, acme=acme)
    except PolicyError as error:  # the service's own certificate is outside the CA's rules
        raise PolicyError(
            f"the service's own certificate: {error}",
            hint="give --hostname names this CA may certify, or --tls-cert and --tls-key",
        ) from None
    if tls_cert is not None and tls_key is not None:
        credential = given(tls_cert, tls_key, files.read(tls_cert), files.read(tls_key))
        context = server_context(credential)
    else:
        context = tls_for(service)
    sockets: list[tuple[socket.socket, ssl.SSLContext | None]] = [(listen_on(host, port), context)]
    if plain is not None:
        sockets.append((listen_on(*plain), None))
    service.watch()
    try:
        asyncio.run(run(service, sockets, announce, handle_signals=True))
    finally:
        service.stop()
