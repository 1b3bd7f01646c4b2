"""The MCS configuration's ABI: numbers against the published facts, and an MCS kernel
that answers at them (system calls, object types, retype of the MCS objects).

The facts file lives beside the repository (``<repo>/../shared/abi/facts.json``), as for
``test_abi_methods``; without it these tests fail rather than pass unchecked.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from kernel.abi.arch import ABI_AARCH64, ABI_RISCV64, Arch, object_type_enum
from kernel.abi.constants import (
    BOOTINFO,
    BOOTINFO_MCS,
    CapTag,
    Error,
    FaultLabelMCS,
    Syscall,
    SyscallMCS,
)
from kernel.model.caps import NotificationCap, ReplyObjectCap, SchedContextCap
from kernel.model.mcs_time import max_period_us, min_budget_ticks, min_budget_us, us_to_ticks
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext, refill_absolute_max
from tests.abi.support import System

FACTS = Path(__file__).resolve().parents[3] / "shared" / "abi" / "facts.json"


@cache
def _facts() -> dict[str, Any]:
    if not FACTS.is_file():
        pytest.fail(f"ABI facts file {FACTS} is missing")
    data: dict[str, Any] = json.loads(FACTS.read_text())
    return data


# ---------------------------------------------------------------------------- numbers


def test_mcs_syscall_numbers_are_the_published_ones() -> None:
    published = _facts()["syscalls"]["mcs"]
    assert {m.name.removeprefix("seL4_Sys"): m.value for m in SyscallMCS} == published
    # The MCS numbers differ where the non-MCS kernel puts other calls: the table must
    # not be shared.
    assert SyscallMCS.seL4_SysDebugNameThread == -17 != Syscall.seL4_SysDebugNameThread
    assert "Reply" not in published


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_mcs_object_types_are_the_published_ones(arch: Arch) -> None:
    # Not in our configurations: Sv39 has no tera pages, and there is no hypervisor.
    def ours(name: str) -> bool:
        return name != "seL4_RISCV_Tera_Page" and not name.endswith(
            ("_if_hyp", "_placeholder", "_placeholder_without_hyp"))

    for mcs, key in ((True, f"{arch.short}-mcs"), (False, arch.short)):
        published = {k: v for k, v in _facts()["object_types"][key].items() if ours(k)}
        assert {m.name: m.value for m in object_type_enum(arch, mcs)} == published


def test_mcs_fault_labels_bootinfo_and_cap_tags_are_the_published_ones() -> None:
    for arch in Arch:
        labels = {k: v for k, v in _facts()["fault_labels"][f"{arch.short}-mcs"].items()
                  if not k.endswith(("_if_hyp", "_if_hwdebug"))}
        assert {m.name.removeprefix("seL4_Fault_"): m.value for m in FaultLabelMCS} == labels
    published = _facts()["bootinfo"]["mcs"]
    assert BOOTINFO_MCS.size == published["_total_size"] == BOOTINFO.size + 16
    assert {name: [off, size] for name, off, size in BOOTINFO_MCS.fields} == {
        k: v for k, v in published.items() if not k.startswith("_")}
    tags = _facts()["kernel_cap_tags"]["common"]
    assert CapTag.sched_context_cap == tags["sched_context_cap_mcs"]
    assert CapTag.sched_control_cap == tags["sched_control_cap_mcs"]


def test_time_conversion_follows_each_platform_timer() -> None:
    # 10 MHz: whole ticks per microsecond; 62.5 MHz: through kHz, rounded down.
    assert us_to_ticks(ABI_RISCV64, 5000) == 50_000
    assert us_to_ticks(ABI_AARCH64, 5000) == 312_500
    assert us_to_ticks(ABI_AARCH64, 3) == 187  # 187.5 rounded down
    assert min_budget_us() == 20
    assert min_budget_ticks(ABI_RISCV64) == 200
    assert min_budget_ticks(ABI_AARCH64) == 1250
    # MAX_PERIOD_US: an eighth of the largest count that converts without overflow.
    assert max_period_us(ABI_RISCV64) == ((1 << 64) - 1) // 10 // 8
    assert us_to_ticks(ABI_AARCH64, max_period_us(ABI_AARCH64) * 8) < 1 << 64


def test_refill_capacity_grows_with_the_context_size() -> None:
    # 128 bytes: the two minimum refills; each further 16 bytes one more.
    assert refill_absolute_max(7) == 2
    assert refill_absolute_max(8) == 10
    assert refill_absolute_max(10) == 58


# ---------------------------------------------------------------------------- the kernel


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def system(request: pytest.FixtureRequest) -> System:
    return System(request.param, mcs=True)


def test_mcs_kernel_answers_at_the_mcs_numbers(system: System) -> None:
    printed: list[int] = []
    system.kernel.console = printed.append  # type: ignore[method-assign]
    root = system.kernel.current
    assert root is not None
    system.machine.syscall_args(SyscallMCS.seL4_SysDebugPutChar, ord("m"))
    system.kernel.syscall()
    # -9 is DebugPutChar in the non-MCS kernel but Wait in the MCS one: a Wait on the
    # null cap 0x6d is a cap fault (the root task has no handler), not a character.
    system.machine.syscall_args(Syscall.seL4_SysDebugPutChar, ord("n"))
    system.kernel.syscall()
    assert printed == [ord("m")]
    assert root.stop_reason is not None and "cap fault in receive phase" in root.stop_reason


@pytest.mark.parametrize("number", [-34, -100, SyscallMCS.seL4_SysDebugRun])
def test_numbers_outside_the_mcs_table_are_unknown_syscalls(system: System,
                                                           number: int) -> None:
    root = system.kernel.current
    assert root is not None
    system.machine.syscall_args(number)
    system.kernel.syscall()
    # No fault handler: the root task stops on the UnknownSyscall fault.
    assert root.stop_reason is not None and "unknown" in root.stop_reason.lower()


def test_mcs_retype_makes_scheduling_contexts_and_reply_objects(system: System) -> None:
    ut = system.ram_untyped(16)
    dest = system.free_slots(4)
    ok = system.retype(ut, system.otype("seL4_SchedContextObject"), 8, dest, 1)
    assert (ok.label, ok.words) == (0, [])
    sc_cap = system.cap(dest)
    assert isinstance(sc_cap, SchedContextCap) and sc_cap.size_bits == 8
    sc = system.kernel.objects[sc_cap.paddr]
    assert isinstance(sc, SchedContext) and not sc.configured and sc.tcb is None
    assert sc_cap.paddr % (1 << 8) == 0

    ok = system.retype(ut, system.otype("seL4_ReplyObject"), 0, dest + 1, 1)
    assert ok.label == 0
    reply_cap = system.cap(dest + 1)
    assert isinstance(reply_cap, ReplyObjectCap)
    assert isinstance(system.kernel.objects[reply_cap.paddr], ReplyObject)

    # An MCS notification is 2^6 bytes: two in a row are 64 bytes apart.
    ok = system.retype(ut, system.otype("seL4_NotificationObject"), 0, dest + 2, 2)
    assert ok.label == 0
    first, second = system.cap(dest + 2), system.cap(dest + 3)
    assert isinstance(first, NotificationCap) and isinstance(second, NotificationCap)
    assert second.paddr - first.paddr == 64


def test_mcs_retype_refuses_a_scheduling_context_below_the_minimum(system: System) -> None:
    ut = system.ram_untyped(16)
    dest = system.free_slots(1)
    before = system.cap(ut)
    reply = system.retype(ut, system.otype("seL4_SchedContextObject"), 6, dest, 1)
    assert (reply.label, reply.words) == (Error.seL4_InvalidArgument, [1])
    assert system.slots[dest].is_empty and system.cap(ut) == before


def test_mcs_type_numbers_past_the_new_objects_moved_up_by_two(system: System) -> None:
    """The 4 KiB frame is type 8 (RISC-V) / 9 (AArch64) under MCS; the non-MCS number
    now names another object type, and the count's number is refused."""
    ut = system.ram_untyped(16)
    dest = system.free_slots(1)
    page = "seL4_RISCV_4K_Page" if system.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    assert system.otype(page) == (8 if system.arch is Arch.RISCV64 else 9)
    count = system.otype("seL4_ObjectTypeCount")
    reply = system.retype(ut, count, 0, dest, 1)
    assert (reply.label, reply.words) == (Error.seL4_InvalidArgument, [0])
    assert system.retype(ut, system.otype(page), 0, dest, 1).label == 0
