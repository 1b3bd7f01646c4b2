"""The tracer on the fake machine: decoding with the kernel's lookup, results at exit."""

from __future__ import annotations

from kernel.abi.constants import InitialCap, Syscall
from kernel.model.message import MessageInfo
from kernel.views.trace import Tracer, TraceRecord, format_record
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
        "#1 rootserver Call(cap=0x64 null, CNodeRevoke, index=0x5, depth=0x6)"
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


def test_endpoint_ipc_is_traced_as_messages_and_where_they_went() -> None:
    from kernel.abi.arch import Arch
    from tests.unit.test_ipc import CAPS, World, tag

    world = World(Arch.RISCV64)
    slot, _ = world.endpoint()
    badged = world.mint(slot, badge=0x55)
    world.root.priority = 10
    b = world.thread(100)
    records: list[TraceRecord] = []
    Tracer(world.kernel, records.append)
    n = world.kernel.syscall_entries  # records are numbered since boot, not since attaching
    world.syscall(Syscall.seL4_SysYield)
    world.write_words(b, CAPS, [badged])
    world.syscall(Syscall.seL4_SysSend, badged, tag(5, 1, extra=1), 7)  # b blocks
    world.syscall(Syscall.seL4_SysNBRecv, slot)  # the root takes it; b runs again
    world.syscall(Syscall.seL4_SysNBSend, slot, tag(6, 0))  # b: nobody waits
    world.syscall(Syscall.seL4_SysReply, 0, tag(0, 0))  # b: nobody to reply to
    world.syscall(Syscall.seL4_SysNBRecv, slot)  # b: nothing queued
    lines = [format_record(r) for r in records[1:]]
    name, cap, badged_cap = b.name, f"cap={slot:#x} endpoint", f"cap={badged:#x} endpoint"
    assert lines == [
        f"#{n + 2} {name} Send({badged_cap}, badge=0x55, label=0x5, mrs=[0x7], extra_caps=1)"
        " -> blocked",
        f"#{n + 3} rootserver NBRecv({cap}) -> badge=0x55 label=0x5 length=1 extra_caps=1"
        " unwrapped=0b1 [0x7]",
        f"#{n + 4} {name} NBSend({cap}, badge=0x0, label=0x6) -> dropped",
        f"#{n + 5} {name} Reply(label=0x0) -> nobody to reply to",
        f"#{n + 6} {name} NBRecv({cap}) -> nothing (badge 0)",
    ]


def test_invocation_arguments_are_named_by_the_method_declaration() -> None:
    """Packed booleans and bytes come apart; caps are the CPtrs of the IPC buffer; a
    message too short for a parameter leaves it out; a struct is its words."""
    from kernel.abi.arch import Arch
    from kernel.abi.methods import methods_for
    from kernel.views.trace import named_args

    methods = {m.label: m for m in methods_for(Arch.AARCH64)}
    copy = methods["TCBCopyRegisters"]
    assert named_args(copy, [0b1010 | 0x7F << 8], [0x33]) == {
        "source": 0x33, "suspend_source": 0, "resume_target": 1, "transfer_frame": 0,
        "transfer_integer": 1, "arch_flags": 0x7F}
    retype = methods["UntypedRetype"]
    assert named_args(retype, [4, 12], []) == {"type": 4, "size_bits": 12}
    write = methods["TCBWriteRegisters"]
    assert named_args(write, [1, 3, 10, 11, 12], []) == {
        "resume_target": 1, "arch_flags": 0, "count": 3, "regs": [10, 11, 12]}


def test_filters_keep_and_drop_by_key() -> None:
    """Values of one key are alternatives, keys all apply; a record without a value for
    a key fails that key's include and passes its exclude."""
    import pytest

    from kernel.views.trace_events import FilterError, SwitchRecord, TraceFilter

    put = TraceRecord(1, "root", "DebugPutChar", -9)
    call = TraceRecord(2, "echo", "Call", 1, cap="endpoint_cap")
    switch = SwitchRecord("root", "echo")
    only = TraceFilter.parse(["syscall=Call,DebugPutChar", "thread=echo"])
    assert [only.accepts(r) for r in (put, call, switch)] == [False, True, False]
    drop = TraceFilter.parse(["syscall!=DebugPutChar"])
    assert [drop.accepts(r) for r in (put, call, switch)] == [False, True, True]
    typed = TraceFilter.parse(["type=endpoint"])  # as the text names it; endpoint_cap too
    assert [typed.accepts(r) for r in (put, call, switch)] == [False, True, False]
    both = TraceFilter.parse(["thread=echo", "event=switch"])  # a switch names two threads
    assert [both.accepts(r) for r in (put, call, switch)] == [False, False, True]
    for bad in ("syscall", "who=me", "syscall=Cal", "label=", "type=gizmo"):
        with pytest.raises(FilterError):
            TraceFilter.parse([bad])


def test_rights_are_written_as_the_cspace_view_writes_them() -> None:
    from kernel.model.caps import Rights
    from kernel.views.trace import rights_text

    assert rights_text(0xF) == str(Rights()) == "WRGg"
    assert rights_text(0b0011) == "WR" and rights_text(0) == "-"
    assert rights_text(0x13) == "WR+0x10"  # bits seL4 ignores are shown, not dropped
