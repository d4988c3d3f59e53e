"""The error a user can act on: one line, an exit code, never a traceback."""

from specflowd.core.vocab import ErrorCode

# The daemon's exit for a configuration it cannot run with (sysexits' EX_CONFIG): systemd's units
# list it in RestartPreventExitStatus=, so that a missing or broken config is no restart loop.
EXIT_CONFIG = 78


class UserError(Exception):
    """A problem caused by input or environment that the user can fix.

    ``code`` is the machine-readable reason (the request protocol's error codes reuse it),
    ``field`` names the offending request field when there is one.
    """

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID_FIELD, field: str | None = None,
                 exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.exit_code = exit_code
