"""The routes of `minica serve`: each one reads what ``Service`` keeps and answers it.

Handlers are thin; what every OCSP route needs (reading a bounded body, decoding a GET)
lives in one function each, and the core's errors map to HTTP statuses in one table.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from .. import errors
from ..formats import iso
from . import Endpoints, Service, acme_routes, page
from .bodies import TooLarge, bounded_body
from .ocsp import Answer

MAX_BODY = 64 * 1024  # an OCSP request is a few hundred bytes
OCSP_REQUEST = "application/ocsp-request"

# The core's refusals as HTTP statuses; anything else a route raises is a bug.
STATUSES: dict[type[errors.MinicaError], int] = {
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.PolicyError: 403,
    errors.InputError: 400,
    errors.StorageError: 503,  # the registry is away: try again
}


def build(service: Service, urls: Endpoints) -> Starlette:
    """The application for ``service``, which links to itself at ``urls``."""
    base = urls.base
    acme_directory = urls.acme_directory if service.acme is not None else None

    async def ocsp_post(request: Request) -> Response:
        if request.headers.get("content-type", "").split(";")[0].strip() != OCSP_REQUEST:
            return Response(f"POST {OCSP_REQUEST}\n", 415, media_type="text/plain")
        try:
            body = await bounded_body(request, MAX_BODY)
        except TooLarge:
            return Response(f"an OCSP request is at most {MAX_BODY} bytes\n", 413)
        return await _ocsp(service, body)

    async def ocsp_get(request: Request) -> Response:
        encoded = request.path_params["encoded"]
        try:  # RFC 6960 appendix A.1: the DER request, base64, then URL-encoded
            body = base64.b64decode(unquote(encoded) + "==", validate=False)
        except (binascii.Error, ValueError):
            body = b""
        return await _ocsp(service, body)

    def crl(request: Request) -> Response:
        current = service.crl.current
        return _cached(
            Response(current.der, media_type="application/pkix-crl"),
            current.this_update,
            current.next_update,
            current.etag,
            service.authority.clock(),
        )

    def root(request: Request) -> Response:
        now = service.authority.clock()
        expiring = service.authority.records("valid", expiring_within=30)
        html = page.render(
            service.authority.certificate, base, service.crl.current, expiring, now, acme_directory
        )
        return HTMLResponse(html)

    def health(request: Request) -> Response:
        current = service.crl.current
        status = {
            "status": "ok",
            "ca": service.authority.certificate.subject.rfc4514_string(),
            "crl_number": current.number,
            "crl_next_update": iso(current.next_update),
        }
        return Response(json.dumps(status) + "\n", media_type="application/json")

    def constant(data: bytes, media_type: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            return Response(data, media_type=media_type)

        return endpoint

    routes = [
        Route("/", root),
        Route("/health", health),
        Route("/ca.crt", constant(service.ca_der, "application/pkix-cert")),
        Route("/ca.pem", constant(service.ca_pem, "application/x-pem-file")),
        Route("/ca-chain.pem", constant(service.chain_pem, "application/x-pem-file")),
        Route("/root.crt", constant(service.root_der, "application/pkix-cert")),
        Route("/root.pem", constant(service.root_pem, "application/x-pem-file")),
        Route("/crl", crl),
        Route("/ocsp", ocsp_post, methods=["POST"]),
        Route("/ocsp/{encoded:path}", ocsp_get, methods=["GET"]),
    ]
    if service.acme is not None:
        routes += acme_routes.routes(service.acme)
    handlers = {kind: _refusal for kind in STATUSES}
    return Starlette(routes=routes, exception_handlers=handlers)


async def _ocsp(service: Service, body: bytes) -> Response:
    """Answer at once from what is kept; else sign where blocking is allowed."""
    answer = service.responder.respond_at_once(body)
    if answer is None:
        answer = await run_in_threadpool(service.responder.respond, body)
    return _ocsp_response(answer, service.authority.clock())


def _ocsp_response(answer: Answer, now: datetime) -> Response:
    response = Response(answer.der, media_type="application/ocsp-response")
    if answer.this_update is None or answer.next_update is None:
        response.headers["cache-control"] = "no-store"
        return response
    return _cached(response, answer.this_update, answer.next_update, answer.etag, now)


def _cached(
    response: Response, this_update: datetime, next_update: datetime, etag: str, now: datetime
) -> Response:
    """RFC 5019 §6.2's caching headers: fresh until nextUpdate."""
    left = max(next_update - now, timedelta(0))
    response.headers["cache-control"] = (
        f"max-age={int(left.total_seconds())}, public, no-transform, must-revalidate"
    )
    response.headers["last-modified"] = email.utils.format_datetime(this_update, usegmt=True)
    response.headers["expires"] = email.utils.format_datetime(next_update, usegmt=True)
    response.headers["etag"] = etag
    return response


async def _refusal(request: Request, error: Exception) -> Response:
    assert isinstance(error, errors.MinicaError)
    status = next(code for kind, code in STATUSES.items() if isinstance(error, kind))
    return Response(f"{error}\n", status, media_type="text/plain")
