"""The VSpace guest programs: frames and page tables from C, 1 GiB frames (vspace_huge.c,
run with the 4 GiB of RAM its image configuration asks for), and processes spawned from
untyped memory by the process library (spawn.c, spawn_child.c), on both architectures.

``vspace`` and ``vspace_huge`` print one ``<ID> PASS|FAIL <title>`` line per check
(checks.h); every ID listed here must pass. The two fault programs end on a VMFault the root task cannot
handle: the run stops with the fault line and exit status 3, at the access that the
unmap (or the read-only remap) took away a moment after the address was used.
"""

from __future__ import annotations

import gc

import pytest

from kernel.config import KernelConfig
from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

CHECKS = [f"VSPACEG{i:04d}" for i in range(1, 19)]
HUGE_CHECKS = [f"VSPACEH{i:04d}" for i in range(1, 6)]
SPAWN_CHECKS = [f"SPAWN{i:04d}" for i in range(1, 5)]
PROGRAMS = {"vspace": CHECKS, "spawn": SPAWN_CHECKS}
CHECKING = {**PROGRAMS, "vspace_huge": HUGE_CHECKS}
"""Every checking program; vspace_huge's checks are asserted by its own test, which also
looks at the kernel after the run (one run each: zeroing its frame costs a second and a
gigabyte of host memory)."""


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    assert_all_checks_pass(run_guest(program, arch), PROGRAMS[program])


@pytest.mark.parametrize("program", sorted(CHECKING))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    assert check_ids_in_source(program) == CHECKING[program]


@pytest.mark.parametrize("arch", ARCHES)
def test_huge_frame_checks_pass_and_its_words_are_in_physical_memory(run_guest,
                                                                     arch: str) -> None:
    """Every vspace_huge check passes; then the kernel holds one 1 GiB frame cap,
    unmapped, at a 1 GiB-aligned address in RAM, whose first and last words in physical
    memory are what the guest wrote through its mapping."""
    run = run_guest("vspace_huge", arch)
    assert_all_checks_pass(run, HUGE_CHECKS)
    kernel = run.session.kernel
    from kernel.model.caps import FrameCap
    from kernel.model.cnode import CNode

    huge = [slot.cap for obj in kernel.objects.values() if isinstance(obj, CNode)
            for slot in obj.slots if isinstance(slot.cap, FrameCap) and slot.cap.size_bits == 30]
    assert len(huge) == 1, huge
    frame = huge[0]
    assert not frame.is_mapped and frame.paddr % (1 << 30) == 0
    machine = kernel.machine
    assert machine.ram_base <= frame.paddr <= machine.ram_base + machine.ram_size - (1 << 30)
    words = [machine.read_phys(frame.paddr + off, 8) for off in (0, (1 << 30) - 8)]
    assert [int.from_bytes(w, "little") for w in words] == [0x0123456789ABCDEF,
                                                           0xFEDCBA9876543210]
    # The run holds a gigabyte of host memory (the zeroed frame); its machine and kernel
    # refer to each other, so only the cycle collector frees it: now, not during the
    # next test's run.
    del run, kernel, machine
    gc.collect()


@pytest.mark.parametrize("arch", ARCHES)
def test_vspace_huge_with_default_ram_reports_the_missing_untyped(run_guest, arch: str) -> None:
    """With the default 32 MiB there is no 1 GiB untyped: the first check says so and
    every other one fails without a frame (so the image configuration is what makes
    the program pass)."""
    run = run_guest("vspace_huge", arch, KernelConfig())
    assert "VSPACEH0001 FAIL Retype a 1 GiB frame from a 1 GiB-aligned untyped: no RAM " \
        "untyped of 1 GiB or more in bootinfo\n" in run.output
    assert "verdict: 0 passed, 5 failed\n" in run.output
    assert (run.result.kind, run.result.status) == ("halt", 5), run.result.message


@pytest.mark.parametrize("arch", ARCHES)
def test_spawned_children_run_in_address_spaces_of_their_own(run_guest, arch: str) -> None:
    """After the demo, the kernel holds one thread per child, each with its own VSpace
    root and ASID, none the root task's."""
    run = run_guest("spawn", arch)
    kernel = run.session.kernel
    from kernel.core.threads import vspace_root_of

    spaces = [vspace_root_of(kernel, t) for t in kernel.threads.values() if t.name == "child"]
    assert len(spaces) == 5
    root_task = vspace_root_of(kernel, [*kernel.threads.values()][0])
    assert len(set(spaces)) == 5 and root_task not in spaces
    assert all(asid != 0 for _, asid in spaces)


@pytest.mark.parametrize("arch", ARCHES)
def test_access_after_unmap_faults(run_guest, arch: str) -> None:
    run = run_guest("vspace_unmap_fault", arch)
    assert "mapped: 42\nunmapped\n" in run.output
    assert "should not get here" not in run.output
    assert (run.result.kind, run.result.status) == ("fault", 3), run.result.message
    assert "VMFault: read at address 0x40000000" in run.result.message
    # seL4's FSR: RISC-V reports a load access fault (5) for a load page fault; AArch64
    # the data-abort syndrome, translation fault at level 3.
    fsr = {"riscv64": 0x5, "aarch64": 0x92000007}[arch]
    assert f"(fsr {fsr:#x})" in run.result.message


@pytest.mark.parametrize("arch", ARCHES)
def test_write_after_read_only_remap_faults(run_guest, arch: str) -> None:
    run = run_guest("vspace_readonly_fault", arch)
    assert "read-only now, still reads 7\n" in run.output
    assert "should not get here" not in run.output
    assert (run.result.kind, run.result.status) == ("fault", 3), run.result.message
    assert "VMFault: write at address 0x40000000" in run.result.message
    # A store access fault (7); a write permission fault at level 3 (WnR set).
    fsr = {"riscv64": 0x7, "aarch64": 0x9200004F}[arch]
    assert f"(fsr {fsr:#x})" in run.result.message
