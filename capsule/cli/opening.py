"""How a command opens its IMAGE argument and gets to the point it looks at.

An image, a root task's ELF or an elfloader image is booted (:meth:`capsule.Machine.load`);
a snapshot file is taken up where it was saved (:meth:`capsule.Machine.from_snapshot`).
``capsule debug``, ``cspace`` and ``component`` take both, so a saved system can be
debugged and inspected as it was. ``--after-syscall N`` counts system calls since boot,
as the trace numbers them, whichever the machine came from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from capsule.machine import Machine
from capsule.records import Stop, StopKind, SyscallEvent
from emulator.snapshot import MAGIC

from .errors import CliError

__all__ = ["open_machine", "parse_syscall_count", "reached", "run_to_syscall"]


def open_machine(path: Path, console: Callable[[bytes], None] | None = None) -> Machine:
    """The machine ``path`` holds (see the module docstring). Raises LoadError."""
    try:
        with path.open("rb") as file:
            start = file.read(len(MAGIC))
    except OSError:
        start = b""  # Machine.load says what is wrong with it
    if start == MAGIC:
        return Machine.from_snapshot(path, console=console)
    return Machine.load(path, console=console)


def parse_syscall_count(text: str | None) -> int | None:
    """``--after-syscall N``: N counted from 1 (None: not given)."""
    if text is None:
        return None
    try:
        value = int(text, 0)
    except ValueError:
        raise CliError(f"--after-syscall: {text!r} is not a number") from None
    if value < 1:
        raise CliError(f"--after-syscall: {value} is not a syscall number (counting starts at 1)")
    return value


def run_to_syscall(machine: Machine, number: int | None,
                   max_instructions: int | None) -> Stop:
    """Run ``machine`` until right after system call ``number`` since boot (None: to the
    end); a stop of kind HOOK when it got there. CliError if it is already past it."""
    if number is not None and machine.syscalls >= number:
        raise CliError(f"--after-syscall {number}: the machine has made {machine.syscalls} "
                       "system calls already")

    def there(event: SyscallEvent) -> bool:
        return machine.syscalls == number

    hook = machine.on_syscall(there) if number is not None else None
    try:
        return machine.run(max_instructions=max_instructions)
    finally:
        if hook is not None:
            hook.remove()


def reached(stop: Stop) -> bool:
    """Whether a :func:`run_to_syscall` stop is at its syscall (not the run's end)."""
    return stop.kind is StopKind.HOOK
