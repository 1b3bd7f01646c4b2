"""Notifications on the fake machine (non-MCS seL4 semantics): Signal, Wait, Poll,
binding with receive-on-either, cancellation and the finaliser.

Threads are set up as in ``test_ipc``: retyped TCBs with the root's CSpace and VSpace,
driven by loading the current thread's registers and calling ``kernel.syscall()``. The
invariant checks (including the ``notification`` rule) run after every kernel entry.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import Syscall
from kernel.core.cancel import cancel_ipc
from kernel.core.notifications import bind_notification, unbind_notification
from kernel.cspace import cdt
from kernel.model.caps import NotificationCap, Rights, ThreadCap
from kernel.model.endpoint import EndpointState
from kernel.model.notification import Notification, NotificationState
from kernel.model.tcb import TCB, ThreadState
from kernel.views.invariants import check_all
from tests.abi.support import CNODE
from tests.fuzzing import fuzzed, longer
from tests.unit.test_ipc import World, tag

SIGNAL_RIGHTS = Rights(write=True, read=False, grant=False, grant_reply=False)
WAIT_RIGHTS = Rights(write=False, read=True, grant=False, grant_reply=False)


class NtfnWorld(World):
    def notification(self) -> tuple[int, Notification]:
        slot = self.make(self.sys.otype("seL4_NotificationObject"))
        ntfn = self.kernel.objects[self.sys.cap(slot).object_paddr]  # type: ignore[index]
        assert isinstance(ntfn, Notification)
        return slot, ntfn

    def mint_ntfn(self, src: int, badge: int = 0, rights: Rights | None = None) -> int:
        cap = self.sys.cap(src)
        assert isinstance(cap, NotificationCap)
        dest = self.sys.free_slots(1)
        new = NotificationCap(cap.paddr, badge, rights or Rights(grant=False, grant_reply=False))
        cdt.insert(new, self.sys.slots[src], self.sys.slots[dest])
        return dest

    def tcb_slot(self, tcb: TCB) -> int:
        return next(s.index for s in self.sys.slots
                    if isinstance(s.cap, ThreadCap) and s.cap.paddr == tcb.paddr)

    def delete(self, slot: int) -> None:
        reply = self.sys.call(CNODE, self.sys.label("CNodeDelete"), [slot, 64])
        assert reply.label == 0, reply


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> NtfnWorld:
    return NtfnWorld(request.param)


def badge_of(world: World, tcb: TCB) -> int:
    return world.window(tcb)[0]


# --- signal, wait, poll -------------------------------------------------------------------


def test_signal_then_wait_returns_the_badge_without_blocking(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x30)
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert ntfn.state is NotificationState.ACTIVE and ntfn.word == 0x30
    world.syscall(Syscall.seL4_SysRecv, slot, tag(7, 1))
    assert world.kernel.current is world.root and world.root.state is ThreadState.RUNNING
    window = world.machine.read_syscall_window()
    assert window[0] == 0x30 and window[1] == tag(7, 1)  # only the badge register changes
    assert ntfn.state is NotificationState.IDLE and ntfn.word == 0


def test_badges_are_ored_while_active(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    one, four, five = (world.mint_ntfn(slot, badge=b) for b in (1, 4, 5))
    world.syscall(Syscall.seL4_SysSend, one, tag(0, 0))
    world.syscall(Syscall.seL4_SysNBSend, four, tag(0, 0))
    world.syscall(Syscall.seL4_SysSend, five, tag(0, 0))
    assert ntfn.word == 5
    world.syscall(Syscall.seL4_SysNBRecv, slot)
    assert badge_of(world, world.root) == 5 and ntfn.state is NotificationState.IDLE


def test_an_unbadged_signal_makes_it_active_with_word_zero(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    world.syscall(Syscall.seL4_SysSend, slot, tag(0, 0))
    assert ntfn.state is NotificationState.ACTIVE and ntfn.word == 0
    world.machine.registers[world.machine.window_index[0]] = 0xFFFF
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.root.state is ThreadState.RUNNING and badge_of(world, world.root) == 0
    assert ntfn.state is NotificationState.IDLE


def test_poll_on_an_idle_notification_returns_badge_zero(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    world.syscall(Syscall.seL4_SysNBRecv, slot, tag(3, 2), 9, 9)
    window = world.machine.read_syscall_window()
    assert window[:4] == [0, tag(3, 2), 9, 9]
    assert ntfn.state is NotificationState.IDLE and world.root.state is ThreadState.RUNNING


def test_wait_blocks_and_a_signal_wakes_with_the_badge(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x8)
    b = world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot, tag(1, 0))
    assert world.root.state is ThreadState.BLOCKED_ON_NOTIFICATION
    assert ntfn.state is NotificationState.WAITING and ntfn.queue == [world.root]
    assert world.root.waiting_on is ntfn and world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert world.kernel.current is world.root  # higher priority runs at exit
    assert world.window(world.root)[:2] == [0x8, tag(1, 0)]
    assert ntfn.state is NotificationState.IDLE and ntfn.word == 0
    assert world.root.waiting_on is None and b.state is ThreadState.RUNNING


def test_waiters_wake_in_fifo_order(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    one, two = world.mint_ntfn(slot, badge=1), world.mint_ntfn(slot, badge=2)
    world.root.priority = 10
    b, c = world.thread(100), world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert world.kernel.current is c
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert ntfn.queue == [b, c] and world.kernel.current is world.root
    world.syscall(Syscall.seL4_SysSend, two, tag(0, 0))
    assert ntfn.queue == [c] and b.state is ThreadState.RUNNING and badge_of(world, b) == 2
    world.syscall(Syscall.seL4_SysSend, one, tag(0, 0))
    assert ntfn.state is NotificationState.IDLE and badge_of(world, c) == 1
    assert ntfn.word == 0  # both signals were consumed by waiters


def test_call_signals_and_gets_an_empty_reply(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x41)
    world.syscall(Syscall.seL4_SysCall, badged, tag(77, 2), 5, 6)
    window = world.machine.read_syscall_window()
    assert window[:4] == [0, tag(0, 0), 5, 6]  # label 0, length 0; MRs untouched
    assert ntfn.state is NotificationState.ACTIVE and ntfn.word == 0x41


def test_reply_recv_on_a_notification_waits(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    world.syscall(Syscall.seL4_SysReplyRecv, slot, tag(0, 0))
    assert world.root.state is ThreadState.BLOCKED_ON_NOTIFICATION and ntfn.queue == [world.root]


# --- binding and receive-on-either ----------------------------------------------------------


def test_bound_receiver_takes_a_pending_signal_instead_of_a_message(world: NtfnWorld) -> None:
    ep_slot, ep = world.endpoint()
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x600)
    bind_notification(world.kernel, world.root, ntfn)
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert ntfn.state is NotificationState.ACTIVE
    world.syscall(Syscall.seL4_SysRecv, ep_slot, tag(4, 0))
    assert world.root.state is ThreadState.RUNNING and ep.state is EndpointState.IDLE
    assert world.machine.read_syscall_window()[:2] == [0x600, tag(4, 0)]
    assert ntfn.state is NotificationState.IDLE and ntfn.word == 0


def test_a_signal_wakes_a_bound_thread_out_of_an_endpoint_receive(world: NtfnWorld) -> None:
    ep_slot, ep = world.endpoint()
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x2)
    b = world.thread(100)
    bind_notification(world.kernel, world.root, ntfn)
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    assert world.root.state is ThreadState.BLOCKED_ON_RECEIVE and ep.queue == [world.root]
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert ep.state is EndpointState.IDLE and world.root.blocking is None
    assert world.kernel.current is world.root and badge_of(world, world.root) == 0x2
    assert ntfn.state is NotificationState.IDLE and ntfn.word == 0


def test_an_unbound_thread_in_an_endpoint_receive_is_not_woken(world: NtfnWorld) -> None:
    ep_slot, ep = world.endpoint()
    slot, ntfn = world.notification()
    world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    world.syscall(Syscall.seL4_SysSend, slot, tag(0, 0))
    assert world.root.state is ThreadState.BLOCKED_ON_RECEIVE and ep.queue == [world.root]
    assert ntfn.state is NotificationState.ACTIVE


def test_a_bound_thread_waiting_for_a_reply_is_not_woken(world: NtfnWorld) -> None:
    ep_slot, _ = world.endpoint()
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x10)
    world.root.priority = 10
    b = world.thread(100)
    bind_notification(world.kernel, b, ntfn)
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    assert world.kernel.current is b
    world.syscall(Syscall.seL4_SysCall, ep_slot, tag(0, 0))
    assert b.state is ThreadState.BLOCKED_ON_REPLY and world.kernel.current is world.root
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert b.state is ThreadState.BLOCKED_ON_REPLY
    assert ntfn.state is NotificationState.ACTIVE and ntfn.word == 0x10


def test_the_bound_thread_may_wait_on_its_own_notification(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    badged = world.mint_ntfn(slot, badge=0x3)
    b = world.thread(100)
    bind_notification(world.kernel, world.root, ntfn)
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert ntfn.queue == [world.root] and world.kernel.current is b
    world.syscall(Syscall.seL4_SysSend, badged, tag(0, 0))
    assert world.kernel.current is world.root and badge_of(world, world.root) == 0x3


def test_unbinding_ends_receive_on_either(world: NtfnWorld) -> None:
    ep_slot, ep = world.endpoint()
    slot, ntfn = world.notification()
    world.thread(100)
    bind_notification(world.kernel, world.root, ntfn)
    unbind_notification(world.kernel, world.root)
    assert world.root.bound_notification is None and ntfn.bound_tcb is None
    world.syscall(Syscall.seL4_SysRecv, ep_slot)
    world.syscall(Syscall.seL4_SysSend, slot, tag(0, 0))
    assert world.root.state is ThreadState.BLOCKED_ON_RECEIVE and ep.queue == [world.root]


# --- cancellation and the finaliser -----------------------------------------------------------


def test_deleting_a_waiting_thread_takes_it_off_the_queue_and_unbinds_it(
        world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    other_slot, other = world.notification()
    world.root.priority = 10
    b = world.thread(100)
    bind_notification(world.kernel, b, other)
    world.syscall(Syscall.seL4_SysYield)
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert ntfn.queue == [b] and world.kernel.current is world.root
    world.delete(world.tcb_slot(b))
    assert b.state is ThreadState.INACTIVE and b.waiting_on is None
    assert ntfn.state is NotificationState.IDLE and not ntfn.queue
    assert b.bound_notification is None and other.bound_tcb is None


def test_deleting_the_last_cap_restarts_the_waiters_and_unbinds(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    world.root.priority = 10
    b = world.thread(100)
    bind_notification(world.kernel, b, ntfn)
    world.syscall(Syscall.seL4_SysYield)
    world.machine.registers[0] = 0x8004
    world.syscall(Syscall.seL4_SysRecv, slot)  # the bound thread waits on it
    assert ntfn.queue == [b] and world.kernel.current is world.root
    world.delete(slot)
    assert ntfn.state is NotificationState.IDLE and not ntfn.queue and b.waiting_on is None
    assert b.state is ThreadState.RESTART and world.kernel.registers_of(b)[0] == 0x8000  # the trap again
    assert b.bound_notification is None and ntfn.bound_tcb is None


def test_deleting_the_last_cap_restarts_every_waiter_in_order(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    world.root.priority = 10
    b, c = world.thread(100), world.thread(100)
    world.syscall(Syscall.seL4_SysYield)
    world.machine.registers[0] = 0x9004
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.machine.registers[0] = 0xA004
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert ntfn.queue == [b, c] and world.kernel.current is world.root
    world.delete(slot)
    assert ntfn.state is NotificationState.IDLE and not ntfn.queue
    assert (b.state, c.state) == (ThreadState.RESTART, ThreadState.RESTART)
    assert (world.kernel.registers_of(b)[0], world.kernel.registers_of(c)[0]) == (0x9000, 0xA000)
    # Both are ready; each went to the head of its queue (seL4's SCHED_ENQUEUE), so
    # the last one restarted, c, runs first.
    assert world.kernel.current is c and world.kernel.scheduler.queue(0, 100) == [b]


def test_deleting_a_copy_changes_nothing(world: NtfnWorld) -> None:
    slot, ntfn = world.notification()
    copy = world.mint_ntfn(slot, badge=0)
    world.thread(100)
    world.syscall(Syscall.seL4_SysRecv, slot)
    assert ntfn.queue == [world.root] and world.kernel.current is not world.root
    world.delete(copy)  # by the current thread, which shares the root's CSpace
    assert ntfn.queue == [world.root] and world.root.state is ThreadState.BLOCKED_ON_NOTIFICATION


# --- random sequences ---------------------------------------------------------------------------

# Badge bits of the two notifications do not overlap, so a received badge says which
# signals it carries; endpoint caps are unbadged, so an endpoint message brings badge 0.
_BADGES = ((1, 2, 4), (8, 16, 32))
_NON_BLOCKING = {Syscall.seL4_SysRecv: Syscall.seL4_SysNBRecv,
                 Syscall.seL4_SysReplyRecv: Syscall.seL4_SysNBRecv,
                 Syscall.seL4_SysSend: Syscall.seL4_SysNBSend}
_SIGNAL_CALLS = (Syscall.seL4_SysSend, Syscall.seL4_SysNBSend, Syscall.seL4_SysCall)
_WAIT_CALLS = (Syscall.seL4_SysRecv, Syscall.seL4_SysNBRecv, Syscall.seL4_SysReplyRecv)

# An operation is (kind, a, b); what a and b pick depends on the kind (see _Run.step).
# Signals and waits are drawn most often, destroying a notification rarely; resumes
# often enough that threads stopped by cap faults come back.
_KINDS = (["signal"] * 6 + ["wait"] * 6 + ["resume"] * 3
          + ["ep-recv", "ep-send", "yield", "delete"] * 2
          + ["bind", "unbind", "suspend", "destroy"])
_op = st.tuples(st.sampled_from(_KINDS), st.integers(0, 9), st.integers(0, 2))
_WAIT_CAPS = (0, 4, 5, 9, 0, 4, 5, 9, 2, 7)
"""Cap indices to wait on: 0 and 5 have every right, 1-3 and 6-8 signal only (badged),
4 and 9 wait only. Waits mostly use caps that may wait, so threads rarely stop on a
cap fault."""


class _Run:
    """One random run: three threads, two notifications with five caps each, one
    endpoint. Tracks the OR of the badges signalled and of those received.

    The root thread never blocks, faults or is suspended (its blocking receives and
    sends become the non-blocking ones; it skips waits that would fault), so that a run
    does not end as soon as the other threads wait: it keeps signalling them awake.
    """

    def __init__(self, arch: Arch, priorities: list[int]) -> None:
        self.w = NtfnWorld(arch)
        self.ep_slot, _ = self.w.endpoint()
        self.ntfns: list[Notification] = []
        self.caps: list[tuple[int, int, Rights]] = []
        """(slot, notification index, rights) per cap index 0..9: per notification, the
        original (every right), three badged signal-only caps, one wait-only cap."""
        for n, badges in enumerate(_BADGES):
            slot, ntfn = self.w.notification()
            self.ntfns.append(ntfn)
            self.caps.append((slot, n, Rights()))
            for badge in badges:
                self.caps.append((self.w.mint_ntfn(slot, badge, SIGNAL_RIGHTS), n,
                                  SIGNAL_RIGHTS))
            self.caps.append((self.w.mint_ntfn(slot, 0, WAIT_RIGHTS), n, WAIT_RIGHTS))
        self.w.root.priority = 50  # lowest: the others run whenever they can
        self.threads = [self.w.root] + [self.w.thread(p) for p in priorities]
        self.signalled = 0
        self.received = 0

    def step(self, op: tuple[str, int, int]) -> None:
        kernel = self.w.kernel
        kind, a, b = op
        tcb = self.threads[a % 3]
        if kind == "bind":
            ntfn = self.ntfns[b % 2]
            # The TCB decoder's checks (seL4's decodeBindNotification).
            if tcb.bound_notification is None and ntfn.bound_tcb is None and not ntfn.queue:
                bind_notification(kernel, tcb, ntfn)
        elif kind == "unbind":
            unbind_notification(kernel, tcb)
        elif kind == "suspend":  # what TCB Suspend does; oneself would need a kernel entry
            if tcb is not kernel.current and tcb is not self.w.root:
                cancel_ipc(kernel, tcb)
                kernel.set_thread_state(tcb, ThreadState.INACTIVE)
        elif kind == "resume":  # what TCB Resume does to an Inactive thread
            if tcb.state is ThreadState.INACTIVE:
                tcb.stop_reason = None
                kernel.set_thread_state(tcb, ThreadState.RESTART)
                kernel.make_runnable(tcb)
        else:
            self._syscall(kind, a, b)
            return
        check_all(kernel)

    def _syscall(self, kind: str, a: int, b: int) -> None:
        """``kind`` done by the current thread, through a kernel entry."""
        kernel, w = self.w.kernel, self.w
        me = kernel.current
        assert me is not None
        blocked = [t for t in self.threads if t.state is ThreadState.BLOCKED_ON_NOTIFICATION
                   or t.state is ThreadState.BLOCKED_ON_RECEIVE]
        receive_calls = _WAIT_CALLS if kind == "wait" else _WAIT_CALLS[:2]
        send_calls = _SIGNAL_CALLS if kind == "signal" else _SIGNAL_CALLS[:2]
        receive, send = receive_calls[b % len(receive_calls)], send_calls[b % len(send_calls)]
        if me is w.root:
            receive, send = _NON_BLOCKING.get(receive, receive), _NON_BLOCKING.get(send, send)
        if kind == "signal":
            slot = self.caps[a][0]
            cap = w.sys.cap(slot)
            if isinstance(cap, NotificationCap) and cap.rights.write:
                self.signalled |= cap.badge
            w.syscall(send, slot, tag(0, 0))
        elif kind == "wait":
            slot = self.caps[_WAIT_CAPS[a]][0]
            if me is w.root and not self._may_wait(me, slot):
                return
            w.syscall(receive, slot, tag(0, 0))
        elif kind == "ep-recv":
            w.syscall(receive, self.ep_slot)
        elif kind == "ep-send":
            w.syscall(send, self.ep_slot, tag(0, 0))
        elif kind == "yield":
            w.syscall(Syscall.seL4_SysYield)
        elif kind == "delete":
            w.sys.call(CNODE, w.sys.label("CNodeDelete"), [self.caps[a][0], 64])
        elif kind == "destroy":  # every cap to notification a: the last one is final
            original = self.caps[5 * (a % 2)][0]
            w.sys.call(CNODE, w.sys.label("CNodeRevoke"), [original, 64])
            if kernel.current is me:
                w.sys.call(CNODE, w.sys.label("CNodeDelete"), [original, 64])
        if kind in ("wait", "ep-recv") and me.state.runnable:
            self.received |= w.window(me)[0]  # completed at once: badge register written
        for tcb in blocked:
            if tcb.state is ThreadState.RUNNING:
                self.received |= w.window(tcb)[0]

    def _may_wait(self, tcb: TCB, slot: int) -> bool:
        """Whether waiting through ``slot`` would not be a cap fault."""
        cap = self.w.sys.cap(slot)
        if not isinstance(cap, NotificationCap) or not cap.rights.read:
            return False
        bound = self.w.kernel.objects[cap.paddr]
        assert isinstance(bound, Notification)
        return bound.bound_tcb in (None, tcb)

    def check_conservation(self) -> None:
        pending = self.ntfns[0].word | self.ntfns[1].word
        # Nothing invented: every received or pending bit was signalled ...
        assert (self.received | pending) & ~self.signalled == 0
        # ... and nothing lost: every signalled bit was received or is still pending.
        assert self.signalled & ~(self.received | pending) == 0


@fuzzed(50)
@given(arch=st.sampled_from(list(Arch)),
       priorities=st.lists(st.sampled_from([50, 100]), min_size=2, max_size=2),
       ops=st.lists(_op, min_size=20, max_size=longer(50)))
def test_random_signal_wait_poll_bind_sequences_keep_the_invariants(
        arch: Arch, priorities: list[int], ops: list[tuple[str, int, int]]) -> None:
    run = _Run(arch, priorities)
    for op in ops:
        if run.w.kernel.stop is not None or run.w.kernel.current is None:
            break
        run.step(op)
        run.check_conservation()


# --- the tracer ------------------------------------------------------------------------------


def test_signal_wait_and_poll_are_traced_as_such(world: NtfnWorld) -> None:
    from kernel.views.trace import Tracer, TraceRecord, format_record

    slot, _ = world.notification()
    badged = world.mint_ntfn(slot, badge=0x11)
    world.thread(100)
    records: list[TraceRecord] = []
    Tracer(world.kernel, records.append)
    world.syscall(Syscall.seL4_SysNBRecv, slot)
    world.syscall(Syscall.seL4_SysCall, badged, tag(3, 2), 1, 2)
    world.syscall(Syscall.seL4_SysNBSend, badged, tag(0, 0))
    world.syscall(Syscall.seL4_SysRecv, slot)
    world.syscall(Syscall.seL4_SysRecv, slot)
    lines = [format_record(r).split(" ", 2)[2] for r in records]
    assert lines == [
        f"NBRecv(cap={slot:#x} notification, Poll) -> badge=0x0",
        f"Call(cap={badged:#x} notification, Signal, badge=0x11) -> seL4_NoError",
        f"NBSend(cap={badged:#x} notification, Signal, badge=0x11)",
        f"Recv(cap={slot:#x} notification, Wait) -> badge=0x11",
        f"Recv(cap={slot:#x} notification, Wait) -> blocked",
    ]
