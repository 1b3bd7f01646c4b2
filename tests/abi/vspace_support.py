"""Frames, page tables and VSpaces made the way the root task makes them, for tests.

Every helper goes through real invocations (Untyped_Retype, ASIDPool Assign, Page Map,
PageTable Map) on a :class:`~tests.abi.support.System`, and asserts they succeed; the
method names are spelt per architecture here once.
"""

from __future__ import annotations

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.model.caps import FrameCap, PageTableCap, UntypedCap, VSpaceCap
from kernel.model.page_tables import translate
from kernel.model.paging import Access
from tests.abi.support import Reply, System

VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
BOOT_POOL = int(InitialCap.seL4_CapInitThreadASIDPool)
ROOT_ASID = 1
FREE_VA = 0x4000_0000
"""A 1 GiB-aligned address nothing in the root task's VSpace uses."""
RW, RO = 0b0011, 0b0010
"""seL4_CapRights words: read-write and read-only."""


def method(s: System, generic: str) -> int:
    """Label of ``generic`` ("PageMap", "PageTableUnmap", ...) on the system's arch."""
    return s.label(("RISCV" if s.arch is Arch.RISCV64 else "ARM") + generic)


def frame_type(s: System, bits: int) -> int:
    names = {
        Arch.RISCV64: {12: "seL4_RISCV_4K_Page", 21: "seL4_RISCV_Mega_Page",
                       30: "seL4_RISCV_Giga_Page"},
        Arch.AARCH64: {12: "seL4_ARM_SmallPageObject", 21: "seL4_ARM_LargePageObject",
                       30: "seL4_ARM_HugePageObject"},
    }
    return s.otype(names[s.arch][bits])


def pt_type(s: System) -> int:
    return s.otype("seL4_RISCV_PageTableObject" if s.arch is Arch.RISCV64
                   else "seL4_ARM_PageTableObject")


def default_attr(s: System) -> int:
    return 0 if s.arch is Arch.RISCV64 else 3


def make(s: System, otype: int, bits: int = 12, count: int = 1, device: bool = False) -> int:
    """Retype ``count`` objects of 2^bits into fresh slots from the first RAM (or
    device) untyped, largest first, that has room; returns the first slot."""
    first = s.free_slots(count)
    start, end = s.report.bootinfo.untyped
    ram = [i for i in range(start, end)
           if isinstance(s.cap(i), UntypedCap) and s.cap(i).is_device == device  # type: ignore[attr-defined]
           and s.cap(i).size_bits >= bits]  # type: ignore[attr-defined]
    for ut in sorted(ram, key=lambda i: -s.cap(i).size_bits):  # type: ignore[attr-defined]
        if s.retype(ut, otype, 0, first, count).label == 0:
            return first
    raise AssertionError(f"no untyped has room for {count} objects of 2^{bits} bytes")


def frame(s: System, bits: int = 12, device: bool = False) -> int:
    return make(s, frame_type(s, bits), bits, device=device)


def page_table(s: System) -> int:
    return make(s, pt_type(s))


def new_vspace(s: System) -> int:
    """A fresh VSpace root with an ASID from the boot pool."""
    slot = make(s, s.vspace_type)
    assert s.assign(BOOT_POOL, slot).label == 0
    return slot


def page_map(s: System, frame_slot: int, vspace: int, vaddr: int, rights: int = RW,
             attr: int | None = None, length: int | None = None,
             extra: list[int] | None = None) -> Reply:
    args = [vaddr, rights, default_attr(s) if attr is None else attr]
    return s.call(frame_slot, method(s, "PageMap"), args,
                  extra=[vspace] if extra is None else extra, length=length)


def page_unmap(s: System, frame_slot: int) -> Reply:
    return s.call(frame_slot, method(s, "PageUnmap"))


def get_address(s: System, frame_slot: int) -> Reply:
    return s.call(frame_slot, method(s, "PageGetAddress"))


def pt_map(s: System, pt: int, vspace: int, vaddr: int, length: int | None = None,
           extra: list[int] | None = None) -> Reply:
    return s.call(pt, method(s, "PageTableMap"), [vaddr, default_attr(s)],
                  extra=[vspace] if extra is None else extra, length=length)


def pt_unmap(s: System, pt: int) -> Reply:
    return s.call(pt, method(s, "PageTableUnmap"))


def tables_for(s: System, vspace: int, vaddr: int, levels: int | None = None,
               page_bits: int = 12) -> list[int]:
    """Map fresh page tables covering ``vaddr``: ``levels`` of them, or (None) as many
    as a page of 2^page_bits needs there. Returns their slots, top first."""
    from kernel.objects.page_table import lookup_pt_slot

    slots = []
    while (len(slots) < levels if levels is not None else
           lookup_pt_slot(s.kernel, root_of(s, vspace), vaddr).bits_left > page_bits):
        pt = page_table(s)
        assert pt_map(s, pt, vspace, vaddr).label == 0
        slots.append(pt)
    return slots


def root_of(s: System, vspace: int) -> int:
    cap = s.cap(vspace)
    assert isinstance(cap, (PageTableCap, VSpaceCap))
    return cap.paddr


def reaches(s: System, vspace: int, vaddr: int, access: Access = Access.READ) -> int | None:
    """The physical address user code in ``vspace`` reaches at ``vaddr``, or None."""
    return translate(s.machine, s.kernel.paging, root_of(s, vspace), vaddr, access)


def frame_cap(s: System, slot: int) -> FrameCap:
    cap = s.cap(slot)
    assert isinstance(cap, FrameCap)
    return cap
