"""The one exception tree: every refusal minica makes is a MinicaError of one kind.

Front ends map the kinds once each: the CLI to `error:` and exit 1, a service to HTTP
statuses (not found 404, conflict 409, policy 403, input 400, storage 503) and ACME
problem types. Messages say what and why in the core's terms; ``code`` names the kind of
problem more precisely, for a front end to add its own hint (a CLI flag, a URL).
"""

from __future__ import annotations


class MinicaError(Exception):
    """A refusal or failure a user can act on; its message says what and why.

    ``hint`` is an optional second line telling the user what to do about it, in the
    core's terms; ``code`` is a stable name for the problem (see each raise site) that
    front ends may attach their own hints to.
    """

    def __init__(self, message: str, hint: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code


class NotFoundError(MinicaError):
    """What was asked for does not exist: a CA folder, a serial, a CRL."""


class ConflictError(MinicaError):
    """The change clashes with what is there: a CA that exists, a revocation already made."""


class PolicyError(MinicaError):
    """A request asks for something the profile or the CA does not allow."""


class InputError(MinicaError, ValueError):
    """Input that cannot be used as it is: malformed, unreadable, or out of range (a
    ValueError too, as Python code expects of a bad argument)."""


class ProfileError(InputError):
    """A profile file is missing, unreadable or breaks the schema."""


class RequestError(InputError):
    """A CSR, a key or a name is unreadable, badly signed or too weak."""


class StorageError(MinicaError):
    """The CA folder or its registry cannot be read or written (permissions, a full disk,
    damage, a schema from a newer minica)."""
