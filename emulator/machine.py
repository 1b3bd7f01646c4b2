"""The emulated machine: one Unicorn CPU, one RAM region, traps into the kernel.

:class:`UnicornMachine` implements ``kernel.machine.Machine`` and runs the guest:

- RAM is one Unicorn region at the platform's physical base (QEMU virt: 0x8000_0000 on
  RV64, 0x4000_0000 on AArch64). User code runs in user mode through the page tables
  the kernel writes into that RAM; Unicorn's own MMU walks them.
- Time is instructions: ``emu_start`` runs for at most ``tick_instructions``
  instructions; reaching that count is a timer tick. Traps (syscalls, faults) are
  handled inside the interrupt hook, thread switches included, so a slice ends only at
  a tick or when the kernel stops the machine.
- A Python exception raised inside the hook is caught, the emulation stopped, and the
  exception re-raised from :meth:`run` (Unicorn would otherwise lose it).
- Instruction counts are exact, read from Unicorn's own counter (``emulator.icount``).
- Checkpoints: between runs, :meth:`UnicornMachine.export_state` gives the machine's own
  state as plain data (:class:`MachineState`: RAM pages, saved threads as bytes, the live
  CPU, the time-slice position) and :meth:`UnicornMachine.from_state` builds a fresh
  machine from it that continues exactly (``emulator.session`` adds the kernel).
- Debugging (``capsule debug``, ``capsule run --gdb``): :meth:`UnicornMachine.request_pause`
  ends a run after the current kernel entry, and instruction breakpoints are Unicorn code
  hooks on exactly their addresses (:meth:`UnicornMachine.add_breakpoint`), so a run
  without breakpoints has no code hook at all. A run that pauses returns a
  :class:`RunResult` of kind ``"pause"`` and can be resumed by calling :meth:`run` again;
  the time slice carries over, so pausing never changes what the guest does.
- Interrupts (Ctrl-C): :meth:`UnicornMachine.interrupt`, called from a signal handler,
  ends the run in progress with a result of kind ``"interrupt"`` (the run can be resumed
  like a pause); :meth:`UnicornMachine.kick`, from any thread, brings a long time slice
  back to Python so that the handler gets to run (``emulator.interrupt``).
"""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from unicorn import UC_HOOK_CODE, UC_HOOK_INTR, UC_PROT_ALL, Uc, UcError
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TB_FLUSH
from unicorn.unicorn_py3.unicorn import UcContext, uclib

from kernel.abi.arch import Arch
from kernel.kernel import Kernel
from kernel.model.page_tables import walk
from kernel.model.paging import AARCH64_4K, RV64_SV39, Access, PteKind

from .cpu import CpuBackend, Trap, TrapKind, backend_for

if TYPE_CHECKING:
    from .faultinfo import Decoder
from .fastregs import RegBatch
from .icount import InstructionCounter
from .rawhook import add_interrupt_hook

__all__ = ["MachineError", "MachineState", "RunResult", "UnicornMachine"]

_NEVER = 0xFFFF_FFFF_FFFF_FFFC
"""An ``until`` address no user pc can reach (not canonical on either architecture)."""


class MachineError(Exception):
    """The emulator itself failed (a Unicorn error outside any guest fault)."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended. ``instructions`` is None only if counting was unavailable.

    ``kind`` is ``"pause"`` when :meth:`UnicornMachine.request_pause` or a breakpoint
    ended the run early (``message`` says which; the run can be resumed), ``"interrupt"``
    when :meth:`UnicornMachine.interrupt` did (``message`` names the thread and pc; the
    run can be resumed too), ``"limit"`` when ``max_instructions`` ran, else the kernel's
    stop kind (``kernel.StopReason``). ``status`` is the guest's own exit status for a
    ``"halt"``; for the other kinds it is an internal code, and the exit status of a
    ``capsule`` command comes from ``emulator.exitstatus``. ``instructions`` counts this
    call to ``run`` only.
    """

    kind: str
    status: int
    message: str
    instructions: int | None
    kernel_entries: int
    ticks: int
    breakpoint: int | None = None
    """The breakpoint address, when a breakpoint paused the run."""


_THREAD_HEADER = struct.Struct("<QQ")
"""An exported thread starts with the (root, asid) installed when it was saved."""


_PAGE = 0x1000
_ZERO_PAGE = bytes(_PAGE)


@dataclass(frozen=True, slots=True)
class MachineState:
    """A machine's own state between two runs, plain data: what
    :meth:`UnicornMachine.from_state` needs to build a machine that continues exactly.

    ``pages`` maps a RAM offset to its 4 KiB, for the pages that are not all zero (the
    rest are). ``threads`` are the saved threads by handle and ``cpu`` the live CPU state
    (the current thread's, unsaved), both in :meth:`SavedCpu.export` form.
    ``slice_used`` is how much of the current time slice has run. Breakpoints and
    pending pauses are debugging state, not the machine's: they are not kept.
    """

    arch: Arch
    ram_size: int
    pages: dict[int, bytes]
    threads: dict[int, bytes]
    next_handle: int
    cpu: bytes
    slice_used: int


class SavedCpu:
    """A thread's whole CPU state as Unicorn holds it (``uc_context``): the user
    registers and everything else (FP/vector state, system registers), saved and
    restored by one memory copy each way. Kept in the machine's table, named by a
    handle (the kernel holds only the handle).

    ``root``/``asid`` record the address space installed when it was saved: the copy
    includes the translation-root register, so restoring it silently switches address
    space (see :meth:`UnicornMachine.load_thread`).

    Export format (measured on Unicorn 2.1.4): a ``uc_context`` is a header (sizes,
    arch/mode, two engine pointers used only by memory snapshots) followed by the CPU
    state proper (``context_size`` bytes: 1,528 on RV64, 12,600 on AArch64), which holds
    no pointers into the engine, so those bytes taken from one engine restore into
    another of the same architecture (the checkpoint tests run guests across engines to
    the same end). :meth:`export` copies out just that part; :meth:`load_bytes` copies it
    into this context, whose header stays its own engine's.
    """

    __slots__ = ("_context", "pointer", "root", "asid", "_batch", "_data", "_size")

    def __init__(self, uc: Uc, batch: RegBatch) -> None:
        self._context = UcContext(uc._uch, uc._arch, uc._mode)  # freed with this object
        self.pointer = self._context.context
        self.root = 0
        self.asid = 0
        self._batch = batch
        total = uclib.uc_context_size(uc._uch)
        self._size = ctypes.c_size_t.from_address(self.pointer.value).value
        """The CPU state proper: the first field of the header says how big it is."""
        self._data = self.pointer.value + total - self._size

    def registers(self) -> list[int]:
        """The saved user registers, seL4_UserContext order."""
        return self._batch.read_saved(self.pointer)

    def export(self) -> bytes:
        """(root, asid) and the CPU state, as :meth:`load_bytes` takes them."""
        return _THREAD_HEADER.pack(self.root, self.asid) + ctypes.string_at(self._data, self._size)

    def load_bytes(self, data: bytes) -> None:
        """Make this context the state :meth:`export` (of any engine of this
        architecture) wrote into ``data``; MachineError if it is not such a state."""
        if len(data) != _THREAD_HEADER.size + self._size:
            raise MachineError(f"thread state of {len(data)} bytes, expected "
                               f"{_THREAD_HEADER.size + self._size}")
        self.root, self.asid = _THREAD_HEADER.unpack_from(data)
        ctypes.memmove(self._data, data[_THREAD_HEADER.size:], self._size)


class UnicornMachine:
    """A machine of architecture ``arch`` with ``ram_size`` bytes of RAM."""

    def __init__(self, arch: Arch, ram_size: int) -> None:
        self.arch = arch
        self.cpu: CpuBackend = backend_for(arch)
        self.ram_base = self.cpu.abi.ram_base
        self.ram_size = ram_size
        self.paging = RV64_SV39 if arch is Arch.RISCV64 else AARCH64_4K
        self.uc: Uc = self.cpu.create()
        self.uc.mem_map(self.ram_base, ram_size, UC_PROT_ALL)
        # A zeroed page outside RAM serves as the root table of "no address space".
        self.empty_root = self.ram_base - 0x1000
        self.uc.mem_map(self.empty_root, 0x1000, UC_PROT_ALL)
        self.counter = InstructionCounter()
        self._calibrate_counter()
        self._syscall_batch, self._context_batch = self.cpu.batches(self.uc)
        self._window: list[int] | None = None
        """The current thread's a0-a7 / x0-x7 as last read in this kernel entry, or
        None: forgotten at every trap and every register write."""
        self.cpu.enter_user_mode(self.uc)
        self.root = self.empty_root
        self.asid = 0
        self._uch = self.uc._uch
        self._threads: dict[int, SavedCpu] = {}
        """The saved threads by handle (``kernel.machine``: the TCB holds the handle)."""
        self._next_handle = 1
        self._fresh = self._save_into(SavedCpu(self.uc, self._context_batch))
        """The CPU state a thread that never ran starts from (FP and other state the
        register list does not hold are zero), rather than whatever thread ran last."""
        self._decoder: Decoder | None = None
        self.kernel: Kernel | None = None
        self._pending: BaseException | None = None
        self._stopped_in_hook = False
        self._syscall_intno = self.cpu.syscall_intno
        self._hook = add_interrupt_hook(self.uc, self._on_interrupt)
        self._slice_used = 0
        """Instructions of the current time slice already run (a pause can end an
        ``emu_start`` early; the next one finishes the same slice)."""
        self._pause: str | None = None
        self._code_stop = False
        """The last ``emu_start`` was stopped by a breakpoint hook, before the
        instruction at the breakpoint ran (Unicorn has counted it already)."""
        self._breakpoints: dict[int, int] = {}
        """Breakpoint address -> Unicorn hook handle."""
        self._skip_at: int | None = None
        self._hit: int | None = None
        self._running = False
        """A :meth:`run` is in progress (read by other threads: see :meth:`kick`)."""
        self._interrupt: str | None = None
        """Why :meth:`interrupt` asked the run in progress to end, until it has."""

    def _calibrate_counter(self) -> None:
        """Run the probe program once so that the instruction counter can be located."""
        probe_at = self.empty_root
        self.uc.mem_write(probe_at, self.cpu.probe_code)
        hook = self.uc.hook_add(UC_HOOK_INTR, lambda uc, intno, data: uc.emu_stop())
        try:
            self.uc.emu_start(probe_at, _NEVER, 0, InstructionCounter.probe_limit())
            self.counter.calibrate(self.uc, self.cpu.probe_instructions)
        except UcError:
            pass  # counting stays unavailable; runs report instructions as unknown
        finally:
            self.uc.hook_del(hook)
            self.uc.mem_write(probe_at, bytes(len(self.cpu.probe_code)))
            self.cpu.flush_tlb(self.uc)

    # --- kernel.machine.Machine ---------------------------------------------------------

    def read_phys(self, paddr: int, size: int) -> bytes:
        return bytes(self.uc.mem_read(paddr, size))

    def write_phys(self, paddr: int, data: bytes) -> None:
        self.uc.mem_write(paddr, data)

    def read_syscall_window(self) -> list[int]:
        # The general IPC path asks for the caller's window several times per entry;
        # the registers cannot change between two asks unless written through this
        # machine (which forgets the copy) or the guest runs (a new trap forgets it).
        window = self._window
        if window is None:
            window = self._window = self._syscall_batch.read()
        return list(window)

    def write_syscall_window(self, values: Sequence[int]) -> None:
        self._window = None
        self._syscall_batch.write(values)

    def save_context(self) -> list[int]:
        return self._context_batch.read()

    def load_context(self, registers: Sequence[int]) -> None:
        self._window = None
        self._context_batch.write(registers)

    def save_thread(self, handle: int) -> int:
        # One copy of the CPU state (UNICORN.md: the switch floor's mechanism), instead
        # of converting the register file to Python integers at every switch; a thread
        # reuses its own buffer, so a switch allocates nothing.
        saved = self._threads.get(handle)
        if saved is None:
            handle = self._next_handle
            self._next_handle += 1
            saved = self._threads[handle] = SavedCpu(self.uc, self._context_batch)
        # _save_into inlined: this is half of every thread switch.
        status = uclib.uc_context_save(self._uch, saved.pointer)
        if status:
            raise MachineError(f"uc_context_save failed with status {status}")
        saved.root, saved.asid = self.root, self.asid
        return handle

    def _save_into(self, saved: SavedCpu) -> SavedCpu:
        status = uclib.uc_context_save(self._uch, saved.pointer)
        if status:
            raise MachineError(f"uc_context_save failed with status {status}")
        saved.root, saved.asid = self.root, self.asid
        return saved

    def thread_registers(self, handle: int) -> list[int]:
        return self._threads[handle].registers()

    def load_thread(self, handle: int, registers: Sequence[int] | None,
                    changes: dict[int, int]) -> None:
        self._window = None
        saved = self._threads.get(handle)  # no thread has handle 0
        if saved is None and registers is not None:
            saved = self._fresh
        if saved is not None:
            # _restore inlined: this is the other half of every thread switch.
            status = uclib.uc_context_restore(self._uch, saved.pointer)
            if status:
                raise MachineError(f"uc_context_restore failed with status {status}")
            if saved.root != self.root or saved.asid != self.asid:
                # The copy carried its own translation root back into the CPU; the TLB
                # still holds the other space's entries.
                self.root, self.asid = saved.root, saved.asid
                self.cpu.flush_tlb(self.uc)
        elif registers is None:
            raise MachineError(f"load_thread: no saved thread {handle} and no registers")
        if registers is not None:
            self._context_batch.write(registers)
        elif changes:
            self._context_batch.write_positions(changes)

    def _restore(self, saved: SavedCpu) -> None:
        """Make ``saved`` the CPU's state, address space included (as load_thread)."""
        status = uclib.uc_context_restore(self._uch, saved.pointer)
        if status:
            raise MachineError(f"uc_context_restore failed with status {status}")
        if saved.root != self.root or saved.asid != self.asid:
            self.root, self.asid = saved.root, saved.asid
            self.cpu.flush_tlb(self.uc)

    def forget_thread(self, handle: int) -> None:
        self._threads.pop(handle, None)

    def export_thread(self, handle: int) -> bytes:
        return self._threads[handle].export()

    def import_thread(self, handle: int, data: bytes) -> None:
        if handle <= 0:
            raise MachineError(f"import_thread: bad handle {handle}")
        saved = self._threads.get(handle) or SavedCpu(self.uc, self._context_batch)
        saved.load_bytes(data)
        self._threads[handle] = saved
        self._next_handle = max(self._next_handle, handle + 1)

    @property
    def thread_handles(self) -> list[int]:
        """The handles of the saved threads this machine keeps."""
        return list(self._threads)

    # --- checkpoints ----------------------------------------------------------------------

    def export_state(self) -> MachineState:
        """This machine's state (see :class:`MachineState`). Call between runs only: the
        CPU state is then the current thread's at a kernel exit."""
        ram = memoryview(self.uc.mem_read(self.ram_base, self.ram_size))
        pages = {offset: bytes(ram[offset:offset + _PAGE])
                 for offset in range(0, self.ram_size, _PAGE)
                 if ram[offset:offset + _PAGE] != _ZERO_PAGE}
        threads = {handle: saved.export() for handle, saved in self._threads.items()}
        return MachineState(self.arch, self.ram_size, pages, threads, self._next_handle,
                            self.export_cpu(), self._slice_used)

    @classmethod
    def from_state(cls, state: MachineState) -> UnicornMachine:
        """A fresh machine in ``state`` (from :meth:`export_state`), no kernel attached
        yet: attach the kernel whose state was captured with it, then :meth:`run`."""
        machine = cls(state.arch, state.ram_size)
        for offset, page in state.pages.items():
            machine.uc.mem_write(machine.ram_base + offset, page)
        for handle, data in state.threads.items():
            machine.import_thread(handle, data)
        machine._next_handle = max(machine._next_handle, state.next_handle)
        machine.import_cpu(state.cpu)
        machine._slice_used = state.slice_used
        return machine

    def export_cpu(self) -> bytes:
        """The CPU's live state (the current thread's, unsaved), as :meth:`export_thread`
        gives a saved one; the machine's table is not touched."""
        return self._save_into(SavedCpu(self.uc, self._context_batch)).export()

    def import_cpu(self, data: bytes) -> None:
        """Make ``data`` (from :meth:`export_cpu`) the CPU's live state, address space
        included (installed and its stale translations dropped)."""
        saved = SavedCpu(self.uc, self._context_batch)
        saved.load_bytes(data)
        self._window = None
        self._restore(saved)
        self.cpu.flush_tlb(self.uc)

    def set_address_space(self, root_paddr: int, asid: int) -> None:
        root = root_paddr or self.empty_root
        if root != self.root or asid != self.asid:
            previous = self.asid
            self.root, self.asid = root, asid
            self.cpu.set_address_space(self.uc, root, asid, previous)

    def page_tables_changed(self) -> None:
        self.cpu.flush_tlb(self.uc)

    def mappings_changed(self, asid: int) -> None:
        # Unicorn's TLB holds the installed address space only (every switch to another
        # one flushes it), so a change to any other address space needs no flush.
        if asid == self.asid:
            self.cpu.flush_tlb(self.uc)

    # --- debugging --------------------------------------------------------------------------

    def request_pause(self, reason: str) -> None:
        """End the current :meth:`run` once the kernel entry in progress is complete.

        Callable only from inside the run (a kernel observer); ``run`` then returns a
        result of kind ``"pause"`` with ``reason`` as its message.
        """
        self._pause = reason
        self.uc.emu_stop()

    def interrupt(self, reason: str) -> bool:
        """End the run in progress as soon as possible, with a result of kind
        ``"interrupt"``; False (and nothing happens) when no run is in progress.

        Call it on the thread that runs the machine (a signal handler does: Python runs
        it there, inside the machine's hook or between two slices); from other threads,
        :meth:`kick`. A kernel entry in progress completes first: the kernel is never
        cut mid-entry.
        """
        if not self._running:
            return False
        self._interrupt = reason
        self.uc.emu_stop()
        return True

    def kick(self) -> None:
        """Make the run in progress come back to Python at once, then carry on.

        Callable from any thread: it calls ``uc_emu_stop``, as Unicorn's own
        ``emu_start`` timeout does from its timer thread. Harmless on its own: the time
        slice resumes where it stopped, so the guest sees nothing (when instructions
        cannot be counted, the slice ends early). Its use: a signal handler waiting to
        run on the machine's thread while the guest computes in C for a long slice
        (``emulator.interrupt``).
        """
        if self._running:
            self.uc.emu_stop()

    @property
    def breakpoints(self) -> frozenset[int]:
        return frozenset(self._breakpoints)

    def add_breakpoint(self, address: int) -> bool:
        """Pause a run before any instruction at virtual ``address`` (in any address
        space) executes. False if there already is one. Call between runs only."""
        if address in self._breakpoints:
            return False
        self._breakpoints[address] = self.uc.hook_add(
            UC_HOOK_CODE, self._on_breakpoint, begin=address, end=address)
        # Code already translated carries no call to the new hook: retranslate.
        self.flush_translations()
        return True

    def remove_breakpoint(self, address: int) -> bool:
        """Remove the breakpoint at ``address``; False if there is none."""
        handle = self._breakpoints.pop(address, None)
        if handle is None:
            return False
        self.uc.hook_del(handle)
        self.flush_translations()
        return True

    def flush_translations(self) -> None:
        """Drop all translated code: needed after code bytes change in RAM (Unicorn does
        not notice writes to RAM that holds translated code) or hooks change."""
        self.uc.ctl(UC_CTL_TB_FLUSH, UC_CTL_IO_WRITE)

    def _on_breakpoint(self, uc: Uc, address: int, _size: int, _data: object) -> None:
        if address == self._skip_at:
            self._skip_at = None  # resuming from this very breakpoint
            return
        self._pause = f"breakpoint at {address:#x}"
        self._code_stop, self._hit = True, address
        uc.emu_stop()

    # --- running --------------------------------------------------------------------------

    def attach(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def run(self, max_instructions: int | None = None) -> RunResult:
        """Run until the kernel stops the machine, ``max_instructions`` have run, or a
        pause (breakpoint, :meth:`request_pause`). A run starting at a breakpoint's
        address does not stop there before executing it."""
        kernel = self.kernel
        if kernel is None:
            raise MachineError("no kernel attached")
        self._interrupt = None
        self._running = True
        try:
            return self._run(kernel, max_instructions)
        finally:
            self._running = False
            self._interrupt = None

    def _run(self, kernel: Kernel, max_instructions: int | None) -> RunResult:
        tick = kernel.config.tick_instructions
        total: int | None = 0
        self._window = None  # registers may have been written directly between runs
        pc = self.uc.reg_read(self.cpu.pc_reg)
        self._skip_at = pc if pc in self._breakpoints else None
        while kernel.stop is None:
            if self._interrupt is not None:
                return self._interrupted(total)
            if self._slice_used >= tick:
                self._slice_used = 0
                kernel.timer_tick()
                if kernel.current is None and kernel.stop is None:
                    raise MachineError("kernel has no current thread but did not stop")
                continue
            limit = tick - self._slice_used
            if max_instructions is not None and total is not None:
                if total >= max_instructions:
                    return self._result("limit", 6, f"instruction limit {max_instructions} reached", total)
                limit = min(limit, max_instructions - total)
            pc = self.uc.reg_read(self.cpu.pc_reg)
            self._stopped_in_hook = self._code_stop = False
            self._hit = None
            try:
                self.uc.emu_start(pc, _NEVER, 0, limit)
            except UcError as error:
                if self._pending is None:
                    self._bus_error(error)
            self._window = None  # the guest ran
            self._skip_at = None
            executed = self.counter.read(limit)
            if executed is not None and self._code_stop:
                executed = max(0, executed - 1)  # the breakpoint's instruction did not run
            if executed is None:  # counting unavailable: each full emu_start is a slice
                if not (self._stopped_in_hook or self._code_stop or self._pause
                        or self._interrupt):
                    self._slice_used = tick
            else:
                self._slice_used += executed
            total = None if executed is None or total is None else total + executed
            if self._pending is not None:
                pending, self._pending, self._pause = self._pending, None, None
                raise pending
            if self._interrupt is not None and kernel.stop is None:
                self._pause = None
                return self._interrupted(total)
            if self._pause is not None and kernel.stop is None:
                reason, self._pause = self._pause, None
                result = self._result("pause", 0, reason, total)
                return replace(result, breakpoint=self._hit)
            self._pause = None
        stop = kernel.stop
        return self._result(stop.kind, stop.status, stop.message, total)

    def _interrupted(self, total: int | None) -> RunResult:
        assert self.kernel is not None
        current = self.kernel.current
        where = "no current thread" if current is None else f'thread "{current.name}"'
        pc = self.uc.reg_read(self.cpu.pc_reg)
        return self._result("interrupt", 0, f"{self._interrupt}: {where} at pc {pc:#x}", total)

    def _result(self, kind: str, status: int, message: str, total: int | None) -> RunResult:
        assert self.kernel is not None
        return RunResult(kind, status, message, total, self.kernel.kernel_entries, self.kernel.ticks)

    def _bus_error(self, error: UcError) -> None:
        """Unicorn refused an access outside any mapped physical memory."""
        kernel = self.kernel
        assert kernel is not None
        kernel.stop_with_message(f"machine error at pc {self.uc.reg_read(self.cpu.pc_reg):#x}: {error}")

    def _on_interrupt(self, intno: int) -> None:
        self._window = None  # the guest ran since the last kernel entry
        kernel = self.kernel
        try:
            assert kernel is not None
            if intno == self._syscall_intno:
                # The hot path: no pc read, no classification.
                kernel.syscall()
            else:
                self._dispatch(self.cpu.classify(self.uc, intno))
        except BaseException as error:  # carried out of Unicorn, re-raised by run()
            self._pending = error
            self._stopped_in_hook = True
            self.uc.emu_stop()
            return
        if kernel.stop is not None:
            self._stopped_in_hook = True
            self.uc.emu_stop()

    def _dispatch(self, trap: Trap) -> None:
        kernel = self.kernel
        assert kernel is not None
        if trap.kind is TrapKind.SYSCALL:
            kernel.syscall()
            return
        # Faults: the thread restarts at the faulting instruction once handled.
        self.uc.reg_write(self.cpu.pc_reg, trap.fault_pc)
        if trap.kind is TrapKind.PAGE_FAULT:
            address, access = self._fault_address(trap)
            kernel.vm_fault(address, access, self._fsr(trap, address, access))
        else:
            kernel.user_exception(*self._exception_number(trap))

    def _fault_address(self, trap: Trap) -> tuple[int, Access]:
        if trap.access is Access.EXECUTE:
            return trap.fault_pc, Access.EXECUTE
        code = self._fetch_code(trap.fault_pc)
        if self._decoder is None:  # capstone loads only when a guest first faults
            from .faultinfo import Decoder

            self._decoder = Decoder(self.arch)
        decoded = self._decoder.data_access(self.uc, code, trap.fault_pc, trap.access)
        return decoded.address, decoded.access

    def _fetch_code(self, vaddr: int) -> bytes:
        """The 4 bytes at user address ``vaddr`` (fewer if they cross into no mapping)."""
        out = b""
        for offset in range(4):
            result = walk(self, self.paging, self.root, vaddr + offset)
            if result.kind is not PteKind.LEAF:
                break
            out += self.read_phys(result.paddr, 1)
        return out

    def _fsr(self, trap: Trap, address: int, access: Access) -> int:
        """seL4's FSR word: on RISC-V the access-fault cause seL4's handleVMFault reports
        for both page and access faults (instruction 1, load 5, store 7); the ESR_EL1
        syndrome on AArch64."""
        if self.arch is Arch.RISCV64:
            return {Access.EXECUTE: 1, Access.READ: 5, Access.WRITE: 7}[access]
        # Table levels count from the root; the architecture's from L0. The root of the
        # four-level (48-bit) walk is L0, so the two agree; a shorter walk would start lower.
        first = 4 - self.paging.levels
        if address >= self.paging.va_limit:
            status = 0b000100 | first  # outside the TTBR0 range: translation fault
        else:
            result = walk(self, self.paging, self.root, address)
            level = first + result.level
            if result.kind is PteKind.INVALID:
                status = 0b000100 | level  # translation fault, level n
            else:
                status = 0b001100 | level  # permission fault, level n
        if access is Access.EXECUTE:
            return 0x20 << 26 | 1 << 25 | status
        return 0x24 << 26 | 1 << 25 | (1 << 6 if access is Access.WRITE else 0) | status

    def _exception_number(self, trap: Trap) -> tuple[int, int]:
        """(Number, Code) of a UserException: scause on RISC-V; ESR (EC unknown) on AArch64."""
        if self.arch is Arch.RISCV64:
            return trap.cause, 0
        return 1 << 25, 0  # ESR_EL1 for an undefined instruction: EC 0, IL 1
