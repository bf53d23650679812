"""The ACME routes of `minica serve` (HTTPS only): each reads the request, hands it to the
AcmeServer (on the event loop: see ``post``), and carries its Reply or Problem back with
the headers every ACME response has (Replay-Nonce, Link to the directory)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors
from ..acme.model import Urls
from ..acme.problems import Problem, as_problem
from ..acme.server import AcmeServer, Reply
from .bodies import TooLarge, bounded_body

MAX_BODY = 256 * 1024  # a finalize with a CSR of a hundred names is a few kB
JOSE = "application/jose+json"
PROBLEM = "application/problem+json"

Endpoint = Callable[[Request], Awaitable[Response]]


def routes(acme: AcmeServer) -> list[Route]:
    """The ACME routes; every other ACME URL is found through /acme/directory."""

    def post(resource: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            async def answer(urls: Urls) -> Reply:
                if request.headers.get("content-type", "").split(";")[0].strip() != JOSE:
                    raise Problem("malformed", f"an ACME request is {JOSE}", status=415)
                body = await bounded_body(request, MAX_BODY)
                url = urls.base + request.url.path
                params = dict(request.path_params)
                # On the event loop, not in a worker thread: a request is a few registry
                # calls of a millisecond or so (kept connections), and the hop to a thread
                # and back, with the GIL handed over twice, cost more than the work
                # (bench_acme.py: 40 -> 55 certificates/s, 20 -> 14 ms of CPU each). The
                # price: while a write waits for SQLite's lock (another process's
                # transaction, milliseconds), the service waits with it. Validation, which
                # waits on the network, runs in its own threads (orders.py).
                return acme.post(resource, params, body, url, urls)

            return await _respond(acme, request, answer)

        return endpoint

    async def directory(request: Request) -> Response:
        async def answer(urls: Urls) -> Reply:
            return Reply(acme.directory(urls))

        return await _respond(acme, request, answer, nonce=False)

    async def new_nonce(request: Request) -> Response:
        async def answer(urls: Urls) -> Reply:
            return Reply(status=200 if request.method == "HEAD" else 204)

        response = await _respond(acme, request, answer)
        response.headers["cache-control"] = "no-store"
        return response

    async def renewal_info(request: Request) -> Response:
        async def answer(urls: Urls) -> Reply:
            cert_id = request.path_params["id"]
            return await run_in_threadpool(acme.renewal_info, cert_id)

        return await _respond(acme, request, answer, nonce=False)

    signed = [
        ("/acme/new-account", "new-account"),
        ("/acme/account/{id}", "account"),
        ("/acme/account/{id}/orders", "orders"),
        ("/acme/key-change", "key-change"),
        ("/acme/new-order", "new-order"),
        ("/acme/order/{id}", "order"),
        ("/acme/order/{id}/finalize", "finalize"),
        ("/acme/authz/{id}", "authz"),
        ("/acme/challenge/{authz}/{type}", "challenge"),
        ("/acme/certificate/{serial}", "certificate"),
        ("/acme/revoke-cert", "revoke-cert"),
    ]
    return [
        Route("/acme/directory", directory, methods=["GET"]),
        Route("/acme/new-nonce", new_nonce, methods=["GET", "HEAD"]),
        Route("/acme/renewal-info/{id}", renewal_info, methods=["GET"]),
        *(Route(path, post(resource), methods=["POST"]) for path, resource in signed),
    ]


async def _respond(
    acme: AcmeServer,
    request: Request,
    answer: Callable[[Urls], Awaitable[Reply]],
    *,
    nonce: bool = True,
) -> Response:
    """``answer``'s Reply as a response, or its refusal as a problem document; ACME is
    served over HTTPS only (its key authorizations and accounts are not for the wire)."""
    urls = Urls(f"https://{request.url.netloc}")
    try:
        if request.url.scheme != "https":
            raise Problem("malformed", "ACME is served over HTTPS only", status=404)
        reply = await answer(urls)
        response = _response(reply)
    except errors.MinicaError as error:
        problem = as_problem(error)
        response = Response(problem.to_json(), problem.status, media_type=PROBLEM)
        nonce = nonce or problem.type == "badNonce"
        if problem.location:
            response.headers["location"] = problem.location
    except TooLarge:
        problem = Problem("malformed", f"an ACME request is at most {MAX_BODY} bytes", status=413)
        response = Response(problem.to_json(), problem.status, media_type=PROBLEM)
    if nonce and request.url.scheme == "https":
        response.headers["replay-nonce"] = acme.new_nonce()
    response.headers.append("link", f'<{urls.of("directory")}>;rel="index"')
    return response


def _response(reply: Reply) -> Response:
    if isinstance(reply.body, bytes):
        response = Response(reply.body, reply.status, media_type=reply.content_type)
    elif reply.body is None:
        response = Response(b"", reply.status)
    else:
        response = Response(json.dumps(reply.body), reply.status, media_type="application/json")
    if reply.location:
        response.headers["location"] = reply.location
    for url, rel in reply.links:
        response.headers.append("link", f'<{url}>;rel="{rel}"')
    if reply.retry_after is not None:
        response.headers["retry-after"] = str(reply.retry_after)
    return response
