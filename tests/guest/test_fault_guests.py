"""Faults the hardware reports that capsule's emulator does not see by itself, from C on
both architectures (userland/tests/device_faults.c, pc_alignment.c).

- device_faults: a frame from the device untyped right above RAM, where nothing is on
  the bus, mapped and then read, written and executed by threads with a fault handler.
  Each access is a VMFault for its thread alone, with the architecture's report of a bus
  error (below); the machine never stops for it.
- pc_alignment: a pc that is not a multiple of the instruction size, reached by an
  indirect jump or given by a fault reply. AArch64 raises a PC alignment fault, which
  seL4 passes on as a UserException whose Number is ESR_EL1; on RISC-V (2-byte
  instructions) jalr drops bit 0 of the target and sepc has no bit 0, so the thread runs
  from the even address below.

The expected words are the architectures' own encodings, written out here.
"""

from __future__ import annotations

import pytest

from kernel.model.tcb import ThreadState
from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

DEVICE = [f"DEVFLT{i:04d}" for i in range(1, 5)]
ALIGN = [f"PCALIGN{i:04d}" for i in range(1, 3)]

DEVICE_VA = 0x4000_0000

# RISC-V scause values (privileged spec, exception codes): seL4's FSR is scause.
RV_INSTRUCTION_ACCESS_FAULT = 1
RV_LOAD_ACCESS_FAULT = 5
RV_STORE_ACCESS_FAULT = 7


def esr(ec: int, iss: int = 0) -> int:
    """ESR_EL1: exception class in bits 31:26, IL (bit 25) set, then the ISS."""
    return ec << 26 | 1 << 25 | iss


EC_INSTRUCTION_ABORT_LOWER_EL = 0x20
EC_PC_ALIGNMENT = 0x22
EC_DATA_ABORT_LOWER_EL = 0x24
WNR = 1 << 6
FSC_SYNC_EXTERNAL_ABORT = 0b010000  # not on a translation table walk

FSR = {
    "riscv64": {"load": RV_LOAD_ACCESS_FAULT, "store": RV_STORE_ACCESS_FAULT,
                "fetch": RV_INSTRUCTION_ACCESS_FAULT},
    "aarch64": {"load": esr(EC_DATA_ABORT_LOWER_EL, FSC_SYNC_EXTERNAL_ABORT),
                "store": esr(EC_DATA_ABORT_LOWER_EL, WNR | FSC_SYNC_EXTERNAL_ABORT),
                "fetch": esr(EC_INSTRUCTION_ABORT_LOWER_EL, FSC_SYNC_EXTERNAL_ABORT)},
}


@pytest.mark.parametrize("program, expected", [("device_faults", DEVICE),
                                               ("pc_alignment", ALIGN)])
def test_check_ids_are_unique_and_in_order(program: str, expected: list[str]) -> None:
    assert check_ids_in_source(program) == expected


@pytest.mark.parametrize("arch", ARCHES)
def test_device_memory_with_nothing_behind_it_faults_in_the_thread(run_guest,  # type: ignore[no-untyped-def]
                                                                    arch: str) -> None:
    """Every check passes; the handler printed the words each VMFault carried (read at
    DEVICE_VA + 8, written at + 16, executed at DEVICE_VA itself), and the thread that
    had no handler is stopped at its load while the run went on to its end."""
    run = run_guest("device_faults", arch)
    assert_all_checks_pass(run, DEVICE)
    fsr = FSR[arch]
    faults = [line.split() for line in run.output.splitlines()
              if line.startswith("  VMFault ")]
    assert [(words[4], words[6], words[8]) for words in faults] == [
        (f"{DEVICE_VA + 8:#x}", "0", f"{fsr['load']:#x}"),
        (f"{DEVICE_VA + 16:#x}", "0", f"{fsr['store']:#x}"),
        (f"{DEVICE_VA:#x}", "1", f"{fsr['fetch']:#x}"),
    ]
    kernel = run.session.kernel
    orphan = [t for t in kernel.threads.values() if t.name == "orphan"]
    assert len(orphan) == 1 and orphan[0].state is ThreadState.INACTIVE


@pytest.mark.parametrize("arch", ARCHES)
def test_a_pc_off_the_instruction_grid(run_guest, arch: str) -> None:  # type: ignore[no-untyped-def]
    """Every check passes. On AArch64 each arrival at a misaligned pc (three: the jump,
    the thread sent back there, the fault reply) is a UserException with ESR EC 0x22,
    IL set, Code 0; on RISC-V none is, and the only fault is the illegal instruction
    (scause 2) the second check starts from."""
    run = run_guest("pc_alignment", arch)
    assert_all_checks_pass(run, ALIGN)
    numbers = [line.split()[4] for line in run.output.splitlines()
               if line.startswith("  UserException ")]
    if arch == "aarch64":
        alignment, illegal = f"{esr(EC_PC_ALIGNMENT):#x}", f"{esr(0x00):#x}"
        assert alignment == "0x8a000000"
        assert numbers == [alignment, alignment, illegal, alignment]
    else:
        assert numbers == ["0x2"]
