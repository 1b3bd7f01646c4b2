"""Restoring a captured component into fresh objects, every cap back in its slot.

:func:`restore` validates everything first and changes nothing when it refuses (as a
decoder does); then it performs, and cannot fail half way:

1. **Memory.** Every owned object that did not lie in an untyped of the component is
   carved from the caller's untyped the way the retype performer does it (a childless
   untyped is reset first, each object aligned to its size above the watermark, the
   watermark moved past it, :func:`kernel.objects.retype.create_object` making its kernel
   state), largest first so that alignment wastes least. An owned untyped is restored as
   a fresh untyped of its size, and what lay inside it goes back at the same offsets, so
   its watermark (captured per cap) and its children's containment hold as they were.
2. **Contents.** Frames get their bytes, notifications their pending word, TCBs their
   registers, priority, MCP, domain, time slice, IPC buffer address, fault endpoint,
   flags and name; a bound notification is bound again.
3. **Caps.** Each cap goes into the restored slot of the same container and index, with
   the same rights, badge, guard, guard size and watermark, naming the restored object
   (or, for an external one, the existing object the identity map gives).
4. **Derivation.** Each cap whose captured parent was in the component is placed as that
   parent's child, in capture order, with its captured ``revocable`` / ``first_badged``
   bits, so the tree restricted to the component is the same. A cap whose parent was
   outside becomes a child of what stands for that outside now: the caller's untyped
   for an owned object (where seL4 would leave it once the outside parent was deleted),
   the identity map's cap for an external object (as a Mint from it would).
5. **VSpaces.** An owned VSpace root gets an ASID from the caller's ASID pool (its first
   free ones, in capture order); page tables are mapped level by level, then frames,
   at the captured virtual addresses with the captured rights, into the restored root or
   into the external VSpace the identity map gives (whose entries there must be free).
6. **Threads.** A thread captured Running or Restart is made runnable (queued at its
   priority; the scheduler chooses at the next kernel exit); Inactive stays Inactive.

Reply objects and scheduling contexts (MCS) are not restored yet: capture cannot produce
them, and this is where their step goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from kernel.abi.constants import ASID_POOL_INDEX_BITS, MIN_UNTYPED_BITS, PAGE_BITS, SLOT_BITS
from kernel.core.notifications import bind_notification
from kernel.cspace.cdt import has_children, insert_child
from kernel.model.asid_pool import ASIDS_PER_POOL, ASIDPool
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    Rights,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.notification import Notification, NotificationState
from kernel.model.page_tables import read_entry, write_entry
from kernel.model.paging import PteKind, VMRights
from kernel.model.slot import Slot
from kernel.model.state import KernelState
from kernel.model.tcb import TCB, ThreadState
from kernel.objects.asid_pool import find_vspace_for_asid
from kernel.objects.retype import Kind, ObjectType, create_object, object_types
from kernel.objects.untyped import reset_untyped
from kernel.records import dataclass

from .capture import object_key, walk_to
from .model import CapRecord, Component, ComponentError, ExternalRecord, ObjectRecord

__all__ = ["Restored", "restore"]

_KIND: Final = {"tcb": Kind.TCB, "cnode": Kind.CAP_TABLE, "endpoint": Kind.ENDPOINT,
         "notification": Kind.NOTIFICATION, "frame": Kind.FRAME, "page_table": Kind.PAGE_TABLE,
         "vspace": Kind.VSPACE, "untyped": Kind.UNTYPED}
_PAGE: Final = 1 << PAGE_BITS


@dataclass(frozen=True, slots=True)
class Restored:
    """What :func:`restore` made: each owned object's identity -> its new physical
    address, the component's thread's new TCB address, and the ASIDs given to its own
    VSpace roots (identity -> ASID)."""

    objects: dict[str, int]
    thread: int
    asids: dict[str, int]


@dataclass(frozen=True, slots=True)
class _Base:
    """What a restored cap names: an object's address and the parts of its cap that
    belong to the object, not to the cap."""

    paddr: int
    size_bits: int = 0
    is_device: bool = False
    asid_base: int = 0


def _region_bits(record: ObjectRecord) -> int:
    return record.size_bits + SLOT_BITS if record.type == "cnode" else record.size_bits


class _Plan:
    """Everything restore decided before it changes anything."""

    def __init__(self, kernel: KernelState, component: Component, untyped: Slot,
                 identities: Mapping[str, Slot], asid_pool: Slot | None) -> None:
        self.kernel = kernel
        self.component = component
        self.untyped = untyped
        self.objects = {o.name: o for o in component.objects}
        self.bases: dict[str, _Base] = {}
        self.identity_slots: dict[str, Slot] = {}
        self.asids: dict[str, int] = {}
        self.pool: ASIDPool | None = None
        if component.arch != kernel.arch.short:
            raise ComponentError(f"a {component.arch} component cannot be restored on "
                                 f"{kernel.arch.short}")
        self._check_references()
        self._externals(component.externals, identities)
        self.addresses, self.reset, self.watermark = self._memory()
        for name, paddr in self.addresses.items():
            record = self.objects[name]
            self.bases[name] = _Base(paddr, record.size_bits)
        self._vspaces(asid_pool)
        self._check_external_entries()
        self._threads()

    def _check_references(self) -> None:
        """Every name a cap, an object or a mapping uses is declared (a component read
        from a file may have been edited)."""
        component = self.component
        names = set(self.objects) | {e.name for e in component.externals}
        if len(names) != len(component.objects) + len(component.externals):
            raise ComponentError("an identity is declared twice in the component")
        if component.thread not in self.objects or self.objects[component.thread].thread is None:
            raise ComponentError(f"the component's thread {component.thread!r} is not one of "
                                 "its TCBs")
        slots = {cap.slot for cap in component.caps}
        if len(slots) != len(component.caps):
            raise ComponentError("two caps of the component are in one slot")
        for cap in component.caps:
            for what, name in (("object", cap.object), ("container", cap.container),
                               ("VSpace", cap.mapping.vspace if cap.mapping else cap.object)):
                if name not in names:
                    raise ComponentError(f"{cap.slot}: its {what} {name!r} is not declared")
            if cap.parent is not None and cap.parent not in slots:
                raise ComponentError(f"{cap.slot}: its parent {cap.parent} holds no cap")
        for record in component.objects:
            if record.type not in _KIND:
                raise ComponentError(f"{record.name}: objects of type {record.type!r} are not "
                                     "restored")
        declared = {o.name: o.type for o in component.objects}
        declared.update((e.name, e.type) for e in component.externals)
        self.types = {record.name: _object_type(self.kernel, record)
                      for record in component.objects}
        for record in component.objects:
            if (record.data is not None) != (record.type == "frame") or (
                    record.data is not None and len(record.data) != 1 << record.size_bits):
                raise ComponentError(f"{record.name}: its bytes do not fit a "
                                     f"{record.size_bits}-bit {record.type}")
            thread = record.thread
            if (thread is not None) != (record.type == "tcb"):
                raise ComponentError(f"{record.name}: a {record.type} with"
                                     f"{'out' if thread is None else ''} thread state")
            if thread is not None and not (
                    0 <= thread.domain < self.kernel.config.num_domains
                    and 0 <= thread.priority <= 255 and 0 <= thread.mcp <= 255
                    and (thread.bound_notification is None
                         or declared.get(thread.bound_notification) == "notification")):
                raise ComponentError(f"{record.name}: its domain, priority, MCP or bound "
                                     "notification is not one this kernel can have")
        self._check_forest()
        for cap in component.caps:
            container = self.objects.get(cap.container)
            kind, size = ("tcb", 5) if cap.in_tcb else ("cnode", 0)
            if container is not None and kind == "cnode":
                size = 1 << container.size_bits
            if container is None or container.type != kind or not 0 <= cap.index < size:
                raise ComponentError(f"{cap.slot}: not a slot of an owned {kind}")
            if declared[cap.object] != cap.type:
                raise ComponentError(f"{cap.slot}: a {cap.type} cap to {cap.object}, a "
                                     f"{declared[cap.object]}")
            if cap.mapping is not None and declared[cap.mapping.vspace] not in (
                    "page_table", "vspace"):
                raise ComponentError(f"{cap.slot}: mapped in {cap.mapping.vspace}, which is "
                                     "no VSpace")

    def _check_forest(self) -> None:
        """The caps' parents form a forest: every cap leads up to a root (no cycle), so
        restore places every one of them."""
        parent = {cap.slot: cap.parent for cap in self.component.caps}
        rooted: set[str] = set()
        for start in parent:
            path: list[str] = []
            seen: set[str] = set()
            slot: str | None = start
            while slot is not None and slot not in rooted:
                if slot in seen:
                    raise ComponentError(f"{slot}: its derivation parents form a cycle")
                seen.add(slot)
                path.append(slot)
                slot = parent[slot]
            rooted.update(path)

    def _externals(self, externals: tuple[ExternalRecord, ...],
                   identities: Mapping[str, Slot]) -> None:
        for external in externals:
            slot = identities.get(external.name)
            if slot is None:
                raise ComponentError(f"the identity map does not say which existing object "
                                     f"the external {external.name!r} ({external.type}) is")
            cap = slot.cap
            key = object_key(cap)
            if key is None or key[0] != external.type or (
                    external.type in ("frame", "untyped") and key[2] != external.size_bits):
                raise ComponentError(f"external {external.name!r} is a {external.type} "
                                     f"(size bits {external.size_bits}); the identity map "
                                     f"gives a {type(cap).__name__}")
            self.identity_slots[external.name] = slot
            if isinstance(cap, CNodeCap):
                base = _Base(cap.paddr, cap.radix)
            elif isinstance(cap, FrameCap | UntypedCap):
                base = _Base(cap.paddr, cap.size_bits, cap.is_device)
            elif isinstance(cap, ASIDPoolCap):
                base = _Base(cap.paddr, asid_base=cap.asid_base)
            else:
                paddr = cap.object_paddr
                assert paddr is not None
                base = _Base(paddr)
            self.bases[external.name] = base

    def _memory(self) -> tuple[dict[str, int], bool, int]:
        """New addresses of the owned objects; whether the untyped is reset first; its
        new watermark (in 16-byte units)."""
        cap = self.untyped.cap
        if not isinstance(cap, UntypedCap) or cap.is_device:
            raise ComponentError("restore needs a RAM untyped cap to make the objects from; "
                                 f"the slot given holds a {type(cap).__name__}"
                                 + (" (device)" if isinstance(cap, UntypedCap) else ""))
        reset = not has_children(self.kernel, self.untyped)
        free = cap.paddr + (0 if reset else cap.free_index << MIN_UNTYPED_BITS)
        end_of_untyped = cap.paddr + (1 << cap.size_bits)
        component = self.component
        position = {o.name: i for i, o in enumerate(component.objects)}
        top = sorted((o for o in component.objects if o.inside is None),
                     key=lambda o: (-_region_bits(o), position[o.name]))
        addresses: dict[str, int] = {}
        needed = 0
        for record in top:
            bits = _region_bits(record)
            start = -(-free >> bits) << bits
            free = start + (1 << bits)
            needed += 1 << bits
            addresses[record.name] = start
        if free > end_of_untyped:
            available = end_of_untyped - cap.paddr - (0 if reset else
                                                      cap.free_index << MIN_UNTYPED_BITS)
            raise ComponentError(f"the untyped given is too small: the component needs "
                                 f"{needed:#x} bytes (aligned), {available:#x} are free")
        pending = [o for o in component.objects if o.inside is not None]
        while pending:  # nested untypeds resolve outside in; each pass resolves one level
            left = []
            for record in pending:
                assert record.inside is not None
                holder = self.objects.get(record.inside)
                bits = _region_bits(record)
                if holder is None or holder.type != "untyped" or record.offset % (1 << bits) \
                        or not 0 <= record.offset <= (1 << holder.size_bits) - (1 << bits):
                    raise ComponentError(f"{record.name} lies in {record.inside} at "
                                         f"{record.offset:#x}, which is no place in an "
                                         "untyped of the component")
                container = addresses.get(record.inside)
                if container is None:
                    left.append(record)
                    continue
                addresses[record.name] = container + record.offset
            if len(left) == len(pending):
                raise ComponentError("the component's untypeds contain each other in a cycle")
            pending = left
        return addresses, reset, (free - cap.paddr) >> MIN_UNTYPED_BITS

    def _vspaces(self, asid_pool: Slot | None) -> None:
        kernel = self.kernel
        roots = []
        for record in self.component.caps:
            m = record.mapping
            if m is None:
                continue
            if m.vspace in self.objects:
                if m.level == -1 and m.vspace not in roots:
                    roots.append(m.vspace)
                continue
            external = self.identity_slots[m.vspace].cap
            assert isinstance(external, PageTableCap | VSpaceCap)
            if not external.mapped_asid or find_vspace_for_asid(
                    kernel, external.mapped_asid) != external.object_paddr:
                raise ComponentError(f"the external VSpace {m.vspace!r} has no ASID that "
                                     "resolves to it: it cannot take the component's mappings")
            self.asids[m.vspace] = external.mapped_asid
        if not roots:
            return
        if asid_pool is None or not isinstance(asid_pool.cap, ASIDPoolCap):
            raise ComponentError(f"the component has its own VSpace ({', '.join(roots)}): "
                                 "restore needs an ASID pool cap to assign it an ASID")
        pool_cap = asid_pool.cap
        pool = kernel.asid_table.get(pool_cap.asid_base >> ASID_POOL_INDEX_BITS)
        if pool is None or pool.paddr != pool_cap.paddr:
            raise ComponentError("the ASID pool given is no longer in the ASID table")
        free = (a for a in range(pool_cap.asid_base, pool_cap.asid_base + ASIDS_PER_POOL)
                if a != 0 and a not in pool.roots)
        for root in roots:
            asid = next(free, None)
            if asid is None:
                raise ComponentError("the ASID pool given has no free ASID left")
            self.asids[root] = asid
        self.pool = pool

    def _check_external_entries(self) -> None:
        """Mappings into an external VSpace must land on free entries (or on tables the
        component itself brings)."""
        kernel = self.kernel
        fmt = kernel.paging
        brought = {(r.mapping.vspace, r.mapping.level, r.mapping.vaddr >> fmt.shifts[r.mapping.level])
                   for r in self.component.caps
                   if r.mapping is not None and r.mapping.level >= 0 and r.type == "page_table"}
        for record in self.component.caps:
            m = record.mapping
            if m is None or m.level < 0 or m.vspace in self.objects:
                continue
            root = self.bases[m.vspace].paddr
            level, entry = walk_to(kernel, root, m.vaddr)
            if level == m.level and not fmt.is_valid(entry):
                continue
            if level < m.level and not fmt.is_valid(entry) and all(
                    (m.vspace, lv, m.vaddr >> fmt.shifts[lv]) in brought
                    for lv in range(level, m.level)):
                continue
            what = "already mapped" if fmt.is_valid(entry) else "has no page table there"
            raise ComponentError(f"{record.slot}: the external VSpace {m.vspace!r} "
                                 f"{what} at {m.vaddr:#x} (level {level}); unmap or map first")

    def _threads(self) -> None:
        width = len(self.kernel.abi.user_context)
        for record in self.component.objects:
            thread = record.thread
            if thread is None:
                continue
            if len(thread.registers) != width:
                raise ComponentError(f"{record.name}: {len(thread.registers)} registers, "
                                     f"this architecture has {width}")
            if thread.state not in ("Inactive", "Running", "Restart"):
                raise ComponentError(f"{record.name}: thread state {thread.state!r} cannot "
                                     "be restored")
            bound = thread.bound_notification
            if bound is not None and bound not in self.objects:
                existing = self.kernel.objects.get(self.bases[bound].paddr)
                if isinstance(existing, Notification) and existing.bound_tcb is not None:
                    raise ComponentError(f"the external notification {bound!r} is bound to "
                                         f"thread {existing.bound_tcb.name!r} already")

    # --- the caps ----------------------------------------------------------------------

    def cap_value(self, record: CapRecord) -> Cap:
        base = self.bases[record.object]
        m = record.mapping
        asid = 0 if m is None else self.asids[m.vspace]
        vaddr = record.vaddr if m is None else m.vaddr
        match record.type:
            case "untyped":
                return UntypedCap(base.paddr, base.size_bits, base.is_device, record.free_index)
            case "cnode":
                return CNodeCap(base.paddr, base.size_bits, record.guard_size, record.guard)
            case "tcb":
                return ThreadCap(base.paddr)
            case "endpoint":
                return EndpointCap(base.paddr, record.badge, Rights.from_word(record.rights))
            case "notification":
                return NotificationCap(base.paddr, record.badge, Rights.from_word(record.rights))
            case "frame":
                return FrameCap(base.paddr, base.size_bits, Rights.from_word(record.rights),
                                base.is_device, asid, vaddr)
            case "page_table":
                return PageTableCap(base.paddr, asid, vaddr)
            case "vspace":
                return VSpaceCap(base.paddr, asid)
            case "asid_pool":
                return ASIDPoolCap(base.paddr, base.asid_base)
        raise ComponentError(f"{record.slot}: unknown cap type {record.type!r}")


def _table_at(kernel: KernelState, root: int, vaddr: int, level: int) -> int:
    """The table at ``level`` on the walk from ``root`` towards ``vaddr`` (it exists:
    the plan checked, and parents are mapped before children)."""
    fmt = kernel.paging
    table = root
    for current in range(level):
        kind, target = fmt.decode(read_entry(kernel.machine, table, fmt.index(current, vaddr)),
                                  current)
        assert kind is PteKind.TABLE, "restore: a parent table is missing"
        table = target
    return table


def _object_type(kernel: KernelState, record: ObjectRecord) -> ObjectType:
    kind = _KIND[record.type]
    for otype in object_types(kernel.arch, kernel.tcb_bits).values():
        if otype.kind is kind and (kind is not Kind.FRAME or otype.fixed_bits == record.size_bits):
            return otype
    raise ComponentError(f"{record.name}: no {record.type} of {record.size_bits} bits here")


def restore(kernel: KernelState, component: Component, untyped: Slot,
            identities: Mapping[str, Slot] | None = None,
            asid_pool: Slot | None = None) -> Restored:
    """Put ``component`` back in fresh objects made from the untyped cap in ``untyped``.

    ``identities`` maps each external identity of the component to a slot holding a
    cap to the existing object it stands for (restored caps to it become that cap's
    derivation children; names the component does not use are ignored, as capture
    ignores external names it does not meet); ``asid_pool`` is an ASID pool cap's slot, needed only when the
    component has its own VSpace. Changes nothing if it raises.

    Raises:
        ComponentError: another architecture; not a RAM untyped, or too small; an
            external missing from the identity map or given a cap of another kind; no
            ASID pool (or no free ASID) for an own VSpace; an external VSpace without an
            ASID or with entries already taken where the component maps.
    """
    plan = _Plan(kernel, component, untyped, identities or {}, asid_pool)
    machine = kernel.machine
    # 1. memory, as the retype performer carves it
    if plan.reset:
        reset_untyped(kernel, untyped)
    cap = untyped.cap
    assert isinstance(cap, UntypedCap)
    untyped.cap = replace(cap, free_index=plan.watermark)
    made: dict[str, int] = {}
    for record in component.objects:
        paddr = plan.addresses[record.name]
        user_size = record.size_bits if record.type in ("cnode", "untyped") else 0
        create_object(kernel, plan.types[record.name], paddr, user_size, False)
        made[record.name] = paddr
    # 2. contents
    for record in component.objects:
        paddr = made[record.name]
        if record.data is not None:
            for offset in range(0, len(record.data), _PAGE):
                page = record.data[offset:offset + _PAGE]
                if page.count(0) != len(page):
                    machine.write_phys(paddr + offset, page)
        if record.type == "notification" and record.active:
            ntfn = kernel.object_at(paddr, Notification)
            ntfn.state, ntfn.word = NotificationState.ACTIVE, record.word
        if record.thread is not None:
            tcb = kernel.object_at(paddr, TCB)
            t = record.thread
            tcb.registers = list(t.registers)
            tcb.name, tcb.priority, tcb.mcp, tcb.domain = t.name, t.priority, t.mcp, t.domain
            tcb.time_slice, tcb.ipc_buffer, tcb.fault_ep = t.time_slice, t.ipc_buffer, t.fault_ep
            tcb.flags, tcb.after_syscall = t.flags, t.after_syscall
    # 3 and 4. caps, in their slots and in the derivation tree
    _install_caps(kernel, plan, made)
    # 5. VSpaces
    if plan.pool is not None:
        for root_name, asid in plan.asids.items():
            if root_name in made:
                plan.pool.roots[asid] = made[root_name]
        kernel.asid_epoch += 1
    _map(kernel, plan)
    # 6. threads
    for record in component.objects:
        if record.thread is None:
            continue
        tcb = kernel.object_at(made[record.name], TCB)
        bound = record.thread.bound_notification
        if bound is not None:
            bind_notification(kernel, tcb, kernel.object_at(plan.bases[bound].paddr, Notification))
        if record.thread.state != "Inactive":
            kernel.set_thread_state(tcb, ThreadState(record.thread.state))
            kernel.scheduler.enqueue(tcb)
            kernel.reschedule_required()
    return Restored(made, made[component.thread],
                    {name: asid for name, asid in plan.asids.items() if name in made})


def _install_caps(kernel: KernelState, plan: _Plan, made: dict[str, int]) -> None:
    component = plan.component
    slots: dict[str, Slot] = {}
    for record in component.caps:  # containers and indices were checked by the plan
        owner = kernel.objects.get(made[record.container])
        assert isinstance(owner, TCB if record.in_tcb else CNode)
        slots[record.slot] = owner.slots[record.index]
    children: dict[str, list[CapRecord]] = {}
    groups: dict[int, tuple[Slot, list[CapRecord]]] = {}
    for record in component.caps:
        if record.parent is not None:
            children.setdefault(record.parent, []).append(record)
            continue
        anchor = plan.untyped if record.object in made else plan.identity_slots[record.object]
        groups.setdefault(id(anchor), (anchor, []))[1].append(record)
    for anchor, roots in groups.values():
        sequence: list[CapRecord] = []
        stack = list(reversed(roots))
        while stack:  # pre-order, iteratively: a derivation chain can be long
            record = stack.pop()
            sequence.append(record)
            stack.extend(reversed(children.get(record.slot, [])))
        # Each insert goes right after the anchor, so inserting backwards leaves the
        # sequence in order after it.
        for record in reversed(sequence):
            slot = slots[record.slot]
            insert_child(anchor, slot, plan.cap_value(record), record.revocable)
            slot.first_badged = record.first_badged


def _map(kernel: KernelState, plan: _Plan) -> None:
    """Page-table entries, then frame entries, each level before the next."""
    fmt = kernel.paging
    mapped = sorted((r for r in plan.component.caps if r.mapping is not None and r.mapping.level >= 0),
                    key=lambda r: (r.type != "page_table", r.mapping.level if r.mapping else 0))
    touched: set[int] = set()
    done: set[tuple[str, int, int]] = set()
    for record in mapped:
        m = record.mapping
        assert m is not None
        if (m.vspace, m.level, m.vaddr) in done:
            continue  # copies of a page-table cap share its one entry
        done.add((m.vspace, m.level, m.vaddr))
        root = plan.bases[m.vspace].paddr
        table = _table_at(kernel, root, m.vaddr, m.level)
        paddr = plan.bases[record.object].paddr
        if record.type == "page_table":
            entry = fmt.table_entry(paddr)
        else:
            entry = fmt.leaf_entry(paddr, m.level, VMRights(m.rights), m.executable, True)
        write_entry(kernel.machine, table, fmt.index(m.level, m.vaddr), entry)
        touched.add(plan.asids[m.vspace])
    for asid in sorted(touched):
        kernel.machine.mappings_changed(asid)
