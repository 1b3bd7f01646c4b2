"""The level an AArch64 VMFault's FSR names, in the 48-bit, four-level address space.

The root task's first instruction is replaced by ``ldr x0, [x1]`` with x1 far above
2^39, where nothing is mapped below the VSpace root (the L0 table). With ``n`` tables
linked below the root on that address's walk, the load is a translation fault at level
n: the data-abort syndrome (EC 0x24, IL) with DFSC 0b0001nn. The root task has no fault
handler, so the run stops with the fault line, which carries seL4's FSR word.
"""

from __future__ import annotations

import struct

import pytest
from unicorn import arm64_const as A

from bootimage import build_image, load_image
from emulator.session import Session
from kernel.config import KernelConfig
from kernel.model.page_tables import translate, write_entry
from kernel.model.paging import Access

HIGH_VA = 0x7F00_0000_0000 + 0x1234_5000
LDR_X0_X1 = 0xF9400020  # ldr x0, [x1]


@pytest.mark.parametrize("tables", [0, 1, 2, 3])
def test_translation_fault_names_the_level_of_the_missing_entry(guest_elves,  # type: ignore[no-untyped-def]
                                                                tables: int) -> None:
    loaded = load_image(build_image(guest_elves["aarch64"]["hello"].read_bytes(),
                                    KernelConfig()))
    session = Session.boot(loaded.root, loaded.config, lambda byte: None)
    machine, fmt = session.machine, session.kernel.paging
    uc = machine.uc
    pc = uc.reg_read(A.UC_ARM64_REG_PC)
    code_paddr = translate(machine, fmt, machine.root, pc, Access.EXECUTE)
    assert code_paddr is not None
    machine.write_phys(code_paddr, struct.pack("<I", LDR_X0_X1))
    # Tables from the top of RAM, which nothing has used yet.
    table = machine.root
    for level in range(tables):
        below = machine.ram_base + machine.ram_size - (level + 1) * 0x1000
        machine.write_phys(below, bytes(0x1000))
        write_entry(machine, table, fmt.index(level, HIGH_VA), fmt.table_entry(below))
        table = below
    machine.page_tables_changed()
    uc.reg_write(A.UC_ARM64_REG_X1, HIGH_VA)
    result = session.run(1_000)
    assert (result.kind, result.status) == ("fault", 3), result.message
    assert f"VMFault: read at address {HIGH_VA:#x}" in result.message
    fsr = 0x24 << 26 | 1 << 25 | 0b000100 | tables
    assert f"(fsr {fsr:#x})" in result.message, result.message
