"""CNode invocations through seL4_Call on the fake machine: the error matrix and effects.

Every refused case has a stable ID (CNODEOP00xx) and asserts the reply label, its payload
words and that no slot anywhere changed (cap, MDB links, bits). Success cases (01xx)
assert the effect and the shape of the derivation tree. Expected values come from
abi/invocations.md ("Decode notes"), objects.md and errors.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kernel.abi.arch import Arch
from kernel.abi.constants import Error, InitialCap, Syscall
from kernel.cspace.cdt import insert, is_mdb_parent_of
from kernel.model.caps import (
    CNodeCap,
    EndpointCap,
    FrameCap,
    PageTableCap,
    ReplyCap,
    Rights,
    ThreadCap,
    UntypedCap,
)
from kernel.model.message import MessageInfo
from kernel.model.tcb import CALLER, ThreadState
from kernel.views.invariants import check_all, enable_invariant_checks
from tests.abi.cnode_fixtures import World, snapshot
from tests.abi.support import Reply

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
TCB = int(InitialCap.seL4_CapInitThreadTCB)
IRQ = int(InitialCap.seL4_CapIRQControl)
IPCBUF = int(InitialCap.seL4_CapInitThreadIPCBuffer)
EMPTY_ROOT = int(InitialCap.seL4_CapIOSpace)  # always empty on these platforms

# Slots the fixture fills (root CNode, depth 64):
EP, EP_BADGED, EP_NO_GRANT, L2, PT, UT_PARENT, UT_CHILD, FREE, FREE2, FREE3 = range(4000, 4010)
L2_RADIX, L2_EP = 4, 3  # L2 is a 16-slot CNode (no guard) whose slot 3 holds an endpoint

IL, TM, DF, RF = (Error.seL4_IllegalOperation, Error.seL4_TruncatedMessage,
                  Error.seL4_DeleteFirst, Error.seL4_RevokeFirst)
RANGE, FL = Error.seL4_RangeError, Error.seL4_FailedLookup
INVALID_ROOT, MISSING, DEPTH, GUARD = 1, 2, 3, 4


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def world(request: pytest.FixtureRequest) -> World:
    w = World(request.param)
    k = w.kernel
    w.put(EP, EndpointCap(w.alloc(4)))
    w.put(EP_BADGED, EndpointCap(w.alloc(4), badge=7))
    w.put(EP_NO_GRANT, EndpointCap(w.alloc(4), rights=Rights(True, True, False, True)))
    l2 = w.put(L2, w.cnode_cap(L2_RADIX))
    l2_node = k.objects[l2.cap.paddr]  # type: ignore[attr-defined]
    w.put(l2_node.slots[L2_EP], EndpointCap(w.alloc(4)))
    w.put(PT, PageTableCap(w.alloc(12)))  # never mapped
    ut_paddr = w.alloc(12)
    w.put(UT_PARENT, UntypedCap(ut_paddr, 12, free_index=(1 << 10) >> 4))
    insert(UntypedCap(ut_paddr, 10), w.slots[UT_PARENT], w.slots[UT_CHILD])
    enable_invariant_checks(k)
    check_all(k)
    return w


def label(w: World, name: str) -> int:
    return w.label(name)


# --- the error matrix -----------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One refused invocation: ``method`` label name, message words, extra caps."""

    id: str
    method: str
    args: list[int]
    extra: list[int] = field(default_factory=list)
    error: Error = IL
    words: list[int] = field(default_factory=list)
    length: int | None = None
    cptr: int = CNODE


T = 1 << 63  # an index whose high bit breaks the root CNode's zero guard
D = 64

CASES = [
    # label and length
    Case("CNODEOP0001", "UntypedRetype", [FREE, D], error=IL),
    Case("CNODEOP0002", "InvalidInvocation", [FREE, D], error=IL),
    Case("CNODEOP0003", "IRQIssueIRQHandler", [FREE, D], error=IL),
    Case("CNODEOP0004", "CNodeRevoke", [FREE], error=TM),
    Case("CNODEOP0005", "CNodeDelete", [], error=TM),
    # target lookup (resolved in the invoked CNode; was_source = 0)
    Case("CNODEOP0006", "CNodeDelete", [FREE, 0], error=RANGE, words=[1, 64]),
    Case("CNODEOP0007", "CNodeDelete", [FREE, 65], error=RANGE, words=[1, 64]),
    Case("CNODEOP0008", "CNodeDelete", [FREE, (1 << 64) - 1], error=RANGE, words=[1, 64]),
    Case("CNODEOP0009", "CNodeDelete", [T, D], error=FL, words=[0, GUARD, 64, 0, 52]),
    Case("CNODEOP0010", "CNodeDelete", [FREE >> 4, 60], error=FL, words=[0, DEPTH, 60, 64]),
    Case("CNODEOP0011", "CNodeDelete", [FREE, 12], error=FL, words=[0, GUARD, 12, 0, 52]),
    Case("CNODEOP0012", "CNodeDelete", [L2_EP << 4, 8], cptr=L2, error=FL,
         words=[0, DEPTH, 4, 0]),
    # Copy / Mint / Move / Mutate: common part
    Case("CNODEOP0013", "CNodeCopy", [FREE, D, TCB, D, 0xF], error=TM),
    Case("CNODEOP0014", "CNodeCopy", [FREE, D, TCB], [CNODE], error=TM),
    Case("CNODEOP0015", "CNodeCopy", [EP, D, TCB, D, 0xF], [CNODE], error=DF),
    Case("CNODEOP0016", "CNodeCopy", [FREE, 0, TCB, D, 0xF], error=RANGE, words=[1, 64]),
    Case("CNODEOP0017", "CNodeCopy", [FREE, D, TCB, D, 0xF], [TCB], error=FL,
         words=[1, INVALID_ROOT]),
    Case("CNODEOP0018", "CNodeCopy", [FREE, D, TCB, 0, 0xF], [EMPTY_ROOT], error=FL,
         words=[1, INVALID_ROOT]),
    Case("CNODEOP0019", "CNodeCopy", [FREE, D, TCB, 0, 0xF], [CNODE], error=RANGE, words=[1, 64]),
    Case("CNODEOP0020", "CNodeCopy", [FREE, D, T, D, 0xF], [CNODE], error=FL,
         words=[1, GUARD, 64, 0, 52]),
    Case("CNODEOP0021", "CNodeCopy", [FREE, D, FREE2, D, 0xF], [CNODE], error=FL,
         words=[1, MISSING, 64]),
    Case("CNODEOP0022", "CNodeCopy", [FREE, D, 5, L2_RADIX, 0xF], [L2], error=FL,
         words=[1, MISSING, 4]),
    Case("CNODEOP0023", "CNodeCopy", [FREE, D, TCB, D], [CNODE], error=TM),
    Case("CNODEOP0024", "CNodeCopy", [FREE, D, FREE2, D], [CNODE], error=FL,
         words=[1, MISSING, 64]),
    Case("CNODEOP0025", "CNodeCopy", [FREE, D, IRQ, D, 0xF], [CNODE], error=IL),
    Case("CNODEOP0026", "CNodeCopy", [FREE, D, UT_PARENT, D, 0xF], [CNODE], error=RF),
    Case("CNODEOP0027", "CNodeCopy", [FREE, D, PT, D, 0xF], [CNODE], error=IL),
    Case("CNODEOP0028", "CNodeMint", [FREE, D, EP, D, 0xF], [CNODE], error=TM),
    Case("CNODEOP0029", "CNodeMint", [FREE, D, EP_BADGED, D, 0xF, 9], [CNODE], error=IL),
    Case("CNODEOP0030", "CNodeMint", [FREE, D, CNODE, D, 0xF, 53], [CNODE], error=IL),
    Case("CNODEOP0031", "CNodeMint", [FREE, D, IRQ, D, 0xF, 0], [CNODE], error=IL),
    Case("CNODEOP0032", "CNodeMove", [EP, D, TCB, D], [CNODE], error=DF),
    Case("CNODEOP0033", "CNodeMove", [FREE, D, FREE2, D], [CNODE], error=FL,
         words=[1, MISSING, 64]),
    Case("CNODEOP0034", "CNodeMutate", [FREE, D, L2, D], [CNODE], error=TM),
    Case("CNODEOP0035", "CNodeMutate", [FREE, D, EP, D, 0], [CNODE], error=IL),
    Case("CNODEOP0036", "CNodeMutate", [FREE, D, L2, D, 61], [CNODE], error=IL),
    # Rotate: MR0/1 dest, MR2 dest data, MR3/4 pivot, MR5 pivot data, MR6/7 src
    Case("CNODEOP0037", "CNodeRotate", [FREE, D, 0, L2, D, 0, TCB], [CNODE, CNODE], error=TM),
    Case("CNODEOP0038", "CNodeRotate", [FREE, D, 0, L2, D, 0, TCB, D], [CNODE], error=TM),
    Case("CNODEOP0039", "CNodeRotate", [FREE, D, 0, L2, D, 0, TCB, D], [CNODE, TCB],
         error=FL, words=[1, INVALID_ROOT]),
    Case("CNODEOP0040", "CNodeRotate", [FREE, D, 0, L2, D, 0, TCB, D], [TCB, CNODE],
         error=FL, words=[1, INVALID_ROOT]),
    Case("CNODEOP0041", "CNodeRotate", [FREE, D, 0, TCB, D, 0, TCB, D], [CNODE, CNODE],
         error=IL),
    Case("CNODEOP0042", "CNodeRotate", [FREE, D, 0, FREE, D, 0, TCB, D], [CNODE, CNODE],
         error=IL),
    Case("CNODEOP0043", "CNodeRotate", [IPCBUF, D, 0, L2, D, 0, TCB, D], [CNODE, CNODE],
         error=DF),
    Case("CNODEOP0044", "CNodeRotate", [FREE, D, 0, L2, D, 0, FREE2, D], [CNODE, CNODE],
         error=FL, words=[1, MISSING, 64]),
    Case("CNODEOP0045", "CNodeRotate", [FREE, D, 0, FREE2, D, 0, TCB, D], [CNODE, CNODE],
         error=FL, words=[0, MISSING, 64]),
    Case("CNODEOP0046", "CNodeRotate", [FREE, D, 0, EP, D, 0, TCB, D], [CNODE, CNODE],
         error=IL),
    Case("CNODEOP0047", "CNodeRotate", [FREE, D, 0, TCB, D, 0, EP, D], [CNODE, CNODE],
         error=IL),
    Case("CNODEOP0048", "CNodeRotate", [FREE, D, 61, L2, D, 0, TCB, D], [CNODE, CNODE],
         error=IL),
    Case("CNODEOP0049", "CNodeRotate", [FREE, D, 0, L2, D, 0, TCB, 65], [CNODE, CNODE],
         error=RANGE, words=[1, 64]),
    # SaveCaller, CancelBadgedSends
    Case("CNODEOP0050", "CNodeSaveCaller", [EP, D], error=DF),
    Case("CNODEOP0051", "CNodeSaveCaller", [FREE, 0], error=RANGE, words=[1, 64]),
    Case("CNODEOP0052", "CNodeCancelBadgedSends", [TCB, D], error=IL),
    Case("CNODEOP0053", "CNodeCancelBadgedSends", [EP_NO_GRANT, D], error=IL),
    Case("CNODEOP0054", "CNodeCancelBadgedSends", [FREE, D], error=IL),
    # order: the source is checked before Copy's own length
    Case("CNODEOP0055", "CNodeMint", [FREE, D, FREE2, D, 0xF], [CNODE], error=FL,
         words=[1, MISSING, 64]),
    # the length counts, not the words present
    Case("CNODEOP0056", "CNodeCopy", [FREE, D, TCB, D, 0xF], [CNODE], length=4, error=TM),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_refused_invocation_changes_nothing(world: World, case: Case) -> None:
    before = snapshot(world)
    lbl = 0 if case.method == "InvalidInvocation" else label(world, case.method)
    reply = world.call(case.cptr, lbl, case.args, case.extra, length=case.length)
    assert reply == Reply(case.error, case.words)
    assert snapshot(world) == before
    assert world.kernel.stop is None


def test_CNODEOP0057_no_ipc_buffer_cuts_length_to_four(world: World) -> None:
    """Without an IPC buffer MR4+ and extra caps are gone: Copy is truncated."""
    world.call(CNODE, label(world, "CNodeDelete"), [FREE, D], [CNODE])  # caps_or_badges[0]
    world.kernel.current.ipc_buffer = 0  # type: ignore[union-attr]
    before = snapshot(world)
    info = MessageInfo(label(world, "CNodeCopy"), 0, 1, 5).to_word()
    world.machine.syscall_args(Syscall.seL4_SysCall, CNODE, info, FREE, D, TCB, D)
    world.kernel.syscall()
    window = world.machine.read_syscall_window()
    assert MessageInfo.from_word(window[1]) == MessageInfo(TM, 0, 0, 0)
    assert snapshot(world) == before


def test_CNODEOP0058_failed_extra_cap_lookup_is_a_cap_fault(world: World) -> None:
    """seL4 looks extra caps up before decoding; a failure is a send-phase cap fault."""
    before = snapshot(world, threads=False)
    world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, TCB, D, 0xF], [T])
    assert snapshot(world, threads=False) == before
    stop = world.kernel.stop
    assert stop is not None and stop.kind == "fault"
    assert f"cap fault in send phase on cptr {T:#x} (GuardMismatch)" in stop.message


# --- successes ------------------------------------------------------------------------


def ok(reply: Reply) -> None:
    assert reply == Reply(Error.seL4_NoError, [])


def test_CNODEOP0101_copy_makes_a_child_after_the_source(world: World) -> None:
    src, dest = world.slots[TCB], world.slots[FREE]
    old_next = src.mdb_next
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, TCB, D, 0xF], [CNODE]))
    assert dest.cap == src.cap
    assert (src.mdb_next, dest.mdb_prev, dest.mdb_next) == (dest, src, old_next)
    assert not dest.revocable and not dest.first_badged


def test_CNODEOP0102_copy_masks_endpoint_rights(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, EP, D, 0x3], [CNODE]))
    assert world.cap(FREE) == EndpointCap(world.cap(EP).paddr,  # type: ignore[attr-defined]
                                          rights=Rights(True, True, False, False))
    assert is_mdb_parent_of(world.kernel, world.slots[EP], world.slots[FREE])


def test_CNODEOP0103_mint_badge_starts_a_revocable_badge(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeMint"), [FREE, D, EP, D, 0xF, 5], [CNODE]))
    dest = world.slots[FREE]
    assert isinstance(dest.cap, EndpointCap) and dest.cap.badge == 5
    assert dest.revocable and dest.first_badged and dest.mdb_prev is world.slots[EP]
    # A copy of the badged cap is its child; a re-mint from the badge-0 parent is not.
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE2, D, FREE, D, 0xF], [CNODE]))
    assert is_mdb_parent_of(world.kernel, dest, world.slots[FREE2])


def test_CNODEOP0104_mint_sets_cnode_guard(world: World) -> None:
    data = 4 | (0b1010 << 6) | (0xFF << 10)  # size 4; bits above the size are dropped
    ok(world.call(CNODE, label(world, "CNodeMint"), [FREE, D, L2, D, 0, data], [CNODE]))
    assert world.cap(FREE) == CNodeCap(world.cap(L2).paddr, L2_RADIX, 4, 0b1010)  # type: ignore[attr-defined]


def test_CNODEOP0105_copy_of_a_frame_is_unmapped(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, IPCBUF, D, 0xF], [CNODE]))
    cap = world.cap(FREE)
    assert isinstance(cap, FrameCap) and cap.mapped_asid == 0
    assert cap.paddr == world.cap(IPCBUF).paddr  # type: ignore[attr-defined]


def test_CNODEOP0106_move_keeps_the_tree_position(world: World) -> None:
    src = world.slots[UT_CHILD]
    prev, nxt, bits = src.mdb_prev, src.mdb_next, (src.revocable, src.first_badged)
    cap = src.cap
    ok(world.call(CNODE, label(world, "CNodeMove"), [FREE, D, UT_CHILD, D], [CNODE]))
    dest = world.slots[FREE]
    assert src.is_empty and src.mdb_prev is None and src.mdb_next is None
    assert (dest.cap, dest.mdb_prev, dest.mdb_next) == (cap, prev, nxt)
    assert (dest.revocable, dest.first_badged) == bits
    assert prev is not None and prev.mdb_next is dest


def test_CNODEOP0107_mutate_sets_guard_in_place(world: World) -> None:
    prev = world.slots[L2].mdb_prev
    ok(world.call(CNODE, label(world, "CNodeMutate"), [FREE, D, L2, D, 2 | (1 << 6)], [CNODE]))
    assert world.cap(FREE) == CNodeCap(world.cap(FREE).paddr, L2_RADIX, 2, 1)  # type: ignore[attr-defined]
    assert world.slots[L2].is_empty and world.slots[FREE].mdb_prev is prev


def test_CNODEOP0108_rotate_three_slots(world: World) -> None:
    tcb_cap, l2_cap = world.cap(TCB), world.cap(L2)
    # dest FREE <- pivot L2 (with MR2 data), pivot L2 <- src TCB (MR5 data: unchanged)
    ok(world.call(CNODE, label(world, "CNodeRotate"),
                  [FREE, D, 3 | (5 << 6), L2, D, 0, TCB, D], [CNODE, CNODE]))
    assert world.cap(FREE) == CNodeCap(l2_cap.paddr, L2_RADIX, 3, 5)  # type: ignore[attr-defined]
    assert world.cap(L2) == tcb_cap and world.slots[TCB].is_empty


def test_CNODEOP0109_rotate_with_src_as_dest_swaps(world: World) -> None:
    tcb_cap, l2_cap = world.cap(TCB), world.cap(L2)
    ok(world.call(CNODE, label(world, "CNodeRotate"),
                  [TCB, D, 0, L2, D, 0, TCB, D], [CNODE, CNODE]))
    assert (world.cap(TCB), world.cap(L2)) == (CNodeCap(l2_cap.paddr, L2_RADIX), tcb_cap)  # type: ignore[attr-defined]


def test_CNODEOP0110_delete_of_a_copy_keeps_the_original(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, TCB, D, 0xF], [CNODE]))
    ok(world.call(CNODE, label(world, "CNodeDelete"), [FREE, D]))
    assert world.slots[FREE].is_empty and isinstance(world.cap(TCB), ThreadCap)
    assert world.kernel.current.state is ThreadState.RUNNING  # type: ignore[union-attr]


def test_CNODEOP0111_revoke_deletes_all_descendants(world: World) -> None:
    mint, copy = label(world, "CNodeMint"), label(world, "CNodeCopy")
    ok(world.call(CNODE, mint, [FREE, D, EP, D, 0xF, 5], [CNODE]))
    ok(world.call(CNODE, copy, [FREE2, D, FREE, D, 0xF], [CNODE]))
    ok(world.call(CNODE, mint, [FREE3, D, EP, D, 0xF, 6], [CNODE]))
    ok(world.call(CNODE, label(world, "CNodeRevoke"), [EP, D]))
    assert all(world.slots[i].is_empty for i in (FREE, FREE2, FREE3))
    assert world.slots[EP].mdb_next is None and isinstance(world.cap(EP), EndpointCap)


def test_CNODEOP0112_revoke_of_a_badge_spares_other_badges(world: World) -> None:
    mint, copy = label(world, "CNodeMint"), label(world, "CNodeCopy")
    ok(world.call(CNODE, mint, [FREE, D, EP, D, 0xF, 5], [CNODE]))
    ok(world.call(CNODE, copy, [FREE2, D, FREE, D, 0xF], [CNODE]))
    ok(world.call(CNODE, mint, [FREE3, D, EP, D, 0xF, 6], [CNODE]))
    ok(world.call(CNODE, label(world, "CNodeRevoke"), [FREE, D]))
    assert world.slots[FREE2].is_empty and not world.slots[FREE3].is_empty


def test_CNODEOP0113_copy_of_untyped_marks_source_full(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeDelete"), [UT_CHILD, D]))
    ok(world.call(CNODE, label(world, "CNodeCopy"), [FREE, D, UT_PARENT, D, 0xF], [CNODE]))
    parent = world.cap(UT_PARENT)
    assert isinstance(parent, UntypedCap) and parent.free_index == 1 << (12 - 4)
    assert world.slots[FREE].revocable
    reply = world.call(CNODE, label(world, "CNodeCopy"), [FREE2, D, UT_PARENT, D, 0xF], [CNODE])
    assert reply == Reply(RF, [])


def test_CNODEOP0114_save_caller_with_empty_caller_does_nothing(world: World) -> None:
    before = snapshot(world)
    ok(world.call(CNODE, label(world, "CNodeSaveCaller"), [FREE, D]))
    assert snapshot(world) == before


def test_CNODEOP0115_save_caller_moves_a_reply_cap(world: World) -> None:
    tcb = world.kernel.current
    assert tcb is not None
    world.put(tcb.slots[CALLER], ReplyCap(tcb.paddr))
    ok(world.call(CNODE, label(world, "CNodeSaveCaller"), [FREE, D]))
    assert world.cap(FREE) == ReplyCap(tcb.paddr) and tcb.slots[CALLER].is_empty


def test_CNODEOP0116_cancel_badged_sends_needs_all_rights_only(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeCancelBadgedSends"), [EP_BADGED, D]))
    ok(world.call(CNODE, label(world, "CNodeCancelBadgedSends"), [EP, D]))


def test_CNODEOP0117_delete_of_an_empty_slot_succeeds(world: World) -> None:
    ok(world.call(CNODE, label(world, "CNodeDelete"), [FREE, D]))
    ok(world.call(CNODE, label(world, "CNodeRevoke"), [FREE, D]))


def test_CNODEOP0118_deleting_the_last_cnode_cap_empties_it(world: World) -> None:
    node = world.kernel.objects[world.cap(L2).paddr]  # type: ignore[attr-defined]
    ok(world.call(CNODE, label(world, "CNodeDelete"), [L2, D]))
    assert all(slot.is_empty for slot in node.slots)  # type: ignore[attr-defined]


def test_CNODEOP0119_deleting_own_last_tcb_cap_suspends_without_reply(world: World) -> None:
    tcb = world.kernel.current
    assert tcb is not None
    world.call(CNODE, label(world, "CNodeDelete"), [TCB, D])
    assert tcb.state is ThreadState.INACTIVE
    assert all(slot.is_empty for slot in tcb.slots)
    assert world.kernel.stop is not None and world.kernel.stop.kind == "idle"


def test_CNODEOP0120_mint_into_a_second_level_cnode(world: World) -> None:
    # dest resolved in L2 (4 bits), source through the root CNode
    ok(world.call(L2, label(world, "CNodeMint"), [9, L2_RADIX, EP, D, 0xF, 11], [CNODE]))
    node = world.kernel.objects[world.cap(L2).paddr]  # type: ignore[attr-defined]
    assert node.slots[9].cap.badge == 11  # type: ignore[attr-defined]


