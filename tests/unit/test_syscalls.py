"""Syscall entry on the fake machine: debug syscalls, unknown numbers, invocation errors."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch, abi_for
from kernel.abi.constants import CapTag, Error, InitialCap, Syscall
from kernel.abi.labels import label_table
from kernel.boot import boot
from kernel.config import KernelConfig
from kernel.entry.syscalls import CAPSULE_EXIT_MAGIC
from kernel.kernel import Kernel
from kernel.model.message import MessageInfo
from tests.fakes import FakeMachine
from tests.unit.test_boot import make_image


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def system(request: pytest.FixtureRequest) -> tuple[Kernel, FakeMachine, bytearray]:
    arch = request.param
    cfg = KernelConfig(ram_size=8 << 20)
    machine = FakeMachine(arch, cfg.ram_size)
    out = bytearray()
    kernel = Kernel(machine, cfg, out.append)
    boot(kernel, make_image(arch))
    return kernel, machine, out


def syscall(kernel: Kernel, machine: FakeMachine, number: int, *args: int) -> list[int]:
    machine.syscall_args(number, *args)
    kernel.syscall()
    return machine.read_syscall_window()


def test_put_char_writes_the_low_byte(system) -> None:
    kernel, machine, out = system
    for ch in b"ok\n":
        syscall(kernel, machine, Syscall.seL4_SysDebugPutChar, 0x4100 | ch)
    assert bytes(out) == b"ok\n"
    assert kernel.stop is None


def test_halt_with_capsule_exit_marker_carries_status(system) -> None:
    kernel, machine, _ = system
    syscall(kernel, machine, Syscall.seL4_SysDebugHalt, 42, CAPSULE_EXIT_MAGIC)
    assert kernel.stop is not None and (kernel.stop.kind, kernel.stop.status) == ("halt", 42)


def test_plain_halt_is_status_zero(system) -> None:
    kernel, machine, _ = system
    syscall(kernel, machine, Syscall.seL4_SysDebugHalt, 42, 0)
    assert (kernel.stop.kind, kernel.stop.status) == ("halt", 0)


def test_yield_alone_keeps_running(system) -> None:
    kernel, machine, _ = system
    root = kernel.current
    syscall(kernel, machine, Syscall.seL4_SysYield)
    assert kernel.current is root and kernel.stop is None


@pytest.mark.parametrize("number", [-99, 5, -31, Syscall.seL4_SysBenchmarkNullSyscall])
def test_unknown_syscall_is_a_fault_not_ignored(system, number: int) -> None:
    kernel, machine, _ = system
    pc = abi_for(kernel.arch).user_context.index("pc")
    machine.registers[pc] = 0x10104  # resume pc after the trap
    syscall(kernel, machine, number)
    assert kernel.stop is not None and kernel.stop.kind == "fault"
    assert f"UnknownSyscall: syscall number {number}" in kernel.stop.message
    assert "at pc 0x10100" in kernel.stop.message
    # The stopped thread would restart at the trap instruction (seL4's FaultIP).
    assert kernel.registers_of([*kernel.threads.values()][0])[pc] == 0x10100


def test_call_on_empty_slot_replies_invalid_capability(system) -> None:
    kernel, machine, _ = system
    window = syscall(kernel, machine, Syscall.seL4_SysCall, 100, MessageInfo(1, 0, 0, 0).to_word())
    info = MessageInfo.from_word(window[1])
    assert (info.label, info.length) == (Error.seL4_InvalidCapability, 1)
    assert window[0] == 0 and window[2] == 0  # badge 0; MR0 = cap index 0
    assert kernel.stop is None


def test_send_on_empty_slot_is_silent(system) -> None:
    kernel, machine, _ = system
    machine.syscall_args(Syscall.seL4_SysSend, 100, MessageInfo(1, 0, 0, 0).to_word(), 7, 8)
    before = machine.save_context()
    kernel.syscall()
    assert machine.save_context() == before
    assert kernel.stop is None


def test_call_with_guard_mismatch_is_a_cap_fault(system) -> None:
    kernel, machine, _ = system
    syscall(kernel, machine, Syscall.seL4_SysCall, 1 << 63, 0)
    assert kernel.stop is not None and kernel.stop.kind == "fault"
    assert "cap fault in send phase on cptr 0x8000000000000000 (GuardMismatch)" in kernel.stop.message


def test_recv_on_a_non_endpoint_is_a_receive_phase_cap_fault(system) -> None:
    kernel, machine, _ = system
    syscall(kernel, machine, Syscall.seL4_SysRecv, InitialCap.seL4_CapInitThreadTCB)
    assert "cap fault in receive phase" in kernel.stop.message
    assert "MissingCapability" in kernel.stop.message


def test_reply_with_empty_caller_slot_is_a_no_op(system) -> None:
    kernel, machine, _ = system
    syscall(kernel, machine, Syscall.seL4_SysReply, 0, 0)
    assert kernel.stop is None


@pytest.mark.parametrize(
    ("cptr", "tag"),
    [
        (InitialCap.seL4_CapInitThreadTCB, CapTag.thread_cap),
        (InitialCap.seL4_CapInitThreadCNode, CapTag.cnode_cap),
        (InitialCap.seL4_CapBootInfoFrame, CapTag.frame_cap),
        (InitialCap.seL4_CapIOSpace, CapTag.null_cap),
        (1 << 40, CapTag.null_cap),  # guard mismatch: lookup fails, 0 returned
    ],
)
def test_debug_cap_identify(system, cptr: int, tag: CapTag) -> None:
    kernel, machine, _ = system
    window = syscall(kernel, machine, Syscall.seL4_SysDebugCapIdentify, cptr)
    assert window[0] == tag


def test_debug_cap_identify_vspace_tag_per_arch(system) -> None:
    kernel, machine, _ = system
    window = syscall(kernel, machine, Syscall.seL4_SysDebugCapIdentify, InitialCap.seL4_CapInitThreadVSpace)
    expected = CapTag.page_table_cap if kernel.arch is Arch.RISCV64 else CapTag.vspace_cap
    assert window[0] == expected


def test_invoking_an_object_without_a_decoder_yet_stops_with_a_clear_message(system) -> None:
    kernel, machine, _ = system
    # IRQIssueIRQHandler on the IRQ control cap: interrupts are not built.
    label = label_table(kernel.arch, False)["IRQIssueIRQHandler"]
    syscall(kernel, machine, Syscall.seL4_SysCall, InitialCap.seL4_CapIRQControl,
            MessageInfo(label, 0, 0, 0).to_word())
    assert kernel.stop is not None and (kernel.stop.kind, kernel.stop.status) == ("kernel-halt", 5)
    assert kernel.stop.message == (
        f"not implemented in capsule yet: invocations of irq_control_cap (label {label})")


def test_a_label_foreign_to_an_undecoded_object_is_illegal_operation(system) -> None:
    kernel, machine, _ = system
    # CNodeCopy (label 20) on a TCB cap: seL4's TCB decoder answers IllegalOperation.
    window = syscall(kernel, machine, Syscall.seL4_SysCall, InitialCap.seL4_CapInitThreadTCB,
                     MessageInfo(20, 0, 0, 0).to_word())
    assert kernel.stop is None
    assert MessageInfo.from_word(window[1]).label == Error.seL4_IllegalOperation
