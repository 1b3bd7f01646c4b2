"""Errors as data: syscall errors, lookup failures and kernel bugs (STYLE.md Synthesis 4).

- :class:`SyscallError` subclasses mirror seL4's ten error kinds and carry their payload.
  ``decode_*`` functions raise them; :func:`error_reply` is the one place that turns an
  error into the label and message words of the reply.
- :class:`LookupFailure` values describe why a capability lookup failed; they travel
  inside :class:`FailedLookup` errors and inside cap faults.
- :class:`KernelBug` is a violated kernel invariant (xv6's ``panic``). Syscall code must
  never catch it.
"""

from __future__ import annotations

from typing import ClassVar, Final

from kernel.abi.constants import Error, LookupFailureType
from kernel.records import dataclass

__all__ = [
    "AlignmentError",
    "DeleteFirst",
    "DepthMismatch",
    "FailedLookup",
    "GuardMismatch",
    "IllegalOperation",
    "InvalidArgument",
    "InvalidCapability",
    "InvalidRoot",
    "KernelBug",
    "LOOKUP_FAILURES",
    "LookupFailure",
    "MissingCapability",
    "NotEnoughMemory",
    "RangeError",
    "RevokeFirst",
    "SyscallError",
    "TruncatedMessage",
    "error_reply",
    "lookup_failure_words",
]


class KernelBug(Exception):
    """A kernel invariant does not hold. Never caught by syscall code."""


# --- lookup failures -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvalidRoot:
    """The root of the lookup is not a CNode capability."""


@dataclass(frozen=True, slots=True)
class MissingCapability:
    bits_left: int


@dataclass(frozen=True, slots=True)
class DepthMismatch:
    bits_left: int
    bits_found: int


@dataclass(frozen=True, slots=True)
class GuardMismatch:
    bits_left: int
    guard_found: int
    bits_found: int


LookupFailure = InvalidRoot | MissingCapability | DepthMismatch | GuardMismatch
LOOKUP_FAILURES: Final = (InvalidRoot, MissingCapability, DepthMismatch, GuardMismatch)
"""The lookup-failure classes, for ``isinstance`` checks."""


def lookup_failure_words(failure: LookupFailure) -> list[int]:
    """The words that describe ``failure`` in a reply or a cap fault: type, then payload."""
    match failure:
        case InvalidRoot():
            return [LookupFailureType.seL4_InvalidRoot]
        case MissingCapability(bits_left):
            return [LookupFailureType.seL4_MissingCapability, bits_left]
        case DepthMismatch(bits_left, bits_found):
            return [LookupFailureType.seL4_DepthMismatch, bits_left, bits_found]
        case GuardMismatch(bits_left, guard_found, bits_found):
            return [LookupFailureType.seL4_GuardMismatch, bits_left, guard_found, bits_found]
    raise KernelBug(f"unknown lookup failure {failure!r}")


# --- syscall errors --------------------------------------------------------------------


class SyscallError(Exception):
    """An invocation was refused; the caller gets ``error_reply(self)`` on Call."""

    code: ClassVar[Error] = Error.seL4_NoError

    def words(self) -> list[int]:
        """The reply's message words (MR0...), as abi/errors.md lists them."""
        return []

    def __str__(self) -> str:
        words = ", ".join(str(w) for w in self.words())
        return f"{self.code.name}({words})"


class InvalidArgument(SyscallError):
    code = Error.seL4_InvalidArgument

    def __init__(self, argument: int) -> None:
        super().__init__(argument)
        self.argument = argument

    def words(self) -> list[int]:
        return [self.argument]


class InvalidCapability(SyscallError):
    code = Error.seL4_InvalidCapability

    def __init__(self, cap_index: int) -> None:
        super().__init__(cap_index)
        self.cap_index = cap_index

    def words(self) -> list[int]:
        return [self.cap_index]


class IllegalOperation(SyscallError):
    code = Error.seL4_IllegalOperation


class RangeError(SyscallError):
    code = Error.seL4_RangeError

    def __init__(self, minimum: int, maximum: int) -> None:
        super().__init__(minimum, maximum)
        self.minimum = minimum
        self.maximum = maximum

    def words(self) -> list[int]:
        return [self.minimum, self.maximum]


class AlignmentError(SyscallError):
    code = Error.seL4_AlignmentError


class FailedLookup(SyscallError):
    code = Error.seL4_FailedLookup

    def __init__(self, was_source: bool, failure: LookupFailure) -> None:
        super().__init__(was_source, failure)
        self.was_source = was_source
        self.failure = failure

    def words(self) -> list[int]:
        return [int(self.was_source), *lookup_failure_words(self.failure)]


class TruncatedMessage(SyscallError):
    code = Error.seL4_TruncatedMessage


class DeleteFirst(SyscallError):
    code = Error.seL4_DeleteFirst


class RevokeFirst(SyscallError):
    code = Error.seL4_RevokeFirst


class NotEnoughMemory(SyscallError):
    code = Error.seL4_NotEnoughMemory

    def __init__(self, memory_left: int) -> None:
        super().__init__(memory_left)
        self.memory_left = memory_left

    def words(self) -> list[int]:
        return [self.memory_left]


def error_reply(error: SyscallError) -> tuple[int, list[int]]:
    """The reply to a failed invocation: (label = error code, message words)."""
    return int(error.code), error.words()
