"""User-mode counters from C on both architectures (userland/tests/counters.c).

RISC-V's cycle, time and instret counters are readable in every image (as seL4 under
OpenSBI leaves them); AArch64's PMU only in an image with seL4's KernelArmExportPMUUser
(``arm_export_pmu_user``), and otherwise an EL0 access is a UserException with the ESR
of a trapped MRS. Counts are functions of the instructions retired: two runs of one image
print the same values, and a run taken up from a checkpoint halfway prints them too.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from bootimage import build_image, load_image
from emulator.session import Session
from kernel.config import KernelConfig
from tests.conftest import ARCHES
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source
from userland.build import image_config

READABLE = ["CNTR0001", "CNTR0002", "CNTR0003", "CNTR0004", "CNTR0006"]
UNEXPORTED = ["CNTR0005", "CNTR0006"]


def test_check_ids_are_stable() -> None:
    assert check_ids_in_source("counters") == [*READABLE[:4], "CNTR0006", "CNTR0005", "CNTR0006"]


@pytest.mark.parametrize("arch", ARCHES)
def test_counters_count_instructions_and_repeat_exactly(run_guest, arch: str) -> None:  # type: ignore[no-untyped-def]
    first = run_guest("counters", arch)
    assert_all_checks_pass(first, READABLE)
    second = run_guest("counters", arch)
    assert second.output == first.output
    assert second.result.instructions == first.result.instructions


def test_riscv_counters_need_no_option(run_guest) -> None:  # type: ignore[no-untyped-def]
    run = run_guest("counters", "riscv64", KernelConfig())
    assert_all_checks_pass(run, READABLE)


def test_an_unexported_pmu_traps_as_on_sel4(run_guest) -> None:  # type: ignore[no-untyped-def]
    """ESR_EL1 EC 0x18 with the ISS of ``mrs x3, pmccntr_el0``: Op0 3, Op2 0, Op1 3,
    CRn 9, Rt 3, CRm 13, read."""
    run = run_guest("counters", "aarch64", KernelConfig())
    assert_all_checks_pass(run, UNEXPORTED)
    iss = 3 << 20 | 0 << 17 | 3 << 14 | 9 << 10 | 3 << 5 | 13 << 1 | 1
    assert f"number {0x18 << 26 | 1 << 25 | iss:#x}" in run.output
    assert "number 0x2000000" in run.output  # PMINTENSET_EL1 at EL0: UNDEFINED, EC 0


@pytest.mark.parametrize("arch", ARCHES)
def test_counters_go_on_from_a_checkpoint(guest_elves, arch: str) -> None:  # type: ignore[no-untyped-def]
    loaded = load_image(build_image(guest_elves[arch]["counters"].read_bytes(),
                                    image_config("counters")))
    whole = bytearray()
    session = Session.boot(loaded.root, loaded.config, whole.append)
    total = session.run().instructions
    assert total is not None
    for stop in (total // 3, total // 2):
        before = bytearray()
        halfway = Session.boot(loaded.root, loaded.config, before.append)
        assert halfway.run(stop).kind == "limit"
        after = bytearray()
        restored = Session.restore(halfway.checkpoint(), after.append)
        restored.run()
        assert bytes(before + after) == bytes(whole)


def test_the_option_changes_nothing_else(run_guest) -> None:  # type: ignore[no-untyped-def]
    """A program that touches no counter runs the same with the PMU exported."""
    plain = run_guest("threads", "aarch64")
    exported = run_guest("threads", "aarch64",
                         replace(image_config("threads"), arm_export_pmu_user=True))
    assert exported.output == plain.output
    assert exported.result.instructions == plain.result.instructions
