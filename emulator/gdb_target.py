"""The debugging target behind the GDB stub: the kernel's threads, their registers and
memory, breakpoints and running, over a booted :class:`~emulator.session.Session`.

Nothing here knows the wire protocol (``emulator.gdb_protocol``) or packet syntax
(``emulator.gdb_server``); this layer answers in Python values and raises
:class:`TargetError` for a request it cannot carry out, which never changes any state.

Why our own stub rather than the ``udbserver`` package (a Unicorn gdbserver, version
0.3.0 read): it drives one Unicorn instance as one thread (a single-thread target), so gdb
could not list or select the kernel's threads; it reads and writes memory with
``uc.mem_read`` at the address it is given, which here is physical memory, not the
selected thread's VSpace; it installs an always-on code hook on every instruction and a
memory hook on every read (our hot path has no per-instruction hook); it listens on
127.0.0.1 only, blocks inside a Unicorn hook, prints to stdout and panics on socket errors
(our guest owns stdout; a dropped connection must be one clear line); and it has no
Ctrl-C and no notion of system calls. Only its idea is shared: breakpoints as Unicorn code
hooks on exactly their addresses.

Invariants:
- Thread ids are small positive integers given in the order the kernel's threads were
  first seen; an id is never reused for another TCB.
- A thread's registers are the machine's when it is the kernel's current thread (between
  runs the current thread's context is always loaded in the machine), else its TCB's
  saved copy.
- Memory is read and written through the thread's own VSpace page tables, whatever the
  mapping's rights (a debugger may patch read-only code); translated code is dropped after
  every write so the CPU sees the new bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from kernel.core.threads import vspace_root_of
from kernel.model.page_tables import walk
from kernel.model.paging import PteKind
from kernel.model.tcb import TCB
from kernel.records import dataclass
from kernel.views.mcs import thread_mcs, thread_note

from .gdb_regs import RegisterLayout, layout_for
from .machine import RunResult
from .session import Session

__all__ = ["SIGINT", "SIGTRAP", "Stop", "TargetError", "GdbTarget", "RUN_CHUNK"]

SIGINT = 2
SIGTRAP = 5
EFAULT = 14
EINVAL = 22
RUN_CHUNK = 20_000
"""Instructions run between two looks at the connection for a Ctrl-C while continuing."""
MAX_ACCESS = 0x10000
"""Most bytes one memory request may touch."""


class TargetError(Exception):
    """A request that cannot be carried out; ``errno`` goes into gdb's ``E`` reply."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass(frozen=True, slots=True)
class Stop:
    """Why the target stopped. ``exited`` is set when the run is over (``status`` is the
    exit status); otherwise ``signal`` stopped ``thread`` (``breakpoint``: at a breakpoint
    we inserted; ``syscall``: right after a system call of ``thread``)."""

    signal: int = SIGTRAP
    thread: TCB | None = None
    breakpoint: bool = False
    syscall: bool = False
    exited: RunResult | None = None


class GdbTarget:
    """The kernel's threads and memory as gdb sees them."""

    def __init__(self, session: Session, stop_at_syscalls: bool = False,
                 max_instructions: int | None = None) -> None:
        self.session = session
        self.max_instructions = max_instructions
        """The run ends (kind ``"limit"``) once the guest has run this many instructions
        in all (as ``capsule run --max-instructions`` without gdb)."""
        self.kernel = session.kernel
        self.machine = session.machine
        self.layout: RegisterLayout = layout_for(self.kernel.arch)
        self.result: RunResult | None = None
        self._known: list[TCB] = []
        self._caller: TCB | None = None
        if stop_at_syscalls:
            self.kernel.syscall_observers.append(self._on_syscall)
            self.kernel.exit_observers.append(self._on_exit)

    # --- threads -------------------------------------------------------------------------

    def threads(self) -> list[tuple[int, TCB]]:
        """(id, TCB) of every thread that exists now, in id order."""
        known_ids = {id(tcb) for tcb in self._known}
        for tcb in self.kernel.threads.values():
            if id(tcb) not in known_ids:
                self._known.append(tcb)
                known_ids.add(id(tcb))
        alive = {id(tcb) for tcb in self.kernel.threads.values()}
        return [(n + 1, tcb) for n, tcb in enumerate(self._known) if id(tcb) in alive]

    def thread_id(self, tcb: TCB) -> int:
        for number, known in self.threads():
            if known is tcb:
                return number
        raise TargetError(EINVAL, "thread no longer exists")

    def thread(self, number: int) -> TCB:
        """The thread with id ``number``; 0 or -1 mean "any": the current one (or the
        first, when no thread is current)."""
        threads = self.threads()
        if number in (0, -1):
            if self.kernel.current is not None:
                return self.kernel.current
            if threads:
                return threads[0][1]
            raise TargetError(EINVAL, "there are no threads")
        for known, tcb in threads:
            if known == number:
                return tcb
        raise TargetError(EINVAL, f"no thread {number}")

    def describe(self, tcb: TCB) -> str:
        """What ``info threads`` shows in parentheses after the name; under MCS also
        the scheduling context the thread runs on (or ``passive``), the reply object it
        waits on and whether it waits for a release, as the debugger's ``threads``."""
        mark = "current, " if tcb is self.kernel.current else ""
        text = f"{mark}{tcb.state.value}, priority {tcb.priority}"
        if self.kernel.mcs is not None:
            text += "," + thread_note(thread_mcs(self.kernel, tcb))
        return text

    # --- registers -------------------------------------------------------------------------

    def context(self, tcb: TCB) -> list[int]:
        if tcb is self.kernel.current:
            return self.machine.save_context()
        return list(self.kernel.registers_of(tcb))

    def set_context(self, tcb: TCB, values: list[int]) -> None:
        if tcb is self.kernel.current:
            self.machine.load_context(values)
        else:
            tcb.registers = list(values)

    # --- memory --------------------------------------------------------------------------

    def _physical(self, tcb: TCB, address: int, size: int) -> list[tuple[int, int]]:
        """(paddr, length) pieces of ``tcb``'s ``address .. address+size``, stopping at
        the first unmapped page (so fewer bytes may be covered than asked)."""
        if size > MAX_ACCESS:
            raise TargetError(EINVAL, f"at most {MAX_ACCESS:#x} bytes at once")
        if address < 0 or address + size > 1 << 64:
            raise TargetError(EFAULT, "address out of range")
        root, _asid = vspace_root_of(self.kernel, tcb)
        if not root:
            return []
        fmt = self.kernel.paging
        pieces: list[tuple[int, int]] = []
        done = 0
        while done < size:
            result = walk(self.machine, fmt, root, address + done)
            if result.kind is not PteKind.LEAF:
                break
            page = 1 << fmt.shifts[result.level]
            length = min(size - done, page - (address + done) % page)
            pieces.append((result.paddr, length))
            done += length
        return pieces

    def read_memory(self, tcb: TCB, address: int, size: int) -> bytes:
        """Bytes of ``tcb``'s memory; fewer than ``size`` if an unmapped page cuts the
        range short. Raises TargetError(EFAULT) if ``address`` itself is unmapped."""
        pieces = self._physical(tcb, address, size)
        if size and not pieces:
            raise TargetError(EFAULT, f"address {address:#x} is not mapped")
        return b"".join(self.machine.read_phys(paddr, length) for paddr, length in pieces)

    def write_memory(self, tcb: TCB, address: int, data: bytes) -> None:
        """Write all of ``data`` or nothing (TargetError(EFAULT) if any page is unmapped)."""
        pieces = self._physical(tcb, address, len(data))
        if sum(length for _, length in pieces) != len(data):
            raise TargetError(EFAULT, f"address range at {address:#x} is not all mapped")
        offset = 0
        for paddr, length in pieces:
            self.machine.write_phys(paddr, data[offset : offset + length])
            offset += length
        if data:
            self.machine.flush_translations()

    # --- breakpoints and running -----------------------------------------------------------

    def add_breakpoint(self, address: int) -> None:
        if not 0 <= address < 1 << 64:
            raise TargetError(EINVAL, "address out of range")
        self.machine.add_breakpoint(address)

    def remove_breakpoint(self, address: int) -> None:
        self.machine.remove_breakpoint(address)

    def remove_all_breakpoints(self) -> None:
        for address in self.machine.breakpoints:
            self.machine.remove_breakpoint(address)

    def _on_syscall(self, kernel: object, window: list[int]) -> None:
        self._caller = self.kernel.current

    def _on_exit(self, kernel: object) -> None:
        if self._caller is not None:
            self.machine.request_pause("system call")

    def resume(self, step: bool, interrupted: Callable[[], bool]) -> Stop:
        """Run the current thread one instruction (``step``), or run until a breakpoint,
        a system call (when stopping at them), ``interrupted()`` says so, or the end."""
        if self.result is not None:
            return Stop(exited=self.result)
        stepped = self.kernel.current
        while True:
            self._caller = None
            result = self._run(1 if step else RUN_CHUNK)
            if result.kind == "pause":
                if result.breakpoint is not None:
                    return Stop(thread=self.kernel.current, breakpoint=True)
                return Stop(thread=self._caller, syscall=True)
            if result.kind != "limit" or self._limit_reached():
                self.result = self._ended(result)
                return Stop(exited=self.result)
            if step:
                return Stop(thread=stepped)
            if interrupted():
                return Stop(signal=SIGINT, thread=self.kernel.current)

    def finish(self) -> RunResult:
        """Run to the end with every breakpoint and syscall stop removed (gdb detached)."""
        self.remove_all_breakpoints()
        if self._on_syscall in self.kernel.syscall_observers:
            self.kernel.syscall_observers.remove(self._on_syscall)
            self.kernel.exit_observers.remove(self._on_exit)
        while self.result is None:
            result = self._run(None)
            if result.kind != "pause":
                self.result = self._ended(result)
        return self.result

    def _run(self, chunk: int | None) -> RunResult:
        """``session.run`` for at most ``chunk`` instructions (None: no bound) and no
        further than the instruction limit."""
        if self.max_instructions is not None and self.session.instructions is not None:
            left = max(0, self.max_instructions - self.session.instructions)
            chunk = left if chunk is None else min(chunk, left)
        return self.session.run(chunk)

    def _limit_reached(self) -> bool:
        return (self.max_instructions is not None and self.session.instructions is not None
                and self.session.instructions >= self.max_instructions)

    def _ended(self, result: RunResult) -> RunResult:
        """The run's end as ``capsule run`` reports it: instructions counted over the
        whole run (not the last chunk's), a limit reached the instruction limit's."""
        if result.kind == "limit":
            result = replace(result, message=f"instruction limit {self.max_instructions} reached")
        return replace(result, instructions=self.session.instructions)
