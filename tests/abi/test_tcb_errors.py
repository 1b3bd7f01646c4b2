"""TCB invocations through seL4_Call on the fake machine: the error matrix.

Every refused case has a stable ID (TCB00xx) and asserts the reply label, its payload
words and that nothing changed: every slot of every CNode and TCB (cap, links, bits),
every thread's state, registers, priority, MCP, IPC buffer, fault endpoint and flags,
and the ready queues. Expected values follow seL4's decodeTCBInvocation and its
per-method decoders (kernel/objects/tcb.py lists the order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from kernel.model.caps import UntypedCap
from kernel.model.notification import Notification, NotificationState
from kernel.model.tcb import TCB, ThreadState
from tests.abi.cnode_fixtures import snapshot
from tests.abi.support import System

ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)
CNODE = int(InitialCap.seL4_CapInitThreadCNode)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
IL, TM, AL = Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage, Error.seL4_AlignmentError
RANGE, INVALID, RF = Error.seL4_RangeError, Error.seL4_InvalidCapability, Error.seL4_RevokeFirst


class World:
    """The root task plus a target TCB, a second TCB (MCP 0), an endpoint, a frame, a
    device frame, a CNode, an unmapped page table and an untyped with a child."""

    def __init__(self, arch: Arch) -> None:
        s = self.sys = System(arch)
        start, end = s.report.bootinfo.untyped
        ram = [i for i in range(start, end)
               if isinstance(s.cap(i), UntypedCap) and not s.cap(i).is_device]
        self.ut = max(ram, key=lambda i: s.cap(i).size_bits)  # type: ignore[attr-defined]
        dev = [i for i in range(start, end)
               if isinstance(s.cap(i), UntypedCap) and s.cap(i).is_device
               and 12 <= s.cap(i).size_bits <= 20]  # type: ignore[attr-defined]
        page = "seL4_RISCV_4K_Page" if arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject"
        table = ("seL4_RISCV_PageTableObject" if arch is Arch.RISCV64
                 else "seL4_ARM_PageTableObject")
        self.t = self.make("seL4_TCBObject")
        self.t2 = self.make("seL4_TCBObject")
        self.ep = self.make("seL4_EndpointObject")
        self.frame = self.make(page)
        self.cnode = self.make("seL4_CapTableObject", 4)
        self.pt = self.make(table)
        small = [i for i in ram if s.cap(i).size_bits <= 16]  # type: ignore[attr-defined]
        self.ut_parent = small[0] if small else self.ut
        self.make("seL4_EndpointObject", ut=self.ut_parent)
        self.dev = self.free = 0
        if dev:
            self.dev = s.free_slots(1)
            reply = s.retype(dev[0], s.otype(page), 0, self.dev, 1)
            assert reply.label == 0, reply
        self.free = s.free_slots(1)
        self.n_regs = len(s.kernel.abi.user_context)
        self._notifications()

    def _notifications(self) -> None:
        """``ntfn`` (free), ``ntfn_ro`` (a copy without Receive), ``ntfn_bound`` (bound
        to t2) and ``ntfn_busy`` (a third thread waits on it)."""
        from kernel.core.notifications import bind_notification
        from kernel.cspace.cdt import insert
        from kernel.model.caps import NotificationCap, Rights

        s = self.sys
        self.ntfn = self.make("seL4_NotificationObject")
        self.ntfn_ro = s.free_slots(1)
        cap = s.cap(self.ntfn)
        assert isinstance(cap, NotificationCap)
        insert(NotificationCap(cap.paddr, 0, Rights(read=False)), s.slots[self.ntfn],
               s.slots[self.ntfn_ro])
        self.ntfn_bound = self.make("seL4_NotificationObject")
        bind_notification(s.kernel, self.tcb(self.t2), self.notification(self.ntfn_bound))
        self.ntfn_busy = self.make("seL4_NotificationObject")
        waiter = self.tcb(self.make("seL4_TCBObject"))
        busy = self.notification(self.ntfn_busy)
        busy.state, busy.queue = NotificationState.WAITING, [waiter]
        waiter.state, waiter.waiting_on = ThreadState.BLOCKED_ON_NOTIFICATION, busy

    def notification(self, slot: int) -> Notification:
        obj = self.sys.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(obj, Notification)
        return obj

    def make(self, name: str, size_bits: int = 0, ut: int | None = None) -> int:
        slot = self.sys.free_slots(1)
        reply = self.sys.retype(self.ut if ut is None else ut, self.sys.otype(name),
                                size_bits, slot, 1)
        assert reply.label == 0, reply
        return slot

    def tcb(self, slot: int) -> TCB:
        obj = self.sys.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(obj, TCB)
        return obj

    def state(self) -> list[object]:
        k = self.sys.kernel
        rows: list[object] = list(snapshot(self.sys))
        for obj in k.objects.values():
            if isinstance(obj, TCB):
                regs = (k.machine.save_context() if k.registers_live(obj)
                        else list(k.registers_of(obj)))
                if obj is k.current:
                    regs = regs[:1]  # the reply rewrites the caller's window
                rows.append((obj.paddr, obj.state, regs, obj.priority, obj.mcp,
                             obj.ipc_buffer, obj.fault_ep, obj.flags, obj.bound_notification,
                             obj.waiting_on))
            if isinstance(obj, Notification):
                rows.append((obj.paddr, obj.state, obj.word, list(obj.queue), obj.bound_tcb))
        rows.append(k.scheduler.queues())
        rows.append(k.current)
        return rows


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return World(request.param)


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    call: Callable[[World], tuple[int, str, list[int], list[int], int | None]]
    """world -> (invoked cptr, label name, message words, extra cap slots, length)."""
    error: Error
    words: Callable[[World], list[int]] = lambda w: []


def c(target: str, label: str, args: Callable[[World], list[int]],
      extra: Callable[[World], list[int]] = lambda w: [],
      length: int | None = None) -> Callable[[World], tuple[int, str, list[int], list[int],
                                                            int | None]]:
    def build(w: World) -> tuple[int, str, list[int], list[int], int | None]:
        cptr = ROOT_TCB if target == "root" else getattr(w, target)
        return cptr, label, args(w), extra(w), length
    return build


def none(w: World) -> list[int]:
    return []


def space(w: World) -> list[int]:
    return [CNODE, VSPACE]


BUF_OK = 0x7000_0000
CASES = [
    Case("TCB0001", "ReadRegisters with one word", c("t", "TCBReadRegisters", lambda w: [0]), TM),
    Case("TCB0002", "ReadRegisters of 0 registers",
         c("t", "TCBReadRegisters", lambda w: [0, 0]), RANGE, lambda w: [1, w.n_regs]),
    Case("TCB0003", "ReadRegisters of one register too many",
         c("t", "TCBReadRegisters", lambda w: [0, w.n_regs + 1]), RANGE,
         lambda w: [1, w.n_regs]),
    Case("TCB0004", "ReadRegisters of the caller itself",
         c("root", "TCBReadRegisters", lambda w: [0, 1]), IL),
    Case("TCB0005", "WriteRegisters with one word", c("t", "TCBWriteRegisters", lambda w: [0]),
         TM),
    Case("TCB0006", "WriteRegisters of more registers than the message holds",
         c("t", "TCBWriteRegisters", lambda w: [0, 3, 1, 2]), TM),
    Case("TCB0007", "WriteRegisters of the caller itself",
         c("root", "TCBWriteRegisters", lambda w: [0, 1, 0x1000]), IL),
    Case("TCB0008", "CopyRegisters without the source cap",
         c("t", "TCBCopyRegisters", lambda w: [0xF]), TM),
    Case("TCB0009", "CopyRegisters with an empty message",
         c("t", "TCBCopyRegisters", none, lambda w: [w.t2]), TM),
    Case("TCB0010", "CopyRegisters from an endpoint",
         c("t", "TCBCopyRegisters", lambda w: [0xF], lambda w: [w.ep]), INVALID,
         lambda w: [1]),
    Case("TCB0011", "Configure with three words",
         c("t", "TCBConfigure", lambda w: [0, 0, 0],
           lambda w: [CNODE, VSPACE, w.frame]), TM),
    Case("TCB0012", "Configure with two extra caps",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK], space), TM),
    Case("TCB0013", "Configure with an endpoint as IPC buffer",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK],
           lambda w: [CNODE, VSPACE, w.ep]), IL),
    Case("TCB0014", "Configure with a misaligned IPC buffer",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK + 0x100],
           lambda w: [CNODE, VSPACE, w.frame]), AL),
    Case("TCB0015", "Configure: the buffer is checked before the CSpace",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK + 8],
           lambda w: [w.ep, VSPACE, w.frame]), AL),
    Case("TCB0016", "Configure with an endpoint as CSpace",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK],
           lambda w: [w.ep, VSPACE, w.frame]), IL),
    Case("TCB0017", "Configure with CSpace data whose guard does not fit",
         c("t", "TCBConfigure", lambda w: [0, 63, 0, BUF_OK],
           lambda w: [w.cnode, VSPACE, w.frame]), IL),
    Case("TCB0018", "Configure with an unmapped page table as VSpace",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK],
           lambda w: [CNODE, w.pt, w.frame]), IL),
    Case("TCB0019", "Configure with a frame as VSpace",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK],
           lambda w: [CNODE, w.frame, w.frame]), IL),
    Case("TCB0020", "Configure with an untyped that has children as IPC buffer",
         c("t", "TCBConfigure", lambda w: [0, 0, 0, BUF_OK],
           lambda w: [CNODE, VSPACE, w.ut_parent]), RF),
    Case("TCB0021", "SetSpace with two words",
         c("t", "TCBSetSpace", lambda w: [0, 0], space), TM),
    Case("TCB0022", "SetSpace with one extra cap",
         c("t", "TCBSetSpace", lambda w: [0, 0, 0], lambda w: [CNODE]), TM),
    Case("TCB0023", "SetSpace with an endpoint as CSpace",
         c("t", "TCBSetSpace", lambda w: [0, 0, 0], lambda w: [w.ep, VSPACE]), IL),
    Case("TCB0024", "SetSpace with an endpoint as VSpace",
         c("t", "TCBSetSpace", lambda w: [0, 0, 0], lambda w: [CNODE, w.ep]), IL),
    Case("TCB0025", "SetIPCBuffer with an empty message",
         c("t", "TCBSetIPCBuffer", none, lambda w: [w.frame]), TM),
    Case("TCB0026", "SetIPCBuffer without the frame cap",
         c("t", "TCBSetIPCBuffer", lambda w: [BUF_OK]), TM),
    Case("TCB0027", "SetIPCBuffer with a CNode cap",
         c("t", "TCBSetIPCBuffer", lambda w: [BUF_OK], lambda w: [w.cnode]), IL),
    Case("TCB0028", "SetIPCBuffer at a misaligned address",
         c("t", "TCBSetIPCBuffer", lambda w: [BUF_OK + 0x200], lambda w: [w.frame]), AL),
    Case("TCB0029", "SetPriority without the authority",
         c("t", "TCBSetPriority", lambda w: [10]), TM),
    Case("TCB0030", "SetPriority with an endpoint as authority",
         c("t", "TCBSetPriority", lambda w: [10], lambda w: [w.ep]), INVALID, lambda w: [1]),
    Case("TCB0031", "SetPriority above the authority's MCP (a new TCB: 0)",
         c("t", "TCBSetPriority", lambda w: [1], lambda w: [w.t2]), RANGE, lambda w: [0, 0]),
    Case("TCB0032", "SetPriority 256 with the root task as authority",
         c("t", "TCBSetPriority", lambda w: [256], lambda w: [ROOT_TCB]), RANGE,
         lambda w: [0, 255]),
    Case("TCB0033", "SetMCPriority with an empty message",
         c("t", "TCBSetMCPriority", none, lambda w: [ROOT_TCB]), TM),
    Case("TCB0034", "SetMCPriority with a frame as authority",
         c("t", "TCBSetMCPriority", lambda w: [1], lambda w: [w.frame]), INVALID,
         lambda w: [1]),
    Case("TCB0035", "SetMCPriority above the authority's MCP",
         c("t", "TCBSetMCPriority", lambda w: [2**64 - 1], lambda w: [ROOT_TCB]), RANGE,
         lambda w: [0, 255]),
    Case("TCB0036", "SetSchedParams with one word",
         c("t", "TCBSetSchedParams", lambda w: [1], lambda w: [ROOT_TCB]), TM),
    Case("TCB0037", "SetSchedParams without the authority",
         c("t", "TCBSetSchedParams", lambda w: [1, 1]), TM),
    Case("TCB0038", "SetSchedParams with an MCP above the authority's",
         c("t", "TCBSetSchedParams", lambda w: [1, 0], lambda w: [w.t2]), RANGE,
         lambda w: [0, 0]),
    Case("TCB0039", "SetSchedParams with a priority above the authority's MCP",
         c("t", "TCBSetSchedParams", lambda w: [255, 300], lambda w: [ROOT_TCB]), RANGE,
         lambda w: [0, 255]),
    Case("TCB0040", "SetTLSBase with an empty message", c("t", "TCBSetTLSBase", none), TM),
    Case("TCB0041", "SetFlags with one word", c("t", "TCBSetFlags", lambda w: [0]), TM),
    Case("TCB0042", "A CNode label on a TCB cap", c("t", "CNodeCopy", lambda w: [0, 0]), IL),
    Case("TCB0043", "BindNotification without the notification cap",
         c("t", "TCBBindNotification", none), TM),
    Case("TCB0044", "BindNotification of a TCB already bound",
         c("t2", "TCBBindNotification", none, lambda w: [w.ntfn]), IL),
    Case("TCB0045", "BindNotification of an endpoint cap",
         c("t", "TCBBindNotification", none, lambda w: [w.ep]), IL),
    Case("TCB0046", "BindNotification through a cap without Receive",
         c("t", "TCBBindNotification", none, lambda w: [w.ntfn_ro]), IL),
    Case("TCB0047", "BindNotification of a notification bound to another thread",
         c("t", "TCBBindNotification", none, lambda w: [w.ntfn_bound]), IL),
    Case("TCB0048", "BindNotification of a notification a thread waits on",
         c("t", "TCBBindNotification", none, lambda w: [w.ntfn_busy]), IL),
    Case("TCB0049", "UnbindNotification of a TCB with nothing bound",
         c("t", "TCBUnbindNotification", none), IL),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_tcb_error(world: World, case: Case) -> None:
    cptr, label, args, extra, length = case.call(world)
    before = world.state()
    reply = world.sys.call(cptr, world.sys.label(label), args, extra, length)
    assert reply.label == case.error, f"{case.id}: {Error(reply.label).name}"
    assert reply.words == case.words(world)
    assert world.state() == before


def test_ids_are_unique_and_in_order() -> None:
    assert [case.id for case in CASES] == [f"TCB{i:04d}" for i in range(1, len(CASES) + 1)]
