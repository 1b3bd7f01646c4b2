"""Page, PageTable and VSpace invocations: the error matrix of both architectures.

Each refused case has a stable ID (VSPACE0xxx), runs on the architectures whose seL4
refuses it that way, and asserts the reply's error code and words and that nothing
changed: the root CNode's slots with their CDT links, the kernel objects, the ASID
table and every pool's entries, and RAM (page tables included) outside the IPC buffer.

Expected values follow seL4 16.0.0's decoders (src/arch/riscv/kernel/vspace.c,
src/arch/arm/64/kernel/vspace.c; abi/vspace.md). Where the two differ, each case says
which architecture it is for: RISC-V checks the user limit before alignment and
refuses to map over a valid entry (DeleteFirst); AArch64 checks alignment first, then
(for an unmapped frame) the limit, and replaces a valid entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from kernel.model.caps import UntypedCap
from tests.abi.support import CNODE, Reply, System
from tests.abi.vspace_support import (
    FREE_VA,
    RO,
    VSPACE,
    frame,
    get_address,
    make,
    method,
    new_vspace,
    page_map,
    page_table,
    pt_map,
    reaches,
    tables_for,
)

TCB_CAP = int(InitialCap.seL4_CapInitThreadTCB)
BOTH = (Arch.RISCV64, Arch.AARCH64)
RV = (Arch.RISCV64,)
ARM = (Arch.AARCH64,)
INVALID_ROOT, MISSING = 1, 2
"""seL4_LookupFailureType values in a FailedLookup reply (word 1)."""
IL, TM, IC, IA = (Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage,
                  Error.seL4_InvalidCapability, Error.seL4_InvalidArgument)
AL, FL, DF, RF, RANGE = (Error.seL4_AlignmentError, Error.seL4_FailedLookup,
                         Error.seL4_DeleteFirst, Error.seL4_RevokeFirst,
                         Error.seL4_RangeError)
RV_TOP = 0x3F_FFFF_F000
"""seL4_UserTop on RISC-V (exclusive)."""
ARM_END = 0x8000_0000_0000
"""First address past the AArch64 user range: seL4_UserTop (0x7fffffffffff, inclusive) + 1."""
MB2 = 1 << 21


def top(s: System) -> int:
    """The first address past the user range on ``s``'s architecture."""
    return RV_TOP if s.arch is Arch.RISCV64 else ARM_END


def snapshot(s: System) -> tuple[object, ...]:
    slots = tuple((x.cap, x.mdb_prev, x.mdb_next, x.revocable, x.first_badged)
                  for x in s.slots.every())
    pools = tuple((i, p.paddr, tuple(sorted(p.roots.items())))
                  for i, p in sorted(s.kernel.asid_table.items()))
    ram = bytearray(s.machine.ram)
    page = (s.ipc_paddr() & ~0xFFF) - s.machine.ram_base
    ram[page : page + 0x1000] = bytes(0x1000)
    return (slots, tuple(sorted(s.kernel.objects)), pools, bytes(ram), s.kernel.stop,
            (s.machine.root, s.machine.asid))


# --- building blocks --------------------------------------------------------------------


def mapped_frame(s: System, vspace: int = VSPACE, vaddr: int = FREE_VA,
                 rights: int = 0b0011) -> int:
    """A 4 KiB frame mapped at ``vaddr`` (tables made as needed)."""
    tables_for(s, vspace, vaddr)
    f = frame(s)
    assert page_map(s, f, vspace, vaddr, rights).label == 0
    return f


def new_pool(s: System) -> int:
    """A new ASID pool made with ASIDControl MakePool; its slot."""
    ut, dest = s.free_slots(1), s.free_slots(1)
    assert s.retype(_ram_untyped(s), s.otype("seL4_UntypedObject"), 12, ut, 1).label == 0
    assert s.make_pool(ut, dest).label == 0
    return dest


def _ram_untyped(s: System) -> int:
    start, end = s.report.bootinfo.untyped
    return max((i for i in range(start, end) if isinstance(s.cap(i), UntypedCap)
                and not s.cap(i).is_device),  # type: ignore[attr-defined]
               key=lambda i: s.cap(i).size_bits)  # type: ignore[attr-defined]


def dead_vspace(s: System) -> int:
    """A VSpace root whose ASID no longer resolves (its pool was deleted)."""
    pool = new_pool(s)
    vs = make(s, s.vspace_type)
    assert s.assign(pool, vs).label == 0
    assert s.call(CNODE, s.label("CNodeDelete"), [pool, 64]).label == 0
    return vs


def stale_vspace(s: System) -> int:
    """A VSpace root whose ASID now names another root (pool deleted, remade, the ASID
    given to a new root)."""
    vs = dead_vspace(s)
    pool = new_pool(s)
    other = make(s, s.vspace_type)
    assert s.assign(pool, other).label == 0
    assert s.cap(other).mapped_asid == s.cap(vs).mapped_asid  # type: ignore[attr-defined]
    return vs


def endpoint(s: System) -> int:
    return make(s, s.otype("seL4_EndpointObject"), 4)


def unassigned_vspace(s: System) -> int:
    return make(s, s.vspace_type)


def mapped_pt(s: System) -> int:
    """A page table mapped in the root task's VSpace (not a root)."""
    return tables_for(s, VSPACE, FREE_VA, 1)[0]


# --- cases ------------------------------------------------------------------------------

Prepare = Callable[[System], Callable[[], Reply]]


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    arches: tuple[Arch, ...]
    error: Error
    words: list[int] | Callable[[System], list[int]]
    prepare: Prepare


def _map(frame_of: Callable[[System], int] = frame, vspace: Callable[[System], int] =
         lambda s: VSPACE, vaddr: int | Callable[[System], int] = FREE_VA,
         tables: int = 2, rights: int = 0b0011, attr: int | None = None,
         length: int | None = None, extra: bool = True,
         label: str | None = None) -> Prepare:
    def prepare(s: System) -> Callable[[], Reply]:
        va = vaddr(s) if callable(vaddr) else vaddr
        vs = vspace(s)
        if tables and va < top(s):
            tables_for(s, VSPACE, va, tables)
        f = frame_of(s)
        if label is not None:
            return lambda: s.call(f, method(s, label), [va, rights, 0], extra=[vs])
        return lambda: page_map(s, f, vs, va, rights, attr, length,
                                extra=[vs] if extra else [])
    return prepare


def _mega(s: System) -> int:
    return frame(s, 21)


def _remapped(vaddr: int, vspace: Callable[[System], int] = lambda s: VSPACE) -> Prepare:
    """A frame mapped at FREE_VA, mapped again at ``vaddr`` in ``vspace``."""
    def prepare(s: System) -> Callable[[], Reply]:
        f = mapped_frame(s)
        vs = vspace(s)
        tables_for(s, vs, vaddr)
        return lambda: page_map(s, f, vs, vaddr)
    return prepare


def _other_vspace(s: System) -> int:
    return new_vspace(s)


def _map_over_existing(s: System) -> Callable[[], Reply]:
    mapped_frame(s)
    g = frame(s)
    return lambda: page_map(s, g, VSPACE, FREE_VA)


def _small_over_block(s: System) -> Callable[[], Reply]:
    tables_for(s, VSPACE, FREE_VA, 1)
    big = frame(s, 21)
    assert page_map(s, big, VSPACE, FREE_VA).label == 0
    f = frame(s)
    return lambda: page_map(s, f, VSPACE, FREE_VA + 0x1000)


PAGE_MAP = [
    Case("VSPACE0001", "Page: a label that is not a Page method", BOTH, IL, [],
         _map(label="PageTableMap")),
    Case("VSPACE0002", "Page Map: length 2", BOTH, TM, [], _map(length=2)),
    Case("VSPACE0003", "Page Map: no extra cap", BOTH, TM, [], _map(extra=False)),
    Case("VSPACE0004", "Page Map: VSpace is an endpoint", BOTH, IC, [1],
         _map(vspace=endpoint)),
    Case("VSPACE0005", "Page Map: VSpace root without an ASID", BOTH, IC, [1],
         _map(vspace=unassigned_vspace)),
    Case("VSPACE0006", "Page Map: VSpace is a mapped page table, not a root", BOTH, IC,
         [1], _map(vspace=lambda s: mapped_pt(s), tables=0)),
    Case("VSPACE0007", "Page Map: the VSpace's ASID pool was deleted", BOTH, FL,
         [0, INVALID_ROOT], _map(vspace=dead_vspace, tables=0)),
    Case("VSPACE0008", "Page Map: the VSpace's ASID names another root now", BOTH, IC,
         [1], _map(vspace=stale_vspace, tables=0)),
    Case("VSPACE0009", "Page Map: vaddr at the user limit", BOTH, IA, [0],
         _map(vaddr=top, tables=0)),
    Case("VSPACE0010", "Page Map: a 2 MiB frame whose last byte passes the limit", RV,
         IA, [0], _map(_mega, vaddr=RV_TOP & ~(MB2 - 1), tables=0)),
    Case("VSPACE0011", "Page Map: vaddr 2^64 - 4 KiB", BOTH, IA, [0],
         _map(vaddr=(1 << 64) - 0x1000, tables=0)),
    Case("VSPACE0012", "Page Map: 4 KiB frame at an address not 4 KiB aligned", BOTH, AL,
         [], _map(vaddr=FREE_VA + 0x800)),
    Case("VSPACE0013", "Page Map: 2 MiB frame at an address not 2 MiB aligned", BOTH,
         AL, [], _map(_mega, vaddr=FREE_VA + 0x1000, tables=1)),
    Case("VSPACE0014", "Page Map: no page table at all", BOTH, FL, [0, MISSING, 30],
         _map(tables=0)),
    Case("VSPACE0015", "Page Map: only the upper page table", BOTH, FL,
         [0, MISSING, 21], _map(tables=1)),
    Case("VSPACE0016", "Page Map: 2 MiB frame where a last-level table is", BOTH, FL,
         [0, MISSING, 12], _map(_mega, tables=2)),
    Case("VSPACE0017", "Page Map: 4 KiB frame inside a 2 MiB mapping", BOTH, FL,
         [0, MISSING, 21], _small_over_block),
    Case("VSPACE0018", "Page Map (RISC-V): over another frame's mapping", RV, DF, [],
         _map_over_existing),
    Case("VSPACE0019", "Page Map: mapped frame, another vaddr", BOTH, IA, [0],
         _remapped(FREE_VA + 0x1000)),
    Case("VSPACE0020", "Page Map: mapped frame, another VSpace", BOTH, IC, [1],
         _remapped(FREE_VA, _other_vspace)),
    Case("VSPACE0021", "Page Map order: bad VSpace before misalignment", BOTH, IC, [1],
         _map(vspace=endpoint, vaddr=FREE_VA + 0x800)),
    Case("VSPACE0022", "Page Map order (RISC-V): limit before alignment", RV, IA, [0],
         _map(vaddr=RV_TOP + 0x800, tables=0)),
    Case("VSPACE0023", "Page Map order (AArch64): alignment before limit", ARM, AL, [],
         _map(vaddr=ARM_END + 0x800, tables=0)),
    Case("VSPACE0024", "Page Map order: dead ASID before the limit", BOTH, FL,
         [0, INVALID_ROOT], _map(vspace=dead_vspace, vaddr=top, tables=0)),
    Case("VSPACE0025", "Page Map order: limit before a missing table", BOTH, IA, [0],
         _map(vaddr=lambda s: top(s) + 0x1000, tables=0)),
    # The walk stops in the root: bits left are what one root entry spans (RISC-V's
    # Sv39 root 2^30; AArch64's L0 table 2^39).
    Case("VSPACE0026", "Page Map: a fresh VSpace has no table below the root", BOTH, FL,
         lambda s: [0, MISSING, 30 if s.arch is Arch.RISCV64 else 39],
         _map(vspace=_other_vspace, tables=0)),
]


def _pt_map(pt: Callable[[System], int] = page_table,
            vspace: Callable[[System], int] = lambda s: VSPACE,
            vaddr: int | Callable[[System], int] = FREE_VA, before: int = 0,
            length: int | None = None, extra: bool = True,
            label: str | None = None) -> Prepare:
    def prepare(s: System) -> Callable[[], Reply]:
        va = vaddr(s) if callable(vaddr) else vaddr
        if before:
            tables_for(s, VSPACE, va, before)
        table, vs = pt(s), vspace(s)
        if label is not None:
            return lambda: s.call(table, method(s, label), [va, 0], extra=[vs])
        return lambda: pt_map(s, table, vs, va, length, extra=[vs] if extra else [])
    return prepare


def _pt_over_block(s: System) -> Callable[[], Reply]:
    tables_for(s, VSPACE, FREE_VA, 1)
    big = frame(s, 21)
    assert page_map(s, big, VSPACE, FREE_VA).label == 0
    table = page_table(s)
    return lambda: pt_map(s, table, VSPACE, FREE_VA)


PT_MAP = [
    Case("VSPACE0101", "PageTable: a label that is not a PageTable method", BOTH, IL, [],
         _pt_map(label="PageMap")),
    Case("VSPACE0102", "PageTable Map: length 1", BOTH, TM, [], _pt_map(length=1)),
    Case("VSPACE0103", "PageTable Map: no extra cap", BOTH, TM, [], _pt_map(extra=False)),
    Case("VSPACE0104", "PageTable Map: the table is already mapped", BOTH, IC, [0],
         _pt_map(pt=mapped_pt, vaddr=FREE_VA + (1 << 30))),
    Case("VSPACE0105", "PageTable Map: VSpace is an endpoint", BOTH, IC, [1],
         _pt_map(vspace=endpoint)),
    Case("VSPACE0106", "PageTable Map: VSpace root without an ASID", BOTH, IC, [1],
         _pt_map(vspace=unassigned_vspace)),
    Case("VSPACE0107", "PageTable Map: VSpace is a mapped page table, not a root", BOTH,
         IC, [1], _pt_map(vspace=mapped_pt, vaddr=FREE_VA + (1 << 30))),
    Case("VSPACE0108", "PageTable Map: vaddr at the user limit", BOTH, IA, [0],
         _pt_map(vaddr=top)),
    Case("VSPACE0109", "PageTable Map: the VSpace's ASID pool was deleted", BOTH, FL,
         [0, INVALID_ROOT], _pt_map(vspace=dead_vspace)),
    Case("VSPACE0110", "PageTable Map: the VSpace's ASID names another root now", BOTH,
         IC, [1], _pt_map(vspace=stale_vspace)),
    Case("VSPACE0111", "PageTable Map: every level already has its table", BOTH, DF, [],
         _pt_map(before=2)),
    Case("VSPACE0112", "PageTable Map: a 2 MiB page is mapped there", BOTH, DF, [],
         _pt_over_block),
    Case("VSPACE0113", "PageTable Map order: mapped table before bad VSpace", BOTH, IC,
         [0], _pt_map(pt=mapped_pt, vspace=endpoint)),
    Case("VSPACE0114", "PageTable Map order: bad VSpace before the limit", BOTH, IC, [1],
         _pt_map(vspace=endpoint, vaddr=top)),
    Case("VSPACE0115", "PageTable Map order: limit before a dead ASID", BOTH, IA, [0],
         _pt_map(vspace=dead_vspace, vaddr=top)),
]


def _pt_unmap_copied(s: System) -> Callable[[], Reply]:
    table = mapped_pt(s)
    dest = s.free_slots(1)
    assert s.call(CNODE, s.label("CNodeCopy"), [dest, 64, table, 64, 0xF],
                  extra=[CNODE]).label == 0
    return lambda: s.call(table, method(s, "PageTableUnmap"))


def _pt_unmap_root(s: System) -> Callable[[], Reply]:
    root = new_vspace(s)
    return lambda: s.call(root, method(s, "PageTableUnmap"))


PT_UNMAP = [
    Case("VSPACE0201", "PageTable Unmap: another cap to the table exists", BOTH, RF, [],
         _pt_unmap_copied),
    Case("VSPACE0202", "PageTable Unmap (RISC-V): the table is a VSpace root", RV, RF, [],
         _pt_unmap_root),
]


def _flush(name: str, args: list[int] | Callable[[System], list[int]],
           target: Callable[[System], int] = mapped_frame) -> Prepare:
    def prepare(s: System) -> Callable[[], Reply]:
        slot = target(s)
        words = args(s) if callable(args) else args
        return lambda: s.call(slot, method(s, name), words)
    return prepare


def _dead_mapped_frame(s: System) -> int:
    """A frame mapped in a VSpace whose ASID pool was then deleted."""
    pool = new_pool(s)
    vs = make(s, s.vspace_type)
    assert s.assign(pool, vs).label == 0
    f = mapped_frame(s, vs)
    assert s.call(CNODE, s.label("CNodeDelete"), [pool, 64]).label == 0
    return f


def _stale_frame(s: System) -> int:
    f = mapped_frame(s)
    low = [i for i in range(len(s.slots)) if type(s.cap(i)).__name__ == "PageTableCap"
           and s.cap(i).mapped_vaddr == FREE_VA][-1]  # type: ignore[attr-defined]
    assert s.call(low, method(s, "PageTableUnmap")).label == 0
    return f


PAGE_FLUSH = [
    Case("VSPACE0301", "Page Clean_Data: length 1", ARM, TM, [],
         _flush("PageClean_Data", [0])),
    Case("VSPACE0302", "Page Clean_Data: frame not mapped", ARM, IL, [],
         _flush("PageClean_Data", [0, 8], frame)),
    Case("VSPACE0303", "Page Clean_Data: the frame's ASID pool was deleted", ARM, FL,
         [0, INVALID_ROOT], _flush("PageClean_Data", [0, 8], _dead_mapped_frame)),
    Case("VSPACE0304", "Page Clean_Data: end <= start", ARM, IA, [1],
         _flush("PageClean_Data", [8, 8])),
    Case("VSPACE0305", "Page Clean_Data: end past the frame", ARM, IA, [0],
         _flush("PageClean_Data", [0, 0x1001])),
    Case("VSPACE0306", "Page CleanInvalidate_Data: start past the frame", ARM, IA, [0],
         _flush("PageCleanInvalidate_Data", [0x1000, 0x1008])),
    Case("VSPACE0307", "Page Unify_Instruction: the mapping went stale", ARM, IC, [0],
         _flush("PageUnify_Instruction", [0, 8], _stale_frame)),
    Case("VSPACE0308", "Page Invalidate_Data: read-only mapping", ARM, IL, [],
         _flush("PageInvalidate_Data", [0, 8],
                lambda s: mapped_frame(s, rights=RO))),
    Case("VSPACE0309", "Page flush order: length before mapping", ARM, TM, [],
         _flush("PageClean_Data", [0], frame)),
    Case("VSPACE0310", "Page flush order: dead ASID before a bad range", ARM, FL,
         [0, INVALID_ROOT], _flush("PageClean_Data", [8, 0], _dead_mapped_frame)),
]


def _vs_flush(name: str, args: Callable[[System], list[int]],
              vspace: Callable[[System], int] = lambda s: VSPACE,
              setup: Callable[[System], object] = mapped_frame) -> Prepare:
    def prepare(s: System) -> Callable[[], Reply]:
        setup(s)
        vs = vspace(s)
        words = args(s)
        return lambda: s.call(vs, method(s, name), words)
    return prepare


def _range(start: int, end: int) -> Callable[[System], list[int]]:
    return lambda s: [start, end]


VSPACE_FLUSH = [
    Case("VSPACE0401", "VSpace: a label that is not a VSpace method", ARM, IL, [],
         _vs_flush("PageMap", _range(FREE_VA, FREE_VA + 8))),
    Case("VSPACE0402", "VSpace Clean_Data: length 1", ARM, TM, [],
         _vs_flush("VSpaceClean_Data", lambda s: [FREE_VA])),
    Case("VSPACE0403", "VSpace Clean_Data: end <= start", ARM, IA, [1],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA + 8, FREE_VA))),
    Case("VSPACE0404", "VSpace Clean_Data: end past the user limit", ARM, IL, [],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA, ARM_END))),
    Case("VSPACE0405", "VSpace Clean_Data: VSpace without an ASID", ARM, IC, [0],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA, FREE_VA + 8), unassigned_vspace)),
    Case("VSPACE0406", "VSpace Clean_Data: the VSpace's ASID pool was deleted", ARM, FL,
         [0, INVALID_ROOT],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA, FREE_VA + 8), dead_vspace)),
    Case("VSPACE0407", "VSpace Clean_Data: the VSpace's ASID names another root", ARM,
         IC, [0],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA, FREE_VA + 8), stale_vspace)),
    Case("VSPACE0408", "VSpace Clean_Data: the range crosses the page", ARM, RANGE,
         [FREE_VA + 8, FREE_VA + 0xFFF],
         _vs_flush("VSpaceClean_Data", _range(FREE_VA + 8, FREE_VA + 0x1008))),
    Case("VSPACE0409", "VSpace Invalidate_Data: read-only mapping", ARM, IL, [],
         _vs_flush("VSpaceInvalidate_Data", _range(FREE_VA, FREE_VA + 8),
                   setup=lambda s: mapped_frame(s, rights=RO))),
    Case("VSPACE0410", "VSpace flush order: bad range before a missing ASID", ARM, IA,
         [1], _vs_flush("VSpaceClean_Data", _range(FREE_VA + 8, FREE_VA),
                        unassigned_vspace)),
]

ALL = PAGE_MAP + PT_MAP + PT_UNMAP + PAGE_FLUSH + VSPACE_FLUSH
CASES_BY_ARCH = [(case, arch) for case in ALL for arch in case.arches]


@pytest.mark.parametrize(("case", "arch"), CASES_BY_ARCH,
                         ids=[f"{c.id}-{a.short}" for c, a in CASES_BY_ARCH])
def test_vspace_error(case: Case, arch: Arch) -> None:
    s = System(arch, ram_size=64 << 20)
    call = case.prepare(s)
    before = snapshot(s)
    reply = call()
    words = case.words(s) if callable(case.words) else case.words
    assert (reply.label, reply.words) == (case.error, words), case.title
    assert snapshot(s) == before, f"{case.id}: a failed invocation changed kernel state"


def test_case_ids_are_unique_and_in_order() -> None:
    ids = [c.id for c in ALL]
    assert ids == sorted(set(ids))


# --- behaviour the matrix relies on: the successful neighbours of its cases -------------


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_the_last_user_page_maps(arch: Arch) -> None:
    s = System(arch, ram_size=64 << 20)
    last = top(s) - 0x1000
    tables_for(s, VSPACE, last)
    f = frame(s)
    assert page_map(s, f, VSPACE, last).label == 0
    assert reaches(s, VSPACE, last + 0xFF8) is not None


def test_arm_map_over_a_mapping_replaces_it() -> None:
    s = System(Arch.AARCH64, ram_size=64 << 20)
    first = mapped_frame(s)
    g = frame(s)
    assert page_map(s, g, VSPACE, FREE_VA).label == 0
    assert reaches(s, VSPACE, FREE_VA) == s.cap(g).paddr  # type: ignore[attr-defined]
    # The first cap's mapping went stale: unmapping it leaves the new one alone.
    assert s.call(first, method(s, "PageUnmap")).label == 0
    assert reaches(s, VSPACE, FREE_VA) == s.cap(g).paddr  # type: ignore[attr-defined]


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_unmap_and_get_address_never_fail(arch: Arch) -> None:
    s = System(arch, ram_size=64 << 20)
    f = frame(s)
    assert s.call(f, method(s, "PageUnmap")) == Reply(0, [])
    assert get_address(s, f).label == 0
    table = page_table(s)
    assert s.call(table, method(s, "PageTableUnmap")) == Reply(0, [])
