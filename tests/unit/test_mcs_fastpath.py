"""The MCS IPC fastpath leaves exactly the state the general path leaves.

As ``test_fastpath.py`` for the non-MCS kernel: the same system calls run on two MCS
kernels, ``KernelConfig.fastpath`` on and off, and a picture of the whole state is
compared after every step; here the picture also has what MCS adds (every thread's
context and reply object, every context's thread, refills, consumed time and call
stack, every reply object's caller and stack links, the clock, the release queue and
the timer). The servers are passive: each waits in Recv with a reply object after its
own context was taken away (SchedContext_UnbindObject), and runs on its callers' lent
contexts. The fastpath is shown to have been taken, and where it must not be, to have
declined without changing anything (then the general path ran).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap, SyscallMCS
from kernel.core.mcs_sched import postpone
from kernel.cspace import cdt
from kernel.entry import mcs_fastpath, mcs_syscalls
from kernel.model.caps import EndpointCap, Rights, UntypedCap
from kernel.model.mcs_clock import MCSClock
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.tcb import TCB, ThreadState
from tests.abi.support import CNODE, System
from tests.fuzzing import fuzzed
from tests.unit.test_fastpath import picture
from tests.unit.test_ipc import tag

ROOT_TCB = int(InitialCap.seL4_CapInitThreadTCB)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
CALL, REPLY_RECV = int(SyscallMCS.seL4_SysCall), int(SyscallMCS.seL4_SysReplyRecv)
RECV, WAIT, SEND = int(SyscallMCS.seL4_SysRecv), int(SyscallMCS.seL4_SysWait), \
    int(SyscallMCS.seL4_SysSend)


class MCSWorld:
    """A booted MCS root task plus helpers to make endpoints, reply objects and threads
    (the same slot numbers in every world made the same way)."""

    def __init__(self, arch: Arch, fastpath: bool, num_domains: int = 1) -> None:
        self.sys = System(arch, fastpath=fastpath, mcs=True, num_domains=num_domains)
        self.kernel = self.sys.kernel
        self.machine = self.sys.machine
        root = self.kernel.current
        assert root is not None
        self.root = root
        start, end = self.sys.report.bootinfo.untyped
        ram = {i: cap for i in range(start, end)
               if isinstance(cap := self.sys.cap(i), UntypedCap) and not cap.is_device}
        self.ut = max(ram, key=lambda i: ram[i].size_bits)
        self.page_type = self.sys.otype(
            "seL4_RISCV_4K_Page" if arch is Arch.RISCV64 else "seL4_ARM_SmallPageObject")
        info = self.sys.report.bootinfo
        assert info.schedcontrol is not None
        self.sched_control = info.schedcontrol[0]
        self.empty = self.sys.free_slots(1)
        self.set_root_priority(254)  # below the threads made to run at once

    def set_root_priority(self, priority: int) -> None:
        """The root task's priority (it may then give way to a ready thread)."""
        self.invoke(ROOT_TCB, "TCBSetPriority", [priority], [ROOT_TCB])

    def make(self, name: str, size_bits: int = 0) -> int:
        slot = self.sys.free_slots(1)
        reply = self.sys.retype(self.ut, self.sys.otype(name), size_bits, slot, 1)
        assert reply.label == 0, reply
        return slot

    def obj(self, slot: int) -> Any:
        paddr = self.sys.cap(slot).object_paddr
        assert paddr is not None
        return self.kernel.objects[paddr]

    def mint(self, src: int, badge: int = 0, rights: Rights | None = None) -> int:
        cap = self.sys.cap(src)
        assert isinstance(cap, EndpointCap)
        dest = self.sys.free_slots(1)
        cdt.insert(EndpointCap(cap.paddr, badge, rights or Rights()),
                   self.sys.slots[src], self.sys.slots[dest])
        return dest

    def invoke(self, cptr: int, label: str, words: list[int], extra: list[int]) -> None:
        reply = self.sys.call(cptr, self.sys.label(label), words, extra=extra)
        assert reply.label == 0, (label, reply)

    def context(self, budget_us: int = 1000) -> int:
        sc = self.make("seL4_SchedContextObject", 8)
        self.invoke(self.sched_control, "SchedControlConfigureFlags",
                    [budget_us, budget_us, 0, 0, 0], [sc])
        return sc

    def thread(self, priority: int, run: bool = True) -> tuple[int, TCB, int]:
        """A thread in the root task's spaces, on a context of its own, Resumed: at the
        top priority if ``run`` (it runs at once; :meth:`passive_server` lowers it
        later), else at ``priority`` (below the current thread's: it waits, ready).
        Returns its TCB slot, TCB and context slot."""
        slot = self.make("seL4_TCBObject")
        tcb = self.obj(slot)
        assert isinstance(tcb, TCB)
        cdt.insert_child(self.sys.slots[CNODE], tcb.ctable, self.sys.cap(CNODE), False)
        cdt.insert_child(self.sys.slots[VSPACE], tcb.vtable, self.sys.cap(VSPACE), False)
        frame = self.sys.free_slots(1)
        assert self.sys.retype(self.ut, self.page_type, 0, frame, 1).label == 0
        cdt.insert_child(self.sys.slots[frame], tcb.ipc_buffer_slot, self.sys.cap(frame),
                         False)
        tcb.ipc_buffer = 0x7000_0000
        sc = self.context()
        prio = 255 if run else priority
        self.invoke(slot, "TCBSetSchedParams", [prio, prio], [ROOT_TCB, sc, self.empty])
        current = self.kernel.current
        self.invoke(slot, "TCBResume", [], [])
        assert self.kernel.current is (tcb if run else current)
        return slot, tcb, sc

    def passive_server(self, ep: int, reply: int, priority: int) -> int:
        """A thread that waits in Recv on ``ep`` with ``reply`` and then loses its
        context: a passive server at ``priority``. Returns its TCB slot."""
        slot, tcb, sc = self.thread(priority)
        self.syscall(RECV, ep, 0, 0, 0, 0, 0, reply)
        assert self.kernel.current is self.root
        self.invoke(sc, "SchedContextUnbindObject", [], [slot])
        self.invoke(slot, "TCBSetPriority", [priority], [ROOT_TCB])
        assert tcb.sched_context is None and tcb.state is ThreadState.BLOCKED_ON_RECEIVE
        return slot

    def syscall(self, number: int, *args: int) -> None:
        self.machine.syscall_args(number, *args)
        self.kernel.syscall()


def mcs_picture(world: MCSWorld) -> dict[str, Any]:
    """``test_fastpath.picture`` plus everything MCS (see the module docstring)."""
    kernel = world.kernel

    def paddr(obj: Any) -> int | None:
        return None if obj is None else int(obj.paddr)

    scene = picture(world)  # type: ignore[arg-type]
    mcs: dict[str, Any] = {}
    for obj in kernel.objects.values():
        if isinstance(obj, TCB):
            mcs[f"tcb {obj.paddr:#x}"] = (
                paddr(obj.sched_context), paddr(obj.reply_object), obj.in_release_queue,
                paddr(obj.yield_to), obj.after_syscall, obj.domain)
        elif isinstance(obj, SchedContext):
            mcs[f"sc {obj.paddr:#x}"] = (
                paddr(obj.tcb), paddr(obj.reply), list(obj.refills), obj.consumed,
                paddr(obj.yield_from))
        elif isinstance(obj, ReplyObject):
            mcs[f"reply {obj.paddr:#x}"] = (paddr(obj.tcb), paddr(obj.prev), paddr(obj.next))
    clock = kernel.mcs
    assert isinstance(clock, MCSClock)
    mcs["clock"] = (clock.now, clock.consumed, paddr(clock.sc), clock.reprogram,
                    clock.deadline, [t.paddr for t in clock.release_queue])
    mcs["timer"] = world.machine.deadline
    mcs["counts"] = (kernel.kernel_entries, kernel.ticks)
    scene["mcs"] = mcs
    return scene


class Counted:
    """Counts the MCS fastpath's successes and declines; a decline must change nothing."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, world: MCSWorld) -> None:
        self.taken = self.declined = 0
        for name in ("mcs_fastpath_call", "mcs_fastpath_reply_recv"):
            original = getattr(mcs_fastpath, name)

            def counting(kernel: Any, window: list[int], _f: Any = original) -> bool:
                before = mcs_picture(world)
                done: bool = _f(kernel, window)
                if done:
                    self.taken += 1
                else:
                    self.declined += 1
                    assert mcs_picture(world) == before
                return done

            monkeypatch.setattr(mcs_syscalls, name, counting)


Step = tuple[int, ...]
Setup = Callable[[MCSWorld], dict[str, int]]


@contextmanager
def twins(monkeypatch: pytest.MonkeyPatch, arch: Arch, setup: Setup,
          num_domains: int = 1) -> Iterator[tuple[MCSWorld, MCSWorld, dict[str, int], Counted]]:
    """The same set-up twice, fastpath on then off, and a counter on the first."""
    fast = MCSWorld(arch, True, num_domains)
    names = setup(fast)
    slow = MCSWorld(arch, False, num_domains)
    assert setup(slow) == names
    assert mcs_picture(fast) == mcs_picture(slow)
    yield fast, slow, names, Counted(monkeypatch, fast)


def run_both(fast: MCSWorld, slow: MCSWorld, steps: list[Step], advance: int = 0) -> None:
    for step in steps:
        for w in (fast, slow):
            w.machine.clock += advance
            if w.kernel.current is not None:
                w.syscall(*step)
        assert mcs_picture(fast) == mcs_picture(slow), step


def _echo(server_prio: int, client_prio: int) -> Setup:
    def setup(w: MCSWorld) -> dict[str, int]:
        ep, reply = w.make("seL4_EndpointObject"), w.make("seL4_ReplyObject")
        server = w.passive_server(ep, reply, server_prio)
        w.set_root_priority(client_prio)
        assert w.kernel.current is w.root
        return {"ep": ep, "reply": reply, "badged": w.mint(ep, badge=0x42), "server": server}

    return setup


def _exchanges(names: dict[str, int], count: int) -> list[Step]:
    steps: list[Step] = []
    for i in range(count):
        steps.append((CALL, names["badged"], tag(7 + i, i % 6), 10 + i, 20, 30, 40))
        steps.append((REPLY_RECV, names["ep"], tag(i, 5 - i % 6), 50 + i, 60, 70, 80,
                      names["reply"]))
    return steps


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize(("client_prio", "server_prio"), [(100, 100), (100, 200), (200, 100)])
@pytest.mark.parametrize("advance", [0, 37])
def test_calls_to_a_passive_server_match_the_general_path(
        monkeypatch: pytest.MonkeyPatch, arch: Arch, client_prio: int, server_prio: int,
        advance: int) -> None:
    with twins(monkeypatch, arch, _echo(server_prio, client_prio)) as (fast, slow, names, n):
        run_both(fast, slow, _exchanges(names, 6), advance)
        # Calls and replies of at most four words went the fast way (the two of five
        # words the general way); the server waits again, the context is the client's.
        assert n.taken == 12 - 2 and n.declined == 2
        assert fast.kernel.current is fast.root and fast.root.sched_context is not None
        assert fast.kernel.kernel_entries == slow.kernel.kernel_entries


def _chain(w: MCSWorld) -> dict[str, int]:
    """Root -> A -> B, both passive (as userland/mcs/mcs_chain.c): two Calls deep on
    the root task's context, the call stack two reply objects high."""
    names = {"ep_a": w.make("seL4_EndpointObject"), "ep_b": w.make("seL4_EndpointObject"),
             "reply_a": w.make("seL4_ReplyObject"), "reply_b": w.make("seL4_ReplyObject")}
    w.passive_server(names["ep_a"], names["reply_a"], 150)
    w.passive_server(names["ep_b"], names["reply_b"], 120)
    return names


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_call_chain_two_deep_matches_the_general_path(monkeypatch: pytest.MonkeyPatch,
                                                        arch: Arch) -> None:
    with twins(monkeypatch, arch, _chain) as (fast, slow, names, n):
        steps: list[Step] = []
        for i in range(3):
            steps += [
                (CALL, names["ep_a"], tag(1, 1), i),  # root -> A
                (CALL, names["ep_b"], tag(2, 2), i, 5),  # A -> B: the stack is two high
                (REPLY_RECV, names["ep_b"], tag(3, 1), i + 1, 0, 0, 0, names["reply_b"]),
                (REPLY_RECV, names["ep_a"], tag(4, 1), i + 2, 0, 0, 0, names["reply_a"]),
            ]
        run_both(fast, slow, steps, advance=11)
        assert n.taken == 12 and n.declined == 0
        root_sc = fast.root.sched_context
        assert root_sc is not None and root_sc.reply is None


RANDOM_STEP = st.tuples(st.integers(0, 9), st.sampled_from(["a", "b"]), st.integers(0, 5),
                        st.sampled_from([0, 0, 0, 7, 300, 20_000]))
"""(what, which endpoint, message length, ticks passing before it)."""


def _random_step(w: MCSWorld, names: dict[str, int], step: tuple[int, str, int, int]) -> Step:
    """A client (the root task, the thread with a context) mostly Calls a server, else
    Yields, Sends or NBSendRecvs; a server mostly answers with ReplyRecv, else Calls
    the other server, replies through the wrong reply object or Recvs again (dropping
    its caller)."""
    what, which, length, _ = step
    info = tag(length, length)
    server = next((x for x in "ab" if w.obj(names[f"server_{x}"]) is w.kernel.current), None)
    if server is None:
        ep = names[f"ep_{which}"]
        if what < 7:
            return (CALL, ep, info, 1, 2, 3, 4)
        if what == 7:
            return (int(SyscallMCS.seL4_SysYield),)
        if what == 8:
            return (SEND, ep, info, 1, 2, 3, 4)
        return (int(SyscallMCS.seL4_SysNBSendRecv), ep, info, 1, 2, 3, 4, names["spare"])
    ep, reply = names[f"ep_{server}"], names[f"reply_{server}"]
    if what < 6:
        return (REPLY_RECV, ep, info, 1, 2, 3, 4, reply)
    if what < 8:
        return (CALL, names["ep_b" if server == "a" else "ep_a"], info, 1, 2, 3, 4)
    if what == 8:
        return (REPLY_RECV, ep, info, 1, 2, 3, 4, names["spare"])
    return (RECV, ep, 0, 0, 0, 0, 0, reply)


@fuzzed(60)
@given(arch=st.sampled_from(list(Arch)),
       priorities=st.lists(st.integers(90, 110), min_size=4, max_size=4),
       steps=st.lists(RANDOM_STEP, min_size=5, max_size=40))
def test_random_mcs_ipc_is_the_same_with_and_without_the_fastpath(
        arch: Arch, priorities: list[int], steps: list[tuple[int, str, int, int]]) -> None:
    """Two passive servers, a thread with a context of its own, the root task, close
    priorities; whoever runs makes a random call, time passes (budgets run out)."""
    def setup(w: MCSWorld) -> dict[str, int]:
        names = {"ep_a": w.make("seL4_EndpointObject"), "ep_b": w.make("seL4_EndpointObject"),
                 "reply_a": w.make("seL4_ReplyObject"), "reply_b": w.make("seL4_ReplyObject"),
                 "spare": w.make("seL4_ReplyObject")}
        names["server_a"] = w.passive_server(names["ep_a"], names["reply_a"], priorities[0])
        names["server_b"] = w.passive_server(names["ep_b"], names["reply_b"], priorities[1])
        w.thread(priorities[2], run=False)
        w.set_root_priority(priorities[3])
        return names

    fast, slow = MCSWorld(arch, True), MCSWorld(arch, False)
    names = setup(fast)
    assert setup(slow) == names
    for step in steps:
        if fast.kernel.current is None or fast.kernel.stop is not None:
            break
        run_both(fast, slow, [_random_step(fast, names, step)], step[3])


# --- each condition the fastpath does not handle: it declines, the general path runs -----


def _declines(monkeypatch: pytest.MonkeyPatch, arch: Arch, setup: Setup,
              steps: Callable[[dict[str, int]], list[Step]], num_domains: int = 1,
              prepare: Callable[[MCSWorld, dict[str, int]], None] | None = None) -> Counted:
    """Run ``steps`` in both worlds, ``prepare`` in both before the last one, which the
    fastpath must decline (the steps before set the case up, fast or not)."""
    with twins(monkeypatch, arch, setup, num_domains) as (fast, slow, names, counted):
        all_steps = steps(names)
        run_both(fast, slow, all_steps[:-1])
        if prepare is not None:
            prepare(fast, names)
            prepare(slow, names)
            assert mcs_picture(fast) == mcs_picture(slow)
        taken, declined = counted.taken, counted.declined
        run_both(fast, slow, all_steps[-1:])
        assert counted.taken == taken and counted.declined == declined + 1
        return counted


ARCH = pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)


def _call(names: dict[str, int]) -> list[Step]:
    return [(CALL, names["ep"], tag(1, 1), 1)]


def _call_then_reply_recv(names: dict[str, int]) -> list[Step]:
    return [(CALL, names["badged"], tag(1, 1), 1),
            (REPLY_RECV, names["ep"], tag(1, 1), 2, 0, 0, 0, names["reply"])]


@ARCH
@pytest.mark.parametrize("case", ["long", "extra caps", "no grant", "nobody waits"])
def test_call_declines_a_message_or_cap_it_does_not_handle(
        monkeypatch: pytest.MonkeyPatch, arch: Arch, case: str) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 100)(w)
        names["no_grant"] = w.mint(names["ep"], 1, Rights(grant=False, grant_reply=False))
        names["other"] = w.make("seL4_EndpointObject")
        return names

    def steps(names: dict[str, int]) -> list[Step]:
        ep = {"no grant": names["no_grant"], "nobody waits": names["other"]}.get(
            case, names["ep"])
        info = {"long": tag(1, 5), "extra caps": tag(1, 1, extra=1)}.get(case, tag(1, 1))
        return [(CALL, ep, info, 1)]

    _declines(monkeypatch, arch, setup, steps)


@ARCH
def test_call_declines_a_receiver_with_a_context_of_its_own(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        ep, reply = w.make("seL4_EndpointObject"), w.make("seL4_ReplyObject")
        w.thread(200)
        w.syscall(RECV, ep, 0, 0, 0, 0, 0, reply)  # active: it keeps its context
        return {"ep": ep, "reply": reply}

    _declines(monkeypatch, arch, setup, _call)


@ARCH
def test_call_declines_a_receiver_without_a_reply_object(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        ep = w.make("seL4_EndpointObject")
        slot, _tcb, sc = w.thread(200)
        w.syscall(WAIT, ep)
        w.invoke(sc, "SchedContextUnbindObject", [], [slot])
        return {"ep": ep}

    _declines(monkeypatch, arch, setup, _call)


@ARCH
def test_call_declines_when_a_ready_thread_outranks_the_receiver(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 200)(w)
        w.thread(150, run=False)
        return names

    _declines(monkeypatch, arch, setup, _call)


@ARCH
def test_call_declines_a_receiver_of_another_domain(monkeypatch: pytest.MonkeyPatch,
                                                    arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 100)(w)
        w.kernel.set_domain(w.obj(names["server"]), 1)
        return names

    _declines(monkeypatch, arch, setup, _call, num_domains=2)


@ARCH
def test_call_declines_when_a_release_is_due(monkeypatch: pytest.MonkeyPatch,
                                             arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 200)(w)
        names["waiting"] = w.thread(50, run=False)[0]
        return names

    def release(w: MCSWorld, names: dict[str, int]) -> None:
        sc = w.obj(names["waiting"]).sched_context
        postpone(w.kernel, sc)  # its head refill is ready: due at this entry

    _declines(monkeypatch, arch, setup, _call, prepare=release)


@ARCH
@pytest.mark.parametrize("case", ["long", "extra caps", "not a reply object",
                                  "not an endpoint", "no receive right", "nobody waits"])
def test_reply_recv_declines_a_message_or_cap_it_does_not_handle(
        monkeypatch: pytest.MonkeyPatch, arch: Arch, case: str) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 100)(w)
        names["send_only"] = w.mint(names["ep"], 0, Rights(read=False))
        names["spare"] = w.make("seL4_ReplyObject")
        return names

    def steps(names: dict[str, int]) -> list[Step]:
        ep = {"not an endpoint": names["reply"], "no receive right": names["send_only"]}.get(
            case, names["ep"])
        reply = {"not a reply object": names["ep"], "nobody waits": names["spare"]}.get(
            case, names["reply"])
        info = {"long": tag(1, 5), "extra caps": tag(1, 1, extra=1)}.get(case, tag(1, 1))
        return [(CALL, names["badged"], tag(1, 1), 1),
                (REPLY_RECV, ep, info, 2, 0, 0, 0, reply)]

    _declines(monkeypatch, arch, setup, steps)


@ARCH
def test_reply_recv_declines_a_caller_that_kept_its_context(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    """An active server: the caller lent nothing, the reply object is on no stack."""
    def setup(w: MCSWorld) -> dict[str, int]:
        ep, reply = w.make("seL4_EndpointObject"), w.make("seL4_ReplyObject")
        w.thread(200)
        w.syscall(RECV, ep, 0, 0, 0, 0, 0, reply)
        return {"ep": ep, "reply": reply, "badged": ep}

    _declines(monkeypatch, arch, setup, _call_then_reply_recv)


@ARCH
def test_reply_recv_declines_a_replier_with_a_bound_notification(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    def setup(w: MCSWorld) -> dict[str, int]:
        names = _echo(100, 100)(w)
        names["ntfn"] = w.make("seL4_NotificationObject")
        w.invoke(names["server"], "TCBBindNotification", [], [names["ntfn"]])
        return names

    _declines(monkeypatch, arch, setup, _call_then_reply_recv)


@ARCH
def test_reply_recv_declines_when_a_sender_waits(monkeypatch: pytest.MonkeyPatch,
                                                 arch: Arch) -> None:
    def sender(w: MCSWorld, names: dict[str, int]) -> None:
        # While the server works on the root task's call, a new thread above it sends
        # to the endpoint: nobody receives, it waits.
        w.thread(255)
        w.syscall(SEND, names["ep"], tag(9, 1), 9)
        assert w.obj(names["ep"]).queue  # a sender waits

    _declines(monkeypatch, arch, _echo(100, 100), _call_then_reply_recv, prepare=sender)


@ARCH
def test_reply_recv_declines_when_a_ready_thread_outranks_the_caller(
        monkeypatch: pytest.MonkeyPatch, arch: Arch) -> None:
    def ready(w: MCSWorld, names: dict[str, int]) -> None:
        # While the server (200) runs on the root task's context, a thread between the
        # two becomes ready: after the reply the scheduler picks it, not the root task.
        w.thread(150, run=False)

    counted = _declines(monkeypatch, arch, _echo(200, 100), _call_then_reply_recv,
                        prepare=ready)
    assert counted.taken == 1  # the Call went the fast way
