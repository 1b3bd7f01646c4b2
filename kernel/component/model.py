"""One component's capability space as plain data: what capture makes and restore reads.

A :class:`Component` names every object by an *identity* (``cnode_1``, ``ep_4``: the
object's kind and its place in capture's traversal order), never by a physical address,
so it can be restored anywhere. It holds:

- ``objects``: the objects the component owns (:class:`ObjectRecord`): CNodes, TCBs
  (registers and scheduling state, :class:`ThreadRecord`), endpoints, notifications
  (pending word), frames (their bytes), page tables and VSpace roots, untypeds (size and
  the objects inside them, by offset). Reply objects and scheduling contexts will join
  when MCS exists: :data:`OBJECT_TYPES` is where their kinds go.
- ``externals``: objects the component refers to but does not own
  (:class:`ExternalRecord`): a server's endpoint made by someone else, the VSpace it
  shares. Restore maps each to an existing object through the caller's identity map.
- ``caps``: every cap of the component (:class:`CapRecord`), by container identity and
  slot index (a CNode's slot, or one of a TCB's own five slots), with its object's
  identity, its rights, badge, guard and radix, its mapping, its two derivation bits and
  its derivation parent *among the component's caps* (None: the parent is outside).

:func:`to_json` / :func:`from_json` are capsule's own format, byte-for-byte deterministic
(sorted keys, frame bytes zlib-compressed at a fixed level, base64). Every error of
capture, restore and the formats is a :class:`ComponentError` with a one-line message.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import field
from typing import Any, Final

from kernel.records import dataclass

__all__ = [
    "CapRecord",
    "Component",
    "ComponentError",
    "ExternalRecord",
    "MappingRecord",
    "OBJECT_TYPES",
    "ObjectRecord",
    "TCB_SLOT_NAMES",
    "ThreadRecord",
    "from_json",
    "slot_id",
    "to_json",
]

FORMAT: Final = "capsule-component/1"

OBJECT_TYPES: Final = ("tcb", "cnode", "endpoint", "notification", "frame", "page_table", "vspace",
                "untyped", "asid_pool")
"""Object kinds, as caps name them (``asid_pool`` only ever external). The seam for MCS:
``reply`` and ``sched_context`` are added here, with their records and their restore
steps, when capsule has them; a component holding one cannot be captured before."""

TCB_SLOT_NAMES: Final = ("ctable", "vtable", "reply", "caller", "ipc_buffer_frame")
"""A TCB's own slots by index (seL4's tcbCNodeEntries order)."""


class ComponentError(Exception):
    """Capture or restore refused, or a component file is malformed; one line says why."""


def slot_id(container: str, index: int, is_tcb: bool) -> str:
    """How a component slot is written: ``cnode_1[5]`` or ``tcb_0.ctable``."""
    return f"{container}.{TCB_SLOT_NAMES[index]}" if is_tcb else f"{container}[{index}]"


@dataclass(frozen=True, slots=True)
class ThreadRecord:
    """A TCB's state. ``registers`` are seL4_UserContext order, ``pc`` first: where the
    thread resumes. ``state`` is ``Inactive``, ``Running`` or ``Restart``; a thread that
    was blocked in a send, receive or wait is captured as ``Restart`` with its pc on the
    trap instruction (``was`` says which state it left), so it runs that system call
    again when restored, as seL4 restarts a cancelled IPC."""

    name: str
    state: str
    registers: tuple[int, ...]
    priority: int
    mcp: int
    domain: int
    time_slice: int
    ipc_buffer: int
    fault_ep: int
    flags: int
    after_syscall: bool
    bound_notification: str | None = None
    was: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One owned object. ``size_bits``: a CNode's radix, a frame's or untyped's size,
    else the object's log2 size. ``inside``/``offset``: the component untyped whose
    region holds it (innermost) and where; None when it came from outside the component
    (restore retypes it from the caller's untyped). ``found_at``: the first slot (or
    TCB field) capture reached it by."""

    name: str
    type: str
    size_bits: int
    found_at: str
    inside: str | None = None
    offset: int = 0
    thread: ThreadRecord | None = None
    data: bytes | None = None
    word: int = 0
    active: bool = False


@dataclass(frozen=True, slots=True)
class ExternalRecord:
    """An object outside the component: ``name`` is the caller's, ``type`` its kind."""

    name: str
    type: str
    size_bits: int
    found_at: str


@dataclass(frozen=True, slots=True)
class MappingRecord:
    """Where a frame or page-table cap maps its object: in the VSpace whose root is the
    object ``vspace`` (owned or external), at ``vaddr``, by an entry at ``level`` (0 is
    the root table). Frames also keep the entry's VM rights and execute permission.
    ``level`` -1 marks a VSpace root's own cap (it holds an ASID, no entry)."""

    vspace: str
    vaddr: int
    level: int
    rights: str = ""
    executable: bool = False


@dataclass(frozen=True, slots=True)
class CapRecord:
    """One cap, in slot ``index`` of ``container`` (a CNode's or a TCB's own slot).

    ``object`` is the identity of what it names (owned or external); ``rights`` the
    seL4_CapRights_t word (endpoint, notification, frame); ``badge``; ``guard`` and
    ``guard_size`` (CNode caps; the radix is the object's); ``free_index`` (an untyped
    cap's watermark, in 16-byte units); ``mapping`` for mapped frame and page-table caps
    and assigned VSpace roots; ``vaddr`` the address an unmapped AArch64 frame copy keeps.
    ``parent``: the slot id of the nearest derivation ancestor inside the component.
    """

    container: str
    index: int
    in_tcb: bool
    type: str
    object: str
    revocable: bool
    first_badged: bool
    parent: str | None = None
    rights: int = 0
    badge: int = 0
    guard: int = 0
    guard_size: int = 0
    free_index: int = 0
    mapping: MappingRecord | None = None
    vaddr: int = 0

    @property
    def slot(self) -> str:
        return slot_id(self.container, self.index, self.in_tcb)


@dataclass(frozen=True, slots=True)
class Component:
    """A captured component (see the module docstring)."""

    arch: str
    thread: str
    objects: tuple[ObjectRecord, ...]
    externals: tuple[ExternalRecord, ...]
    caps: tuple[CapRecord, ...]
    notes: tuple[str, ...] = field(default=())
    """What capture changed on the way (a blocked thread captured as Restart)."""

    def object(self, name: str) -> ObjectRecord:
        for record in self.objects:
            if record.name == name:
                return record
        raise ComponentError(f"the component has no object {name!r}")

    def cap_at(self, slot: str) -> CapRecord | None:
        for record in self.caps:
            if record.slot == slot:
                return record
        return None


# --- capsule's own format --------------------------------------------------------------


def _frame_bytes(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def to_json(component: Component) -> str:
    """The component in capsule's own format: one JSON document, deterministic."""

    def obj(record: ObjectRecord) -> dict[str, Any]:
        out: dict[str, Any] = {"name": record.name, "type": record.type,
                               "size_bits": record.size_bits, "found_at": record.found_at}
        if record.inside is not None:
            out["inside"], out["offset"] = record.inside, record.offset
        if record.thread is not None:
            thread = record.thread
            out["thread"] = {
                "name": thread.name, "state": thread.state, "registers": list(thread.registers),
                "priority": thread.priority, "mcp": thread.mcp, "domain": thread.domain,
                "time_slice": thread.time_slice, "ipc_buffer": thread.ipc_buffer,
                "fault_ep": thread.fault_ep, "flags": thread.flags,
                "after_syscall": thread.after_syscall,
                "bound_notification": thread.bound_notification, "was": thread.was}
        if record.data is not None:
            out["data_zlib_base64"] = _frame_bytes(record.data)
        if record.type == "notification":
            out["word"], out["active"] = record.word, record.active
        return out

    def cap(record: CapRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "container": record.container, "index": record.index, "in_tcb": record.in_tcb,
            "type": record.type, "object": record.object, "revocable": record.revocable,
            "first_badged": record.first_badged, "parent": record.parent,
            "rights": record.rights, "badge": record.badge, "guard": record.guard,
            "guard_size": record.guard_size, "free_index": record.free_index,
            "vaddr": record.vaddr}
        if record.mapping is not None:
            m = record.mapping
            out["mapping"] = {"vspace": m.vspace, "vaddr": m.vaddr, "level": m.level,
                              "rights": m.rights, "executable": m.executable}
        return out

    document = {
        "format": FORMAT, "arch": component.arch, "thread": component.thread,
        "objects": [obj(o) for o in component.objects],
        "externals": [{"name": e.name, "type": e.type, "size_bits": e.size_bits,
                       "found_at": e.found_at} for e in component.externals],
        "caps": [cap(c) for c in component.caps],
        "notes": list(component.notes),
    }
    return json.dumps(document, sort_keys=True, indent=1) + "\n"


def from_json(text: str) -> Component:
    """Read :func:`to_json`'s format. Raises ComponentError if it is not one."""
    try:
        document = json.loads(text)
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise ComponentError(f"not a {FORMAT} document")
        objects = []
        for o in document["objects"]:
            thread = None
            if "thread" in o:
                t = o["thread"]
                thread = ThreadRecord(
                    t["name"], t["state"], tuple(int(r) for r in t["registers"]),
                    t["priority"], t["mcp"], t["domain"], t["time_slice"], t["ipc_buffer"],
                    t["fault_ep"], t["flags"], bool(t["after_syscall"]),
                    t["bound_notification"], t["was"])
            data = None
            if "data_zlib_base64" in o:
                data = zlib.decompress(base64.b64decode(o["data_zlib_base64"]))
            objects.append(ObjectRecord(
                o["name"], o["type"], o["size_bits"], o["found_at"], o.get("inside"),
                o.get("offset", 0), thread, data, o.get("word", 0), bool(o.get("active", False))))
        externals = [ExternalRecord(e["name"], e["type"], e["size_bits"], e["found_at"])
                     for e in document["externals"]]
        caps = []
        for c in document["caps"]:
            m = c.get("mapping")
            mapping = None if m is None else MappingRecord(
                m["vspace"], m["vaddr"], m["level"], m["rights"], bool(m["executable"]))
            caps.append(CapRecord(
                c["container"], c["index"], bool(c["in_tcb"]), c["type"], c["object"],
                bool(c["revocable"]), bool(c["first_badged"]), c["parent"], c["rights"],
                c["badge"], c["guard"], c["guard_size"], c["free_index"], mapping, c["vaddr"]))
        return Component(document["arch"], document["thread"], tuple(objects),
                         tuple(externals), tuple(caps), tuple(document.get("notes", ())))
    except ComponentError:
        raise
    except (ValueError, KeyError, TypeError, zlib.error) as error:
        raise ComponentError(f"malformed component document: {type(error).__name__}: "
                             f"{error}") from None
