"""Capability pages (capsule's extension, not seL4) through seL4_Call on the fake machine:
the error matrices of Map and the four capability instructions, what they do, the
weakening rules, type faults, and seL4's behaviour when the extension is off.

Every refused case has a stable ID (CAPPG00xx) and asserts the reply label, its payload
words and that no slot anywhere changed (cap, MDB links, bits) and no mapping record
either. Success cases assert the caps moved and the derivation tree. Off cases: an image
without the extension refuses the type number and the labels exactly as seL4 refuses
unknown ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import CapRights, Error, InitialCap
from kernel.abi.extensions import (
    CAP_PAGE_OBJECT_TYPE,
    CAP_PAGE_RADIX,
    CapPageAccess,
    CapPageAttr,
    CapPageFaultLabel,
    CapPageLabel,
)
from kernel.cspace.cdt import insert
from kernel.model.caps import (
    CapPageCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    UntypedCap,
)
from kernel.model.cnode import CNode
from kernel.model.faults import CapPageTypeFault, Fault, VMFault
from kernel.model.paging import Access
from kernel.views.invariants import check_all
from kernel.views.render import cap_view
from tests.abi.cnode_fixtures import World, snapshot
from tests.abi.support import Reply

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
VS = int(InitialCap.seL4_CapInitThreadVSpace)
IRQ = int(InitialCap.seL4_CapIRQControl)

(PAGE, RO_PAGE, WEAK_PAGE, SPARE_PAGE, EP, NTFN, FRAME, L2, RO_L2, WEAK_L2, FREE, FREE2,
 UT_PARENT) = range(4000, 4013)
L2_RADIX = 4
L2_EP = 1

VA = 0x20_0000_0000
VA_RO, VA_WEAK, VA_NONE = VA + 0x1000, VA + 0x2000, VA + 0x8000
# PAGE's contents: slot 1 an endpoint, slot 2 empty, slot 3 a CNode cap, slot 4 a frame
S_EP, S_EMPTY, S_CNODE, S_FRAME = (VA + 32 * i for i in (1, 2, 3, 4))

MAP, UNMAP = int(CapPageLabel.capsule_CapPageMap), int(CapPageLabel.capsule_CapPageUnmap)
LOAD, STORE = int(CapPageLabel.capsule_VSpaceCapLoad), int(CapPageLabel.capsule_VSpaceCapStore)
COPY, XCHG = int(CapPageLabel.capsule_VSpaceCapCopy), int(CapPageLabel.capsule_VSpaceCapExchange)
RO_ATTR, WEAK_ATTR = int(CapPageAttr.capsule_CapPageReadOnly), int(CapPageAttr.capsule_CapPageWeak)

IL, TM, DF, RF = (Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage,
                  Error.seL4_DeleteFirst, Error.seL4_RevokeFirst)
RANGE, FL, IA = Error.seL4_RangeError, Error.seL4_FailedLookup, Error.seL4_InvalidArgument
IC, AL = Error.seL4_InvalidCapability, Error.seL4_AlignmentError
INVALID_ROOT, MISSING, GUARD = 1, 2, 4
D = 64
T = 1 << 63  # breaks the root CNode's zero guard


def _spare_untyped(w: World) -> int:
    """A RAM boot untyped of at least 2^14 bytes other than the largest (which World's
    hand allocator uses), for real retypes."""
    start, end = w.report.bootinfo.untyped
    ram = [i for i in range(start, end) if isinstance(w.slots[i].cap, UntypedCap)
           and not w.slots[i].cap.is_device]  # type: ignore[attr-defined]
    biggest = max(ram, key=lambda i: w.slots[i].cap.size_bits)  # type: ignore[attr-defined]
    fit = [i for i in ram if i != biggest and w.slots[i].cap.size_bits >= 14]  # type: ignore[attr-defined]
    return min(fit, key=lambda i: w.slots[i].cap.size_bits)  # type: ignore[attr-defined]


def page_of(w: World, index: int) -> CNode:
    return w.kernel.object_at(w.cap(index).object_paddr or 0, CNode)


def _world(arch: Arch) -> World:
    w = World(arch, cap_pages=True)
    assert w.retype(_spare_untyped(w), CAP_PAGE_OBJECT_TYPE, 0, PAGE, 4) == Reply(0, [])
    assert w.call(PAGE, MAP, [VA, 0], [VS]) == Reply(0, [])
    assert w.call(RO_PAGE, MAP, [VA_RO, RO_ATTR], [VS]) == Reply(0, [])
    assert w.call(WEAK_PAGE, MAP, [VA_WEAK, WEAK_ATTR], [VS]) == Reply(0, [])
    ep = w.put(EP, EndpointCap(w.alloc(4)))
    w.put(NTFN, NotificationCap(w.alloc(5)))
    frame = w.put(FRAME, FrameCap(w.alloc(12), 12))
    l2 = w.put(L2, w.cnode_cap(L2_RADIX))
    node = w.kernel.object_at(l2.cap.object_paddr or 0, CNode)
    insert(ep.cap, ep, node.slots[L2_EP])
    insert(CNodeCap(node.paddr, L2_RADIX, read_only=True), l2, w.slots[RO_L2])
    insert(CNodeCap(node.paddr, L2_RADIX, read_only=True, weak=True), l2, w.slots[WEAK_L2])
    for page in (PAGE, RO_PAGE, WEAK_PAGE):
        contents = page_of(w, page).slots
        insert(ep.cap, ep, contents[1])
        insert(l2.cap, l2, contents[3])
        insert(frame.cap, frame, contents[4])
    ut_paddr = w.alloc(12)
    w.put(UT_PARENT, UntypedCap(ut_paddr, 12, free_index=(1 << 10) >> 4))
    insert(UntypedCap(ut_paddr, 10), w.slots[UT_PARENT], w.slots[FREE2 + 10])
    check_all(w.kernel)
    return w


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return _world(request.param)


def state(w: World) -> tuple[object, ...]:
    return (snapshot(w), dict(w.kernel.cap_page_maps))


def faults_of(w: World) -> list[Fault]:
    seen: list[Fault] = []
    w.kernel.fault_observers.append(lambda tcb, fault: seen.append(fault))
    return seen


# --- the error matrices -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    cptr: int
    label: int
    args: list[int]
    extra: list[int] = field(default_factory=list)
    error: Error = IL
    words: list[int] = field(default_factory=list)


CASES = [
    # Map (on a cap-page cap)
    Case("CAPPG0001", SPARE_PAGE, MAP, [VA + 0x3000], [VS], TM),
    Case("CAPPG0002", SPARE_PAGE, MAP, [VA + 0x3000, 0], [], TM),
    Case("CAPPG0003", SPARE_PAGE, MAP, [VA + 0x3000, 0], [EP], IC, [1]),
    Case("CAPPG0004", PAGE, MAP, [VA + 0x3000, 0], [VS], IC, [0]),
    Case("CAPPG0005", SPARE_PAGE, MAP, [VA + 0x3008, 0], [VS], AL),
    Case("CAPPG0006", SPARE_PAGE, MAP, [1 << 62, 0], [VS], IA, [0]),
    Case("CAPPG0007", SPARE_PAGE, MAP, [VA, 0], [VS], DF),
    Case("CAPPG0008", SPARE_PAGE, MAP + 2, [VA + 0x3000, 0], [VS], IL),
    # Load (on the VSpace cap)
    Case("CAPPG0010", VS, LOAD, [S_EP, FREE], [CNODE], TM),
    Case("CAPPG0011", VS, LOAD, [S_EP, FREE, D], [], TM),
    Case("CAPPG0012", VS, LOAD, [S_EP + 8, FREE, D], [CNODE], AL),
    Case("CAPPG0013", VS, LOAD, [S_EP, T, D], [CNODE], FL, [0, GUARD, 64, 0, 52]),
    Case("CAPPG0014", VS, LOAD, [S_EP, FREE, 0], [CNODE], RANGE, [1, 64]),
    Case("CAPPG0015", VS, LOAD, [S_EP, FREE, D], [EP], FL, [0, INVALID_ROOT]),
    Case("CAPPG0016", VS, LOAD, [S_EP, NTFN, D], [CNODE], DF),
    Case("CAPPG0017", VS, LOAD, [S_EMPTY, FREE, D], [CNODE], FL, [1, MISSING, 0]),
    Case("CAPPG0018", VS, LOAD, [S_EP, 2, L2_RADIX], [RO_L2], IL),
    Case("CAPPG0019", VS, LOAD, [VA_WEAK + 32, FREE, D], [CNODE], IL),  # weak: EP -> null
    Case("CAPPG0020", FRAME, LOAD, [S_EP, FREE, D], [CNODE], IL),  # not a VSpace
    # Store
    Case("CAPPG0030", VS, STORE, [S_EMPTY, NTFN], [CNODE], TM),
    Case("CAPPG0031", VS, STORE, [S_EMPTY + 4, NTFN, D], [CNODE], AL),
    Case("CAPPG0032", VS, STORE, [VA_RO + 64, NTFN, D], [CNODE], IL),
    Case("CAPPG0033", VS, STORE, [S_EMPTY, T, D], [CNODE], FL, [1, GUARD, 64, 0, 52]),
    Case("CAPPG0034", VS, STORE, [S_EMPTY, NTFN, 65], [CNODE], RANGE, [1, 64]),
    Case("CAPPG0035", VS, STORE, [S_EMPTY, FREE, D], [CNODE], FL, [1, MISSING, 64]),
    Case("CAPPG0036", VS, STORE, [S_EP, NTFN, D], [CNODE], DF),
    Case("CAPPG0037", VS, STORE, [S_EMPTY, IRQ, D], [CNODE], IL),
    Case("CAPPG0038", VS, STORE, [S_EMPTY, UT_PARENT, D], [CNODE], RF),
    Case("CAPPG0039", VS, STORE, [S_EMPTY, L2_EP, L2_RADIX], [WEAK_L2], IL),  # weak: null
    # Copy
    Case("CAPPG0050", VS, COPY, [S_EMPTY], [], TM),
    Case("CAPPG0051", VS, COPY, [S_EMPTY, S_EP + 1], [], AL),
    Case("CAPPG0052", VS, COPY, [S_EMPTY + 16, S_EP], [], AL),
    Case("CAPPG0053", VS, COPY, [VA_RO + 64, S_EP], [], IL),
    Case("CAPPG0054", VS, COPY, [S_EMPTY, S_EMPTY + 32 * 10], [], FL, [1, MISSING, 0]),
    Case("CAPPG0055", VS, COPY, [S_CNODE, S_EP], [], DF),
    Case("CAPPG0056", VS, COPY, [S_EMPTY, VA_WEAK + 32], [], IL),  # weak: EP -> null
    # Exchange
    Case("CAPPG0070", VS, XCHG, [S_EP, NTFN], [CNODE], TM),
    Case("CAPPG0071", VS, XCHG, [S_EP + 31, NTFN, D], [CNODE], AL),
    Case("CAPPG0072", VS, XCHG, [VA_RO + 32, NTFN, D], [CNODE], IL),
    Case("CAPPG0073", VS, XCHG, [VA_WEAK + 32, NTFN, D], [CNODE], IL),
    Case("CAPPG0074", VS, XCHG, [S_EP, L2_EP, L2_RADIX], [RO_L2], IL),
    Case("CAPPG0075", VS, XCHG, [S_EP, T, D], [CNODE], FL, [0, GUARD, 64, 0, 52]),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_invocation_changes_nothing(world: World, case: Case) -> None:
    before = state(world)
    reply = world.call(case.cptr, case.label, case.args, case.extra)
    assert reply == Reply(case.error, case.words)
    assert state(world) == before
    assert world.kernel.stop is None


def test_case_ids_are_unique_and_in_order() -> None:
    ids = [c.id for c in CASES]
    assert ids == sorted(set(ids))


# --- what they do -----------------------------------------------------------------------


def test_a_cap_page_is_one_page_of_cnode_slots(world: World) -> None:
    cap = world.cap(SPARE_PAGE)
    assert isinstance(cap, CapPageCap) and cap.radix == CAP_PAGE_RADIX == 7
    assert (1 << cap.radix) * 32 == 4096
    assert page_of(world, SPARE_PAGE).radix == 7


def test_load_store_copy_and_their_derivation(world: World) -> None:
    w = world
    assert w.call(VS, LOAD, [S_EP, FREE, D], [CNODE]) == Reply(0, [])
    page = page_of(w, PAGE)
    assert w.cap(FREE) == w.cap(EP)
    assert w.slots[FREE].mdb_prev is page.slots[1]  # a copy follows its source
    assert w.call(VS, STORE, [S_EMPTY, NTFN, D], [CNODE]) == Reply(0, [])
    assert page.slots[2].cap == w.cap(NTFN)
    assert page.slots[2].mdb_prev is w.slots[NTFN]
    assert w.call(VS, COPY, [VA + 32 * 9, S_EMPTY], []) == Reply(0, [])
    assert page.slots[9].cap == w.cap(NTFN)
    # A store through the cspace view of the same page: it is a CNode.
    assert w.call(VS, STORE, [VA + 32 * 10, EP, D], [CNODE]) == Reply(0, [])
    assert w.call(PAGE, w.label("CNodeDelete"), [10, CAP_PAGE_RADIX]) == Reply(0, [])
    assert page.slots[10].is_empty


def test_exchange_swaps_caps_and_tree_places(world: World) -> None:
    w = world
    page = page_of(w, PAGE)
    ep_cap, ntfn_cap = page.slots[1].cap, w.cap(NTFN)
    ep_prev, ntfn_prev = page.slots[1].mdb_prev, w.slots[NTFN].mdb_prev
    assert w.call(VS, XCHG, [S_EP, NTFN, D], [CNODE]) == Reply(0, [])
    assert page.slots[1].cap == ntfn_cap and w.cap(NTFN) == ep_cap
    assert w.slots[NTFN].mdb_prev is ep_prev and page.slots[1].mdb_prev is ntfn_prev
    # with an empty slot: a move
    assert w.call(VS, XCHG, [S_EMPTY, NTFN, D], [CNODE]) == Reply(0, [])
    assert w.slots[NTFN].is_empty and page.slots[2].cap == ep_cap


def test_revoke_and_delete_reach_caps_in_cap_pages(world: World) -> None:
    w = world
    assert w.call(VS, STORE, [S_EMPTY, NTFN, D], [CNODE]) == Reply(0, [])
    page = page_of(w, PAGE)
    assert w.call(CNODE, w.label("CNodeRevoke"), [NTFN, D]) == Reply(0, [])
    assert page.slots[2].is_empty
    assert w.call(CNODE, w.label("CNodeRevoke"), [EP, D]) == Reply(0, [])
    assert all(page_of(w, p).slots[1].is_empty for p in (PAGE, RO_PAGE, WEAK_PAGE))
    # Deleting the mapped cap-page cap drops its mapping and empties the page.
    assert w.call(CNODE, w.label("CNodeDelete"), [PAGE, D]) == Reply(0, [])
    assert (1, VA) not in w.kernel.cap_page_maps and all(k[1] != VA for k in w.kernel.cap_page_maps)
    assert page.slots[3].is_empty and page.slots[4].is_empty


def test_unmap_and_a_copy_starts_unmapped(world: World) -> None:
    w = world
    assert w.call(CNODE, w.label("CNodeCopy"), [FREE, D, PAGE, D, int(CapRights.seL4_AllRights)],
                  [CNODE]) == Reply(0, [])
    copy = w.cap(FREE)
    assert isinstance(copy, CapPageCap) and not copy.is_mapped
    assert w.call(PAGE, UNMAP) == Reply(0, [])
    assert not w.cap(PAGE).is_mapped  # type: ignore[attr-defined]
    assert all(k[1] != VA for k in w.kernel.cap_page_maps)
    assert w.call(PAGE, UNMAP) == Reply(0, [])  # unmapped: nothing to do
    faults = faults_of(w)
    w.call(VS, LOAD, [S_EP, FREE2, D], [CNODE])
    assert faults and isinstance(faults[0], CapPageTypeFault)


def test_a_cap_page_cannot_be_mapped_over_a_frame(world: World) -> None:
    w = world
    vaddr = w.kernel.current.ipc_buffer & ~0xFFF  # type: ignore[union-attr]
    before = state(w)
    assert w.call(SPARE_PAGE, MAP, [vaddr, 0], [VS]) == Reply(DF, [])
    assert state(w) == before


# --- weakening ----------------------------------------------------------------------------


def test_a_weak_mapping_weakens_what_is_loaded(world: World) -> None:
    w = world
    assert w.call(VS, LOAD, [VA_WEAK + 32 * 3, FREE, D], [CNODE]) == Reply(0, [])
    node = w.cap(FREE)
    assert isinstance(node, CNodeCap) and node.read_only and node.weak
    assert w.call(VS, LOAD, [VA_WEAK + 32 * 4, FREE2, D], [CNODE]) == Reply(0, [])
    frame = w.cap(FREE2)
    assert isinstance(frame, FrameCap) and frame.rights.read and not frame.rights.write
    # ... and the weak CNode passes weakness on: its endpoint comes out null (refused)
    assert w.call(CNODE, w.label("CNodeCopy"),
                  [FREE2 + 2, D, L2_EP, L2_RADIX, int(CapRights.seL4_AllRights)],
                  [FREE]) == Reply(IL, [])
    # ... and is read-only: nothing can be deleted through it
    assert w.call(FREE, w.label("CNodeDelete"), [L2_EP, L2_RADIX]) == Reply(IL, [])


def test_a_weak_cnode_cap_weakens_copies_and_read_only_refuses_removal(world: World) -> None:
    w = world
    copy = w.call(CNODE, w.label("CNodeCopy"),
                  [FREE, D, L2_EP, L2_RADIX, int(CapRights.seL4_AllRights)], [WEAK_L2])
    assert copy == Reply(IL, [])  # an endpoint through a weak path is null
    assert w.call(RO_L2, w.label("CNodeDelete"), [L2_EP, L2_RADIX]) == Reply(IL, [])
    assert w.call(CNODE, w.label("CNodeMove"), [FREE, D, L2_EP, L2_RADIX], [RO_L2]) \
        == Reply(IL, [])
    all_rights = int(CapRights.seL4_AllRights)
    assert w.call(L2, w.label("CNodeCopy"), [2, L2_RADIX, FRAME, D, all_rights], [CNODE]) \
        == Reply(0, [])
    rotate = w.label("CNodeRotate")
    before = state(w)
    assert w.call(CNODE, rotate, [FREE, D, 0, 2, L2_RADIX, 0, FRAME, D], [RO_L2, CNODE]) \
        == Reply(IL, [])  # the pivot's path is read-only
    assert w.call(CNODE, rotate, [FREE, D, 0, FRAME, D, 0, 2, L2_RADIX], [CNODE, RO_L2]) \
        == Reply(IL, [])  # the source's
    assert state(w) == before
    assert w.call(CNODE, rotate, [FREE, D, 0, 2, L2_RADIX, 0, FRAME, D], [L2, CNODE]) \
        == Reply(0, [])  # the same through the CNode cap that is not read-only
    assert w.call(CNODE, w.label("CNodeCopy"),
                  [FREE2, D, L2_EP, L2_RADIX, int(CapRights.seL4_AllRights)],
                  [RO_L2]) == Reply(0, [])  # reading through read-only is fine


def test_mint_without_write_or_grant_makes_read_only_and_weak_cap_pages(world: World) -> None:
    w = world
    rights = int(CapRights.seL4_CanRead)
    assert w.call(CNODE, w.label("CNodeMint"), [FREE, D, SPARE_PAGE, D, rights, 0],
                  [CNODE]) == Reply(0, [])
    cap = w.cap(FREE)
    assert isinstance(cap, CapPageCap) and cap.read_only and cap.weak
    assert w.call(FREE, MAP, [VA + 0x3000, 0], [VS]) == Reply(0, [])
    record = w.kernel.cap_page_maps[(w.cap(FREE).mapped_asid, VA + 0x3000)]  # type: ignore[attr-defined]
    assert record.read_only and record.weak
    assert w.call(VS, STORE, [VA + 0x3000, NTFN, D], [CNODE]) == Reply(IL, [])
    view = cap_view(w.cap(FREE), w.kernel)
    assert view is not None and view.fields["read_only"] and view.fields["weak"]


# --- type faults ----------------------------------------------------------------------------


@pytest.mark.parametrize("label", [LOAD, STORE, XCHG])
def test_a_capability_access_where_no_cap_page_is_mapped_faults(world: World, label: int) -> None:
    w = world
    faults = faults_of(w)
    before = snapshot(w, threads=False)
    w.call(VS, label, [VA_NONE + 64, NTFN, D], [CNODE])
    access = CapPageAccess.capsule_AccessCapLoad if label == LOAD \
        else CapPageAccess.capsule_AccessCapStore
    assert len(faults) == 1
    fault = faults[0]
    assert isinstance(fault, CapPageTypeFault)
    assert (fault.address, fault.access, fault.expected_caps) == (VA_NONE + 64, access, True)
    assert fault.label is CapPageFaultLabel.capsule_Fault_CapAccessTypeError
    assert fault.message(w.kernel.abi)[1:] == [VA_NONE + 64, int(access), 1]
    assert snapshot(w, threads=False) == before


def test_a_type_error_takes_precedence_over_a_read_only_mapping(world: World) -> None:
    w = world
    faults = faults_of(w)
    # a data frame (the IPC buffer) is mapped there: a cap store is a type fault
    ipc = w.kernel.current.ipc_buffer  # type: ignore[union-attr]
    w.call(VS, COPY, [ipc, S_EP], [])
    assert isinstance(faults[0], CapPageTypeFault) and faults[0].expected_caps


@pytest.mark.parametrize("access", list(Access))
def test_data_access_at_a_cap_page_is_a_type_fault_not_a_missing_page(
        world: World, access: Access) -> None:
    w = world
    faults = faults_of(w)
    w.kernel.vm_fault(VA_RO + 0x10, access, 0)
    fault = faults[0]
    assert isinstance(fault, CapPageTypeFault) and not fault.expected_caps
    assert fault.label is CapPageFaultLabel.capsule_Fault_DataAccessTypeError
    assert fault.access.name.endswith(
        {"READ": "DataRead", "WRITE": "DataWrite", "EXECUTE": "Execute"}[access.name])


def test_a_missing_page_stays_a_vm_fault(world: World) -> None:
    w = world
    faults = faults_of(w)
    w.kernel.vm_fault(VA_NONE, Access.READ, 0)
    assert isinstance(faults[0], VMFault)


# --- with the extension off ----------------------------------------------------------------


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_off_the_type_and_labels_are_seL4s_unknown_ones(arch: Arch) -> None:
    w = World(arch)
    free = w.free_slots(2)
    ut = _spare_untyped(w)
    before = snapshot(w)
    assert w.retype(ut, CAP_PAGE_OBJECT_TYPE, 0, free, 1) == Reply(IA, [0])
    for label in CapPageLabel:
        assert w.call(VS, int(label), [S_EP, free, D], [CNODE]) == Reply(IL, [])
        assert w.call(CNODE, int(label), [S_EP, free, D], [CNODE]) == Reply(IL, [])
    assert snapshot(w) == before and not w.kernel.cap_page_maps
    faults = faults_of(w)
    w.kernel.vm_fault(VA, Access.READ, 0)
    assert isinstance(faults[0], VMFault)

