"""The VSpace guest programs: frames and page tables from C, and processes spawned from
untyped memory by the process library (spawn.c, spawn_child.c), on both architectures.

``vspace`` prints one ``<ID> PASS|FAIL <title>`` line per check (checks.h); every ID
listed here must pass. The two fault programs end on a VMFault the root task cannot
handle: the run stops with the fault line and exit status 3, at the access that the
unmap (or the read-only remap) took away a moment after the address was used.
"""

from __future__ import annotations

import pytest

from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source

CHECKS = [f"VSPACEG{i:04d}" for i in range(1, 19)]
SPAWN_CHECKS = [f"SPAWN{i:04d}" for i in range(1, 5)]
PROGRAMS = {"vspace": CHECKS, "spawn": SPAWN_CHECKS}


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_every_check_passes(run_guest, program: str, arch: str) -> None:
    assert_all_checks_pass(run_guest(program, arch), PROGRAMS[program])


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_check_ids_are_unique_and_in_order(program: str) -> None:
    assert check_ids_in_source(program) == PROGRAMS[program]


@pytest.mark.parametrize("arch", ARCHES)
def test_spawned_children_run_in_address_spaces_of_their_own(run_guest, arch: str) -> None:
    """After the demo, the kernel holds one thread per child, each with its own VSpace
    root and ASID, none the root task's."""
    run = run_guest("spawn", arch)
    kernel = run.session.kernel
    from kernel.threads import vspace_root_of

    spaces = [vspace_root_of(kernel, t) for t in kernel.threads if t.name == "child"]
    assert len(spaces) == 5
    root_task = vspace_root_of(kernel, kernel.threads[0])
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
