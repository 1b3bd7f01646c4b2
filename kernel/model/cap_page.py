"""The kernel's record of where capability pages are mapped (capsule's capability-page
extension, **not seL4**; ``kernel.abi.extensions``, ``kernel.objects.cap_page``).

A capability page mapped into a VSpace has no page-table entry: the hardware entry stays
invalid, so every data access or instruction fetch there faults, and the kernel's VM
fault path looks here to tell a type fault (a capability page is mapped there) from a
missing page. ``KernelState.cap_page_maps`` maps (ASID, page vaddr) to a
:class:`CapPageMapping`.

Invariants (``kernel.views.invariants``):
- each record is the mapping of exactly one live capability-page cap whose
  ``mapped_asid``/``mapped_vaddr`` are its key, with the record's restrictions;
- no frame is mapped at a page a record covers (Map refuses, and Page Map refuses a
  page where a capability page is mapped).
A record whose ASID no longer resolves to ``root`` is stale (its VSpace went away) and
means nothing; it goes with its cap.
"""

from __future__ import annotations

from kernel.records import dataclass

__all__ = ["CapPageMapping", "covers", "drop_mapping"]


@dataclass(frozen=True, slots=True)
class CapPageMapping:
    """The capability page at ``page`` (its physical address) mapped in the VSpace whose
    root is at ``root``, read-only and / or weak through this mapping."""

    root: int
    page: int
    read_only: bool
    weak: bool


def covers(maps: dict[tuple[int, int], CapPageMapping], asid: int, root: int, vaddr: int,
           size: int) -> bool:
    """Whether a capability page is mapped inside ``[vaddr, vaddr + size)`` of the VSpace
    at ``root`` with ``asid`` (a stale record, of an earlier VSpace that had the ASID,
    does not count)."""
    return any(a == asid and vaddr <= v < vaddr + size and record.root == root
               for (a, v), record in maps.items())


def drop_mapping(maps: dict[tuple[int, int], CapPageMapping], asid: int, vaddr: int,
                 page: int) -> None:
    """Forget the mapping at (``asid``, ``vaddr``) if it is of the page at ``page`` (a cap
    that still says it is mapped after another replaced its stale mapping touches
    nothing)."""
    record = maps.get((asid, vaddr))
    if record is not None and record.page == page:
        del maps[(asid, vaddr)]
