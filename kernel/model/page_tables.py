"""Walking and editing the page tables that live in RAM.

The tables are real: the emulated MMU reads the very words these functions write. The
kernel uses the same walk to translate user addresses when it must touch user memory
itself and to describe faults.
"""

from __future__ import annotations

from kernel.machine import Machine
from kernel.model.paging import Access, PagingFormat, PteKind
from kernel.records import dataclass

__all__ = ["Translation", "read_entry", "translate", "walk", "write_entry"]


def read_entry(machine: Machine, table_paddr: int, index: int) -> int:
    return machine.read_table_entry(table_paddr, index)


def write_entry(machine: Machine, table_paddr: int, index: int, entry: int) -> None:
    machine.write_table_entry(table_paddr, index, entry)


@dataclass(frozen=True, slots=True)
class Translation:
    """Where a walk for ``vaddr`` ended.

    ``kind`` is LEAF when a mapping was found (``paddr`` is then the translated address);
    INVALID when the walk met an empty entry at ``level`` (a missing table or page).
    """

    kind: PteKind
    level: int
    entry: int
    paddr: int


def walk(machine: Machine, fmt: PagingFormat, root: int, vaddr: int) -> Translation:
    """Descend from ``root`` towards ``vaddr`` until a leaf or an invalid entry."""
    table = root
    for level in range(fmt.levels):
        entry = read_entry(machine, table, fmt.index(level, vaddr))
        kind, target = fmt.decode(entry, level)
        if kind is PteKind.INVALID:
            return Translation(PteKind.INVALID, level, entry, 0)
        if kind is PteKind.LEAF:
            offset = vaddr & ((1 << fmt.shifts[level]) - 1)
            return Translation(PteKind.LEAF, level, entry, target + offset)
        table = target
    return Translation(PteKind.INVALID, fmt.levels - 1, 0, 0)


def grant_deferred_execute(machine: Machine, fmt: PagingFormat, root: int, vaddr: int) -> bool:
    """Grant the execute permission the leaf mapping ``vaddr`` defers, writing its entry
    (``kernel.model.paging``'s module docstring); False, writing nothing, if that leaf
    defers none or there is no leaf. The caller flushes the TLB."""
    table = root
    for level in range(fmt.levels):
        index = fmt.index(level, vaddr)
        entry = read_entry(machine, table, index)
        kind, target = fmt.decode(entry, level)
        if kind is PteKind.INVALID:
            return False
        if kind is PteKind.LEAF:
            granted = fmt.granted_execute(entry)
            if granted is None:
                return False
            write_entry(machine, table, index, granted)
            return True
        table = target
    return False


def translate(
    machine: Machine, fmt: PagingFormat, root: int, vaddr: int, access: Access
) -> int | None:
    """The physical address user code reaches at ``vaddr`` with ``access``, or None."""
    result = walk(machine, fmt, root, vaddr)
    if result.kind is not PteKind.LEAF or not fmt.allows(result.entry, access):
        return None
    return result.paddr
