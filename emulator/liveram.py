"""Guest RAM read where Unicorn keeps it, without a call into Unicorn.

The kernel reads guest RAM at nearly every entry (the IPC buffer's message words and
extra-cap pointers, page-table walks, the zero check before a retype), and through
``uc_mem_read`` each read is a ctypes call of about 0.7 µs, most of it the call. QEMU
keeps a RAM region as one block of host memory, so, as :mod:`emulator.liveregs` does for
the registers, this module finds that block once per engine and reads it as a
``memoryview``.

Locating trusts no layout: improbable words are written to the first and last words of
RAM through ``uc_mem_write``, and the block is looked for at page-aligned places in the
process's anonymous writable mappings (``/proc/self/maps``) big enough to hold RAM, read
through ``/proc/self/mem`` (where an unmapped address is an error, not a crash). A place
is accepted only if both words are there, they follow a second write through the API,
and bytes read through the view at other offsets equal what ``uc_mem_read`` gives.
QEMU maps a RAM block on its own, so the ends of each such mapping are tried first and
the search stops at the first place accepted: a few reads per mapping in the usual case,
where trying every place first cost a few thousand reads at every boot.

Writes may go through the view as well: for RAM, Unicorn 2.1.4's ``uc_mem_write`` is a
plain copy (QEMU's ``invalidate_and_set_dirty``, which it would call after the copy, is
empty there), so a store into the view is the same write without the call. Neither
drops the code translated from the bytes: that is :mod:`emulator.translation`'s work,
after either.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Iterator
from typing import Final

from unicorn import Uc, UcError

from .liveregs import read_process_memory

__all__ = ["locate_ram"]

_PAGE: Final = 4096
_MAGIC_FIRST: Final = 0x5EC0_7A3F_19D2_8E41
_MAGIC_LAST: Final = 0x71B4_C02E_6A95_D3F7
_CANDIDATES_PER_MAPPING: Final = 512
"""Page-aligned places tried in one mapping at most (a RAM block fills its mapping but
for QEMU's alignment slack, so the right one is among the first few)."""


def locate_ram(uc: Uc, ram_base: int, ram_size: int) -> memoryview | None:
    """A view of the ``ram_size`` bytes of guest RAM at ``ram_base`` (one region mapped
    by ``uc_mem_map``), or None if it cannot be found and verified. Writing through it
    writes guest RAM, as ``uc_mem_write`` does (module docstring).

    Contract: the view is memory of the engine's; it is valid while ``uc`` lives and the
    region stays mapped (capsule never unmaps RAM), so its holder keeps ``uc``."""
    if ram_size < 2 * _PAGE or ram_size % _PAGE:
        return None
    last = ram_base + ram_size - 8
    try:
        saved_first, saved_last = bytes(uc.mem_read(ram_base, 8)), bytes(uc.mem_read(last, 8))
    except UcError:
        return None  # not mapped
    try:
        uc.mem_write(ram_base, struct.pack("<Q", _MAGIC_FIRST))
        uc.mem_write(last, struct.pack("<Q", _MAGIC_LAST))
        fd = os.open("/proc/self/mem", os.O_RDONLY)
        try:
            for host in _candidates(fd, ram_size):
                if _tracks(uc, fd, host, ram_base, ram_size):
                    view = memoryview((ctypes.c_char * ram_size).from_address(host)).cast("B")
                    if _reads_agree(uc, view, ram_base, ram_size):
                        return view
            return None
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return None
    finally:
        uc.mem_write(ram_base, saved_first)
        uc.mem_write(last, saved_last)


def _candidates(fd: int, ram_size: int) -> Iterator[int]:
    """Page-aligned host addresses, in anonymous writable mappings of at least
    ``ram_size`` bytes, whose first word is the first magic word (read when the address
    is asked for). A block lies at the start of its mapping, or at its end where the
    kernel has merged a later neighbouring mapping in below it: each mapping's two ends
    are tried first, then up to :data:`_CANDIDATES_PER_MAPPING` places inward of each."""
    ends = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) > 5 or not fields[1].startswith("rw"):
                continue  # a named mapping (a file, the heap, a stack) is not RAM
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if end - start >= ram_size:
                ends.append((start, end - ram_size))
    first = [place for low, high in ends for place in (low, high)]
    inward = [place for low, high in ends for step in range(1, _CANDIDATES_PER_MAPPING)
              for place in (low + step * _PAGE, high - step * _PAGE) if low <= place <= high]
    magic = struct.pack("<Q", _MAGIC_FIRST)
    for host in dict.fromkeys(first + inward):
        if read_process_memory(fd, host, 8) == magic:
            yield host


def _tracks(uc: Uc, fd: int, host: int, ram_base: int, ram_size: int) -> bool:
    """Whether the block at ``host`` follows RAM (read only: a wrong candidate may be
    memory Python owns): the last magic word is at its end, and both words change with
    a second write through the API. Leaves the magic words in RAM, for the candidates
    after this one."""
    last = ram_size - 8
    if read_process_memory(fd, host + last, 8) != struct.pack("<Q", _MAGIC_LAST):
        return False
    flipped_first = struct.pack("<Q", ~_MAGIC_FIRST & (2**64 - 1))
    flipped_last = struct.pack("<Q", ~_MAGIC_LAST & (2**64 - 1))
    uc.mem_write(ram_base, flipped_first)
    uc.mem_write(ram_base + last, flipped_last)
    follows = (read_process_memory(fd, host, 8) == flipped_first
               and read_process_memory(fd, host + last, 8) == flipped_last)
    uc.mem_write(ram_base, struct.pack("<Q", _MAGIC_FIRST))
    uc.mem_write(ram_base + last, struct.pack("<Q", _MAGIC_LAST))
    return follows


def _reads_agree(uc: Uc, view: memoryview, ram_base: int, ram_size: int) -> bool:
    """Whether the view reads what ``uc_mem_read`` reads, at a few places over RAM."""
    for offset in (0, _PAGE, ram_size // 2, ram_size - _PAGE):
        if view[offset : offset + _PAGE].tobytes() != bytes(uc.mem_read(ram_base + offset,
                                                                         _PAGE)):
            return False
    return True
