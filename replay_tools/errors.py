"""Errors raised by :mod:`replay_tools`, and the exit code each one maps to.

The tree::

    ReplayError                         base class; ``exit_code`` says how the CLI exits
    ├── JobNotFoundError (+FileNotFoundError)   exit 3: no file or directory at the path
    ├── NotAJobLogError (+ValueError)           exit 4: the path is not a job log
    ├── DamagedLogError (+ValueError)           exit 5: damaged bytes; names file and offset
    ├── BadPointError (+ValueError)             exit 2: a version or time that does not parse
    │                                                   or lies outside the log
    ├── ConditionSyntaxError (+ValueError)      exit 2: a --where condition that does not parse;
    │   │                                               names the bad token and its column
    │   ├── ConditionTypeError                  exit 2: a comparison of a number with text (or
    │   │                                               other mismatched types); points at the token
    │   └── UnknownFieldError                   exit 2: a field the job never had; lists the
    │                                                   nearest known names
    ├── FieldPathError (+ValueError)            exit 2: a field path that does not parse
    ├── UsageError (+ValueError)                exit 2: options that do not fit together, an
    │                                                   unknown --fields name, an ambiguous hash
    ├── KeyMismatchError (+ValueError)          exit 2: the hash-chain key is wrong or missing
    ├── ImportFormatError (+ValueError)         exit 4: an export file that cannot be imported
    ├── DestinationError (+ValueError)          exit 2: a copy/import destination that holds
    │                                                   another job (use --force or a new one)
    ├── CopyMismatchError                       exit 1: a copy whose head hash differs from
    │                                                   the source's (nothing is trusted)
    └── StorageUnavailableError                 exit 6: the database cannot be reached or failed

Exit code 1 is not an error class: the CLI uses it for a check that ran and failed
(``verify`` found a problem, ``bisect`` found no version where the condition holds).
Every error keeps its context as attributes as well as in the message.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CHECK_FAILED",
    "EXIT_DAMAGED",
    "EXIT_NOT_A_JOB",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "BadPointError",
    "ConditionSyntaxError",
    "ConditionTypeError",
    "CopyMismatchError",
    "DamagedLogError",
    "DestinationError",
    "FieldPathError",
    "ImportFormatError",
    "JobNotFoundError",
    "KeyMismatchError",
    "NotAJobLogError",
    "ReplayError",
    "StorageUnavailableError",
    "UnknownFieldError",
    "UsageError",
]

#: Everything held.
EXIT_OK = 0
#: The command ran but its check failed (verify problems, bisect found nothing, head mismatch).
EXIT_CHECK_FAILED = 1
#: Bad arguments: a bad version, time, condition or field path (click also uses 2).
EXIT_USAGE = 2
#: No file or directory at the given path.
EXIT_NOT_FOUND = 3
#: The path exists but is not a job log (or not an importable export).
EXIT_NOT_A_JOB = 4
#: The job log is damaged.
EXIT_DAMAGED = 5
#: The storage (a PostgreSQL server) cannot be reached or failed: retrying may help.
EXIT_UNAVAILABLE = 6


class ReplayError(Exception):
    """Base class of every error raised by :mod:`replay_tools`."""

    exit_code: int = EXIT_USAGE


class JobNotFoundError(ReplayError, FileNotFoundError):
    """No job file or job directory exists at ``path``."""

    exit_code = EXIT_NOT_FOUND

    def __init__(self, path: str, what: str = "") -> None:
        self.path = path
        msg = what or f"no such job file or directory: {path!r} (give a saved job file or a durable job directory)"
        Exception.__init__(self, msg)

    def __str__(self) -> str:
        return str(self.args[0])


class NotAJobLogError(ReplayError, ValueError):
    """The path exists but holds no job log; ``reason`` says what was found."""

    exit_code = EXIT_NOT_A_JOB

    def __init__(self, path: str, reason: str, *, what: str = "a job log") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path!r} is not {what}: {reason}")


class DamagedLogError(ReplayError, ValueError):
    """The job log is damaged; names the file, byte offset and seq when known."""

    exit_code = EXIT_DAMAGED

    def __init__(self, path: str, reason: str, *, file: str | None = None, offset: int | None = None,
                 seq: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.file = file
        self.offset = offset
        self.seq = seq
        where = file or path
        if offset is not None:
            where += f" at byte {offset}"
        if seq is not None:
            where += f" (seq {seq})"
        super().__init__(f"damaged job log {path!r}: {reason} in {where}")


class BadPointError(ReplayError, ValueError):
    """A version or time that does not parse or lies outside the log."""

    exit_code = EXIT_USAGE

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"bad point {text!r} (a version, hash or time): {reason}")


class ConditionSyntaxError(ReplayError, ValueError):
    """A condition that does not parse; ``column`` (1-based) points at the bad token."""

    exit_code = EXIT_USAGE

    def __init__(self, text: str, column: int, token: str, reason: str, *, what: str = "condition") -> None:
        self.text = text
        self.column = column
        self.token = token
        self.reason = reason
        at = f"{token!r}" if token else "end of input"
        super().__init__(f"bad {what} {text!r}: {reason} at column {column} ({at})")


class ConditionTypeError(ConditionSyntaxError):
    """A comparison between values of different types (a number with text, ...).

    ``column`` points at the literal; ``field`` names the path and ``version`` the
    version at which the field held the mismatching ``value`` (when known).
    """

    def __init__(self, text: str, column: int, token: str, reason: str, *, field: str = "",
                 value: object = None, version: int | None = None) -> None:
        self.field = field
        self.value = value
        self.version = version
        super().__init__(text, column, token, reason)


class UnknownFieldError(ConditionSyntaxError):
    """A condition names a field that does not exist (``nearest`` holds likely meant names)."""

    def __init__(self, text: str, column: int, token: str, reason: str, *,
                 nearest: tuple[str, ...] = (), what: str = "condition") -> None:
        self.nearest = nearest
        super().__init__(text, column, token, reason, what=what)


class UsageError(ReplayError, ValueError):
    """Options or arguments that do not fit together (one line saying what to give instead)."""

    exit_code = EXIT_USAGE


class FieldPathError(ReplayError, ValueError):
    """A field path (``shared_data.limit``) that does not parse."""

    exit_code = EXIT_USAGE

    def __init__(self, text: str, reason: str, *, column: int | None = None) -> None:
        self.text = text
        self.reason = reason
        self.column = column
        at = f" at column {column}" if column is not None else ""
        super().__init__(f"bad field path {text!r}: {reason}{at}")


class ImportFormatError(ReplayError, ValueError):
    """An export file that cannot be imported; names the line."""

    exit_code = EXIT_NOT_A_JOB

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        where = f"{path!r} line {line}" if line is not None else repr(path)
        super().__init__(f"cannot import {where}: {reason}")


class KeyMismatchError(ReplayError, ValueError):
    """The hash-chain key given does not match the log's (or a keyed log needs one)."""

    exit_code = EXIT_USAGE

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"wrong hash-chain key for {path!r}: {reason} (give the right one with --key-file)")


class DestinationError(ReplayError, ValueError):
    """A copy or import destination already holds a different job (or cannot be used)."""

    exit_code = EXIT_USAGE

    def __init__(self, destination: str, reason: str) -> None:
        self.destination = destination
        self.reason = reason
        super().__init__(f"destination {destination!r}: {reason}")


class CopyMismatchError(ReplayError):
    """A copied log's chain differs from its source's (the copy must not be trusted)."""

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, destination: str, seq: int, got: str, expected: str) -> None:
        self.destination = destination
        self.seq = seq
        self.got = got
        self.expected = expected
        super().__init__(f"the copy at {destination!r} has hash {got} after version {seq}, the source has "
                         f"{expected}: the copy is not identical (delete it and copy again)")


class StorageUnavailableError(ReplayError):
    """The storage behind a location (a PostgreSQL server) cannot be reached or failed."""

    exit_code = EXIT_UNAVAILABLE

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"cannot read {location}: {reason}")
