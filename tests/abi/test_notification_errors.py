"""Notification invocations on the fake machine: the error and fault matrix.

Every refused case has a stable ID (NTFN00xx) and asserts what seL4 (non-MCS) does:
- Send / NBSend / Call need the cap's Send right: Call is answered InvalidCapability
  (payload: cap 0), Send and NBSend get nothing at all (objecttype.c decodeInvocation,
  api/syscall.c handleInvocation);
- Recv / NBRecv / ReplyRecv need the Receive right and a notification not bound to
  another thread, else a cap fault in the receive phase with MissingCapability
  (bitsLeft 0) goes to the fault handler (handleRecv);
- a bad extra-cap CPtr is a send-phase cap fault before the notification is looked at
  (lookupExtraCaps), and nothing on NBSend;
and that nothing changed: the notification's state, word, queue and binding, every
slot of the root CNode, and (when nothing is replied) the caller's registers.
Cases 01xx are the edges that are not errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, FaultLabel, LookupFailureType, Syscall
from kernel.core.notifications import bind_notification
from kernel.model.caps import Rights
from kernel.model.message import MessageInfo
from kernel.model.notification import NotificationState
from kernel.model.tcb import TCB, ThreadState
from tests.unit.test_ipc import CAPS, MSG
from tests.unit.test_notifications import SIGNAL_RIGHTS, WAIT_RIGHTS, NtfnWorld, tag

PC = 0x4004
"""The caller's pc after the trap: the fault IP (the trap itself) is 4 bytes before."""

NO_RIGHTS = Rights(write=False, read=False, grant=False, grant_reply=False)
FULL = Rights(grant=False, grant_reply=False)
BAD_CPTR = 1 << 63  # its top bits do not match the root CNode's guard: lookup fails


class Fixture:
    """A root thread (priority 10) with a notification (badged caps of the rights a case
    names), a fault handler waiting on the root's fault endpoint, and a second thread
    the notification can be bound to."""

    def __init__(self, arch: Arch) -> None:
        self.w = NtfnWorld(arch)
        w = self.w
        self.slot, self.ntfn = w.notification()
        fault_slot, _ = w.endpoint()
        w.root.priority = 10
        w.root.fault_ep = w.mint(fault_slot, badge=0xFA)
        self.other = w.thread(5)  # never runs: the root outranks it
        self.handler = w.thread(100)
        w.syscall(Syscall.seL4_SysYield)
        assert w.kernel.current is self.handler
        w.syscall(Syscall.seL4_SysRecv, fault_slot)
        assert w.kernel.current is w.root

    def cap(self, rights: Rights) -> int:
        return self.w.mint_ntfn(self.slot, badge=0x11, rights=rights)

    def state(self) -> tuple[object, ...]:
        n = self.ntfn
        slots = tuple((s.cap, s.mdb_prev, s.mdb_next, s.revocable, s.first_badged)
                      for s in self.w.sys.slots.every())
        return n.state, n.word, list(n.queue), n.bound_tcb, self.other.bound_notification, slots

    def fault_message(self) -> tuple[int, list[int]]:
        """The label and MR0-4 the handler received (it must have been woken)."""
        h = self.handler
        assert h.state is ThreadState.RUNNING
        info = MessageInfo.from_word(self.w.window(h)[1])
        return info.label, self.w.window(h)[2:6] + self.w.read_words(h, MSG + 32, 1)


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    syscall: Syscall
    rights: Rights
    expect: str
    """"error" (Call replied with ``error``), "silent" (nothing happens) or "fault"
    (a cap fault with ``fault_words`` after IP and the CPtr)."""
    error: Error | None = None
    fault_words: tuple[int, ...] = ()
    setup: Callable[[Fixture], None] = lambda f: None
    extra: int | None = None
    """An extra-cap CPtr to send (caps_or_badges[0], extraCaps 1)."""


def _bind_other(f: Fixture) -> None:
    bind_notification(f.w.kernel, f.other, f.ntfn)


def _signal_pending(f: Fixture) -> None:
    bind_notification(f.w.kernel, f.other, f.ntfn)
    f.ntfn.state, f.ntfn.word = NotificationState.ACTIVE, 0x60


MISSING = (1, LookupFailureType.seL4_MissingCapability, 0)
"""InRecvPhase, lookup failure type, bitsLeft."""

CASES = [
    Case("NTFN0001", "Call without Send", Syscall.seL4_SysCall, WAIT_RIGHTS, "error",
         Error.seL4_InvalidCapability),
    Case("NTFN0002", "Call without any right", Syscall.seL4_SysCall, NO_RIGHTS, "error",
         Error.seL4_InvalidCapability),
    Case("NTFN0003", "Send without Send", Syscall.seL4_SysSend, WAIT_RIGHTS, "silent"),
    Case("NTFN0004", "NBSend without Send is dropped", Syscall.seL4_SysNBSend, WAIT_RIGHTS,
         "silent"),
    Case("NTFN0005", "Call without Send, signal pending", Syscall.seL4_SysCall, WAIT_RIGHTS,
         "error", Error.seL4_InvalidCapability, setup=_signal_pending),
    Case("NTFN0006", "Recv without Receive", Syscall.seL4_SysRecv, SIGNAL_RIGHTS, "fault",
         fault_words=MISSING),
    Case("NTFN0007", "NBRecv (Poll) without Receive", Syscall.seL4_SysNBRecv, SIGNAL_RIGHTS,
         "fault", fault_words=MISSING),
    Case("NTFN0008", "ReplyRecv without Receive", Syscall.seL4_SysReplyRecv, SIGNAL_RIGHTS,
         "fault", fault_words=MISSING),
    Case("NTFN0009", "Recv without any right", Syscall.seL4_SysRecv, NO_RIGHTS, "fault",
         fault_words=MISSING),
    Case("NTFN0010", "Recv on a notification bound to another thread", Syscall.seL4_SysRecv,
         FULL, "fault", fault_words=MISSING, setup=_bind_other),
    Case("NTFN0011", "NBRecv on a notification bound to another thread",
         Syscall.seL4_SysNBRecv, FULL, "fault", fault_words=MISSING, setup=_bind_other),
    Case("NTFN0012", "Recv, bound to another thread, signal pending", Syscall.seL4_SysRecv,
         FULL, "fault", fault_words=MISSING, setup=_signal_pending),
    Case("NTFN0013", "Call with an extra cap that fails lookup", Syscall.seL4_SysCall, FULL,
         "fault", fault_words=(0, LookupFailureType.seL4_GuardMismatch), extra=BAD_CPTR),
    Case("NTFN0014", "Send with an extra cap that fails lookup", Syscall.seL4_SysSend, FULL,
         "fault", fault_words=(0, LookupFailureType.seL4_GuardMismatch), extra=BAD_CPTR),
    Case("NTFN0015", "NBSend with an extra cap that fails lookup", Syscall.seL4_SysNBSend,
         FULL, "silent", extra=BAD_CPTR),
]


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_notification_error(case: Case, arch: Arch) -> None:
    f = Fixture(arch)
    w = f.w
    cptr = f.cap(case.rights)
    case.setup(f)
    info = tag(0x2A, 2, extra=1 if case.extra is not None else 0)
    if case.extra is not None:
        w.write_words(w.root, CAPS, [case.extra])
    before = f.state()
    w.machine.syscall_args(case.syscall, cptr, info, 7, 8)
    w.machine.registers[0] = PC
    registers = list(w.machine.registers)
    w.kernel.syscall()
    assert f.state() == before
    if case.expect == "error":
        assert case.error is not None
        assert w.kernel.current is w.root
        assert w.machine.read_syscall_window()[:3] == [0, tag(int(case.error), 1), 0]
    elif case.expect == "silent":
        assert w.kernel.current is w.root and w.machine.registers == registers
        assert f.handler.state is ThreadState.BLOCKED_ON_RECEIVE
    else:
        assert w.root.state is ThreadState.BLOCKED_ON_REPLY
        label, words = f.fault_message()
        assert label == FaultLabel.seL4_Fault_CapFault
        address = case.extra if case.extra is not None else cptr
        expected = [PC - 4, address, *case.fault_words]
        assert words[: len(expected)] == expected
        assert w.window(f.handler)[0] == 0xFA


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# --- edges that are not errors (01xx) --------------------------------------------------------


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def fixture(request: pytest.FixtureRequest) -> Fixture:
    return Fixture(request.param)


def test_ntfn0101_call_with_any_label_length_and_caps_signals(fixture: Fixture) -> None:
    f, w = fixture, fixture.w
    cptr = f.cap(SIGNAL_RIGHTS)
    w.write_words(w.root, CAPS, [f.slot, f.slot, f.slot])
    w.syscall(Syscall.seL4_SysCall, cptr, tag(0xFFFF, 127, extra=3), 1, 2)
    assert w.machine.read_syscall_window()[:4] == [0, tag(0, 0), 1, 2]
    assert f.ntfn.state is NotificationState.ACTIVE and f.ntfn.word == 0x11


def test_ntfn0102_send_needs_only_the_send_right(fixture: Fixture) -> None:
    f, w = fixture, fixture.w
    w.syscall(Syscall.seL4_SysNBSend, f.cap(SIGNAL_RIGHTS), tag(0, 0))
    assert f.ntfn.state is NotificationState.ACTIVE and f.ntfn.word == 0x11


def test_ntfn0103_wait_needs_only_the_receive_right(fixture: Fixture) -> None:
    f, w = fixture, fixture.w
    f.ntfn.state, f.ntfn.word = NotificationState.ACTIVE, 0x5
    w.syscall(Syscall.seL4_SysNBRecv, f.cap(WAIT_RIGHTS))
    assert w.machine.read_syscall_window()[0] == 0x5
    assert f.ntfn.state is NotificationState.IDLE and f.handler.state is ThreadState.BLOCKED_ON_RECEIVE


def test_ntfn0104_the_bound_thread_itself_may_wait(fixture: Fixture) -> None:
    f, w = fixture, fixture.w
    root: TCB = w.root
    bind_notification(w.kernel, root, f.ntfn)
    w.syscall(Syscall.seL4_SysRecv, f.cap(WAIT_RIGHTS))
    assert root.state is ThreadState.BLOCKED_ON_NOTIFICATION and f.ntfn.queue == [root]
    assert f.handler.state is ThreadState.BLOCKED_ON_RECEIVE  # no fault


def test_ntfn0105_a_wait_does_not_delete_the_caller_cap(fixture: Fixture) -> None:
    """Unlike an endpoint Recv, handleRecv's notification case keeps the caller slot."""
    from kernel.cspace import cdt
    from kernel.model.caps import ReplyCap
    from kernel.model.tcb import CALLER, REPLY

    f, w = fixture, fixture.w
    master = ReplyCap(f.other.paddr, can_grant=True, is_master=True)
    cdt.insert_root(f.other.slots[REPLY], master)
    cdt.insert(ReplyCap(f.other.paddr), f.other.slots[REPLY], w.root.slots[CALLER])
    f.ntfn.state, f.ntfn.word = NotificationState.ACTIVE, 0x1
    w.syscall(Syscall.seL4_SysNBRecv, f.cap(WAIT_RIGHTS))
    assert w.root.slots[CALLER].cap == ReplyCap(f.other.paddr)
