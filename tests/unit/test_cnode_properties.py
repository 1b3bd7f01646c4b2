"""Property: any sequence of CNode invocations, with any arguments, leaves the kernel sound.

Hypothesis drives random seL4_Call invocations of the root CNode (and of a second-level
CNode) with random labels, slots, depths, rights, badges/guard words and extra caps. The
only acceptable outcomes are a reply, a cap fault or a stopped kernel; any Python
exception fails the test, and the invariant checker runs after every kernel entry.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.cspace.cdt import insert
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from kernel.model.caps import EndpointCap, UntypedCap
from kernel.views.invariants import check_all, enable_invariant_checks
from tests.abi.cnode_fixtures import World
from tests.fuzzing import fuzzed, longer

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
METHODS = ["CNodeRevoke", "CNodeDelete", "CNodeCancelBadgedSends", "CNodeCopy", "CNodeMint",
           "CNodeMove", "CNodeMutate", "CNodeRotate", "CNodeSaveCaller", "UntypedRetype"]
# A few interesting slots: initial caps, hand-made ones, and empties.
SLOTS = [0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4010, 4011,
         4012, 4013]

slot_index = st.one_of(st.sampled_from(SLOTS), st.sampled_from(SLOTS), st.integers(0, 4095),
                       st.integers(0, (1 << 64) - 1))
depth = st.one_of(st.just(64), st.just(64), st.just(4),
                  st.sampled_from([0, 1, 12, 52, 60, 63, 65, 255]), st.integers(0, (1 << 64) - 1))
word = st.one_of(st.integers(0, 15), st.integers(0, 1 << 12), st.integers(0, (1 << 64) - 1))
slot = st.sampled_from(SLOTS)
random_step = st.tuples(
    st.sampled_from(METHODS),
    st.sampled_from([CNODE, 4003]),  # the root CNode or the second-level one
    # Shaped like the CNode methods' messages (index, depth, index, depth, data...),
    # then cut to a random length, so that many calls get past the first checks.
    st.tuples(slot_index, depth, st.one_of(slot_index, word), depth, st.one_of(depth, word),
              word, slot_index, depth),
    st.integers(0, 8),
    st.lists(st.one_of(st.sampled_from([CNODE, 4003]), slot_index), min_size=0, max_size=3),
)
plausible_step = st.tuples(  # well-formed root-CNode calls, to reach the perform paths
    st.sampled_from(METHODS[:-1]),
    st.just(CNODE),
    st.tuples(slot, st.just(64), slot, st.just(64), word, word, slot, st.just(64)),
    st.just(8),
    st.just([CNODE, CNODE]),
)
step = st.one_of(random_step, plausible_step)


def build(arch: Arch) -> World:
    w = World(arch)
    ep = w.put(4000, EndpointCap(w.alloc(4)))
    insert(EndpointCap(ep.cap.paddr, badge=9), ep, w.slots[4001])  # type: ignore[attr-defined]
    w.put(4003, w.cnode_cap(4))
    base = w.alloc(12)
    w.put(4004, UntypedCap(base, 12, free_index=(1 << 10) >> 4))
    insert(UntypedCap(base, 10), w.slots[4004], w.slots[4005])
    enable_invariant_checks(w.kernel)
    check_all(w.kernel)
    return w


@fuzzed(60)
@given(arch=st.sampled_from(list(Arch)), steps=st.lists(step, min_size=1, max_size=longer(12)))
def test_random_cnode_invocations_keep_invariants(arch: Arch, steps: list) -> None:  # type: ignore[type-arg]
    w = build(arch)
    for method, cptr, args, length, extra in steps:
        if w.kernel.stop is not None or w.kernel.current is None:
            break
        if ipc_buffer_paddr(w.kernel, w.kernel.current, for_write=True) is None:
            break  # the root revoked its own IPC buffer cap: the test cannot marshal more
        w.call(cptr, w.label(method), list(args[:length]), extra)  # check_all at exit
