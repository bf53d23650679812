"""The one exception tree: every refusal minica makes is a MinicaError."""


class MinicaError(Exception):
    """A refusal or failure a user can act on; its message says what and why.

    ``hint`` is an optional second line telling the user what to do about it.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ProfileError(MinicaError):
    """A profile file is missing, unreadable or breaks the schema."""


class RequestError(MinicaError):
    """A CSR or a key is unreadable, badly signed or too weak."""


class PolicyError(MinicaError):
    """A request asks for something the profile or the CA does not allow."""


class StoreError(MinicaError):
    """The CA folder is missing, already exists, or cannot be read or written."""
