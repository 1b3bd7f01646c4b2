"""Exit statuses of the ``capsule`` commands: one table, one rule (README, "Exit status").

A guest's own status and capsule's conditions can never be confused:

- capsule's own conditions have their own codes: 2 (usage or bad input: nothing ran),
  118-125 (a block, like ``timeout(1)``'s 124-127: 124 is its "timed out" too, 125 its
  "the tool itself failed") and 130 (interrupted: 128 + SIGINT, as shells report it);
- a guest that halted by itself passes its status through unchanged, unless that status
  is one of capsule's codes: then the exit status is :attr:`ExitStatus.GUEST_RESERVED`
  (118) and the stop line on stderr gives the guest's own status.

The status of a run is derived from how it ended (``RunResult.kind``) and, for a halt,
from the guest's status; never from ``RunResult.status`` of a non-halt, which is the
kernel's own code.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .machine import RunResult

__all__ = ["RESERVED", "ExitStatus", "exit_status", "stop_line"]


class ExitStatus(IntEnum):
    """capsule's own exit statuses (every one of them is in :data:`RESERVED`)."""

    USAGE = 2
    """A usage error or bad input (an unreadable image, a bad option): nothing ran."""
    GUEST_RESERVED = 118
    """The guest halted by itself with a status that is one of these codes."""
    GDB_KILLED = 119
    """gdb's ``kill`` ended the guest (``capsule run --gdb``)."""
    GDB_LOST = 120
    """The gdb connection was lost before the run ended."""
    FAULT = 121
    """The last runnable thread stopped on a fault nobody handles."""
    NO_RUNNABLE_THREAD = 122
    """Every thread is blocked or inactive: nothing can ever run again."""
    KERNEL_HALT = 123
    """The kernel halted on a guest error, as seL4's debug kernel does (or the guest
    needs a kernel feature capsule lacks so far)."""
    INSTRUCTION_LIMIT = 124
    """``--max-instructions`` ran out."""
    INTERNAL = 125
    """A bug in capsule (please report it)."""
    INTERRUPTED = 130
    """SIGINT (Ctrl-C) stopped the run."""


RESERVED = frozenset(int(status) for status in ExitStatus)
"""Codes a guest's own status is never reported as."""

_BY_KIND = {
    "fault": ExitStatus.FAULT,
    "idle": ExitStatus.NO_RUNNABLE_THREAD,
    "kernel-halt": ExitStatus.KERNEL_HALT,
    "limit": ExitStatus.INSTRUCTION_LIMIT,
    "interrupt": ExitStatus.INTERRUPTED,
}


def exit_status(result: RunResult) -> int:
    """The exit status for a run that ended as ``result`` (see the module docstring).

    A pause is not an end; it has no status of its own (0, as a run not yet over).
    """
    if result.kind == "halt":
        status = result.status & 0xFF
        return ExitStatus.GUEST_RESERVED if status in RESERVED else status
    if result.kind == "pause":
        return 0
    return _BY_KIND.get(result.kind, ExitStatus.INTERNAL)


def stop_line(result: RunResult) -> str | None:
    """What ``capsule run`` says on stderr about how the run ended (without the
    ``capsule: `` prefix), or None when there is nothing to say (a guest that halted
    with a status passed through unchanged)."""
    if result.kind != "halt":
        return result.message
    status = result.status & 0xFF
    if status in RESERVED:
        return (f"the guest exited with status {status}, reported as "
                f"{int(ExitStatus.GUEST_RESERVED)}: {status} is one of capsule's own statuses")
    return None
