"""Property: any sequence of checkpoint-object invocations (capsule's extension, not
seL4), mixed with CNode Delete and Revoke, with any arguments, leaves the kernel sound,
and a refused one changes nothing.

Hypothesis drives random seL4_Call invocations of the checkpoint cap with its three
labels (and a few others), random slots, depths, rights, badges and extra caps, over the
world of tests/abi/test_checkpoint_errors.py. A reply must be an seL4 error with nothing
changed, or a success; the invariant checker runs after every kernel entry.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kernel.abi.arch import Arch
from kernel.abi.constants import InitialCap
from kernel.abi.extensions import SLOT_WORDS, CheckpointLabel
from kernel.cspace.ipc_buffer import ipc_buffer_paddr
from tests.abi.cnode_fixtures import snapshot
from tests.abi.test_checkpoint_errors import CKPT, L2, _world
from tests.fuzzing import fuzzed, longer

CNODE = int(InitialCap.seL4_CapInitThreadCNode)
LABELS = [int(m) for m in CheckpointLabel] * 3 + [0, int(CheckpointLabel.capsule_CheckpointInstall) + 1]
SLOTS = [0, 1, 2, 3, 9, 10, *range(4000, 4012)]

slot_index = st.one_of(st.sampled_from(SLOTS), st.sampled_from(SLOTS), st.integers(0, 15),
                       st.integers(0, (1 << 64) - 1))
depth = st.one_of(st.just(64), st.just(64), st.just(4), st.just(0),
                  st.sampled_from([1, 12, 60, 65]), st.integers(0, (1 << 64) - 1))
word = st.one_of(st.integers(0, 15), st.integers(0, 1 << 12), st.integers(0, (1 << 64) - 1))
root = st.sampled_from([CNODE, L2, CKPT, 4001, 4009])
random_step = st.tuples(
    st.sampled_from(LABELS),
    st.tuples(slot_index, depth, slot_index, depth, word, word),
    st.integers(0, 6),
    st.lists(root, min_size=0, max_size=2),
)
slot = st.sampled_from(SLOTS)
plausible_step = st.one_of(  # well-formed calls, to reach the perform paths
    st.tuples(st.just(int(CheckpointLabel.capsule_CheckpointReadSlot)),
              st.tuples(slot, st.just(64)), st.just(2), st.just([CNODE])),
    st.tuples(st.just(int(CheckpointLabel.capsule_CheckpointNextSlot)),
              st.tuples(st.just(0), st.just(0), st.integers(0, 16)), st.just(3), st.just([L2])),
    st.tuples(st.just(int(CheckpointLabel.capsule_CheckpointInstall)),
              st.tuples(slot, st.just(64), slot, st.just(64), word, word), st.just(6),
              st.just([CNODE, CNODE])),
)
step = st.one_of(random_step, plausible_step)


@fuzzed(50)
@given(arch=st.sampled_from(list(Arch)), steps=st.lists(step, min_size=1, max_size=longer(10)))
def test_random_checkpoint_invocations_keep_invariants(arch: Arch, steps: list) -> None:  # type: ignore[type-arg]
    w = _world(arch)
    for label, args, length, extra in steps:
        if w.kernel.stop is not None or w.kernel.current is None:
            break
        if ipc_buffer_paddr(w.kernel, w.kernel.current, for_write=True) is None:
            break
        before = snapshot(w)
        reply = w.call(CKPT, label, list(args[:length]), extra)  # check_all at exit
        if reply.label != 0:
            assert snapshot(w) == before, (label, args[:length], extra, reply)
        elif label == CheckpointLabel.capsule_CheckpointReadSlot:
            assert len(reply.words) == len(SLOT_WORDS) and snapshot(w) == before
        elif label == CheckpointLabel.capsule_CheckpointNextSlot:
            assert len(reply.words) == 1 + len(SLOT_WORDS) and snapshot(w) == before
