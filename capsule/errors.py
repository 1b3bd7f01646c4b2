"""The errors of capsule's Python API: one root, :class:`CapsuleError`, and a subclass per
kind of failure. Each message is one line that names what is wrong.

An exception raised by a hook callback is not wrapped: it leaves :meth:`Machine.run
<capsule.Machine.run>` as it was raised.
"""

from __future__ import annotations

__all__ = [
    "CapLookupError",
    "CapsuleError",
    "ComponentError",
    "InternalError",
    "LoadError",
    "MemoryAccessError",
    "NoSuchSymbol",
    "NoSuchThread",
    "RunEnded",
    "Unsupported",
    "UsageError",
]


class CapsuleError(Exception):
    """Root of every error the API raises."""


class LoadError(CapsuleError):
    """The image or ELF cannot be read, is not valid, or cannot boot (the message says
    which, as ``capsule run`` would)."""


class UsageError(CapsuleError, ValueError):
    """An argument the API cannot accept: an unknown syscall name or invocation label in
    a stop condition, an unknown register name, a negative size."""


class RunEnded(CapsuleError):
    """:meth:`~capsule.Machine.run` was called after the guest's run ended (it halted,
    or no thread can run any more). :attr:`stop` is how it ended."""

    def __init__(self, message: str, stop: object) -> None:
        super().__init__(message)
        self.stop = stop


class NoSuchThread(CapsuleError, LookupError):
    """No thread of that name (or that thread no longer exists)."""


class NoSuchSymbol(CapsuleError, LookupError):
    """The program's ELF has no symbol of that name."""


class MemoryAccessError(CapsuleError):
    """An address in the range is not mapped in the thread's VSpace (or the thread has
    no VSpace); :attr:`address` is the first such address. Nothing was written."""

    def __init__(self, message: str, address: int) -> None:
        super().__init__(message)
        self.address = address


class CapLookupError(CapsuleError, LookupError):
    """A CPtr does not resolve in the thread's CSpace; :attr:`failure` names seL4's
    lookup failure (``InvalidRoot``, ``GuardMismatch``, ``DepthMismatch``, ...)."""

    def __init__(self, message: str, failure: str) -> None:
        super().__init__(message)
        self.failure = failure


class ComponentError(CapsuleError):
    """A component cannot be captured or restored faithfully (an object shared with a cap
    outside it, a thread in the middle of a Call, an untyped too small, an external the
    identity map leaves out...): the message names the object and says what to do.
    Nothing was changed."""


class Unsupported(CapsuleError):
    """What was asked needs something this capsule lacks (the message says what: a
    snapshot under a kernel compiled with mypyc, which cannot restore one yet)."""


class InternalError(CapsuleError):
    """A bug in capsule itself (the kernel or the emulator failed); the original
    exception is the ``__cause__``. Please report it."""
