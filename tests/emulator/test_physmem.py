"""The kernel's view of guest RAM: reads, writes, and the page-table words it keeps.

The kept words must equal RAM after any sequence of kernel writes (whole-range writes,
single entries, ranges that straddle tables or cover many), and the number kept stays
bounded whatever a guest makes the kernel walk.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from unicorn import UcError

from emulator.machine import UnicornMachine
from emulator.physmem import KEPT_TABLES_LIMIT
from kernel.abi.arch import Arch

_RAM = 1 << 25
_TABLES = 4  # tables at the start of RAM the property test works on


@pytest.fixture(scope="module", params=["RAM read in place", "RAM read through the API"])
def machine(request: pytest.FixtureRequest) -> UnicornMachine:
    m = UnicornMachine(Arch.RISCV64, _RAM)
    assert m.memory._ram is not None  # located on every platform the suite runs on
    if request.param != "RAM read in place":
        m.memory._ram = None
    return m


def _ram_entry(machine: UnicornMachine, table: int, index: int) -> int:
    return int.from_bytes(bytes(machine.uc.mem_read(table + 8 * index, 8)), "little")


def test_read_returns_the_bytes_ram_holds(machine: UnicornMachine) -> None:
    base = machine.ram_base + 0x3000
    machine.uc.mem_write(base, bytes(range(200)))
    assert machine.read_phys(base + 3, 100) == bytes(range(3, 103))
    big = 300 * 1024  # more than the reused buffer holds
    assert machine.read_phys(base, big) == bytes(range(200)) + bytes(big - 200)


def test_read_outside_ram_is_a_unicorn_error(machine: UnicornMachine) -> None:
    with pytest.raises(UcError):
        machine.read_phys(machine.ram_base + _RAM - 4, 8)


def test_a_write_over_a_kept_table_is_seen(machine: UnicornMachine) -> None:
    table = machine.ram_base + 0x10000
    machine.write_table_entry(table, 5, 0x1234)
    assert machine.read_table_entry(table, 5) == 0x1234  # now kept
    machine.write_phys(table + 8 * 5, (0x5678).to_bytes(8, "little"))
    assert machine.read_table_entry(table, 5) == 0x5678
    machine.write_phys(table - 0x1000, bytes(0x3000))  # a range covering the table
    assert machine.read_table_entry(table, 5) == 0


def test_kept_tables_stay_bounded(machine: UnicornMachine) -> None:
    base = machine.ram_base + 0x100000
    for n in range(KEPT_TABLES_LIMIT + 10):
        machine.read_table_entry(base + 0x1000 * (n % 1024), 0)
        machine.read_table_entry(base + 0x1000 * n, 0)
    assert machine.memory.kept_tables() <= KEPT_TABLES_LIMIT


_writes = st.one_of(
    st.tuples(st.just("entry"), st.integers(0, _TABLES - 1), st.integers(0, 511),
              st.integers(0, (1 << 64) - 1)),
    st.tuples(st.just("bytes"), st.integers(0, _TABLES * 4096 - 1), st.integers(1, 9000),
              st.integers(0, 255)),
    st.tuples(st.just("read"), st.integers(0, _TABLES - 1), st.integers(0, 511), st.just(0)),
)


def _table_as_kept(machine: UnicornMachine, table: int) -> bytes:
    return b"".join(machine.read_table_entry(table, i).to_bytes(8, "little") for i in range(512))


@settings(max_examples=80, deadline=None)
@given(st.lists(_writes, max_size=40))
def test_kept_words_equal_ram_after_any_kernel_writes(ops: list[tuple[str, int, int, int]]) -> None:
    machine = UnicornMachine(Arch.RISCV64, 1 << 20)
    base = machine.ram_base
    for kind, a, b, c in ops:
        if kind == "entry":
            machine.write_table_entry(base + 4096 * a, b, c)
        elif kind == "bytes":
            machine.write_phys(base + a, bytes([c]) * b)
        else:
            machine.read_table_entry(base + 4096 * a, b)
        for table in range(base, base + 4096 * _TABLES, 4096):
            ram = bytes(machine.uc.mem_read(table, 4096))
            assert _table_as_kept(machine, table) == ram
            assert b"".join(w.to_bytes(8, "little") for w in machine.read_table(table)) == ram
