"""Narrowing a :class:`~kernel.views.render.Snapshot` to what a user asks about.

A snapshot of a whole system is mostly what boot made: a cap for every page of the root
task's image, for its page tables, and one per untyped region. These functions take a
snapshot and return a smaller one (plain data in, plain data out; nothing here reads the
kernel); ``capsule cspace`` applies :func:`hide_boot_caps` unless asked for everything:

- :func:`hide_boot_caps`: leave out the caps boot made for the root task's own image
  (seL4_BootInfo's ``userImageFrames`` and ``userImagePaging`` regions) and the untyped
  caps of its ``untyped`` region that nothing was retyped from yet. What a program made
  stays, and so do the untypeds it used (they are the parents of what it made).
- :func:`hide_types`: leave out every cap of some types (``frame``, ``untyped``, ...).
- :func:`only_thread`: one thread's CSpace: the slots of its CSpace tree and its TCB's own
  slots; the objects, untypeds and derivation links among them.
- :func:`only_subtree`: one cap's derivation subtree (a slot id), or that of every cap to
  one object (its address; an untyped and the first object retyped from it share one,
  and the object is meant): the caps, their objects and links, and the CSpace trees cut
  down to the paths that lead to them.

Each records what it left out in ``Snapshot.hidden`` (kind -> count), which the text form
prints as one line. :func:`choose_thread` turns a ``--thread`` argument into one thread:
a name, ``NAME#N`` (the Nth thread of that name, in creation order) or a TCB address; a
name two threads share is a :class:`ChoiceError` listing them.

Every walk of a CSpace tree here is iterative (DESIGN.md decision 9).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Final

from kernel.bootinfo import BootInfo
from kernel.records import dataclass
from kernel.views.mcs import McsView
from kernel.views.render import (
    CapView,
    CNodeView,
    ObjectView,
    SlotView,
    Snapshot,
    ThreadView,
)

__all__ = [
    "BootCaps", "ChoiceError", "choose_thread", "hide_boot_caps", "hide_types", "only_subtree",
    "only_thread",
]

_TCB_SLOTS: Final = ("ctable", "vtable", "reply", "caller", "ipc_buffer_frame")

_OBJECT_OF_CAP: Final = {
    "untyped": "Untyped", "frame": "Frame", "page_table": "PageTable", "vspace": "VSpace",
    "cnode": "CNode", "thread": "TCB", "endpoint": "Endpoint", "notification": "Notification",
    "asid_pool": "ASIDPool", "sched_context": "SchedContext", "reply": "Reply",
}
"""The object type (as ``ObjectView.type`` names it) a cap of each type refers to."""

_CAP_ONLY_OBJECTS: Final = frozenset({"Untyped", "Frame", "PageTable", "VSpace"})
"""Objects that exist only as caps: shown only while a shown cap refers to them."""


class ChoiceError(Exception):
    """A ``--thread`` or ``--subtree`` argument that names nothing, or more than one
    thread; the message is one line that says what there is to choose from."""


@dataclass(frozen=True, slots=True)
class BootCaps:
    """Where boot put the caps :func:`hide_boot_caps` leaves out: the root task's root
    CNode and four of seL4_BootInfo's slot regions (``(start, end)``, end exclusive)."""

    root_cnode: int
    image_frames: tuple[int, int]
    image_paging: tuple[int, int]
    untyped: tuple[int, int]
    extra_frames: tuple[int, int] = (0, 0)

    @classmethod
    def of(cls, bootinfo: BootInfo, root_cnode: int) -> BootCaps:
        """From what boot told the root task and the address of its root CNode."""
        return cls(root_cnode, bootinfo.user_image_frames, bootinfo.user_image_paging,
                   bootinfo.untyped, bootinfo.extra_pages)


# --- choosing -------------------------------------------------------------------------


def choose_thread(snap: Snapshot, spec: str) -> ThreadView:
    """The thread ``spec`` names: ``NAME``, ``NAME#N`` or the TCB address ``0x...``.

    Raises:
        ChoiceError: no such thread, or ``NAME`` is the name of several (listed, each
            with its ``NAME#N`` and address).
    """
    threads = snap.threads
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", spec):
        paddr = int(spec, 16)
        for thread in threads:
            if thread.paddr == paddr:
                return thread
        raise ChoiceError(f"no thread has its TCB at {spec} (threads: {_listing(threads)})")
    named = [t for t in threads if t.name == spec]
    if len(named) == 1:
        return named[0]
    numbered = re.fullmatch(r"(.*)#(\d+)", spec)
    if not named and numbered is not None:
        same = [t for t in threads if t.name == numbered.group(1)]
        number = int(numbered.group(2))
        if 1 <= number <= len(same):
            return same[number - 1]
        if same:
            raise ChoiceError(f"there are {len(same)} threads named {numbered.group(1)!r}, "
                              f"not {number}: {_listing(same, numbered.group(1))}")
    if not named:
        raise ChoiceError(f"no thread named {spec!r} (threads: {_listing(threads)})")
    raise ChoiceError(f"{len(named)} threads are named {spec!r}: {_listing(named, spec)}; "
                      f"choose one by NAME#N or by its TCB address")


def _listing(threads: Collection[ThreadView], name: str | None = None) -> str:
    """``a, b, ...`` or, for threads that share ``name``, ``name#1 (tcb 0x...), ...``."""
    if name is None:
        return ", ".join(t.name for t in threads) or "none"
    return ", ".join(f"{name}#{n} (tcb {t.paddr:#x})" for n, t in enumerate(threads, start=1))


# --- filters ----------------------------------------------------------------------------


def hide_boot_caps(snap: Snapshot, boot: BootCaps) -> Snapshot:
    """``snap`` without the root task's image frame and page-table caps, its extra
    bootinfo frame caps and its unused untyped caps, where boot put them (see the module docstring)."""
    parents = {link.parent for link in snap.derivation}
    regions = (("image frame caps", boot.image_frames, {"frame"}),
               ("image page-table caps", boot.image_paging, {"page_table", "vspace"}),
               ("extra bootinfo frame caps", boot.extra_frames, {"frame"}),
               ("unused untyped caps", boot.untyped, {"untyped"}))
    hidden: dict[str, int] = {}
    out: set[str] = set()
    for what, (start, end), types in regions:
        for index in range(start, end):
            sid = f"{boot.root_cnode:#x}[{index}]"
            cap = snap.caps.get(sid)
            if cap is None or cap.type not in types:
                continue
            if what == "unused untyped caps" and sid in parents:
                continue
            out.add(sid)
            hidden[what] = hidden.get(what, 0) + 1
    return _keep(snap, lambda sid: sid not in out, hidden, scoped=False)


def hide_types(snap: Snapshot, types: Collection[str]) -> Snapshot:
    """``snap`` without the caps of ``types`` (cap type names, as the views show them)."""
    hidden: dict[str, int] = {}
    out = set()
    for sid, cap in snap.caps.items():
        if cap.type in types:
            out.add(sid)
            hidden[f"{cap.type} caps"] = hidden.get(f"{cap.type} caps", 0) + 1
    return _keep(snap, lambda sid: sid not in out, hidden, scoped=False)


def only_thread(snap: Snapshot, thread: ThreadView) -> Snapshot:
    """``thread``'s CSpace (its tree and its TCB's own slots) and what they refer to."""
    shown = {view.id for view in _tree(thread.cspace_root)}
    shown |= {f"{thread.paddr:#x}.{name}" for name in _TCB_SLOTS}
    narrowed = _keep(snap, shown.__contains__, {}, scoped=True)
    return replace(narrowed, threads=[t for t in narrowed.threads if t.paddr == thread.paddr])


def only_subtree(snap: Snapshot, spec: str) -> Snapshot:
    """The derivation subtree of the slot ``spec`` (``0xCONTAINER[INDEX]`` or
    ``0xTCB.NAME``, as the views write slot ids) or of every cap to the object at
    ``spec`` (``0xADDRESS``), with the CSpace paths that lead to its caps.

    Raises:
        ChoiceError: ``spec`` is neither, or names an empty slot / an object no cap
            refers to.
    """
    roots = _subtree_roots(snap, spec)
    children: dict[str, list[str]] = {}
    for link in snap.derivation:
        children.setdefault(link.parent, []).append(link.child)
    shown: set[str] = set()
    pending = list(roots)
    while pending:
        sid = pending.pop()
        if sid not in shown:
            shown.add(sid)
            pending.extend(children.get(sid, []))
    return _keep(snap, shown.__contains__, {}, scoped=True)


def _subtree_roots(snap: Snapshot, spec: str) -> list[str]:
    slot = re.fullmatch(r"0[xX]([0-9a-fA-F]+)(?:\[(\d+)\]|\.(\w+))", spec)
    if slot is not None:
        container = f"{int(slot.group(1), 16):#x}"
        sid = f"{container}[{slot.group(2)}]" if slot.group(2) else f"{container}.{slot.group(3)}"
        if sid not in snap.caps:
            raise ChoiceError(f"slot {spec} holds no cap")
        return [sid]
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", spec):
        paddr = int(spec, 16)
        roots = [sid for sid, cap in snap.caps.items() if cap.paddr == paddr]
        if not roots:
            raise ChoiceError(f"no cap refers to an object at {spec}")
        # The first object retyped from an untyped shares its address: that object is
        # meant (the untyped's subtree is its slot's).
        made = [sid for sid in roots if snap.caps[sid].type != "untyped"]
        return made or roots
    raise ChoiceError(f"{spec!r} is neither a slot (0xCNODE[INDEX], 0xTCB.ctable) nor an "
                      "object address (0xADDRESS)")


# --- the common part ---------------------------------------------------------------------


def _tree(root: SlotView) -> list[SlotView]:
    """``root`` and every slot view below it, pre-order (iteratively)."""
    out: list[SlotView] = []
    pending = [root]
    while pending:
        view = pending.pop()
        out.append(view)
        if view.cnode is not None:
            pending.extend(reversed(view.cnode.slots))
    return out


def _pruned(root: SlotView, shown: Callable[[str], bool]) -> SlotView | None:
    """``root``'s tree keeping the slots in ``shown`` and the CNode slots on the way to
    them; None if nothing is left. Children are rebuilt before their parents (reverse
    pre-order), so no recursion."""
    built: dict[int, SlotView | None] = {}
    for view in reversed(_tree(root)):
        if view.cnode is None:
            built[id(view)] = view if shown(view.id) else None
            continue
        kept = [child for child in (built[id(s)] for s in view.cnode.slots) if child is not None]
        if kept or shown(view.id):
            built[id(view)] = replace(view, cnode=CNodeView(view.cnode.paddr, view.cnode.radix, kept,
                                                                   view.cnode.server))
        else:
            built[id(view)] = None
    return built[id(root)]


def _object_key(cap: CapView) -> tuple[str, int] | None:
    kind = _OBJECT_OF_CAP.get(cap.type)
    return None if kind is None or cap.paddr is None else (kind, cap.paddr)


def _keep(snap: Snapshot, shown: Callable[[str], bool], hidden: dict[str, int],
          scoped: bool) -> Snapshot:
    """``snap`` with only the slots ``shown`` accepts (by id): the links between them, their untypeds,
    the CSpace trees cut down to them (a thread's ctable root always stays unless
    ``scoped``: then a thread with nothing shown goes). Objects: with ``scoped`` only
    those a shown cap refers to; else every object with kernel state, and cap-only
    objects while a shown cap refers to them. MCS scheduling contexts and reply objects
    likewise: with ``scoped``, those a shown cap refers to (the release queue stays)."""
    caps = {sid: cap for sid, cap in snap.caps.items() if shown(sid)}
    referred = {key for key in map(_object_key, caps.values()) if key is not None}
    objects: list[ObjectView] = [
        o for o in snap.objects
        if (o.type, o.paddr) in referred or (not scoped and o.type not in _CAP_ONLY_OBJECTS)]
    threads: list[ThreadView] = []
    for thread in snap.threads:
        root = _pruned(thread.cspace_root, shown)
        if root is None and scoped:
            continue
        if root is None:
            root = replace(thread.cspace_root, cnode=None if thread.cspace_root.cnode is None
                           else CNodeView(thread.cspace_root.cnode.paddr,
                                          thread.cspace_root.cnode.radix, [],
                                          thread.cspace_root.cnode.server))
        threads.append(replace(thread, cspace_root=root))
    mcs = snap.mcs
    if mcs is not None and scoped:
        mcs = McsView([sc for sc in mcs.sched_contexts if ("SchedContext", sc.paddr) in referred],
                      [r for r in mcs.replies if ("Reply", r.paddr) in referred],
                      mcs.release_queue)
    merged = dict(snap.hidden)
    for what, count in hidden.items():
        merged[what] = merged.get(what, 0) + count
    return replace(
        snap, threads=threads, objects=objects, caps=caps, hidden=merged, mcs=mcs,
        untypeds=[u for u in snap.untypeds if shown(u.slot)],
        derivation=[link for link in snap.derivation if shown(link.parent) and shown(link.child)])
