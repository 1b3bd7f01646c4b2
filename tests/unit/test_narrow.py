"""kernel.views.narrow on booted kernels (fake machine): boot caps hidden by seL4_BootInfo's
regions, thread choice by name, NAME#N and address, subtrees."""

from __future__ import annotations

import pytest

from kernel.abi.arch import Arch
from kernel.views.narrow import (
    BootCaps,
    ChoiceError,
    choose_thread,
    hide_boot_caps,
    only_subtree,
    only_thread,
)
from kernel.views.render import Snapshot, ThreadView, snapshot, to_text
from tests.abi.support import System
from tests.unit.test_boot import booted


@pytest.fixture(params=list(Arch), ids=lambda a: a.short)
def arch(request: pytest.FixtureRequest) -> Arch:
    return request.param  # type: ignore[no-any-return]


def test_boot_caps_are_the_bootinfo_regions(arch: Arch) -> None:
    kernel, _, report = booted(arch)
    info = report.bootinfo  # type: ignore[attr-defined]
    boot = BootCaps.of(info, report.root_cnode)  # type: ignore[attr-defined]
    full = snapshot(kernel)
    narrowed = hide_boot_caps(full, boot)
    regions = {"image frame caps": info.user_image_frames,
               "image page-table caps": info.user_image_paging,
               "unused untyped caps": info.untyped}
    assert narrowed.hidden == {what: end - start for what, (start, end) in regions.items()}
    gone = {f"{boot.root_cnode:#x}[{i}]" for start, end in regions.values()
            for i in range(start, end)}
    assert set(full.caps) - set(narrowed.caps) == gone
    assert narrowed.untypeds == []
    assert narrowed.derivation == full.derivation  # boot's links are among initial caps
    assert to_text(narrowed).splitlines()[0] == "# hidden: " + ", ".join(
        f"{end - start} {what}" for what, (start, end) in regions.items())


def _threads(*specs: tuple[str, int]) -> Snapshot:
    root = snapshot(booted(Arch.RISCV64)[0]).threads[0].cspace_root
    views = [ThreadView(name, paddr, "Inactive", 1, root) for name, paddr in specs]
    return Snapshot("", views, [], [], [])


def test_choose_thread_by_name_number_and_address() -> None:
    snap = _threads(("a", 0x1000), ("w", 0x2000), ("w", 0x3000), ("x#1", 0x4000))
    assert choose_thread(snap, "a").paddr == 0x1000
    assert choose_thread(snap, "w#2").paddr == 0x3000
    assert choose_thread(snap, "0x2000").paddr == 0x2000
    assert choose_thread(snap, "x#1").paddr == 0x4000  # a name with '#' is a name first
    with pytest.raises(ChoiceError, match=r"2 threads are named 'w': w#1 \(tcb 0x2000\), "
                                          r"w#2 \(tcb 0x3000\)"):
        choose_thread(snap, "w")
    for bad in ("nobody", "w#3", "0x5000", "a#2"):
        with pytest.raises(ChoiceError):
            choose_thread(snap, bad)


def test_subtree_and_thread_of_a_retyped_endpoint() -> None:
    system = System(Arch.AARCH64)
    ut = system.untyped(16)
    first = system.free_slots(2)
    assert system.retype(ut, system.otype("seL4_EndpointObject"), 0, first, 2).label == 0
    kernel = system.kernel
    full = snapshot(kernel)
    root = kernel.current
    assert root is not None
    cnode = root.ctable.cap.object_paddr
    ut_id, ep_ids = f"{cnode:#x}[{ut}]", {f"{cnode:#x}[{first}]", f"{cnode:#x}[{first + 1}]"}
    sub = only_subtree(full, ut_id)
    assert set(sub.caps) == {ut_id} | ep_ids
    assert {(link.parent, link.child) for link in sub.derivation} == {(ut_id, e) for e in ep_ids}
    assert sorted(o.type for o in sub.objects) == ["Endpoint", "Endpoint", "Untyped"]
    mine = only_thread(full, choose_thread(full, "rootserver"))
    assert {ut_id} | ep_ids <= set(mine.caps)
    assert all(sid.startswith((f"{cnode:#x}[", f"{root.paddr:#x}.")) for sid in mine.caps)
