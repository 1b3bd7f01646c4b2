"""The checkpointer guest (userland/tests/checkpointer.c), on both architectures: a
user-level checkpointer written against capsule's checkpoint object extension (not
seL4) saves a component's cspace with the extension's invocations only, destroys the
component, recreates its objects from untyped and puts every cap back (see the C file).

Asserted: every check passes (tests/guest/checks.py), the saved table it prints is the
component the program built (the same on both architectures, so the readings are
architecture-independent), the restored component is in the kernel at the end, and
without the extension the very first step is refused as seL4 refuses an unknown type.
"""

from __future__ import annotations

import re

import pytest

from kernel.abi.constants import CapTag
from kernel.config import KernelConfig
from kernel.model.caps import (
    CheckpointCap,
    CNodeCap,
    EndpointCap,
    FrameCap,
    NotificationCap,
    ThreadCap,
)
from kernel.model.cnode import CNode
from kernel.model.tcb import ThreadState
from tests.conftest import ARCHES
from tests.guest.checks import LINE, assert_all_checks_pass, check_ids_in_source

EXPECTED = [f"CKPTG{i:04d}" for i in range(1, 12)]

E, N, F, C, T = (int(CapTag.endpoint_cap), int(CapTag.notification_cap),
                 int(CapTag.frame_cap), int(CapTag.cnode_cap), int(CapTag.thread_cap))
SAVED = [
    # index/depth from the component's root CNode: type, rights, badge, size, guard,
    # flags (8: a revocable badged cap), the identity's kind (2 TCB, 3 endpoint,
    # 4 notification, 5 CNode, 6 frame), and whether frame data was saved
    f"saved 0x1/4: type {E} rights 0xf badge 0 size 0 guard 0 flags 0 kind 3",
    f"saved 0x2/4: type {E} rights 0x3 badge 0x55 size 0 guard 0 flags 0x8 kind 3",
    f"saved 0x3/4: type {N} rights 0xf badge 0x3 size 0 guard 0 flags 0x8 kind 4",
    f"saved 0x4/4: type {F} rights 0xe badge 0 size 12 guard 0 flags 0 kind 6 data",
    f"saved 0x6/4: type {C} rights 0xf badge 0x1 size 2 guard 1 flags 0 kind 5",
    f"saved 0x7/4: type {T} rights 0xf badge 0 size 0 guard 0 flags 0 kind 2",
    f"saved 0x35/7: type {N} rights 0xd badge 0x9 size 0 guard 0 flags 0x8 kind 4",
    f"saved 0x36/7: type {E} rights 0x2 badge 0 size 0 guard 0 flags 0 kind 3",
]


@pytest.mark.parametrize("arch", ARCHES)
def test_the_checkpointer_saves_and_restores_the_component(run_guest, arch: str) -> None:  # type: ignore[no-untyped-def]
    run = run_guest("checkpointer", arch)
    assert run.session.kernel.config.checkpoint_object
    assert_all_checks_pass(run, EXPECTED)
    assert re.findall(r"^saved .*$", run.output, re.M) == SAVED

    # The restored component, as the kernel holds it: a 16-slot CNode with caps at
    # 1, 2, 3, 4, 6 and 7, its child CNode (guard 1 of 1 bit) with caps at 1 and 2, its
    # thread waiting on its notification with that CNode as its CSpace.
    kernel = run.session.kernel
    roots = [o for o in kernel.objects.values() if isinstance(o, CNode) and o.radix == 4
             and {s.index for s in o.slots if not s.is_empty} == {1, 2, 3, 4, 6, 7}]
    assert len(roots) == 1
    slots = {s.index: s.cap for s in roots[0].slots if not s.is_empty}
    ep, badged, ntfn, frame, child = (slots[i] for i in (1, 2, 3, 4, 6))
    assert isinstance(ep, EndpointCap) and isinstance(badged, EndpointCap)
    assert (badged.paddr, badged.badge, str(badged.rights)) == (ep.paddr, 0x55, "WR")
    assert isinstance(ntfn, NotificationCap) and ntfn.badge == 0x3
    assert isinstance(frame, FrameCap) and str(frame.rights) == "RGg"
    assert isinstance(child, CNodeCap) and (child.radix, child.guard_size, child.guard) == (2, 1, 1)
    inner = kernel.objects[child.paddr]
    assert isinstance(inner, CNode)
    inner_caps = {s.index: s.cap for s in inner.slots if not s.is_empty}
    assert inner_caps[1] == NotificationCap(ntfn.paddr, 0x9, inner_caps[1].rights)  # type: ignore[attr-defined]
    assert inner_caps[2] == EndpointCap(ep.paddr, 0, inner_caps[2].rights)  # type: ignore[attr-defined]
    assert kernel.machine.read_phys(frame.paddr, 16) == b"the component's "
    thread = slots[7]
    assert isinstance(thread, ThreadCap)
    tcb = kernel.threads[thread.paddr]
    assert tcb.state is ThreadState.BLOCKED_ON_NOTIFICATION
    assert tcb.ctable.cap == CNodeCap(roots[0].paddr, 4, 60, 0)
    assert any(isinstance(s.cap, CheckpointCap) for o in kernel.objects.values()
               if isinstance(o, CNode) for s in o.slots)


@pytest.mark.parametrize("arch", ARCHES)
def test_without_the_extension_the_type_is_refused_as_seL4_refuses_it(  # type: ignore[no-untyped-def]
        run_guest, arch: str) -> None:
    run = run_guest("checkpointer", arch, config=KernelConfig())
    lines = LINE.findall(run.output)
    assert lines[0][:2] == ("CKPTG0001", "FAIL")
    assert "returned InvalidArgument, expected NoError" in lines[0][2]
    assert not any(isinstance(s.cap, CheckpointCap) for o in run.session.kernel.objects.values()
                   if isinstance(o, CNode) for s in o.slots)


def test_check_ids_are_unique_and_in_order() -> None:
    assert check_ids_in_source("checkpointer") == EXPECTED
