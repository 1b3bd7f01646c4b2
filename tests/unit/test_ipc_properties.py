"""Property: random multi-threaded IPC never crashes the kernel or breaks an invariant.

Hypothesis builds a root task plus up to three more threads at random priorities, a few
endpoints with badged and rights-reduced copies, a notification (bound to one thread)
with its copies, then drives whatever thread is current
through a random sequence of kernel entries: every IPC syscall (Send, NBSend, Call, Recv,
NBRecv, Reply, ReplyRecv), Yield, unknown syscall numbers and timer ticks, with random
cptrs (good caps, wrong types, empty slots, garbage words), message infos, message
registers, extra caps and receive slots.

Acceptable outcomes of each entry: any reply, fault or state change seL4 allows; the run
may end with every thread blocked or stopped on an unhandled fault. A Python exception fails the test, and the
invariant checker (endpoint queues, run queues, CDT, ...) runs after every kernel entry.
On top of the checker, each step asserts the scheduler picture: while the kernel runs,
the current thread is runnable and no runnable thread has a higher priority.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import Syscall
from kernel.core.notifications import bind_notification
from kernel.cspace.cdt import insert
from kernel.model.caps import NotificationCap, Rights
from kernel.model.message import MessageInfo
from kernel.model.notification import Notification
from kernel.model.tcb import TCB
from tests.fuzzing import fuzzed, longer
from tests.unit.test_ipc import CAPS, RECV, World

S = Syscall
IPC_SYSCALLS = [S.seL4_SysSend, S.seL4_SysSend, S.seL4_SysSend, S.seL4_SysCall, S.seL4_SysCall,
                S.seL4_SysCall, S.seL4_SysNBSend, S.seL4_SysRecv, S.seL4_SysRecv,
                S.seL4_SysNBRecv, S.seL4_SysReply, S.seL4_SysReplyRecv, S.seL4_SysReplyRecv,
                S.seL4_SysYield]
"""Weighted towards sends, so that receivers blocked by earlier steps get woken."""

word = st.one_of(st.integers(0, 15), st.integers(0, (1 << 64) - 1))
message_info = st.one_of(
    st.builds(lambda label, extra, length: MessageInfo(label, 0, extra, length).to_word(),
              st.integers(0, 40), st.integers(0, 3), st.integers(0, 130)),
    st.integers(0, (1 << 64) - 1),
)


def cptr_strategy(good: list[int]) -> st.SearchStrategy[int]:
    """Mostly caps that exist (endpoints and their copies), sometimes anything."""
    return st.integers(0, 7).flatmap(
        lambda kind: st.sampled_from(good) if kind < 6 else st.one_of(st.integers(0, 20), word))


OTHER_NUMBERS = [-9, -10, -12, 0, 1, 7, 30, -200]
"""Unknown numbers fault; harmless debug calls. DebugHalt, which ends the run, is left out."""


def step_strategy(good: list[int]) -> st.SearchStrategy[tuple[object, ...]]:
    """A step: one syscall by the current thread (9 in 10) or a timer tick.

    Choices are drawn from weighted lists (``one_of`` does not weight repeated
    branches; ``sampled_from`` does): most steps should be IPC to get past blocking.
    """
    cptr = cptr_strategy(good)
    numbers = [*IPC_SYSCALLS * 3, *OTHER_NUMBERS]
    syscall = st.sampled_from(numbers)  # by index: repeated entries weigh more
    call = st.tuples(st.just("syscall"), syscall, cptr, message_info,
                     st.lists(word, min_size=4, max_size=4),
                     st.lists(cptr, min_size=0, max_size=3),  # extra caps in the IPC buffer
                     st.tuples(st.sampled_from([0, 2]), cptr, st.sampled_from([0, 12, 64])))
    return st.integers(0, 9).flatmap(lambda kind: st.just(("tick",)) if kind == 9 else call)


class Scenario:
    """The world a sequence runs in: threads, endpoints and the caps naming them."""

    def __init__(self, arch: Arch, priorities: list[int], grants: list[bool],
                 fault_handlers: list[int], fastpath: bool = True) -> None:
        self.world = World(arch, fastpath)
        w = self.world
        self.caps: list[int] = []
        for grant in grants:
            slot, _ = w.endpoint()
            self.caps += [
                slot,
                w.mint(slot, badge=len(self.caps) + 1),
                w.mint(slot, badge=0x100, rights=Rights(read=True, write=True, grant=grant,
                                                        grant_reply=not grant)),
                w.mint(slot, rights=Rights(read=True, write=False)),
            ]
        self.free = w.sys.free_slots(4)  # empty slots to receive caps into
        self.threads: list[TCB] = [w.root, *(w.thread(p) for p in priorities)]
        self._notification(bind=self.threads[1])
        # Faults (bad cptrs, unknown syscalls) go to an endpoint some thread may receive
        # on, so fault delivery and fault replies are exercised too; index 0: no handler.
        for tcb, handler in zip(self.threads, fault_handlers):
            tcb.fault_ep = self.caps[handler % len(self.caps)] if handler else 0

    def _notification(self, bind: TCB) -> None:
        """A notification among the caps (badged, send-only and receive-only copies),
        bound to ``bind``, so that signals meet waits, polls and receive-on-either."""
        w = self.world
        slot = w.make(w.sys.otype("seL4_NotificationObject"))
        cap = w.sys.cap(slot)
        assert isinstance(cap, NotificationCap)
        self.caps.append(slot)
        for badge, rights in ((0x1, Rights()), (0x6, Rights(read=False)),
                              (0, Rights(write=False))):
            dest = w.sys.free_slots(1)
            insert(NotificationCap(cap.paddr, badge, rights), w.sys.slots[slot],
                   w.sys.slots[dest])
            self.caps.append(dest)
        ntfn = w.kernel.objects[cap.paddr]
        assert isinstance(ntfn, Notification)
        bind_notification(w.kernel, bind, ntfn)

    def good_cptrs(self) -> list[int]:
        return [*self.caps, self.free, self.free + 1]

    def run(self, steps: list[tuple[object, ...]],
            after_each: Callable[[], None] | None = None) -> None:
        kernel = self.world.kernel
        for step in steps:
            if after_each is not None:
                after_each()
            if kernel.stop is not None:
                # Every thread blocked, or stopped on a fault nobody handles; or a
                # random cptr named an object whose methods capsule lacks so far.
                assert kernel.stop.kind in ("idle", "fault") or (
                    kernel.stop.kind == "kernel-halt"
                    and kernel.stop.message.startswith("not implemented in capsule yet")
                ), kernel.stop
                return
            current = kernel.current
            assert current is not None
            if step[0] == "tick":
                kernel.timer_tick()
            else:
                _, number, cptr, info, mrs, extra, (recv_cnode, recv_index, recv_depth) = step
                assert isinstance(extra, list) and isinstance(mrs, list)
                if current.ipc_buffer:
                    self.world.write_words(current, CAPS, [int(c) for c in extra])
                    self.world.write_words(current, RECV, [int(recv_cnode), int(recv_index),
                                                           int(recv_depth)])
                self.world.syscall(int(number), int(cptr), int(info), *map(int, mrs))
            self._check_schedule()

    def _check_schedule(self) -> None:
        kernel = self.world.kernel
        if kernel.stop is not None:
            return
        current = kernel.current
        assert current is not None and current.state.runnable
        best = max((t.priority for t in self.threads if t.state.runnable), default=-1)
        assert current.priority == best, (current.name, current.priority, best)


SCENARIO_ARGUMENTS: dict[str, st.SearchStrategy[Any]] = {
    "data": st.data(),
    "arch": st.sampled_from(list(Arch)),
    "priorities": st.lists(st.sampled_from([0, 100, 200, 255]), min_size=1, max_size=3),
    "grants": st.lists(st.booleans(), min_size=1, max_size=2),
    "fault_handlers": st.lists(st.integers(0, 8), min_size=4, max_size=4),
}
"""The strategies for a test on random :class:`Scenario` steps: ``given(**SCENARIO_ARGUMENTS)``
draws a test's ``data``, ``arch``, ``priorities``, ``grants`` and ``fault_handlers``."""


@fuzzed(200)
@given(**SCENARIO_ARGUMENTS)
def test_random_ipc_sequences_keep_the_kernel_sound(
    data: st.DataObject, arch: Arch, priorities: list[int], grants: list[bool],
    fault_handlers: list[int],
) -> None:
    scenario = Scenario(arch, priorities, grants, fault_handlers)
    steps = data.draw(st.lists(step_strategy(scenario.good_cptrs()), min_size=10, max_size=longer(60)))
    scenario.run(steps)
