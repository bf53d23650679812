"""ACME's refusals (RFC 8555 §6.7): one exception, ``Problem``, carrying the RFC's problem
type, and the one table that turns it and the core's errors into an HTTP status and a
problem document. No handler builds a problem document by hand.
"""

from __future__ import annotations

import json

from .. import errors

NAMESPACE = "urn:ietf:params:acme:error:"

# The HTTP status of each problem type: 4xx, always (a lab CA never answers 5xx for what
# a client sent; a storage failure is 503 "try again", the only exception).
STATUS_OF_TYPE = {
    "accountDoesNotExist": 400,
    "alreadyReplaced": 409,
    "alreadyRevoked": 400,
    "badCSR": 400,
    "badNonce": 400,
    "badPublicKey": 400,
    "badRevocationReason": 400,
    "badSignatureAlgorithm": 400,
    "caa": 403,
    "compound": 403,
    "connection": 400,
    "dns": 400,
    "externalAccountRequired": 403,
    "incorrectResponse": 403,
    "invalidContact": 400,
    "invalidProfile": 400,  # the ACME profiles extension (draft-aaron-acme-profiles)
    "malformed": 400,
    "orderNotReady": 403,
    "rateLimited": 429,
    "rejectedIdentifier": 400,
    "serverInternal": 503,
    "tls": 400,
    "unauthorized": 403,
    "unsupportedContact": 400,
    "unsupportedIdentifier": 400,
    "userActionRequired": 403,
}

# The core's refusals, as ACME sees them (a policy refusal at finalize is a bad CSR).
TYPE_OF_ERROR: dict[type[errors.MinicaError], str] = {
    errors.RequestError: "badCSR",
    errors.PolicyError: "rejectedIdentifier",
    errors.NotFoundError: "malformed",
    errors.ConflictError: "malformed",
    errors.InputError: "malformed",
    errors.StorageError: "serverInternal",
}


class Problem(errors.MinicaError):
    """An ACME refusal: ``type`` is the RFC's name without its namespace (``badNonce``),
    the message says what to fix. ``status`` overrides the type's usual HTTP status
    (404 for an unknown URL); ``identifier`` names the identifier a subproblem is about;
    ``hint``, as MinicaError's, what to do about it; ``location``, a resource the
    refusal points to (the Location header of a 409, RFC 8555 §7.3.5)."""

    def __init__(
        self,
        type: str,
        detail: str,
        *,
        status: int | None = None,
        identifier: dict[str, str] | None = None,
        subproblems: tuple[Problem, ...] = (),
        hint: str | None = None,
        location: str | None = None,
    ) -> None:
        assert type in STATUS_OF_TYPE, type
        super().__init__(detail, hint, code=f"acme-{type}")
        self.type = type
        self.status = status or STATUS_OF_TYPE[type]
        self.identifier = identifier
        self.subproblems = subproblems
        self.location = location

    def document(self) -> dict[str, object]:
        """The problem document (RFC 7807) of this refusal."""
        body: dict[str, object] = {"type": NAMESPACE + self.type, "detail": str(self)}
        body["status"] = self.status
        if self.identifier is not None:
            body["identifier"] = self.identifier
        if self.subproblems:
            body["subproblems"] = [problem.document() for problem in self.subproblems]
        return body

    def to_json(self) -> str:
        return json.dumps(self.document())


def as_problem(error: errors.MinicaError) -> Problem:
    """``error`` as ACME refuses it: a Problem as it is, a core error by TYPE_OF_ERROR."""
    if isinstance(error, Problem):
        return error
    kind = next(
        (name for cls, name in TYPE_OF_ERROR.items() if isinstance(error, cls)), "malformed"
    )
    return Problem(kind, str(error))
