"""Property: any system call with any register values leaves the kernel sound.

Hypothesis drives the root task of a booted system (fake machine) through random
system calls: any syscall number (seL4's and others), any cap pointer (biased to the
slots that hold one object of every type: endpoint, notification, TCB, CNode, untyped,
frames of two sizes, page tables, a VSpace root, ASID control and pool, IRQ control,
domain), any invocation label, message length, message words and extra caps. Two more
threads, each in an address space of its own (a VSpace root from the ASID pool) with its
own IPC buffer, share the root task's CSpace and priority: whichever thread is current
makes the next call, so blocking, yields and thread switches move the calls between
address spaces. The only
acceptable outcomes of each call are a reply, a fault, a thread switch or a stopped
kernel; a Python exception escaping ``Kernel.syscall`` fails the test, and the invariant
checker runs after every kernel entry.
"""

from __future__ import annotations

import struct

from hypothesis import event, given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import IPC_BUFFER, InitialCap, Syscall
from kernel.abi.labels import label_table
from kernel.cspace import cdt
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from kernel.model.tcb import TCB, ThreadState
from tests.abi.support import CNODE, System
from tests.fuzzing import fuzzed, longer

WORD = (1 << 64) - 1
MSG_WORD = IPC_BUFFER.offset("msg") // 8
CAPS_WORD = IPC_BUFFER.offset("caps_or_badges") // 8
RECV_WORD = IPC_BUFFER.offset("receiveCNode") // 8

OBJECTS = {
    Arch.RISCV64: [("seL4_EndpointObject", 0), ("seL4_NotificationObject", 0),
                   ("seL4_TCBObject", 0), ("seL4_CapTableObject", 4),
                   ("seL4_RISCV_4K_Page", 0), ("seL4_RISCV_Mega_Page", 0),
                   ("seL4_RISCV_PageTableObject", 0), ("seL4_RISCV_PageTableObject", 0),
                   ("seL4_UntypedObject", 12)],
    Arch.AARCH64: [("seL4_EndpointObject", 0), ("seL4_NotificationObject", 0),
                   ("seL4_TCBObject", 0), ("seL4_CapTableObject", 4),
                   ("seL4_ARM_SmallPageObject", 0), ("seL4_ARM_LargePageObject", 0),
                   ("seL4_ARM_PageTableObject", 0), ("seL4_ARM_VSpaceObject", 0),
                   ("seL4_UntypedObject", 12)],
}
INITIAL = [int(cap) for cap in InitialCap if 0 < int(cap) < 16]


def build(arch: Arch) -> tuple[System, list[int]]:
    """A root task holding one object of every type; returns it and the slots of
    interest (initial caps, the new objects, an ASID pool, empty slots)."""
    s = System(arch, ram_size=16 << 20)
    untyped = s.untyped(23)
    made: list[int] = []
    for name, size_bits in OBJECTS[arch]:
        slot = s.free_slots(1)
        reply = s.retype(untyped, s.otype(name), size_bits, slot, 1)
        assert reply.label == 0, (name, reply)
        made.append(slot)
    pool = s.free_slots(1)
    assert s.make_pool(made[-1], pool).label == 0  # from the 4 KiB untyped just made
    threads = [_thread_in_own_space(s, untyped, pool) for _ in range(THREADS)]
    empty = s.free_slots(3)
    return s, INITIAL + made + [pool, *threads, empty, empty + 1, empty + 2]


THREADS = 2


def _thread_in_own_space(s: System, untyped: int, pool: int) -> int:
    """A running thread at the root task's priority with the root CNode as its CSpace,
    a new VSpace root (given an ASID from ``pool``) and an IPC buffer frame of its own;
    returns the slot of its TCB cap."""
    page = "seL4_RISCV_4K_Page" if s.arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
    tcb_slot = s.free_slots(3)
    vspace, frame = tcb_slot + 1, tcb_slot + 2
    for slot, otype in ((tcb_slot, s.otype("seL4_TCBObject")), (vspace, s.vspace_type),
                        (frame, s.otype(page))):
        assert s.retype(untyped, otype, 0, slot, 1).label == 0
    assert s.assign(pool, vspace).label == 0
    tcb = s.kernel.object_at(s.cap(tcb_slot).object_paddr, TCB)  # type: ignore[attr-defined]
    cdt.insert_child(s.slots[CNODE], tcb.ctable, s.cap(CNODE), False)
    cdt.insert_child(s.slots[vspace], tcb.vtable, s.cap(vspace), False)
    cdt.insert_child(s.slots[frame], tcb.ipc_buffer_slot, s.cap(frame), False)
    tcb.ipc_buffer = 0x7000_0000
    root = s.kernel.current
    assert root is not None
    tcb.priority = root.priority
    tcb.state = ThreadState.RUNNING
    s.kernel.scheduler.enqueue(tcb)
    return tcb_slot


LABELS = sorted(set(label_table(Arch.RISCV64, False).values())
                | set(label_table(Arch.AARCH64, False).values()))
NUMBERS = [int(n) for n in Syscall]

word = st.one_of(st.integers(0, 16), st.integers(0, 1 << 13), st.sampled_from([64, 12, 21, 30]),
                 st.integers(0, WORD))


@st.composite
def calls(draw: st.DrawFn, slots: list[int]) -> tuple[int, ...]:
    slot = st.one_of(st.sampled_from(slots), st.sampled_from(slots), word)
    number = draw(st.one_of(st.sampled_from(NUMBERS), st.sampled_from([-1, -1, -2, -3]),
                            st.integers(-40, 40), st.integers(0, WORD)))
    cptr = draw(slot)
    label = draw(st.one_of(st.sampled_from(LABELS), st.integers(0, (1 << 52) - 1)))
    length = draw(st.one_of(st.integers(0, 8), st.integers(0, 127)))
    extra = draw(st.integers(0, 3))
    words = draw(st.lists(st.one_of(slot, word), min_size=8, max_size=8))
    caps = draw(st.lists(slot, min_size=3, max_size=3))
    recv = draw(st.tuples(st.one_of(st.just(CNODE), slot), slot, st.one_of(st.just(64), word)))
    raw_info = draw(st.one_of(st.none(), st.integers(0, WORD)))
    return (number & WORD, cptr, label, length, extra, *words, *caps, *recv,
            -1 if raw_info is None else raw_info)


@fuzzed(120)
@given(data=st.data(), arch=st.sampled_from(list(Arch)))
def test_any_syscall_with_any_registers_keeps_the_kernel_sound(data: st.DataObject,
                                                               arch: Arch) -> None:
    s, slots = build(arch)
    callers: set[int] = set()
    for _ in range(data.draw(st.integers(1, longer(10)))):
        kernel = s.kernel
        if kernel.stop is not None or kernel.current is None:
            break
        callers.add(kernel.current.paddr)
        base = ipc_buffer_paddr(kernel, kernel.current, for_write=True)
        if base is None:
            break  # the root task gave away its IPC buffer: nothing more to marshal
        c = data.draw(calls(slots))
        number, cptr, label, length, extra = c[:5]
        words, caps, recv, raw_info = c[5:13], c[13:16], c[16:19], c[19]
        s.machine.write_phys(base + 8 * MSG_WORD, struct.pack("<8Q", *words))
        s.machine.write_phys(base + 8 * CAPS_WORD, struct.pack("<3Q", *caps))
        s.machine.write_phys(base + 8 * RECV_WORD, struct.pack("<3Q", *recv))
        info = raw_info if raw_info >= 0 else (label << 12 | extra << 7 | length)
        s.machine.syscall_args(number, cptr, info, *words[:4])
        if number == (int(Syscall.seL4_SysDebugHalt) & WORD):
            continue  # a halt is an outcome, not a crash; keep exploring the rest
        kernel.syscall()  # raises on any escaping exception; invariants checked at exit
    event(f"threads that made calls: {len(callers)}")
    assert s.kernel.stop is None or s.kernel.stop.kind in {"halt", "idle", "fault",
                                                            "kernel-halt"}
