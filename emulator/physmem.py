"""The kernel's reads and writes of guest RAM, and the page-table words it keeps.

Two costs of the binding's ``mem_read`` dominate the kernel's page-table walks: a new
ctypes buffer per call and two copies of the result. :class:`PhysicalMemory` reads
through its own prototype of ``uc_mem_read`` into one reused buffer instead (measured:
0.6 µs against 1.2 µs for a word).

Page-table entries are read far more often than they change (every Map, Unmap and
lookup walks two or three levels), so the words of each table read are kept as an
``array`` and answered from it. They equal RAM for every live page table:

- Only the kernel writes a live table's memory. seL4 never maps a page table into a user
  address space, and the entries capsule writes have the accessed/dirty bits set already,
  so no MMU writes them back either. Every kernel write goes through
  :meth:`PhysicalMemory.write` (which drops the kept words it overlaps) or
  :meth:`PhysicalMemory.write_table_entry` (which updates them).
- Memory changes hands only through Untyped_Retype, which zeroes it through
  :meth:`write` wherever it is not zero already. So words kept from a table's earlier
  life are dropped when the memory becomes a frame (unless RAM is zero, and so are they),
  and again before it can become a table once more if a guest wrote it in between.

The kept tables are bounded (:data:`KEPT_TABLES_LIMIT`): past it they are all dropped and
refilled as walks need them, so the words cost at most a fixed amount of host memory.
"""

from __future__ import annotations

import ctypes
import struct
import sys
from array import array
from typing import Final, Protocol

from unicorn import Uc, UcError
from unicorn.unicorn_py3.unicorn import uclib

from .liveram import locate_ram

__all__ = ["KEPT_TABLES_LIMIT", "PhysicalMemory"]

_TABLE_BYTES: Final = 4096
_TABLE_MASK: Final = ~(_TABLE_BYTES - 1)
_SCRATCH_BYTES: Final = 256 * 1024
_BIG_ENDIAN_HOST: Final = sys.byteorder == "big"
_ENTRY: Final = struct.Struct("<Q")
KEPT_TABLES_LIMIT: Final = 4096
"""How many page tables' words are kept at most (16 MiB of words)."""

_mem_read = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t,
)(("uc_mem_read", uclib))
"""``uc_mem_read`` taking the destination as a plain address (the binding's prototype
wants a ``char`` pointer object, which costs a conversion per call)."""
_mem_write = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_size_t,
)(("uc_mem_write", uclib))
"""``uc_mem_write`` likewise (a ``bytes`` source passes as its buffer's address)."""


class CodeForgetter(Protocol):
    """What drops translated code over written RAM (``emulator.translation``)."""

    def forget(self, paddr: int, size: int) -> None: ...


class PhysicalMemory:
    """Guest RAM as the kernel sees it, on the engine ``uc``.

    ``translations.forget(paddr, size)`` is called after every write so that translated
    code over the written bytes is dropped (``emulator.translation``; a benchmark may
    put a counting wrapper in its place).
    """

    __slots__ = ("_uc", "_uch", "_scratch", "_scratch_address", "_view", "_tables",
                 "translations", "_ram", "_ram_base", "_ram_size")

    def __init__(self, uc: Uc, translations: CodeForgetter, ram_base: int = 0,
                 ram_size: int = 0) -> None:
        self._uc = uc
        self._ram = locate_ram(uc, ram_base, ram_size) if ram_size else None
        """RAM read and written in place (``emulator.liveram``), when it was found;
        other memory, or all memory without it, goes through ``uc_mem_read`` and
        ``uc_mem_write``."""
        self._ram_base = ram_base
        self._ram_size = ram_size
        self._uch = uc._uch
        self._scratch = ctypes.create_string_buffer(_SCRATCH_BYTES)
        self._scratch_address = ctypes.addressof(self._scratch)
        self._view = memoryview(self._scratch).cast("B")
        self._tables: dict[int, array[int]] = {}
        """Page-aligned table address -> its 512 entries, equal to RAM (module docstring)."""
        self.translations = translations

    def ram_location(self) -> tuple[int, int, int] | None:
        """Where guest RAM lives in this process: its host address, guest-physical base
        and size; None when it was not found (``emulator.liveram``). Valid as long as
        the engine, as the view is."""
        if self._ram is None:
            return None
        host = ctypes.addressof(ctypes.c_char.from_buffer(self._ram))
        return host, self._ram_base, self._ram_size

    def read(self, paddr: int, size: int) -> bytes:
        """``size`` bytes at ``paddr``; UcError if the range is not mapped."""
        ram = self._ram
        if ram is not None:
            offset = paddr - self._ram_base
            if offset >= 0 and offset + size <= self._ram_size and size >= 0:
                return ram[offset : offset + size].tobytes()
        if size > _SCRATCH_BYTES:
            return bytes(self._uc.mem_read(paddr, size))
        status = _mem_read(self._uch, paddr, self._scratch_address, size)
        if status:
            raise UcError(status)
        return self._view[:size].tobytes()

    def write(self, paddr: int, data: bytes) -> None:
        """Store ``data`` at ``paddr``, dropping translated code and kept table words
        over the range; UcError if the range is not mapped."""
        ram = self._ram
        offset = paddr - self._ram_base
        if ram is not None and offset >= 0 and offset + len(data) <= self._ram_size:
            ram[offset : offset + len(data)] = data
        else:
            status = _mem_write(self._uch, paddr, data, len(data))
            if status:
                raise UcError(status)
        self.translations.forget(paddr, len(data))
        tables = self._tables
        if tables:
            end = paddr + len(data)
            if len(data) <= _TABLE_BYTES:
                tables.pop(paddr & _TABLE_MASK, None)
                tables.pop((end - 1) & _TABLE_MASK, None)
            elif (end - paddr) // _TABLE_BYTES > len(tables):
                for table in [t for t in tables if paddr - _TABLE_BYTES < t < end]:
                    del tables[table]
            else:
                for table in range(paddr & _TABLE_MASK, end, _TABLE_BYTES):
                    tables.pop(table, None)

    def read_table_entry(self, table: int, index: int) -> int:
        """Entry ``index`` of the page-aligned page table at ``table``."""
        words = self._tables.get(table)
        if words is None:
            words = self._keep(table)
        return words[index]

    def read_table(self, table: int) -> tuple[int, ...]:
        """All 512 entries of the page-aligned page table at ``table``."""
        words = self._tables.get(table)
        if words is None:
            words = self._keep(table)
        return tuple(words)

    def write_table_entry(self, table: int, index: int, entry: int) -> None:
        """Store ``entry`` as entry ``index`` of the table at ``table``."""
        # No translated code to drop: a page table is never mapped, so never executed.
        at = table + 8 * index
        ram = self._ram
        offset = at - self._ram_base
        if ram is not None and offset >= 0 and offset + 8 <= self._ram_size:
            _ENTRY.pack_into(ram, offset, entry)
        else:
            status = _mem_write(self._uch, at, entry.to_bytes(8, "little"), 8)
            if status:
                raise UcError(status)
        words = self._tables.get(table)
        if words is not None:
            words[index] = entry

    def _keep(self, table: int) -> array[int]:
        if len(self._tables) >= KEPT_TABLES_LIMIT:
            self._tables.clear()
        words = array("Q", self.read(table, _TABLE_BYTES))
        if _BIG_ENDIAN_HOST:
            words.byteswap()
        self._tables[table] = words
        return words

    def kept_tables(self) -> int:
        """How many tables' words are kept now (for tests and statistics)."""
        return len(self._tables)

