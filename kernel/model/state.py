"""The kernel's state: plain data, and the scheduler operations every layer uses.

:class:`KernelState` is what one machine's kernel holds (DESIGN.md decision 7): the object
store keyed by physical address, the ASID table, the threads, the ready queues, the
current thread and why the run stopped. Every kernel operation below the entry layer takes
it as its first argument; :class:`kernel.kernel.Kernel` extends it with the entry points
the machine calls. Besides data it holds two attachments that are not state: the
:class:`~kernel.machine.Machine` it runs on and the console it prints to.

The methods here are the ones seL4's scheduler and thread code offer to everything above
them (setThreadState, rescheduleRequired, possibleSwitchTo, the lazy save of the running
thread's registers); they change queues and flags only, never another layer's objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

from mypy_extensions import mypyc_attr
from sortedcontainers import SortedList

from kernel.abi.arch import Arch, ArchABI, abi_for
from kernel.config import KernelConfig
from kernel.machine import Machine
from kernel.model.asid_pool import ASIDPool
from kernel.model.cap_page import CapPageMapping
from kernel.model.caps import Cap
from kernel.model.cnode import CNode
from kernel.model.domains import DomainSchedule
from kernel.model.endpoint import Endpoint
from kernel.model.errors import KernelBug, SyscallError
from kernel.model.faults import CapFault, Fault
from kernel.model.mcs_clock import MCSClock
from kernel.model.notification import Notification
from kernel.model.paging import PagingFormat
from kernel.model.platform import ArchModel, model_for
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.scheduler import Scheduler
from kernel.model.slot import Slot
from kernel.model.tcb import TCB, ThreadState
from kernel.pickling import Persistent
from kernel.records import dataclass

__all__ = ["KernelObject", "KernelState", "RefusedInvocation", "StopReason"]

KernelObject = CNode | TCB | Endpoint | Notification | ASIDPool | SchedContext | ReplyObject
"""What the object store holds: the objects whose state is more than RAM and a cap
(frames, page tables and untypeds are their caps and their memory)."""

Object = TypeVar("Object", CNode, TCB, Endpoint, Notification, ASIDPool, SchedContext, ReplyObject)


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why the run ended.

    ``kind`` is ``"halt"`` (seL4_DebugHalt; ``status`` is the guest's exit status),
    ``"fault"`` (the last runnable thread stopped on a fault nobody handles) or
    ``"idle"`` (every thread is blocked or inactive: nothing can ever run again).
    """

    kind: str
    status: int
    message: str


@dataclass(frozen=True, slots=True)
class RefusedInvocation:
    """An invocation a decoder refused (what seL4's debug kernel reports with userError).

    ``thread`` invoked ``cap`` with message label ``label`` from the trap instruction at
    ``pc`` (its restart pc) and got ``error``; replied on Call, dropped otherwise.
    """

    thread: TCB
    pc: int
    cap: Cap
    label: int
    error: SyscallError


_Links = list[tuple[Slot, Slot | None, Slot | None]]


@mypyc_attr(allow_interpreted_subclasses=True)
class KernelState(Persistent):
    """All kernel state of one machine, and the scheduler operations on it."""

    _STATE: ClassVar[tuple[str, ...]] = (
        "config", "arch", "objects", "_addresses", "asid_table", "asid_epoch", "threads",
        "scheduler", "domains",
        "current", "stop", "last_invocation", "kernel_entries", "syscall_entries", "ticks",
        "_current_saved",
        "reg_index", "window_index", "cap_page_maps", "mcs",
    )
    """Attributes a pickle carries. Named, not taken from ``__dict__``: a compiled
    (mypyc) kernel's objects have none."""
    _NOT_STATE: ClassVar[tuple[str, ...]] = (
        "machine", "console", "abi", "platform", "paging", "tcb_bits", "fault_observers",
        "error_observers", "no_handler_observers", "lookup_phase")
    """Attributes left out of a pickle: attachments, observers and values derived from
    ``arch``."""

    def __init__(
        self, machine: Machine, config: KernelConfig, console: Callable[[int], None]
    ) -> None:
        self.machine = machine
        self.config = config
        self.arch: Arch = machine.arch
        self.abi: ArchABI = abi_for(machine.arch)
        self.platform: ArchModel = model_for(machine.arch)
        """What differs between the architectures in kernel behaviour, as data."""
        self.paging: PagingFormat = self.platform.paging
        self.tcb_bits = self.abi.tcb_bits if config.fpu else self.abi.tcb_bits_without_fpu
        """seL4_TCBBits of this configuration (the FPU's state makes TCBs larger)."""
        self.console = console
        self.fault_observers: list[Callable[[TCB, Fault], None]] = []
        """Called with the thread and the fault each time a thread faults, before the
        fault is delivered (``kernel.core.fault_delivery``): a cap fault, VM fault, user
        exception or unknown syscall. Empty in normal runs; an observer must not change
        kernel state (the entry is half done)."""
        self.error_observers: list[Callable[[RefusedInvocation], None]] = []
        """Called each time an invocation is refused with a SyscallError, before the
        error reply (``kernel.entry.invocation``; the kernel log). Not for cap faults
        of the invoked cap: those go to ``fault_observers``. Must not change state."""
        self.no_handler_observers: list[Callable[[TCB, Fault, CapFault], None]] = []
        """Called when a fault of a thread finds no fault handler, with the thread, its
        fault and the cap fault of the handler's lookup (seL4's double fault), before
        the thread stops (``kernel.core.fault_delivery``). Must not change state."""
        self.objects: dict[int, KernelObject] = {}
        """Objects by physical address. Read it freely; change it only through
        :meth:`add_object` and :meth:`remove_objects_in`, which keep the address index."""
        self._addresses: SortedList[int] = SortedList()
        """The keys of ``objects`` in order, so that the objects of a memory region are
        found in time proportional to their number, not to all objects."""
        self.asid_table: dict[int, ASIDPool] = {}
        """seL4's ASID table: live ASID pools by pool index (ASID >> 9); each is also in
        ``objects``. Kept apart so that a thread switch finds its VSpace in O(1)."""
        self.asid_epoch = 0
        """Bumped whenever the ASID table or a pool's roots change: a thread's cached
        VSpace resolution (``kernel.core.threads.vspace_root_of``) from an older epoch is
        recomputed."""
        self.cap_page_maps: dict[tuple[int, int], CapPageMapping] = {}
        """capsule's capability-page extension (not seL4): the mapped capability pages
        by (ASID, page vaddr) (``kernel.model.cap_page``); empty without it."""
        self.threads: dict[int, TCB] = {}
        """Every TCB by physical address, in creation order (what the tools list)."""
        self.scheduler = Scheduler(config.num_domains, mcs=config.mcs)
        self.mcs: MCSClock | None = MCSClock() if config.mcs else None
        """The MCS kernel's clock, budget and release-queue state (None without MCS)."""
        self.domains = DomainSchedule(config.domain_schedule_length)
        self.current: TCB | None = None
        self.stop: StopReason | None = None
        self.lookup_phase = -1
        """capsule's server-backed CNodes (not seL4): which lookup of the current system
        call is under way (a ``LookupKind``) while a lookup may still suspend the system
        call, -1 otherwise (outside the invocation path, and from its commit point on).
        Set only by ``kernel.entry.invocation``; read by ``kernel.cspace.lookup``."""
        self.last_invocation: object | None = None
        """The record of the last invocation decoded (a frozen dataclass such as
        CNodeInsert or RetypeInvocation; None before the first): what the trace and the
        debugger show of it."""
        self.kernel_entries = 0
        self.syscall_entries = 0
        """Kernel entries that were system calls (the trace numbers them from 1)."""
        self.ticks = 0
        self._current_saved = False
        """The current thread's registers were copied into its TCB during this entry."""
        self.reg_index = {name: i for i, name in enumerate(self.abi.user_context)}
        prefix = "x" if "x0" in self.reg_index else "a"
        self.window_index = [self.reg_index[f"{prefix}{i}"] for i in range(8)]
        """Positions of the syscall window (a0-a7 / x0-x7) in a saved register list."""

    # --- typed lookups ------------------------------------------------------------------
    # A cap names its object by address; this returns the object a valid cap names, of
    # the type the cap says. Anything else there is a kernel bug, not a guest error.

    def object_at(self, paddr: int, kind: type[Object]) -> Object:
        """The object of type ``kind`` at ``paddr``; KernelBug if there is none."""
        obj = self.objects.get(paddr)
        if not isinstance(obj, kind):
            raise KernelBug(f"no {kind.__name__} at {paddr:#x}")
        return obj

    # --- the object store -------------------------------------------------------------

    def add_object(self, obj: KernelObject) -> None:
        """Put ``obj`` in the store at its address (a TCB also joins ``threads``).
        Precondition: no object lives there."""
        paddr = obj.paddr
        if paddr in self.objects:
            raise KernelBug(f"an object already lives at {paddr:#x}")
        self.objects[paddr] = obj
        self._addresses.add(paddr)
        if isinstance(obj, TCB):
            self.threads[paddr] = obj

    def remove_objects_in(self, base: int, size: int) -> list[KernelObject]:
        """Take every object at an address in ``[base, base + size)`` out of the store
        (and TCBs out of ``threads``) and return them, in address order. Costs
        O(log n + k) for k objects there, whatever the total n."""
        addresses = self._addresses
        first = addresses.bisect_left(base)
        last = addresses.bisect_left(base + size)
        found = [self.objects.pop(paddr) for paddr in addresses[first:last]]
        del addresses[first:last]
        for obj in found:
            if isinstance(obj, TCB):
                del self.threads[obj.paddr]
        return found

    def addresses_consistent(self) -> bool:
        """Whether the address index matches the store (for the invariant checker)."""
        return list(self._addresses) == sorted(self.objects) and all(
            self.objects.get(paddr) is tcb for paddr, tcb in self.threads.items())

    # --- pickling (checkpoints) --------------------------------------------------------

    def __getstate__(self) -> dict[str, object]:
        state = {name: getattr(self, name) for name in self._STATE}
        state["_mdb_links"] = self._mdb_links()
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        links: _Links = state.pop("_mdb_links")  # type: ignore[assignment]
        state.setdefault("cap_page_maps", {})  # a pickle from before capability pages
        state.setdefault("mcs", None)  # a pickle from before MCS scheduling
        for name, value in state.items():
            setattr(self, name, value)
        self.abi = abi_for(self.arch)
        self.platform = model_for(self.arch)
        self.paging = self.platform.paging
        self.tcb_bits = self.abi.tcb_bits if self.config.fpu else self.abi.tcb_bits_without_fpu
        self.fault_observers = []
        self.error_observers = []
        self.no_handler_observers = []
        self.lookup_phase = -1
        if not hasattr(self.scheduler, "mcs"):  # a pickle from before MCS scheduling
            self.scheduler.mcs = self.config.mcs
        for slot, previous, following in links:
            slot.mdb_prev, slot.mdb_next = previous, following

    def _mdb_links(self) -> _Links:
        """Every linked slot with its links, flat (slots pickle without them: see
        :mod:`kernel.model.slot`). Walks the slots of CNodes and TCBs, and follows links
        too, so a linked slot anywhere is found; iterative, visiting each slot once."""
        links: _Links = []
        seen: set[int] = set()
        pending: list[Slot] = []
        for obj in self.objects.values():
            if isinstance(obj, (CNode, TCB)):
                pending.extend(slot for slot in obj.slots
                               if slot.mdb_prev is not None or slot.mdb_next is not None)
        while pending:
            slot = pending.pop()
            if id(slot) in seen:
                continue
            seen.add(id(slot))
            links.append((slot, slot.mdb_prev, slot.mdb_next))
            for other in (slot.mdb_prev, slot.mdb_next):
                if other is not None and id(other) not in seen:
                    pending.append(other)
        return links

    def attach(self, machine: Machine, console: Callable[[int], None]) -> None:
        """Give an unpickled state the machine it runs on (of its architecture, with
        the threads' CPU copies imported under the handles the TCBs hold) and a console."""
        if machine.arch is not self.arch:
            raise ValueError(f"a {self.arch.short} kernel state on a {machine.arch.short} machine")
        self.machine = machine
        self.console = console

    # --- registers ----------------------------------------------------------------------

    def current_pc(self) -> int:
        if self._current_saved and self.current is not None:
            return self.registers_of(self.current)[0]
        return self.machine.save_context()[0]

    def registers_of(self, tcb: TCB) -> list[int]:
        """``tcb``'s saved register file (``TCB.registers``), made from the machine's copy
        if it has not been yet; edits to the list stick. Not the live registers of the
        current, unsaved thread (see :meth:`registers_live`)."""
        registers = tcb.register_list
        if registers is None:
            registers = self.machine.thread_registers(tcb.cpu)
            for position, value in tcb.changes.items():
                registers[position] = value
            tcb.registers = registers
        return registers

    def save_current(self) -> TCB:
        """Save the current thread's state into its TCB, once per kernel entry.

        After this, the TCB's copy is the truth (code may edit it, as fault delivery
        does with the restart pc); it is loaded back when the thread runs again. The
        save is the machine's own copy (:meth:`Machine.save_thread`); the register
        list is made only if some code asks for it (:meth:`registers_of`).
        """
        current = self.current
        assert current is not None
        if not self._current_saved:
            current.adopt_cpu(self.machine.save_thread(current.cpu))
            self._current_saved = True
        return current

    def registers_live(self, tcb: TCB) -> bool:
        """Whether ``tcb``'s registers are in the machine (it is current and unsaved)
        rather than in ``tcb.registers``."""
        return tcb is self.current and not self._current_saved

    def set_thread_state(self, tcb: TCB, state: ThreadState) -> None:
        """Change ``tcb``'s state; if the current thread stops running, pick another.

        As seL4's scheduleTCB, only where nothing is decided yet: a switch candidate
        already set (a Call's receiver) stays the decision, and :meth:`_schedule
        <kernel.kernel.Kernel._schedule>` weighs it as seL4's schedule() does."""
        tcb.state = state
        if not state.runnable:
            scheduler = self.scheduler
            scheduler.dequeue(tcb)
            if tcb is scheduler.candidate:
                scheduler.candidate = None
                scheduler.choose_new = True
            elif tcb is self.current and scheduler.candidate is None:
                scheduler.choose_new = True  # rescheduleRequired, no candidate to queue

    def reschedule_required(self) -> None:
        """seL4's rescheduleRequired: choose again at kernel exit; a pending switch
        candidate goes to the front of its ready queue."""
        scheduler = self.scheduler
        if scheduler.candidate is not None:
            scheduler.append_front(scheduler.candidate)
            scheduler.candidate = None
        scheduler.choose_new = True

    def make_runnable(self, tcb: TCB) -> None:
        """seL4's possibleSwitchTo for a thread that just became runnable.

        MCS: a thread with no scheduling context, or waiting for a release, is left
        alone. A thread of another domain is queued (front) to wait for its domain. Otherwise,
        with no other decision pending, ``tcb`` becomes the switch candidate, decided
        at kernel exit (:meth:`_schedule`); or it goes to the front of its queue and
        the scheduler chooses afresh.
        """
        scheduler = self.scheduler
        if self.mcs is not None and (tcb.sched_context is None or tcb.in_release_queue):
            return  # MCS: it runs when it gets a context, or when released
        if tcb.domain != self.domains.current:
            scheduler.append_front(tcb)  # it waits for its domain's turn
        elif scheduler.choose_new or scheduler.candidate is not None:
            self.reschedule_required()
            scheduler.append_front(tcb)
        else:
            scheduler.candidate = tcb

    @property
    def release_queue(self) -> list[TCB]:
        """MCS: the threads waiting for a refill, soonest first (empty without MCS)."""
        return self.mcs.release_queue if self.mcs is not None else []

    def set_domain(self, tcb: TCB, domain: int) -> None:
        """seL4's setDomain: move ``tcb`` to ``domain``'s queues; if it is the current
        thread, choose again."""
        self.scheduler.dequeue(tcb)
        tcb.domain = domain
        if tcb.state.runnable:
            self.scheduler.append_front(tcb)
        if tcb is self.current:
            self.reschedule_required()

    def charge_domain_tick(self) -> None:
        """seL4's timerTick, domain part: with several domains, one tick of the current
        domain's time; when it runs out, choose again (the next domain, at kernel exit)."""
        if self.config.num_domains > 1:
            self.domains.time -= 1
            if self.domains.time == 0:
                self.reschedule_required()

    def yield_current(self) -> None:
        """seL4_Yield (non-MCS): go to the back of the current priority's queue."""
        current = self.current
        if current is None:
            return
        self.scheduler.dequeue(current)
        self.scheduler.enqueue(current)
        self.reschedule_required()

    def halt(self, status: int) -> None:
        self.stop = StopReason("halt", status, "seL4_DebugHalt")

    def unsupported(self, feature: str) -> None:
        """Stop the run where the guest needs a kernel feature capsule lacks so far.

        Not seL4 behaviour, and said so: the run ends (kind ``"kernel-halt"``) with a
        message naming the feature, instead of pretending or crashing.
        """
        self.stop_with_message(f"not implemented in capsule yet: {feature}")

    def stop_with_message(self, message: str) -> None:
        """Stop the machine where the seL4 debug kernel would halt with a message."""
        self.stop = StopReason("kernel-halt", 5, message)
