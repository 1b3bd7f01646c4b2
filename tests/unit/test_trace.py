"""The tracer on the fake machine: decoding with the kernel's lookup, results at exit."""

from __future__ import annotations

from kernel.abi.constants import InitialCap, Syscall
from kernel.message import MessageInfo
from kernel.trace import Tracer, TraceRecord, format_record
from tests.unit.test_syscalls import syscall, system  # noqa: F401 - the fixture


def test_call_on_an_empty_slot_is_traced_with_its_error(system) -> None:  # noqa: F811
    kernel, machine, _ = system
    records: list[TraceRecord] = []
    Tracer(kernel, records.append)
    syscall(kernel, machine, Syscall.seL4_SysCall, 100, MessageInfo(17, 0, 0, 2).to_word(), 5, 6)
    (record,) = records
    assert record.syscall == "Call" and record.cptr == 100 and record.cap == "null_cap"
    assert record.label == "CNodeRevoke" and record.mrs == [5, 6]
    assert record.result == "seL4_InvalidCapability" and record.reply == [0]
    assert format_record(record) == (
        "#1 rootserver Call(cap=0x64 null_cap, CNodeRevoke, mrs=[0x5, 0x6])"
        " -> seL4_InvalidCapability [0x0]"
    )


def test_failed_lookup_and_stop_are_traced(system) -> None:  # noqa: F811
    kernel, machine, _ = system
    records: list[TraceRecord] = []
    Tracer(kernel, records.append)
    syscall(kernel, machine, Syscall.seL4_SysRecv, InitialCap.seL4_CapInitThreadTCB)
    (record,) = records
    assert record.cap == "thread_cap"
    assert record.result.startswith("stopped: ") and "receive phase" in record.result
