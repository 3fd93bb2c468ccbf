"""Error categories shared by every component; each edge maps them once (gRPC, HTTP, CLI)."""


class LedgerError(Exception):
    """Base of the categorized errors; the message names the offending identifiers."""


class NotFound(LedgerError):
    """The thing asked for does not exist."""


class Conflict(LedgerError):
    """The request contradicts what is already recorded."""


class Invalid(LedgerError):
    """The input is malformed; nothing was changed."""


class Unavailable(LedgerError):
    """A backend did not answer in time; retrying the same request is safe."""


class BackendError(LedgerError):
    """A backend refused the request for good (schema missing, a statement it cannot run):
    retrying the same request cannot help, so it surfaces and stops the role loudly."""


class Unauthenticated(LedgerError):
    """No credentials, or credentials that name no valid key; the message never echoes them."""


class Revoked(Unauthenticated):
    """A key that was valid and has been revoked (gRPC answers PERMISSION_DENIED, HTTP 401)."""


class Forbidden(LedgerError):
    """A valid key whose role does not allow the call."""
