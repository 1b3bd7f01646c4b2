"""ASIDControl MakePool and ASIDPool Assign: error matrix (stable IDs) and effects.

Error cases assert the reply's code and words and that nothing changed (root CNode
slots with their CDT links, kernel objects, ASID pools, RAM outside the IPC buffer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap
from kernel.cspace.cdt import insert_root
from kernel.model.asid_pool import ASIDPool
from kernel.model.caps import ASIDPoolCap, PageTableCap, UntypedCap, VSpaceCap
from kernel.objects.asid_pool import asid_table, register_pool
from tests.abi.support import CNODE, Reply, System

TCB_CAP = int(InitialCap.seL4_CapInitThreadTCB)
VSPACE = int(InitialCap.seL4_CapInitThreadVSpace)
BOOT_POOL = int(InitialCap.seL4_CapInitThreadASIDPool)
FRAME = int(InitialCap.seL4_CapBootInfoFrame)


def small_untypeds(s: System, count: int = 4, device: bool = False) -> int:
    """``count`` fresh 4 KiB untypeds in consecutive slots; returns the first slot."""
    if device:
        start, end = s.report.bootinfo.untyped
        parent = next(i for i in range(start, end)
                      if isinstance(s.cap(i), UntypedCap) and s.cap(i).is_device)
    else:
        parent = s.ram_untyped(14)
    first = s.free_slots(count)
    assert s.retype(parent, s.otype("seL4_UntypedObject"), 12, first, count).label == 0
    return first


def vspace_roots(s: System, count: int) -> int:
    """``count`` fresh unassigned VSpace roots in consecutive slots; first slot."""
    first = s.free_slots(count)
    ut = s.untyped(22)
    for done in range(0, count, 256):
        n = min(256, count - done)
        assert s.retype(ut, s.vspace_type, 0, first + done, n).label == 0
    return first


def pools(s: System) -> dict[int, tuple[int, int, tuple[int, ...]]]:
    return {i: (p.paddr, p.asid_base, tuple(sorted(p.roots.items())))  # type: ignore[misc]
            for i, p in asid_table(s.kernel).items()}


def snapshot(s: System) -> tuple[object, ...]:
    slots = tuple((x.cap, x.mdb_prev, x.mdb_next, x.revocable, x.first_badged)
                  for x in s.slots.every())
    ram = bytearray(s.machine.ram)
    page = (s.ipc_paddr() & ~0xFFF) - s.machine.ram_base
    ram[page : page + 0x1000] = bytes(0x1000)
    return slots, tuple(sorted(s.kernel.objects)), pools(s), bytes(ram), s.kernel.stop


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    error: Error
    words: list[int]
    prepare: Callable[[System], Callable[[], Reply]]
    """Set up (may change state), then return the call whose failure is checked."""
    forged: bool = False
    """The setup forges a state the invariant checker rejects: run without it."""


def _pool_label(s: System) -> int:
    return s.label("RISCVASIDControlMakePool" if s.arch is Arch.RISCV64
                   else "ARMASIDControlMakePool")


def _fill_all_pools(s: System) -> None:
    for i in range(1, 128):
        register_pool(s.kernel, ASIDPool(0x1000 * i + 7, i << 9))


def _mp_wrong_label(s: System) -> Callable[[], Reply]:
    ut = small_untypeds(s)
    return lambda: s.call(int(InitialCap.seL4_CapASIDControl), s.label("UntypedRetype"),
                          [s.free_slots(1), 64], extra=[ut, CNODE])


def _mp_short(s: System) -> Callable[[], Reply]:
    ut = small_untypeds(s)
    return lambda: s.call(int(InitialCap.seL4_CapASIDControl), _pool_label(s),
                          [s.free_slots(1)], extra=[ut, CNODE])


def _mp_one_cap(s: System) -> Callable[[], Reply]:
    ut = small_untypeds(s)
    return lambda: s.call(int(InitialCap.seL4_CapASIDControl), _pool_label(s),
                          [s.free_slots(1), 64], extra=[ut])


def _mp(untyped: Callable[[System], int], index: Callable[[System], int] | None = None,
        depth: int = 64, root: int = CNODE,
        setup: Callable[[System], None] = lambda s: None
        ) -> Callable[[System], Callable[[], Reply]]:
    def prepare(s: System) -> Callable[[], Reply]:
        ut = untyped(s)
        dest = s.free_slots(1) if index is None else index(s)
        setup(s)
        return lambda: s.make_pool(ut, dest, depth, root)
    return prepare


def _with_child(s: System) -> int:
    ut = small_untypeds(s)
    assert s.retype(ut, s.otype("seL4_EndpointObject"), 0, s.free_slots(1), 1).label == 0
    return ut


MAKE_POOL = [
    Case("ASID0001", "MakePool: wrong label", Error.seL4_IllegalOperation, [],
         _mp_wrong_label),
    Case("ASID0002", "MakePool: length 1", Error.seL4_TruncatedMessage, [], _mp_short),
    Case("ASID0003", "MakePool: one extra cap", Error.seL4_TruncatedMessage, [], _mp_one_cap),
    Case("ASID0004", "MakePool: untyped of 2^14 bytes", Error.seL4_InvalidCapability, [1],
         _mp(lambda s: s.ram_untyped(14))),
    Case("ASID0005", "MakePool: device untyped", Error.seL4_InvalidCapability, [1],
         _mp(lambda s: small_untypeds(s, device=True))),
    Case("ASID0006", "MakePool: extra cap 0 is a TCB", Error.seL4_InvalidCapability, [1],
         _mp(lambda s: TCB_CAP)),
    Case("ASID0007", "MakePool: untyped with a child", Error.seL4_RevokeFirst, [],
         _mp(_with_child)),
    Case("ASID0008", "MakePool: destination occupied", Error.seL4_DeleteFirst, [],
         _mp(small_untypeds, index=lambda s: TCB_CAP)),
    Case("ASID0009", "MakePool: depth 0", Error.seL4_RangeError, [1, 64],
         _mp(small_untypeds, depth=0)),
    Case("ASID0010", "MakePool: root is not a CNode", Error.seL4_FailedLookup, [0, 1],
         _mp(small_untypeds, root=TCB_CAP)),
    Case("ASID0011", "MakePool: depth 32 against the 52-bit guard",
         Error.seL4_FailedLookup, [0, 4, 32, 0, 52], _mp(small_untypeds, depth=32)),
    Case("ASID0012", "MakePool: all 128 pools in use", Error.seL4_DeleteFirst, [],
         _mp(small_untypeds, setup=_fill_all_pools)),
    Case("ASID0013", "MakePool order: no free pool before a bad untyped",
         Error.seL4_DeleteFirst, [], _mp(lambda s: TCB_CAP, setup=_fill_all_pools)),
    Case("ASID0014", "MakePool order: bad untyped before bad destination",
         Error.seL4_InvalidCapability, [1], _mp(lambda s: TCB_CAP, root=TCB_CAP)),
]


def _assign(vspace: Callable[[System], int], pool: Callable[[System], int] = lambda s: BOOT_POOL,
            label: str | None = None, extra: bool = True
            ) -> Callable[[System], Callable[[], Reply]]:
    def prepare(s: System) -> Callable[[], Reply]:
        root, pool_slot = vspace(s), pool(s)
        name = label or ("RISCVASIDPoolAssign" if s.arch is Arch.RISCV64
                         else "ARMASIDPoolAssign")
        return lambda: s.call(pool_slot, s.label(name), [], extra=[root] if extra else [])
    return prepare


def _forged_pool(asid_base: int, paddr: Callable[[System], int]) -> Callable[[System], int]:
    """A pool cap put straight into a slot: tests states MakePool cannot produce."""
    def make(s: System) -> int:
        slot = s.free_slots(1)
        insert_root(s.slots[slot], ASIDPoolCap(paddr(s), asid_base))
        return slot
    return make


def _full_pool(s: System) -> int:
    pool = asid_table(s.kernel)[0]
    roots = vspace_roots(s, 510)
    for i in range(510):
        assert s.assign(BOOT_POOL, roots + i).label == 0
    assert len(pool.roots) == 511
    return BOOT_POOL


def _arm_page_table(s: System) -> int:
    slot = s.free_slots(1)
    pt = s.otype("seL4_RISCV_PageTableObject" if s.arch is Arch.RISCV64
                 else "seL4_ARM_PageTableObject")
    assert s.retype(s.untyped(16), pt, 0, slot, 1).label == 0
    return slot


ASSIGN = [
    Case("ASID0101", "Assign: wrong label", Error.seL4_IllegalOperation, [],
         _assign(lambda s: vspace_roots(s, 1), label="UntypedRetype")),
    Case("ASID0102", "Assign: no extra cap", Error.seL4_TruncatedMessage, [],
         _assign(lambda s: vspace_roots(s, 1), extra=False)),
    Case("ASID0103", "Assign: extra cap is a frame", Error.seL4_InvalidCapability, [1],
         _assign(lambda s: FRAME)),
    Case("ASID0104", "Assign: root already has an ASID", Error.seL4_InvalidCapability, [1],
         _assign(lambda s: VSPACE)),
    Case("ASID0105", "Assign: pool index not in the ASID table", Error.seL4_FailedLookup,
         [0, 1], _assign(lambda s: vspace_roots(s, 1),
                         _forged_pool(5 << 9, lambda s: s.cap(BOOT_POOL).paddr)),
         forged=True),
    Case("ASID0106", "Assign: cap names another pool than the table",
         Error.seL4_InvalidCapability, [0],
         _assign(lambda s: vspace_roots(s, 1),
                 _forged_pool(0, lambda s: s.cap(BOOT_POOL).paddr + 0x1000)),
         forged=True),
    Case("ASID0107", "Assign: pool full", Error.seL4_DeleteFirst, [],
         _assign(lambda s: vspace_roots(s, 1), _full_pool)),
]

ARM_ONLY = [
    Case("ASID0108", "Assign (AArch64): a page table is not a VSpace",
         Error.seL4_InvalidCapability, [1], _assign(_arm_page_table)),
]


# RISC-V page tables are VSpace roots, so the AArch64-only cases run on AArch64 alone.
CASES_BY_ARCH = [(case, arch) for arch in Arch for case in MAKE_POOL + ASSIGN] + [
    (case, Arch.AARCH64) for case in ARM_ONLY
]


@pytest.mark.parametrize(("case", "arch"), CASES_BY_ARCH,
                         ids=[f"{c.id}-{a.short}" for c, a in CASES_BY_ARCH])
def test_asid_error(case: Case, arch: Arch) -> None:
    s = System(arch, invariants=not case.forged)
    call = case.prepare(s)
    before = snapshot(s)
    reply = call()
    assert (reply.label, reply.words) == (case.error, case.words), case.title
    assert snapshot(s) == before, f"{case.id}: a failed invocation changed kernel state"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in MAKE_POOL + ASSIGN + ARM_ONLY]
    assert len(ids) == len(set(ids))


# --- effects ---------------------------------------------------------------------------


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def system(request: pytest.FixtureRequest) -> System:
    return System(request.param)


def test_make_pool_creates_pool_one_from_the_untyped(system: System) -> None:
    s = system
    ut = small_untypeds(s)
    paddr = s.cap(ut).paddr
    s.machine.write_phys(paddr, b"\xff" * 0x1000)
    dest = s.free_slots(1)
    assert s.make_pool(ut, dest) == Reply(0, [])
    cap = s.cap(dest)
    assert cap == ASIDPoolCap(paddr, asid_base=512)
    assert s.cap(ut).free_index == 0x1000 >> 4  # the untyped is full
    pool = s.kernel.objects[paddr]
    assert isinstance(pool, ASIDPool) and pool.roots == {}
    assert asid_table(s.kernel)[1] is pool
    assert s.machine.read_phys(paddr, 0x1000) == bytes(0x1000)
    parent, child = s.slots[ut], s.slots[dest]
    assert parent.mdb_next is child and child.mdb_prev is parent
    assert not child.revocable  # seL4's cteInsert: an ASID pool cap is not revocable
    # The untyped now has a child: it cannot become a second pool.
    assert s.make_pool(ut, s.free_slots(1)) == Reply(Error.seL4_RevokeFirst, [])
    # The next pool takes the next index.
    dest2 = s.free_slots(1)
    assert s.make_pool(ut + 1, dest2).label == 0
    assert s.cap(dest2).asid_base == 1024


def test_assign_gives_the_first_free_asid(system: System) -> None:
    s = system
    roots = vspace_roots(s, 2)
    assert s.assign(BOOT_POOL, roots) == Reply(0, [])  # ASID 1 is the root task's
    cap = s.cap(roots)
    expected_type = PageTableCap if s.arch is Arch.RISCV64 else VSpaceCap
    assert isinstance(cap, expected_type) and cap.mapped_asid == 2
    if isinstance(cap, PageTableCap):
        assert cap.mapped_vaddr == 0
    assert asid_table(s.kernel)[0].roots[2] == cap.paddr
    # A new pool's first ASID is its base (only ASID 0 is never handed out).
    ut = small_untypeds(s)
    pool_slot = s.free_slots(1)
    assert s.make_pool(ut, pool_slot).label == 0
    assert s.assign(pool_slot, roots + 1).label == 0
    assert s.cap(roots + 1).mapped_asid == 512
    # An assigned root cannot be assigned again.
    assert s.assign(pool_slot, roots + 1) == Reply(Error.seL4_InvalidCapability, [1])
