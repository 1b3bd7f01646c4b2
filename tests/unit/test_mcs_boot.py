"""Booting the MCS kernel (abi/boot.md): the root task's scheduling context in slot 14,
the SchedControl caps after the extra bootinfo frames, and the MCS bootinfo layout."""

from __future__ import annotations

import struct
from dataclasses import replace

import pytest

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import BOOTINFO, BOOTINFO_MCS, CapTag, InitialCap, SyscallMCS
from kernel.boot import BootReport, boot, boot_caps
from kernel.config import ConfigError, KernelConfig
from kernel.kernel import Kernel
from kernel.model.caps import NullCap, SchedContextCap, SchedControlCap, UntypedCap
from kernel.model.sched_context import SchedContext
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image, root_slots

SC_SLOT = int(InitialCap.seL4_CapInitThreadSC)
BUDGET_TICKS = {Arch.RISCV64: 50_000, Arch.AARCH64: 312_500}
"""CONFIG_BOOT_THREAD_TIME_SLICE (5 ms) at 10 MHz and at 62.5 MHz."""


def _boot(arch: Arch, mcs: bool = True,
          device_tree: bytes | None = None) -> tuple[Kernel, FakeMachine, BootReport]:
    cfg = KernelConfig(ram_size=8 << 20, mcs=mcs).validate()
    machine = FakeMachine(arch, cfg.ram_size)
    kernel = Kernel(machine, cfg, lambda byte: None)
    image = replace(make_image(arch), device_tree=device_tree)
    return kernel, machine, boot(kernel, image)


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def _bootinfo_words(machine: FakeMachine, report: BootReport, kernel: Kernel,
                    name: str, count: int, mcs: bool = True) -> tuple[int, ...]:
    layout = BOOTINFO_MCS if mcs else BOOTINFO
    frame = root_slots(kernel)[InitialCap.seL4_CapBootInfoFrame].cap
    raw = machine.read_phys(frame.paddr + layout.offset(name), 8 * count)
    return struct.unpack(f"<{count}Q", raw)


def test_root_task_runs_on_a_round_robin_context_in_slot_14(arch: Arch) -> None:
    kernel, _, _ = _boot(arch)
    cap = root_slots(kernel)[SC_SLOT].cap
    assert cap == SchedContextCap(cap.paddr, 7)
    sc = kernel.objects[cap.paddr]
    assert isinstance(sc, SchedContext)
    root = kernel.current
    assert root is not None and sc.tcb is root and root.sched_context is sc
    assert sc.is_round_robin and sc.max_refills == 2
    assert sc.budget == BUDGET_TICKS[arch] == sum(r.amount for r in sc.refills)
    assert sc.paddr % (1 << 7) == 0


def test_schedcontrol_region_follows_paging_and_precedes_image_frames(arch: Arch) -> None:
    kernel, machine, report = _boot(arch)
    info = report.bootinfo
    assert info.schedcontrol is not None
    start, end = info.schedcontrol
    assert (start, end) == (info.user_image_paging[1], info.user_image_paging[1] + 1)
    assert info.user_image_frames[0] == end
    slots = root_slots(kernel)
    assert slots[start].cap == SchedControlCap(0)
    # The bytes the root task reads: schedcontrol at 152, untyped moved to 168, the
    # descriptors from 184.
    assert _bootinfo_words(machine, report, kernel, "schedcontrol", 2) == (start, end)
    assert _bootinfo_words(machine, report, kernel, "untyped", 2) == info.untyped
    ut_start, _ = info.untyped
    first = slots[ut_start].cap
    assert isinstance(first, UntypedCap)
    paddr, = _bootinfo_words(machine, report, kernel, "untypedList", 1)
    assert paddr == first.paddr


def test_schedcontrol_caps_come_after_the_extra_bootinfo_frames(arch: Arch) -> None:
    kernel, _, report = _boot(arch, device_tree=b"\xd0\x0d\xfe\xed" + bytes(60))
    info = report.bootinfo
    assert info.extra_pages[1] > info.extra_pages[0]
    assert info.schedcontrol == (info.extra_pages[1], info.extra_pages[1] + 1)


def test_mcs_boot_uses_one_more_slot_than_non_mcs(arch: Arch) -> None:
    kernel, machine, report = _boot(arch, mcs=False)
    mcs_kernel, _, mcs_report = _boot(arch)
    assert report.bootinfo.schedcontrol is None
    assert isinstance(root_slots(kernel)[SC_SLOT].cap, NullCap)
    # One slot more before the untypeds (how many untypeds cover the rest of RAM
    # depends on where boot's objects fell).
    assert mcs_report.bootinfo.untyped[0] == report.bootinfo.untyped[0] + 1
    image = make_image(arch)
    counted = boot_caps(arch, image.start, image.end, 8 << 20, mcs=True)
    assert counted.total == boot_caps(arch, image.start, image.end, 8 << 20).total + 1
    # Non-MCS: untyped stays at 152.
    assert _bootinfo_words(machine, report, kernel, "untyped", 2, mcs=False) \
        == report.bootinfo.untyped
    # The MCS root task's context is RAM boot reserved, not an untyped's.
    names = [what for what, _, _ in mcs_report.reserved]
    assert "root scheduling context" in names
    assert "root scheduling context" not in [what for what, _, _ in report.reserved]
    assert mcs_report.reserved_bytes == report.reserved_bytes + 128


def test_the_root_task_identifies_its_mcs_caps(arch: Arch) -> None:
    kernel, machine, report = _boot(arch)
    assert report.bootinfo.schedcontrol is not None
    tags = []
    for cptr in (SC_SLOT, report.bootinfo.schedcontrol[0]):
        machine.syscall_args(SyscallMCS.seL4_SysDebugCapIdentify, cptr)
        kernel.syscall()
        tags.append(machine.read_syscall_window()[0])
    assert tags == [CapTag.sched_context_cap, CapTag.sched_control_cap]
    assert abi_for(arch).timer_hz in (10_000_000, 62_500_000)


def test_the_invariants_catch_a_broken_binding_and_refills(arch: Arch) -> None:
    from kernel.model.errors import KernelBug
    from kernel.model.sched_context import Refill
    from kernel.views.invariants import check_all

    kernel, _, _ = _boot(arch)
    check_all(kernel)
    root = kernel.current
    assert root is not None and root.sched_context is not None
    sc = root.sched_context
    sc.refills = [Refill(0, sc.budget - 1)]
    with pytest.raises(KernelBug, match="sched-context.*sum to the budget"):
        check_all(kernel)
    sc.refills = [Refill(0, sc.budget)]
    sc.tcb = None
    with pytest.raises(KernelBug, match="sched-context"):
        check_all(kernel)


def test_mcs_with_several_domains_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_domains"):
        KernelConfig(mcs=True, num_domains=2).validate()
    assert KernelConfig(mcs=True, num_domains=1).validate().mcs


def test_boot_sets_the_first_timer_at_the_end_of_the_root_tasks_slice(arch: Arch) -> None:
    """The MCS timer is one-shot: boot sets it where the root task's 5 ms run out, and
    the time from then on is charged to the root task's context."""
    kernel, machine, _report = _boot(arch)
    assert kernel.mcs is not None and kernel.current is not None
    assert machine.deadline == kernel.mcs.deadline == BUDGET_TICKS[arch]
    assert kernel.mcs.sc is kernel.current.sched_context
    non_mcs, plain_machine, _ = _boot(arch, mcs=False)
    assert non_mcs.mcs is None and plain_machine.deadline is None  # the periodic tick
