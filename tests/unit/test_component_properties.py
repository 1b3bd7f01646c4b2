"""Capture and restore of randomly built components (kernel.component), on the fake machine.

A server with its own CNode is built, then random CNode invocations reshape its CSpace:
mints and copies of a client endpoint the root task holds (badged or not, any rights),
mints, copies and moves among the server's own slots, deletes, and endpoints or
notifications retyped from an untyped of its own. Whatever the invocations made (the
ones the kernel refuses change nothing), the component is captured, destroyed, restored
from another untyped and captured again, and must come back the same: the same
capture (identities, caps, bits, parents), the same derivation tree among its slots as
the kernel's own ``descendants`` walk sees it, and the invariants hold.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.component import capture, restore
from kernel.cspace.cdt import descendants
from kernel.cspace.lookup import lookup_slot
from kernel.model.slot import Slot
from kernel.model.tcb import TCB
from kernel.views.invariants import check_all
from tests.abi.support import CNODE, System
from tests.abi.vspace_support import VSPACE, make
from tests.fuzzing import fuzzed, longer

RADIX = 4
FREE = range(1, 12)
"""Server slots the steps play with; 12-15 hold its notification, TCB, untyped, CNode."""

slot = st.sampled_from(FREE)
rights = st.integers(0, 15)
badge = st.sampled_from([0, 0, 1, 2, 0x33])
step = st.one_of(
    st.tuples(st.just("mint_client"), slot, rights, badge),
    st.tuples(st.just("mint"), slot, slot, rights, badge),
    st.tuples(st.just("copy"), slot, slot, rights),
    st.tuples(st.just("move"), slot, slot),
    st.tuples(st.just("delete"), slot),
    st.tuples(st.just("retype"), slot, st.sampled_from(["seL4_EndpointObject",
                                                         "seL4_NotificationObject"])),
)


def _pairs(s: System, tcb: TCB) -> set[tuple[str, str]]:
    found = {f"t{i}": sl for i, sl in enumerate(tcb.slots) if not sl.is_empty}
    for cptr in range(1 << RADIX):
        sl = lookup_slot(s.kernel, tcb, cptr)
        if isinstance(sl, Slot) and not sl.is_empty:
            found[f"c{cptr}"] = sl
    place = {id(sl): name for name, sl in found.items()}
    return {(name, place[id(d)]) for name, sl in found.items()
            for d in descendants(s.kernel, sl) if id(d) in place}


@fuzzed(25)
@given(arch=st.sampled_from(list(Arch)), steps=st.lists(step, max_size=longer(14)))
def test_random_components_come_back_the_same(arch: Arch, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    s = System(arch, invariants=False)
    label = s.label
    ua, ep = s.ram_untyped(16), make(s, s.otype("seL4_EndpointObject"))
    cn, t, n, ut = (s.free_slots(1) for _ in range(4))
    for dest, name, size in ((cn, "seL4_CapTableObject", RADIX), (t, "seL4_TCBObject", 0),
                             (n, "seL4_NotificationObject", 0), (ut, "seL4_UntypedObject", 12)):
        assert s.retype(ua, s.otype(name), size, dest, 1).label == 0
    assert s.call(t, label("TCBSetSpace"), [0, 64 - RADIX, 0], extra=[cn, VSPACE]).label == 0
    for op, *args in steps:  # refused invocations are part of the game: they change nothing
        if op == "mint_client":
            dest, r, b = args
            s.call(cn, label("CNodeMint"), [dest, RADIX, ep, 64, r, b], extra=[CNODE])
        elif op == "mint":
            dest, src, r, b = args
            s.call(cn, label("CNodeMint"), [dest, RADIX, src, RADIX, r, b], extra=[cn])
        elif op == "copy":
            dest, src, r = args
            s.call(cn, label("CNodeCopy"), [dest, RADIX, src, RADIX, r], extra=[cn])
        elif op == "move":
            dest, src = args
            s.call(cn, label("CNodeMove"), [dest, RADIX, src, RADIX], extra=[cn])
        elif op == "delete":
            s.call(cn, label("CNodeDelete"), [args[0], RADIX])
        else:
            dest, name = args
            s.retype(ut, s.otype(name), 0, dest, 1, node_index=cn, node_depth=64)
    for dest, src in ((12, n), (13, t), (14, ut), (15, cn)):
        assert s.call(cn, label("CNodeMove"), [dest, RADIX, src, 64], extra=[CNODE]).label == 0
    check_all(s.kernel)
    server = next(x for x in s.kernel.threads.values() if x.ctable.cap.object_paddr is not None
                  and x.ctable.cap.object_paddr != s.root.paddr)
    external = {"client_ep": s.slots[ep], "shared_vspace": s.slots[VSPACE]}
    before = capture(s.kernel, server, external)
    tree = _pairs(s, server)

    assert s.call(CNODE, label("CNodeRevoke"), [ua, 64]).label == 0
    done = restore(s.kernel, before, s.slots[s.ram_untyped(15)], external)
    check_all(s.kernel)
    restored = s.kernel.threads[done.thread]
    assert capture(s.kernel, restored, external) == before
    assert _pairs(s, restored) == tree
