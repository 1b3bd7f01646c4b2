"""Exact instruction counts by translated block: the compiled build's counter.

Unicorn's own counter (``emulator.icount``) makes every translated instruction call a
hook and then check for a stop. On ordinary guest code that costs more than the
instructions themselves (UNICORN.md; sel4test spends a third of its wall time there).
The native block hook (``emulator/native/blockcount.c``, built by ``make compiled``)
instead counts each translated block when it starts, with the block's instruction
count, and stops Unicorn before a block that would take the count past the limit.

What the hook cannot see, this module settles from the pc, so that every count is the
one Unicorn's counter gives for the same run (a test compares the two on every guest):

- a trap inside a block: the instructions before the trapping one, plus the trapping
  one (Unicorn counts an instruction before it runs) -- :meth:`BlockCounter.settle_trap`;
- a stop inside a block (a breakpoint or FP-watch hook, ``uc_emu_stop`` from another
  thread): the instructions before the pc -- :meth:`BlockCounter.settle_stop`;
- the limit falling inside a block: the machine runs that block's first instructions
  alone, translated to end where the limit falls (``UnicornMachine._run_part``).

Time slices make that last step rare: a timer tick that only charges time
(``Kernel.tick_is_quiet``) is taken late, at the next kernel entry or stop, with the
clock at its own instruction, so the run goes on over it; only a tick that preempts
splits a block. On seL4's sel4test that is about one tick in 500.

The compiled build counts this way by default, when ``make compiled`` has built the
library next to this module; :data:`ENABLE_VARIABLE` chooses otherwise. The pure build
keeps Unicorn's counter, the reference the block counter is tested against.

A block's instructions are ``size / width`` on AArch64. RISC-V's compressed
instructions make the count variable: the hook reads the block's code through the
installed address space's page tables (an Sv39 walk over the RAM view of
``emulator.liveram``) and counts instruction lengths, and asks Unicorn for the block
(a lookup in its cache) only where that walk does not reach RAM. The walk needs the
machine to say which root table is installed (:meth:`BlockCounter.set_root`); it
agrees with Unicorn's fetch because only the kernel writes page tables and it flushes
Unicorn's TLB before a changed translation can be used. Positions inside a block are
found by the same decoding, in Python.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, Generic, TypeVar

from unicorn import Uc, UcError
from unicorn.unicorn_const import UC_CTL_IO_WRITE, UC_CTL_TB_REMOVE_CACHE, UC_HOOK_BLOCK
from unicorn.unicorn_py3.unicorn import uc_hook_h, uclib

__all__ = ["BlockCounter", "BlockCountState", "CodeSlot", "RamView", "block_library",
           "instruction_end", "instructions_between"]

LIBRARY_NAME: Final = "_blockcount.so"
"""The native hook's file name, next to this module in the compiled build."""

ENABLE_VARIABLE: Final = "CAPSULE_BLOCK_COUNT"
"""Which counter runs: unset or empty, the native hook when its library is next to this
module (the compiled build) and Unicorn's own counter otherwise; ``0``, Unicorn's
counter; ``1``, the native hook next to this module, which must be there; any other
value, the path of that library. Both give the same counts; bench/README.md says what
each costs."""

_NO_LIMIT: Final = (1 << 64) - 1

RamView = tuple[int, int, int]
"""Guest RAM as the hook reads it: its host address, guest-physical base and size."""

T = TypeVar("T")

_REMOVE_CACHE: Final = UC_CTL_TB_REMOVE_CACHE | 2 << 26 | UC_CTL_IO_WRITE << 30
"""uc_ctl's control word for TB_REMOVE_CACHE with its two arguments (unicorn.h's UC_CTL)."""


CODE_SLOTS: Final = 64
"""Code pages the hook remembers (``CODE_SLOTS`` in blockcount.c)."""


class CodeSlot(ctypes.Structure):
    """One remembered code page (``struct code_slot`` in blockcount.c)."""

    _fields_ = [("va", ctypes.c_uint64), ("epoch", ctypes.c_uint64), ("host", ctypes.c_void_p)]


class BlockCountState(ctypes.Structure):
    """The hook's state (``struct block_count`` in blockcount.c: same fields, same order)."""

    _fields_ = [
        ("counted", ctypes.c_uint64),
        ("limit", ctypes.c_uint64),
        ("block_pc", ctypes.c_uint64),
        ("block_n", ctypes.c_uint64),
        ("block_size", ctypes.c_uint64),
        ("open", ctypes.c_uint64),
        ("crossing", ctypes.c_uint64),
        ("width", ctypes.c_uint64),
        ("failed", ctypes.c_uint64),
        ("stop", ctypes.c_void_p),
        ("ctl", ctypes.c_void_p),
        ("ram", ctypes.c_void_p),
        ("ram_base", ctypes.c_uint64),
        ("ram_size", ctypes.c_uint64),
        ("root", ctypes.c_uint64),
        ("decoded", ctypes.c_uint64),
        ("asked", ctypes.c_uint64),
        ("exit_at", ctypes.c_uint64),
        ("check", ctypes.c_uint64),
        ("disagreed", ctypes.c_uint64),
        ("epoch", ctypes.c_uint64),
        ("slots", CodeSlot * CODE_SLOTS),
    ]


def block_library() -> ctypes.CDLL | None:
    """The native hook's library as :data:`ENABLE_VARIABLE` chooses, or None for
    Unicorn's own counter.

    Raises OSError when it names a library that cannot be loaded: an explicit request
    for the block counter is never silently ignored."""
    choice = os.environ.get(ENABLE_VARIABLE, "")
    if choice == "0":
        return None
    beside = Path(__file__).with_name(LIBRARY_NAME)
    if choice == "":
        return ctypes.CDLL(str(beside)) if beside.is_file() else None
    return ctypes.CDLL(str(beside if choice == "1" else Path(choice)))


def instructions_between(code: bytes, width: int, length: int) -> int:
    """How many instructions start in the first ``length`` bytes of ``code`` (code that
    begins on an instruction): ``length / width`` for fixed-width code (``width`` > 0),
    else RISC-V lengths (2 bytes unless the low two bits of the first halfword are 11)."""
    if width:
        return length // width
    count = offset = 0
    while offset < length:
        offset += 4 if code[offset] & 3 == 3 else 2
        count += 1
    return count


def instruction_end(code: bytes, width: int, count: int) -> int:
    """The byte offset in ``code`` just past its first ``count`` instructions."""
    if width:
        return count * width
    offset = 0
    for _ in range(count):
        offset += 4 if code[offset] & 3 == 3 else 2
    return offset


class _StateField(Generic[T]):
    """A read-only view of one field of a :class:`BlockCounter`'s hook state, as ``T``
    (the ctypes fields are untyped to a type checker)."""

    def __init__(self, convert: Callable[[int], T]) -> None:
        self._convert = convert
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, counter: BlockCounter, owner: type | None = None) -> T:
        return self._convert(getattr(counter.state, self._name))


class BlockCounter:
    """Counts an ``emu_start``'s instructions with the native block hook.

    Protocol, per ``emu_start``: :meth:`start` with the limit; inside the interrupt
    hook, :meth:`close` for a system call (it ends its block) or :meth:`settle_trap`
    for any other trap, before anything reads the count; after ``emu_start`` returns,
    :meth:`settle_stop` with the pc. Then :meth:`current` is exact. ``crossing`` says the
    run stopped before a block at ``block_pc`` that would have passed the limit.

    ``code(vaddr, size)`` reads code bytes at a user address of the current address
    space (for positions inside a block on RISC-V).
    """

    __slots__ = ("state", "_hook", "_width", "_code")

    crossing = _StateField(bool)
    """The last run stopped before a block that would pass the limit."""
    failed = _StateField(bool)
    """Unicorn could not say how long a block is (the run stopped)."""
    block_pc = _StateField(int)
    """The address of the last block counted."""
    block_n = _StateField(int)
    """How many instructions the last block counted holds."""
    limit = _StateField(int)
    """The count no block may take the run past (the hook stops before it)."""

    def __init__(self, uc: Uc, library: ctypes.CDLL, width: int,
                 code: Callable[[int, int], bytes], ram: RamView | None = None) -> None:
        self.state = BlockCountState()
        """The hook's state: the machine's system-call path clears ``open`` itself."""
        self._width = width
        self._code = code
        state = self.state
        state.width = width
        state.stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        state.ctl = ctypes.cast(uclib.uc_ctl, ctypes.c_void_p).value
        if ram is not None:
            state.ram, state.ram_base, state.ram_size = ram
        self._hook = uc_hook_h()
        status = uclib.uc_hook_add(
            uc._uch, ctypes.byref(self._hook), UC_HOOK_BLOCK,
            ctypes.cast(library.capsule_count_block, ctypes.c_void_p),
            ctypes.c_void_p(ctypes.addressof(state)), ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status:
            raise RuntimeError(f"uc_hook_add failed with status {status}")

    def set_root(self, root_paddr: int) -> None:
        """The root page table of the address space now installed (variable-width
        code is read through it): called at every change of the CPU's root."""
        state = self.state
        state.root = root_paddr
        state.epoch += 1

    def tlb_flushed(self) -> None:
        """Unicorn's TLB was flushed, wholly or in part: the code pages the hook found
        through the page tables may be elsewhere now (called at every flush)."""
        self.state.epoch += 1

    def start(self, limit: int) -> None:
        """Before an ``emu_start`` that may run ``limit`` instructions."""
        state = self.state
        state.counted = 0
        state.limit = limit
        state.open = state.crossing = state.failed = 0

    def resume(self, limit: int) -> None:
        """Go on counting in this ``emu_start`` (or its continuation) up to ``limit``."""
        state = self.state
        state.limit = limit
        state.crossing = 0

    def start_part(self, counted: int, end: int) -> None:
        """Before running the start of the crossing block alone, up to ``end`` (the
        run's ``until``), ``counted`` instructions into the ``emu_start``;
        :meth:`end_part` after it."""
        state = self.state
        state.counted = counted
        state.limit = _NO_LIMIT
        state.open = state.crossing = 0
        state.exit_at = end

    def end_part(self) -> None:
        """The run of part of a block is over: no block ends at an exit any more."""
        self.state.exit_at = 0

    def current(self) -> int:
        """Instructions of the ``emu_start`` in progress (or just ended) so far."""
        return int(self.state.counted)

    def close(self) -> None:
        """The current block ran to its end (a system call ends its block)."""
        self.state.open = 0

    def settle_trap(self, fault_pc: int) -> None:
        """A trap at ``fault_pc``: count the open block's instructions up to and
        including it, if it lies in that block (a fetch fault at a new block's start
        does not: no block of it was counted, nor by Unicorn's counter)."""
        state = self.state
        if state.open:
            state.open = 0
            start, size = int(state.block_pc), int(state.block_size)
            if start <= fault_pc < start + size:
                done = self._position(start, fault_pc - start) + 1
                state.counted = int(state.counted) - int(state.block_n) + done

    def settle_stop(self, pc: int) -> None:
        """``emu_start`` returned with the guest at ``pc``: count the open block's
        instructions before ``pc`` if ``pc`` lies in it (or at its end)."""
        state = self.state
        if state.open:
            state.open = 0
            start, size = int(state.block_pc), int(state.block_size)
            if start <= pc <= start + size:
                done = self._position(start, pc - start)
                state.counted = int(state.counted) - int(state.block_n) + done

    def drop_translation(self, uc: Uc, address: int) -> None:
        """Forget Unicorn's translations of the code at ``address`` (``ctl_remove_cache``,
        through the C API: it runs twice for each block a tick splits, and
        the binding's call costs several times Unicorn's work)."""
        status = uclib.uc_ctl(uc._uch, _REMOVE_CACHE, ctypes.c_uint64(address),
                              ctypes.c_uint64(address + 1))
        if status:
            raise UcError(status)

    def part_end(self, count: int) -> int:
        """The address just past the first ``count`` instructions of the crossing block."""
        start = int(self.state.block_pc)
        if self._width:
            return start + count * self._width
        size = min(count * 4, int(self.state.block_size))
        return start + instruction_end(self._code(start, size), 0, count)

    def _position(self, start: int, length: int) -> int:
        if self._width or not length:
            return length // self._width if self._width else 0
        return instructions_between(self._code(start, length), 0, length)
