"""Property: any sequence of capability-page invocations (capsule's extension, not
seL4), mixed with Map, Unmap and CNode Copy / Mint / Move / Delete / Revoke through the
root CNode and through the pages themselves, with any arguments, leaves the kernel sound
(the invariant checker, aware of capability pages and their mapping records, runs after
every kernel entry), and a refused one changes nothing, mapping records included.

Hypothesis drives random seL4_Call invocations over the world of
tests/abi/test_cap_page_errors.py. A capability access where no page is mapped is a type
fault: the root thread has no handler and stops, which ends the run.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.abi.extensions import CapPageLabel
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from tests.abi.support import Reply
from tests.abi.test_cap_page_errors import (
    CNODE,
    L2,
    PAGE,
    RO_L2,
    RO_PAGE,
    SPARE_PAGE,
    VA,
    VA_NONE,
    VA_RO,
    VA_WEAK,
    VS,
    WEAK_L2,
    WEAK_PAGE,
    _world,
    state,
)
from tests.fuzzing import fuzzed, longer

SLOTS = [0, 1, 2, 3, *range(4000, 4016)]
PAGES = [PAGE, RO_PAGE, WEAK_PAGE, SPARE_PAGE]
CAP_LABELS = [int(m) for m in CapPageLabel]
CNODE_LABELS = ["CNodeCopy", "CNodeMint", "CNodeMove", "CNodeMutate", "CNodeDelete",
                "CNodeRevoke", "CNodeRotate"]

address = st.one_of(
    st.builds(lambda base, slot: base + 32 * slot,
              st.sampled_from([VA, VA_RO, VA_WEAK, VA_NONE, VA + 0x3000]), st.integers(0, 127)),
    st.integers(0, (1 << 64) - 1),
    st.sampled_from([VA + 8, VA + 0xFFF, 0x15000]),
)
slot_index = st.one_of(st.sampled_from(SLOTS), st.integers(0, 127), st.integers(0, (1 << 64) - 1))
depth = st.one_of(st.just(64), st.just(64), st.just(7), st.just(4), st.just(0),
                  st.integers(0, 70))
word = st.one_of(st.integers(0, 15), st.integers(0, (1 << 64) - 1))
root = st.sampled_from([CNODE, L2, RO_L2, WEAK_L2, *PAGES, VS])

vspace_step = st.tuples(
    st.just(VS), st.sampled_from(CAP_LABELS),
    st.tuples(address, slot_index, depth), st.integers(0, 3), st.lists(root, max_size=1))
copy_step = st.tuples(
    st.just(VS), st.just(int(CapPageLabel.capsule_VSpaceCapCopy)),
    st.tuples(address, address), st.just(2), st.just([]))
map_step = st.tuples(
    st.sampled_from(PAGES),
    st.sampled_from([int(CapPageLabel.capsule_CapPageMap), int(CapPageLabel.capsule_CapPageUnmap)]),
    st.tuples(st.sampled_from([VA, VA + 0x3000, VA + 0x4000, VA_NONE, 0x15000]),
              st.integers(0, 3)),
    st.integers(0, 2), st.lists(root, max_size=1))
cnode_step = st.tuples(
    st.sampled_from([CNODE, *PAGES, L2, RO_L2, WEAK_L2]), st.sampled_from(CNODE_LABELS),
    st.tuples(slot_index, depth, slot_index, depth, word, word), st.integers(2, 6),
    st.lists(root, max_size=2))
page_address = st.builds(lambda base, slot: base + 32 * slot,
                         st.sampled_from([VA, VA, VA_RO, VA_WEAK]), st.integers(0, 6))
plausible_step = st.tuples(  # well-formed calls, to reach the perform paths
    st.just(VS), st.sampled_from(CAP_LABELS),
    st.tuples(page_address, st.sampled_from([4010, 4011, 4013, 4014, 4015, *SLOTS]), st.just(64)),
    st.just(3),
    st.just([CNODE]))
plausible_copy = st.tuples(
    st.just(VS), st.just(int(CapPageLabel.capsule_VSpaceCapCopy)),
    st.tuples(page_address, page_address), st.just(2), st.just([]))
step = st.one_of(vspace_step, plausible_step, plausible_step, copy_step, plausible_copy,
                 map_step, cnode_step)


@fuzzed(50)
@given(arch=st.sampled_from(list(Arch)), steps=st.lists(step, min_size=1, max_size=longer(12)))
def test_random_cap_page_invocations_keep_invariants(arch: Arch, steps: list) -> None:  # type: ignore[type-arg]
    w = _world(arch)
    for cptr, label, args, length, extra in steps:
        if w.kernel.stop is not None or w.kernel.current is None \
                or w.kernel.current.name != "rootserver":
            break
        if ipc_buffer_paddr(w.kernel, w.kernel.current, for_write=True) is None:
            break
        number = w.label(label) if isinstance(label, str) else label
        before = state(w)
        reply = w.call(cptr, number, list(args[:length]), extra)  # check_all at exit
        if not w.kernel.current or not w.kernel.current.state.runnable:
            break  # a type fault with no handler stopped the thread
        if reply.label != 0:
            assert state(w) == before, (cptr, label, args[:length], extra, reply)
        else:
            assert reply == Reply(0, [])


def test_the_root_is_named_as_the_property_expects() -> None:
    w = _world(Arch.RISCV64)
    assert w.kernel.current is not None and w.kernel.current.name == "rootserver"
    assert int(InitialCap.seL4_CapInitThreadVSpace) == VS
