"""Request bodies read with a limit: what every route that takes a body needs."""

from __future__ import annotations

from starlette.requests import Request


class TooLarge(Exception):
    """The body is longer than the route takes."""


async def bounded_body(request: Request, limit: int) -> bytes:
    """The body of ``request``; TooLarge past ``limit`` bytes, declared or sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
