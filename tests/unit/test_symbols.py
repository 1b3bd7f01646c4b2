"""bootimage.symbols: the root task's symbols by name and by address, read with pyelftools
from a guest built from source (and an ELF without a symbol table)."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bootimage.symbols import read_symbols
from tests.conftest import ARCHES
from tests.elfgen import simple_elf


@pytest.mark.parametrize("arch", ARCHES)
def test_functions_name_their_addresses(guest_elves: dict[str, dict[str, Path]], arch: str) -> None:
    elf = guest_elves[arch]["ipc_faults"]
    with elf.open("rb") as f:
        raw = [(s.name, s["st_value"], s["st_size"], s["st_info"]["type"])
               for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()]  # type: ignore[union-attr]
    table = read_symbols(elf.read_bytes())
    functions = [(n, v, z) for n, v, z, t in raw if t == "STT_FUNC" and z and v]
    unique = {n for n, _, _ in functions if sum(1 for m, _, _ in functions if m == n) == 1}
    assert len(unique) > 50
    for name, value, size in functions:
        if name not in unique:
            continue
        assert table.address_of(name) == value
        assert table.describe(value) == name
        assert table.describe(value + size - 1) == f"{name}+{size - 1:#x}"
    # An assembly label (ipc_faults.c puts global labels on its trap instructions) has
    # no size: an address is named by the function around it.
    label = next(v for n, v, _, _ in raw if n == "unknown_syscall_at")
    assert table.address_of("unknown_syscall_at") == label
    assert table.describe(label).startswith("unknown_syscall_thread+")  # type: ignore[union-attr]
    assert table.address_of("no_such_symbol") is None


def test_an_elf_without_symbols_names_nothing() -> None:
    table = read_symbols(simple_elf())
    assert len(table) == 0 and table.describe(0x10000) is None and table.address_of("main") is None
