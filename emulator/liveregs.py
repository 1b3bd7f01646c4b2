"""The syscall registers read and written where the emulated CPU keeps them.

Every system call reads a0-a7 / x0-x7 and most write some back; through
``uc_reg_read_batch`` each is a ctypes call of about a microsecond and a half. QEMU keeps
the general registers of the emulated CPU as eight consecutive words of its CPU state
(``gpr[10..17]`` on RISC-V, ``xregs[0..7]`` on AArch64), and ``uc_reg_write`` of such a
register only stores the word there. So, like :mod:`emulator.icount`, this module
locates those words once per engine and then reads and writes them through a ctypes
array over that memory, which costs a fraction of the call.

Locating is done without trusting any structure layout: the eight registers are set to
improbable values through the API, and the words are searched for in the memory that
the pointers held in Unicorn's engine structure lead to. Memory is read through
``/proc/self/mem``, where an address that is not mapped is an error rather than a crash.
A location is accepted only if it follows ``uc_reg_write`` (checked by reading alone:
a wrong candidate may be memory Python owns) and then a write through it is what
``uc_reg_read`` returns; otherwise (another platform, another Unicorn)
:func:`locate_window` returns None and the caller keeps the batch calls.

A thread switch copies the CPU's whole state (registers, FP and system state) out to the
thread it leaves and in from the one it starts. :func:`locate_state` finds that state
from the window: a copy saved through ``uc_context_save`` holds the window's registers at
some offset, so the live state starts that far before the window. It too is accepted only
once the bytes there are read to equal the saved copy and a copy written through it is
what ``uc_reg_read`` returns. Unicorn's own save and restore also carry QEMU's ``longjmp``
buffer in and out of a context; these copies leave it alone, which is why a machine that
has located the state never restores a context through the API.

Within that state, :func:`locate_registers` finds the word that holds each register of a
list (a thread's user registers), so that the few registers the kernel changes in a
waiting thread are stored straight into the state it is switched in with, and a saved
thread's registers are read from its copy, with no call into Unicorn either way.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from unicorn import Uc, UcError

__all__ = ["LiveState", "LiveWindow", "locate_registers", "locate_state", "locate_window",
           "read_process_memory"]

_WORDS: Final = 8
_MAGIC: Final = tuple(0x5EC0_0000_0000_0000 | (0x9E37_79B9 * (i + 1) & 0xFFFF_FFFF) << 8 | i
               for i in range(_WORDS))
_WORD_MASK: Final = (1 << 64) - 1
_ADDRESS_LIMIT: Final = 1 << 63
"""Words at or above it cannot be addresses /proc/self/mem takes (a signed offset)."""
_STRUCT_SCAN: Final = 8192
"""Bytes of the engine structure whose words are tried as pointers."""
_TARGET_SCAN: Final = 1 << 18
"""Bytes searched after each such pointer (the register file sits past QEMU's CPUState,
whose jump cache alone is 32 KiB)."""
_NEAR_SCAN: Final = 1 << 16
"""Bytes searched after each pointer first, before the whole ``_TARGET_SCAN`` of each:
the register file is usually that close, and searching a quarter megabyte behind every
word of the engine structure takes longer than the rest of a boot."""


class LiveWindow:
    """Eight consecutive 64-bit registers, read and written in the CPU state itself.

    Contract: only between ``emu_start`` calls or inside a hook (as ``uc_reg_*``); the
    engine must outlive it.
    """

    __slots__ = ("_words", "address")

    def __init__(self, address: int) -> None:
        # A memoryview rather than a ctypes array: reading it into a list, or storing a
        # few words, costs a half to a third as much.
        self._words = memoryview((ctypes.c_char * (8 * _WORDS)).from_address(address)).cast(
            "B").cast("Q")
        self.address = address

    def read(self) -> list[int]:
        return self._words.tolist()

    def write(self, values: Sequence[int]) -> None:
        """Store ``values`` into the first ``len(values)`` registers, each modulo 2**64
        (as ``uc_reg_write`` of a 64-bit register takes it)."""
        if len(values) > _WORDS:
            raise ValueError("more values than registers in the window")
        words = self._words
        for i, value in enumerate(values):
            words[i] = value & _WORD_MASK


_known: dict[tuple[int, ...], tuple[int, int]] = {}
"""Register ids -> (word of the engine structure, offset from the pointer it holds) of
the window found in an earlier engine: tried first, as every engine of this process
comes from the same library."""


def locate_window(uc: Uc, reg_ids: Sequence[int]) -> LiveWindow | None:
    """The live window of the eight registers ``reg_ids`` (consecutive in the CPU state),
    or None if it cannot be found and verified (see the module docstring)."""
    if len(reg_ids) != _WORDS:
        return None
    base = uc._uch.value if uc._uch is not None else None
    if not base:
        return None
    key = tuple(reg_ids)
    saved = [uc.reg_read(r) for r in reg_ids]
    try:
        for reg, value in zip(reg_ids, _MAGIC):
            uc.reg_write(reg, value)
        pattern = struct.pack(f"<{_WORDS}Q", *_MAGIC)
        known = _known.get(key)
        tried: set[int] = set()
        for candidates in (lambda: [] if known is None else _at_known(base, *known),
                           lambda: _search(base, pattern, _NEAR_SCAN),
                           lambda: _search(base, pattern, _TARGET_SCAN)):
            for word, pointer, address in candidates():
                if address in tried:
                    continue
                tried.add(address)
                if _tracks(uc, reg_ids, address, pattern):
                    window = LiveWindow(address)
                    if _written_through(uc, reg_ids, window):
                        _known[key] = (word, address - pointer)
                        return window
        return None
    except (OSError, ValueError):
        return None
    finally:
        for reg, value in zip(reg_ids, saved):
            uc.reg_write(reg, value)


def _at_known(base: int, word: int, offset: int) -> list[tuple[int, int, int]]:
    """The candidate an earlier engine's window suggests for this one."""
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        data = read_process_memory(fd, base + 8 * word, 8)
    finally:
        os.close(fd)
    if data is None or len(data) < 8:
        return []
    (pointer,) = struct.unpack("<Q", data)
    return [(word, pointer, pointer + offset)] if 0 < pointer < _ADDRESS_LIMIT else []


def _search(base: int, pattern: bytes, scan: int) -> Iterator[tuple[int, int, int]]:
    """(word of the engine structure, the pointer it holds, place) for every 8-aligned
    place ``pattern`` occurs in the ``scan`` bytes after such a pointer, in the order of
    the words.

    A generator: the caller stops at the first candidate that verifies, so the memory
    behind the words after it is never read.
    """
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        engine = read_process_memory(fd, base, _STRUCT_SCAN)
        if engine is None:
            return
        seen: set[int] = set()
        words = struct.iter_unpack("<Q", engine[: len(engine) // 8 * 8])
        for word, (pointer,) in enumerate(words):
            if not 0x10000 <= pointer < _ADDRESS_LIMIT or pointer % 8 or pointer in seen:
                continue
            seen.add(pointer)
            block = read_process_memory(fd, pointer, scan)
            if block is None:
                continue
            at = block.find(pattern)
            while at >= 0:
                if at % 8 == 0:
                    yield word, pointer, pointer + at
                at = block.find(pattern, at + 1)
    finally:
        os.close(fd)


def read_process_memory(fd: int, address: int, size: int) -> bytes | None:
    """Up to ``size`` readable bytes at ``address`` of this process, read through ``fd``
    (``/proc/self/mem``; fewer bytes where a mapping ends), or None."""
    if not 0 <= address < _ADDRESS_LIMIT:
        return None
    try:
        data = os.pread(fd, size, address)
    except OSError:
        # The range runs into unmapped memory: take what a page-by-page read gives.
        chunks = []
        for offset in range(0, size, 4096):
            try:
                chunk = os.pread(fd, 4096, address + offset)
            except OSError:
                break
            chunks.append(chunk)
        data = b"".join(chunks)
    return data or None


def _tracks(uc: Uc, reg_ids: Sequence[int], address: int, pattern: bytes) -> bool:
    """Whether the memory at ``address`` follows the registers, checked by reading only
    (a candidate may be a copy of the pattern in memory Python owns or has freed, where
    a write would corrupt the heap): it holds ``pattern`` now and other values after
    the registers are given them through the API."""
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        if read_process_memory(fd, address, len(pattern)) != pattern:
            return False
        other = [value ^ 0x00FF_00FF_00FF_00FF for value in _MAGIC]
        for reg, value in zip(reg_ids, other):
            uc.reg_write(reg, value)
        return read_process_memory(fd, address, len(pattern)) == struct.pack(f"<{_WORDS}Q", *other)
    finally:
        for reg, value in zip(reg_ids, _MAGIC):
            uc.reg_write(reg, value)
        os.close(fd)


def _written_through(uc: Uc, reg_ids: Sequence[int], window: LiveWindow) -> bool:
    """Whether a write through ``window`` (known to be the registers) is what
    ``uc_reg_read`` sees."""
    probe = [0x0BAD_5EED_0000_0000 | i for i in range(_WORDS)]
    window.write(probe)
    return [uc.reg_read(r) for r in reg_ids] == probe


class LiveState:
    """The emulated CPU's whole state, the bytes ``uc_context_save`` copies out and
    ``uc_context_restore`` copies back, as a writable ``memoryview`` of them in place.

    A thread switch copies this state twice. Through the API each copy is a ctypes call
    of about half a microsecond around a memory copy a tenth of that; a slice assignment
    between two memoryviews is the same copy with no foreign call. Contract: as for
    :class:`LiveWindow`, and a buffer copied in must hold a state this engine saved (or
    one of the same architecture: the state holds no pointers, see ``SavedCpu``).
    """

    __slots__ = ("view", "address")

    def __init__(self, address: int, size: int) -> None:
        self.view = memoryview((ctypes.c_char * size).from_address(address)).cast("B")
        self.address = address


def locate_state(uc: Uc, reg_ids: Sequence[int], window: LiveWindow,
                 save: Callable[[], memoryview]) -> LiveState | None:
    """The live CPU state, or None if it cannot be found and verified.

    ``window`` is the verified live window of ``reg_ids``; ``save()`` saves the CPU
    state through ``uc_context_save`` and returns a view of the saved bytes (the CPU
    state proper, without the context's header). The registers are given the magic
    values, so the state starts where their offset in a saved copy says, counted back
    from the window. Accepted only if the bytes there equal the saved copy (read through
    ``/proc/self/mem``, as for the window), and then a copy written through the view
    with other values in those registers is what ``uc_reg_read`` returns.
    """
    pattern = struct.pack(f"<{_WORDS}Q", *_MAGIC)
    before = window.read()
    try:
        window.write(_MAGIC)
        saved = bytes(save())
        at = saved.find(pattern)
        if at < 0 or at % 8 or saved.find(pattern, at + 1) >= 0:
            return None
        address = window.address - at
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        try:
            if read_process_memory(fd, address, len(saved)) != saved:
                return None
        finally:
            os.close(fd)
        state = LiveState(address, len(saved))
        probe = [0x0BAD_5EED_0000_0000 | i for i in range(_WORDS)]
        changed = bytearray(saved)
        changed[at : at + len(pattern)] = struct.pack(f"<{_WORDS}Q", *probe)
        state.view[:] = changed
        if [uc.reg_read(r) for r in reg_ids] != probe:
            state.view[:] = saved
            return None
        return state
    except (OSError, ValueError):
        return None
    finally:
        window.write(before)


def locate_registers(uc: Uc, reg_ids: Sequence[int], state: memoryview) -> tuple[int, ...]:
    """For each register of ``reg_ids``, the index of the 64-bit word of the live CPU
    state ``state`` (:attr:`LiveState.view`) that holds it, or -1 where none does.

    Each register in turn is given an improbable value through ``uc_reg_write``, and the
    state is compared with its bytes before. The register is located only if exactly one
    word changed, to exactly that value (a write that does more than store one word,
    such as AArch64's condition flags kept in four fields, is not), and another value
    stored into that word is what ``uc_reg_read`` returns. The same word then means the
    same register in any copy of the state. The state's bytes are as before on return.
    """
    words = state.cast("Q")
    before = bytes(state)
    found = []
    try:
        for i, reg in enumerate(reg_ids):
            probe = 0x5EC0_0000_0000_0000 | (0x9E37_79B9 * (i + 1) & 0xFFFF_FFFF) << 8 | 0xA5
            try:
                uc.reg_write(reg, probe)
            except UcError:  # a register that refuses the value: left to the API
                found.append(-1)
                state[:] = before
                continue
            index = _only_changed_word(before, bytes(state), probe)
            if index >= 0:
                words[index] = probe ^ 0x00FF_00FF_00FF_00FF
                if uc.reg_read(reg) != probe ^ 0x00FF_00FF_00FF_00FF:
                    index = -1
            found.append(index)
            state[:] = before
    finally:
        state[:] = before
    return tuple(found)


def _only_changed_word(before: bytes, after: bytes, value: int) -> int:
    """The index of the one aligned 64-bit word in which ``after`` differs from
    ``before``, if it differs in that word alone and the word holds ``value``; else -1."""
    at = after.find(value.to_bytes(8, "little"))
    while at >= 0 and at % 8:
        at = after.find(value.to_bytes(8, "little"), at + 1)
    if at < 0 or after[:at] != before[:at] or after[at + 8 :] != before[at + 8 :]:
        return -1
    return at // 8
