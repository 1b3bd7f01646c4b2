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
- Every memory access the guest can make is the guest's business, never the machine's
  end: an access that its page tables allow to a physical address with nothing behind
  it (a device frame where the platform has no device) ends ``emu_start`` with a
  Unicorn error, which :meth:`CpuBackend.classify_error` turns back into a trap for the
  kernel (a VMFault), as the bus error it is on hardware.
- The pc's alignment is checked where Unicorn does not (it would run instruction
  words read at any address): a block translated at a misaligned pc is stopped before
  it runs (:meth:`UnicornMachine._on_new_block`, called only when Unicorn translates,
  so it costs nothing in steady state).
- Instruction counts are exact, read from Unicorn's own counter (``emulator.icount``)
  or counted by block (``emulator.blockcount``).
- Unicorn's check after every guest load and store is off while nothing needs it
  (``emulator.exitchecks``; :meth:`UnicornMachine._exit_checks_needed` says what does).
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
from dataclasses import replace
from typing import TYPE_CHECKING, Final

from unicorn import UC_HOOK_CODE, UC_HOOK_EDGE_GENERATED, UC_HOOK_INTR, UC_PROT_ALL, Uc, UcError
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TB_FLUSH
from unicorn.unicorn_py3.unicorn import UcContext, uclib

from kernel.abi.arch import Arch
from kernel.abi.constants import PAGE_BITS
from kernel.boot import PHYS_TOP
from kernel.kernel import Kernel
from kernel.machine import Machine
from kernel.model.page_tables import walk
from kernel.model.paging import AARCH64_4K, RV64_SV39, Access, PteKind
from kernel.records import dataclass

from .blockcount import BlockCounter, BlockCountState, block_library
from .counters import Clock, Counters
from .cpu import CpuBackend, Trap, TrapKind, backend_for

if TYPE_CHECKING:
    from .faultinfo import Decoder
from .exitchecks import ExitChecks
from .fastregs import RegBatch
from .icount import InstructionCounter
from .liveregs import LiveWindow, locate_registers, locate_state, locate_window
from .physmem import PhysicalMemory
from .rawhook import add_interrupt_hook
from .translation import TranslationKeeper

__all__ = ["MachineError", "MachineState", "RunResult", "UnicornMachine"]

_NEVER: Final = 0xFFFF_FFFF_FFFF_FFFC
"""An ``until`` address no user pc can reach (not canonical on either architecture)."""
_NO_DEADLINE: Final = 1 << 64
"""An MCS timer that has fired and was not set again: it never fires."""
_LONGEST_RUN: Final = 1 << 40
"""The most instructions one ``emu_start`` runs without a deadline (a count is always
given: without one Unicorn does not count)."""
_WORD_MASK: Final = (1 << 64) - 1
"""A register's bits: values are stored modulo 2**64, as Unicorn's own writes store them."""

_ESR_IL: Final = 1 << 25
"""ESR_EL1.IL, set (RES1) for the exception classes capsule reports."""
_ESR_EC_PC_ALIGNMENT: Final = 0x22
_ESR_FP_ACCESS: Final = 0x07 << 26 | 1 << 25 | 1 << 24 | 0xE << 20
"""ESR_EL1 of an FP/SIMD access trapped by CPACR_EL1.FPEN from AArch64 state: EC 0x07,
IL, CV 1 with COND 0xE (as QEMU reports it, and what seL4 passes on under QEMU)."""


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


_THREAD_HEADER: Final = struct.Struct("<QQ")
"""An exported thread starts with the (root, asid) installed when it was saved."""


_PAGE: Final = 0x1000
_ZERO_PAGE: Final = bytes(_PAGE)
_EXPORT_CHUNK: Final = 1 << 20
"""RAM is scanned for non-zero pages this many bytes at a time."""
_ZERO_CHUNK: Final = bytes(_EXPORT_CHUNK)


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
    retired: int = 0
    """Guest instructions retired since boot (what the counters count)."""
    counters: tuple[int, ...] = ()
    """The performance counters' state (``emulator.counters``)."""
    clock: int = 0
    """The MCS clock (:meth:`UnicornMachine.time_now`)."""
    deadline: int | None = None
    """The MCS timer's deadline; None while the periodic tick runs."""
    device_mapped: bool = True
    """Whether a page table has pointed outside RAM since boot, which keeps Unicorn's
    per-access exit check on (``emulator.exitchecks``). True, the safe answer, for a
    state saved before this was recorded."""


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

    __slots__ = ("_context", "pointer", "root", "asid", "fpu", "_batch", "_data", "_size",
                 "view", "words")

    def __init__(self, uc: Uc, batch: RegBatch) -> None:
        self._context = UcContext(uc._uch, uc._arch, uc._mode)  # freed with this object
        self.pointer = self._context.context
        self.root = 0
        self.asid = 0
        self.fpu: bool | None = None
        """Whether the saved state lets FP instructions run (None: not known, after an
        import), so that a switch writes the enable bit only when it changes."""
        self._batch = batch
        total = uclib.uc_context_size(uc._uch)
        self._size = ctypes.c_size_t.from_address(self.pointer.value).value
        """The CPU state proper: the first field of the header says how big it is."""
        self._data = self.pointer.value + total - self._size
        self.view = memoryview((ctypes.c_char * self._size).from_address(self._data)).cast("B")
        """The CPU state proper, where a switch by memory copy puts it (``LiveState``)."""
        self.words = self.view.cast("Q")
        """The same bytes as 64-bit words, where the machine's register layout reads."""

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
        self.fpu = None
        ctypes.memmove(self._data, data[_THREAD_HEADER.size:], self._size)


class UnicornMachine(Machine):
    """A machine of architecture ``arch`` with ``ram_size`` bytes of RAM."""

    def __init__(self, arch: Arch, ram_size: int) -> None:
        self.arch = arch
        self.cpu: CpuBackend = backend_for(arch)
        self.ram_base = self.cpu.abi.ram_base
        self.ram_size = ram_size
        self.paging = RV64_SV39 if arch is Arch.RISCV64 else AARCH64_4K
        self.uc: Uc = self.cpu.create()
        # RAM is the first mapping, so its bytes are at RAM offset 0 (TranslationKeeper).
        self.uc.mem_map(self.ram_base, ram_size, UC_PROT_ALL)
        # A zeroed page outside RAM serves as the root table of "no address space". It
        # lies at the end of the physical space boot hands out as device untypeds, so no
        # guest frame can reach it (a device frame finds nothing there, as it should).
        self.empty_root = PHYS_TOP[arch]
        self.uc.mem_map(self.empty_root, 0x1000, UC_PROT_ALL)
        self.counter = InstructionCounter()
        self._calibrate_counter()
        self.translations = TranslationKeeper(self.uc, arch.name.lower(), self.ram_base, ram_size)
        self.translations.calibrate(self.cpu.probe_code, self.cpu.patched_probe_code,
                                    self.cpu.probe_register, (2, 1))
        self.translations.skip_rescans()
        self.exit_checks = ExitChecks(self.uc)
        self.exit_checks.calibrate(self.uc, self.ram_base, self.cpu.load_probe_code,
                                   self.cpu.probe_register, self.cpu.load_probe_address)
        self._device_mapped = False
        """Whether a page table has held an entry pointing outside RAM (a device frame,
        where nothing answers): the exit checks stay on from then on."""
        self.memory = PhysicalMemory(self.uc, self.translations, self.ram_base, ram_size)
        self._syscall_batch, self._context_batch = self.cpu.batches(self.uc)
        self._window: list[int] | None = None
        """The current thread's a0-a7 / x0-x7 as last read in this kernel entry, or
        None: forgotten at every trap and every register write."""
        self.cpu.enter_user_mode(self.uc)
        # a0-a7 / x0-x7 where the CPU keeps them, when that can be found (it is checked);
        # otherwise the batch calls. Once the CPU is in user mode: AArch64 keeps its X
        # registers apart from the AArch32 ones it starts in.
        self._syscall_window: RegBatch | LiveWindow = (
            locate_window(self.uc, self.cpu.syscall_regs) or self._syscall_batch)
        self._fpu_live: bool | None = True
        """Whether the live CPU state lets FP instructions run (enter_user_mode enables
        them; None: not known)."""
        self._fp_watch: int | None = None
        """The code hook that emulates the FP trap (back ends with fpu_trap_emulated)."""
        self._fp_words: dict[tuple[int, int], bool] = {}
        """(root, vaddr) -> whether the instruction there is an FP one, while watching."""
        self._fp_trap: int | None = None
        """The pc of the FP instruction the last ``emu_start`` stopped before."""
        self.root = self.empty_root
        self.asid = 0
        self._uch = self.uc._uch
        self._pc_word = ctypes.c_uint64()
        self._pc_word_ref = ctypes.byref(self._pc_word)
        """Where :meth:`_read_pc` has ``uc_reg_read`` put the pc."""
        self._threads: dict[int, SavedCpu] = {}
        """The saved threads by handle (``kernel.machine``: the TCB holds the handle)."""
        self._next_handle = 1
        self._state: memoryview | None = self._locate_state()
        """The live CPU state, when it can be found (it is checked): thread switches then
        copy it with no call into Unicorn (``emulator.liveregs.LiveState``)."""
        self._layout: tuple[int, ...] = ()
        """For each user register (seL4_UserContext order), its word in the CPU state, or
        -1 (``emulator.liveregs.locate_registers``); empty without a live state."""
        self._state_words: memoryview | None = None
        """The live state as 64-bit words (with a layout)."""
        self._unlocated: tuple[int, ...] = ()
        """The positions of the user registers the layout has no word for."""
        self._unlocated_batch: RegBatch | None = None
        """Those registers, read through Unicorn."""
        if self._state is not None:
            self._layout = locate_registers(self.uc, self.cpu.context_regs, self._state)
            self._state_words = self._state.cast("Q")
            self._unlocated = tuple(i for i, word in enumerate(self._layout) if word < 0)
            self._unlocated_batch = RegBatch(
                self.uc, [self.cpu.context_regs[i] for i in self._unlocated])
        self._fresh = self._save_into(SavedCpu(self.uc, self._context_batch))
        """The CPU state a thread that never ran starts from (FP and other state the
        register list does not hold are zero), rather than whatever thread ran last."""
        self._decoder: Decoder | None = None
        self.kernel: Kernel | None = None
        self._pending: BaseException | None = None
        self._stopped_in_hook = False
        self._syscall_intno = self.cpu.syscall_intno
        self._hook = add_interrupt_hook(self.uc, self._on_interrupt)
        self._misaligned: int | None = None
        """The misaligned pc the last ``emu_start`` stopped at, before running it."""
        self._alignment_mask = self.cpu.instruction_alignment - 1
        # Unicorn reports a new block only once some block has run to its end on this
        # engine (one left by an exception does not count): the first block of the
        # counter's probe run (above) did, before any guest instruction.
        self.uc.hook_add(UC_HOOK_EDGE_GENERATED, self._on_new_block)
        try:
            library = block_library() if self.counter.available else None
        except OSError as error:
            raise MachineError(f"cannot load the block counter: {error}") from None
        self._blocks: BlockCounter | None = None if library is None else BlockCounter(
            self.uc, library, self.cpu.fixed_instruction_width, self._code_bytes,
            self.memory.ram_location())
        """Counts by translated block (``emulator.blockcount``), when the native hook is
        built; None: Unicorn's own counter (``counter``)."""
        self._block_state: BlockCountState | None = (
            None if self._blocks is None else self._blocks.state)
        if self._blocks is not None:
            self._blocks.set_root(self.root)
        self._partial = False
        """The ``emu_start`` in progress runs the start of a block alone (``_run_part``):
        a trap ends it."""
        self._tick_due = -1
        """The block counter's count at which a quiet timer tick is due that has not
        been taken yet (:meth:`_take_late_tick`), or -1."""
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
        self.ran: int | None = 0
        """Guest instructions of the latest :meth:`run` so far (None: counting
        unavailable), kept up to date at every slice: it is what that run executed when
        an exception a kernel observer raised ended it."""
        self._interrupt: str | None = None
        """Why :meth:`interrupt` asked the run in progress to end, until it has."""
        self._retired_before = 0
        """Guest instructions retired since boot before the latest :meth:`run`."""
        self._counters: Counters | None = None
        """The user-mode counter instructions (set by :meth:`attach`)."""
        self._counters_state: tuple[int, ...] = ()
        """Counter state from a snapshot, for :meth:`attach` to take up."""
        self._clock_base = 0
        """The clock (:meth:`time_now`) when the ``emu_start`` in progress began, or
        after the last one ended."""
        self._in_emu = False
        """An ``emu_start`` is in progress: its count so far is part of the clock."""
        self._deadline: int | None = None
        """The MCS kernel's one-shot timer (:meth:`set_timer`); None: the periodic
        tick every ``tick_instructions``, as without MCS."""
        self._limit_end = 0
        """The clock at which the ``emu_start`` in progress stops by its count."""
        self._refresh_exit_checks()

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
        return self.memory.read(paddr, size)

    def write_phys(self, paddr: int, data: bytes) -> None:
        self.memory.write(paddr, data)

    def read_table_entry(self, table_paddr: int, index: int) -> int:
        return self.memory.read_table_entry(table_paddr, index)

    def read_table(self, table_paddr: int) -> tuple[int, ...]:
        return self.memory.read_table(table_paddr)

    def write_table_entry(self, table_paddr: int, index: int, entry: int) -> None:
        self.memory.write_table_entry(table_paddr, index, entry)
        if entry and not self._device_mapped:
            target = self.paging.target(entry)
            if target >= 0 and not self.ram_base <= target < self.ram_base + self.ram_size:
                self._device_mapped = True
                self._refresh_exit_checks()

    def read_syscall_window(self) -> list[int]:
        # The general IPC path asks for the caller's window several times per entry;
        # the registers cannot change between two asks unless written through this
        # machine (which forgets the copy) or the guest runs (a new trap forgets it).
        window = self._window
        if window is None:
            window = self._window = self._syscall_window.read()
        return list(window)

    def write_syscall_window(self, values: Sequence[int]) -> None:
        self._window = None
        self._syscall_window.write(values)

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
        state = self._state
        if state is not None:
            saved.view[:] = state
        else:
            self._api_save(saved)
        saved.root, saved.asid, saved.fpu = self.root, self.asid, self._fpu_live
        return handle

    def _save_into(self, saved: SavedCpu) -> SavedCpu:
        if self._state is not None:
            saved.view[:] = self._state
        else:
            self._api_save(saved)
        saved.root, saved.asid, saved.fpu = self.root, self.asid, self._fpu_live
        return saved

    def _api_save(self, saved: SavedCpu) -> None:
        """The CPU state into ``saved`` through ``uc_context_save`` (no live state)."""
        status = uclib.uc_context_save(self._uch, saved.pointer)
        if status:
            raise MachineError(f"uc_context_save failed with status {status}")

    def _api_restore(self, saved: SavedCpu) -> None:
        """``saved`` into the CPU through ``uc_context_restore`` (no live state)."""
        status = uclib.uc_context_restore(self._uch, saved.pointer)
        if status:
            raise MachineError(f"uc_context_restore failed with status {status}")

    def _locate_state(self) -> memoryview | None:
        """The live CPU state (``locate_state``), found through the live register window;
        None without one or if it does not verify."""
        window = self._syscall_window
        if not isinstance(window, LiveWindow):
            return None
        probe = SavedCpu(self.uc, self._context_batch)

        def save() -> memoryview:
            self._api_save(probe)
            return probe.view

        state = locate_state(self.uc, self.cpu.syscall_regs, window, save)
        return state.view if state is not None else None

    def thread_registers(self, handle: int) -> list[int]:
        saved = self._threads[handle]
        layout = self._layout
        if not layout:
            return saved.registers()
        words = saved.words
        values = [words[word] if word >= 0 else 0 for word in layout]
        batch = self._unlocated_batch
        if batch is not None and self._unlocated:
            for position, value in zip(self._unlocated, batch.read_saved(saved.pointer)):
                values[position] = value
        return values

    def load_thread(self, handle: int, registers: Sequence[int] | None,
                    changes: dict[int, int]) -> None:
        self._window = None
        saved = self._threads.get(handle)  # no thread has handle 0
        if saved is None and registers is not None:
            saved = self._fresh
        if saved is not None:
            # _restore inlined: this is the other half of every thread switch.
            state = self._state
            if state is not None:
                state[:] = saved.view
            else:
                self._api_restore(saved)
            self._fpu_live = saved.fpu
            if saved.root != self.root or saved.asid != self.asid:
                # The copy carried its own translation root back into the CPU; the TLB
                # still holds the other space's entries.
                self.root, self.asid = saved.root, saved.asid
                self.cpu.flush_tlb(self.uc)
                if self._blocks is not None:
                    self._blocks.set_root(saved.root)
        elif registers is None:
            raise MachineError(f"load_thread: no saved thread {handle} and no registers")
        if registers is not None:
            self._context_batch.write(registers)
        elif changes:
            words = self._state_words
            if words is None:
                self._context_batch.write_positions(changes)
                return
            # The registers the kernel changed while the thread waited (a reply's
            # message, a badge) go straight into the state just copied in.
            layout = self._layout
            unlocated: dict[int, int] | None = None
            for position, value in changes.items():
                word = layout[position]
                if word >= 0:
                    words[word] = value & _WORD_MASK  # as the batch's c_uint64 stores it
                else:
                    if unlocated is None:
                        unlocated = {}
                    unlocated[position] = value
            if unlocated is not None:
                self._context_batch.write_positions(unlocated)

    def _restore(self, saved: SavedCpu) -> None:
        """Make ``saved`` the CPU's state, address space included (as load_thread)."""
        if self._state is not None:
            self._state[:] = saved.view
        else:
            self._api_restore(saved)
        self._fpu_live = saved.fpu
        if saved.root != self.root or saved.asid != self.asid:
            self.root, self.asid = saved.root, saved.asid
            self.cpu.flush_tlb(self.uc)
            if self._blocks is not None:
                self._blocks.set_root(saved.root)

    def set_fpu_enabled(self, enabled: bool) -> None:
        # Compared first: this runs at every thread switch, the write only on a change.
        if enabled != self._fpu_live:
            self.cpu.set_fpu(self.uc, enabled)
            self._fpu_live = enabled
        if self.cpu.fpu_trap_emulated and (self._fp_watch is None) != enabled:
            self._watch_fp(not enabled)

    def _watch_fp(self, on: bool) -> None:
        """Look at every instruction before it runs (a code hook over all addresses)
        while a thread whose FPU is disabled runs, where Unicorn would not trap: costly
        (a Python call per instruction), and only for such threads."""
        if on:
            self._fp_words.clear()
            self._fp_watch = self.uc.hook_add(UC_HOOK_CODE, self._on_fp_check, begin=1, end=0)
        else:
            assert self._fp_watch is not None
            self.uc.hook_del(self._fp_watch)
            self._fp_watch = None
        self.exit_checks.set_on(self._exit_checks_needed())
        self.flush_translations()

    def _on_fp_check(self, uc: Uc, address: int, _size: int, _data: object) -> None:
        key = (self.root, address)
        is_fp = self._fp_words.get(key)
        if is_fp is None:
            code = self._fetch_code(address)
            is_fp = self._fp_words[key] = len(code) == 4 and self.cpu.is_fp_instruction(
                int.from_bytes(code, "little"))
        if is_fp:
            self._fp_trap = address
            self._code_stop = True
            uc.emu_stop()

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
        pages: dict[int, bytes] = {}
        # In chunks: a guest with gigabytes of RAM that touched little costs the host
        # what it touched (plus one chunk), not a copy of all of it.
        for start in range(0, self.ram_size, _EXPORT_CHUNK):
            chunk = self.uc.mem_read(self.ram_base + start,
                                     min(_EXPORT_CHUNK, self.ram_size - start))
            if chunk == _ZERO_CHUNK[:len(chunk)]:
                continue
            view = memoryview(chunk)
            for offset in range(0, len(chunk), _PAGE):
                page = view[offset:offset + _PAGE]
                if page != _ZERO_PAGE:
                    pages[start + offset] = bytes(page)
        threads = {handle: saved.export() for handle, saved in self._threads.items()}
        counters = () if self._counters is None else self._counters.export(self._clock(0))
        return MachineState(self.arch, self.ram_size, pages, threads, self._next_handle,
                            self.export_cpu(), self._slice_used, self._retired_before,
                            counters, self._clock_base, self._deadline, self._device_mapped)

    @classmethod
    def from_state(cls, state: MachineState) -> UnicornMachine:
        """A fresh machine in ``state`` (from :meth:`export_state`), no kernel attached
        yet: attach the kernel whose state was captured with it, then :meth:`run`."""
        machine = cls(state.arch, state.ram_size)
        # Its page tables come back as RAM bytes, not through write_table_entry.
        machine._device_mapped = state.device_mapped
        machine._refresh_exit_checks()
        for offset, page in state.pages.items():
            machine.uc.mem_write(machine.ram_base + offset, page)
        for handle, data in state.threads.items():
            machine.import_thread(handle, data)
        machine._next_handle = max(machine._next_handle, state.next_handle)
        machine.import_cpu(state.cpu)
        machine._slice_used = state.slice_used
        machine._retired_before = state.retired
        machine._counters_state = state.counters
        machine._clock_base = state.clock
        machine._deadline = state.deadline
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
        self._flush_tlb()

    def set_address_space(self, root_paddr: int, asid: int) -> None:
        root = root_paddr or self.empty_root
        if root != self.root or asid != self.asid:
            previous = self.asid
            self.root, self.asid = root, asid
            self.cpu.set_address_space(self.uc, root, asid, previous)
            if self._blocks is not None:
                self._blocks.set_root(root)

    def page_tables_changed(self) -> None:
        self._flush_tlb()

    def mappings_changed(self, asid: int) -> None:
        # Unicorn's TLB holds the installed address space only (every switch to another
        # one flushes it), so a change to any other address space needs no flush.
        if asid == self.asid:
            self._flush_tlb()

    def page_unmapped(self, asid: int, vaddr: int, size_bits: int) -> None:
        if asid == self.asid:
            if size_bits == PAGE_BITS:
                self.cpu.flush_tlb_page(self.uc, vaddr)
                if self._blocks is not None:
                    self._blocks.tlb_flushed()
            else:
                self._flush_tlb()

    def _flush_tlb(self) -> None:
        """Flush Unicorn's TLB, and the block counter's code pages with it."""
        self.cpu.flush_tlb(self.uc)
        if self._blocks is not None:
            self._blocks.tlb_flushed()

    # --- the MCS timer ----------------------------------------------------------------------

    def time_now(self) -> int:
        """The clock: instructions retired since boot, plus skipped idle time. Inside a
        run's hook, the trapping instruction counts as retired."""
        if self._in_emu:
            return self._clock_base + self._counted()
        return self._clock_base

    def set_timer(self, deadline: int) -> None:
        """From now on the timer is one-shot (see ``kernel.machine.Machine``). A
        deadline before the end of the ``emu_start`` in progress ends it, so that the
        next one stops at the deadline."""
        self._deadline = deadline
        if self._in_emu and deadline < self._limit_end:
            self._stopped_in_hook = True
            self.uc.emu_stop()

    def advance_time(self, to: int) -> None:
        now = self.time_now()
        if to > now:
            self._clock_base += to - now
            # The emu_start under way (if any) still stops after its count of
            # instructions, now that much later on the clock: set_timer compares with it.
            self._limit_end += to - now

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
        self.exit_checks.set_on(self._exit_checks_needed())
        self.flush_translations()
        return True

    def remove_breakpoint(self, address: int) -> bool:
        """Remove the breakpoint at ``address``; False if there is none."""
        handle = self._breakpoints.pop(address, None)
        if handle is None:
            return False
        self.uc.hook_del(handle)
        self.exit_checks.set_on(self._exit_checks_needed())
        self.flush_translations()
        return True

    def _exit_checks_needed(self) -> bool:
        """Whether anything needs Unicorn's check after every load and store
        (``emulator.exitchecks``): its own instruction counter, a code hook, or a
        mapping of a physical address where nothing answers."""
        return (self._blocks is None or self._fp_watch is not None or bool(self._breakpoints)
                or self._device_mapped)

    def _refresh_exit_checks(self) -> None:
        if self.exit_checks.set_on(self._exit_checks_needed()):
            self.flush_translations()

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
        self._counters = Counters(self.arch, kernel.config)
        self._counters.restore(self._counters_state)

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
            self._retired_before += self.ran or 0

    def _run(self, kernel: Kernel, max_instructions: int | None) -> RunResult:
        tick = kernel.config.tick_instructions
        total: int | None = 0
        self.ran = 0
        self._window = None  # registers may have been written directly between runs
        pc = self.uc.reg_read(self.cpu.pc_reg)
        self._skip_at = pc if pc in self._breakpoints else None
        # The kernel sets its stop inside the calls this loop makes. Tested through a
        # local, so that no test of it here can be taken to hold after those calls (by a
        # type checker, and by mypyc, which would compile that assumption into a check).
        while (stop := kernel.stop) is None:
            if self._interrupt_requested():
                return self._interrupted(total)
            deadline = self._deadline
            if deadline is None:
                if self._slice_used >= tick:
                    self._slice_used = 0
                    kernel.timer_tick()
                    if kernel.current is None and kernel.stop is None:
                        raise MachineError("kernel has no current thread but did not stop")
                    continue
                limit = tick - self._slice_used
            else:
                if deadline <= self._clock_base:
                    self._deadline = _NO_DEADLINE  # one-shot: until the kernel sets it again
                    kernel.timer_tick()
                    if kernel.current is None and kernel.stop is None:
                        raise MachineError("kernel has no current thread but did not stop")
                    continue
                limit = min(deadline - self._clock_base, _LONGEST_RUN)
            cap = _LONGEST_RUN
            if max_instructions is not None and total is not None:
                if total >= max_instructions:
                    return self._result("limit", 6, f"instruction limit {max_instructions} reached", total)
                cap = max_instructions - total
                limit = min(limit, cap)
            at_tick = deadline is None and limit == tick - self._slice_used
            trap = self._emulate(limit, tick if at_tick else 0, cap)
            blocks = self._blocks
            executed: int | None
            if blocks is not None:
                executed = blocks.current()
            else:
                executed = self.counter.read(limit)
                if executed is not None and self._code_stop:
                    executed = max(0, executed - 1)  # the breakpoint's instruction did not run
            self._clock_base += limit if executed is None else executed
            if executed is None:  # counting unavailable: each full emu_start is a slice
                if not (self._stopped_in_hook or self._code_stop or self._pause
                        or self._interrupt_requested()):
                    self._slice_used = tick
            else:
                self._slice_used += executed
            total = None if executed is None or total is None else total + executed
            self.ran = total
            if self._pending is not None:
                pending, self._pending, self._pause = self._pending, None, None
                raise pending
            if trap is not None:
                # A trap that ended emu_start rather than reaching the interrupt hook:
                # the same kernel entry, made between two runs of the guest.
                self._dispatch(trap)
            if self._interrupt_requested() and kernel.stop is None:
                self._pause = None
                return self._interrupted(total)
            if self._pause is not None and kernel.stop is None:
                reason, self._pause = self._pause, None
                result = self._result("pause", 0, reason, total)
                return replace(result, breakpoint=self._hit)
            self._pause = None
        return self._result(stop.kind, stop.status, stop.message, total)

    def _emulate(self, limit: int, tick: int = 0, cap: int = 0) -> Trap | None:
        """Run the guest from its pc for at most ``limit`` instructions (one
        ``emu_start``); the trap that ended it without reaching the interrupt hook, if any.

        ``tick`` > 0: the limit is where a timer tick falls, and ticks come every
        ``tick`` instructions. The block counter may then take a quiet tick late (see
        :meth:`_take_late_tick`) and run on past the limit, to the next tick but never
        past ``cap`` instructions.

        The hooks called inside set ``_stopped_in_hook``, ``_code_stop``, ``_hit``,
        ``_pause`` and ``_pending``. Those reset before the run are reset here rather than
        in the caller: a type checker takes an attribute assigned in a function to keep
        that value across the calls that follow in it, and mypyc compiles that
        assumption into a check.
        """
        pc = self._read_pc()
        self._stopped_in_hook = self._code_stop = False
        self._hit = None
        trap: Trap | None = None
        self._limit_end = self._clock_base + limit
        self._in_emu = True
        blocks = self._blocks
        if blocks is None:
            trap = self._start(pc, _NEVER, limit)
        else:
            blocks.start(limit)
            while True:
                trap = self._start(pc, _NEVER, 0)
                self._settle(blocks, trap)
                if self._tick_due >= 0:
                    self._late_tick_due(blocks)
                # The hook state's fields read directly, here and in _settle: once or
                # twice per emu_start (and at every tick), where BlockCounter's
                # interpreted descriptors cost about 1% of sel4test's run.
                state = blocks.state
                if not (state.crossing and trap is None and not self._stopped_elsewhere()):
                    break
                due, counted = int(state.limit), int(state.counted)
                rest = due - counted
                if rest == 0:
                    break
                kernel = self.kernel
                assert kernel is not None
                if (tick and due + tick <= cap and counted + int(state.block_n) <= due + tick
                        and kernel.tick_is_quiet()):
                    # Run the block whole (it ends before the next tick); the tick is
                    # taken at the next kernel entry or stop, as if at its instruction.
                    self._tick_due = due
                    blocks.resume(due + tick)
                    pc = int(state.block_pc)
                    continue
                trap = self._run_part(blocks, rest)
                break
        if self._misaligned is not None:
            trap = self._drop_misaligned_block(self._misaligned)
        if self._fp_trap is not None:
            trap, self._fp_trap = self.cpu.fp_access_trap(self._fp_trap), None
        self._window = None  # the guest ran
        self._skip_at = None
        self._in_emu = False
        return trap

    def _read_pc(self) -> int:
        """The CPU's pc, through the C API: the binding's ``reg_read`` picks a register
        class on every call, and every run reads the pc once or twice."""
        status = uclib.uc_reg_read(self._uch, self.cpu.pc_reg, self._pc_word_ref)
        if status:
            raise UcError(status)
        return self._pc_word.value

    def _start(self, pc: int, until: int, count: int) -> Trap | None:
        """One ``emu_start``; the trap that ended it without reaching the interrupt
        hook, if any."""
        try:
            self.uc.emu_start(pc, until, 0, count)
        except UcError as error:
            if self._pending is None:
                trap = self.cpu.classify_error(self.uc, error.errno)
                if trap is None:
                    self._machine_error(error)
                return trap
        return None

    def _settle(self, blocks: BlockCounter, trap: Trap | None) -> None:
        """Make the block counter exact after an ``emu_start`` (see BlockCounter)."""
        if blocks.state.failed:
            assert self.kernel is not None
            self.kernel.stop_with_message(
                "machine error: Unicorn could not report a translated block's length")
        if trap is not None:
            blocks.settle_trap(trap.fault_pc)
        elif blocks.state.open:
            blocks.settle_stop(self._read_pc())

    def _late_tick_due(self, blocks: BlockCounter) -> None:
        """At a kernel entry or a stop, with a late tick pending: past its instruction,
        take it now; short of it (a trap came first), take it at its instruction after
        all, which the block counter's limit makes a stop again."""
        due = self._tick_due
        if blocks.current() > due:
            self._take_late_tick(blocks)
        else:
            self._tick_due = -1
            blocks.resume(due)

    def _take_late_tick(self, blocks: BlockCounter) -> None:
        """Take the quiet timer tick due at ``_tick_due`` (``Kernel.tick_is_quiet``)
        with the clock at its instruction. Nothing reached the kernel since, so it
        charges the same thread the same tick as on time; the guest's registers and the
        thread that runs stay as they are."""
        kernel = self.kernel
        assert kernel is not None
        state = blocks.state
        counted = int(state.counted)
        state.counted = self._tick_due
        self._tick_due = -1
        current = kernel.current
        kernel.timer_tick()
        self._slice_used -= kernel.config.tick_instructions
        state.counted = counted
        if kernel.current is not current or kernel.stop is not None:
            raise MachineError("a late timer tick was not quiet: it changed the running thread")

    def _stopped_elsewhere(self) -> bool:
        """Whether something besides the block counter's limit ended the last run."""
        return (self._stopped_in_hook or self._code_stop or self._pending is not None
                or self._pause is not None or self._interrupt is not None)

    def _run_part(self, blocks: BlockCounter, rest: int) -> Trap | None:
        """Run the first ``rest`` instructions of the block the counter stopped before.

        Its translation is dropped and made again to end where the limit falls (the
        ``until`` address of this ``emu_start``), then dropped again so that later runs
        translate the whole block. A trap inside ends the run at once (``_partial``):
        code of another thread translated with that ``until`` would stop there.
        """
        start = blocks.block_pc
        end = blocks.part_end(rest)
        blocks.drop_translation(self.uc, start)
        blocks.start_part(blocks.current(), end)
        self._partial = True
        self.cpu.end_runs_quietly(self.uc, True)
        try:
            trap = self._start(start, end, 0)
        finally:
            self.cpu.end_runs_quietly(self.uc, False)
            self._partial = False
            blocks.end_part()
            blocks.drop_translation(self.uc, start)
        self._settle(blocks, trap)
        return trap

    def _interrupt_requested(self) -> bool:
        """Whether :meth:`interrupt` has been called during this run. Read through a call
        because a signal handler sets it between any two statements of :meth:`_run`,
        which therefore must not take an earlier test of it to still hold (a type
        checker would, and mypyc compiles that into a check)."""
        return self._interrupt is not None

    def _interrupted(self, total: int | None) -> RunResult:
        assert self.kernel is not None
        current = self.kernel.current
        where = "no current thread" if current is None else f'thread "{current.name}"'
        pc = self.uc.reg_read(self.cpu.pc_reg)
        return self._result("interrupt", 0, f"{self._interrupt}: {where} at pc {pc:#x}", total)

    def _result(self, kind: str, status: int, message: str, total: int | None) -> RunResult:
        assert self.kernel is not None
        return RunResult(kind, status, message, total, self.kernel.kernel_entries, self.kernel.ticks)

    def _machine_error(self, error: UcError) -> None:
        """Unicorn failed for a reason of its own (not a guest access): stop the run."""
        kernel = self.kernel
        assert kernel is not None
        kernel.stop_with_message(f"machine error at pc {self.uc.reg_read(self.cpu.pc_reg):#x}: {error}")

    def _on_new_block(self, uc: Uc, block: object, _previous: object, _data: object) -> None:
        """Unicorn has just translated ``block`` and is about to run it: stop first if it
        starts at a misaligned pc (no instruction can be fetched there)."""
        pc = block.pc  # type: ignore[attr-defined]
        if pc & self._alignment_mask:
            self._misaligned = pc
            self._stopped_in_hook = True
            uc.emu_stop()

    def _drop_misaligned_block(self, pc: int) -> Trap:
        """Forget the block translated at ``pc``, so that the next entry to ``pc``
        translates it again (and so stops again, rather than finding it cached); the
        misaligned-pc trap for the current thread."""
        self._misaligned = None
        self.uc.ctl_remove_cache(pc, pc + 1)
        return self.cpu.misaligned_pc(pc)

    def _on_interrupt(self, intno: int) -> None:
        self._window = None  # the guest ran since the last kernel entry
        kernel = self.kernel
        try:
            assert kernel is not None
            if intno == self._syscall_intno:
                # The hot path: no pc read, no classification. A system call ends its
                # translated block, so the block counter's count is exact.
                state = self._block_state
                if state is not None:
                    state.open = 0
                    if self._tick_due >= 0:
                        blocks = self._blocks
                        assert blocks is not None
                        self._late_tick_due(blocks)
                kernel.syscall()
            else:
                trap = self.cpu.classify(self.uc, intno)
                blocks = self._blocks
                if blocks is not None:
                    blocks.settle_trap(trap.fault_pc)
                    if self._tick_due >= 0:
                        self._late_tick_due(blocks)
                self._dispatch(trap)
        except BaseException as error:  # carried out of Unicorn, re-raised by run()
            self._pending = error
            self._stopped_in_hook = True
            self.uc.emu_stop()
            return
        if kernel.stop is not None or self._partial:
            self._stopped_in_hook = True
            self.uc.emu_stop()

    def _dispatch(self, trap: Trap) -> None:
        kernel = self.kernel
        assert kernel is not None
        if trap.kind is TrapKind.SYSCALL:
            kernel.syscall()
            return
        if trap.kind is TrapKind.PC_ALIGNMENT and self.arch is Arch.RISCV64:
            # Not a fault on RISC-V (see RiscV64Backend): sepc cannot hold bit 0, so the
            # return to user mode had already gone to the even address.
            self.uc.reg_write(self.cpu.pc_reg, trap.fault_pc & ~1)
            return
        # Faults: the thread restarts at the faulting instruction once handled.
        self.uc.reg_write(self.cpu.pc_reg, trap.fault_pc)
        if trap.kind in (TrapKind.PAGE_FAULT, TrapKind.BUS_ERROR):
            address, access = self._fault_address(trap)
            kernel.vm_fault(address, access, self._fsr(trap, address, access))
        elif trap.kind is TrapKind.ILLEGAL and self._counters is not None:
            self._illegal(kernel, trap, self._counters)
        else:
            kernel.user_exception(*self._exception_number(trap))

    def _illegal(self, kernel: Kernel, trap: Trap, counters: Counters) -> None:
        """An illegal instruction: a counter instruction is performed (or trapped with
        its own syndrome) by ``counters``; any other is a UserException."""
        code = self._fetch_code(trap.fault_pc)
        outcome = None
        if len(code) == 4:
            outcome = counters.execute(int.from_bytes(code, "little"), self.cpu.read_gpr,
                                       self._clock(1))
        if outcome is None:
            kernel.user_exception(*self._exception_number(trap))
        elif outcome.syndrome is not None:
            kernel.user_exception(outcome.syndrome, 0)
        else:
            self._window = None
            if outcome.rd is not None:
                self.cpu.write_gpr(outcome.rd, outcome.value)
            self.uc.reg_write(self.cpu.pc_reg, trap.fault_pc + 4)

    def _clock(self, in_flight: int) -> Clock:
        """The machine's time, ``in_flight`` instructions before the end of what the
        current ``emu_start`` has counted so far (1 in a trap: the trapping
        instruction has been counted, not retired; 0 between runs)."""
        ran = 0
        retired = self._retired_before
        if self._running:  # this run's slices so far, then the current one's part
            ran = max(0, self._counted() - in_flight)
            retired += (self.ran or 0) + ran
        kernel = self.kernel
        assert kernel is not None
        if self._deadline is not None:  # MCS: the one clock the kernel's timer uses
            return Clock(retired, self.time_now() - (in_flight if self._in_emu else 0))
        time = kernel.ticks * kernel.config.tick_instructions + self._slice_used + ran
        return Clock(retired, time)

    def _fault_address(self, trap: Trap) -> tuple[int, Access]:
        if trap.access is Access.EXECUTE:
            return trap.fault_pc, Access.EXECUTE
        code = self._fetch_code(trap.fault_pc)
        decoded = self._decoder_for().data_access(self.uc, code, trap.fault_pc, trap.access)
        return decoded.address, decoded.access

    def _decoder_for(self) -> Decoder:
        if self._decoder is None:  # capstone loads only when a guest first faults
            from .faultinfo import Decoder

            self._decoder = Decoder(self.arch)
        return self._decoder

    def _counted(self) -> int:
        """Instructions the ``emu_start`` in progress has counted so far."""
        blocks = self._blocks
        return self.counter.current() if blocks is None else blocks.current()

    def _code_bytes(self, vaddr: int, size: int) -> bytes:
        """Up to ``size`` bytes at user address ``vaddr`` of the current address space
        (fewer where they run into no mapping)."""
        out = b""
        while len(out) < size:
            result = walk(self, self.paging, self.root, vaddr + len(out))
            if result.kind is not PteKind.LEAF:
                break
            page_left = 0x1000 - ((vaddr + len(out)) & 0xFFF)
            out += self.read_phys(result.paddr, min(page_left, size - len(out)))
        return out

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
        syndrome on AArch64 (ISV 0: EL1 gets no instruction syndrome), whose status
        code names a translation or permission fault and its level, or for a bus error
        a synchronous external abort not on a table walk (EA 0, a decode error)."""
        if self.arch is Arch.RISCV64:
            return {Access.EXECUTE: 1, Access.READ: 5, Access.WRITE: 7}[access]
        # Table levels count from the root; the architecture's from L0. The root of the
        # four-level (48-bit) walk is L0, so the two agree; a shorter walk would start lower.
        first = 4 - self.paging.levels
        if trap.kind is TrapKind.BUS_ERROR:
            status = 0b010000
        elif address >= self.paging.va_limit:
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
        """(Number, Code) of a UserException: scause on RISC-V; on AArch64 the ESR_EL1
        syndrome seL4 passes on for every exception class it does not handle itself,
        IL set: EC 0x22 for a misaligned pc, EC 0x07 for an FP/SIMD instruction of a
        thread whose FPU is disabled, else EC 0 (unknown reason)."""
        if self.arch is Arch.RISCV64:
            return trap.cause, 0
        if trap.kind is TrapKind.PC_ALIGNMENT:
            return _ESR_EC_PC_ALIGNMENT << 26 | _ESR_IL, 0
        if trap.kind is TrapKind.FP_ACCESS:
            return _ESR_FP_ACCESS, 0
        return _ESR_IL, 0
