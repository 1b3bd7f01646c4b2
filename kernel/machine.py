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

A thread that stops running is saved with :meth:`Machine.save_thread` into a copy the
machine keeps (on Unicorn, the whole CPU state), named by a *handle*: a plain int the
TCB holds (``TCB.cpu``; 0 names no copy), so kernel state stays plain data (DESIGN.md
decision 7). The kernel turns a copy into a register list only when it needs the words
(:meth:`kernel.model.state.KernelState.registers_of`), so a switch costs two copies
instead of converting the register file to and from Python integers. A copy leaves and
enters the machine as bytes (:meth:`Machine.export_thread` / :meth:`Machine.import_thread`)
for checkpoints, and is dropped with :meth:`Machine.forget_thread` when its TCB's memory
is reused.
"""

from __future__ import annotations

from collections.abc import Sequence

from mypy_extensions import mypyc_attr

from kernel.abi.arch import Arch

__all__ = ["Machine"]


@mypyc_attr(allow_interpreted_subclasses=True)
class Machine:
    """What the kernel may ask of the machine. All addresses are physical.

    A base class rather than a protocol: a machine subclasses it and implements every
    method. Compiled with mypyc, the kernel then calls a compiled machine's methods
    directly (a protocol's would be looked up by name at every call, a few percent of
    a compiled kernel entry); the fake machine of the tests, interpreted, may subclass
    it too."""

    arch: Arch
    ram_base: int
    ram_size: int

    def read_phys(self, paddr: int, size: int) -> bytes:
        """Bytes of RAM; the range lies inside RAM (the kernel guarantees it)."""
        raise NotImplementedError

    def write_phys(self, paddr: int, data: bytes) -> None:
        """Store bytes into RAM; the range lies inside RAM."""
        raise NotImplementedError

    def read_table_entry(self, table_paddr: int, index: int) -> int:
        """Entry ``index`` (a little-endian word) of the page-aligned page table at
        ``table_paddr``, as :meth:`read_phys` would read it."""
        raise NotImplementedError

    def read_table(self, table_paddr: int) -> Sequence[int]:
        """All entries of the page-aligned page table at ``table_paddr``, in order, as
        :meth:`read_table_entry` gives them one at a time."""
        raise NotImplementedError

    def write_table_entry(self, table_paddr: int, index: int, entry: int) -> None:
        """Store ``entry`` as entry ``index`` of the page table at ``table_paddr``. Page
        tables are written through this or :meth:`write_phys` only (a machine may keep
        their words)."""
        raise NotImplementedError

    def read_syscall_window(self) -> list[int]:
        """The current thread's a0-a7 / x0-x7."""
        raise NotImplementedError

    def write_syscall_window(self, values: Sequence[int]) -> None:
        """Write the first ``len(values)`` (at most 8) of a0-a7 / x0-x7."""
        raise NotImplementedError

    def save_context(self) -> list[int]:
        """The current thread's whole register file, seL4_UserContext order."""
        raise NotImplementedError

    def load_context(self, registers: Sequence[int]) -> None:
        """Make ``registers`` (seL4_UserContext order) the CPU's registers."""
        raise NotImplementedError

    def save_thread(self, handle: int) -> int:
        """Save the current thread's whole CPU state into the copy named ``handle`` (0:
        into a new copy) and return the copy's handle (never 0)."""
        raise NotImplementedError

    def thread_registers(self, handle: int) -> list[int]:
        """A new list of the user registers in copy ``handle``, seL4_UserContext order."""
        raise NotImplementedError

    def load_thread(self, handle: int, registers: Sequence[int] | None,
                    changes: dict[int, int]) -> None:
        """Make a thread's state the CPU's: copy ``handle`` (0 if the thread never ran,
        which then starts from a clean CPU state), then ``registers`` over it if given
        (they are the truth for the user registers), else the ``changes``
        {position: value} made to the copy's registers since. One of ``handle`` and
        ``registers`` is given.

        The address space may be left as it was when the copy was made: call
        :meth:`set_address_space` afterwards, never before.
        """
        raise NotImplementedError

    def forget_thread(self, handle: int) -> None:
        """Drop copy ``handle`` (its thread's memory is being reused); 0 is ignored."""
        raise NotImplementedError

    def export_thread(self, handle: int) -> bytes:
        """Copy ``handle`` as bytes that :meth:`import_thread` on a fresh machine of the
        same architecture takes back (a checkpoint's form of it)."""
        raise NotImplementedError

    def import_thread(self, handle: int, data: bytes) -> None:
        """Make ``data`` (from :meth:`export_thread`) the copy named ``handle`` (not 0),
        replacing any copy of that name; later new handles do not collide with it."""
        raise NotImplementedError

    def set_fpu_enabled(self, enabled: bool) -> None:
        """Let the thread just loaded (:meth:`load_thread`) use the FPU, or make its FP
        instructions fault (seL4_TCBFlag_fpuDisabled): on RISC-V an illegal instruction,
        on AArch64 an FP access trap. The setting travels with the thread's saved copy."""
        raise NotImplementedError

    def set_address_space(self, root_paddr: int, asid: int) -> None:
        """Install the page-table root ``root_paddr`` with ``asid`` for user execution."""
        raise NotImplementedError

    def page_tables_changed(self) -> None:
        """Entries were removed or changed in installed tables: drop cached translations."""
        raise NotImplementedError

    def mappings_changed(self, asid: int) -> None:
        """Entries of the address space tagged ``asid`` were removed or changed, or the
        ASID itself went away: drop whatever translations are cached for it, so that an
        unmap takes access away before the next user instruction and a remap is seen.

        Cheaper than :meth:`page_tables_changed` when the machine caches translations
        of the installed address space only: a change elsewhere then costs nothing.
        """
        raise NotImplementedError

    def page_unmapped(self, asid: int, vaddr: int, size_bits: int) -> None:
        """The leaf mapping the ``2**size_bits`` bytes at ``vaddr`` in the address space
        tagged ``asid`` was removed, and nothing else changed: as
        :meth:`mappings_changed`, for that page only (seL4 invalidates one page there).
        The default drops everything cached for the ASID."""
        self.mappings_changed(asid)

    # --- the MCS timer (seL4's MCS kernels program a one-shot deadline) ------------------

    def time_now(self) -> int:
        """The machine's clock in timer ticks: one per guest instruction retired since
        boot, plus the idle time :meth:`advance_time` skipped. Read at kernel entries
        (from inside the current run, if one is under way)."""
        raise NotImplementedError

    def set_timer(self, deadline: int) -> None:
        """Enter the kernel through ``Kernel.timer_tick`` when the clock reaches
        ``deadline`` (at once if it has already); replaces any earlier deadline. Until
        the first call the machine ticks every ``tick_instructions``, as a non-MCS
        kernel's periodic timer does."""
        raise NotImplementedError

    def advance_time(self, to: int) -> None:
        """No thread runs until ``to``: move the clock there at once (the idle thread's
        time passes without instructions)."""
        raise NotImplementedError
