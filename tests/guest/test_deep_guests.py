"""userland/tests/deepcspace.c: a guest chains CNodes 1,200 deep, resolves, deletes and
revokes through the chains, and ends its run with one chain in its CSpace.

The invariants are checked once, at the end of the run, rather than after every kernel
entry: each check looks at every slot, and the program makes thousands of entries. The
end state is checkpointed and restored (DESIGN.md decisions 7 and 9: the checkpoint
walks the chain without recursion too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bootimage import build_image, load_image
from emulator.session import Checkpoint, Session
from kernel.kernel import Kernel
from kernel.model.caps import CNodeCap
from kernel.model.cnode import CNode
from kernel.views.invariants import check_all
from tests.conftest import ARCHES, GuestRun
from tests.guest.checks import assert_all_checks_pass, check_ids_in_source
from tests.stack import shallow_stack
from userland.build import image_config

PROGRAM = "deepcspace"
EXPECTED = [f"DEEPCS{i:04d}" for i in range(1, 4)]
CHAIN = 1200
"""CNodes in each chain (``CHAIN`` in the program)."""


def run_deep(elf: Path) -> GuestRun:
    """The program run to its end, with no observers."""
    loaded = load_image(build_image(elf.read_bytes(), image_config(PROGRAM)))
    out = bytearray()
    session = Session.boot(loaded.root, loaded.config, out.append)
    result = session.run(50_000_000)
    return GuestRun(out.decode(), result, session)


def longest_chain(kernel: Kernel) -> list[int]:
    """The paddrs of the longest chain of CNodes, each holding the cap to the next in
    slot 0, that starts at a cap in the first thread's root CNode (outermost first; a
    cycle ends a chain)."""
    root_cap = [*kernel.threads.values()][0].ctable.cap
    assert isinstance(root_cap, CNodeCap)
    root = kernel.object_at(root_cap.paddr, CNode)
    inner = {node.slots[0].cap.paddr for node in kernel.objects.values()
             if isinstance(node, CNode) and isinstance(node.slots[0].cap, CNodeCap)}
    best: list[int] = []
    for slot in root.slots:
        cap = slot.cap
        if not isinstance(cap, CNodeCap) or cap.paddr in inner or cap.paddr == root.paddr:
            continue
        chain: list[int] = []
        seen: set[int] = set()
        while isinstance(cap, CNodeCap) and cap.paddr not in seen:
            seen.add(cap.paddr)
            chain.append(cap.paddr)
            cap = kernel.object_at(cap.paddr, CNode).slots[0].cap
        best = max(best, chain, key=len)
    return best


@pytest.fixture(scope="module")
def deep_runs(guest_elves: dict[str, dict[str, Path]]) -> dict[str, GuestRun]:
    return {arch: run_deep(guest_elves[arch][PROGRAM]) for arch in ARCHES}


@pytest.mark.parametrize("arch", ARCHES)
def test_every_check_passes_and_the_kernel_stays_consistent(
        deep_runs: dict[str, GuestRun], arch: str) -> None:
    run = deep_runs[arch]
    assert_all_checks_pass(run, EXPECTED)
    with shallow_stack():
        check_all(run.session.kernel)


def test_check_ids_are_unique_and_in_order() -> None:
    assert check_ids_in_source(PROGRAM) == EXPECTED


@pytest.mark.parametrize("arch", ARCHES)
def test_the_run_ends_with_one_chain_1200_deep(deep_runs: dict[str, GuestRun], arch: str) -> None:
    chain = longest_chain(deep_runs[arch].session.kernel)
    assert len(chain) == CHAIN and len(set(chain)) == CHAIN


@pytest.mark.parametrize("arch", ARCHES)
def test_a_checkpoint_of_the_deep_cspace_restores_it(deep_runs: dict[str, GuestRun],
                                                     arch: str) -> None:
    session = deep_runs[arch].session
    with shallow_stack():
        data = session.checkpoint().to_bytes()
        restored = Session.restore(Checkpoint.from_bytes(data), lambda byte: None)
        check_all(restored.kernel)
    assert longest_chain(restored.kernel) == longest_chain(session.kernel)
    assert restored.output == session.output
