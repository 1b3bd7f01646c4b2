"""Kernel state as a picture: threads, their CSpaces, objects and the derivation tree.

:func:`snapshot` reads a kernel (no Unicorn, no mutation) into a plain data model of
frozen dataclasses; :func:`to_text`, :func:`to_json` and :func:`to_dot` render that
model. Slots are named by a stable id, ``<container paddr>[<index>]`` (a CNode's slot)
or ``<tcb paddr>.<name>`` (a TCB's own slots), which the text, JSON and DOT forms share.

What is shown and where it comes from:
- threads: ``kernel.threads`` in creation order; each thread's CSpace is the tree of
  CNodes reachable from its ``ctable`` slot through CNode caps. A CNode already shown
  on the path (a CNode cap to itself, a cycle) or elsewhere in the same tree is not
  expanded again, only marked ``seen``.
- objects: those with kernel state (``kernel.objects``) plus those that exist only as
  caps (frames, page tables, VSpaces, untypeds), one entry per (type, paddr).
- derivation: the CDT parent of every non-empty slot, recovered from the mdb list order
  with :func:`kernel.cspace.cdt.is_mdb_parent_of` exactly as seL4's descendants are.
- MCS kernels only: each thread's scheduling context and reply object, and every
  scheduling context (with the call stack it is lent along), reply object and the
  release queue, as :mod:`kernel.views.mcs` reads them; absent without MCS.

A guest can chain CNodes thousands deep, so every walk here is iterative (DESIGN.md
decision 9), and the text and JSON forms stop indenting at a fixed depth
(:data:`TEXT_INDENT_LEVELS`, :data:`kernel.views.json_form.MAX_INDENT_LEVELS`): their size
grows with the tree, not with the square of its depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any, Final, TypeVar

from kernel.abi.constants import (
    ASID_POOL_BITS,
    ENDPOINT_BITS,
    NOTIFICATION_BITS,
    NOTIFICATION_BITS_MCS,
    PAGE_TABLE_BITS,
    REPLY_BITS_MCS,
    SLOT_BITS,
    VSPACE_BITS,
    CapTag,
    InitialCap,
)
from kernel.abi.extensions import CHECKPOINT_BITS
from kernel.cspace.cdt import is_mdb_parent_of
from kernel.kernel import Kernel
from kernel.model.asid_pool import ASIDPool
from kernel.model.caps import (
    ASIDPoolCap,
    Cap,
    CapPageCap,
    CheckpointCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    PageTableCap,
    ReplyCap,
    ReplyObjectCap,
    SchedContextCap,
    SchedControlCap,
    ThreadCap,
    UntypedCap,
    VSpaceCap,
)
from kernel.model.cnode import CNode
from kernel.model.endpoint import Endpoint
from kernel.model.faults import IndexRequest
from kernel.model.notification import Notification
from kernel.model.reply_object import ReplyObject
from kernel.model.sched_context import SchedContext
from kernel.model.slot import Slot
from kernel.model.tcb import TCB
from kernel.records import dataclass
from kernel.views.json_form import OMIT_NONE, as_plain, json_text
from kernel.views.mcs import McsView, ThreadMcsView, mcs_lines, mcs_view, thread_mcs, thread_note

__all__ = [
    "CapView", "CNodeView", "Link", "ObjectView", "Snapshot", "SlotView", "ThreadView",
    "TEXT_INDENT_LEVELS", "UntypedView", "cap_type_name", "cap_view", "format_cap", "slot_id",
    "snapshot", "to_dot", "to_json", "to_json_text", "to_text",
]

_TCB_SLOT_NAMES: Final = ("ctable", "vtable", "reply", "caller", "ipc_buffer_frame")
_INITIAL_NAMES: Final = {int(c): c.name for c in InitialCap if c < InitialCap.seL4_NumInitialCaps}

TEXT_INDENT_LEVELS: Final = 32
"""Levels of a tree the text form indents (two spaces each); deeper lines keep that
indentation and start with their level."""

_Node = TypeVar("_Node")


@dataclass(frozen=True, slots=True)
class CapView:
    """One cap: ``type`` is the seL4 cap tag name without ``_cap``; ``fields`` holds the
    attributes that apply to this type (rights, badge, guard, radix, size_bits, ...)."""

    type: str
    paddr: int | None
    fields: dict[str, int | str | bool]


@dataclass(frozen=True, slots=True)
class SlotView:
    """A slot of a CSpace tree. ``cnode`` is the expanded CNode a CNode cap names, None
    when the cap is not a CNode cap or the CNode is ``seen`` already in this tree."""

    id: str
    index: int
    name: str | None
    cap: CapView | None
    cnode: CNodeView | None = None
    seen: bool = False


@dataclass(frozen=True, slots=True)
class CNodeView:
    paddr: int
    radix: int
    slots: list[SlotView]
    server: str | None = field(default=None, metadata=OMIT_NONE)
    """capsule's server-backed CNodes (not seL4): ``endpoint=0x... badge=0x...`` of a
    server-backed CNode's binding, None for an ordinary CNode."""


@dataclass(frozen=True, slots=True)
class ThreadView:
    name: str
    paddr: int
    state: str
    priority: int
    cspace_root: SlotView
    """The TCB's ctable slot, with the root CNode expanded below it."""
    waiting_lookup: str | None = field(default=None, metadata=OMIT_NONE)
    """capsule's server-backed CNodes (not seL4): the index request the thread's system
    call is suspended on (its description), None otherwise."""
    mcs: ThreadMcsView | None = field(default=None, metadata=OMIT_NONE)
    """MCS kernels only: the context the thread runs on, its reply object, whether it is
    in the release queue (:mod:`kernel.views.mcs`); None without MCS."""


@dataclass(frozen=True, slots=True)
class ObjectView:
    type: str
    paddr: int
    size: int


@dataclass(frozen=True, slots=True)
class UntypedView:
    slot: str
    paddr: int
    size_bits: int
    is_device: bool
    free_bytes: int
    children: int


@dataclass(frozen=True, slots=True)
class Link:
    """A derivation edge: ``child`` was derived from ``parent`` (slot ids)."""

    parent: str
    child: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything shown. ``caps`` maps every non-empty slot id to its cap.

    ``thread_names`` maps each TCB's address (as slot ids write it) to its thread's name,
    for labels; ``hidden`` counts what a filter (:mod:`kernel.views.narrow`) left out, by
    kind, empty when nothing was. ``mcs`` is the scheduling contexts, reply objects and
    release queue of an MCS kernel (:mod:`kernel.views.mcs`), None without MCS."""

    point: str
    threads: list[ThreadView]
    objects: list[ObjectView]
    untypeds: list[UntypedView]
    derivation: list[Link]
    caps: dict[str, CapView] = field(default_factory=dict)
    thread_names: dict[str, str] = field(default_factory=dict)
    hidden: dict[str, int] = field(default_factory=dict)
    mcs: McsView | None = field(default=None, metadata=OMIT_NONE)


# --- reading kernel state ------------------------------------------------------------


def slot_id(kernel: Kernel, slot: Slot) -> str:
    """The stable display id of ``slot`` (see the module docstring)."""
    owner = kernel.objects.get(slot.owner)
    if isinstance(owner, TCB):
        return f"{slot.owner:#x}.{_TCB_SLOT_NAMES[slot.index]}"
    return f"{slot.owner:#x}[{slot.index}]"


def cap_type_name(cap: Cap | CapTag) -> str:
    """The name the views give a cap's type (``cap``'s or that tag's): the seL4 cap tag
    without ``_cap`` (``endpoint``, ``untyped``, ``thread``, ``null``); the trace's text
    uses it too."""
    tag = cap if isinstance(cap, CapTag) else cap.tag
    return tag.name.removesuffix("_cap")


def cap_view(cap: Cap, kernel: Kernel | None = None) -> CapView | None:
    """The view of ``cap``; None for the null cap. With ``kernel``, a thread cap also
    carries the ``name`` of its thread."""
    if cap.is_null:
        return None
    f: dict[str, int | str | bool] = {}
    if isinstance(cap, ThreadCap) and kernel is not None:
        tcb = kernel.objects.get(cap.paddr)
        if isinstance(tcb, TCB):
            f.update(name=tcb.name)
    if isinstance(cap, CNodeCap):
        f.update(radix=cap.radix, guard_size=cap.guard_size, guard=cap.guard)
        # capsule's capability pages (not seL4): restrictions and mapping, when present
        if cap.read_only:
            f.update(read_only=True)
        if cap.weak:
            f.update(weak=True)
        if isinstance(cap, CapPageCap) and cap.is_mapped:
            f.update(asid=cap.mapped_asid, vaddr=cap.mapped_vaddr)
            if cap.map_read_only:
                f.update(map_read_only=True)
            if cap.map_weak:
                f.update(map_weak=True)
    elif isinstance(cap, UntypedCap):
        f.update(size_bits=cap.size_bits, free_bytes=cap.free_bytes, is_device=cap.is_device)
    elif isinstance(cap, EndpointCap | NotificationCap):
        f.update(badge=cap.badge, rights=str(cap.rights))
    elif isinstance(cap, FrameCap):
        f.update(size_bits=cap.size_bits, rights=str(cap.rights))
        if cap.is_mapped:
            f.update(asid=cap.mapped_asid, vaddr=cap.mapped_vaddr)
    elif isinstance(cap, PageTableCap | VSpaceCap) and cap.is_mapped:
        f.update(asid=cap.mapped_asid)
    elif isinstance(cap, ASIDPoolCap):
        f.update(asid_base=cap.asid_base)
    elif isinstance(cap, ReplyCap):
        f.update(can_grant=cap.can_grant, is_master=cap.is_master)
    elif isinstance(cap, SchedContextCap):
        f.update(size_bits=cap.size_bits)
        sc = kernel.objects.get(cap.paddr) if kernel is not None else None
        if isinstance(sc, SchedContext):
            f.update(_sched_context_fields(sc))
    elif isinstance(cap, ReplyObjectCap):
        f.update(can_grant=cap.can_grant)
        reply = kernel.objects.get(cap.paddr) if kernel is not None else None
        if isinstance(reply, ReplyObject) and reply.tcb is not None:
            f.update(thread=reply.tcb.name)
    elif isinstance(cap, SchedControlCap):
        f.update(core=cap.core)
    return CapView(cap_type_name(cap), cap.object_paddr, f)


def _sched_context_fields(sc: SchedContext) -> dict[str, int | str | bool]:
    """MCS: what a scheduling context holds, in timer ticks (budget and period 0 while
    unconfigured; period 0 once configured is round robin)."""
    fields: dict[str, int | str | bool] = {
        "budget": sc.budget, "period": sc.period, "refills": len(sc.refills),
        "max_refills": sc.max_refills, "consumed": sc.consumed}
    if sc.sporadic:
        fields["sporadic"] = True
    if sc.tcb is not None:
        fields["thread"] = sc.tcb.name
    return fields


def all_slots(kernel: Kernel) -> list[Slot]:
    """Every slot the kernel has: those of CNodes and TCBs, by container paddr."""
    slots: list[Slot] = []
    for paddr in sorted(kernel.objects):
        obj = kernel.objects[paddr]
        if isinstance(obj, CNode | TCB):
            slots.extend(obj.slots)
    return slots


def derivation(kernel: Kernel, slots: list[Slot]) -> list[Link]:
    """The CDT parent of each non-empty slot in ``slots``, walking each mdb list once.

    A stack holds the slots whose run of descendants is still open: a slot is the child
    of the top of the stack if the top is its mdb parent; otherwise the top's run has
    ended (descendants are contiguous) and it is popped.
    """
    links: list[Link] = []
    heads = [s for s in slots if not s.is_empty and s.mdb_prev is None]
    for head in heads:
        stack: list[Slot] = []
        node: Slot | None = head
        while node is not None:
            while stack and not is_mdb_parent_of(kernel, stack[-1], node):
                stack.pop()
            if stack:
                links.append(Link(slot_id(kernel, stack[-1]), slot_id(kernel, node)))
            stack.append(node)
            node = node.mdb_next
    return links


@dataclass
class _Walk:
    """State of one CSpace walk: which CNode's slots get ``names``, CNodes seen so far."""

    names: dict[int, str]
    named_cnode: int | None
    empty_too: bool
    seen: set[int] = field(default_factory=set)


def _cspace(kernel: Kernel, root: Slot, name: str | None, walk: _Walk) -> SlotView:
    """``root`` with the CNodes its cap names expanded, depth first in slot order, each
    CNode once (where the walk first meets it).

    Iterative: a chain of CNodes is as deep as a guest makes it (DESIGN.md decision 9).
    The stack holds the slots still to show, each with the list its view goes into;
    a CNode's slots are pushed last first, so they are taken, and their views appended,
    in slot order, each one's subtree before the next.
    """
    top: list[SlotView] = []
    pending: list[tuple[Slot, str | None, list[SlotView]]] = [(root, name, top)]
    while pending:
        slot, label, into = pending.pop()
        cap = slot.cap
        sid = slot_id(kernel, slot)
        if not isinstance(cap, CNodeCap):
            into.append(SlotView(sid, slot.index, label, cap_view(cap, kernel)))
            continue
        node = kernel.objects.get(cap.paddr)
        if not isinstance(node, CNode) or cap.paddr in walk.seen:
            into.append(SlotView(sid, slot.index, label, cap_view(cap, kernel), seen=True))
            continue
        walk.seen.add(cap.paddr)
        names = walk.names if node.paddr == walk.named_cnode else {}
        children: list[SlotView] = []
        into.append(SlotView(sid, slot.index, label, cap_view(cap, kernel),
                             CNodeView(node.paddr, node.radix, children,
                                       _binding_text(node))))
        shown = list(node.slots.every()) if walk.empty_too else \
            [s for s in node.slots if not s.is_empty]
        pending.extend((s, names.get(s.index), children) for s in reversed(shown))
    return top[0]


def _binding_text(node: CNode) -> str | None:
    binding = node.server
    if binding is None:
        return None
    return f"endpoint={binding.endpoint:#x} badge={binding.badge:#x}"


def _object_size(kernel: Kernel, obj: object) -> tuple[str, int] | None:
    if isinstance(obj, CNode):
        return "CNode", 1 << (obj.radix + SLOT_BITS)
    if isinstance(obj, TCB):
        return "TCB", 1 << kernel.tcb_bits
    if isinstance(obj, Endpoint):
        return "Endpoint", 1 << ENDPOINT_BITS
    if isinstance(obj, Notification):
        return "Notification", 1 << (NOTIFICATION_BITS_MCS if kernel.config.mcs
                                     else NOTIFICATION_BITS)
    if isinstance(obj, SchedContext):
        return "SchedContext", 1 << obj.size_bits
    if isinstance(obj, ReplyObject):
        return "Reply", 1 << REPLY_BITS_MCS
    if isinstance(obj, ASIDPool):
        return "ASIDPool", 1 << ASID_POOL_BITS
    return None


def _cap_object(cap: Cap) -> tuple[str, int, int] | None:
    """Objects that exist only as caps: (type, paddr, size)."""
    if isinstance(cap, UntypedCap):
        return "Untyped", cap.paddr, 1 << cap.size_bits
    if isinstance(cap, FrameCap):
        return "Frame", cap.paddr, 1 << cap.size_bits
    if isinstance(cap, PageTableCap):
        return "PageTable", cap.paddr, 1 << PAGE_TABLE_BITS
    if isinstance(cap, VSpaceCap):
        return "VSpace", cap.paddr, 1 << VSPACE_BITS
    if isinstance(cap, CheckpointCap):  # capsule's extension, not seL4
        return "Checkpoint", cap.paddr, 1 << CHECKPOINT_BITS
    return None


def snapshot(kernel: Kernel, point: str = "", thread: str | None = None,
             all_slots_too: bool = False) -> Snapshot:
    """Read ``kernel`` into a :class:`Snapshot`; changes nothing.

    ``thread`` keeps only the thread of that name (``KeyError`` if there is none);
    ``all_slots_too`` includes empty slots in the CSpace trees. The root server's root
    CNode slots below ``seL4_NumInitialCaps`` are named after ``InitialCap``.
    """
    threads = [t for t in kernel.threads.values() if thread is None or t.name == thread]
    if thread is not None and not threads:
        raise KeyError(thread)
    views = []
    for tcb in threads:
        root_cap = tcb.ctable.cap
        walk = _Walk(_INITIAL_NAMES, None, all_slots_too)
        if tcb.name == "rootserver" and isinstance(root_cap, CNodeCap):
            walk.named_cnode = root_cap.paddr
        root = _cspace(kernel, tcb.ctable, "ctable", walk)
        request = tcb.fault
        views.append(ThreadView(tcb.name, tcb.paddr, tcb.state.value, tcb.priority, root,
                                request.describe() if isinstance(request, IndexRequest)
                                else None,
                                thread_mcs(kernel, tcb) if kernel.config.mcs else None))
    slots = all_slots(kernel)
    links = derivation(kernel, slots)
    found: dict[tuple[str, int], int] = {}
    for paddr, obj in kernel.objects.items():
        kind = _object_size(kernel, obj)
        if kind is not None:
            found[(kind[0], paddr)] = kind[1]
    caps: dict[str, CapView] = {}
    untypeds: list[UntypedView] = []
    child_count: dict[str, int] = {}
    for link in links:
        child_count[link.parent] = child_count.get(link.parent, 0) + 1
    for slot in slots:
        view = cap_view(slot.cap, kernel)
        if view is None:
            continue
        sid = slot_id(kernel, slot)
        caps[sid] = view
        extra = _cap_object(slot.cap)
        if extra is not None:
            found.setdefault((extra[0], extra[1]), extra[2])
        cap = slot.cap
        if isinstance(cap, UntypedCap):
            untypeds.append(UntypedView(sid, cap.paddr, cap.size_bits, cap.is_device,
                                        cap.free_bytes, child_count.get(sid, 0)))
    objects = [ObjectView(t, p, s) for (t, p), s in sorted(found.items(), key=lambda i: (i[0][1], i[0][0]))]
    names = {f"{paddr:#x}": tcb.name for paddr, tcb in kernel.threads.items()}
    return Snapshot(point, views, objects, untypeds, links, caps, names,
                    mcs=mcs_view(kernel) if kernel.config.mcs else None)


# --- rendering ---------------------------------------------------------------------------


def format_cap(cap: CapView | None) -> str:
    """``type paddr key=value ...``; ``(empty)`` for no cap. Addresses, guards, badges and
    byte counts are hex, rights are seL4's letters (``WRGg``: write, read, grant,
    grant-reply; :class:`kernel.model.caps.Rights`), a name with a space is quoted."""
    if cap is None:
        return "(empty)"
    parts = [cap.type] + ([f"{cap.paddr:#x}"] if cap.paddr is not None else [])
    parts += [f"{key}={_field(key, value)}" for key, value in cap.fields.items()]
    return " ".join(parts)


_HEX_FIELDS: Final = frozenset({"vaddr", "guard", "badge", "free_bytes"})


def _field(key: str, value: int | str | bool) -> str:
    if key in _HEX_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:#x}"
    if isinstance(value, str) and (not value or any(c.isspace() or c in "='\"" for c in value)):
        return repr(value)
    return str(value)


def _tree_lines(roots: list[_Node], base: int, line: Callable[[_Node], str],
                children: Callable[[_Node], list[_Node]], out: list[str]) -> None:
    """Append the lines of the trees below ``roots``, pre-order, a node's ``line`` indented
    two spaces per level after ``base`` levels (roots are level 1).

    Iterative, as every walk of a tree a guest shapes (DESIGN.md decision 9). Indentation
    stops growing at :data:`TEXT_INDENT_LEVELS`; a deeper line starts with ``(level N)``
    instead, so that the text of a chain 10,000 CNodes deep grows with the chain, not with
    its square.
    """
    pending = [(node, 1) for node in reversed(roots)]
    while pending:
        node, level = pending.pop()
        if level <= TEXT_INDENT_LEVELS:
            pad = "  " * (base + level)
        else:
            pad = "  " * (base + TEXT_INDENT_LEVELS) + f"(level {level}) "
        out.append(pad + line(node))
        pending.extend((child, level + 1) for child in reversed(children(node)))


def _slot_line(view: SlotView) -> str:
    label = f"[{view.index}]" + (f" {view.name}" if view.name else "")
    server = (f" (server-backed: {view.cnode.server})"
              if view.cnode is not None and view.cnode.server is not None else "")
    return (f"{label}: {format_cap(view.cap)}" + server
            + (" (shown above)" if view.seen else ""))


def _slot_children(view: SlotView) -> list[SlotView]:
    return view.cnode.slots if view.cnode is not None else []


def _slot_title(snap: Snapshot, sid: str) -> str:
    """``sid``, and the thread's name after the id of a TCB's own slot."""
    if "." in sid:
        name = snap.thread_names.get(_container(sid))
        if name is not None:
            return f"{sid} ({name})"
    return sid


def hidden_line(snap: Snapshot) -> str | None:
    """What a filter left out, as one line (None when nothing was)."""
    if not snap.hidden:
        return None
    return "hidden: " + ", ".join(f"{count} {what}" for what, count in snap.hidden.items())


def to_text(snap: Snapshot) -> str:
    """The human form: threads with CSpace trees, objects, untypeds, derivation tree;
    under MCS, each thread line also says what it runs on (:func:`kernel.views.mcs.thread_note`) and the
    scheduling contexts, reply objects and release queue come last
    (:func:`kernel.views.mcs.mcs_lines`)."""
    out = [f"# {snap.point}"] if snap.point else []
    hidden = hidden_line(snap)
    if hidden is not None:
        out.append(f"# {hidden}")
    for t in snap.threads:
        mcs = thread_note(t.mcs) if t.mcs is not None else ""
        out.append(f"thread {t.name} tcb={t.paddr:#x} state={t.state} priority={t.priority}"
                   + mcs)
        if t.waiting_lookup is not None:
            out.append(f"  suspended lookup: {t.waiting_lookup}")
        root = t.cspace_root
        server = (f" (server-backed: {root.cnode.server})"
                  if root.cnode is not None and root.cnode.server is not None else "")
        out.append(f"  cspace root (ctable): {format_cap(root.cap)}{server}")
        _tree_lines(_slot_children(root), 1, _slot_line, _slot_children, out)
    out.append(f"objects ({len(snap.objects)}):")
    out += [f"  {o.paddr:#x} {o.type} size={o.size:#x}" for o in snap.objects]
    out.append(f"untypeds ({len(snap.untypeds)}):")
    out += [f"  {u.paddr:#x} 2^{u.size_bits}{' device' if u.is_device else ''} "
            f"free={u.free_bytes:#x} children={u.children} slot={u.slot}" for u in snap.untypeds]
    out.append(f"derivation ({len(snap.derivation)} links):")
    children: dict[str, list[str]] = {}
    has_parent = set()
    for link in snap.derivation:
        children.setdefault(link.parent, []).append(link.child)
        has_parent.add(link.child)
    roots = [parent for parent in children if parent not in has_parent]
    _tree_lines(roots, 0, lambda sid: f"{_slot_title(snap, sid)}: {format_cap(snap.caps.get(sid))}",
                lambda sid: children.get(sid, []), out)
    if snap.mcs is not None:
        out += mcs_lines(snap.mcs)
    return "\n".join(out) + "\n"


def to_json(snap: Snapshot) -> dict[str, Any]:
    """A JSON-able dict (what ``dataclasses.asdict`` gives, made without recursion); paddrs
    are integers. Write it with :func:`to_json_text`: ``json.dumps`` recurses once per
    level, and a CSpace tree is three levels per CNode."""
    plain: dict[str, Any] = as_plain(snap)
    return plain


def to_json_text(snap: Snapshot) -> str:
    """The JSON form as text: ``json.dumps(to_json(snap), indent=1)``, written without
    recursion (:func:`kernel.views.json_form.json_text`, which also stops indenting at
    its depth limit)."""
    return json_text(to_json(snap), indent=1)


def _container(sid: str) -> str:
    return sid.split("[", 1)[0].split(".", 1)[0]


DOT_RUN: Final = 4
"""Consecutive slots of one container holding caps alike (same type and fields but for
addresses, badges and names) that the picture draws as one node."""
DOT_COLUMN: Final = 24
"""Nodes a container stacks in one column of the picture before starting the next."""
DOT_TCB_COLUMN: Final = 6
"""TCBs the picture stacks in one column before starting the next."""

_RUN_VARYING: Final = frozenset({"vaddr", "badge", "free_bytes", "name"})


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _index(sid: str) -> int | None:
    """A CNode slot's index (None for a TCB's own slot)."""
    if not sid.endswith("]"):
        return None
    return int(sid[sid.index("[") + 1 : -1])


def _run_key(cap: CapView) -> tuple[object, ...]:
    return (cap.type, tuple((k, v) for k, v in cap.fields.items() if k not in _RUN_VARYING))


def _runs(snap: Snapshot, sids: list[str]) -> list[list[str]]:
    """``sids`` (one container's, in slot order) cut into runs of alike caps in
    consecutive slots; a run shorter than :data:`DOT_RUN` is cut into single slots."""
    runs: list[list[str]] = []
    current: list[str] = []
    for sid in sids:
        index = _index(sid)
        if current:
            last = _index(current[-1])
            if (index is not None and last is not None and index == last + 1
                    and _run_key(snap.caps[sid]) == _run_key(snap.caps[current[-1]])):
                current.append(sid)
                continue
            runs.extend([current] if len(current) >= DOT_RUN else [[x] for x in current])
        current = [sid]
    if current:
        runs.extend([current] if len(current) >= DOT_RUN else [[x] for x in current])
    return runs


def _span(first: int | str | bool | None, last: int | str | bool | None, hex_: bool) -> str:
    show = (lambda v: f"{v:#x}") if hex_ else str
    return show(first) if first == last else f"{show(first)}..{show(last)}"


def _run_label(snap: Snapshot, container: str, run: list[str]) -> str:
    if len(run) == 1:
        return run[0][len(container):] + " " + format_cap(snap.caps[run[0]])
    first, last = snap.caps[run[0]], snap.caps[run[-1]]
    parts = [f"[{_index(run[0])}..{_index(run[-1])}] {len(run)}x {first.type}"]
    if first.paddr is not None:
        parts.append(_span(first.paddr, last.paddr, True))
    for key, value in first.fields.items():
        if key in _RUN_VARYING and last.fields.get(key) != value:
            parts.append(f"{key}={_span(value, last.fields.get(key), key in _HEX_FIELDS)}")
        else:
            parts.append(f"{key}={_field(key, value)}")
    return " ".join(parts)


def to_dot(snap: Snapshot) -> str:
    """A Graphviz digraph of the caps and their derivation: a node per non-empty slot,
    clustered by the CNode or TCB that holds it (a TCB's cluster named after its
    thread), and an edge from each derivation parent to its child.

    Drawn to stay readable with hundreds of caps: :data:`DOT_RUN` or more alike caps in
    consecutive slots (a retype's objects, a copied image's frames) are one node
    ``[first..last] Nx type ...`` named after the first slot, the edges between two
    nodes are one edge labelled with their count (links inside one run are not drawn),
    a container's nodes stand in columns of :data:`DOT_COLUMN` and the TCBs in columns
    of :data:`DOT_TCB_COLUMN` (invisible edges, ``style=invis``, hold columns apart).
    """
    out = ["digraph capsule {", "  rankdir=LR;", "  ranksep=0.5;", "  nodesep=0.06;",
           '  node [shape=box, fontname="monospace", fontsize=10, height=0.2, '
           'margin="0.06,0.02"];', "  edge [arrowsize=0.6];"]
    kinds = {f"{o.paddr:#x}": o.type for o in snap.objects if o.type in ("CNode", "TCB")}
    clusters: dict[str, list[str]] = {}
    for sid in snap.caps:
        clusters.setdefault(_container(sid), []).append(sid)
    node_of: dict[str, str] = {}
    tcb_firsts: list[str] = []
    for n, (container, sids) in enumerate(clusters.items()):
        sids.sort(key=lambda sid: (_index(sid) is not None, _index(sid) or 0))
        name = snap.thread_names.get(container)
        title = f"TCB {name} {container}" if name is not None else \
            f"{kinds.get(container, '')} {container}".strip()
        out += [f"  subgraph cluster_{n} {{", f'    label="{_dot_text(title)}";',
                '    style=rounded;']
        nodes = []
        for run in _runs(snap, sids):
            for sid in run:
                node_of[sid] = run[0]
            nodes.append(run[0])
            out.append(f'    "{run[0]}" [label="{_dot_text(_run_label(snap, container, run))}"];')
        out += [f'    "{a}" -> "{b}" [style=invis];' for a, b in zip(nodes, nodes[DOT_COLUMN:])]
        out.append("  }")
        if name is not None:
            tcb_firsts.append(nodes[0])
    out += [f'  "{a}" -> "{b}" [style=invis];'
            for a, b in zip(tcb_firsts, tcb_firsts[DOT_TCB_COLUMN:])]
    edges: dict[tuple[str, str], int] = {}
    for link in snap.derivation:
        parent, child = node_of.get(link.parent), node_of.get(link.child)
        if parent is not None and child is not None and parent != child:
            edges[(parent, child)] = edges.get((parent, child), 0) + 1
    for (parent, child), count in edges.items():
        out.append(f'  "{parent}" -> "{child}"' + (f' [label="{count}"];' if count > 1 else ";"))
    out.append("}")
    return "\n".join(out) + "\n"
