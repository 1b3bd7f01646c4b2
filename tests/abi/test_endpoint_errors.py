"""Endpoint syscalls on the fake machine: the error and fault matrix.

Every refused case has a stable ID (EP00xx). What seL4 does with a refused endpoint
syscall depends on where it is refused (abi/ipc.md, abi/errors.md; seL4's
handleInvocation and handleRecv):

- a failed lookup of the invoked cap or of an extra cap is a *cap fault* for a blocking
  syscall (Send, Call, Recv, ReplyRecv), nothing at all for NBSend; Recv and NBRecv
  fault on any cap that is not an endpoint or notification with the Receive right
  (MissingCapability, 0 bits left);
- a decode refusal (a null cap, an endpoint cap without Send) is an error *reply* to a
  Call and nothing for Send / NBSend.

Fault cases run with a fault handler (a higher-priority thread receiving on the fault
endpoint) and assert the exact fault message it gets: label CapFault, then FaultIP,
the cptr, the phase and the lookup failure words. Every case also asserts that nothing
else changed: every CNode slot (cap, links, bits), every endpoint's state and queue,
and the caller's registers where no reply is due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, FaultLabel, LookupFailureType, Syscall
from kernel.model.caps import Rights
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.tcb import TCB, ThreadState
from tests.unit.test_ipc import CAPS, MSG, World, tag

S = Syscall
MISSING, GUARD = LookupFailureType.seL4_MissingCapability, LookupFailureType.seL4_GuardMismatch
PC = 0x4004
"""The caller's pc after the trap; FaultIP is the trap itself, 4 bytes before."""
BAD = 0xABC << 12 | 0x30
"""A cptr whose guard bits (above the root CNode's 12 radix bits) are not 0."""


class Fixture:
    """The root task (priority 100) with a fault handler thread (200) waiting on the
    fault endpoint, an endpoint ``ep`` and its copies without Send (``ro``) and without
    Receive (``wo``), an empty slot and a notification-less CNode cap."""

    def __init__(self, arch: Arch) -> None:
        w = self.world = World(arch)
        self.fault_ep, _ = w.endpoint()
        self.ep, _ = w.endpoint()
        self.ro = w.mint(self.ep, rights=Rights(write=False))
        self.wo = w.mint(self.ep, rights=Rights(read=False))
        self.empty = w.sys.free_slots(1)
        w.root.priority = 100
        w.root.fault_ep = self.fault_ep
        self.handler = w.thread(200)
        w.syscall(S.seL4_SysYield)  # the handler runs and waits for faults
        w.syscall(S.seL4_SysRecv, self.fault_ep)
        assert w.kernel.current is w.root and self.handler.state is ThreadState.BLOCKED_ON_RECEIVE

    def picture(self) -> list[object]:
        """Every CNode slot and every endpoint (not the fault endpoint's queue, which
        the fault delivery empties)."""
        k = self.world.kernel
        fault_ep = self.world.sys.cap(self.fault_ep).object_paddr  # type: ignore[attr-defined]
        rows: list[object] = []
        for obj in k.objects.values():
            if isinstance(obj, CNode):
                rows += [(id(s), s.cap, id(s.mdb_prev), id(s.mdb_next), s.revocable,
                          s.first_badged) for s in obj.slots]
            if isinstance(obj, Endpoint) and obj.paddr != fault_ep:
                rows.append((obj.paddr, obj.state, list(obj.queue)))
        return rows


@dataclass(frozen=True)
class Case:
    id: str
    what: str
    syscall: Syscall
    cptr: Callable[[Fixture], int]
    extra: list[int] | None = None
    """CPtrs in the caller's caps_or_badges (the tag's extraCaps counts them)."""
    reply: tuple[Error, list[int]] | None = None
    """An error reply to the caller: its label and words."""
    fault: Callable[[Fixture], list[int]] | None = None
    """A cap fault: the words after FaultIP the handler gets (cptr, phase, failure)."""


def guard(cptr: int) -> list[int]:
    """GuardMismatch of a full-depth lookup of ``cptr`` in the root CNode (radix 12,
    guard 0 of 52 bits): bits left, then the *CNode's* guard (seL4 reports capGuard as
    guardFound, not the bits of the cptr), then the guard size."""
    del cptr  # the failure words do not depend on the bad bits
    return [GUARD, 64, 0, 52]


CASES = [
    Case("EP0001", "Call on an endpoint cap without Send", S.seL4_SysCall, lambda f: f.ro,
         reply=(Error.seL4_InvalidCapability, [0])),
    Case("EP0002", "Send on an endpoint cap without Send", S.seL4_SysSend, lambda f: f.ro),
    Case("EP0003", "NBSend on an endpoint cap without Send", S.seL4_SysNBSend, lambda f: f.ro),
    Case("EP0004", "Call on an empty slot", S.seL4_SysCall, lambda f: f.empty,
         reply=(Error.seL4_InvalidCapability, [0])),
    Case("EP0005", "Send on an empty slot", S.seL4_SysSend, lambda f: f.empty),
    Case("EP0006", "Call through a cptr whose guard does not match", S.seL4_SysCall,
         lambda f: BAD, fault=lambda f: [BAD, 0, *guard(BAD)]),
    Case("EP0007", "Send through a cptr whose guard does not match", S.seL4_SysSend,
         lambda f: BAD, fault=lambda f: [BAD, 0, *guard(BAD)]),
    Case("EP0008", "NBSend through a cptr whose guard does not match", S.seL4_SysNBSend,
         lambda f: BAD),
    Case("EP0009", "Call with an extra cap that does not resolve", S.seL4_SysCall,
         lambda f: f.ep, extra=[BAD], fault=lambda f: [BAD, 0, *guard(BAD)]),
    Case("EP0010", "Call whose second extra cap does not resolve", S.seL4_SysCall,
         lambda f: f.ep, extra=[2, BAD + 1], fault=lambda f: [BAD + 1, 0, *guard(BAD + 1)]),
    Case("EP0011", "NBSend with an extra cap that does not resolve", S.seL4_SysNBSend,
         lambda f: f.ep, extra=[BAD]),
    Case("EP0012", "Recv on an endpoint cap without Receive", S.seL4_SysRecv, lambda f: f.wo,
         fault=lambda f: [f.wo, 1, MISSING, 0]),
    Case("EP0013", "NBRecv on an endpoint cap without Receive", S.seL4_SysNBRecv,
         lambda f: f.wo, fault=lambda f: [f.wo, 1, MISSING, 0]),
    Case("EP0014", "Recv on an empty slot", S.seL4_SysRecv, lambda f: f.empty,
         fault=lambda f: [f.empty, 1, MISSING, 0]),
    Case("EP0015", "Recv on a CNode cap", S.seL4_SysRecv, lambda f: 2,
         fault=lambda f: [2, 1, MISSING, 0]),
    Case("EP0016", "NBRecv through a cptr whose guard does not match", S.seL4_SysNBRecv,
         lambda f: BAD, fault=lambda f: [BAD, 1, *guard(BAD)]),
    Case("EP0017", "ReplyRecv (nobody to reply to) on a cap without Receive",
         S.seL4_SysReplyRecv, lambda f: f.wo, fault=lambda f: [f.wo, 1, MISSING, 0]),
    Case("EP0018", "Reply with an empty caller slot", S.seL4_SysReply, lambda f: 0),
]


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def fixture(request: pytest.FixtureRequest) -> Fixture:
    return Fixture(request.param)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_endpoint_error(fixture: Fixture, case: Case) -> None:
    w, root = fixture.world, fixture.world.root
    extra = case.extra or []
    if extra:
        w.write_words(root, CAPS, extra)
    before = fixture.picture()
    w.machine.registers[0] = PC
    args = (case.cptr(fixture), tag(3, 2, extra=len(extra)), 0x11, 0x22, 0x33, 0x44)
    w.syscall(case.syscall, *args)
    kernel = w.kernel
    assert kernel.stop is None
    assert fixture.picture() == before, case.id
    if case.fault is not None:
        # The handler got the fault and runs; the root waits for the handler's reply.
        assert kernel.current is fixture.handler and root.state is ThreadState.BLOCKED_ON_REPLY
        window = w.window(fixture.handler)
        info = w.info(fixture.handler)
        assert info.label == FaultLabel.seL4_Fault_CapFault, case.id
        words = [*window[2:6], *w.read_words(fixture.handler, MSG + 32, info.length - 4)]
        assert words == [PC - 4, *case.fault(fixture)], case.id
        return
    assert kernel.current is root and root.state is ThreadState.RUNNING
    assert fixture.handler.state is ThreadState.BLOCKED_ON_RECEIVE
    window = w.machine.read_syscall_window()
    if case.reply is not None:
        label, words = case.reply
        assert w.info(root).label == label, case.id
        assert window[2 : 2 + len(words)] == words
    else:
        assert window[:6] == list(args), case.id  # no reply: the registers are as they were


def test_ids_are_unique_and_in_order() -> None:
    assert [case.id for case in CASES] == [f"EP{i:04d}" for i in range(1, len(CASES) + 1)]


def test_a_refused_send_leaves_a_waiting_receiver_waiting(fixture: Fixture) -> None:
    """EP0002 with somebody to receive: the refusal is in decode, before the endpoint."""
    w = fixture.world
    receiver = w.thread(50)
    w.root.priority = 10
    w.syscall(S.seL4_SysYield)  # the receiver (50) runs: it waits on ep
    assert w.kernel.current is receiver
    w.syscall(S.seL4_SysRecv, fixture.ep)
    assert w.kernel.current is w.root
    w.syscall(S.seL4_SysSend, fixture.ro, tag(1, 1), 9)
    assert receiver.state is ThreadState.BLOCKED_ON_RECEIVE and w.kernel.current is w.root
    ep = w.kernel.objects[w.sys.cap(fixture.ep).object_paddr]  # type: ignore[attr-defined]
    assert isinstance(ep, Endpoint) and ep.queue == [receiver]
    assert isinstance(receiver, TCB)
