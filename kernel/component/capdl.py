"""A captured component as capDL text: the ``objects``, ``caps`` and ``cdt`` sections.

capDL (seL4's Capability Distribution Language) describes a system as its objects, the
caps in each container and, optionally, the derivation tree. :func:`to_capdl` writes a
:class:`~kernel.component.model.Component` in that notation (written here from the
language's description; none of seL4's capDL tools is used):

- ``objects``: one declaration per object, ``name = type (attributes)``; what lies in an
  untyped of the component is declared inside it (``ut_3 = ut (16 bits) { ... }``).
  External objects are declared too, after a comment saying they are the identity map's.
- ``caps``: one block per container. CNode slots by index (``0x5: ep_2 (RW, badge:
  0x11)``), TCB slots by capDL's names (``cspace``, ``vspace``, ``ipc_buffer_slot``),
  and the component's own page tables as containers of their entries (``0x40: frame_4
  (RW)``), which is how capDL states a mapping. A mapping into an external VSpace, an
  untyped's watermark and a thread's registers have no capDL form: they are comments
  (``--``), and capsule's own format (:func:`kernel.component.model.to_json`) keeps them.
- ``cdt``: each cap that has a parent in the component, under it: ``(cnode_1, 0x2) {
  (cnode_1, 0x3) }``; TCB slots are numbered as seL4 orders them (cspace 0 .. 4).

Deterministic: the same component gives the same text.
"""

from __future__ import annotations

from typing import Final

from kernel.abi.arch import Arch
from kernel.abi.constants import CapRights
from kernel.model.platform import model_for

from .model import CapRecord, Component, ObjectRecord

__all__ = ["to_capdl"]

_TCB_SLOTS: Final = ("cspace", "vspace", "reply", "caller", "ipc_buffer_slot")
"""capDL's names for a TCB's slots, in seL4's order (``model.TCB_SLOT_NAMES``)."""
_CAPDL_ARCH: Final = {"riscv64": "riscv", "aarch64": "aarch64"}
_RIGHT_LETTERS: Final = ((CapRights.seL4_CanRead, "R"), (CapRights.seL4_CanWrite, "W"),
                  (CapRights.seL4_CanGrant, "G"), (CapRights.seL4_CanGrantReply, "P"))


def _rights(word: int) -> str:
    return "".join(letter for bit, letter in _RIGHT_LETTERS if word & int(bit))


def _size_word(bits: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("k", 10)):
        if bits >= shift:
            return f"{1 << (bits - shift)}{unit}"
    return f"{1 << bits}"


def _declaration(record: ObjectRecord, arch: str) -> str:
    name = record.name
    match record.type:
        case "tcb":
            t = record.thread
            assert t is not None
            sp_index = 2 if arch == "riscv64" else 1
            return (f"{name} = tcb (addr: {t.ipc_buffer:#x}, ip: {t.registers[0]:#x}, "
                    f"sp: {t.registers[sp_index]:#x}, prio: {t.priority}, "
                    f"max_prio: {t.mcp}, dom: {t.domain}, fault_ep: {t.fault_ep:#x})"
                    f" -- {t.name!r}, {t.state}")
        case "cnode":
            return f"{name} = cnode ({record.size_bits} bits)"
        case "endpoint":
            return f"{name} = ep"
        case "notification":
            return f"{name} = notification"
        case "frame":
            return f"{name} = frame ({_size_word(record.size_bits)})"
        case "page_table":
            return f"{name} = pt"
        case "vspace":
            return f"{name} = pgd"
        case "untyped":
            return f"{name} = ut ({record.size_bits} bits)"
    return f"{name} = {record.type}"


def _cap_text(record: CapRecord, mapping_note: bool) -> str:
    attrs: list[str] = []
    if record.type in ("endpoint", "notification", "frame"):
        attrs.append(_rights(record.rights))
    if record.badge:
        attrs.append(f"badge: {record.badge:#x}")
    if record.type == "cnode":
        attrs += [f"guard: {record.guard:#x}", f"guard_size: {record.guard_size}"]
    text = record.object + (f" ({', '.join(attrs)})" if attrs else "")
    notes = []
    if record.type == "untyped":
        notes.append(f"watermark {record.free_index << 4:#x}")
    if mapping_note and record.mapping is not None:
        m = record.mapping
        notes.append("ASID of " + m.vspace if m.level < 0 else
                     f"mapped in {m.vspace} at {m.vaddr:#x} (level {m.level})")
    return text + (f" -- {'; '.join(notes)}" if notes else "")


_VM_RIGHTS: Final = {"read-write": "RW", "read-only": "R", "kernel-only": ""}


def _entry_text(cap: CapRecord) -> str:
    """A table entry: the object it maps, with the mapping's VM rights (a frame) and
    whether it is executable (a comment: capDL has no word for it)."""
    m = cap.mapping
    if cap.type != "frame" or m is None:
        return cap.object
    rights = _VM_RIGHTS.get(m.rights, "")
    return cap.object + (f" ({rights})" if rights else "") + (" -- executable" if m.executable
                                                             else "")


def to_capdl(component: Component) -> str:
    """``component`` as capDL text (see the module docstring)."""
    lines = [f"-- the component of thread {component.thread} captured by capsule "
             f"({component.arch}); registers, frame bytes and external mappings are in "
             "capsule's own format",
             f"arch {_CAPDL_ARCH.get(component.arch, component.arch)}", "", "objects {"]
    inside: dict[str | None, list[ObjectRecord]] = {}
    for record in component.objects:
        inside.setdefault(record.inside, []).append(record)
    # Pre-order with explicit closing markers: untypeds nest to any depth.
    stack: list[tuple[ObjectRecord | None, int]] = [(r, 1) for r in reversed(inside.get(None, []))]
    while stack:
        item, depth = stack.pop()
        pad = "  " * depth
        if item is None:
            lines.append(pad + "}")
            continue
        held = inside.get(item.name, [])
        lines.append(pad + _declaration(item, component.arch) + (" {" if held else ""))
        if held:
            stack.append((None, depth))
            stack.extend((r, depth + 1) for r in reversed(held))
    if component.externals:
        lines.append("  -- external: the caller's identity map names the existing object")
        for external in component.externals:
            if external.type in ("tcb", "asid_pool"):
                lines.append(f"  {external.name} = {external.type}")
            else:
                stand_in = ObjectRecord(external.name, external.type, external.size_bits, "")
                lines.append("  " + _declaration(stand_in, component.arch))
    lines += ["}", "", "caps {"]
    tables = _table_entries(component)
    containers: dict[str, list[CapRecord]] = {}
    for cap in component.caps:
        containers.setdefault(cap.container, []).append(cap)
    owned_tables = set(tables)
    for name, caps in containers.items():
        lines.append(f"  {name} {{")
        for cap in caps:
            where = _TCB_SLOTS[cap.index] if cap.in_tcb else f"{cap.index:#x}"
            in_table = cap.mapping is not None and cap.mapping.vspace in {
                o.name for o in component.objects}
            lines.append(f"    {where}: {_cap_text(cap, not in_table or cap.mapping is None)}")
        lines.append("  }")
    for table in sorted(owned_tables, key=lambda t: [o.name for o in component.objects].index(t)):
        lines.append(f"  {table} {{")
        for index, cap in sorted(tables[table]):
            lines.append(f"    {index:#x}: {_entry_text(cap)}")
        lines.append("  }")
    lines += ["}", "", "cdt {"]
    children: dict[str, list[CapRecord]] = {}
    for cap in component.caps:
        if cap.parent is not None:
            children.setdefault(cap.parent, []).append(cap)
    by_slot = {cap.slot: cap for cap in component.caps}
    for cap in component.caps:
        if cap.parent is not None or cap.slot not in children:
            continue
        # Each tree from its root, iteratively; nested blocks as capDL writes them.
        walk: list[tuple[CapRecord | None, int]] = [(cap, 1)]
        while walk:
            node, depth = walk.pop()
            pad = "  " * depth
            if node is None:
                lines.append(pad + "}")
                continue
            kids = children.get(node.slot, [])
            lines.append(pad + _cdt_ref(node) + (" {" if kids else ""))
            if kids:
                walk.append((None, depth))
                walk.extend((by_slot[k.slot], depth + 1) for k in reversed(kids))
    lines += ["}", ""]
    return "\n".join(lines)


def _cdt_ref(cap: CapRecord) -> str:
    return f"({cap.container}, {cap.index if cap.in_tcb else hex(cap.index)})"


def _table_entries(component: Component) -> dict[str, list[tuple[int, CapRecord]]]:
    """The entries of the component's own tables: table name -> [(index, cap)]."""
    owned = {o.name for o in component.objects}
    fmt = model_for(Arch.from_name(component.arch)).paging
    table_at: dict[tuple[str, int, int], str] = {}
    for cap in component.caps:
        m = cap.mapping
        if m is None or cap.type not in ("page_table", "vspace"):
            continue
        if m.level < 0:
            table_at[(m.vspace, 0, 0)] = cap.object
        else:
            table_at[(m.vspace, m.level + 1, m.vaddr >> fmt.shifts[m.level])] = cap.object
    entries: dict[str, list[tuple[int, CapRecord]]] = {}
    seen: set[tuple[str, int]] = set()
    for cap in component.caps:
        m = cap.mapping
        if m is None or m.level < 0 or m.vspace not in owned:
            continue
        key = (m.vspace, m.level, 0 if m.level == 0 else m.vaddr >> fmt.shifts[m.level - 1])
        table = table_at.get(key)
        if table is None or (table, fmt.index(m.level, m.vaddr)) in seen:
            continue
        seen.add((table, fmt.index(m.level, m.vaddr)))
        entries.setdefault(table, []).append((fmt.index(m.level, m.vaddr), cap))
    return entries

