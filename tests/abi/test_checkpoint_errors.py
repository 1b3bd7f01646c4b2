"""The checkpoint object (capsule's extension, not seL4) through seL4_Call on the fake
machine: its error matrix, its effects, and seL4's behaviour when the extension is off.

Every refused case has a stable ID (CKPTOP00xx) and asserts the reply label, its payload
words and that no slot anywhere changed (cap, MDB links, bits). Success cases (01xx)
assert what a reading says and what Install changed. Off cases (02xx): an image without
the extension refuses the type number and the labels exactly as seL4 refuses unknown
ones (InvalidArgument 0 from Untyped_Retype, IllegalOperation from every object).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import CapRights, CapTag, Error, InitialCap
from kernel.abi.extensions import (
    CHECKPOINT_OBJECT_TYPE,
    SLOT_WORDS,
    CheckpointLabel,
    CheckpointSlotFlag,
    IdentityKind,
    object_identity,
)
from kernel.cspace.cdt import insert, is_mdb_parent_of
from kernel.model.caps import (
    CheckpointCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    Rights,
    UntypedCap,
)
from kernel.model.errors import IllegalOperation
from kernel.model.slot import Slot
from kernel.model.state import RefusedInvocation
from kernel.views.invariants import check_all, enable_invariant_checks
from kernel.views.invocations import describe_invocation
from kernel.views.kernel_log import refused_line
from kernel.views.render import snapshot as cspace_snapshot
from tests.abi.cnode_fixtures import World, snapshot
from tests.abi.support import Reply

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
TCB = int(InitialCap.seL4_CapInitThreadTCB)
IRQ = int(InitialCap.seL4_CapIRQControl)
ASID_CONTROL = int(InitialCap.seL4_CapASIDControl)
DOMAIN = int(InitialCap.seL4_CapDomain)
EMPTY_ROOT = int(InitialCap.seL4_CapIOSpace)

CKPT, EP, EP_BADGED, NTFN, L2, FRAME, UT_PARENT, UT_CHILD, FREE, FREE2 = range(4000, 4010)
L2_RADIX = 4
L2_EP, L2_NTFN, L2_FRAME = 1, 3, 9  # L2's non-empty slots

READ = int(CheckpointLabel.capsule_CheckpointReadSlot)
NEXT = int(CheckpointLabel.capsule_CheckpointNextSlot)
INSTALL = int(CheckpointLabel.capsule_CheckpointInstall)

IL, TM, DF, RF = (Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage,
                  Error.seL4_DeleteFirst, Error.seL4_RevokeFirst)
RANGE, FL, IA = Error.seL4_RangeError, Error.seL4_FailedLookup, Error.seL4_InvalidArgument
INVALID_ROOT, MISSING, DEPTH, GUARD = 1, 2, 3, 4
D = 64
T = 1 << 63  # breaks the root CNode's zero guard
ALL = int(CapRights.seL4_AllRights)
RW = int(CapRights.seL4_CanRead | CapRights.seL4_CanWrite)


def _spare_untyped(w: World) -> int:
    """A RAM boot untyped of at least 2^12 bytes other than the largest (which World's
    hand allocator uses), for real retypes."""
    start, end = w.report.bootinfo.untyped
    ram = [i for i in range(start, end) if isinstance(w.slots[i].cap, UntypedCap)
           and not w.slots[i].cap.is_device]  # type: ignore[attr-defined]
    biggest = max(ram, key=lambda i: w.slots[i].cap.size_bits)  # type: ignore[attr-defined]
    fit = [i for i in ram if i != biggest and w.slots[i].cap.size_bits >= 12]  # type: ignore[attr-defined]
    return min(fit, key=lambda i: w.slots[i].cap.size_bits)  # type: ignore[attr-defined]


def _world(arch: Arch) -> World:
    w = World(arch, checkpoint_object=True)
    k = w.kernel
    ut = _spare_untyped(w)
    assert w.retype(ut, CHECKPOINT_OBJECT_TYPE, 0, CKPT, 1) == Reply(0, [])
    ep = w.put(EP, EndpointCap(w.alloc(4)))
    insert(EndpointCap(ep.cap.object_paddr or 0, badge=7, rights=Rights(True, True, False, False)),
           ep, w.slots[EP_BADGED])
    ntfn = w.put(NTFN, NotificationCap(w.alloc(5)))
    frame = w.put(FRAME, FrameCap(w.alloc(12), 12))
    l2 = w.put(L2, w.cnode_cap(L2_RADIX))
    node = k.objects[l2.cap.object_paddr or 0]
    insert(ep.cap, ep, node.slots[L2_EP])  # type: ignore[union-attr]
    insert(NotificationCap(ntfn.cap.object_paddr or 0, badge=5), ntfn,
           node.slots[L2_NTFN])  # type: ignore[union-attr]
    insert(frame.cap, frame, node.slots[L2_FRAME])  # type: ignore[union-attr]
    ut_paddr = w.alloc(12)
    w.put(UT_PARENT, UntypedCap(ut_paddr, 12, free_index=(1 << 10) >> 4))
    insert(UntypedCap(ut_paddr, 10), w.slots[UT_PARENT], w.slots[UT_CHILD])
    enable_invariant_checks(k)
    check_all(k)
    return w


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    return _world(request.param)


def _reading(reply: Reply) -> dict[str, int]:
    assert reply.label == 0, reply
    return {p.name: word for p, word in zip(SLOT_WORDS, reply.words, strict=True)}


def read(w: World, index: int, depth: int = D, root: int = CNODE) -> dict[str, int]:
    return _reading(w.call(CKPT, READ, [index, depth], [root]))


# --- the error matrix -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    label: int
    args: list[int]
    extra: list[int] = field(default_factory=list)
    error: Error = IL
    words: list[int] = field(default_factory=list)
    length: int | None = None


CASES = [
    # labels: only the three methods
    Case("CKPTOP0001", 0, [FREE, D], [CNODE], IL),
    Case("CKPTOP0002", INSTALL + 1, [FREE, D], [CNODE], IL),
    Case("CKPTOP0003", READ - 1, [FREE, D], [CNODE], IL),
    # ReadSlot
    Case("CKPTOP0004", READ, [EP], [CNODE], TM),
    Case("CKPTOP0005", READ, [EP, D], [], TM),
    Case("CKPTOP0006", READ, [EP, 0], [CNODE], RANGE, [1, 64]),
    Case("CKPTOP0007", READ, [EP, 65], [CNODE], RANGE, [1, 64]),
    Case("CKPTOP0008", READ, [EP, D], [EP], FL, [0, INVALID_ROOT]),
    Case("CKPTOP0009", READ, [EP, D], [EMPTY_ROOT], FL, [0, INVALID_ROOT]),
    Case("CKPTOP0010", READ, [T, D], [CNODE], FL, [0, GUARD, 64, 0, 52]),
    Case("CKPTOP0011", READ, [EP >> 4, 60], [CNODE], FL, [0, DEPTH, 60, 64]),
    Case("CKPTOP0012", READ, [L2_EP << 4, 8], [L2], FL, [0, DEPTH, 4, 0]),
    # NextSlot
    Case("CKPTOP0013", NEXT, [L2, D], [CNODE], TM),
    Case("CKPTOP0014", NEXT, [L2, D, 0], [], TM),
    Case("CKPTOP0015", NEXT, [EP, D, 0], [CNODE], FL, [0, MISSING, 64]),
    Case("CKPTOP0016", NEXT, [FREE, D, 0], [CNODE], FL, [0, MISSING, 64]),
    Case("CKPTOP0017", NEXT, [0, 0, 0], [EP], FL, [0, MISSING, 0]),
    Case("CKPTOP0018", NEXT, [L2, 65, 0], [CNODE], RANGE, [1, 64]),
    Case("CKPTOP0019", NEXT, [T, D, 0], [CNODE], FL, [0, GUARD, 64, 0, 52]),
    Case("CKPTOP0020", NEXT, [L2, D, 17], [CNODE], RANGE, [0, 16]),
    Case("CKPTOP0021", NEXT, [0, 0, 17], [L2], RANGE, [0, 16]),
    # Install: target named through extra cap 0, then CNode_Mint's rules
    Case("CKPTOP0022", INSTALL, [FREE], [CNODE, CNODE], TM),
    Case("CKPTOP0023", INSTALL, [FREE, D, EP, D, ALL, 0], [], TM),
    Case("CKPTOP0024", INSTALL, [FREE, D, EP, D, ALL, 0], [EP, CNODE], FL, [0, INVALID_ROOT]),
    Case("CKPTOP0025", INSTALL, [FREE, 0, EP, D, ALL, 0], [CNODE, CNODE], RANGE, [1, 64]),
    Case("CKPTOP0026", INSTALL, [FREE, D, EP, D, ALL, 0], [CNODE], TM),
    Case("CKPTOP0027", INSTALL, [FREE, D, EP], [CNODE, CNODE], TM),
    Case("CKPTOP0028", INSTALL, [NTFN, D, EP, D, ALL, 0], [CNODE, CNODE], DF),
    Case("CKPTOP0029", INSTALL, [L2_EP, L2_RADIX, EP, D, ALL, 0], [L2, CNODE], DF),
    Case("CKPTOP0030", INSTALL, [FREE, D, FREE2, D, ALL, 0], [CNODE, CNODE], FL,
         [1, MISSING, 64]),
    Case("CKPTOP0031", INSTALL, [FREE, D, T, D, ALL, 0], [CNODE, CNODE], FL,
         [1, GUARD, 64, 0, 52]),
    Case("CKPTOP0032", INSTALL, [FREE, D, EP, D, ALL, 0], [CNODE, EP], FL, [1, INVALID_ROOT]),
    Case("CKPTOP0033", INSTALL, [FREE, D, EP, D, ALL], [CNODE, CNODE], TM),
    Case("CKPTOP0034", INSTALL, [FREE, D, EP_BADGED, D, ALL, 9], [CNODE, CNODE], IL),
    Case("CKPTOP0035", INSTALL, [FREE, D, UT_PARENT, D, ALL, 0], [CNODE, CNODE], RF),
    Case("CKPTOP0036", INSTALL, [FREE, D, IRQ, D, ALL, 0], [CNODE, CNODE], IL),
    Case("CKPTOP0037", INSTALL, [FREE, D, L2, D, ALL, (63 << 0)], [CNODE, CNODE], IL),
    # the length counts, not the words present
    Case("CKPTOP0038", READ, [EP, D], [CNODE], TM, length=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_invocation_changes_nothing(world: World, case: Case) -> None:
    before = snapshot(world)
    reply = world.call(CKPT, case.label, case.args, case.extra, length=case.length)
    assert reply == Reply(case.error, case.words)
    assert snapshot(world) == before
    assert world.kernel.stop is None


def test_case_ids_are_unique_and_in_order() -> None:
    ids = [c.id for c in CASES]
    assert ids == sorted(set(ids))


# --- what a reading says --------------------------------------------------------------


def _identity(kind: IdentityKind, w: World, slot: int) -> int:
    return object_identity(kind, w.slots[slot].cap.object_paddr or 0)


def test_CKPTOP0101_endpoint_caps_read_with_badge_rights_and_one_identity(world: World) -> None:
    ep, badged = read(world, EP), read(world, EP_BADGED)
    assert ep["type"] == badged["type"] == CapTag.endpoint_cap
    assert (ep["rights"], ep["badge"]) == (ALL, 0)
    assert (badged["rights"], badged["badge"]) == (RW, 7)
    assert ep["object"] == badged["object"] == _identity(IdentityKind.capsule_ObjectEndpoint,
                                                        world, EP)
    # EP is a boot-style root with children (the badged copy and L2's copy); the badged
    # copy is a revocable badge parent without children.
    assert ep["flags"] == CheckpointSlotFlag.capsule_SlotHasChildren \
        | CheckpointSlotFlag.capsule_SlotRevocable
    assert badged["flags"] == CheckpointSlotFlag.capsule_SlotRevocable


def test_CKPTOP0102_other_caps_read_with_their_fields(world: World) -> None:
    l2 = read(world, L2)
    assert (l2["type"], l2["size_bits"], l2["guard_size"], l2["badge"]) == \
        (CapTag.cnode_cap, L2_RADIX, 0, 0)
    assert l2["object"] == _identity(IdentityKind.capsule_ObjectCNode, world, L2)
    frame = read(world, FRAME)
    assert (frame["type"], frame["size_bits"], frame["rights"], frame["mapped_vaddr"]) == \
        (CapTag.frame_cap, 12, ALL, 0)
    assert not frame["flags"] & CheckpointSlotFlag.capsule_SlotMapped
    ut = read(world, UT_PARENT)
    assert (ut["type"], ut["size_bits"]) == (CapTag.untyped_cap, 12)
    assert ut["flags"] & CheckpointSlotFlag.capsule_SlotHasChildren
    child = read(world, UT_CHILD)
    assert child["size_bits"] == 10 and child["object"] == ut["object"]
    ck = read(world, CKPT)
    assert (ck["type"], ck["rights"]) == (CapTag.checkpoint_cap, ALL)
    assert ck["object"] & 0xF == IdentityKind.capsule_ObjectCheckpoint
    assert read(world, FREE) == dict.fromkeys(ck, 0)
    # A different object of another kind never has the same identity.
    assert len({read(world, s)["object"] for s in (CKPT, EP, NTFN, L2, FRAME)}) == 5


def test_CKPTOP0103_read_inside_a_cnode_named_by_a_cnode_cap(world: World) -> None:
    ntfn = read(world, L2_NTFN, L2_RADIX, root=L2)
    assert (ntfn["type"], ntfn["badge"]) == (CapTag.notification_cap, 5)
    assert ntfn["object"] == read(world, NTFN)["object"]
    assert read(world, L2_EP, L2_RADIX, root=L2)["object"] == read(world, EP)["object"]


def test_CKPTOP0104_next_slot_walks_the_non_empty_slots_then_gives_the_end(world: World) -> None:
    found, start = [], 0
    while True:
        reply = world.call(CKPT, NEXT, [L2, D, start], [CNODE])
        assert reply.label == 0 and len(reply.words) == 1 + len(SLOT_WORDS)
        index = reply.words[0]
        if index == 1 << L2_RADIX:
            assert reply.words[1:] == [0] * len(SLOT_WORDS)
            break
        reading = _reading(Reply(0, reply.words[1:]))
        assert reading == read(world, index, L2_RADIX, root=L2)
        found.append((index, reading["type"]))
        start = index + 1
    assert found == [(L2_EP, CapTag.endpoint_cap), (L2_NTFN, CapTag.notification_cap),
                     (L2_FRAME, CapTag.frame_cap)]
    # depth 0: the root cap itself is the CNode; start == the slot count is allowed.
    assert world.call(CKPT, NEXT, [0, 0, L2_NTFN], [L2]).words[0] == L2_NTFN
    assert world.call(CKPT, NEXT, [0, 0, 16], [L2]).words[0] == 16


def test_CKPTOP0105_install_mints_into_the_named_slot_as_a_child(world: World) -> None:
    node_slot = 2  # an empty slot of L2
    before = snapshot(world)
    reply = world.call(CKPT, INSTALL, [node_slot, L2_RADIX, NTFN, D, int(
        CapRights.seL4_CanWrite), 0x33], [L2, CNODE])
    assert reply == Reply(0, [])
    assert snapshot(world) != before
    node = world.kernel.objects[world.slots[L2].cap.object_paddr or 0]
    dest: Slot = node.slots[node_slot]  # type: ignore[union-attr]
    assert dest.cap == NotificationCap(world.slots[NTFN].cap.object_paddr or 0, badge=0x33,
                                       rights=Rights(True, False, True, True))
    assert is_mdb_parent_of(world.kernel, world.slots[NTFN], dest)
    reading = read(world, node_slot, L2_RADIX, root=L2)
    assert (reading["badge"], reading["rights"] & RW) == (0x33, int(CapRights.seL4_CanWrite))
    # A CNode cap takes its guard from the badge word, as with Mint.
    guard_data = (3 << 6) | 2  # guard 3, 2 bits
    assert world.call(CKPT, INSTALL, [FREE, D, L2, D, ALL, guard_data],
                      [CNODE, CNODE]) == Reply(0, [])
    assert world.slots[FREE].cap == CNodeCap(world.slots[L2].cap.object_paddr or 0, L2_RADIX,
                                             2, 3)
    got = read(world, FREE)
    assert (got["badge"], got["guard_size"], got["size_bits"]) == (3, 2, L2_RADIX)


def test_CKPTOP0106_the_views_name_the_object_and_the_invocations(world: World) -> None:
    snap = cspace_snapshot(world.kernel)
    assert any(o.type == "Checkpoint" for o in snap.objects)
    assert any(c.type == "checkpoint" for c in snap.caps.values())
    line = refused_line(world.kernel, RefusedInvocation(
        world.kernel.current, 0x1000, world.slots[CKPT].cap, READ,  # type: ignore[arg-type]
        IllegalOperation()))
    assert "CheckpointCap: capsule_CheckpointReadSlot: IllegalOperation" in line
    assert world.call(CKPT, READ, [EP, D], [CNODE]).label == 0
    text = describe_invocation(world.kernel, world.kernel.last_invocation)
    assert text.startswith("CheckpointReadSlot(slot=")


def test_CKPTOP0107_retype_from_device_memory_is_refused(world: World) -> None:
    start, end = world.report.bootinfo.untyped
    device = next(i for i in range(start, end) if isinstance(world.slots[i].cap, UntypedCap)
                  and world.slots[i].cap.is_device)  # type: ignore[attr-defined]
    before = snapshot(world)
    assert world.retype(device, CHECKPOINT_OBJECT_TYPE, 0, FREE, 1) == Reply(IA, [1])
    assert snapshot(world) == before


def test_CKPTOP0108_a_checkpoint_cap_copies_and_dies_with_its_untyped(world: World) -> None:
    assert world.call(CNODE, world.label("CNodeCopy"), [FREE, D, CKPT, D, ALL],
                      [CNODE]) == Reply(0, [])
    assert world.slots[FREE].cap == world.slots[CKPT].cap
    assert isinstance(world.slots[CKPT].cap, CheckpointCap)
    assert world.call(FREE, READ, [EP, D], [CNODE]).label == 0
    ut = _spare_untyped(world)
    assert world.call(CNODE, world.label("CNodeRevoke"), [ut, D]) == Reply(0, [])
    assert world.slots[CKPT].is_empty and world.slots[FREE].is_empty


# --- the extension off: seL4 ----------------------------------------------------------


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def plain(request: pytest.FixtureRequest) -> World:
    w = World(request.param)
    enable_invariant_checks(w.kernel)
    return w


def test_CKPTOP0201_off_the_type_number_is_an_invalid_retype_type(plain: World) -> None:
    ut = _spare_untyped(plain)
    free = plain.free_slots(1)
    before = snapshot(plain)
    assert plain.retype(ut, CHECKPOINT_OBJECT_TYPE, 0, free, 1) == Reply(IA, [0])
    assert snapshot(plain) == before


@pytest.mark.parametrize("label", [int(m) for m in CheckpointLabel])
def test_CKPTOP0202_off_the_labels_are_illegal_on_every_object(plain: World, label: int) -> None:
    ut = _spare_untyped(plain)
    ipc_buffer = int(InitialCap.seL4_CapInitThreadIPCBuffer)
    vspace = int(InitialCap.seL4_CapInitThreadVSpace)
    free = plain.free_slots(1)
    for cptr in (CNODE, TCB, ut, ipc_buffer, vspace, ASID_CONTROL, IRQ, DOMAIN,
                 int(InitialCap.seL4_CapInitThreadASIDPool)):
        before = snapshot(plain)
        reply = plain.call(cptr, label, [free, D, EP, D, ALL, 0], [CNODE, CNODE])
        assert reply == Reply(IL, []), (cptr, reply)
        assert snapshot(plain) == before
    # An empty slot is an invalid capability, whatever the label (seL4).
    assert plain.call(free, label, [EP, D], [CNODE]) == Reply(Error.seL4_InvalidCapability, [0])
    assert plain.kernel.stop is None


def test_CKPTOP0203_on_the_labels_are_still_illegal_on_other_objects(world: World) -> None:
    for cptr in (CNODE, TCB, L2, FRAME, UT_PARENT):
        for label in CheckpointLabel:
            assert world.call(cptr, int(label), [FREE, D], [CNODE]) == Reply(IL, [])
