"""The one narrow interface between the kernel and the machine it runs on.

The kernel never imports Unicorn. Everything it needs from hardware goes through a
:class:`Machine`: physical memory, the *current* thread's registers, the installed
address space, and a request to stop. ``emulator/`` implements it over Unicorn;
``tests/`` implement it over a bytearray (the fake machine), so the kernel is unit-tested
without an emulator.

Register conventions: a thread's full register file is a list of words in
seL4_UserContext order (``ArchABI.user_context``), with ``pc`` the address execution
resumes at. The *syscall window* is the eight argument registers a0-a7 / x0-x7, which is
where both architectures put every syscall input and output.

A thread that stops running is saved with :meth:`Machine.save_thread`: an opaque
:class:`SavedThread` of the machine's own (on Unicorn, a copy of the whole CPU state),
which the kernel turns into a register list only when it needs the words
(:class:`kernel.model.tcb.TCB` does that lazily), so a switch costs two copies
instead of converting the register file to and from Python integers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kernel.abi.arch import Arch

__all__ = ["Machine", "SavedThread"]


class SavedThread(Protocol):
    """A thread's CPU state as :meth:`Machine.save_thread` saved it."""

    def registers(self) -> list[int]:
        """A new list of the saved user registers, seL4_UserContext order."""
        ...


class Machine(Protocol):
    """What the kernel may ask of the machine. All addresses are physical."""

    arch: Arch
    ram_base: int
    ram_size: int

    def read_phys(self, paddr: int, size: int) -> bytes:
        """Bytes of RAM; the range lies inside RAM (the kernel guarantees it)."""
        ...

    def write_phys(self, paddr: int, data: bytes) -> None:
        """Store bytes into RAM; the range lies inside RAM."""
        ...

    def read_syscall_window(self) -> list[int]:
        """The current thread's a0-a7 / x0-x7."""
        ...

    def write_syscall_window(self, values: Sequence[int]) -> None:
        """Write the first ``len(values)`` (at most 8) of a0-a7 / x0-x7."""
        ...

    def save_context(self) -> list[int]:
        """The current thread's whole register file, seL4_UserContext order."""
        ...

    def load_context(self, registers: Sequence[int]) -> None:
        """Make ``registers`` (seL4_UserContext order) the CPU's registers."""
        ...

    def save_thread(self, reuse: object | None = None) -> SavedThread:
        """Save the current thread's whole CPU state. ``reuse``, a value this machine
        returned before (for the same thread), may be overwritten and returned instead
        of allocating anew."""
        ...

    def load_thread(self, saved: object | None, registers: Sequence[int] | None,
                    changes: dict[int, int]) -> None:
        """Make a thread's state the CPU's: ``saved`` (from :meth:`save_thread`; None
        if the thread never ran, which then starts from a clean CPU state), then
        ``registers`` over it if given (they are the truth for the user registers),
        else the ``changes`` {position: value} made to the saved registers since. One
        of ``saved`` and ``registers`` is given.

        The address space may be left as it was when ``saved`` was made: call
        :meth:`set_address_space` afterwards, never before.
        """
        ...

    def set_address_space(self, root_paddr: int, asid: int) -> None:
        """Install the page-table root ``root_paddr`` with ``asid`` for user execution."""
        ...

    def page_tables_changed(self) -> None:
        """Entries were removed or changed in installed tables: drop cached translations."""
        ...

    def mappings_changed(self, asid: int) -> None:
        """Entries of the address space tagged ``asid`` were removed or changed, or the
        ASID itself went away: drop whatever translations are cached for it, so that an
        unmap takes access away before the next user instruction and a remap is seen.

        Cheaper than :meth:`page_tables_changed` when the machine caches translations
        of the installed address space only: a change elsewhere then costs nothing.
        """
        ...
