"""Exceptions that carry a user-facing message; cli.py alone maps them to exit codes."""

from __future__ import annotations


class RdsStreamsError(Exception):
    """An error the user can act on. `str(err)` is the message shown to them."""

    exit_code = 1
    title = "rds-streams failed"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(RdsStreamsError):
    """The configuration is invalid; nothing was touched."""

    exit_code = 2
    title = "Bad configuration"


class UsageError(RdsStreamsError):
    """The command line asks for something that cannot be done; nothing was touched."""

    exit_code = 2
    title = "Bad usage"


class OperationFailed(RdsStreamsError):
    """The operation was attempted and failed."""

    exit_code = 1
    title = "Operation failed"


class Cancelled(RdsStreamsError):
    """The user cancelled (Ctrl-C)."""

    exit_code = 130
    title = "Cancelled"
