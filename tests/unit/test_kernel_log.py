"""The kernel log (kernel.views.kernel_log): seL4's userError and double-fault lines.

Expected lines are written from the format seL4's debug kernel uses (``userError`` in
seL4 16.0.0 ``include/api/types.h``, ``handleDoubleFault`` in
``src/kernel/faulthandler.c``) and the rules of kernel_log's docstring.
"""

from __future__ import annotations

import pickle

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap, Syscall
from kernel.model.errors import (
    FailedLookup,
    GuardMismatch,
    InvalidArgument,
    MissingCapability,
    NotEnoughMemory,
    TruncatedMessage,
)
from kernel.model.faults import CapFault, UnknownSyscallFault, UserExceptionFault, VMFault
from kernel.model.message import MessageInfo
from kernel.model.paging import Access
from kernel.model.tcb import TCB
from kernel.views.kernel_log import KernelLog, error_text, no_handler_line
from tests.abi.support import System

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
TCB_SLOT = int(InitialCap.seL4_CapInitThreadTCB)
TRAP = 0x40_1230
"""Where the root thread's trap instruction is in these tests."""


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def logged(request: pytest.FixtureRequest) -> tuple[System, list[str]]:
    system = System(request.param)
    lines: list[str] = []
    KernelLog(system.kernel, lines.append)
    system.machine.registers[0] = TRAP + 4  # the pc a syscall trap leaves: past the trap
    return system, lines


def _prefix(system: System) -> str:
    root = system.kernel.current
    assert root is not None
    return f'<<seL4(CPU 0) [decode_cnode_invocation T{root.paddr:#x} "{root.name}" @401230]: '


def test_cnode_copy_into_an_occupied_slot_is_delete_first(logged: tuple[System, list[str]]) -> None:
    system, lines = logged
    reply = system.call(CNODE, system.label("CNodeCopy"), [TCB_SLOT, 64, TCB_SLOT, 64, 0xF],
                        extra=[CNODE])
    assert reply.label != 0
    assert lines == [_prefix(system) + "CNodeCap: CNodeCopy: DeleteFirst.>>"]


def test_a_range_error_shows_its_range(logged: tuple[System, list[str]]) -> None:
    system, lines = logged
    system.call(CNODE, system.label("CNodeCopy"), [TCB_SLOT, 0, TCB_SLOT, 64, 0xF],
                extra=[CNODE])
    assert lines == [_prefix(system) + "CNodeCap: CNodeCopy: RangeError [1..64].>>"]


def test_a_wrong_label_is_an_illegal_operation(logged: tuple[System, list[str]]) -> None:
    system, lines = logged
    system.call(CNODE, system.label("UntypedRetype"), [])
    system.call(CNODE, 0xBEEF, [])
    assert lines == [_prefix(system) + "CNodeCap: UntypedRetype: IllegalOperation.>>",
                     _prefix(system) + "CNodeCap: label 48879: IllegalOperation.>>"]


def test_a_refused_send_is_logged_though_nobody_gets_a_reply(
        logged: tuple[System, list[str]]) -> None:
    """seL4 prints userError in decode, whatever the send kind."""
    system, lines = logged
    info = MessageInfo(system.label("UntypedRetype"), 0, 0, 0).to_word()
    system.machine.syscall_args(Syscall.seL4_SysNBSend, CNODE, info)
    system.kernel.syscall()
    assert lines == [_prefix(system) + "CNodeCap: UntypedRetype: IllegalOperation.>>"]


def test_a_null_cap_is_named_by_its_type(logged: tuple[System, list[str]]) -> None:
    """A null cap in a slot the lookup reaches: refused (InvalidCapability 0), no decoder."""
    system, lines = logged
    free = system.free_slots(1)
    system.call(free, system.label("CNodeCopy"), [])
    root = system.kernel.current
    assert root is not None
    assert lines == [f'<<seL4(CPU 0) [NullCap T{root.paddr:#x} "{root.name}" @401230]: '
                     f"NullCap: CNodeCopy: InvalidCapability (cap 0).>>"]


def test_success_and_cap_faults_are_not_logged(logged: tuple[System, list[str]]) -> None:
    """A cap fault of the invoked cap is a fault: the root thread has no handler, so the
    log has seL4's double-fault line for it, and no userError line."""
    system, lines = logged
    free = system.free_slots(1)
    assert system.call(CNODE, system.label("CNodeCopy"), [free, 64, TCB_SLOT, 64, 0xF],
                       extra=[CNODE]).label == 0
    assert lines == []
    root = system.kernel.current
    assert root is not None
    beyond = 1 << 63  # the root CNode's guard is all zeros: a guard mismatch
    system.call(beyond, system.label("CNodeCopy"), [])
    assert lines == [f"Caught cap fault in send phase at address 0x0 while trying to handle: "
                     f"cap fault in send phase at address {beyond:#x} "
                     f'in thread {root.paddr:#x} "{root.name}" at address {TRAP:#x}']


def test_error_payloads() -> None:
    assert error_text(InvalidArgument(3)) == "InvalidArgument (argument 3)"
    assert error_text(TruncatedMessage()) == "TruncatedMessage"
    assert error_text(NotEnoughMemory(4096)) == "NotEnoughMemory (4096 bytes left)"
    assert error_text(FailedLookup(True, MissingCapability(3))) == (
        "FailedLookup of the source: MissingCapability (3 bits left)")
    assert error_text(FailedLookup(False, GuardMismatch(60, 5, 4))) == (
        "FailedLookup of the destination: GuardMismatch (60 bits left, guard 0x5 of 4 bits found)")


def test_fault_texts_follow_print_fault() -> None:
    tcb = TCB(0x8020_0000, 40, 5)
    tcb.name = "orphan"
    handler = CapFault(0x1000, 0, False, MissingCapability(0))
    tail = ' in thread 0x80200000 "orphan" at address 0x1000'
    caught = "Caught cap fault in send phase at address 0x0 while trying to handle: "
    vm = VMFault(0x1000, 0x0, prefetch=False, fsr=0xD, access=Access.READ)
    assert no_handler_line(tcb, vm, handler) == (
        caught + "vm fault on data at address 0x0 with status 0xd" + tail)
    code = VMFault(0x1000, 0x1000, prefetch=True, fsr=0xC, access=Access.EXECUTE)
    assert no_handler_line(tcb, code, handler) == (
        caught + "vm fault on code at address 0x1000 with status 0xc" + tail)
    assert no_handler_line(tcb, UserExceptionFault(0x1000, 2, 0), handler) == (
        caught + "user exception 0x2 code 0x0" + tail)
    assert no_handler_line(tcb, UnknownSyscallFault(0x1000, -99, []), handler) == (
        caught + "unknown syscall 0xffffffffffffff9d" + tail)


def test_a_vm_fault_without_handler_is_logged(logged: tuple[System, list[str]]) -> None:
    system, lines = logged
    root = system.kernel.current
    assert root is not None
    system.machine.registers[0] = 0x40_2000
    system.kernel.vm_fault(0x10, Access.WRITE, 0xF)
    assert lines == [f"Caught cap fault in send phase at address 0x0 while trying to handle: "
                     f"vm fault on data at address 0x10 with status 0xf "
                     f'in thread {root.paddr:#x} "{root.name}" at address 0x402000']


def test_the_log_is_not_state(logged: tuple[System, list[str]]) -> None:
    system, _ = logged
    system.kernel.save_current()
    copy = pickle.loads(pickle.dumps(system.kernel))
    assert copy.error_observers == [] and copy.no_handler_observers == []
