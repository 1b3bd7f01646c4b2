"""Guest RAM where Unicorn keeps it (emulator.liveram): found on both architectures,
equal to what ``uc_mem_read`` reads after any writes, written as ``uc_mem_write``
writes, and refused where it is not one mapped region."""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import Uc

from emulator import liveram
from emulator.cpu import backend_for
from emulator.liveram import locate_ram
from kernel.abi.arch import Arch

_SIZE = 1 << 22


def _engine(arch: Arch) -> tuple[Uc, int]:
    cpu = backend_for(arch)
    uc = cpu.create()
    uc.mem_map(cpu.abi.ram_base, _SIZE)
    return uc, cpu.abi.ram_base


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_ram_is_found_and_left_as_it_was(arch: Arch) -> None:
    uc, base = _engine(arch)
    uc.mem_write(base, b"first!!!")
    uc.mem_write(base + _SIZE - 8, b"last!!!!")
    view = locate_ram(uc, base, _SIZE)
    assert view is not None and len(view) == _SIZE and not view.readonly
    assert bytes(uc.mem_read(base, 8)) == b"first!!!" == view[:8].tobytes()
    assert bytes(uc.mem_read(base + _SIZE - 8, 8)) == b"last!!!!" == view[-8:].tobytes()


_UC, _BASE = _engine(Arch.RISCV64)
_VIEW = locate_ram(_UC, _BASE, _SIZE)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, _SIZE - 1), st.binary(min_size=1, max_size=9000)),
                max_size=8),
       st.integers(0, _SIZE - 1), st.integers(0, 10000))
def test_the_view_reads_what_unicorn_reads(writes: list[tuple[int, bytes]], at: int,
                                           size: int) -> None:
    assert _VIEW is not None
    for offset, data in writes:
        data = data[: _SIZE - offset]
        _UC.mem_write(_BASE + offset, data)
    size = min(size, _SIZE - at)
    assert _VIEW[at : at + size].tobytes() == bytes(_UC.mem_read(_BASE + at, size))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, _SIZE - 1), st.binary(min_size=1, max_size=9000)),
                max_size=8))
def test_unicorn_reads_what_was_written_through_the_view(
        writes: list[tuple[int, bytes]]) -> None:
    assert _VIEW is not None
    for offset, data in writes:
        data = data[: _SIZE - offset]
        _VIEW[offset : offset + len(data)] = data
        assert bytes(_UC.mem_read(_BASE + offset, len(data))) == data


def test_what_is_not_one_mapped_region_is_refused() -> None:
    uc, base = _engine(Arch.RISCV64)
    assert locate_ram(uc, base, 2 * _SIZE) is None  # runs past the mapping
    assert locate_ram(uc, base + 0x10_0000_0000, _SIZE) is None  # nothing mapped
    assert locate_ram(uc, base, _SIZE - 100) is None  # not whole pages


def test_a_decoy_holding_both_magic_words_does_not_hide_ram() -> None:
    """Memory of the process's own that holds the magic words where a RAM block would
    (mapped after the engine's RAM, so the kernel may merge it into RAM's mapping) is
    tried and rejected, and the real block is still found."""
    uc, base = _engine(Arch.RISCV64)
    decoy = mmap.mmap(-1, _SIZE + 2 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    decoy[0:8] = struct.pack("<Q", liveram._MAGIC_FIRST)
    decoy[_SIZE - 8 : _SIZE] = struct.pack("<Q", liveram._MAGIC_LAST)
    decoy_address = ctypes.addressof(ctypes.c_char.from_buffer(decoy))
    uc.mem_write(base, struct.pack("<Q", liveram._MAGIC_FIRST))
    fd = os.open("/proc/self/mem", os.O_RDONLY)
    try:
        assert decoy_address in liveram._candidates(fd, _SIZE)  # it is really tried
        view = locate_ram(uc, base, _SIZE)
        assert view is not None
        uc.mem_write(base + 4096, b"written through the API")
        assert view[4096 : 4096 + 23].tobytes() == b"written through the API"
    finally:
        os.close(fd)
        decoy.close()
