"""Capturing one component: a thread's capability space, slot for slot, as plain data.

:func:`capture` starts at a TCB and walks what it can reach (breadth first, iteratively:
its own five slots, then every CNode and TCB a cap there names, their slots, and so on),
naming each object in the order it is first reached (``tcb_0``, ``cnode_1``, ``ep_2``...):
the same state always gives the same names and the same :class:`Component`.

What the component owns. Every object reached, except those the caller's ``external``
map names (by a cap the caller holds to it: a server's endpoint made by a client, the
VSpace the component shares). An owned object must have all its caps inside the
component, and an owned untyped all its descendants; otherwise capture refuses, naming
the object and the outside cap, because restoring it would silently duplicate it. Caps
to one object sit together in the derivation list (seL4's invariant), so finding them
costs the number of caps to that object.

What capture refuses, each with a one-line :class:`ComponentError`:

- an object shared with a cap outside the component (not named external);
- a thread waiting for a reply (BlockedOnReply: its Call has been received, so it cannot
  be re-run), handling a fault, or holding a reply cap (it is answering a Call): the
  other party may be outside, and the exchange cannot be replayed from one side;
- a thread outside the component queued on an endpoint or notification the component
  owns, or an owned notification bound to a thread outside;
- device frames and device untypeds (their bytes are a device's), ASID pools that are
  not external, and caps of other kinds (ASID control, IRQ control, domain, zombies, the
  checkpoint extension's);
- a mapping that went stale, a frame or page table mapped in a VSpace the component does
  not reach, or a table of an owned VSpace mapping something through no cap of the
  component.

What capture makes safe rather than refusing: a thread blocked in a send, receive or
notification wait is recorded in seL4's Restart state with its pc on the trap
instruction, so the restored thread runs that system call again (what seL4 does to a
thread whose IPC it cancels); no message was transferred, so nothing is lost or
repeated. A thread's master reply cap (made on its first Call) is not recorded: capsule
makes it again when needed.

Host cost: proportional to the component (its slots, its objects' bytes, its VSpace
tables), plus the derivation-list neighbours of its caps; every walk is iterative.
"""

from __future__ import annotations

import re
import struct
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from kernel.abi.constants import (
    ASID_POOL_BITS,
    ENDPOINT_BITS,
    NOTIFICATION_BITS,
    PAGE_TABLE_BITS,
    SLOT_BITS,
    VSPACE_BITS,
)
from kernel.core.threads import get_registers, restart_pc
from kernel.cspace.cdt import descendants, is_mdb_parent_of
from kernel.cspace.derive import same_object_as
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ReplyCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.notification import Notification, NotificationState
from kernel.model.page_tables import read_entry
from kernel.model.paging import ENTRIES_PER_TABLE, Access, PteKind
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import CALLER, REPLY, TCB, ThreadState
from kernel.objects.asid_pool import find_vspace_for_asid

from .model import (
    TCB_SLOT_NAMES,
    CapRecord,
    Component,
    ComponentError,
    ExternalRecord,
    MappingRecord,
    ObjectRecord,
    ThreadRecord,
    slot_id,
)

__all__ = ["Key", "capture", "describe_slot", "object_key", "walk_to"]

Key = tuple[str, int, int]
"""An object as capture tells objects apart: (type, physical address, size bits);
size bits are 0 except for frames and untypeds (an untyped and its first child share an
address)."""

_PREFIX: Final = {"tcb": "tcb", "cnode": "cnode", "endpoint": "ep", "notification": "ntfn",
           "frame": "frame", "page_table": "pt", "vspace": "vspace", "untyped": "ut",
           "asid_pool": "asid_pool"}
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GENERATED: Final = re.compile(rf"(?:{'|'.join(_PREFIX.values())})_\d+")
_BLOCKED: Final = {ThreadState.BLOCKED_ON_RECEIVE, ThreadState.BLOCKED_ON_SEND,
            ThreadState.BLOCKED_ON_NOTIFICATION}
_TABLE: Final = struct.Struct(f"<{ENTRIES_PER_TABLE}Q")


def object_key(cap: Cap) -> Key | None:
    """The object ``cap`` names, as a :data:`Key`; None for caps capture cannot follow."""
    match cap:
        case UntypedCap():
            return ("untyped", cap.paddr, cap.size_bits)
        case FrameCap():
            return ("frame", cap.paddr, cap.size_bits)
        case CNodeCap():
            return ("cnode", cap.paddr, 0)
        case ThreadCap():
            return ("tcb", cap.paddr, 0)
        case EndpointCap():
            return ("endpoint", cap.paddr, 0)
        case NotificationCap():
            return ("notification", cap.paddr, 0)
        case PageTableCap():
            return ("page_table", cap.paddr, 0)
        case VSpaceCap():
            return ("vspace", cap.paddr, 0)
        case ASIDPoolCap():
            return ("asid_pool", cap.paddr, 0)
    return None


def _same(a: Cap, b: Cap, tcb_bits: int) -> bool:
    """Whether two caps name one object (untypeds included, which seL4's sameObjectAs
    leaves out)."""
    if isinstance(a, UntypedCap):
        return isinstance(b, UntypedCap) and (a.paddr, a.size_bits) == (b.paddr, b.size_bits)
    return same_object_as(a, b, tcb_bits)


def _size_bits(kernel: KernelState, key: Key, cap: Cap) -> int:
    kind = key[0]
    if kind in ("frame", "untyped"):
        return key[2]
    if isinstance(cap, CNodeCap):
        return cap.radix
    return {"tcb": kernel.tcb_bits, "endpoint": ENDPOINT_BITS,
            "notification": NOTIFICATION_BITS, "page_table": PAGE_TABLE_BITS,
            "vspace": VSPACE_BITS, "asid_pool": ASID_POOL_BITS}[kind]


def _region_bits(record_type: str, size_bits: int) -> int:
    return size_bits + SLOT_BITS if record_type == "cnode" else size_bits


def describe_slot(kernel: KernelState, slot: Slot) -> str:
    """Where a slot is, for messages: ``slot 5 of the CNode at 0x...`` or ``TCB x's ctable``."""
    owner = kernel.objects.get(slot.owner)
    if isinstance(owner, TCB) and 0 <= slot.index < len(TCB_SLOT_NAMES) \
            and owner.slots[slot.index] is slot:
        return f"thread {owner.name!r}'s {TCB_SLOT_NAMES[slot.index]} slot"
    return f"slot {slot.index} of the CNode at {slot.owner:#x}"


class _Capture:
    """The state of one capture (see :func:`capture`)."""

    def __init__(self, kernel: KernelState, external: Mapping[str, Slot]) -> None:
        self.kernel = kernel
        self.names: dict[Key, str] = {}
        self.order: list[Key] = []
        self.found_at: dict[Key, str] = {}
        self.sample_cap: dict[Key, Cap] = {}
        self.external: dict[Key, str] = {}
        self.slots: list[tuple[str, int, bool, Slot]] = []
        """Component slots holding a cap: (container identity, index, in a TCB, slot)."""
        self.slot_ids: dict[int, str] = {}
        self.caps_of: dict[Key, list[Slot]] = {}
        self.notes: list[str] = []
        for name, slot in external.items():
            if not _NAME.fullmatch(name):
                raise ComponentError(f"external name {name!r} is not an identifier "
                                     "(letters, digits and _, not starting with a digit)")
            if _GENERATED.fullmatch(name):
                raise ComponentError(f"external name {name!r} has the form of capture's own "
                                     "identities; choose another")
            key = object_key(slot.cap)
            if key is None:
                raise ComponentError(f"external {name!r}: the cap given for it names no "
                                     f"object capture knows ({type(slot.cap).__name__})")
            if key in self.external:
                raise ComponentError(f"external names {self.external[key]!r} and {name!r} "
                                     "name the same object")
            self.external[key] = name
            self.sample_cap[key] = slot.cap

    # --- walking ------------------------------------------------------------------------

    def reach(self, key: Key, cap: Cap, where: str, pending: deque[Key]) -> str:
        """The identity of the object ``key`` (named now if it is new)."""
        name = self.names.get(key)
        if name is not None:
            return name
        name = self.external.get(key)
        if name is None:
            name = f"{_PREFIX[key[0]]}_{len(self.order)}"
            if key[0] in ("tcb", "cnode"):
                pending.append(key)
        self.names[key] = name
        self.order.append(key)
        self.found_at[key] = where
        self.sample_cap.setdefault(key, cap)
        return name

    def walk(self, tcb: TCB) -> None:
        kernel = self.kernel
        start: Key = ("tcb", tcb.paddr, 0)
        pending: deque[Key] = deque()
        self.reach(start, ThreadCap(tcb.paddr), "the thread", pending)
        if start in self.external:
            raise ComponentError("the component's own thread cannot be external")
        while pending:
            key = pending.popleft()
            container = self.names[key]
            obj = kernel.objects.get(key[1])
            if isinstance(obj, TCB):
                if obj.bound_notification is not None:
                    ntfn = obj.bound_notification
                    self.reach(("notification", ntfn.paddr, 0), NotificationCap(ntfn.paddr),
                               f"{container}.bound_notification", pending)
                entries: list[tuple[int, Slot, bool]] = [
                    (i, s, True) for i, s in enumerate(obj.slots)]
            elif isinstance(obj, CNode):
                entries = [(s.index, s, False) for s in obj.slots]
            else:  # a cap named an object that is not there: the kernel's bug, not ours
                raise ComponentError(f"{container}: no {key[0]} at {key[1]:#x}")
            for index, slot, in_tcb in entries:
                cap = slot.cap
                if cap.is_null:
                    continue
                where = slot_id(container, index, in_tcb)
                if isinstance(cap, ReplyCap):
                    if in_tcb and index == REPLY and cap.is_master:
                        continue  # remade on the restored thread's first Call
                    holder = "is answering a Call" if in_tcb and index == CALLER else \
                        "keeps a reply cap"
                    raise ComponentError(
                        f"{where} holds the reply cap of thread "
                        f"{self._thread_name(cap.tcb_paddr)}: the component {holder}, an "
                        "exchange that cannot be restored from one side; capture before the "
                        "Call is received or after the reply")
                found = object_key(cap)
                if found is None:
                    raise ComponentError(f"{where} holds a cap of type "
                                         f"{cap.tag.name.removesuffix('_cap')}: capture "
                                         "restores CNodes, TCBs, endpoints, notifications, "
                                         "frames, page tables and untypeds, not this")
                self.reach(found, cap, where, pending)
                self.slots.append((container, index, in_tcb, slot))
                self.slot_ids[id(slot)] = where
                self.caps_of.setdefault(found, []).append(slot)

    def _thread_name(self, paddr: int) -> str:
        tcb = self.kernel.threads.get(paddr)
        return repr(tcb.name) if tcb is not None else f"at {paddr:#x}"

    # --- ownership ------------------------------------------------------------------------

    def owned(self) -> list[Key]:
        return [key for key in self.order if key not in self.external]

    def check_ownership(self) -> None:
        kernel = self.kernel
        bits = kernel.tcb_bits
        for key in self.owned():
            name = self.names[key]
            what = f"{name} ({key[0]} at {key[1]:#x}, reached by {self.found_at[key]})"
            if key[0] == "asid_pool":
                raise ComponentError(f"{what}: ASID pools are not restored; name it external")
            slots = self.caps_of.get(key, [])
            if not slots:
                raise ComponentError(f"{what} has no cap inside the component")
            outside = self._outside_cap(slots[0], bits)
            if outside is None and key[0] == "untyped":
                for slot in slots:
                    outside = next((d for d in descendants(kernel, slot)
                                    if id(d) not in self.slot_ids), None)
                    if outside is not None:
                        break
            if outside is not None:
                raise ComponentError(
                    f"{what} has a cap outside the component, in "
                    f"{describe_slot(kernel, outside)}: name it external in the identity "
                    "map, or move that cap into the component")

    def _outside_cap(self, slot: Slot, bits: int) -> Slot | None:
        """A cap to ``slot``'s object outside the component, if any (they are adjacent)."""
        cap = slot.cap
        for step in ("prev", "next"):
            other = slot.mdb_prev if step == "prev" else slot.mdb_next
            while other is not None and _same(cap, other.cap, bits):
                if id(other) not in self.slot_ids:
                    return other
                other = other.mdb_prev if step == "prev" else other.mdb_next
        return None

    # --- records ---------------------------------------------------------------------------

    def object_records(self) -> list[ObjectRecord]:
        kernel = self.kernel
        owned = self.owned()
        owned_set = set(owned)
        untypeds = [k for k in owned if k[0] == "untyped"]
        records = []
        for key in owned:
            name = self.names[key]
            cap = self.sample_cap[key]
            size_bits = _size_bits(kernel, key, cap)
            inside, offset = self._inside(key, size_bits, untypeds)
            base = ObjectRecord(name, key[0], size_bits, self.found_at[key], inside, offset)
            obj = kernel.objects.get(key[1])
            if key[0] == "tcb":
                assert isinstance(obj, TCB)
                base = replace(base, thread=self._thread(obj, owned_set))
            elif key[0] == "endpoint":
                assert isinstance(obj, Endpoint)
                self._check_queue(name, obj.queue, owned_set)
            elif key[0] == "notification":
                assert isinstance(obj, Notification)
                self._check_queue(name, obj.queue, owned_set)
                bound = obj.bound_tcb
                if bound is not None and ("tcb", bound.paddr, 0) not in owned_set:
                    raise ComponentError(f"{name} is bound to thread {bound.name!r}, outside "
                                         "the component")
                active = obj.state is NotificationState.ACTIVE
                base = replace(base, word=obj.word, active=active)
            elif key[0] == "frame":
                assert isinstance(cap, FrameCap)
                if cap.is_device:
                    raise ComponentError(f"{name} is a device frame (at {key[1]:#x}): its "
                                         "bytes are a device's; name it external")
                base = replace(base, data=kernel.machine.read_phys(key[1], 1 << size_bits))
            elif key[0] == "untyped":
                assert isinstance(cap, UntypedCap)
                if cap.is_device:
                    raise ComponentError(f"{name} is a device untyped; name it external")
            records.append(base)
        return records

    def _inside(self, key: Key, size_bits: int, untypeds: list[Key]) -> tuple[str | None, int]:
        """The innermost owned untyped whose region holds ``key``'s object, and where."""
        base = key[1]
        end = base + (1 << _region_bits(key[0], size_bits))
        best: Key | None = None
        for ut in untypeds:
            if ut == key:
                continue
            ut_end = ut[1] + (1 << ut[2])
            if ut[1] <= base and end <= ut_end and (ut[2] > size_bits or key[0] != "untyped") \
                    and (best is None or ut[2] < best[2]):
                best = ut
        if best is None:
            return None, 0
        return self.names[best], base - best[1]

    def _check_queue(self, name: str, queue: list[TCB], owned: set[Key]) -> None:
        for waiter in queue:
            if ("tcb", waiter.paddr, 0) not in owned:
                raise ComponentError(f"thread {waiter.name!r}, outside the component, waits "
                                     f"on {name}: it cannot be restored with it")

    def _thread(self, tcb: TCB, owned: set[Key]) -> ThreadRecord:
        kernel = self.kernel
        name = self.names[("tcb", tcb.paddr, 0)]
        state = tcb.state
        if tcb.fault is not None:
            raise ComponentError(f"thread {tcb.name!r} ({name}) is handling a fault "
                                 f"({type(tcb.fault).__name__}); capture it after the reply")
        if state is ThreadState.BLOCKED_ON_REPLY:
            raise ComponentError(f"thread {tcb.name!r} ({name}) is waiting for the reply to "
                                 "a Call already received: capture it before the Call is "
                                 "received or after the reply")
        if state is ThreadState.IDLE:
            raise ComponentError(f"thread {tcb.name!r} is the idle thread")
        registers = get_registers(kernel, tcb)
        after_syscall = tcb.after_syscall
        was = None
        if state in _BLOCKED:
            registers[0] = restart_pc(tcb, registers[0])
            after_syscall = False
            was = state.value
            self.notes.append(f"thread {tcb.name!r} ({name}) was {state.value}: captured in "
                              "Restart, it runs that system call again when restored")
            state = ThreadState.RESTART
        bound = tcb.bound_notification
        bound_name = None if bound is None else self.names[("notification", bound.paddr, 0)]
        return ThreadRecord(tcb.name, state.value, tuple(registers), tcb.priority, tcb.mcp,
                            tcb.domain, tcb.time_slice, tcb.ipc_buffer, tcb.fault_ep,
                            tcb.flags, after_syscall, bound_name, was)

    def cap_records(self) -> list[CapRecord]:
        kernel = self.kernel
        memo: dict[int, Slot | None] = {}
        records = []
        for container, index, in_tcb, slot in self.slots:
            cap = slot.cap
            key = object_key(cap)
            assert key is not None
            parent = _parent(kernel, slot, memo)
            while parent is not None and id(parent) not in self.slot_ids:
                parent = _parent(kernel, parent, memo)
            rights = badge = guard = guard_size = free_index = vaddr = 0
            mapping = None
            if isinstance(cap, EndpointCap | NotificationCap):
                rights, badge = cap.rights.to_word(), cap.badge
            elif isinstance(cap, CNodeCap):
                guard, guard_size = cap.guard, cap.guard_size
            elif isinstance(cap, UntypedCap):
                free_index = cap.free_index
            elif isinstance(cap, FrameCap):
                rights = cap.rights.to_word()
                if cap.is_mapped:
                    mapping = self._frame_mapping(cap, slot)
                else:
                    vaddr = cap.mapped_vaddr
            elif isinstance(cap, PageTableCap | VSpaceCap) and cap.is_mapped:
                mapping = self._table_mapping(cap, slot)
            records.append(CapRecord(
                container, index, in_tcb, key[0], self.names[key], slot.revocable,
                slot.first_badged, None if parent is None else self.slot_ids[id(parent)],
                rights, badge, guard, guard_size, free_index, mapping, vaddr))
        return records

    def _root_name(self, asid: int, slot: Slot) -> tuple[int, str]:
        kernel = self.kernel
        root = find_vspace_for_asid(kernel, asid)
        where = self.slot_ids[id(slot)]
        if root is None:
            raise ComponentError(f"{where}: its mapping went stale (ASID {asid:#x} no longer "
                                 "resolves); unmap it before capturing")
        kind = "page_table" if kernel.arch.short == "riscv64" else "vspace"
        name = self.names.get((kind, root, 0))
        if name is None:
            raise ComponentError(f"{where} is mapped in the VSpace at {root:#x} (ASID "
                                 f"{asid:#x}), which the component does not reach: name it "
                                 "external")
        return root, name

    def _frame_mapping(self, cap: FrameCap, slot: Slot) -> MappingRecord:
        kernel = self.kernel
        root, vspace = self._root_name(cap.mapped_asid, slot)
        level, entry = walk_to(kernel, root, cap.mapped_vaddr)
        kind, base = kernel.paging.decode(entry, level)
        if kind is not PteKind.LEAF or base != cap.paddr \
                or kernel.paging.shifts[level] != cap.size_bits:
            raise ComponentError(f"{self.slot_ids[id(slot)]}: its mapping at "
                                 f"{cap.mapped_vaddr:#x} went stale; unmap it before capturing")
        return MappingRecord(vspace, cap.mapped_vaddr, level,
                             kernel.paging.leaf_rights(entry).value,
                             kernel.paging.allows(entry, Access.EXECUTE))

    def _table_mapping(self, cap: PageTableCap | VSpaceCap, slot: Slot) -> MappingRecord:
        kernel = self.kernel
        root, vspace = self._root_name(cap.mapped_asid, slot)
        if root == cap.paddr:
            return MappingRecord(vspace, 0, -1)
        assert isinstance(cap, PageTableCap)
        fmt = kernel.paging
        table = root
        for level in range(fmt.levels - 1):
            kind, target = fmt.decode(
                read_entry(kernel.machine, table, fmt.index(level, cap.mapped_vaddr)), level)
            if kind is not PteKind.TABLE:
                break
            if target == cap.paddr:
                return MappingRecord(vspace, cap.mapped_vaddr, level)
            table = target
        raise ComponentError(f"{self.slot_ids[id(slot)]}: its mapping at "
                             f"{cap.mapped_vaddr:#x} went stale; unmap it before capturing")

    def check_tables(self, records: list[CapRecord]) -> None:
        """Every entry of an owned VSpace root or mapped page table is one of the
        component's own mappings (else restoring would lose what an outside cap mapped)."""
        kernel = self.kernel
        fmt = kernel.paging
        mapped = {(r.mapping.vspace, r.mapping.vaddr, r.mapping.level, r.object)
                  for r in records if r.mapping is not None}
        by_name = {name: key for key, name in self.names.items()}
        tables: list[tuple[int, int, int, str]] = []
        for r in records:
            key = by_name[r.object]
            if r.mapping is None or key in self.external or r.type not in ("page_table", "vspace"):
                continue
            if r.mapping.level == -1:
                tables.append((key[1], 0, 0, r.mapping.vspace))
            else:
                level = r.mapping.level + 1
                span = fmt.shifts[level - 1]
                tables.append((key[1], level, r.mapping.vaddr >> span << span, r.mapping.vspace))
        done: set[int] = set()
        for table, level, base, vspace in tables:
            if table in done:
                continue
            done.add(table)
            entries = _TABLE.unpack(kernel.machine.read_phys(table, 8 * ENTRIES_PER_TABLE))
            for index, entry in enumerate(entries):
                kind, target = fmt.decode(entry, level)
                if kind is PteKind.INVALID:
                    continue
                vaddr = base | (index << fmt.shifts[level])
                wanted = "page_table" if kind is PteKind.TABLE else "frame"
                bits = 0 if kind is PteKind.TABLE else fmt.shifts[level]
                name = self.names.get((wanted, target, bits))
                if name is None or (vspace, vaddr, level, name) not in mapped:
                    raise ComponentError(
                        f"the VSpace {vspace} maps the {wanted} at {target:#x} at {vaddr:#x} "
                        "through no cap of the component: its cap is outside")


def walk_to(kernel: KernelState, root: int, vaddr: int) -> tuple[int, int]:
    """(level, entry) where a walk towards ``vaddr`` stops: a leaf, an invalid entry or
    the last level (seL4's lookupPTSlot)."""
    fmt = kernel.paging
    table = root
    for level in range(fmt.levels):
        entry = read_entry(kernel.machine, table, fmt.index(level, vaddr))
        kind, target = fmt.decode(entry, level)
        if kind is not PteKind.TABLE or level == fmt.levels - 1:
            return level, entry
        table = target
    raise AssertionError("unreachable")


def _parent(kernel: KernelState, slot: Slot, memo: dict[int, Slot | None]) -> Slot | None:
    """``slot``'s derivation parent: the nearest slot before it in its list that is its
    MDB parent. A slot that is not jumps to its own parent (everything between a parent
    and its child lies in the parent's subtree), so each slot's parent is found once;
    iterative, with ``memo`` shared across calls."""
    stack = [slot]
    while stack:
        current = stack[-1]
        if id(current) in memo:
            stack.pop()
            continue
        candidate = current.mdb_prev
        unresolved = None
        while candidate is not None and not is_mdb_parent_of(kernel, candidate, current):
            if id(candidate) not in memo:
                unresolved = candidate
                break
            candidate = memo[id(candidate)]
        if unresolved is not None:
            stack.append(unresolved)
            continue
        memo[id(current)] = candidate
        stack.pop()
    return memo[id(slot)]


def capture(kernel: KernelState, tcb: TCB, external: Mapping[str, Slot] | None = None) -> Component:
    """The component of ``tcb``: its cspace, the objects it owns and the caps among them.

    ``external`` names objects outside the component: name -> a slot (anywhere) holding
    a cap to that object. Reads kernel state and RAM only; changes nothing.

    Raises:
        ComponentError: what the module docstring lists, in one line naming the object.
    """
    if kernel.config.mcs:
        # The seam for MCS: reply objects and scheduling contexts need records of their
        # own (model.OBJECT_TYPES) before an MCS component can be captured faithfully.
        raise ComponentError("components of an MCS kernel are not captured yet (reply "
                             "objects and scheduling contexts have no record)")
    walk = _Capture(kernel, external or {})
    walk.walk(tcb)
    walk.check_ownership()
    objects = walk.object_records()
    caps = walk.cap_records()
    walk.check_tables(caps)
    inside = {o.name for o in objects if o.inside is not None}
    for record in caps:
        if record.object in inside and record.parent is None:
            raise ComponentError(f"{record.slot}: a cap to {record.object}, which lies in an "
                                 "untyped of the component, derives from a cap outside it")
    externals = [ExternalRecord(walk.names[key], key[0],
                                _size_bits(kernel, key, walk.sample_cap[key]), walk.found_at[key])
                 for key in walk.order if key in walk.external]
    return Component(kernel.arch.short, walk.names[("tcb", tcb.paddr, 0)], tuple(objects),
                     tuple(externals), tuple(caps), tuple(walk.notes))
