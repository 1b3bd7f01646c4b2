"""Kernel state invariants, checked mechanically (STYLE.md Synthesis 5; seL4's stateAssert).

:func:`check_all` raises :class:`~kernel.model.errors.KernelBug` naming the first rule that
does not hold. Tests run it after every kernel entry through
:func:`enable_invariant_checks`; normal runs do not pay for it.

Rules (each message starts with the rule's name):
- ``mdb-symmetry``: ``a.mdb_next is b`` exactly when ``b.mdb_prev is a``; links only
  reach slots of live objects; no list has a cycle.
- ``empty-slot``: an empty slot has no links and both bits clear.
- ``cap-object``: a CNode / TCB / ASID-pool / reply cap names an object of that kind in
  ``kernel.objects`` (a CNode with the cap's radix); a CNode cap has radix >= 1,
  radix + guard size <= 64 and a guard that fits its size.
- ``final-cap``: :func:`kernel.cspace.cdt.is_final` (which looks at neighbours only) agrees
  with a search of every slot: caps to one object sit together in the tree.
- ``untyped``: an untyped is aligned to its size, its free index lies in
  0..2^(size-4), and every CDT descendant lies inside it, below the free index.
- ``run-queue``: ready queues hold runnable threads at their own priority, each once,
  the queued set matches them, and the priority bitmap marks exactly the non-empty
  queues.
- ``current``: the current thread is runnable, unless the kernel has stopped.
- ``domain``: the domain schedule keeps its length and final end marker, its start is
  not an end marker, the current domain and every thread's domain are configured ones
  (queues are per domain: ``run-queue`` checks each thread sits in its domain's).
- ``endpoint``: an endpoint's queue is empty exactly when it is Idle; every queued
  thread is BlockedOnSend (Send state) / BlockedOnReceive (Recv state) with
  ``blocking.endpoint`` this endpoint; no thread is queued twice or on two endpoints;
  a thread has ``blocking`` set exactly when it is queued.
- ``notification``: a notification's queue is non-empty exactly when it is Waiting;
  its word is non-zero only when it is Active; every queued thread is
  BlockedOnNotification with ``waiting_on`` this notification; no thread is queued
  twice or on two notifications; a thread has ``waiting_on`` set exactly when it is
  queued; binding is symmetric (``ntfn.bound_tcb.bound_notification is ntfn`` and
  ``tcb.bound_notification.bound_tcb is tcb``); a bound notification's queue holds
  no thread but its bound one (seL4 binds only a notification nobody waits on, and
  then only the bound thread may wait).
- ``cap-page`` (capsule's capability-page extension, not seL4): the mapping records
  (``kernel.cap_page_maps``) and the mapped capability-page caps correspond one to one
  (key = the cap's ASID and vaddr, same page, same restrictions); a capability page is
  a CNode of ``CAP_PAGE_RADIX`` slots; no frame is mapped at a recorded page whose
  VSpace is live; without the extension there are no records, no capability-page caps
  and no read-only or weak CNode caps.
- ``object-store``: the store's address index lists exactly its addresses, and
  ``kernel.threads`` holds exactly its TCBs; a CNode's built slots sit at their own
  index, inside the CNode, owned by it.
- ``sched-context`` (MCS): binding is symmetric (``sc.tcb.sched_context is sc`` and
  ``tcb.sched_context.tcb is tcb``, so a context is bound to at most one thread and a
  thread to at most one context; likewise with notifications); a configured context
  holds 1..``max_refills`` refills whose amounts sum to its budget, and
  ``max_refills`` fits its size; a round-robin one has exactly two; a sporadic one's
  refills each end no later than the next starts, the head holding at least
  MIN_BUDGET; a non-MCS kernel has no scheduling contexts.
- ``mcs-clock`` (MCS): the release queue holds exactly the threads flagged
  ``in_release_queue``, each on a context, in no ready queue, by release time; the
  context time is charged to is the current thread's (none without one).
- ``reply`` (MCS): a reply object on a call stack is its previous one's ``next``
  (so it is on at most one stack) and, at the top, its context's ``reply``; a thread
  it names is blocked on a reply or a receive and names it back (and the other way
  round); a non-MCS kernel has no reply objects.
- ``page-table-words``: for every page table and VSpace root a cap names, each entry
  :meth:`~kernel.machine.Machine.read_table` gives is the word RAM holds there
  (a machine that keeps page-table words keeps them equal to RAM).
- ``server-lookup`` (capsule's server-backed CNodes, not seL4): no lookup may suspend
  between kernel entries (``lookup_phase`` is -1); a thread whose fault is an index
  request is BlockedOnSend on the request's endpoint or BlockedOnReply; only a CNode
  of an image with the extension on is server-backed.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from typing import Final

from kernel.abi.constants import MIN_UNTYPED_BITS, WORD_BITS
from kernel.abi.extensions import CAP_PAGE_RADIX
from kernel.cspace.cdt import descendants, is_final
from kernel.cspace.derive import object_size_bits, same_object_as
from kernel.kernel import Kernel
from kernel.model.asid_pool import ASIDPool
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CapPageCap,
    CNodeCap,
    PageTableCap,
    ReplyCap,
    ReplyObjectCap,
    SchedContextCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint, EndpointState
from kernel.model.errors import KernelBug
from kernel.model.faults import IndexRequest
from kernel.model.mcs_time import min_budget_ticks
from kernel.model.notification import Notification, NotificationState
from kernel.model.paging import ENTRIES_PER_TABLE, PteKind
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext, refill_absolute_max
from kernel.model.slot import Slot
from kernel.model.tcb import TCB, ThreadState
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.page_table import lookup_pt_slot

__all__ = ["check_all", "enable_invariant_checks"]


def enable_invariant_checks(kernel: Kernel) -> None:
    """Run :func:`check_all` after every kernel entry of ``kernel`` (tests do this)."""
    if check_all not in kernel.exit_observers:
        kernel.exit_observers.append(check_all)


def check_all(kernel: Kernel) -> None:
    """Check every rule of the module docstring; raise KernelBug on the first failure."""
    slots = list(_all_slots(kernel))
    _check_links(slots)
    _check_caps(kernel, slots)
    _check_final(kernel, slots)
    _check_untyped(kernel, slots)
    _check_scheduler(kernel)
    _check_endpoints(kernel)
    _check_notifications(kernel)
    _check_object_store(kernel)
    _check_cap_pages(kernel, slots)
    _check_page_table_words(kernel, slots)
    _check_sched_contexts(kernel)
    _check_mcs_clock(kernel)
    _check_server_lookups(kernel)


def _check_sched_contexts(kernel: Kernel) -> None:
    waiting = (ThreadState.BLOCKED_ON_REPLY, ThreadState.BLOCKED_ON_RECEIVE)
    for obj in kernel.objects.values():
        if isinstance(obj, SchedContext | ReplyObject) and not kernel.config.mcs:
            _fail("sched-context", f"{type(obj).__name__} at {obj.paddr:#x} without MCS")
        if isinstance(obj, SchedContext):
            if obj.tcb is not None and obj.tcb.sched_context is not obj:
                _fail("sched-context", f"{obj.paddr:#x} names {obj.tcb.name}, not bound back")
            if obj.notification is not None and obj.notification.sched_context is not obj:
                _fail("sched-context", f"{obj.paddr:#x}: notification not bound back")
            if obj.max_refills > refill_absolute_max(obj.size_bits):
                _fail("sched-context", f"{obj.paddr:#x}: {obj.max_refills} refills too many")
            if obj.refills and not (len(obj.refills) <= obj.max_refills
                                    and sum(r.amount for r in obj.refills) == obj.budget):
                _fail("sched-context", f"{obj.paddr:#x}: refills do not sum to the budget")
            if obj.refills:
                _check_refills(kernel, obj)
        elif isinstance(obj, Notification) and obj.sched_context is not None \
                and obj.sched_context.notification is not obj:
            _fail("sched-context", f"notification {obj.paddr:#x} names a context not bound back")
        elif isinstance(obj, ReplyObject):
            if obj.prev is not None and obj.prev.next is not obj:
                _fail("reply", f"{obj.paddr:#x} is not its previous reply's next")
            if obj.tcb is not None and (obj.tcb.state not in waiting
                                        or obj.tcb.reply_object is not obj):
                _fail("reply", f"{obj.paddr:#x} names {obj.tcb.name}, {obj.tcb.state.value}")
            if isinstance(obj.next, SchedContext) and obj.next.reply is not obj:
                _fail("reply", f"{obj.paddr:#x} tops a call stack its context does not")
    for tcb in kernel.threads.values():
        sc = tcb.sched_context
        if sc is not None and (sc.tcb is not tcb or kernel.objects.get(sc.paddr) is not sc):
            _fail("sched-context", f"{tcb.name} runs on a context not bound to it")
        reply = tcb.reply_object
        if reply is not None and (reply.tcb is not tcb
                                  or kernel.objects.get(reply.paddr) is not reply):
            _fail("reply", f"{tcb.name} waits on a reply object that does not name it")


def _check_refills(kernel: Kernel, sc: SchedContext) -> None:
    refills = sc.refills
    if sc.period == 0:
        if len(refills) != 2:
            _fail("sched-context", f"{sc.paddr:#x}: round robin with {len(refills)} refills")
        return
    if refills[0].amount < min_budget_ticks(kernel.abi):
        _fail("sched-context", f"{sc.paddr:#x}: head refill below MIN_BUDGET")
    for this, following in zip(refills, refills[1:]):
        if this.time + this.amount > following.time:
            _fail("sched-context", f"{sc.paddr:#x}: refills overlap ({refills})")


def _check_mcs_clock(kernel: Kernel) -> None:
    clock = kernel.mcs
    if clock is None:
        return
    queue = clock.release_queue
    flagged = {tcb.paddr for tcb in kernel.threads.values() if tcb.in_release_queue}
    if flagged != {tcb.paddr for tcb in queue} or len(queue) != len(flagged):
        _fail("mcs-clock", "the release queue and the threads' flags disagree")
    times = []
    for tcb in queue:
        sc = tcb.sched_context
        if sc is None or not sc.refills:
            _fail("mcs-clock", f"{tcb.name} waits for a release with no context")
            return
        if tcb.paddr in kernel.scheduler.queued:
            _fail("mcs-clock", f"{tcb.name} is both released and waiting for release")
        times.append(sc.refills[0].time)
    if times != sorted(times):
        _fail("mcs-clock", f"the release queue is out of order: {times}")
    current = kernel.current
    expected = current.sched_context if current is not None else None
    if kernel.stop is None and clock.sc is not expected:
        _fail("mcs-clock", "time is charged to a context the current thread does not run on")


def _check_server_lookups(kernel: Kernel) -> None:
    if kernel.lookup_phase != -1:
        _fail("server-lookup", f"lookup phase {kernel.lookup_phase} left set at exit")
    for tcb in kernel.threads.values():
        if not isinstance(tcb.fault, IndexRequest):
            continue
        blocking = tcb.blocking
        on_send = (tcb.state is ThreadState.BLOCKED_ON_SEND and blocking is not None
                   and blocking.endpoint.paddr == tcb.fault.endpoint)
        if not on_send and tcb.state is not ThreadState.BLOCKED_ON_REPLY:
            _fail("server-lookup", f"{tcb.name} has an index request but is "
                  f"{tcb.state.value}")
    if not kernel.config.server_backed_cnodes:
        for obj in kernel.objects.values():
            if isinstance(obj, CNode) and obj.server is not None:
                _fail("server-lookup", f"CNode {obj.paddr:#x} server-backed with the "
                      "extension off")


def _fail(rule: str, detail: str) -> None:
    raise KernelBug(f"{rule}: {detail}")


def _all_slots(kernel: Kernel) -> Iterator[Slot]:
    for obj in kernel.objects.values():
        if isinstance(obj, (CNode, TCB)):
            yield from obj.slots


def _check_links(slots: list[Slot]) -> None:
    known = {id(slot) for slot in slots}
    for slot in slots:
        prev, nxt = slot.mdb_prev, slot.mdb_next
        if slot.is_empty:
            if prev is not None or nxt is not None or slot.revocable or slot.first_badged:
                _fail("empty-slot", f"{slot!r} has links or bits")
            continue
        if nxt is not None and (nxt.mdb_prev is not slot or id(nxt) not in known):
            _fail("mdb-symmetry", f"{slot!r}.next {nxt!r} does not point back")
        if prev is not None and (prev.mdb_next is not slot or id(prev) not in known):
            _fail("mdb-symmetry", f"{slot!r}.prev {prev!r} does not point back")
    # With symmetric links a cycle has no head; walk from the heads and count.
    reached = 0
    for slot in slots:
        if not slot.is_empty and slot.mdb_prev is None:
            node: Slot | None = slot
            while node is not None:
                reached += 1
                node = node.mdb_next
    if reached != sum(1 for slot in slots if not slot.is_empty):
        _fail("mdb-symmetry", "a derivation list is a cycle")


def _check_caps(kernel: Kernel, slots: list[Slot]) -> None:
    for slot in slots:
        cap = slot.cap
        expected: type | None = None
        if isinstance(cap, CNodeCap):
            if not (cap.radix >= 1 and cap.radix + cap.guard_size <= WORD_BITS
                    and cap.guard >> cap.guard_size == 0):
                _fail("cap-object", f"{slot!r}: malformed CNode cap")
            node = kernel.objects.get(cap.paddr)
            if not isinstance(node, CNode) or node.radix != cap.radix:
                _fail("cap-object", f"{slot!r}: no CNode of radix {cap.radix} there")
            continue
        if isinstance(cap, (ThreadCap, ReplyCap)):
            expected = TCB
        elif isinstance(cap, ASIDPoolCap):
            expected = ASIDPool
        elif isinstance(cap, SchedContextCap):
            expected = SchedContext
        elif isinstance(cap, ReplyObjectCap):
            expected = ReplyObject
        paddr = cap.object_paddr
        if expected is not None and not isinstance(kernel.objects.get(paddr or 0), expected):
            _fail("cap-object", f"{slot!r}: no {expected.__name__} at {paddr:#x}")


def _group_key(cap: Cap) -> tuple[type, int | None]:
    return type(cap), cap.object_paddr


def _check_final(kernel: Kernel, slots: list[Slot]) -> None:
    bits = kernel.tcb_bits
    groups: dict[tuple[type, int | None], list[Slot]] = defaultdict(list)
    for slot in slots:
        if not slot.is_empty:
            groups[_group_key(slot.cap)].append(slot)
    # Caps that name the same object have the same type and address, so searching
    # each group is a search of every slot.
    for group in groups.values():
        for slot in group:
            shared = any(other is not slot and same_object_as(slot.cap, other.cap, bits)
                         for other in group)
            final = is_final(kernel, slot)
            if final == shared:
                _fail("final-cap", f"{slot!r}: neighbours say final={final}, "
                      f"the slots say final={not shared}")


def _check_untyped(kernel: Kernel, slots: list[Slot]) -> None:
    bits = kernel.tcb_bits
    for slot in slots:
        cap = slot.cap
        if not isinstance(cap, UntypedCap):
            continue
        size = 1 << cap.size_bits
        if cap.paddr & (size - 1):
            _fail("untyped", f"{slot!r}: not aligned to its size")
        if not 0 <= cap.free_index <= size >> MIN_UNTYPED_BITS:
            _fail("untyped", f"{slot!r}: free index {cap.free_index} out of range")
        free_at = cap.paddr + (cap.free_index << MIN_UNTYPED_BITS)
        for child in descendants(kernel, slot):
            base = child.cap.object_paddr
            child_bits = object_size_bits(child.cap, bits)
            assert base is not None and child_bits is not None  # same region: physical
            if base < cap.paddr or base + (1 << child_bits) > free_at:
                _fail("untyped", f"{child!r} lies outside {slot!r} below its free index")


def _check_scheduler(kernel: Kernel) -> None:
    sched = kernel.scheduler
    seen: set[int] = set()
    bitmaps = [0] * kernel.config.num_domains
    for domain, priority, queue in sched.queues():
        bitmaps[domain] |= 1 << priority
        for tcb in queue:
            if tcb.paddr in seen:
                _fail("run-queue", f"{tcb.name} queued twice")
            seen.add(tcb.paddr)
            if tcb.priority != priority or tcb.domain != domain or not tcb.state.runnable:
                _fail("run-queue", f"{tcb.name} ({tcb.state.value}, priority {tcb.priority}, "
                      f"domain {tcb.domain}) in queue {priority} of domain {domain}")
    if seen != sched.queued:
        _fail("run-queue", "queued set does not match the queues")
    if bitmaps != sched.nonempty:
        _fail("run-queue", f"priority bitmaps {sched.nonempty} != non-empty queues {bitmaps}")
    _check_domains(kernel)
    current = kernel.current
    if current is not None and kernel.stop is None and not current.state.runnable:
        _fail("current", f"current thread {current.name} is {current.state.value}")


def _check_domains(kernel: Kernel) -> None:
    domains = kernel.domains
    entries = domains.entries
    if len(entries) != kernel.config.domain_schedule_length or entries[-1] != 0:
        _fail("domain", "the schedule lost its length or its final end marker")
    if domains.is_end_marker(domains.start) or not 0 <= domains.index < len(entries):
        _fail("domain", f"start {domains.start} or index {domains.index} is not an entry")
    if not 0 <= domains.current < kernel.config.num_domains:
        _fail("domain", f"current domain {domains.current} out of range")
    for tcb in kernel.threads.values():
        if not 0 <= tcb.domain < kernel.config.num_domains:
            _fail("domain", f"{tcb.name} is in domain {tcb.domain}")


_TABLE_WORDS: Final = struct.Struct(f"<{ENTRIES_PER_TABLE}Q")
"""A page table's (or VSpace root's) words, as RAM holds them."""
_BLOCKED_IN: Final = {
    EndpointState.SEND: ThreadState.BLOCKED_ON_SEND,
    EndpointState.RECV: ThreadState.BLOCKED_ON_RECEIVE,
}


def _check_endpoints(kernel: Kernel) -> None:
    queued: set[int] = set()
    for obj in kernel.objects.values():
        if not isinstance(obj, Endpoint):
            continue
        if (obj.state is EndpointState.IDLE) != (not obj.queue):
            _fail("endpoint", f"endpoint {obj.paddr:#x} is {obj.state.value} with "
                  f"{len(obj.queue)} queued")
        for tcb in obj.queue:
            if tcb.paddr in queued:
                _fail("endpoint", f"{tcb.name} queued twice")
            queued.add(tcb.paddr)
            if tcb.state is not _BLOCKED_IN.get(obj.state):
                _fail("endpoint", f"{tcb.name} ({tcb.state.value}) queued on "
                      f"{obj.state.value} endpoint {obj.paddr:#x}")
            if tcb.blocking is None or tcb.blocking.endpoint is not obj:
                _fail("endpoint", f"{tcb.name} queued on {obj.paddr:#x} but blocked elsewhere")
    for tcb in kernel.threads.values():
        if (tcb.blocking is not None) != (tcb.paddr in queued):
            _fail("endpoint", f"{tcb.name}: blocking set but not queued (or the reverse)")


def _check_notifications(kernel: Kernel) -> None:
    queued: set[int] = set()
    for obj in kernel.objects.values():
        if not isinstance(obj, Notification):
            continue
        where = f"notification {obj.paddr:#x}"
        if (obj.state is NotificationState.WAITING) != bool(obj.queue):
            _fail("notification", f"{where} is {obj.state.value} with {len(obj.queue)} queued")
        if obj.word and obj.state is not NotificationState.ACTIVE:
            _fail("notification", f"{where} is {obj.state.value} with word {obj.word:#x}")
        bound = obj.bound_tcb
        if bound is not None and bound.bound_notification is not obj:
            _fail("notification", f"{where} is bound to {bound.name}, which is not bound to it")
        for tcb in obj.queue:
            if tcb.paddr in queued:
                _fail("notification", f"{tcb.name} queued twice")
            queued.add(tcb.paddr)
            if tcb.state is not ThreadState.BLOCKED_ON_NOTIFICATION or tcb.waiting_on is not obj:
                _fail("notification", f"{tcb.name} ({tcb.state.value}) queued on {where}")
            if bound is not None and tcb is not bound:
                _fail("notification", f"{tcb.name} waits on {where}, bound to {bound.name}")
    for tcb in kernel.threads.values():
        if (tcb.waiting_on is not None) != (tcb.paddr in queued):
            _fail("notification", f"{tcb.name}: waiting_on set but not queued (or the reverse)")
        ntfn = tcb.bound_notification
        if ntfn is not None and ntfn.bound_tcb is not tcb:
            _fail("notification", f"{tcb.name} is bound to notification {ntfn.paddr:#x}, "
                  "which is not bound to it")


def _check_object_store(kernel: Kernel) -> None:
    if not kernel.addresses_consistent():
        _fail("object-store", "the address index or the thread table differs from the store")
    tcbs = [paddr for paddr, obj in kernel.objects.items() if isinstance(obj, TCB)]
    if sorted(tcbs) != sorted(kernel.threads):
        _fail("object-store", "kernel.threads is not the set of TCBs in the store")
    for obj in kernel.objects.values():
        if isinstance(obj, CNode):
            for slot in obj.slots:
                if slot.owner != obj.paddr or not 0 <= slot.index < 1 << obj.radix \
                        or obj.slots[slot.index] is not slot:
                    _fail("object-store", f"CNode {obj.paddr:#x} holds a stray {slot!r}")


def _check_page_table_words(kernel: Kernel, slots: list[Slot]) -> None:
    machine = kernel.machine
    tables = {slot.cap.paddr for slot in slots if isinstance(slot.cap, PageTableCap | VSpaceCap)}
    for table in sorted(tables):
        ram = _TABLE_WORDS.unpack(machine.read_phys(table, _TABLE_WORDS.size))
        answered = tuple(machine.read_table(table))
        if answered != ram:
            index = next((i for i, (a, r) in enumerate(zip(answered, ram)) if a != r),
                         min(len(answered), len(ram)))
            _fail("page-table-words", f"table {table:#x} differs from RAM from entry {index} "
                  f"({len(answered)} entries answered)")


def _check_cap_pages(kernel: Kernel, slots: list[Slot]) -> None:
    maps = kernel.cap_page_maps
    mapped: dict[tuple[int, int], CapPageCap] = {}
    for slot in slots:
        cap = slot.cap
        if not isinstance(cap, CNodeCap):
            continue
        if not kernel.config.cap_pages and (isinstance(cap, CapPageCap) or cap.read_only
                                            or cap.weak):
            _fail("cap-page", f"{slot!r} holds {cap} without the extension")
        if not isinstance(cap, CapPageCap):
            continue
        if cap.radix != CAP_PAGE_RADIX:
            _fail("cap-page", f"{slot!r}: a capability page of radix {cap.radix}")
        if cap.is_mapped:
            key = (cap.mapped_asid, cap.mapped_vaddr)
            if key in mapped:
                _fail("cap-page", f"two capability-page caps mapped at {key}")
            mapped[key] = cap
    if set(mapped) != set(maps):
        _fail("cap-page", f"mapped caps at {sorted(mapped)} but records at {sorted(maps)}")
    for key, record in maps.items():
        cap = mapped[key]
        if (record.page, record.read_only, record.weak) != \
                (cap.paddr, cap.map_read_only, cap.map_weak):
            _fail("cap-page", f"the record at {key} is not its cap's mapping")
        if find_vspace_for_asid(kernel, key[0]) != record.root:
            continue  # stale: its VSpace went away
        where = lookup_pt_slot(kernel, record.root, key[1])
        if kernel.paging.decode(where.entry, where.level)[0] is PteKind.LEAF:
            _fail("cap-page", f"a frame is mapped over the capability page at {key}")
