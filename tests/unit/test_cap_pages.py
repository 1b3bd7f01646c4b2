"""Capability pages (capsule's extension, not seL4) on the fake machine: the declaration
keeps clear of seL4's numbers, the weakening rules, a frame cannot be mapped over a
capability page, the views name it, and a kernel with mapped capability pages pickles."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest

from kernel.abi.arch import Arch, ObjectTypeAArch64, ObjectTypeRV64
from kernel.abi.constants import CapTag, FaultLabel
from kernel.abi.extensions import (
    CAP_PAGE_METHODS,
    CAP_PAGE_OBJECT_TYPE,
    CAP_PAGE_RADIX,
    CHECKPOINT_OBJECT_TYPE,
    CapPageAccess,
    CapPageFaultLabel,
    CapPageLabel,
    CheckpointLabel,
    configured_labels,
    configured_methods,
)
from kernel.abi.labels import label_table
from kernel.abi.methods import methods_for
from kernel.cspace.restrictions import weaken
from kernel.model.caps import (
    NULL_CAP,
    CapPageCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    Rights,
    ThreadCap,
)
from kernel.model.faults import CapPageTypeFault
from kernel.model.paging import PteKind
from kernel.objects.page_table import lookup_pt_slot
from kernel.objects.retype import Kind, object_types
from kernel.views.invariants import check_all
from kernel.views.kernel_log import fault_text
from kernel.views.trace import Tracer, TraceRecord, format_record
from tests.abi.support import Reply
from tests.abi.test_cap_page_errors import (
    CNODE,
    FREE,
    LOAD,
    MAP,
    PAGE,
    S_EP,
    SPARE_PAGE,
    VA,
    VS,
    _world,
)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
@pytest.mark.parametrize("mcs", [False, True])
def test_the_numbers_keep_clear_of_sel4_and_of_the_checkpoint_object(arch: Arch, mcs: bool) -> None:
    sel4 = set(label_table(arch, mcs).values())
    ours = {int(m) for m in CapPageLabel}
    assert not sel4 & ours and not ours & {int(m) for m in CheckpointLabel}
    assert not {int(m) for m in CapPageFaultLabel} & {int(m) for m in FaultLabel}
    assert set(configured_labels(arch, mcs, False, False).values()) == sel4
    assert set(configured_labels(arch, mcs, False, True).values()) == sel4 | ours
    assert configured_methods(arch, mcs, False, False) == methods_for(arch, mcs)
    assert configured_methods(arch, mcs, False, True)[-len(CAP_PAGE_METHODS):] == CAP_PAGE_METHODS
    enum = ObjectTypeRV64 if arch is Arch.RISCV64 else ObjectTypeAArch64
    assert CAP_PAGE_OBJECT_TYPE > max(enum) and CAP_PAGE_OBJECT_TYPE != CHECKPOINT_OBJECT_TYPE
    for fpu_bits in (10, 11):
        plain = object_types(arch, fpu_bits)
        assert CAP_PAGE_OBJECT_TYPE not in plain
        on = object_types(arch, fpu_bits, False, True)
        assert on[CAP_PAGE_OBJECT_TYPE].kind is Kind.CAP_PAGE
        assert on[CAP_PAGE_OBJECT_TYPE].fixed_bits == 12
        assert {n: t for n, t in on.items() if n != CAP_PAGE_OBJECT_TYPE} == plain
    others = {int(t) for t in CapTag if t is not CapTag.cap_page_cap}
    assert int(CapTag.cap_page_cap) % 2 == 0 and int(CapTag.cap_page_cap) not in others


def test_one_page_of_32_byte_slots_is_128_slots() -> None:
    assert CAP_PAGE_RADIX == 7 and (32 << CAP_PAGE_RADIX) == 4096


def test_the_weakening_rules() -> None:
    frame = FrameCap(0x1000, 12)
    weak_frame = weaken(frame)
    assert isinstance(weak_frame, FrameCap)
    assert (weak_frame.rights.read, weak_frame.rights.write) == (True, False)
    assert weaken(weak_frame) == weak_frame
    node = weaken(CNodeCap(0x2000, 4, 60, 0))
    assert node == CNodeCap(0x2000, 4, 60, 0, read_only=True, weak=True)
    page = weaken(CapPageCap(0x3000, 7))
    assert isinstance(page, CapPageCap) and page.read_only and page.weak
    for cap in (EndpointCap(0x4000), NotificationCap(0x5000, 3), ThreadCap(0x6000), NULL_CAP):
        assert weaken(cap) is NULL_CAP
    # A frame with no rights stays without (weakening never adds).
    none = FrameCap(0x1000, 12, rights=Rights(False, False, True, True))
    assert weaken(none) == none


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_frame_cannot_be_mapped_over_a_cap_page(arch: Arch) -> None:
    w = _world(arch)
    k = w.kernel
    root = k.current.vtable.cap.paddr  # type: ignore[union-attr]
    ipc = k.current.ipc_buffer & ~0xFFF  # type: ignore[union-attr]
    # A page beside the root task's image with a last-level table but no frame.
    vaddr = next(v for v in range(ipc + 0x1000, ipc + 0x100000, 0x1000)
                 if (where := lookup_pt_slot(k, root, v)).bits_left == 12
                 and k.paging.decode(where.entry, where.level)[0] is PteKind.INVALID)
    assert w.call(SPARE_PAGE, MAP, [vaddr, 0], [VS]) == Reply(0, [])
    frame = w.free_slots(1)
    w.put(frame, FrameCap(w.alloc(12), 12))
    label = "RISCVPageMap" if arch is Arch.RISCV64 else "ARMPageMap"
    assert w.call(frame, w.label(label), [vaddr, 3, 0], [VS]).label == 8  # DeleteFirst
    assert not w.cap(frame).is_mapped  # type: ignore[attr-defined]
    # once the capability page is unmapped, the very same Map succeeds
    assert w.call(SPARE_PAGE, int(CapPageLabel.capsule_CapPageUnmap)) == Reply(0, [])
    assert w.call(frame, w.label(label), [vaddr, 3, 0], [VS]) == Reply(0, [])


def test_the_trace_and_the_log_name_the_invocations_and_faults() -> None:
    w = _world(Arch.RISCV64)
    records: list[TraceRecord] = []
    Tracer(w.kernel, records.append)
    assert w.call(VS, LOAD, [S_EP, FREE, 64], [CNODE]) == Reply(0, [])
    (record,) = records
    assert record.label == "capsule_VSpaceCapLoad"
    line = format_record(record)
    assert "capsule_VSpaceCapLoad" in line and f"vaddr={S_EP:#x}" in line, line
    fault = CapPageTypeFault(0x1000, VA, CapPageAccess.capsule_AccessDataWrite, False)
    assert fault.message(w.kernel.abi) == [0x1000, VA, 1, 0]
    assert fault_text(fault).startswith("DataAccessTypeError: DataWrite at address")


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_kernel_with_mapped_cap_pages_pickles(arch: Arch) -> None:
    w = _world(arch)
    copy = pickle.loads(pickle.dumps(w.kernel))
    assert copy.cap_page_maps == w.kernel.cap_page_maps and len(copy.cap_page_maps) == 3
    page = w.cap(PAGE)
    assert isinstance(page, CapPageCap)
    assert copy.cap_page_maps[(page.mapped_asid, VA)].page == page.paddr


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_a_cap_reached_through_a_weak_path_is_not_usable_in_place(arch: Arch) -> None:
    from kernel.cspace.cdt import insert
    from kernel.cspace.lookup import lookup_slot
    from kernel.model.cnode import CNode
    from tests.abi.test_cap_page_errors import FRAME, L2, L2_EP, WEAK_L2

    w = _world(arch)
    k = w.kernel
    node = k.object_at(w.cap(L2).object_paddr or 0, CNode)
    insert(w.cap(FRAME), w.slots[FRAME], node.slots[2])
    insert(weaken(w.cap(FRAME)), w.slots[FRAME], node.slots[3])
    insert(weaken(w.cap(L2)), w.slots[L2], node.slots[4])
    tcb = w.tcb()
    # its CSpace root: the L2 CNode (radix 4, guard 60 bits), first strong, then weak
    strong = CNodeCap(node.paddr, 4, 60, 0)
    insert(strong, w.slots[L2], tcb.ctable)
    assert lookup_slot(k, tcb, L2_EP) is node.slots[L2_EP]
    tcb.ctable.cap = replace(strong, weak=True, read_only=True)
    hidden = lookup_slot(k, tcb, L2_EP)
    assert isinstance(hidden, type(node.slots[L2_EP])) and hidden is not node.slots[L2_EP]
    assert hidden.is_empty and hidden.mdb_prev is None and hidden.mdb_next is None
    assert lookup_slot(k, tcb, 2).is_empty  # a writable frame: weakening changes it
    assert lookup_slot(k, tcb, 3) is node.slots[3]  # already read-only: usable
    assert lookup_slot(k, tcb, 4) is node.slots[4]  # a read-only weak CNode: usable
    # the weak cap itself, in a strong CNode, is usable (its slot in the root CNode)
    assert isinstance(w.slots[WEAK_L2].cap, CNodeCap)
    tcb.ctable.cap = strong
    check_all(k)


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_no_receive_slot_through_a_read_only_path(arch: Arch) -> None:
    import struct

    from kernel.core import ipc_transfer
    from tests.abi.test_cap_page_errors import L2, RO_L2

    w = _world(arch)
    current = w.kernel.current
    assert current is not None
    for root, expected in ((L2, True), (RO_L2, False)):
        w.machine.write_phys(w.ipc_paddr() + 8 * ipc_transfer._RECV_WORD,
                             struct.pack("<3Q", root, 5, 4))
        found = ipc_transfer.receive_slot(w.kernel, current)
        assert (found is not None) is expected


@pytest.mark.parametrize("arch", list(Arch), ids=lambda a: a.short)
def test_checkpoint_install_through_a_read_only_path_is_refused(arch: Arch) -> None:
    from kernel.abi.constants import CapRights
    from kernel.abi.extensions import CHECKPOINT_OBJECT_TYPE, CheckpointLabel
    from kernel.cspace.cdt import insert
    from tests.abi.cnode_fixtures import World, snapshot
    from tests.abi.test_cap_page_errors import _spare_untyped

    w = World(arch, checkpoint_object=True, cap_pages=True)
    first = w.free_slots(4)
    ckpt, ep, node, ro_node = range(first, first + 4)
    assert w.retype(_spare_untyped(w), CHECKPOINT_OBJECT_TYPE, 0, ckpt, 1) == Reply(0, [])
    w.put(ep, EndpointCap(w.alloc(4)))
    strong = w.put(node, w.cnode_cap(4))
    insert(replace(strong.cap, read_only=True), strong, w.slots[ro_node])  # type: ignore[type-var]
    install = int(CheckpointLabel.capsule_CheckpointInstall)
    words = [5, 4, ep, 64, int(CapRights.seL4_AllRights), 0]
    before = snapshot(w)
    assert w.call(ckpt, install, words, [ro_node, CNODE]) == Reply(3, [])  # IllegalOperation
    assert snapshot(w) == before
    assert w.call(ckpt, install, words, [node, CNODE]) == Reply(0, [])


def test_a_stale_record_does_not_keep_a_later_vspace_from_mapping_frames() -> None:
    """A record of an earlier VSpace that had the ASID (its root gone) covers nothing in
    the VSpace that has the ASID now: frames map there; the live one's record still
    covers its page."""
    from kernel.model.cap_page import CapPageMapping, covers

    maps = {(3, 0x40000): CapPageMapping(root=0x81000000, page=0x82000000, read_only=False,
                                         weak=False)}
    assert covers(maps, 3, 0x81000000, 0x40000, 0x1000)
    assert covers(maps, 3, 0x81000000, 0x0, 0x200000)  # a large frame around it
    assert not covers(maps, 3, 0x83000000, 0x40000, 0x1000)  # the ASID's later VSpace
    assert not covers(maps, 4, 0x81000000, 0x40000, 0x1000)
    assert not covers(maps, 3, 0x81000000, 0x41000, 0x1000)
